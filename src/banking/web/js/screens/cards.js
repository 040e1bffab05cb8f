import * as api from "../api.js";
import { clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount } from "../money.js";
import { accountOption, errorPanel, select, statusBadge, unavailable } from "../ui.js";

// Cards: issue one (its number and CVV are shown once, right after issuing), freeze and
// unfreeze, and set spending limits.

function revealOnce(card) {
  const panel = h("section", { class: "reveal", role: "alert", tabindex: "-1" },
    h("h2", { text: "Your new card" }),
    h("p", { class: "notice", text: "Write these down now: the card number and CVV are shown only this once." }),
    h("dl", { class: "summary" },
      h("div", {}, h("dt", { text: "Card number" }),
        h("dd", { class: "mono pan", text: String(card.pan).replace(/(\d{4})(?=\d)/g, "$1 ") })),
      h("div", {}, h("dt", { text: "Expires" }),
        h("dd", { class: "mono", text: `${String(card.exp_month).padStart(2, "0")}/${card.exp_year}` })),
      h("div", {}, h("dt", { text: "CVV" }), h("dd", { class: "mono", text: card.cvv }))));
  const hide = h("button", { type: "button", class: "button secondary", text: "I have saved them — hide" });
  hide.addEventListener("click", () => panel.remove());
  panel.append(h("div", { class: "actions" }, hide));
  return panel;
}

function cardItem(card, accountsById, refresh) {
  const account = accountsById.get(card.account_id);
  const currency = account?.currency ?? "USD";
  const frozen = card.status === "frozen";
  const toggle = h("button", { type: "button", class: `button small ${frozen ? "secondary" : "danger"}`,
    text: frozen ? "Unfreeze" : "Freeze", "aria-label": `${frozen ? "Unfreeze" : "Freeze"} card ending ${card.last4}` });
  toggle.addEventListener("click", async () => {
    setBusy(toggle, true);
    try {
      await (frozen ? api.cards.unfreeze(card.id) : api.cards.freeze(card.id));
      flash(`Card ending ${card.last4} is ${frozen ? "active again" : "frozen"}.`);
      await refresh();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(toggle, false);
    }
  });
  const limitsForm = h("form", { class: "limits", novalidate: true, "aria-label": `Limits of card ending ${card.last4}` },
    field({ label: "Per payment", name: "per_transaction_limit", required: false, inputmode: "decimal",
      placeholder: card.per_transaction_limit ? formatMoney(card.per_transaction_limit, currency) : "" }),
    field({ label: "Per day", name: "daily_limit", required: false, inputmode: "decimal",
      placeholder: card.daily_limit ? formatMoney(card.daily_limit, currency) : "" }),
    h("button", { type: "submit", class: "button secondary small", text: "Save limits" }));
  limitsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(limitsForm);
    const values = formValues(limitsForm);
    const body = {};
    for (const name of ["per_transaction_limit", "daily_limit"]) {
      if (!values[name]) continue;
      const minor = parseAmount(values[name], currency);
      if (minor === null) {
        showErrors(limitsForm, { message: "Check the limits.", errors: [{ field: name, reason: "enter an amount like 250.00" }] });
        return;
      }
      body[name] = minor;
    }
    try {
      await api.cards.limits(card.id, body);
      flash(`Limits of card ending ${card.last4} saved.`);
      await refresh();
    } catch (error) {
      showErrors(limitsForm, error);
    }
  });
  return h("li", { class: "bank-card" },
    h("div", { class: "account-head" },
      h("h3", {}, `•••• ${card.last4}`, statusBadge(card.status)),
      h("span", { class: "muted small", text: `${card.type ?? "card"} · expires ${String(card.exp_month).padStart(2, "0")}/${card.exp_year}` })),
    account ? h("p", { class: "muted small", text: accountOption(account, { withBalance: false }) }) : null,
    h("div", { class: "actions" }, toggle),
    limitsForm);
}

export default {
  path: "/cards",
  title: "Cards",
  auth: true,
  nav: "Cards",
  navIf: () => !api.isStaff(),
  async render({ query }) {
    if ((await api.serves("GET", "/v1/cards")) === false) return unavailable("Cards", "Cards");
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list()).filter((a) => a.status === "active");
    } catch (error) {
      return errorPanel("Cards", error);
    }
    const accountsById = new Map(accounts.map((a) => [a.id, a]));
    const list = h("ul", { class: "accounts" });
    const revealArea = h("div");
    const refresh = async () => {
      const cards = api.itemsOf(await api.cards.list());
      list.replaceChildren(...(cards.length ? cards.map((c) => cardItem(c, accountsById, refresh))
        : [h("li", { class: "empty", text: "You have no cards yet." })]));
    };
    try {
      await refresh();
    } catch (error) {
      if (api.isMissingEndpoint(error)) return unavailable("Cards", "Cards");
      return errorPanel("Cards", error);
    }
    const submit = h("button", { type: "submit", class: "button primary inline", text: "Issue card" });
    const form = h("form", { class: "filters", novalidate: true, "aria-label": "Issue a card" },
      select({ label: "Account", name: "account", value: query.account ?? accounts[0]?.id,
        options: accounts.map((a) => [a.id, accountOption(a, { withBalance: false })]) }),
      select({ label: "Type", name: "type", value: "virtual",
        options: [["virtual", "Virtual"], ["physical", "Physical"]] }),
      h("div", { class: "filters-submit" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const values = formValues(form);
      setBusy(submit, true, "Issuing…");
      try {
        const card = await api.cards.issue(values.account, values.type);
        const panel = revealOnce(card);
        revealArea.replaceChildren(panel);
        panel.focus();
        await refresh();
      } catch (error) {
        if (api.isMissingEndpoint(error)) showErrors(form, { ...error, message: "Cards are not available on this server yet." });
        else showErrors(form, error);
      } finally {
        setBusy(submit, false);
      }
    });
    return h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("div", { class: "page-head" }, h("h1", { text: "Cards" }),
          h("p", { class: "muted", text: "Debit cards on your accounts." })),
        accounts.length ? form : h("p", { class: "empty", text: "Open an account to get a card." }),
        revealArea),
      h("section", { class: "card" }, h("h2", { text: "Your cards" }), list));
  },
};
