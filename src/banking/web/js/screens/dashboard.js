import * as api from "../api.js";
import { h } from "../dom.js";
import { formatMoney } from "../money.js";

function accountCard(account) {
  const label = account.nickname || `${capitalize(account.type)} account`;
  return h("li", { class: "account" },
    h("div", { class: "account-head" },
      h("h3", { text: label }),
      account.status === "active" ? null
        : h("span", { class: `badge badge-${account.status}`, text: account.status })),
    h("p", { class: "account-number" },
      h("span", { class: "visually-hidden", text: "Account number " }),
      formatNumber(account.number)),
    h("dl", { class: "figures" },
      h("div", {}, h("dt", { text: "Balance" }),
        h("dd", { class: "amount", text: formatMoney(account.balance, account.currency) })),
      h("div", {}, h("dt", { text: "Available" }),
        h("dd", { text: formatMoney(account.available_balance, account.currency) }))));
}

function capitalize(text) {
  return String(text).charAt(0).toUpperCase() + String(text).slice(1);
}

// "123456789012" → "1234 5678 9012", easier to read aloud and compare.
export function formatNumber(number) {
  return String(number).replace(/(\d{4})(?=\d)/g, "$1 ");
}

async function accountsSection() {
  const heading = h("h2", { text: "Your accounts" });
  try {
    const accounts = api.itemsOf(await api.accounts.list());
    if (!accounts.length) {
      return h("section", { class: "card" }, heading,
        h("p", { class: "empty", text: "You have no accounts yet." }));
    }
    return h("section", { class: "card" }, heading,
      h("ul", { class: "accounts" }, accounts.map(accountCard)));
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      return h("section", { class: "card" }, heading,
        h("p", { class: "empty",
          text: "Accounts are not available on this server yet. Your profile is ready, "
            + "and your accounts will appear here as soon as the bank opens them." }));
    }
    return h("section", { class: "card" }, heading,
      h("p", { class: "error-text", role: "alert", text: error.message }));
  }
}

export default {
  path: "/",
  title: "Dashboard",
  auth: true,
  nav: "Dashboard",
  async render() {
    const user = api.currentUser();
    const name = user?.first_name || user?.profile?.first_name || user?.email || "";
    return h("div", { class: "stack-lg" },
      h("div", { class: "page-head" },
        h("h1", { text: "Dashboard" }),
        h("p", { class: "muted", text: name ? `Welcome back, ${name}.` : "Welcome back." })),
      await accountsSection());
  },
};
