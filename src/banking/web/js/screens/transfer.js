import * as api from "../api.js";
import { attempt } from "../attempt.js";
import { clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount } from "../money.js";
import { accountOption, errorPanel, formatNumber, select } from "../ui.js";

// Move money: to one of your own accounts (picked from a list) or to anyone's by account
// number. A payee's number is looked up first and the masked holder name confirmed before
// anything is sent; the confirmed transfer carries the Idempotency-Key of this attempt.
export default {
  path: "/transfer",
  title: "Move money",
  auth: true,
  nav: "Move money",
  async render({ query, navigate }) {
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list()).filter((a) => a.status !== "closed");
    } catch (error) {
      return errorPanel("Move money", error);
    }
    if (!accounts.length) {
      return h("section", { class: "card narrow" }, h("h1", { text: "Move money" }),
        h("p", { class: "empty" }, "Open an account first. ",
          h("a", { href: "#/accounts/new", text: "Open an account" })));
    }
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const from = byId.get(query.from) ?? accounts[0];
    const ownTargets = () => accounts.filter((a) => a.id !== sourceSelect.value);

    const sourceField = select({ label: "From", name: "source_account_id", value: from.id,
      options: accounts.map((a) => [a.id, accountOption(a)]) });
    const sourceSelect = sourceField.querySelector("select");
    const mode = (value, label, checked) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "to", value, checked }), label);
    const targetField = select({ label: "To my account", name: "target_account_id",
      options: [] });
    const numberField = field({ label: "Payee's account number", name: "target_account_number",
      inputmode: "numeric", autocomplete: "off", maxlength: 14,
      hint: "12 digits. We show you whose account it is before you send anything." });
    const fillTargets = () => {
      const own = ownTargets();
      targetField.querySelector("select").replaceChildren(...own.map((a) =>
        h("option", { value: a.id, text: accountOption(a, { withBalance: false }) })));
    };
    fillTargets();
    sourceSelect.addEventListener("change", fillTargets);
    const submit = h("button", { type: "submit", class: "button primary", text: "Continue" });
    const form = h("form", { class: "stack", novalidate: true },
      sourceField,
      h("fieldset", { class: "choices" }, h("legend", { text: "To" }),
        mode("own", "One of my accounts", accounts.length > 1),
        mode("other", "Someone else", accounts.length < 2)),
      targetField, numberField,
      field({ label: "Amount", name: "amount", inputmode: "decimal", autocomplete: "off",
        hint: "In the currency of the account you send from." }),
      field({ label: "Description", name: "description", required: false, maxlength: 140,
        hint: "The payee sees it." }),
      submit);
    const confirmArea = h("div", { "aria-live": "polite" });
    const showMode = () => {
      const other = formValues(form).to === "other";
      targetField.hidden = other;
      numberField.hidden = !other;
    };
    showMode();
    form.addEventListener("change", showMode);
    const current = attempt(form);
    form.addEventListener("input", () => confirmArea.replaceChildren());

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      confirmArea.replaceChildren();
      const values = formValues(form);
      const source = byId.get(values.source_account_id);
      const amount = parseAmount(values.amount, source.currency);
      const problems = [];
      if (amount === null) problems.push({ field: "amount", reason: "enter an amount greater than zero, like 25.50" });
      const number = (values.target_account_number || "").replace(/\s/g, "");
      if (values.to === "other" && !/^\d{12}$/.test(number)) {
        problems.push({ field: "target_account_number", reason: "enter the 12 digits of the account number" });
      }
      if (values.to === "own" && !values.target_account_id) {
        problems.push({ field: "target_account_id", reason: "you need a second account for this; open one first" });
      }
      if (problems.length) {
        showErrors(form, { message: "Check the highlighted fields.", errors: problems });
        return;
      }
      let payee;
      if (values.to === "other") {
        setBusy(submit, true, "Looking up…");
        try {
          payee = await api.accounts.lookup(number);
        } catch (error) {
          showErrors(form, error.status === 404
            ? { ...error, message: "No account has this number.",
              errors: [{ field: "target_account_number", reason: "no account has this number" }] }
            : error);
          setBusy(submit, false);
          return;
        }
        setBusy(submit, false);
      }
      const target = values.to === "own" ? byId.get(values.target_account_id) : null;
      const body = {
        source_account_id: source.id,
        ...(target ? { target_account_id: target.id } : { target_account_number: number }),
        amount,
        ...(values.description ? { description: values.description } : {}),
      };
      const send = h("button", { type: "button", class: "button primary", text: `Send ${formatMoney(amount, source.currency)}` });
      const cancel = h("button", { type: "button", class: "button secondary", text: "Change" });
      const mismatch = payee && payee.currency !== source.currency;
      const panel = h("section", { class: "confirm", "aria-labelledby": "confirm-heading", tabindex: "-1" },
        h("h2", { id: "confirm-heading", text: "Check and confirm" }),
        h("dl", { class: "summary" },
          h("div", {}, h("dt", { text: "From" }), h("dd", { text: accountOption(source, { withBalance: false }) })),
          h("div", {}, h("dt", { text: "To" }), h("dd", { class: "payee" },
            target ? accountOption(target, { withBalance: false })
              : [h("strong", { text: payee.holder_name }), ` · ${formatNumber(payee.number)} · ${payee.currency}`])),
          h("div", {}, h("dt", { text: "Amount" }), h("dd", { class: "amount", text: formatMoney(amount, source.currency) })),
          values.description ? h("div", {}, h("dt", { text: "Description" }), h("dd", { text: values.description })) : null),
        mismatch ? h("p", { class: "notice", text: `The payee's account holds ${payee.currency}; transfers must be in the same currency.` }) : null,
        h("div", { class: "actions" }, send, cancel));
      cancel.addEventListener("click", () => {
        confirmArea.replaceChildren();
        submit.focus();
      });
      send.addEventListener("click", async () => {
        if (send.disabled) return;
        setBusy(send, true, "Sending…");
        cancel.disabled = true;
        try {
          const transfer = await api.money.transfer(body, current.key);
          current.settle();
          flash(`Sent ${formatMoney(transfer.amount, transfer.currency)}. `
            + `Your balance is now ${formatMoney(transfer.balance_after, transfer.currency)}.`, { next: true });
          navigate(`/accounts/${source.id}`);
        } catch (error) {
          current.settle(error);
          confirmArea.replaceChildren();
          showErrors(form, error);
          setBusy(send, false);
        }
      });
      confirmArea.replaceChildren(panel);
      panel.focus();
    });

    return h("section", { class: "card narrow" },
      h("div", { class: "page-head" },
        h("h1", { text: "Move money" }),
        h("p", { class: "muted", text: "Between your accounts, or to anyone at the bank." })),
      form, confirmArea);
  },
};
