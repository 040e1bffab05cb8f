import * as api from "../api.js";
import { clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount, toDecimalString } from "../money.js";
import {
  accountOption, capitalize, confirmAction, errorPanel, formatNumber, scrollRegion, select, statusBadge,
} from "../ui.js";

// The new card's number and CVV leave the screen after this long, or on any navigation.
export const REVEAL_MS = 60_000;

// Cards: issue one (its number and CVV are shown once, right after issuing), freeze and
// unfreeze, set spending limits, and see the card's payments (authorizations).

const LIMITS = [
  ["per_transaction_limit", "Per payment"],
  ["daily_limit", "Per day"],
];

const AUTHORIZATION_LABELS = {
  approved: "On hold", captured: "Paid", declined: "Declined", voided: "Released", expired: "Expired",
};

const DECLINE_REASONS = {
  insufficient_funds: "Insufficient funds",
  card_frozen: "Card frozen",
  card_cancelled: "Card cancelled",
  account_frozen: "Account frozen",
  card_expired: "Card expired",
  expiry_mismatch: "Wrong expiry date",
  cvv_mismatch: "Wrong CVV",
  cvv_attempts_exceeded: "Card blocked after wrong CVVs",
  daily_limit_exceeded: "Over the account's daily limit",
  card_transaction_limit_exceeded: "Over the per-payment limit",
  card_daily_limit_exceeded: "Over the daily limit",
};

function expiry(card) {
  return `${String(card.exp_month).padStart(2, "0")}/${card.exp_year}`;
}

// The message for a card that is gone (cancelled elsewhere, or not this member's).
function cardMessage(error) {
  return error.status === 404 ? "This card no longer exists. Reload the page to see your cards." : error.message;
}

function revealOnce(card) {
  const panel = h("section", { class: "reveal", role: "alert", tabindex: "-1", "aria-labelledby": "reveal-title" },
    h("h2", { id: "reveal-title", text: "Your new card" }),
    h("p", { class: "notice", text: "Write these down now: the card number and CVV are shown only this once." }),
    h("dl", { class: "summary" },
      h("div", {}, h("dt", { text: "Card number" }), h("dd", { class: "mono pan", text: formatNumber(card.pan) })),
      h("div", {}, h("dt", { text: "Name" }), h("dd", { text: card.cardholder_name })),
      h("div", {}, h("dt", { text: "Expires" }), h("dd", { class: "mono", text: expiry(card) })),
      h("div", {}, h("dt", { text: "CVV" }), h("dd", { class: "mono pan", text: card.cvv }))));
  const hide = h("button", { type: "button", class: "button secondary", text: "I have saved them — hide" });
  const timer = setTimeout(() => remove(), REVEAL_MS);
  const remove = () => {
    clearTimeout(timer);
    window.removeEventListener("hashchange", remove);
    panel.replaceChildren();
    panel.remove();
  };
  window.addEventListener("hashchange", remove);
  hide.addEventListener("click", remove);
  panel.append(
    h("p", { class: "muted small", text: `They disappear from this screen in ${REVEAL_MS / 1000} seconds or when you leave it.` }),
    h("div", { class: "actions" }, hide));
  return panel;
}

function limitText(value, currency) {
  return value === null || value === undefined ? "No limit" : formatMoney(value, currency);
}

function limitsForm(card, onSaved) {
  const form = h("form", { class: "limits", novalidate: true, "aria-label": `Limits of card ending ${card.last4}` },
    LIMITS.map(([name, label]) => field({
      label: `${label} (${card.currency})`, name, required: false, inputmode: "decimal", placeholder: "No limit",
      value: card[name] === null ? "" : toDecimalString(card[name], card.currency),
    })),
    h("p", { class: "hint", text: "Leave a box empty for no limit." }),
    h("button", { type: "submit", class: "button secondary small", text: "Save limits" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const body = {};
    const errors = [];
    for (const [name] of LIMITS) {
      if (!values[name]) {
        body[name] = null;
        continue;
      }
      const minor = parseAmount(values[name], card.currency);
      if (minor === null) errors.push({ field: name, reason: "enter an amount like 250.00, or leave it empty" });
      else body[name] = minor;
    }
    if (errors.length) {
      showErrors(form, { message: "Check the limits.", errors });
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    setBusy(submit, true, "Saving…");
    try {
      await api.cards.limits(card.id, body);
      flash(`Limits of card ending ${card.last4} saved.`);
      await onSaved();
    } catch (error) {
      showErrors(form, { ...error, message: cardMessage(error), errors: error.errors });
      setBusy(submit, false);
    }
  });
  return form;
}

function authorizationsTable(items) {
  if (!items.length) return h("p", { class: "empty", text: "No payments with this card yet." });
  return scrollRegion(h("table", { class: "authorizations" },
    h("caption", { class: "visually-hidden", text: "Card payments" }),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", text: "Date" }),
      h("th", { scope: "col", text: "Merchant" }),
      h("th", { scope: "col", text: "Status" }),
      h("th", { scope: "col", class: "num", text: "Amount" }))),
    h("tbody", {}, items.map((a) => {
      const declined = a.status === "declined";
      const amount = formatMoney(a.status === "captured" ? a.captured_amount : a.amount, a.currency);
      const status = declined
        ? `Declined: ${DECLINE_REASONS[a.decline_reason] ?? capitalize(String(a.decline_reason ?? "").replace(/_/g, " "))}`
        : AUTHORIZATION_LABELS[a.status] ?? capitalize(a.status);
      return h("tr", { class: declined ? "declined" : "" },
        h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(a.created_at) }),
        h("td", { "data-label": "Merchant", text: a.merchant_name }),
        h("td", { "data-label": "Status" },
          h("span", { class: `badge badge-auth-${a.status}`, text: status })),
        h("td", { class: "num amount-cell", "data-label": "Amount" }, declined ? h("s", { text: amount }) : amount));
    }))));
}

function paymentsPanel(card) {
  const area = h("div", { class: "card-payments", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "button secondary small", "aria-expanded": "false",
    text: "Show payments", "aria-label": `Show payments of card ending ${card.last4}` });
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-expanded") === "true") {
      area.replaceChildren();
      button.setAttribute("aria-expanded", "false");
      button.textContent = "Show payments";
      button.setAttribute("aria-label", `Show payments of card ending ${card.last4}`);
      button.dataset.ariaLabel = button.getAttribute("aria-label");
      return;
    }
    setBusy(button, true, "Loading…");
    try {
      const page = await api.cards.authorizations(card.id);
      area.replaceChildren(h("h4", { text: "Payments" }), authorizationsTable(api.itemsOf(page)));
      button.dataset.label = "Hide payments";
      button.dataset.ariaLabel = `Hide payments of card ending ${card.last4}`;
      button.setAttribute("aria-expanded", "true");
    } catch (error) {
      area.replaceChildren(h("p", { class: "error-text", role: "alert", text: cardMessage(error) }));
    } finally {
      setBusy(button, false);
    }
  });
  return { button, area };
}

function cardItem(card, accountsById, refresh) {
  const account = accountsById.get(card.account_id);
  const frozen = card.status === "frozen";
  const cancelled = card.status === "cancelled";
  const actions = h("div", { class: "actions" });
  if (!cancelled) {
    const verb = frozen ? "Unfreeze" : "Freeze";
    const toggle = h("button", { type: "button", class: `button small ${frozen ? "primary inline" : "danger"}`,
      text: verb, "aria-label": `${verb} card ending ${card.last4}`, disabled: card.frozen_by_admin });
    toggle.addEventListener("click", async () => {
      setBusy(toggle, true);
      try {
        await (frozen ? api.cards.unfreeze(card.id) : api.cards.freeze(card.id));
        await refresh();
        flash(`Card ending ${card.last4} is ${frozen ? "active again" : "frozen"}.`);
      } catch (error) {
        flash(cardMessage(error), { kind: "error" });
        setBusy(toggle, false);
      }
    });
    actions.append(toggle);
  }
  const payments = paymentsPanel(card);
  actions.append(payments.button);
  if (!cancelled) {
    const cancel = h("button", { type: "button", class: "button small danger", text: "Cancel card",
      "aria-label": `Cancel card ending ${card.last4}` });
    cancel.addEventListener("click", async () => {
      const answer = await confirmAction({ title: `Cancel the card ending ${card.last4}?`,
        text: "A cancelled card cannot be used again; payments already on hold still go through.",
        confirmLabel: "Cancel card" });
      if (!answer) return;
      setBusy(cancel, true, "Cancelling…");
      try {
        await api.cards.cancel(card.id);
        await refresh();
        flash(`Card ending ${card.last4} is cancelled.`);
      } catch (error) {
        flash(cardMessage(error), { kind: "error" });
        setBusy(cancel, false);
      }
    });
    actions.append(cancel);
  }
  return h("li", { class: `bank-card${cancelled ? " cancelled" : ""}`, "data-card-id": card.id },
    h("div", { class: "account-head" },
      h("h3", {}, h("span", { class: "mono", text: `•••• ${card.last4}` }), " ", statusBadge(card.status)),
      h("span", { class: "muted small", text: `${capitalize(card.brand ?? "")} ${card.type} card · expires ${expiry(card)}`.trim() })),
    h("p", { class: "muted small", text: [card.cardholder_name, account ? accountOption(account, { withBalance: false }) : null]
      .filter(Boolean).join(" · ") }),
    card.frozen_by_admin
      ? h("p", { class: "notice small", text: card.frozen_reason === "cvv_attempts_exceeded"
        ? "The bank froze this card after several payments with a wrong CVV. Contact support to unfreeze it."
        : "The bank froze this card. Contact support to unfreeze it." }) : null,
    h("dl", { class: "figures card-limits" },
      h("div", {}, h("dt", { text: "Per payment" }), h("dd", { text: limitText(card.per_transaction_limit, card.currency) })),
      h("div", {}, h("dt", { text: "Per day" }), h("dd", { text: limitText(card.daily_limit, card.currency) }))),
    actions,
    cancelled ? null : h("details", { class: "card-settings" },
      h("summary", { text: "Change limits" }), limitsForm(card, refresh)),
    payments.area);
}

export default {
  path: "/cards",
  title: "Cards",
  auth: true,
  nav: "Cards",
  icon: "card",
  tab: true,
  navIf: () => !api.isStaff(),
  async render({ query }) {
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list()).filter((a) => a.status === "active");
    } catch (error) {
      return errorPanel("Cards", error);
    }
    const accountsById = new Map(accounts.map((a) => [a.id, a]));
    const list = h("ul", { class: "accounts cards-list" });
    const revealArea = h("div");
    // Any other action on the screen also takes the new card's number and CVV away.
    const refresh = async ({ keepReveal = false } = {}) => {
      if (!keepReveal) revealArea.replaceChildren();
      const cards = api.itemsOf(await api.cards.list());
      list.replaceChildren(...(cards.length ? cards.map((c) => cardItem(c, accountsById, refresh))
        : [h("li", { class: "empty", text: "You have no cards yet." })]));
    };
    try {
      await refresh({ keepReveal: true });
    } catch (error) {
      return errorPanel("Cards", error);
    }
    const submit = h("button", { type: "submit", class: "button primary inline", text: "Issue card" });
    const form = h("form", { class: "filters", novalidate: true, "aria-label": "Issue a card" },
      select({ label: "Account", name: "account", value: query.account ?? accounts[0]?.id,
        options: accounts.map((a) => [a.id, accountOption(a, { withBalance: false })]) }),
      select({ label: "Type", name: "type", value: "virtual",
        options: [["virtual", "Virtual"], ["physical", "Physical"]] }),
      field({ label: "Name on card", name: "cardholder_name", required: false, maxlength: 26,
        autocomplete: "cc-name", placeholder: "Your name" }),
      h("div", { class: "filters-submit" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const values = formValues(form);
      setBusy(submit, true, "Issuing…");
      try {
        const card = await api.cards.issue(values.account, values.type, values.cardholder_name || null);
        const panel = revealOnce(card);
        revealArea.replaceChildren(panel);
        panel.focus();
        await refresh({ keepReveal: true });
      } catch (error) {
        showErrors(form, error.status === 404
          ? { ...error, message: "This account was not found. Reload the page and try again." } : error);
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
