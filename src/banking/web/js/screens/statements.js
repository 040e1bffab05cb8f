import * as api from "../api.js";
import { formatDateTime, h, setBusy } from "../dom.js";
import { formatMoney } from "../money.js";
import { accountOption, errorPanel, scrollRegion, select } from "../ui.js";

// Statements: pick an account and one of its months, read the statement (balances,
// totals, every line, open card holds apart), download it as CSV or PDF.

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// "2024-03" → "March 2024", in the reader's language.
function monthName(month) {
  const [year, number] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" })
    .format(new Date(Date.UTC(year, number - 1, 1)));
}

function formatDate(value) {
  const [year, month, day] = value.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" })
    .format(new Date(Date.UTC(year, month - 1, day)));
}

function currentMonth() {
  return new Date().toISOString().slice(0, 7);
}

function statementMessage(error) {
  if (error.status === 404) return "This statement was not found: the account may have been closed or removed.";
  return error.message;
}

function linesTable(statement, money) {
  const lines = statement.lines ?? [];
  if (!lines.length) return h("p", { class: "empty", text: "No transactions in this month." });
  return scrollRegion(h("table", { class: "statement-lines" },
    h("caption", { class: "visually-hidden", text: "Statement lines" }),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", text: "Date" }),
      h("th", { scope: "col", text: "Description" }),
      h("th", { scope: "col", class: "num", text: "Amount" }),
      h("th", { scope: "col", class: "num", text: "Balance" }))),
    h("tbody", {}, lines.map((line) => h("tr", { class: line.amount > 0 ? "credit" : "debit" },
      h("td", { class: "nowrap", "data-label": "Date", text: formatDate(line.date) }),
      h("td", { "data-label": "Description" },
        h("span", { class: "tx-text", text: line.description || line.kind }),
        line.counterparty ? h("span", { class: "tx-detail muted small", text: line.counterparty }) : null),
      h("td", { class: "num amount-cell", "data-label": "Amount",
        text: formatMoney(line.amount, statement.currency, { signed: true }) }),
      h("td", { class: "num muted", "data-label": "Balance", text: money(line.balance_after) }))))));
}

function holdsSection(statement, money) {
  const holds = statement.pending_holds ?? [];
  if (!holds.length) return null;
  return h("section", { class: "pending-holds", "aria-labelledby": "holds-title" },
    h("h3", { id: "holds-title", text: "Pending card payments" }),
    h("p", { class: "muted small", text: "Held on the account but not yet paid: not part of the balances or totals above." }),
    scrollRegion(h("table", {},
      h("caption", { class: "visually-hidden", text: "Pending card payments" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "Date" }),
        h("th", { scope: "col", text: "Description" }),
        h("th", { scope: "col", class: "num", text: "Amount" }))),
      h("tbody", {}, holds.map((hold) => h("tr", {},
        h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(hold.created_at) }),
        h("td", { "data-label": "Description", text: hold.description }),
        h("td", { class: "num", "data-label": "Amount", text: money(hold.amount) })))))));
}

function statementView(statement) {
  const money = (value) => formatMoney(value, statement.currency);
  const { period } = statement;
  return h("article", { class: "stack statement", "aria-labelledby": "statement-title" },
    h("div", { class: "section-head" },
      h("h2", { id: "statement-title", text: `${statement.title} · ${monthName(period.month)}` }),
      h("p", { class: "muted small", text:
        `${formatDate(period.start_date)} – ${formatDate(period.end_date)} (${period.timezone}) · `
        + `${statement.count} ${statement.count === 1 ? "line" : "lines"}` })),
    statement.is_partial
      ? h("p", { class: "notice small", text: "This month is not over yet: the statement runs to today." }) : null,
    h("dl", { class: "figures wide" },
      h("div", {}, h("dt", { text: "Opening balance" }), h("dd", { text: money(statement.opening_balance) })),
      h("div", {}, h("dt", { text: "Money in" }), h("dd", { class: "credit", text: money(statement.total_credits) })),
      h("div", {}, h("dt", { text: "Money out" }), h("dd", { text: money(statement.total_debits) })),
      h("div", {}, h("dt", { text: "Closing balance" }), h("dd", { class: "amount", text: money(statement.closing_balance) }))),
    linesTable(statement, money),
    holdsSection(statement, money));
}

export default {
  path: "/statements",
  title: "Statements",
  auth: true,
  nav: "Statements",
  icon: "document",
  tab: true,
  navIf: () => !api.isStaff(),
  async render({ query }) {
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list());
    } catch (error) {
      return errorPanel("Statements", error);
    }
    if (!accounts.length) {
      return h("section", { class: "card" }, h("h1", { text: "Statements" }),
        h("p", { class: "empty", text: "Open an account to get statements." }));
    }
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const view = h("div", { "aria-live": "polite" });
    const accountPicker = select({ label: "Account", name: "account", value: query.account ?? accounts[0].id,
      options: accounts.map((a) => [a.id, accountOption(a, { withBalance: false })]) });
    const monthField = h("div", { class: "field", "data-field": "month" },
      h("label", { for: "month-select", text: "Month" }),
      h("select", { id: "month-select", name: "month" }));
    const accountSelect = accountPicker.querySelector("select");
    const monthSelect = monthField.querySelector("select");
    const csv = h("button", { type: "button", class: "button secondary small", text: "Download CSV" });
    const pdf = h("button", { type: "button", class: "button secondary small", text: "Download PDF" });
    const form = h("form", { class: "filters statement-form", novalidate: true, "aria-label": "Choose a statement" },
      accountPicker, monthField);
    const downloads = h("div", { class: "downloads", role: "group", "aria-label": "Download this statement" },
      h("span", { class: "muted small", text: "Download:" }), csv, pdf);
    const chosen = () => ({ account: byId.get(accountSelect.value), month: monthSelect.value || currentMonth() });

    const show = async () => {
      const { account, month } = chosen();
      view.replaceChildren(h("p", { class: "loading", role: "status", text: "Loading the statement…" }));
      try {
        view.replaceChildren(statementView(await api.statements.get(account.id, month)));
      } catch (error) {
        view.replaceChildren(h("p", { class: "error-text", role: "alert", text: statementMessage(error) }));
      }
    };
    // The months with transactions, newest first; the current month is always offered
    // (a statement to date), so a new account has something to show.
    const loadMonths = async (wanted) => {
      const account = byId.get(accountSelect.value);
      const months = api.itemsOf(await api.statements.list(account.id, { limit: 100 }));
      const current = currentMonth();
      if (!months.some((m) => m.month === current)) months.unshift({ month: current, is_partial: true });
      monthSelect.replaceChildren(...months.map((m) => h("option", { value: m.month, selected: m.month === wanted,
        text: m.is_partial ? `${monthName(m.month)} (to date)` : monthName(m.month) })));
    };
    accountSelect.addEventListener("change", async () => {
      try {
        await loadMonths(null);
        await show();
      } catch (error) {
        view.replaceChildren(h("p", { class: "error-text", role: "alert", text: statementMessage(error) }));
      }
    });
    monthSelect.addEventListener("change", show);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show();
    });

    const download = (format, button) => async () => {
      const { account, month } = chosen();
      setBusy(button, true, "Preparing…");
      try {
        const blob = await api.statements.download(account.id, month, format);
        const last4 = String(account.number).slice(-4);
        saveBlob(blob instanceof Blob ? blob : new Blob([blob]), `statement-${last4}-${month}.${format}`);
      } catch (error) {
        view.replaceChildren(h("p", { class: "error-text", role: "alert", text: statementMessage(error) }));
      } finally {
        setBusy(button, false);
      }
    };
    csv.addEventListener("click", download("csv", csv));
    pdf.addEventListener("click", download("pdf", pdf));

    try {
      await loadMonths(query.month ?? null);
    } catch (error) {
      return errorPanel("Statements", { ...error, message: statementMessage(error) });
    }
    await show();
    return h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h1", { text: "Statements" }),
        h("p", { class: "muted", text: "A month of an account: opening and closing balance and every line." })),
      form, downloads, view);
  },
};
