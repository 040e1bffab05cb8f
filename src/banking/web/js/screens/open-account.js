import * as api from "../api.js";
import { clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { select } from "../ui.js";

const CURRENCIES = ["USD", "EUR", "GBP", "CHF", "CAD", "AUD", "JPY"];

export default {
  path: "/accounts/new",
  title: "Open an account",
  auth: true,
  render({ navigate }) {
    const submit = h("button", { type: "submit", class: "button primary", text: "Open account" });
    const form = h("form", { class: "stack", novalidate: true },
      select({ label: "Type", name: "type", value: "checking", options: [
        ["checking", "Checking — for everyday spending"],
        ["savings", "Savings — to put money aside"]] }),
      select({ label: "Currency", name: "currency", value: "USD",
        options: CURRENCIES.map((code) => [code, code]) }),
      field({ label: "Nickname", name: "nickname", required: false, maxlength: 60,
        hint: "For example “Holidays”. You can change it later." }),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const values = formValues(form);
      setBusy(submit, true, "Opening…");
      try {
        const account = await api.accounts.open({
          type: values.type, currency: values.currency,
          ...(values.nickname ? { nickname: values.nickname } : {}),
        });
        flash(`Your ${account.type} account ${account.number} is open.`, { next: true });
        navigate(`/accounts/${account.id}`);
      } catch (error) {
        showErrors(form, error);
        setBusy(submit, false);
      }
    });
    return h("section", { class: "card narrow" },
      h("div", { class: "page-head" },
        h("h1", { text: "Open an account" }),
        h("p", { class: "muted", text: "It is free and ready to use at once." })),
      form);
  },
};
