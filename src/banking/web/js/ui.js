// Pieces shared by several screens: account labels, the transactions table, "load more"
// pagination, and the panel shown when a screen cannot load.

import { formatDateTime, h } from "./dom.js";
import { formatMoney } from "./money.js";

export function capitalize(text) {
  return String(text).charAt(0).toUpperCase() + String(text).slice(1);
}

// "123456789012" → "1234 5678 9012", easier to read aloud and compare.
export function formatNumber(number) {
  return String(number).replace(/(\d{4})(?=\d)/g, "$1 ");
}

export function accountLabel(account) {
  return account.nickname || `${capitalize(account.type)} account`;
}

// "Checking account ·· 9012 (USD 1,234.00)" for pickers.
export function accountOption(account, { withBalance = true } = {}) {
  const tail = `·· ${String(account.number).slice(-4)}`;
  const balance = withBalance ? ` — ${formatMoney(account.available_balance, account.currency)}` : "";
  return `${accountLabel(account)} ${tail}${balance}`;
}

export function statusBadge(status) {
  if (!status || status === "active" || status === "posted") return null;
  return h("span", { class: `badge badge-${status}`, text: status });
}

const KIND_LABELS = {
  deposit: "Deposit", withdrawal: "Withdrawal", transfer: "Transfer",
  card_capture: "Card payment", card_payment: "Card payment",
};

const REASONS = {
  insufficient_funds: "Insufficient funds",
  account_frozen: "Account frozen",
  account_closed: "Account closed",
  currency_mismatch: "Currency mismatch",
  amount_too_large: "Amount too large",
  balance_limit_exceeded: "Balance limit",
  daily_limit_exceeded: "Daily limit reached",
  same_account: "Same account",
};

export function describeTransaction(item) {
  const kind = KIND_LABELS[item.kind] ?? capitalize(String(item.kind).replace(/_/g, " "));
  const who = item.counterparty_account_number ? ` · ${item.counterparty_account_number}` : "";
  return { kind, text: item.description || kind, detail: `${kind}${who}` };
}

// A table of transactions; `tbody` is returned too so that more pages can be appended.
export function transactionsTable(caption, { showAccount = null } = {}) {
  const tbody = h("tbody");
  const table = h("table", { class: "transactions" },
    h("caption", { class: "visually-hidden", text: caption }),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", text: "Date" }),
      h("th", { scope: "col", text: "Description" }),
      h("th", { scope: "col", class: "num", text: "Amount" }),
      h("th", { scope: "col", class: "num", text: showAccount ? "Account" : "Balance" }))));
  table.append(tbody);
  const add = (items) => {
    for (const item of items) tbody.append(transactionRow(item, showAccount));
  };
  return { table: h("div", { class: "table-wrap" }, table), add, tbody };
}

function transactionRow(item, showAccount) {
  const { text, detail } = describeTransaction(item);
  const declined = item.status === "declined";
  const amount = formatMoney(item.amount, item.currency, { signed: true });
  return h("tr", { class: declined ? "declined" : item.amount > 0 ? "credit" : "debit" },
    h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(item.created_at) }),
    h("td", { "data-label": "Description" },
      h("span", { class: "tx-text", text: text }),
      declined
        ? h("span", { class: "badge badge-declined", text: REASONS[item.decline_reason] ?? "Declined" })
        : null,
      detail !== text ? h("span", { class: "tx-detail muted small", text: detail }) : null),
    h("td", { class: "num amount-cell", "data-label": "Amount" },
      declined ? h("s", { text: amount }) : amount),
    h("td", { class: "num muted", "data-label": showAccount ? "Account" : "Balance" },
      showAccount ? showAccount(item)
        : item.balance_after === null || item.balance_after === undefined ? "—"
          : formatMoney(item.balance_after, item.currency)));
}

// A "Load more" button that fetches the next page with the cursor of the last one.
export function loadMore(fetchPage, onItems, label = "Load more") {
  let cursor = null;
  const button = h("button", { type: "button", class: "button secondary", hidden: true }, label);
  const status = h("p", { class: "muted small", role: "status" });
  const load = async () => {
    button.disabled = true;
    try {
      const page = await fetchPage(cursor);
      onItems(page.items ?? []);
      cursor = page.next_cursor ?? null;
      button.hidden = !cursor;
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
      status.classList.add("error-text");
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener("click", load);
  return { element: h("div", { class: "actions" }, button, status), load };
}

export function errorPanel(title, error) {
  return h("section", { class: "card" },
    h("h1", { text: title }),
    h("p", { class: "error-text", role: "alert", text: error.message }),
    error.requestId ? h("p", { class: "request-id", text: `Reference: ${error.requestId}` }) : null);
}

export function select({ label, name, options, value, hint }) {
  const id = `${name}-select`;
  return h("div", { class: "field", "data-field": name },
    h("label", { for: id, text: label }),
    hint ? h("p", { class: "hint", id: `${id}-hint`, text: hint }) : null,
    h("select", { id, name, "aria-describedby": hint ? `${id}-hint` : null },
      options.map(([optionValue, text]) =>
        h("option", { value: optionValue, selected: optionValue === value, text }))),
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }));
}
