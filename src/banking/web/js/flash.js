// Short messages announced politely at the top of the page ("Session revoked.").

import { clear, h } from "./dom.js";

let area = null;
let pending = null;

export function mountFlash(element) {
  area = element;
}

// Show now; with `{ next: true }` show after the next navigation instead.
export function flash(message, { kind = "success", next = false } = {}) {
  if (next) {
    pending = { message, kind };
    return;
  }
  if (!area) return;
  clear(area).append(h("div", { class: `flash flash-${kind}` },
    h("span", { text: message }),
    h("button", {
      type: "button", class: "link-button", "aria-label": "Dismiss message",
      onclick: () => clear(area),
    }, "✕")));
}

export function showPendingFlash() {
  if (!area) return;
  clear(area);
  if (pending) {
    flash(pending.message, { kind: pending.kind });
    pending = null;
  }
}
