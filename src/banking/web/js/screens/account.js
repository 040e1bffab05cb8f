import * as api from "../api.js";
import { attempt } from "../attempt.js";
import {
  checkRequired, clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors,
} from "../dom.js";
import { flash } from "../flash.js";
import { exponent, formatMoney, parseAmount } from "../money.js";
import { icon } from "../icons.js";
import { onLiveUpdate } from "../router.js";
import {
  accountLabel, confirmAction, errorPanel, formatNumber,
  loadMore, refusalMessage, statusBadge, transactionsTable,
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
      showErrors(form, { ...error, errors: error.errors, code: error.code,
        message: refusalMessage(error, account, amount) });
      setBusy(submit, false);
      if (error.body?.entry_id) await onDone();
    }
  });
  return form;
}

// Full-width history: posted or declined, searched and filtered by the server
// (`q`, `min_amount`/`max_amount` on the absolute amount, `direction`, `kind`), a moment
// after the typing stops; "Load more" follows the cursor of the same search.
const SEARCH_DELAY_MS = 300;

function history(account) {
  const section = h("section", { class: "card", "aria-labelledby": "history-heading" });
  let status = "posted";
  let shown = 0;
  let pages = 0;
  let generation = 0;
  let timer = null;
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Show" });
  const search = h("input", { type: "search", id: `search-${account.id}`, name: "q", autocomplete: "off",
    maxlength: 100, placeholder: "Description, name, shop or account" });
  const direction = h("select", { id: `direction-${account.id}`, name: "direction" },
    h("option", { value: "", text: "In and out" }),
    h("option", { value: "in", text: "Money in" }),
    h("option", { value: "out", text: "Money out" }));
  const kind = h("select", { id: `kind-${account.id}`, name: "kind" },
    h("option", { value: "", text: "All kinds" }),
    h("option", { value: "transfer", text: "Transfers" }),
    h("option", { value: "card_capture", text: "Card payments" }),
    h("option", { value: "deposit", text: "Deposits" }),
    h("option", { value: "withdrawal", text: "Withdrawals" }));
  const amountInput = (name, label) => {
    const input = h("input", { type: "text", id: `${name}-${account.id}`, name, autocomplete: "off",
      inputmode: exponent(account.currency) ? "decimal" : "numeric", "aria-describedby": `amount-hint-${account.id}` });
    return { input, element: h("div", { class: "field" }, h("label", { for: input.id, text: label }), input) };
  };
  const least = amountInput("min_amount", "Amount from");
  const most = amountInput("max_amount", "Amount to");
  const amountHint = h("p", { class: "hint", id: `amount-hint-${account.id}` });
  const filters = h("div", { class: "history-filters" },
    h("div", { class: "field" }, h("label", { for: search.id, text: "Search" }), search),
    h("div", { class: "field" }, h("label", { for: direction.id, text: "Direction" }), direction),
    h("div", { class: "field" }, h("label", { for: kind.id, text: "Kind" }), kind),
    least.element, most.element);
  const body = h("div");
  const count = h("p", { class: "muted small", role: "status" });
  const empty = h("p", { class: "empty", hidden: true });
  // An amount box left empty sets no bound; one that is not an amount is pointed out and
  // ignored rather than sent.
  const bound = (input) => {
    const text = input.value.trim();
    if (!text || /^[0.,\s]+$/.test(text)) return { value: null, bad: false };
    const value = parseAmount(text, account.currency);
    return { value, bad: value === null };
  };
  const query = () => {
    const low = bound(least.input);
    const high = bound(most.input);
    const crossed = low.value !== null && high.value !== null && low.value > high.value;
    if (crossed) {
      low.bad = true;
      high.bad = true;
    }
    for (const [input, part] of [[least.input, low], [most.input, high]]) {
      input.setAttribute("aria-invalid", String(part.bad));
      if (part.bad) part.value = null;
    }
    amountHint.textContent = crossed ? "The first amount must not be above the second."
      : low.bad || high.bad
        ? `Amounts are in ${account.currency}, for example ${exponent(account.currency) ? "25.50" : "2500"}.` : "";
    amountHint.classList.toggle("error-text", low.bad || high.bad);
    return {
      status,
      q: search.value.trim() || null,
      direction: { in: "credit", out: "debit" }[direction.value] ?? null,
      kind: kind.value || null,
      min_amount: low.value,
      max_amount: high.value,
    };
  };
  const show = async () => {
    clearTimeout(timer);
    const mine = ++generation;
    const filter = query();
    shown = 0;
    pages = 0;
    const { table, add } = transactionsTable(status === "declined" ? "Declined attempts" : "Transactions");
    empty.textContent = status === "declined" ? "Nothing was declined." : "No transactions found.";
    const filtered = Boolean(filter.q || filter.direction || filter.kind
      || filter.min_amount !== null || filter.max_amount !== null);
    const more = loadMore(
      (cursor) => api.accounts.transactions(account.id, { ...filter, limit: 25, cursor }),
      (items) => {
        if (mine !== generation) return; // a newer search was started meanwhile
        pages += 1;
        add(items);
        shown += items.length;
        empty.hidden = shown > 0;
        count.textContent = filtered
          ? `${shown} matching ${shown === 1 ? "transaction" : "transactions"} shown.` : "";
      }, "Load more", { fill: filtered ? 25 : 0 });
    body.replaceChildren(table, empty, more.element);
    await more.load();
  };
  // After money moved (the person's own, or news from the event stream): the first page
  // is drawn again, but never under a search, filters or pages someone loaded.
  const freshen = async () => {
    const filtering = [search, least.input, most.input].some((input) => input.value.trim())
      || direction.value || kind.value;
    if (pages <= 1 && !filtering) await show();
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => show().catch(() => {}), SEARCH_DELAY_MS);
  };
  for (const input of [search, least.input, most.input]) input.addEventListener("input", later);
  for (const input of [direction, kind]) input.addEventListener("change", () => show());
  // Enter in the search box searches at once.
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") show();
  });
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
    filters, amountHint, count, body);
  return { section, show, freshen };
}

async function holdsList(account) {
  if (!account.held) return null;
  let holds = [];
  try {
    const cards = api.itemsOf(await api.cards.list()).filter((card) => card.account_id === account.id);
    const pages = await Promise.all(cards.map((card) => api.cards.authorizations(card.id, { status: "approved" })
      .then((page) => api.itemsOf(page).map((item) => ({ ...item, card }))).catch(() => [])));
    holds = pages.flat();
  } catch {
    holds = [];
  }
  return h("div", { class: "holds-note" },
    h("p", { text: `${formatMoney(account.held, account.currency)} is on hold for card payments the shops `
      + "have not completed yet, so you can spend less than your balance." }),
    holds.length ? h("ul", { class: "activity" }, holds.map((hold) => h("li", {},
      h("div", { class: "what" }, h("strong", { text: hold.merchant_name }),
        h("span", { class: "muted small", text: `Card ·· ${hold.card.last4} · ${formatDateTime(hold.created_at)}` })),
      h("span", { class: "amount", text: formatMoney(hold.amount, hold.currency) })))) : null);
}

function renameForm(account, onDone) {
  const submit = h("button", { type: "submit", class: "button secondary small", text: "Save name" });
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Rename the account" },
    field({ label: "Account name", name: "nickname", maxlength: 60, value: account.nickname ?? "",
      hint: "Shown on your home screen and statements pickers." }),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!checkRequired(form)) return;
    setBusy(submit, true, "Saving…");
    try {
      await api.accounts.rename(account.id, formValues(form).nickname);
      flash("The account's name is saved.");
      await onDone();
    } catch (error) {
      showErrors(form, error);
    } finally {
      setBusy(submit, false);
    }
  });
  return form;
}

function closeButton(account, navigate) {
  const button = h("button", { type: "button", class: "button danger small", text: "Close this account" });
  button.addEventListener("click", async () => {
    if (account.balance !== 0 || account.held) {
      flash(`Move the ${formatMoney(account.balance, account.currency)} out of this account first: `
        + "only an empty account with no pending card payments can be closed.", { kind: "error" });
      return;
    }
    const answer = await confirmAction({ title: "Close this account?",
      text: `${accountLabel(account)} (${formatNumber(account.number)}) will be closed for good.`,
      confirmLabel: "Close account" });
    if (!answer) return;
    setBusy(button, true, "Closing…");
    try {
      await api.accounts.close(account.id);
      flash(`${accountLabel(account)} is closed.`, { next: true });
      navigate("/");
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(button, false);
    }
  });
  return button;
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
    const holds = h("div");
    const title = h("h1");
    const drawFigures = async () => {
      title.replaceChildren(accountLabel(account), statusBadge(account.status) ?? "");
      figures.replaceChildren(...[
        h("div", {}, h("dt", { text: "Balance" }),
          h("dd", { class: "amount", text: formatMoney(account.balance, account.currency) })),
        h("div", {}, h("dt", { text: "Available" }),
          h("dd", { text: formatMoney(account.available_balance, account.currency) })),
        account.held ? h("div", {}, h("dt", { text: "On hold" }),
          h("dd", { text: formatMoney(account.held, account.currency) })) : null,
        h("div", {}, h("dt", { text: "Daily outgoing limit" }),
          h("dd", { text: formatMoney(account.daily_outgoing_limit, account.currency) })),
      ].filter(Boolean));
      holds.replaceChildren((await holdsList(account)) ?? "");
    };
    await drawFigures();
    const { section, show, freshen } = history(account);
    const refresh = async () => {
      // Updated in place: the forms below hold this same object.
      Object.assign(account, await api.accounts.get(account.id));
      await drawFigures();
      await freshen();
    };
    onLiveUpdate(refresh);
    const closed = account.status === "closed";
    const view = h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("p", { class: "breadcrumb" }, h("a", { href: "#/", text: "Home" }), " / Account"),
        h("div", { class: "head-with-actions" },
          h("div", {},
            title,
            h("p", { class: "account-number", text: `${formatNumber(account.number)} · ${account.currency}` })),
          closed ? null : h("div", { class: "head-actions" },
            h("a", { class: "button primary inline", href: `#/transfer?from=${account.id}` }, icon("send", { size: 18 }), "Transfer"),
            h("a", { class: "button secondary", href: `#/statements?account=${account.id}` }, icon("document", { size: 18 }), "Statements"),
            h("a", { class: "button secondary", href: `#/cards?account=${account.id}` }, icon("card", { size: 18 }), "Cards"))),
        figures,
        holds,
        account.status === "frozen"
          ? h("p", { class: "notice", text: "This account is frozen: money can come in, but nothing can leave it. Contact support." })
          : null),
      section,
      closed ? h("p", { class: "muted", text: "This account is closed." }) : h("div", { class: "grid-2" },
        h("section", { class: "card" },
          h("details", { class: "panel" }, h("summary", { text: "Deposit or withdraw cash" }),
            cashForm(account, refresh))),
        h("section", { class: "card" },
          h("details", { class: "panel" }, h("summary", { text: "Account settings" }),
            renameForm(account, refresh),
            h("div", { class: "danger-zone" },
              h("p", { class: "muted small", text: "An account can be closed once it is empty." }),
              closeButton(account, navigate))))));
    await show();
    return view;
  },
};
