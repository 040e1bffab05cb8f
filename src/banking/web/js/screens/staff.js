import * as api from "../api.js";
import { field, formatDateTime, formValues, h, setBusy } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney } from "../money.js";
import { formatNumber, loadMore, select, statusBadge } from "../ui.js";

// Staff view: search accounts across the bank (support and admin), freeze and unfreeze
// them (admin), and read the audit log (admin).

function accountRow(account) {
  const cells = [
    h("td", { "data-label": "Number", class: "mono", text: formatNumber(account.number) }),
    h("td", { "data-label": "Type" }, `${account.type} · ${account.currency}`, statusBadge(account.status)),
    h("td", { "data-label": "Balance", class: "num", text: formatMoney(account.balance, account.currency) }),
    h("td", { "data-label": "Owner", class: "muted small mono", text: account.owner_id ?? "—" }),
  ];
  const actions = h("td", { "data-label": "Action" });
  if (api.isAdmin() && (account.status === "active" || account.status === "frozen")) {
    const freezing = account.status === "active";
    const button = h("button", {
      type: "button", class: `button small ${freezing ? "danger" : "secondary"}`,
      "aria-label": `${freezing ? "Freeze" : "Unfreeze"} account ${account.number}`,
      text: freezing ? "Freeze" : "Unfreeze",
    });
    button.addEventListener("click", async () => {
      setBusy(button, true, freezing ? "Freezing…" : "Unfreezing…");
      try {
        const updated = freezing
          ? await api.staff.freeze(account.id, "Frozen from the staff view")
          : await api.staff.unfreeze(account.id, "Unfrozen from the staff view");
        flash(`Account ${updated.number} is now ${updated.status}.`);
        row.replaceWith(accountRow(updated));
      } catch (error) {
        flash(error.message, { kind: "error" });
        setBusy(button, false);
      }
    });
    actions.append(button);
  } else {
    actions.append(h("span", { class: "muted small", text: api.isAdmin() ? "—" : "Admins only" }));
  }
  const row = h("tr", {}, cells, actions);
  return row;
}

function accountsSearch() {
  const tbody = h("tbody");
  const results = h("div", { class: "results" });
  const submit = h("button", { type: "submit", class: "button primary inline", text: "Search" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Search accounts" },
    field({ label: "Account number", name: "number", required: false, inputmode: "numeric", maxlength: 14 }),
    field({ label: "Owner's email", name: "email", required: false, type: "email" }),
    select({ label: "Status", name: "status", value: "", options: [
      ["", "Any"], ["active", "Active"], ["frozen", "Frozen"], ["closed", "Closed"]] }),
    h("div", { class: "filters-submit" }, submit));
  const search = async () => {
    const values = formValues(form);
    const query = { limit: 20 };
    if (values.number) query.number = values.number.replace(/\s/g, "");
    if (values.status) query.status = values.status;
    setBusy(submit, true, "Searching…");
    try {
      if (values.email) {
        const holders = api.itemsOf(await api.staff.holders({ email: values.email, limit: 1 }));
        if (!holders.length) {
          results.replaceChildren(h("p", { class: "empty", text: "No customer has this email." }));
          return;
        }
        query.owner_id = holders[0].user_id;
      }
      tbody.replaceChildren();
      const table = h("div", { class: "table-wrap" }, h("table", { class: "staff-accounts" },
        h("caption", { class: "visually-hidden", text: "Accounts found" }),
        h("thead", {}, h("tr", {}, ["Number", "Type", "Balance", "Owner", "Action"].map((t) =>
          h("th", { scope: "col", text: t, class: t === "Balance" ? "num" : null })))),
        tbody));
      const empty = h("p", { class: "empty", hidden: true, text: "No accounts match." });
      const more = loadMore((cursor) => api.staff.accounts({ ...query, cursor }), (items) => {
        for (const account of items) tbody.append(accountRow(account));
        empty.hidden = tbody.children.length > 0;
      });
      results.replaceChildren(table, empty, more.element);
      await more.load();
    } catch (error) {
      results.replaceChildren(h("p", { class: "error-text", role: "alert", text: error.message }));
    } finally {
      setBusy(submit, false);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  return { element: h("section", { class: "card" }, h("h2", { text: "Accounts" }), form, results), search };
}

function auditLog() {
  const tbody = h("tbody");
  const submit = h("button", { type: "submit", class: "button secondary inline", text: "Filter" });
  const form = h("form", { class: "filters", "aria-label": "Filter the audit log" },
    field({ label: "Event type", name: "event_type", required: false, hint: "e.g. account.frozen" }),
    h("div", { class: "filters-submit" }, submit));
  const body = h("div");
  const show = async () => {
    const eventType = formValues(form).event_type;
    tbody.replaceChildren();
    const more = loadMore(
      (cursor) => api.staff.audit({ limit: 20, cursor, ...(eventType ? { event_type: eventType } : {}) }),
      (items) => {
        for (const e of items) {
          tbody.append(h("tr", {},
            h("td", { "data-label": "When", class: "nowrap", text: formatDateTime(e.occurred_at) }),
            h("td", { "data-label": "Event", class: "mono", text: e.event_type }),
            h("td", { "data-label": "Outcome" }, h("span", { class: `badge badge-${e.outcome}`, text: e.outcome })),
            h("td", { "data-label": "Target", class: "muted small mono",
              text: e.target_type ? `${e.target_type} ${e.target_id ?? ""}` : "—" })));
        }
      });
    body.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden", text: "Audit events, newest first" }),
      h("thead", {}, h("tr", {}, ["When", "Event", "Outcome", "Target"].map((t) => h("th", { scope: "col", text: t })))),
      tbody)), more.element);
    await more.load();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  return { element: h("section", { class: "card" }, h("h2", { text: "Audit log" }), form, body), show };
}

export default {
  path: "/staff",
  title: "Staff",
  auth: true,
  nav: "Staff",
  navIf: () => api.isStaff(),
  async render() {
    if (!api.isStaff()) {
      return h("section", { class: "card" }, h("h1", { text: "Staff" }),
        h("p", { class: "notice", text: "This screen is for bank staff only." }));
    }
    const accounts = accountsSearch();
    const parts = [h("div", { class: "page-head" }, h("h1", { text: "Staff" }),
      h("p", { class: "muted", text: api.isAdmin()
        ? "Search accounts across the bank, freeze or unfreeze them, and read the audit log."
        : "Search accounts across the bank. Freezing and the audit log are for admins." })),
    accounts.element];
    let audit = null;
    if (api.isAdmin()) {
      audit = auditLog();
      parts.push(audit.element);
    }
    const view = h("div", { class: "stack-lg" }, parts);
    await accounts.search();
    if (audit) await audit.show();
    return view;
  },
};
