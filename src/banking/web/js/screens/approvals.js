import * as api from "../api.js";
import { field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney } from "../money.js";
import { loadMore, select } from "../ui.js";

// Four-eyes approvals. Members: their transfers waiting for the bank (the amount is held
// meanwhile) and how each was decided. Staff: the queue (large transfers, reversals,
// account unfreezes, daily-limit raises); admins approve or reject, each behind a
// confirmation, never their own requests.

const enc = encodeURIComponent;
const STATUS_TEXT = {
  pending_approval: "Waiting for approval",
  executed: "Approved and sent",
  failed: "Approved, then declined",
  rejected: "Rejected",
  expired: "Expired",
};

const DECLINE_TEXT = {
  account_not_frozen: "the account is no longer frozen",
  limit_changed: "the limit was changed since the request",
  account_closed: "the account is closed",
};

// Staff actions that lift a protection: nothing moves, so no amount is shown.
const STAFF_ACTIONS = new Set(["account_unfreeze", "daily_limit_raise"]);

// "ending 6245" from the masked number the approval carries.
function endingText(approval) {
  const number = approval.target_account_number;
  return number ? `ending ${number.slice(-4)}` : "";
}

function requestText(approval) {
  const account = approval.target_account_number ?? "—";
  switch (approval.kind) {
    case "entry_reversal": return `Reversal of entry ${String(approval.reversed_entry_id).slice(0, 8)}`;
    case "account_unfreeze": return `Unfreeze account ${endingText(approval)}`;
    case "daily_limit_raise":
      return `Raise the daily limit of account ${endingText(approval)} from `
        + `${formatMoney(approval.previous_daily_outgoing_limit, approval.currency)} to `
        + `${formatMoney(approval.daily_outgoing_limit, approval.currency)}`;
    default: return `Transfer to ${account}`;
  }
}

function amountText(approval) {
  return STAFF_ACTIONS.has(approval.kind) ? "—" : formatMoney(approval.amount, approval.currency);
}

function statusText(approval) {
  if (approval.status === "executed" && STAFF_ACTIONS.has(approval.kind)) return "Approved and applied";
  if (approval.status === "failed" && STAFF_ACTIONS.has(approval.kind)) return "Approved, then not applied";
  return STATUS_TEXT[approval.status] ?? approval.status;
}

function questionText(approval, approving) {
  if (!approving) {
    return STAFF_ACTIONS.has(approval.kind)
      ? `Reject the request (${requestText(approval)})? Nothing changes.`
      : `Reject the request for ${formatMoney(approval.amount, approval.currency)}? Any held amount is released.`;
  }
  switch (approval.kind) {
    case "entry_reversal":
      return `Give back ${formatMoney(approval.amount, approval.currency)} now (${approval.description ?? "reversal"})?`;
    case "account_unfreeze": return `Unfreeze account ${endingText(approval)} now? Money can leave it again.`;
    case "daily_limit_raise":
      return `Raise the daily limit of account ${endingText(approval)} to `
        + `${formatMoney(approval.daily_outgoing_limit, approval.currency)} now?`;
    default:
      return `Send ${formatMoney(approval.amount, approval.currency)} to ${approval.target_account_number ?? "the payee"} now?`;
  }
}

function decisionFlash(decided) {
  if (!STAFF_ACTIONS.has(decided.kind)) {
    return `${statusText(decided)}: ${formatMoney(decided.amount, decided.currency)}.`;
  }
  const reason = decided.status === "failed" ? ` (${DECLINE_TEXT[decided.decline_reason] ?? decided.decline_reason})` : "";
  return `${statusText(decided)}: ${requestText(decided)}${reason}.`;
}

const KIND_TEXT = {
  "": "Any",
  large_transfer: "Large transfers",
  entry_reversal: "Reversals",
  account_unfreeze: "Account unfreezes",
  daily_limit_raise: "Daily-limit raises",
};

function decide(approval, action, body) {
  return api.request("POST", `/v1/approvals/${enc(approval.id)}/${action}`, { body });
}

function decisionPanel(approval, action, onDone, onCancel) {
  const approving = action === "approve";
  const submit = h("button", { type: "submit", class: `button ${approving ? "primary" : "danger"}`,
    text: approving ? "Confirm approval" : "Confirm rejection" });
  const cancel = h("button", { type: "button", class: "button secondary", text: "Cancel", onclick: onCancel });
  const form = h("form", { class: "stack decision", "aria-label": approving ? "Confirm the approval" : "Confirm the rejection" },
    h("p", { role: "status", text: questionText(approval, approving) }),
    field({ label: "Reason", name: "reason", required: !approving, maxlength: 140 }),
    h("div", { class: "actions" }, submit, cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = formValues(form).reason;
    setBusy(submit, true, approving ? "Approving…" : "Rejecting…");
    try {
      const decided = await decide(approval, action, reason ? { reason } : {});
      flash(decisionFlash(decided));
      onDone(decided);
    } catch (error) {
      showErrors(form, error);
      setBusy(submit, false);
    }
  });
  return form;
}

function approvalRow(approval, reload) {
  const actions = h("td", { "data-label": "Action" });
  const row = h("tr", { class: `approval approval-${approval.status}` },
    h("td", { class: "nowrap", "data-label": "Asked", text: formatDateTime(approval.created_at) }),
    // One block, so on a phone (cells lay out in a row) the description stays under it.
    h("td", { "data-label": "Request" }, h("div", {},
      STAFF_ACTIONS.has(approval.kind) && api.isStaff()
        ? h("a", { class: "tx-text", href: `#/staff/accounts/${encodeURIComponent(approval.source_account_id)}`,
          text: requestText(approval) })
        : h("span", { class: "tx-text", text: requestText(approval) }),
      approval.description ? h("span", { class: "tx-detail muted small", text: approval.description }) : null)),
    h("td", { class: "num", "data-label": "Amount", text: amountText(approval) }),
    h("td", { "data-label": "Status" }, h("div", {},
      h("span", { class: `badge badge-${approval.status}`, text: statusText(approval) }),
      approval.status === "pending_approval"
        ? h("span", { class: "tx-detail muted small", text: `until ${formatDateTime(approval.expires_at)}` })
        : approval.status === "failed" && STAFF_ACTIONS.has(approval.kind)
        ? h("span", { class: "tx-detail muted small", text: DECLINE_TEXT[approval.decline_reason] ?? approval.decline_reason })
        : approval.reason ? h("span", { class: "tx-detail muted small", text: approval.reason }) : null)),
    actions);
  const mine = approval.maker_id === api.currentUser()?.id || approval.owner_id === api.currentUser()?.id;
  if (api.isAdmin() && approval.status === "pending_approval" && !mine) {
    const buttons = h("div", { class: "actions" });
    actions.append(buttons);
    for (const action of ["approve", "reject"]) {
      const button = h("button", { type: "button",
        class: `button small ${action === "approve" ? "primary" : "secondary"}`,
        "aria-label": `${action === "approve" ? "Approve" : "Reject"} approval ${approval.id}`,
        text: action === "approve" ? "Approve…" : "Reject…" });
      button.addEventListener("click", () => {
        row.parentElement?.querySelector(".confirm-row")?.remove();
        const panelRow = h("tr", { class: "confirm-row" });
        const cell = h("td", { colspan: "5" });
        panelRow.append(cell);
        cell.append(decisionPanel(approval, action, () => reload(), () => {
          panelRow.remove();
          button.focus();
        }));
        row.after(panelRow);
        cell.querySelector("input")?.focus();
      });
      buttons.append(button);
    }
  } else {
    actions.append(h("span", { class: "muted small",
      text: mine && approval.status === "pending_approval" ? "Needs another person" : "—" }));
  }
  return row;
}

export default {
  path: "/approvals",
  title: "Approvals",
  auth: true,
  nav: "Approvals",
  async render() {
    const staff = api.isStaff();
    const results = h("div", { class: "results" });
    const filter = h("form", { class: "filters", "aria-label": "Filter approvals" },
      select({ label: "Status", name: "status", value: staff ? "pending_approval" : "", options: [
        ["", "Any"], ...Object.entries(STATUS_TEXT)] }),
      staff ? select({ label: "Kind", name: "kind", value: "", options: Object.entries(KIND_TEXT) }) : null,
      h("div", { class: "filters-submit" },
        h("button", { type: "submit", class: "button secondary inline", text: "Filter" })));
    const show = async () => {
      const { status, kind } = formValues(filter);
      const tbody = h("tbody");
      const empty = h("p", { class: "empty", hidden: true, text: staff
        ? "Nothing waits for a decision." : "No transfers wait for the bank's approval." });
      const more = loadMore(
        (cursor) => api.request("GET", "/v1/approvals",
          { query: { limit: 20, ...(status ? { status } : {}), ...(kind ? { kind } : {}), ...(cursor ? { cursor } : {}) } }),
        (items) => {
          for (const approval of items) tbody.append(approvalRow(approval, show));
          empty.hidden = tbody.children.length > 0;
        });
      results.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "approvals" },
        h("caption", { class: "visually-hidden", text: "Approvals, newest first" }),
        h("thead", {}, h("tr", {}, ["Asked", "Request", "Amount", "Status", "Action"].map((t) =>
          h("th", { scope: "col", text: t, class: t === "Amount" ? "num" : null })))),
        tbody)), empty, more.element);
      await more.load();
    };
    filter.addEventListener("submit", (event) => {
      event.preventDefault();
      show();
    });
    const view = h("div", { class: "stack-lg" },
      h("div", { class: "page-head" }, h("h1", { text: "Approvals" }),
        h("p", { class: "muted", text: staff
          ? "Large transfers, reversals, account unfreezes and daily-limit raises wait here for a second person. "
            + "Admins approve or reject; nobody decides their own."
          : "Transfers above the bank's approval threshold wait for a second person at the bank. "
            + "The amount is held on your account meanwhile: your available balance shows it." })),
      h("section", { class: "card" }, filter, results));
    await show();
    return view;
  },
};
