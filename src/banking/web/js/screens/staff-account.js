import * as api from "../api.js";
import { clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount, toDecimalString } from "../money.js";
import { capitalize, confirmAction, errorPanel, formatNumber, loadMore, statusBadge, transactionsTable } from "../ui.js";

function row(label, value) {
  return h("div", {}, h("dt", { text: label }), value instanceof Node ? h("dd", {}, value) : h("dd", { text: value || "—" }));
}

const ALREADY_PENDING = {
  account_unfreeze: "An unfreeze of this account already waits for a second admin (see Approvals).",
  daily_limit_raise: "A raise of this account's limit already waits for a second admin (see Approvals).",
};

// Freeze at once, or ask to unfreeze (a second admin approves it on the Approvals
// screen), after a confirmation with a reason that goes to the audit log.
function freezeButton(account, onDone) {
  const freezing = account.status === "active";
  const verb = freezing ? "Freeze" : "Unfreeze";
  const button = h("button", { type: "button", class: `button ${freezing ? "danger" : "secondary"}`,
    text: `${verb} account`, "aria-label": `${verb} account ${account.number}` });
  button.addEventListener("click", async () => {
    const answer = await confirmAction({
      title: `${verb} account ${formatNumber(account.number)}?`,
      text: freezing ? "Nothing can leave a frozen account; money can still come in. The owner is told to contact support."
        : "Lifting a freeze needs a second admin: the account stays frozen until another admin approves.",
      confirmLabel: freezing ? "Freeze account" : "Send for approval",
      reasonLabel: "Reason (kept in the audit log)", danger: freezing,
    });
    if (!answer) return;
    setBusy(button, true, freezing ? "Freezing…" : "Sending…");
    try {
      // Shown once the page is drawn again (a redraw clears the messages shown before it).
      if (freezing) {
        const updated = await api.staff.freeze(account.id, answer.reason);
        flash(`Account ${updated.number} is now ${updated.status}.`, { next: true });
      } else {
        await api.staff.unfreeze(account.id, answer.reason);
        flash(`Unfreeze of account ${account.number} sent for approval: it stays frozen until another admin approves.`,
          { next: true });
      }
      await onDone();
    } catch (error) {
      flash(error.code === "approval_already_pending" ? ALREADY_PENDING.account_unfreeze : error.message,
        { kind: "error" });
      setBusy(button, false);
    }
  });
  return button;
}

// The daily outgoing limit: lowering it applies at once; a raise above the bank's
// default goes to a second admin. An empty box returns the account to the default.
function limitForm(account, onDone) {
  const form = h("form", { class: "stack limits", novalidate: true, "aria-label": "Daily outgoing limit" },
    field({ label: `Daily outgoing limit (${account.currency})`, name: "daily_outgoing_limit", required: false,
      inputmode: "decimal", autocomplete: "off", value: toDecimalString(account.daily_outgoing_limit, account.currency),
      hint: "Lowering applies at once; a raise above the bank's default needs a second admin. "
        + "Leave it empty for the bank's default." }),
    field({ label: "Why it changes (kept in the audit log)", name: "reason", maxlength: 140, autocomplete: "off" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button secondary", text: "Set limit" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const errors = [];
    const limit = values.daily_outgoing_limit ? parseAmount(values.daily_outgoing_limit, account.currency) : null;
    if (values.daily_outgoing_limit && limit === null) {
      errors.push({ field: "daily_outgoing_limit", reason: "enter an amount like 2500.00, or leave it empty" });
    }
    if (!values.reason) errors.push({ field: "reason", reason: "give a reason: it is kept in the audit log" });
    if (errors.length) {
      showErrors(form, { message: "Check the highlighted fields.", errors });
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    setBusy(submit, true, "Saving…");
    try {
      const answer = await api.staff.setDailyLimit(account.id, limit, values.reason);
      if (answer.kind === "daily_limit_raise") {
        flash(`Raise to ${formatMoney(answer.daily_outgoing_limit, account.currency)} a day sent for approval: `
          + "the limit changes when another admin approves.", { next: true });
      } else {
        flash(`Daily outgoing limit set to ${formatMoney(answer.daily_outgoing_limit, account.currency)}.`, { next: true });
      }
      await onDone();
    } catch (error) {
      const message = error.code === "approval_already_pending" ? ALREADY_PENDING.daily_limit_raise : error.message;
      showErrors(form, { ...error, message, errors: error.errors });
      setBusy(submit, false);
    }
  });
  return form;
}

const PENDING_TEXT = {
  account_unfreeze: () => "Unfreeze",
  daily_limit_raise: (approval) => `Daily limit raise to ${formatMoney(approval.daily_outgoing_limit, approval.currency)}`,
};

// What waits for a second admin on this account (staff actions only).
function pendingList(approvals) {
  const mine = approvals.filter((approval) => PENDING_TEXT[approval.kind]);
  if (!mine.length) return null;
  return h("div", { class: "notice pending-approvals", role: "status" },
    h("p", { text: "Waiting for a second admin:" }),
    h("ul", {}, mine.map((approval) => h("li", {},
      `${PENDING_TEXT[approval.kind](approval)}, asked ${formatDateTime(approval.created_at)}`
        + (approval.description ? ` (${approval.description})` : "") + ". ",
      h("a", { href: "#/approvals", text: "Open approvals" })))));
}

// Staff entries filtered by this account carry its balance after each (from the ledger's
// postings; null for a declined attempt, which moved nothing); the amount is signed from
// this account's view.
function signed(account, add) {
  return (entries) => add(entries.map((entry) => ({
    ...entry,
    amount: entry.source_account_id === account.id ? -entry.amount : entry.amount,
  })));
}

export default {
  path: "/staff/accounts/:id",
  title: "Account (staff)",
  auth: true,
  async render({ params, navigate, path }) {
    let account;
    let owner = null;
    let pending = [];
    try {
      account = await api.staff.account(params.id);
      if (account.owner_id) {
        owner = api.itemsOf(await api.staff.holders({ user_id: account.owner_id, limit: 1 }))[0] ?? null;
      }
      pending = api.itemsOf(await api.request("GET", "/v1/approvals",
        { query: { account_id: account.id, status: "pending_approval", limit: 20 } }));
    } catch (error) {
      return errorPanel("Account", error);
    }
    const { table, add } = transactionsTable("Latest journal entries");
    const more = loadMore((cursor) => api.staff.entries({ account_id: account.id, limit: 25, cursor }),
      signed(account, add));
    // While an unfreeze waits for a second admin, the list below says so instead.
    const unfreezing = pending.some((approval) => approval.kind === "account_unfreeze");
    const canFreeze = api.isAdmin() && (account.status === "active" || (account.status === "frozen" && !unfreezing));
    const view = h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("p", { class: "breadcrumb" }, h("a", { href: "#/staff", text: "Staff console" }), " / Account"),
        h("h1", {}, `${capitalize(account.type)} account ${formatNumber(account.number)}`, statusBadge(account.status)),
        h("dl", { class: "summary" },
          row("Owner", owner ? h("a", { href: `#/staff/people/${owner.id}`, text: `${owner.first_name} ${owner.last_name} (${owner.email})` }) : "—"),
          row("Balance", formatMoney(account.balance, account.currency)),
          row("Available", formatMoney(account.available_balance, account.currency)),
          row("On hold", formatMoney(account.held, account.currency)),
          row("Daily outgoing limit", formatMoney(account.daily_outgoing_limit, account.currency)),
          row("Opened", formatDateTime(account.created_at))),
        pendingList(pending),
        canFreeze ? h("div", { class: "actions" }, freezeButton(account, async () => navigate(path))) : null,
        !api.isAdmin() ? h("p", { class: "muted small", text: "Only admins can freeze accounts or change limits." }) : null),
      api.isAdmin() && account.status !== "closed"
        ? h("section", { class: "card" }, h("h2", { text: "Limits" }), limitForm(account, async () => navigate(path)))
        : null,
      h("section", { class: "card" }, h("h2", { text: "Transactions" }), table, more.element));
    await more.load();
    return view;
  },
};
