// Pieces shared by several screens: account labels, the transactions table, "load more"
// pagination, and the panel shown when a screen cannot load.

import { field, formatDateTime, formValues, h, showErrors } from "./dom.js";
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

// "Card payment: Corner Café" → "Corner Café".
export function merchantOf(item) {
  return String(item.description || "payment").replace(/^Card payment:\s*/, "");
}

// What a line is, in words: "Card · Corner Café", "From Grace Hopper", "Cash withdrawal".
// `counterparty_name` is the other side as the API names it for this account's holder
// (null for cash); without it the line falls back to the description and the number.
export function counterpartyText(item) {
  const number = item.counterparty_account_number;
  const name = item.counterparty_name;
  if (item.kind === "card_capture" || item.kind === "card_payment") {
    return `Card · ${name || merchantOf(item)}`;
  }
  if (item.kind === "card_refund" && name) return `Card refund · ${name}`;
  const way = item.amount > 0 ? "From" : "To";
  if (name) return `${way} ${name}`;
  if (number) return `${way} account ·· ${String(number).slice(-4)}`;
  if (item.kind === "deposit") return "Cash deposit";
  if (item.kind === "withdrawal") return "Cash withdrawal";
  return KIND_LABELS[item.kind] ?? capitalize(String(item.kind).replace(/_/g, " "));
}

export function describeTransaction(item) {
  const kind = KIND_LABELS[item.kind] ?? capitalize(String(item.kind).replace(/_/g, " "));
  const card = item.kind === "card_capture" || item.kind === "card_payment";
  return { kind, text: card ? merchantOf(item) : item.description || kind, detail: counterpartyText(item) };
}

// A table that may be wider than the screen scrolls inside a region keyboard users can
// focus (and so scroll with the arrow keys).
export function scrollRegion(table, label = null) {
  const name = label ?? table.querySelector("caption")?.textContent ?? "Table";
  return h("div", { class: "table-wrap", role: "region", tabindex: "0", "aria-label": name }, table);
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
  return { table: scrollRegion(table, caption), add, tbody };
}

function transactionRow(item, showAccount) {
  const { text, detail } = describeTransaction(item);
  const declined = item.status === "declined";
  const amount = formatMoney(item.amount, item.currency, { signed: true });
  return h("tr", { class: `tx ${declined ? "declined" : item.amount > 0 ? "credit" : "debit"}` },
    h("td", { class: "nowrap tx-date", "data-label": "Date", text: formatDateTime(item.created_at) }),
    h("td", { class: "tx-desc", "data-label": "Description" },
      h("span", { class: "tx-text", text: text }),
      declined
        ? h("span", { class: "badge badge-declined", text: REASONS[item.decline_reason] ?? "Declined" })
        : null,
      detail !== text ? h("span", { class: "tx-detail muted small", text: detail }) : null),
    h("td", { class: "num amount-cell tx-amount", "data-label": "Amount" },
      declined ? h("s", { text: amount }) : amount),
    h("td", { class: "num muted tx-balance", "data-label": showAccount ? "Account" : "Balance" },
      showAccount ? showAccount(item)
        : item.balance_after === null || item.balance_after === undefined ? "—"
          : formatMoney(item.balance_after, item.currency)));
}

// A "Load more" button that fetches the next page with the cursor of the last one.
// With `fill`, one load follows the cursor until it has that many items (at most
// FILL_PAGES pages): a search page may come back short, or empty, with more to look at.
const FILL_PAGES = 8;

export function loadMore(fetchPage, onItems, label = "Load more", { fill = 0 } = {}) {
  let cursor = null;
  const button = h("button", { type: "button", class: "button secondary", hidden: true }, label);
  const status = h("p", { class: "muted small", role: "status" });
  const load = async () => {
    button.disabled = true;
    try {
      let got = 0;
      let pages = 0;
      do {
        const page = await fetchPage(cursor);
        const items = page.items ?? [];
        onItems(items);
        got += items.length;
        pages += 1;
        cursor = page.next_cursor ?? null;
      } while (fill && cursor && got < fill && pages < FILL_PAGES);
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

// A modal confirmation for actions that cannot be undone by a click (freeze, close,
// cancel). With `reasonLabel` a reason is required and returned. Resolves to
// `{ reason }` when confirmed, `null` when dismissed.
export function confirmAction({ title, text, confirmLabel, reasonLabel = null, danger = true }) {
  return new Promise((resolve) => {
    const form = h("form", { class: "stack", novalidate: true, method: "dialog" },
      h("h2", { id: "confirm-dialog-title", text: title }),
      text ? h("p", { text }) : null,
      reasonLabel ? field({ label: reasonLabel, name: "reason", maxlength: 140, autocomplete: "off" }) : null);
    const ok = h("button", { type: "submit", class: `button ${danger ? "danger" : "primary inline"}`, text: confirmLabel });
    const cancel = h("button", { type: "button", class: "button secondary", text: "Cancel" });
    form.append(h("div", { class: "actions" }, ok, cancel));
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "confirm-dialog-title" }, form);
    let answer = null;
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = reasonLabel ? formValues(form).reason : null;
      if (reasonLabel && !reason) {
        showErrors(form, { message: "Give a reason: it is kept in the audit log.",
          errors: [{ field: "reason", reason: "fill this in" }] });
        return;
      }
      answer = { reason };
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A refused movement explained with the figures ("You tried to send $99,999.99; $2,374.50
// is available."), for the codes where figures help; other errors keep their message.
export function refusalMessage(error, account, amount) {
  const money = (value) => formatMoney(value, account.currency);
  if (error.code === "insufficient_funds") {
    return `Not enough money: ${money(amount)} is more than the ${money(account.available_balance)} `
      + `available in ${accountLabel(account)}${account.held ? ` (${money(account.held)} is on hold)` : ""}.`;
  }
  if (error.code === "daily_limit_exceeded") {
    return `This would take today's outgoing payments above the account's daily limit of `
      + `${money(account.daily_outgoing_limit)}.`;
  }
  if (error.code === "account_frozen") {
    return "This account is frozen: nothing can leave it. Contact support.";
  }
  return error.message;
}
