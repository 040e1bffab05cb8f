import * as api from "../api.js";
import { h } from "../dom.js";
import { formatMoney } from "../money.js";
import { accountLabel, formatNumber, statusBadge, transactionsTable } from "../ui.js";

export { formatNumber } from "../ui.js";

function accountCard(account) {
  return h("li", { class: "account" },
    h("div", { class: "account-head" },
      h("h3", {}, h("a", { href: `#/accounts/${account.id}`, text: accountLabel(account) })),
      statusBadge(account.status)),
    h("p", { class: "account-number" },
      h("span", { class: "visually-hidden", text: "Account number " }),
      formatNumber(account.number)),
    h("dl", { class: "figures" },
      h("div", {}, h("dt", { text: "Balance" }),
        h("dd", { class: "amount", text: formatMoney(account.balance, account.currency) })),
      h("div", {}, h("dt", { text: "Available" }),
        h("dd", { text: formatMoney(account.available_balance, account.currency) }))));
}

function totals(accounts) {
  const byCurrency = new Map();
  for (const account of accounts) {
    byCurrency.set(account.currency, (byCurrency.get(account.currency) ?? 0n) + BigInt(account.balance));
  }
  return [...byCurrency].map(([currency, sum]) => formatMoney(sum.toString(), currency)).join(" · ");
}

async function recentActivity(accounts) {
  const pages = await Promise.all(accounts.map((account) =>
    api.accounts.transactions(account.id, { limit: 5 })
      .then((page) => page.items.map((item) => ({ ...item, account })))
      .catch(() => [])));
  const items = pages.flat()
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
    .slice(0, 8);
  const heading = h("h2", { text: "Recent activity" });
  if (!items.length) {
    return h("section", { class: "card" }, heading,
      h("p", { class: "empty", text: "No activity yet. Deposit money to get started." }));
  }
  const { table, add } = transactionsTable("Recent activity across your accounts", {
    showAccount: (item) => `${accountLabel(item.account)} ·· ${item.account.number.slice(-4)}`,
  });
  add(items);
  return h("section", { class: "card" }, heading, table);
}

export default {
  path: "/",
  title: "Dashboard",
  auth: true,
  nav: "Dashboard",
  async render() {
    const user = api.currentUser();
    const name = user?.profile?.first_name || user?.email || "";
    const head = h("div", { class: "page-head head-with-actions" },
      h("div", {},
        h("h1", { text: "Dashboard" }),
        h("p", { class: "muted", text: name ? `Welcome back, ${name}.` : "Welcome back." })),
      h("div", { class: "head-actions" },
        h("a", { class: "button secondary", href: "#/accounts/new", text: "Open an account" }),
        h("a", { class: "button primary inline", href: "#/transfer", text: "Move money" })));
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list());
    } catch (error) {
      return h("div", { class: "stack-lg" }, head, h("section", { class: "card" },
        h("h2", { text: "Your accounts" }),
        h("p", { class: "error-text", role: "alert", text: error.message })));
    }
    if (!accounts.length) {
      return h("div", { class: "stack-lg" }, head, h("section", { class: "card" },
        h("h2", { text: "Your accounts" }),
        h("p", { class: "empty" },
          api.isStaff() && !user?.profile
            ? "Staff users have no accounts. Use the Staff screen to look across the bank."
            : "You have no accounts yet. ",
          api.isStaff() && !user?.profile ? null
            : h("a", { href: "#/accounts/new", text: "Open your first account" }))));
    }
    return h("div", { class: "stack-lg" }, head,
      h("section", { class: "card" },
        h("div", { class: "section-head" },
          h("h2", { text: "Your accounts" }),
          h("p", { class: "muted total" }, "Total ", h("strong", { text: totals(accounts) }))),
        h("ul", { class: "accounts" }, accounts.map(accountCard))),
      await recentActivity(accounts));
  },
};
