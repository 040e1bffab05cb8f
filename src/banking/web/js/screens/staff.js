import * as api from "../api.js";
import { field, formValues, h, setBusy } from "../dom.js";
import { icon } from "../icons.js";
import { formatMoney } from "../money.js";
import { capitalize, formatNumber, statusBadge } from "../ui.js";

// The staff console's front page: one search box for people (name or email) and accounts
// (number); each result opens its detail page.

function personLink(holder) {
  return h("li", {}, h("a", { href: `#/staff/people/${holder.id}` },
    h("span", {}, h("span", { class: "main", text: `${holder.first_name} ${holder.last_name}` }),
      h("span", { class: "sub", text: ` · ${holder.email}` })),
    h("span", { class: "sub", text: "Person" })));
}

export function accountLink(account) {
  return h("li", {}, h("a", { href: `#/staff/accounts/${account.id}` },
    h("span", {},
      h("span", { class: "main mono", text: formatNumber(account.number) }),
      h("span", { class: "sub", text: ` · ${capitalize(account.type)} · ${account.currency}` }),
      statusBadge(account.status)),
    h("span", { class: "sub", text: formatMoney(account.balance, account.currency) })));
}

async function find(text) {
  const query = text.trim();
  const digits = query.replace(/\s/g, "");
  if (/^\d{12}$/.test(digits)) {
    return { people: [], accounts: api.itemsOf(await api.staff.accounts({ number: digits, limit: 5 })) };
  }
  if (query.includes("@")) {
    const people = api.itemsOf(await api.staff.holders({ email: query, limit: 5 }));
    return { people, accounts: [] };
  }
  return { people: api.itemsOf(await api.staff.holders({ name: query, limit: 20 })), accounts: [] };
}

export default {
  path: "/staff",
  title: "Staff console",
  auth: true,
  nav: "Staff",
  icon: "staff",
  tab: true,
  navIf: () => api.isStaff(),
  async render({ query, navigate }) {
    if (!api.isStaff()) {
      return h("section", { class: "card" }, h("h1", { text: "Staff console" }),
        h("p", { class: "notice", text: "This screen is for bank staff only." }));
    }
    const submit = h("button", { type: "submit", class: "button primary inline" }, icon("search", { size: 18 }), "Search");
    const form = h("form", { class: "search-bar", role: "search", "aria-label": "Search people and accounts", novalidate: true },
      field({ label: "Name, email or account number", name: "q", required: false, autocomplete: "off",
        value: query.q ?? "", placeholder: "e.g. Grace Hopper, grace@example.com, 1234 5678 9012" }),
      submit);
    const results = h("div", { "aria-live": "polite" });
    const search = async (text) => {
      if (!text.trim()) {
        results.replaceChildren(h("p", { class: "muted", text: "Search by a person's name or email, or an account's number." }));
        return;
      }
      setBusy(submit, true, "Searching…");
      try {
        const { people, accounts } = await find(text);
        const total = people.length + accounts.length;
        results.replaceChildren(
          h("h2", { text: total ? `${total} result${total === 1 ? "" : "s"}` : "No results" }),
          total ? h("ul", { class: "results-list" }, people.map(personLink), accounts.map(accountLink))
            : h("p", { class: "empty", text: "Nobody and no account matches. Check the spelling or try part of the name." }));
      } catch (error) {
        results.replaceChildren(h("p", { class: "error-text", role: "alert", text: error.message }));
      } finally {
        setBusy(submit, false);
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = formValues(form).q ?? "";
      if (text !== (query.q ?? "")) navigate(`/staff?q=${encodeURIComponent(text)}`);
      else search(text);
    });
    await search(query.q ?? "");
    return h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("div", { class: "page-head" }, h("h1", { text: "Staff console" }),
          h("p", { class: "muted", text: api.isAdmin()
            ? "Find people and accounts; freeze or unfreeze an account from its page; read the audit log."
            : "Find people and accounts. Freezing and the audit log are for admins." })),
        form),
      h("section", { class: "card" }, results));
  },
};
