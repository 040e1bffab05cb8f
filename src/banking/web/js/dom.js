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
};

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
    } else {
      list.append(h("li", {}, `${item.field}: ${message}`));
    }
  }
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", { text: "There is a problem" }),
    h("p", { text: error.message }),
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

function humanReason(reason) {
  const text = String(reason || "is invalid");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function setBusy(button, busy, busyText = "Please wait…") {
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
