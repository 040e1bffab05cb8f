import * as api from "../api.js";
import { h } from "../dom.js";
import { errorPanel } from "../ui.js";
import { accountLink } from "./staff.js";

function row(label, value) {
  return h("div", {}, h("dt", { text: label }), h("dd", { text: value || "—" }));
}

export default {
  path: "/staff/people/:id",
  title: "Person",
  auth: true,
  async render({ params }) {
    let holder;
    let accounts;
    try {
      holder = await api.staff.holder(params.id);
      accounts = api.itemsOf(await api.staff.accounts({ owner_id: holder.user_id, limit: 50 }));
    } catch (error) {
      return errorPanel("Person", error);
    }
    const address = holder.address;
    return h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("p", { class: "breadcrumb" }, h("a", { href: "#/staff", text: "Staff console" }), " / Person"),
        h("h1", { text: `${holder.first_name} ${holder.last_name}` }),
        h("dl", { class: "summary" },
          row("Email", holder.email),
          row("Phone", holder.phone),
          row("Date of birth", holder.date_of_birth),
          row("Address", address ? [address.line1, address.line2, address.postal_code, address.city,
            address.country].filter(Boolean).join(", ") : null),
          row("Customer since", new Intl.DateTimeFormat(undefined, { dateStyle: "medium" }).format(new Date(holder.created_at)))),
        api.isAdmin() ? h("p", {}, h("a", { href: `#/staff/audit?user=${holder.user_id}`, text: "This person's audit trail" })) : null),
      h("section", { class: "card" },
        h("h2", { text: "Accounts" }),
        accounts.length ? h("ul", { class: "results-list" }, accounts.map(accountLink))
          : h("p", { class: "empty", text: "No accounts." })));
  },
};
