import * as api from "../api.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { formatMoney } from "../money.js";
import { accountLabel, counterpartyText, describeTransaction, formatNumber, statusBadge } from "../ui.js";

export { formatNumber } from "../ui.js";

const CHART_DAYS = 90;
const DAY_MS = 24 * 3600 * 1000;

function accountCard(account) {
  return h("li", { class: "account" },
    h("a", { class: "account-tile", href: `#/accounts/${account.id}` },
      h("span", { class: "tile-name" }, accountLabel(account), statusBadge(account.status)),
      h("span", { class: "account-number small" },
        h("span", { class: "visually-hidden", text: "Account number " }), formatNumber(account.number)),
      h("p", { class: "tile-balance amount", text: formatMoney(account.balance, account.currency) }),
      h("p", { class: "muted small", text: account.held
        ? `${formatMoney(account.available_balance, account.currency)} available · `
          + `${formatMoney(account.held, account.currency)} on hold`
        : `${formatMoney(account.available_balance, account.currency)} available` })));
}

export function totalsByCurrency(accounts) {
  const byCurrency = new Map();
  for (const account of accounts) {
    byCurrency.set(account.currency, (byCurrency.get(account.currency) ?? 0n) + BigInt(account.balance));
  }
  return [...byCurrency];
}

function chart(series, currency) {
  const width = 640;
  const height = 180;
  const pad = { top: 10, right: 8, bottom: 22, left: 8 };
  const values = series.map((point) => Number(point.balance));
  const max = Math.max(...values, 1);
  const min = Math.min(...values, 0);
  const x = (i) => pad.left + (i / (series.length - 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (v - min) / (max - min || 1)) * (height - pad.top - pad.bottom);
  const line = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const area = `${line} L${x(series.length - 1).toFixed(1)},${y(min)} L${x(0).toFixed(1)},${y(min)} Z`;
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes, text) => {
    const element = document.createElementNS(ns, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
    if (text) element.textContent = text;
    return element;
  };
  const first = series[0];
  const last = series[series.length - 1];
  const dateText = (date) => new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" }).format(date);
  const description = `Total ${currency} balance over the last ${CHART_DAYS} days: from `
    + `${formatMoney(first.balance.toString(), currency)} on ${dateText(first.day)} to `
    + `${formatMoney(last.balance.toString(), currency)} on ${dateText(last.day)}; highest `
    + `${formatMoney(String(Math.round(max)), currency)}.`;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": description });
  svg.append(
    node("path", { d: area, class: "area" }),
    node("path", { d: line, class: "line" }),
    node("text", { x: pad.left, y: height - 5, class: "axis" }, dateText(first.day)),
    node("text", { x: width - pad.right, y: height - 5, class: "axis", "text-anchor": "end" }, dateText(last.day)));
  return svg;
}

// Today's date ("2026-09-05") in the bank's time zone, whose days the balance history
// counts (UTC if the zone is unknown).
function todayIn(timeZone, now) {
  const format = (zone) => new Intl.DateTimeFormat("en-CA",
    { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
  try {
    return format(timeZone || "UTC");
  } catch {
    return format("UTC");
  }
}

// The 90 calendar days ending with `today`, each as the Date of its midnight in UTC (the
// chart prints them in UTC, so each shows its own calendar date).
function chartDays(today) {
  const last = Date.parse(`${today}T00:00:00Z`);
  return Array.from({ length: CHART_DAYS }, (_, i) => new Date(last - (CHART_DAYS - 1 - i) * DAY_MS));
}

// The total of one currency at the close of each day, from the server's daily closing
// balances (`GET /v1/accounts/{id}/balance-history`); a day an account has no figure for
// counts as its previous day's (or nothing before its first).
export function sumDailyBalances(histories, days) {
  const totals = days.map(() => 0n);
  for (const items of histories) {
    const byDate = new Map(items.map((item) => [item.date, BigInt(item.balance)]));
    let balance = null;
    days.forEach((day, i) => {
      balance = byDate.get(day.toISOString().slice(0, 10)) ?? balance;
      if (balance !== null) totals[i] += balance;
    });
  }
  return days.map((day, i) => ({ day, balance: totals[i] }));
}

async function balanceSeries(accounts) {
  const now = Date.now();
  const meta = await api.meta().catch(() => null);
  const days = chartDays(todayIn(meta?.time_zone, now));
  const query = { from: days[0].toISOString().slice(0, 10), to: days[days.length - 1].toISOString().slice(0, 10) };
  const answers = await Promise.all(accounts.map((account) =>
    api.accounts.balanceHistory(account.id, query)));
  return sumDailyBalances(answers.map((answer) => api.itemsOf(answer)), days);
}

async function balanceChart(accounts) {
  const open = accounts.filter((account) => account.status !== "closed");
  const currency = totalsByCurrency(open).sort((a, b) => (b[1] > a[1] ? 1 : -1))[0]?.[0];
  if (!currency) return null;
  const mine = open.filter((account) => account.currency === currency);
  let series;
  try {
    series = await balanceSeries(mine);
  } catch {
    return null;
  }
  return h("section", { class: "card", "aria-labelledby": "chart-heading" },
    h("h2", { id: "chart-heading", text: `${currency} balance, last ${CHART_DAYS} days` }),
    chart(series, currency));
}

async function recentActivity(accounts) {
  const pages = await Promise.all(accounts.map((account) =>
    api.accounts.transactions(account.id, { limit: 6 })
      .then((page) => page.items.map((item) => ({ ...item, account })))
      .catch(() => [])));
  const items = pages.flat()
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))
    .slice(0, 6);
  const heading = h("h2", { id: "activity-heading", text: "Recent activity" });
  if (!items.length) {
    return h("section", { class: "card", "aria-labelledby": "activity-heading" }, heading,
      h("p", { class: "empty", text: "No activity yet. Deposit money to get started." }));
  }
  return h("section", { class: "card", "aria-labelledby": "activity-heading" }, heading,
    h("ul", { class: "activity" }, items.map((item) => {
      const declined = item.status === "declined";
      return h("li", { class: declined ? "declined" : "" },
        h("div", { class: "what" },
          h("strong", { text: describeTransaction(item).text }),
          h("span", { class: "muted small",
            text: `${counterpartyText(item)} · ${accountLabel(item.account)} · `
              + `${new Intl.DateTimeFormat(undefined, { dateStyle: "medium" }).format(new Date(item.created_at))}`
              + (declined ? " · declined" : "") })),
        h("span", { class: `amount ${item.amount > 0 && !declined ? "credit" : ""}` },
          declined ? h("s", { text: formatMoney(item.amount, item.currency, { signed: true }) })
            : formatMoney(item.amount, item.currency, { signed: true })));
    })));
}

async function pendingHolds(accounts) {
  const held = accounts.filter((account) => account.held > 0);
  if (!held.length) return null;
  let cards = [];
  try {
    cards = api.itemsOf(await api.cards.list());
  } catch {
    cards = [];
  }
  const pages = await Promise.all(cards.map((card) =>
    api.cards.authorizations(card.id, { status: "approved" })
      .then((page) => api.itemsOf(page).map((item) => ({ ...item, card })))
      .catch(() => [])));
  const holds = pages.flat();
  return h("section", { class: "card", "aria-labelledby": "holds-heading" },
    h("h2", { id: "holds-heading", text: "Pending card payments" }),
    h("p", { class: "muted small", text: "Money on hold until the shop completes the payment: "
      + "it is already taken from what you can spend." }),
    holds.length ? h("ul", { class: "activity" }, holds.map((hold) => h("li", {},
      h("div", { class: "what" }, h("strong", { text: hold.merchant_name }),
        h("span", { class: "muted small", text: `Card ·· ${hold.card.last4} · on hold` })),
      h("span", { class: "amount", text: formatMoney(-hold.amount, hold.currency, { signed: true }) }))))
      : h("p", { class: "empty", text: held.map((a) =>
        `${formatMoney(a.held, a.currency)} on hold on ${accountLabel(a)}`).join(" · ") }));
}

export default {
  path: "/",
  title: "Home",
  auth: true,
  nav: "Home",
  icon: "home",
  tab: true,
  navIf: () => !api.isStaff(),
  async render() {
    const user = api.currentUser();
    const name = user?.profile?.first_name || "";
    const head = h("div", { class: "page-head head-with-actions" },
      h("div", {},
        h("h1", { text: name ? `Hello, ${name}` : "Home" }),
        h("p", { class: "muted", text: "Your money at a glance." })),
      h("div", { class: "quick-actions" },
        h("a", { class: "button primary inline", href: "#/transfer" }, icon("send", { size: 18 }), "Move money"),
        h("a", { class: "button secondary", href: "#/accounts/new" }, icon("plus", { size: 18 }), "Open an account")));
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list());
    } catch (error) {
      return h("div", { class: "stack-lg" }, head, h("section", { class: "card" },
        h("h2", { text: "Your accounts" }),
        h("p", { class: "error-text", role: "alert", text: error.message })));
    }
    if (!accounts.length) {
      return h("div", { class: "stack-lg" }, head, h("section", { class: "card" },
        h("h2", { text: "Your accounts" }),
        h("p", { class: "empty" }, "You have no accounts yet. ",
          h("a", { href: "#/accounts/new", text: "Open your first account" }))));
    }
    const [activity, holds, balance] = await Promise.all([
      recentActivity(accounts), pendingHolds(accounts), balanceChart(accounts)]);
    return h("div", { class: "stack-lg" }, head,
      h("section", { class: "card", "aria-labelledby": "accounts-heading" },
        h("div", { class: "section-head" }, h("h2", { id: "accounts-heading", text: "Your accounts" })),
        h("dl", { class: "totals" }, totalsByCurrency(accounts).map(([currency, sum]) =>
          h("div", {}, h("dt", { text: `Total in ${currency}` }),
            h("dd", { class: "total", text: formatMoney(sum.toString(), currency) })))),
        h("ul", { class: "accounts spaced" }, accounts.map(accountCard))),
      holds,
      h("div", { class: "grid-2" }, activity, balance));
  },
};
