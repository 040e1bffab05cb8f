import * as api from "../api.js";
import { field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount } from "../money.js";
import { formatNumber, loadMore, statusBadge } from "../ui.js";

// Staff view: one account's journal entries (support and admin) and, for admins, the
// reversal of a posted entry behind a confirmation step.

const REVERSING = new Set(["reversal", "card_refund"]);
const enc = encodeURIComponent;

function reverse(entryId, body, idempotencyKey) {
  return api.request("POST", `/v1/admin/entries/${enc(entryId)}/reverse`, { body, idempotencyKey });
}

// The confirmation: reason and amount first, then an explicit "Confirm reversal". One
// Idempotency-Key per confirmation, so a double click or a retry reverses at most once.
function confirmPanel(entry, onDone, onCancel) {
  const key = api.newIdempotencyKey();
  const submit = h("button", { type: "submit", class: "button danger", text: "Confirm reversal" });
  const cancel = h("button", { type: "button", class: "button secondary", text: "Cancel", onclick: onCancel });
  const form = h("form", { class: "stack reverse-confirm", "aria-label": "Confirm the reversal" },
    h("p", { role: "status", text:
      `Reverse ${formatMoney(entry.amount, entry.currency)} (${entry.kind}) of ${formatDateTime(entry.created_at)}? `
      + "A new entry gives the money back once a second admin approves; the original is kept." }),
    field({ label: "Reason", name: "reason", maxlength: 140 }),
    field({ label: `Amount (${entry.currency})`, name: "amount", required: false, inputmode: "decimal",
      hint: "Leave empty to reverse all that is left." }),
    h("div", { class: "actions" }, submit, cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    const body = { reason: values.reason };
    if (values.amount) {
      const minor = parseAmount(values.amount, entry.currency);
      if (minor === null) {
        showErrors(form, { message: "Check the amount.", errors: [{ field: "amount", reason: "is not an amount" }] });
        return;
      }
      body.amount = minor;
    }
    setBusy(submit, true, "Reversing…");
    try {
      const done = await reverse(entry.id, body, key);
      // A reversal needs a second person: it waits in the approval queue.
      flash(done.status === "pending_approval"
        ? `The reversal of ${formatMoney(done.amount, done.currency)} waits for a second admin's approval.`
        : `Reversed ${formatMoney(done.amount, done.currency)}.`);
      onDone(done);
    } catch (error) {
      showErrors(form, error);
      setBusy(submit, false);
    }
  });
  return form;
}

function entryRow(entry, accountId, reload) {
  const from = entry.source_account_id === accountId ? "Out" : "In";
  const actions = h("td", { "data-label": "Action" });
  const row = h("tr", {},
    h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(entry.created_at) }),
    h("td", { "data-label": "Entry" }, h("span", { class: "mono", text: entry.kind }), statusBadge(entry.status),
      entry.reversed_entry_id
        ? h("span", { class: "tx-detail muted small", text: `gives back ${String(entry.reversed_entry_id).slice(0, 8)}` })
        : null,
      entry.description ? h("span", { class: "tx-detail muted small", text: entry.description }) : null),
    h("td", { "data-label": "Direction", text: from }),
    h("td", { class: "num", "data-label": "Amount", text: formatMoney(entry.amount, entry.currency) }),
    actions);
  if (api.isAdmin() && entry.status === "posted" && !REVERSING.has(entry.kind)) {
    const open = h("button", { type: "button", class: "button small secondary",
      "aria-label": `Reverse entry ${entry.id}`, text: "Reverse…" });
    open.addEventListener("click", () => {
      const panelRow = h("tr", { class: "confirm-row" });
      const cell = h("td", { colspan: "5" });
      panelRow.append(cell);
      cell.append(confirmPanel(entry, () => reload(), () => {
        panelRow.remove();
        open.hidden = false;
        open.focus();
      }));
      open.hidden = true;
      row.after(panelRow);
      cell.querySelector("input")?.focus();
    });
    actions.append(open);
  } else {
    actions.append(h("span", { class: "muted small", text: "—" }));
  }
  return row;
}

export default {
  path: "/staff/entries",
  title: "Entries",
  auth: true,
  nav: "Entries",
  navIf: () => api.isStaff(),
  async render() {
    if (!api.isStaff()) {
      return h("section", { class: "card" }, h("h1", { text: "Entries" }),
        h("p", { class: "notice", text: "This screen is for bank staff only." }));
    }
    const results = h("div", { class: "results" });
    const submit = h("button", { type: "submit", class: "button primary inline", text: "Show entries" });
    const form = h("form", { class: "filters", role: "search", "aria-label": "Find an account's entries" },
      field({ label: "Account number", name: "number", inputmode: "numeric", maxlength: 14 }),
      h("div", { class: "filters-submit" }, submit));
    const show = async () => {
      const number = formValues(form).number.replace(/\s/g, "");
      setBusy(submit, true, "Searching…");
      try {
        const found = api.itemsOf(await api.staff.accounts({ number, limit: 1 }));
        if (!found.length) {
          results.replaceChildren(h("p", { class: "empty", text: "No account has this number." }));
          return;
        }
        const account = found[0];
        const tbody = h("tbody");
        const table = h("div", { class: "table-wrap" }, h("table", { class: "staff-entries" },
          h("caption", { text: `Entries of account ${formatNumber(account.number)}, newest first` }),
          h("thead", {}, h("tr", {}, ["Date", "Entry", "Direction", "Amount", "Action"].map((t) =>
            h("th", { scope: "col", text: t, class: t === "Amount" ? "num" : null })))),
          tbody));
        const more = loadMore(
          (cursor) => api.request("GET", "/v1/admin/transactions",
            { query: { account_id: account.id, limit: 20, ...(cursor ? { cursor } : {}) } }),
          (items) => {
            for (const entry of items) tbody.append(entryRow(entry, account.id, show));
          });
        results.replaceChildren(table, more.element);
        await more.load();
      } catch (error) {
        results.replaceChildren(h("p", { class: "error-text", role: "alert", text: error.message }));
      } finally {
        setBusy(submit, false);
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show();
    });
    return h("div", { class: "stack-lg" },
      h("div", { class: "page-head" }, h("h1", { text: "Entries" }),
        h("p", { class: "muted", text: api.isAdmin()
          ? "An account's journal entries. Reversing one asks a second admin to approve a new entry that gives the money back."
          : "An account's journal entries. Reversals are for admins." })),
      h("section", { class: "card" }, form, results));
  },
};
