import * as api from "../api.js";
import { attempt } from "../attempt.js";
import {
  checkRequired, clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors,
} from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount } from "../money.js";
import { accountOption, errorPanel, formatNumber, refusalMessage, select } from "../ui.js";

// Move money: to one of your own accounts (picked from a list), to a saved payee, or to
// anyone's by account number. A typed number is looked up first and the masked holder name
// confirmed before anything is sent; the confirmed transfer carries the Idempotency-Key of
// this attempt.

// "Landlord (J*** D***) ·· 9012"
function payeeOption(payee) {
  return `${payee.name} (${payee.holder_name}) ·· ${String(payee.account_number).slice(-4)}`;
}
export default {
  path: "/transfer",
  title: "Move money",
  auth: true,
  nav: "Move money",
  icon: "send",
  tab: true,
  navIf: () => !api.isStaff(),
  async render({ query, navigate }) {
    let accounts;
    let payees;
    try {
      [accounts, payees] = await Promise.all([
        api.accounts.list(),
        // Without the payees the other two ways to pay still work.
        api.request("GET", "/v1/payees").catch(() => []),
      ]);
      accounts = api.itemsOf(accounts).filter((a) => a.status !== "closed");
      payees = api.itemsOf(payees);
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
    const payeesById = new Map(payees.map((p) => [p.id, p]));
    const chosenPayee = payeesById.get(query.payee);
    const payeeField = select({ label: "To payee", name: "payee_id",
      value: chosenPayee?.id, options: payees.map((p) => [p.id, payeeOption(p)]) });
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
        mode("own", "One of my accounts", !chosenPayee && accounts.length > 1),
        payees.length ? mode("payee", "A saved payee",
          Boolean(chosenPayee) || (accounts.length < 2)) : null,
        mode("other", "Someone else by account number", !payees.length && accounts.length < 2)),
      targetField, payeeField, numberField,
      field({ label: "Amount", name: "amount", inputmode: "decimal", autocomplete: "off",
        hint: "In the currency of the account you send from." }),
      field({ label: "Description", name: "description", required: false, maxlength: 140,
        hint: "The payee sees it." }),
      submit);
    const confirmArea = h("div", { "aria-live": "polite" });
    const showMode = () => {
      const { to } = formValues(form);
      targetField.hidden = to !== "own";
      payeeField.hidden = to !== "payee";
      numberField.hidden = to !== "other";
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
      else if (amount > source.available_balance) {
        problems.push({ field: "amount", reason: `${formatMoney(source.available_balance, source.currency)} is available in this account` });
      }
      const number = (values.target_account_number || "").replace(/\s/g, "");
      if (values.to === "other" && !/^\d{12}$/.test(number)) {
        problems.push({ field: "target_account_number", reason: "enter the 12 digits of the account number" });
      }
      if (values.to === "own" && !values.target_account_id) {
        problems.push({ field: "target_account_id", reason: "you need a second account for this; open one first" });
      }
      const savedPayee = values.to === "payee" ? payeesById.get(values.payee_id) : null;
      if (values.to === "payee" && !savedPayee) {
        problems.push({ field: "payee_id", reason: "choose a payee" });
      }
      if (problems.length) {
        const short = amount !== null && amount > source.available_balance;
        showErrors(form, { message: short
          ? `You can send up to ${formatMoney(source.available_balance, source.currency)} from this account.`
          : "Check the highlighted fields.", errors: problems });
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
      if (savedPayee) {
        payee = { holder_name: savedPayee.holder_name, number: savedPayee.account_number,
          currency: savedPayee.currency };
      }
      const target = values.to === "own" ? byId.get(values.target_account_id) : null;
      const targetBody = target ? { target_account_id: target.id }
        : savedPayee ? { payee_id: savedPayee.id } : { target_account_number: number };
      const cooling = savedPayee?.cooldown_ends_at && new Date(savedPayee.cooldown_ends_at) > new Date();
      const body = {
        source_account_id: source.id,
        ...targetBody,
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
              : [savedPayee ? `${savedPayee.name}: ` : "", h("strong", { text: payee.holder_name }),
                ` · ${formatNumber(payee.number)} · ${payee.currency}`])),
          h("div", {}, h("dt", { text: "Amount" }), h("dd", { class: "amount", text: formatMoney(amount, source.currency) })),
          h("div", {}, h("dt", { text: "Left after" }), h("dd", { text: `${formatMoney(source.available_balance - amount, source.currency)} available` })),
          values.description ? h("div", {}, h("dt", { text: "Description" }), h("dd", { text: values.description })) : null),
        mismatch ? h("p", { class: "notice", text: `The payee's account holds ${payee.currency}; transfers must be in the same currency.` }) : null,
        cooling ? h("p", { class: "hint", text: "A new payee: the bank may decline larger transfers "
          + `to them until ${formatDateTime(savedPayee.cooldown_ends_at)}.` }) : null,
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
          if (transfer.status === "pending_approval") {
            // Above the approval threshold: held until a second person at the bank decides.
            flash(`${formatMoney(transfer.amount, transfer.currency)} is held and waits for the `
              + "bank's approval.", { next: true });
            navigate("/approvals");
            return;
          }
          flash(`Sent ${formatMoney(transfer.amount, transfer.currency)}. `
            + `Your balance is now ${formatMoney(transfer.balance_after, transfer.currency)}.`, { next: true });
          navigate(`/accounts/${source.id}`);
        } catch (error) {
          current.settle(error);
          confirmArea.replaceChildren();
          showErrors(form, { ...error, errors: error.errors, code: error.code,
            message: refusalMessage(error, source, amount) });
          setBusy(send, false);
        }
      });
      confirmArea.replaceChildren(panel);
      panel.focus();
    });

    return h("section", { class: "card narrow" },
      h("div", { class: "page-head" },
        h("h1", { text: "Move money" }),
        h("p", { class: "muted", text: "Between your accounts, to a saved payee, or to anyone at the bank." })),
      form, confirmArea);
  },
};
