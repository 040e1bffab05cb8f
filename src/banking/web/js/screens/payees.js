import * as api from "../api.js";
import { clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { errorPanel, formatNumber } from "../ui.js";

// Saved payees: add one by account number (the bank shows whose account it is, masked),
// rename or remove it. A new payee has a cooldown during which large transfers to it are
// declined (new_payee_limit); the list says until when.
export default {
  path: "/payees",
  title: "Payees",
  auth: true,
  nav: "Payees",
  async render({ navigate }) {
    let payees;
    try {
      payees = api.itemsOf(await api.request("GET", "/v1/payees"));
    } catch (error) {
      return errorPanel("Payees", error);
    }
    const submit = h("button", { type: "submit", class: "button primary", text: "Add payee" });
    const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "add-payee" },
      h("h2", { id: "add-payee", text: "Add a payee" }),
      field({ label: "Name", name: "name", maxlength: 100, hint: "Your name for them, e.g. Landlord." }),
      field({ label: "Account number", name: "account_number", inputmode: "numeric",
        autocomplete: "off", maxlength: 14, hint: "12 digits." }),
      field({ label: "Nickname", name: "nickname", required: false, maxlength: 60 }),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const values = formValues(form);
      const number = (values.account_number || "").replace(/\s/g, "");
      const problems = [];
      if (!values.name) problems.push({ field: "name", reason: "enter a name" });
      if (!/^\d{12}$/.test(number)) {
        problems.push({ field: "account_number", reason: "enter the 12 digits of the account number" });
      }
      if (problems.length) {
        showErrors(form, { message: "Check the highlighted fields.", errors: problems });
        return;
      }
      setBusy(submit, true, "Adding…");
      try {
        const payee = await api.request("POST", "/v1/payees", { body: {
          name: values.name, account_number: number,
          ...(values.nickname ? { nickname: values.nickname } : {}),
        } });
        flash(`${payee.name} (${payee.holder_name}) is saved as a payee.`, { next: true });
        navigate("/payees");
      } catch (error) {
        showErrors(form, error.status === 404
          ? { ...error, message: "No open account has this number.",
            errors: [{ field: "account_number", reason: "no open account has this number" }] }
          : error);
        setBusy(submit, false);
      }
    });

    const list = payees.length
      ? h("ul", { class: "payee-list" }, payees.map((payee) => payeeItem(payee, () => navigate("/payees"))))
      : h("p", { class: "empty", text: "No payees yet." });
    return h("section", { class: "card narrow" },
      h("div", { class: "page-head" },
        h("h1", { text: "Payees" }),
        h("p", { class: "muted", text: "People and accounts you pay often." })),
      list, form);
  },
};

function payeeItem(payee, reload) {
  const remove = h("button", { type: "button", class: "button danger small", text: "Remove",
    "aria-label": `Remove ${payee.name}` });
  remove.addEventListener("click", async () => {
    setBusy(remove, true, "Removing…");
    try {
      await api.request("DELETE", `/v1/payees/${encodeURIComponent(payee.id)}`);
      flash(`${payee.name} is removed.`, { next: true });
      reload();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(remove, false);
    }
  });
  return h("li", { class: "payee" },
    h("div", {},
      h("strong", { text: payee.name }),
      payee.nickname ? h("span", { class: "muted", text: ` (${payee.nickname})` }) : null,
      h("p", { class: "muted small",
        text: `${payee.holder_name} · ${formatNumber(payee.account_number)} · ${payee.currency}` }),
      payee.cooldown_ends_at
        ? h("p", { class: "hint", text: `New payee: larger transfers possible from ${formatDateTime(payee.cooldown_ends_at)}.` })
        : null),
    h("div", { class: "actions" },
      h("a", { class: "button secondary small", href: `#/transfer?payee=${encodeURIComponent(payee.id)}`,
        text: "Pay", "aria-label": `Pay ${payee.name}` }),
      h("a", { class: "button secondary small", href: `#/scheduled?payee=${encodeURIComponent(payee.id)}`,
        text: "Schedule" }),
      remove));
}
