import * as api from "../api.js";
import { clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { formatMoney, parseAmount } from "../money.js";
import { accountOption, capitalize, errorPanel, select } from "../ui.js";

// Scheduled and standing transfers: create one (to a payee or an account number, once or
// daily / weekly / monthly), see each with its next run and last result, cancel one.
const FREQUENCIES = [["once", "Once"], ["daily", "Every day"], ["weekly", "Every week"],
  ["monthly", "Every month"]];
const RESULTS = { posted: "Sent", declined: "Declined, will retry", failed: "Failed" };

export default {
  path: "/scheduled",
  title: "Scheduled transfers",
  auth: true,
  nav: "Scheduled",
  async render({ query, navigate }) {
    let accounts;
    let payees;
    let schedules;
    try {
      [accounts, payees, schedules] = await Promise.all([
        api.accounts.list(), api.request("GET", "/v1/payees"),
        api.request("GET", "/v1/scheduled-transfers")]);
    } catch (error) {
      return errorPanel("Scheduled transfers", error);
    }
    accounts = api.itemsOf(accounts).filter((a) => a.status !== "closed");
    payees = api.itemsOf(payees);
    schedules = api.itemsOf(schedules);
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const reload = () => navigate("/scheduled");

    const list = schedules.length
      ? h("ul", { class: "schedule-list" }, schedules.map((item) => scheduleItem(item, byId, reload)))
      : h("p", { class: "empty", text: "No scheduled transfers yet." });
    const head = h("div", { class: "page-head" },
      h("h1", { text: "Scheduled transfers" }),
      h("p", { class: "muted", text: "One-off transfers on a date, and standing orders." }));
    if (!accounts.length) {
      return h("section", { class: "card narrow" }, head, list);
    }
    return h("section", { class: "card narrow" }, head, list,
      createForm(accounts, payees, query.payee, reload));
  },
};

function scheduleItem(item, byId, reload) {
  const source = byId.get(item.source_account_id);
  const frequency = FREQUENCIES.find(([value]) => value === item.frequency)?.[1] ?? item.frequency;
  const cancel = item.status === "active"
    ? h("button", { type: "button", class: "button danger small", text: "Cancel",
      "aria-label": `Cancel ${item.description || "scheduled transfer"}` })
    : null;
  cancel?.addEventListener("click", async () => {
    setBusy(cancel, true, "Cancelling…");
    try {
      await api.request("POST", `/v1/scheduled-transfers/${encodeURIComponent(item.id)}/cancel`);
      flash("The scheduled transfer is cancelled.", { next: true });
      reload();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(cancel, false);
    }
  });
  const last = item.last_result
    ? `${RESULTS[item.last_result] ?? item.last_result}${item.last_reason ? ` (${item.last_reason.replace(/_/g, " ")})` : ""} · ${formatDateTime(item.last_run_at)}`
    : "Not run yet";
  return h("li", { class: "schedule", "data-status": item.status },
    h("div", {},
      h("strong", { text: `${formatMoney(item.amount, item.currency)} · ${frequency}` }),
      h("span", { class: "muted", text: ` to ·· ${String(item.target_account_number).slice(-4)}` }),
      item.description ? h("p", { class: "small", text: item.description }) : null,
      h("dl", { class: "summary small" },
        h("div", {}, h("dt", { text: "From" }),
          h("dd", { text: source ? accountOption(source, { withBalance: false }) : "—" })),
        h("div", {}, h("dt", { text: "Next run" }),
          h("dd", { class: "next-run", text: item.next_run_at ? formatDateTime(item.next_run_at) : capitalize(item.status) })),
        h("div", {}, h("dt", { text: "Last result" }), h("dd", { class: "last-result", text: last })))),
    cancel ? h("div", { class: "actions" }, cancel) : null);
}

// A datetime-local value a few minutes from now, in the browser's time zone.
function soon() {
  const moment = new Date(Date.now() + 10 * 60 * 1000);
  moment.setSeconds(0, 0);
  const local = new Date(moment.getTime() - moment.getTimezoneOffset() * 60 * 1000);
  return local.toISOString().slice(0, 16);
}

function createForm(accounts, payees, payeeId, reload) {
  const targets = [
    ...payees.map((p) => [`payee:${p.id}`, `${p.name} (${p.holder_name})`]),
    ...accounts.map((a) => [`account:${a.id}`, accountOption(a, { withBalance: false })]),
    ["number:", "Another account number…"],
  ];
  const submit = h("button", { type: "submit", class: "button primary", text: "Schedule" });
  const numberField = field({ label: "Account number", name: "target_account_number",
    inputmode: "numeric", autocomplete: "off", maxlength: 14, hint: "12 digits." });
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "new-schedule" },
    h("h2", { id: "new-schedule", text: "Schedule a transfer" }),
    select({ label: "From", name: "source_account_id", value: accounts[0].id,
      options: accounts.map((a) => [a.id, accountOption(a)]) }),
    select({ label: "To", name: "target", value: payeeId ? `payee:${payeeId}` : targets[0][0],
      options: targets }),
    numberField,
    field({ label: "Amount", name: "amount", inputmode: "decimal", autocomplete: "off" }),
    field({ label: "Description", name: "description", required: false, maxlength: 140 }),
    field({ label: "First run", name: "first_run_at", type: "datetime-local", value: soon(),
      hint: "Monthly on the 31st runs on the last day of shorter months." }),
    select({ label: "Repeat", name: "frequency", value: "monthly", options: FREQUENCIES }),
    field({ label: "Number of times", name: "count", inputmode: "numeric", required: false,
      hint: "Leave empty to repeat until you cancel." }),
    submit);
  const showNumber = () => {
    numberField.hidden = !formValues(form).target.startsWith("number:");
  };
  showNumber();
  form.addEventListener("change", showNumber);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const source = accounts.find((a) => a.id === values.source_account_id);
    const amount = parseAmount(values.amount, source.currency);
    const [kind, id] = values.target.split(/:(.*)/s);
    const number = (values.target_account_number || "").replace(/\s/g, "");
    const firstRun = values.first_run_at ? new Date(values.first_run_at) : null;
    const problems = [];
    if (amount === null) problems.push({ field: "amount", reason: "enter an amount greater than zero, like 25.50" });
    if (kind === "number" && !/^\d{12}$/.test(number)) {
      problems.push({ field: "target_account_number", reason: "enter the 12 digits of the account number" });
    }
    if (!firstRun || Number.isNaN(firstRun.getTime())) problems.push({ field: "first_run_at", reason: "choose a date and time" });
    if (values.count && !/^\d+$/.test(values.count)) problems.push({ field: "count", reason: "enter a whole number" });
    if (problems.length) {
      showErrors(form, { message: "Check the highlighted fields.", errors: problems });
      return;
    }
    const target = kind === "payee" ? { payee_id: id }
      : kind === "account" ? { target_account_id: id } : { target_account_number: number };
    const count = values.count && values.frequency !== "once" ? Number(values.count) : null;
    setBusy(submit, true, "Scheduling…");
    try {
      const created = await api.request("POST", "/v1/scheduled-transfers", { body: {
        source_account_id: source.id, ...target, amount,
        first_run_at: firstRun.toISOString(), frequency: values.frequency,
        ...(values.description ? { description: values.description } : {}),
        ...(count ? { count } : {}),
      } });
      flash(`Scheduled: first run ${formatDateTime(created.next_run_at)}.`, { next: true });
      reload();
    } catch (error) {
      showErrors(form, error);
      setBusy(submit, false);
    }
  });
  return form;
}
