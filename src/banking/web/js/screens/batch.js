import * as api from "../api.js";
import { attempt } from "../attempt.js";
import { clearErrors, h, nextId, setBusy, showErrors } from "../dom.js";
import { formatMoney, parseAmount } from "../money.js";
import { accountOption, errorPanel, formatNumber, select } from "../ui.js";

// Batch upload: a CSV of transfers from one of your accounts, previewed line by line
// (with any line that cannot be sent marked) before one request sends them all under one
// Idempotency-Key. "All or nothing" sends none if any is declined; "each on its own"
// sends what it can and lists each result.
const MAX_ITEMS = 1000;
const EXAMPLE = "account_number,amount,description\n123456789012,25.00,Rent share";

// Split one CSV line: commas, with "quoted, fields" and "" for a quote inside quotes.
export function splitCsvLine(line) {
  const cells = [];
  let cell = "";
  let quoted = false;
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index];
    if (quoted) {
      if (char === '"' && line[index + 1] === '"') {
        cell += '"';
        index += 1;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      cells.push(cell.trim());
      cell = "";
    } else cell += char;
  }
  cells.push(cell.trim());
  return cells;
}

// The CSV's rows as transfers (or the reason a row cannot be one), for `currency`.
export function parseBatch(text, currency) {
  const lines = String(text).split(/\r?\n/).filter((line) => line.trim());
  if (lines.length && /account/i.test(lines[0]) && /amount/i.test(lines[0])) lines.shift();
  return lines.map((line, index) => {
    const [number = "", amountText = "", description = ""] = splitCsvLine(line);
    const digits = number.replace(/\s/g, "");
    const amount = parseAmount(amountText, currency);
    let problem = null;
    if (!/^\d{12}$/.test(digits)) problem = "the account number must be 12 digits";
    else if (amount === null) problem = "the amount must be greater than zero, like 25.50";
    else if (description.length > 140) problem = "the description is longer than 140 characters";
    return { line: index + 1, number: digits, amount, description, problem };
  });
}

export default {
  path: "/batch",
  title: "Batch transfers",
  auth: true,
  nav: "Batch",
  async render() {
    let accounts;
    try {
      accounts = api.itemsOf(await api.accounts.list()).filter((a) => a.status === "active");
    } catch (error) {
      return errorPanel("Batch transfers", error);
    }
    const head = h("div", { class: "page-head" },
      h("h1", { text: "Batch transfers" }),
      h("p", { class: "muted", text: "Upload a CSV of transfers, check them, then send them together." }));
    if (!accounts.length) {
      return h("section", { class: "card narrow" }, head,
        h("p", { class: "empty" }, "Open an account first. ",
          h("a", { href: "#/accounts/new", text: "Open an account" })));
    }
    const fileId = nextId("csv");
    const sourceField = select({ label: "From", name: "source_account_id", value: accounts[0].id,
      options: accounts.map((a) => [a.id, accountOption(a)]) });
    const modeField = select({ label: "If one is declined", name: "mode", value: "all_or_nothing",
      options: [["all_or_nothing", "Send none of them (all or nothing)"],
        ["independent", "Send the others (each on its own)"]] });
    const file = h("input", { id: fileId, name: "file", type: "file", accept: ".csv,text/csv",
      "aria-describedby": `${fileId}-hint` });
    const form = h("form", { class: "stack", novalidate: true },
      sourceField, modeField,
      h("div", { class: "field", "data-field": "file" },
        h("label", { for: fileId, text: "CSV file" }),
        h("p", { class: "hint", id: `${fileId}-hint` },
          "Columns: account number, amount, description (optional). For example: ",
          h("code", { text: EXAMPLE.split("\n")[1] })),
        file,
        h("p", { class: "field-error", id: `${fileId}-error`, hidden: true })));
    const preview = h("div", { "aria-live": "polite" });
    const results = h("div", { "aria-live": "polite" });
    const current = attempt(form);
    let rows = [];

    const source = () => accounts.find((a) => a.id === sourceField.querySelector("select").value);
    const showPreview = () => {
      results.replaceChildren();
      clearErrors(form);
      if (!rows.length) {
        preview.replaceChildren();
        return;
      }
      const { currency } = source();
      rows = rows.map((row) => ({ ...row, ...parseBatch(row.raw, currency)[0], line: row.line }));
      const bad = rows.filter((row) => row.problem);
      const total = rows.reduce((sum, row) => sum + (row.amount ?? 0), 0);
      const send = h("button", { type: "button", class: "button primary",
        text: `Send ${rows.length} transfer${rows.length === 1 ? "" : "s"} (${formatMoney(total, currency)})`,
        disabled: bad.length > 0 || rows.length > MAX_ITEMS });
      send.addEventListener("click", () => sendBatch(send));
      preview.replaceChildren(h("section", { class: "confirm", "aria-labelledby": "preview-heading" },
        h("h2", { id: "preview-heading", text: "Preview" }),
        rows.length > MAX_ITEMS ? h("p", { class: "notice", text: `At most ${MAX_ITEMS} transfers in one batch.` }) : null,
        bad.length ? h("p", { class: "notice", role: "alert", text: `${bad.length} line(s) cannot be sent: fix the file and upload it again.` }) : null,
        table(rows.map((row) => [row.line, row.number ? formatNumber(row.number) : "—",
          row.amount === null ? "—" : formatMoney(row.amount, currency), row.description || "",
          row.problem ?? "Ready"]), ["Line", "To account", "Amount", "Description", "Check"],
        rows.map((row) => (row.problem ? "declined" : ""))),
        h("div", { class: "actions" }, send)));
    };

    const sendBatch = async (button) => {
      const from = source();
      const items = rows.map((row) => ({
        source_account_id: from.id, target_account_number: row.number, amount: row.amount,
        ...(row.description ? { description: row.description } : {}),
      }));
      const mode = modeField.querySelector("select").value;
      setBusy(button, true, "Sending…");
      try {
        const batch = await api.request("POST", "/v1/transfer-batches",
          { body: { mode, items }, idempotencyKey: current.key });
        current.settle();
        showResults(batch.items, batch.posted, from.currency);
        preview.replaceChildren();
      } catch (error) {
        current.settle(error);
        setBusy(button, false);
        if (error.code === "batch_rejected") {
          showResults(error.body.items, 0, from.currency,
            `Nothing was sent: line ${error.body.failed_item_index + 1} was refused (${String(error.body.reason).replace(/_/g, " ")}).`);
        } else {
          showErrors(form, error);
        }
      }
    };

    const showResults = (items, posted, currency, message = null) => {
      results.replaceChildren(h("section", { class: "card", "aria-labelledby": "results-heading" },
        h("h2", { id: "results-heading", text: "Result" }),
        h("p", { role: "status", class: message ? "error-text" : "",
          text: message ?? `${posted} of ${items.length} transfers sent.` }),
        table(items.map((item) => [item.index + 1, rows[item.index] ? formatNumber(rows[item.index].number) : "",
          rows[item.index] ? formatMoney(rows[item.index].amount, currency) : "",
          item.status === "posted" ? "Sent" : item.status === "declined" ? "Declined" : "Not sent",
          item.code ? item.code.replace(/_/g, " ") : ""]),
        ["Line", "To account", "Amount", "Result", "Reason"],
        items.map((item) => (item.status === "posted" ? "credit" : "declined")))));
    };

    file.addEventListener("change", async () => {
      const chosen = file.files?.[0];
      if (!chosen) return;
      const text = await chosen.text();
      const lines = String(text).split(/\r?\n/).filter((line) => line.trim());
      if (lines.length && /account/i.test(lines[0]) && /amount/i.test(lines[0])) lines.shift();
      rows = lines.map((raw, index) => ({ raw, line: index + 1 }));
      if (!rows.length) {
        showErrors(form, { message: "The file has no transfers.",
          errors: [{ field: "file", reason: "the file has no transfer lines" }] });
        preview.replaceChildren();
        return;
      }
      showPreview();
    });
    sourceField.querySelector("select").addEventListener("change", showPreview);

    return h("section", { class: "card narrow" }, head, form, preview, results);
  },
};

function table(rows, headings, classes) {
  return h("div", { class: "table-wrap" }, h("table", { class: "transactions batch" },
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col", text })))),
    h("tbody", {}, rows.map((cells, index) => h("tr", { class: classes[index] || null },
      cells.map((cell, column) => h("td", { "data-label": headings[column], text: String(cell) })))))));
}
