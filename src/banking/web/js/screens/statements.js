import * as api from "../api.js";
import { field, formatDateTime, formValues, h, setBusy } from "../dom.js";
import { formatMoney } from "../money.js";
import { accountOption, errorPanel, select, unavailable } from "../ui.js";

// Statements: pick an account and a month, read it, download it as CSV or PDF.

const PATH = "/v1/accounts/{account_id}/statements/{month}";

function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function statementView(statement, account) {
  const money = (value) => formatMoney(value, account.currency);
  const lines = statement.lines ?? [];
  return h("div", { class: "stack" },
    h("dl", { class: "figures wide" },
      h("div", {}, h("dt", { text: "Opening balance" }), h("dd", { text: money(statement.opening_balance) })),
      h("div", {}, h("dt", { text: "Money in" }), h("dd", { text: money(statement.total_credits) })),
      h("div", {}, h("dt", { text: "Money out" }), h("dd", { text: money(statement.total_debits) })),
      h("div", {}, h("dt", { text: "Closing balance" }), h("dd", { class: "amount", text: money(statement.closing_balance) }))),
    lines.length ? h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden", text: "Statement lines" }),
      h("thead", {}, h("tr", {}, ["Date", "Description", "Amount", "Balance"].map((t) =>
        h("th", { scope: "col", text: t, class: t === "Date" || t === "Description" ? null : "num" })))),
      h("tbody", {}, lines.map((line) => h("tr", {},
        h("td", { class: "nowrap", "data-label": "Date", text: formatDateTime(line.created_at ?? line.date) }),
        h("td", { "data-label": "Description", text: line.description ?? line.kind ?? "" }),
        h("td", { class: "num", "data-label": "Amount", text: formatMoney(line.amount, account.currency, { signed: true }) }),
        h("td", { class: "num muted", "data-label": "Balance",
          text: line.balance_after === undefined || line.balance_after === null ? "—" : money(line.balance_after) }))))))
      : h("p", { class: "empty", text: "No transactions in this month." }));
}

export default {
  path: "/statements",
  title: "Statements",
  auth: true,
  nav: "Statements",
  navIf: () => !api.isStaff(),
  async render({ query }) {
    if ((await api.serves("GET", PATH)) === false) return unavailable("Statements", "Statements");
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
    const submit = h("button", { type: "submit", class: "button primary inline", text: "Show statement" });
    const csv = h("button", { type: "button", class: "button secondary", text: "Download CSV" });
    const pdf = h("button", { type: "button", class: "button secondary", text: "Download PDF" });
    const form = h("form", { class: "filters", novalidate: true, "aria-label": "Choose a statement" },
      select({ label: "Account", name: "account", value: query.account ?? accounts[0].id,
        options: accounts.map((a) => [a.id, accountOption(a, { withBalance: false })]) }),
      field({ label: "Month", name: "month", type: "month", value: query.month ?? thisMonth(),
        max: thisMonth(), pattern: "\\d{4}-\\d{2}" }),
      h("div", { class: "filters-submit" }, submit));
    const chosen = () => {
      const values = formValues(form);
      return { account: byId.get(values.account), month: values.month || thisMonth() };
    };
    const show = async () => {
      const { account, month } = chosen();
      setBusy(submit, true, "Loading…");
      try {
        view.replaceChildren(statementView(await api.statements.get(account.id, month), account));
      } catch (error) {
        view.replaceChildren(h("p", { class: api.isMissingEndpoint(error) && error.code !== "not_found" ? "notice" : "error-text",
          role: "alert", text: error.status === 405 ? "Statements are not available on this server yet." : error.message }));
      } finally {
        setBusy(submit, false);
      }
    };
    const download = (format, button) => async () => {
      const { account, month } = chosen();
      setBusy(button, true, "Preparing…");
      try {
        const blob = await api.statements.download(account.id, month, format);
        saveBlob(blob instanceof Blob ? blob : new Blob([blob]), `statement-${account.number}-${month}.${format}`);
      } catch (error) {
        view.replaceChildren(h("p", { class: "error-text", role: "alert", text: error.message }));
      } finally {
        setBusy(button, false);
      }
    };
    csv.addEventListener("click", download("csv", csv));
    pdf.addEventListener("click", download("pdf", pdf));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show();
    });
    await show();
    return h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h1", { text: "Statements" }),
        h("p", { class: "muted", text: "A month of an account: opening and closing balance and every line." })),
      form, h("div", { class: "actions" }, csv, pdf), view);
  },
};
