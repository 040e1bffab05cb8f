// Small DOM helpers. Text always goes in as text nodes, never as HTML.

let uniqueId = 0;

export function nextId(prefix = "id") {
  uniqueId += 1;
  return `${prefix}-${uniqueId}`;
}

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

// A labelled input with a hint and a slot for its error message.
export function field({ label, name, type = "text", hint, required = true, ...rest }) {
  const id = nextId(name);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const input = h("input", {
    id, name, type, required, "aria-describedby": hintId, "data-hint": hintId, ...rest,
  });
  return h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label, required ? null : h("span", { class: "optional" }, " (optional)")),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    input,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form).entries()) values[name] = String(value).trim();
  return values;
}

export function clearErrors(form) {
  form.querySelector(".error-summary")?.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    describe(input, input.dataset.hint);
    const error = input.parentElement.querySelector(".field-error");
    if (error) error.hidden = true;
  }
}

// Errors that concern one field without listing it (business rules, not validation).
const FIELD_OF_CODE = {
  weak_password: "password",
  email_taken: "email",
  underage: "date_of_birth",
  invalid_credentials: "password",
  insufficient_funds: "amount",
  daily_limit_exceeded: "amount",
  amount_too_large: "amount",
  balance_limit_exceeded: "amount",
  currency_mismatch: "target_account_number",
};

// The first line of the summary: people get a sentence, never "Invalid fields: a, b".
function summaryText(error) {
  if (error.code === "validation_error" || error.code === "request_validation") {
    return "Check the highlighted fields.";
  }
  return error.message;
}

// Required inputs left empty (or only spaces), reported before anything is sent.
export function missingFields(form) {
  const errors = [];
  for (const input of form.querySelectorAll("input[required], select[required], textarea[required]")) {
    if (input.closest("[hidden]") || input.disabled) continue;
    if (!String(input.value).trim()) {
      errors.push({ field: input.name, reason: "fill this in" });
    }
  }
  return errors;
}

// Check the required fields; on a problem show it (like a server error) and return false.
export function checkRequired(form, extra = []) {
  const errors = [...missingFields(form), ...extra];
  if (!errors.length) return true;
  showErrors(form, { message: "Check the highlighted fields.", errors });
  return false;
}

// Show an API error on a form: a summary (focused, announced) plus each field's reason
// next to its input.
export function showErrors(form, error) {
  clearErrors(form);
  const list = h("ul");
  const items = [...(error.errors ?? [])];
  if (!items.length && FIELD_OF_CODE[error.code]) {
    items.push({ field: FIELD_OF_CODE[error.code], reason: error.message, inSummary: false });
  }
  for (const item of items) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(item.field)}"]`);
    const input = wrapper?.querySelector("input, select, textarea");
    const message = humanReason(item.reason);
    if (input) {
      const slot = wrapper.querySelector(".field-error");
      slot.textContent = message;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      describe(input, [input.dataset.hint, slot.id].filter(Boolean).join(" "));
      const label = wrapper.querySelector("label").firstChild.textContent;
      if (item.inSummary === false) continue;
      list.append(h("li", {}, h("a", { href: `#${input.id}`, onclick: (event) => {
        event.preventDefault();
        input.focus();
      } }, `${label}: ${message}`)));
    } else if (item.inSummary !== false) {
      list.append(h("li", {}, `${fieldName(item.field)}: ${message}`));
    }
  }
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", { text: "There is a problem" }),
    h("p", { text: summaryText(error) }),
    list.children.length ? list : null,
    error.requestId ? h("p", { class: "request-id" }, `Reference: ${error.requestId}`) : null,
  );
  form.prepend(summary);
  summary.focus();
}

function describe(input, ids) {
  if (ids) input.setAttribute("aria-describedby", ids);
  else input.removeAttribute("aria-describedby");
}

// "date_of_birth" → "Date of birth", for fields that have no input on the form.
function fieldName(name) {
  const text = String(name).split(".").pop().replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// The API's validation reasons are written for programmers; people read these instead.
const REASON_RULES = [
  [/^value error,\s*/i, null],
  [/^field required$/i, () => "Fill this in"],
  [/at least 1 (character|item)/i, () => "Fill this in"],
  [/should have at least (\d+) characters?/i, (m) => `Use at least ${m[1]} characters`],
  [/should have at most (\d+) characters?/i, (m) => `Use at most ${m[1]} characters`],
  [/not a valid email|valid email address|email address/i, () => "Enter an email address like name@example.com"],
  [/valid date|date.*format|input should be a valid date/i, () => "Enter a date, like 1990-05-17"],
  [/phone/i, () => "Enter a phone number in international format, like +14155550100"],
  [/should match pattern|string_pattern_mismatch/i, () => "Check the format"],
  [/valid integer|valid number/i, () => "Enter a number"],
  [/greater than/i, () => "Enter an amount greater than zero"],
];

export function humanReason(reason) {
  let text = String(reason || "is invalid");
  for (const [pattern, rewrite] of REASON_RULES) {
    const found = text.match(pattern);
    if (!found) continue;
    if (rewrite === null) {
      text = text.replace(pattern, "");
      continue;
    }
    text = rewrite(found);
    break;
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function setBusy(button, busy, busyText = "Please wait…") {
  // A button named by aria-label keeps its visible text in its name while busy.
  const named = button.dataset.ariaLabel ?? button.getAttribute("aria-label");
  if (named) {
    button.dataset.ariaLabel = named;
    button.setAttribute("aria-label", busy ? `${busyText} ${named}` : named);
  }
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyText;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  } else {
    button.textContent = button.dataset.label ?? button.textContent;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function formatDateTime(value) {
  if (!value) return "—";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" })
    .format(new Date(value));
}
