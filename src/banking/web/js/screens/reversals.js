import * as api from "../api.js";
import { formatDateTime, h } from "../dom.js";
import { formatMoney } from "../money.js";
import { accountLabel, errorPanel } from "../ui.js";

// Member view: the reversals and card refunds on your accounts, each linked to the entry
// it gives back (which stays in your history unchanged).

const KINDS = { reversal: "Reversal", card_refund: "Card refund" };

async function givenBack(account) {
  const pages = await Promise.all(Object.keys(KINDS).map((kind) =>
    api.accounts.transactions(account.id, { kind, limit: 100 })));
  return pages.flatMap((page) => api.itemsOf(page)).map((item) => ({ ...item, account }));
}

async function originalOf(item) {
  // The original entry is in the same account's history, before the reversal.
  const page = await api.accounts.transactions(item.account.id, { limit: 200, to: item.created_at });
  return api.itemsOf(page).find((entry) => entry.id === item.reversed_entry_id) ?? null;
}

function row(item) {
  const original = h("span", { class: "muted small", text: "…" });
  const link = h("a", {
    href: `#/accounts/${encodeURIComponent(item.account.id)}`,
    class: "reversal-original",
    "data-entry": item.reversed_entry_id,
  }, original);
  originalOf(item).then((entry) => {
    original.textContent = entry
      ? `${entry.description || entry.kind} of ${formatDateTime(entry.created_at)}, ${formatMoney(entry.amount, entry.currency, { signed: true })}`
      : `Entry ${String(item.reversed_entry_id).slice(0, 8)}`;
  }).catch(() => {
    original.textContent = `Entry ${String(item.reversed_entry_id).slice(0, 8)}`;
  });
  return h("tr", { class: item.amount > 0 ? "credit" : "debit" },
    h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(item.created_at) }),
    h("td", { "data-label": "What" },
      h("span", { class: "tx-text", text: KINDS[item.kind] ?? item.kind }),
      item.description ? h("span", { class: "tx-detail muted small", text: item.description }) : null),
    h("td", { "data-label": "Account", text: accountLabel(item.account) }),
    h("td", { class: "num", "data-label": "Amount", text: formatMoney(item.amount, item.currency, { signed: true }) }),
    h("td", { "data-label": "Gives back" }, link));
}

export default {
  path: "/reversals",
  title: "Refunds and reversals",
  auth: true,
  nav: "Refunds",
  navIf: () => !api.isStaff(),
  async render() {
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list());
    } catch (error) {
      return errorPanel("Refunds and reversals", error);
    }
    const items = (await Promise.all(accounts.map(givenBack))).flat()
      .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const head = h("div", { class: "page-head" },
      h("h1", { text: "Refunds and reversals" }),
      h("p", { class: "muted", text:
        "Money given back to or taken back from your accounts: card refunds from merchants and "
        + "corrections by the bank. The original payment stays in your history; each line here "
        + "links to it." }));
    if (!items.length) {
      return h("div", { class: "stack-lg" }, head,
        h("section", { class: "card" }, h("p", { class: "empty", text: "No refunds or reversals." })));
    }
    const table = h("table", { class: "transactions reversals" },
      h("caption", { class: "visually-hidden", text: "Refunds and reversals, newest first" }),
      h("thead", {}, h("tr", {}, ["Date", "What", "Account", "Amount", "Gives back"].map((text) =>
        h("th", { scope: "col", text, class: text === "Amount" ? "num" : null })))),
      h("tbody", {}, items.map(row)));
    return h("div", { class: "stack-lg" }, head,
      h("section", { class: "card" }, h("div", { class: "table-wrap" }, table)));
  },
};
