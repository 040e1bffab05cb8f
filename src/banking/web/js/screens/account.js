import * as api from "../api.js";
import { attempt } from "../attempt.js";
import { clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { exponent, formatMoney, parseAmount } from "../money.js";
import {
  accountLabel, errorPanel, formatNumber, loadMore, statusBadge, transactionsTable,
} from "../ui.js";

function amountField(currency) {
  return field({
    label: `Amount (${currency})`, name: "amount", inputmode: exponent(currency) ? "decimal" : "numeric",
    autocomplete: "off", hint: exponent(currency) ? "For example 25.50" : "For example 2500",
  });
}

function cashForm(account, onDone) {
  const submit = h("button", { type: "submit", class: "button primary", text: "Deposit" });
  const kindName = `kind-${account.id}`;
  const radio = (value, label, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "kind", value, checked, id: `${kindName}-${value}` }), label);
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Deposit or withdraw" },
    h("fieldset", { class: "choices", "data-field": "kind" },
      h("legend", { text: "What do you want to do?" }),
      radio("deposit", "Deposit", true), radio("withdraw", "Withdraw", false)),
    amountField(account.currency),
    field({ label: "Description", name: "description", required: false, maxlength: 140 }),
    submit);
  const current = attempt(form);
  form.addEventListener("change", () => {
    submit.textContent = formValues(form).kind === "withdraw" ? "Withdraw" : "Deposit";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    clearErrors(form);
    const values = formValues(form);
    const amount = parseAmount(values.amount, account.currency);
    if (amount === null) {
      showErrors(form, { message: "Enter an amount greater than zero.",
        errors: [{ field: "amount", reason: "enter an amount greater than zero, like 25.50" }] });
      return;
    }
    const body = { amount, ...(values.description ? { description: values.description } : {}) };
    setBusy(submit, true, "Sending…");
    try {
      const call = values.kind === "withdraw" ? api.money.withdraw : api.money.deposit;
      const entry = await call(account.id, body, current.key);
      current.settle();
      flash(`${values.kind === "withdraw" ? "Withdrew" : "Deposited"} `
        + `${formatMoney(Math.abs(entry.amount), entry.currency)}. `
        + `New balance ${formatMoney(entry.balance_after, entry.currency)}.`);
      form.reset();
      setBusy(submit, false);
      submit.textContent = "Deposit";
      await onDone();
    } catch (error) {
      current.settle(error);
      showErrors(form, error);
      setBusy(submit, false);
      if (error.body?.entry_id) await onDone();
    }
  });
  return form;
}

function history(account) {
  const section = h("section", { class: "card", "aria-labelledby": "history-heading" });
  let status = "posted";
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Show" });
  const body = h("div");
  const show = async () => {
    const { table, add } = transactionsTable(
      status === "declined" ? "Declined attempts" : "Transactions");
    const more = loadMore(
      (cursor) => api.accounts.transactions(account.id, { status, limit: 20, cursor }),
      (items) => {
        add(items);
        empty.hidden = table.querySelector("tbody").children.length > 0;
      });
    const empty = h("p", { class: "empty", hidden: true,
      text: status === "declined" ? "Nothing was declined." : "No transactions yet." });
    body.replaceChildren(table, empty, more.element);
    await more.load();
  };
  for (const [value, label] of [["posted", "Posted"], ["declined", "Declined"]]) {
    const button = h("button", { type: "button", class: "tab", "aria-pressed": String(value === status) },
      label);
    button.addEventListener("click", async () => {
      status = value;
      for (const other of tabs.children) other.setAttribute("aria-pressed", String(other === button));
      await show();
    });
    tabs.append(button);
  }
  section.append(
    h("div", { class: "section-head" }, h("h2", { id: "history-heading", text: "Transactions" }), tabs),
    body);
  return { section, show };
}

export default {
  path: "/accounts/:id",
  title: "Account",
  auth: true,
  async render({ params, navigate }) {
    let account;
    try {
      account = await api.accounts.get(params.id);
    } catch (error) {
      return errorPanel("Account", error);
    }
    const figures = h("dl", { class: "figures wide" });
    const drawFigures = () => figures.replaceChildren(
      h("div", {}, h("dt", { text: "Balance" }),
        h("dd", { class: "amount", text: formatMoney(account.balance, account.currency) })),
      h("div", {}, h("dt", { text: "Available" }),
        h("dd", { text: formatMoney(account.available_balance, account.currency) })),
      h("div", {}, h("dt", { text: "Daily outgoing limit" }),
        h("dd", { text: formatMoney(account.daily_outgoing_limit, account.currency) })));
    drawFigures();
    const { section, show } = history(account);
    const refresh = async () => {
      account = await api.accounts.get(account.id);
      drawFigures();
      await show();
    };
    const view = h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("p", { class: "breadcrumb" }, h("a", { href: "#/", text: "Dashboard" }), " / Account"),
        h("div", { class: "head-with-actions" },
          h("div", {},
            h("h1", {}, accountLabel(account), statusBadge(account.status)),
            h("p", { class: "account-number", text: `${formatNumber(account.number)} · ${account.currency}` })),
          h("div", { class: "head-actions" },
            h("a", { class: "button secondary", href: `#/transfer?from=${account.id}`, text: "Transfer" }),
            h("a", { class: "button secondary", href: `#/statements?account=${account.id}`, text: "Statements" }),
            h("a", { class: "button secondary", href: `#/cards?account=${account.id}`, text: "Cards" }))),
        figures,
        account.status === "frozen"
          ? h("p", { class: "notice", text: "This account is frozen: money can come in, but nothing can leave it. Contact support." })
          : null),
      h("div", { class: "grid-2" },
        h("section", { class: "card" }, h("h2", { text: "Deposit or withdraw" }),
          account.status === "closed" ? h("p", { class: "muted", text: "This account is closed." })
            : cashForm(account, refresh)),
        section));
    await show();
    void navigate;
    return view;
  },
};
