// Live notifications from the event stream (GET /v1/events/stream, Server-Sent Events).
// While signed in, one stream stays open (read with fetch: an EventSource cannot send the
// bearer token), resumed with Last-Event-ID after a drop. Each event is announced on
// `window` as a "bank:event" CustomEvent; money arriving shows a message, and the
// dashboard and account pages bring their balances up to date: in place where the screen
// knows how (router.onLiveUpdate), else by a redraw when nothing is being typed.

import * as api from "./api.js";
import { flash } from "./flash.js";
import { formatMoney } from "./money.js";
import * as router from "./router.js";

const RETRY_MIN_MS = 2_000;
const RETRY_MAX_MS = 30_000;
const REDRAW_AFTER_MS = 400;
// Screens that show balances and are safe to redraw (no form being typed into).
const LIVE_PATHS = [/^\/$/, /^\/accounts\/[^/]+$/, /^\/cards$/];
const MONEY_IN = new Set(["transfer.received", "deposit.posted"]);
const MONEY_TYPES = /^(deposit|withdrawal|transfer|reversal)\.|^card\.authorization\./;

// A screen's data loaded before the stream is open could miss what happens in between
// (money arriving while the stream connects); screens wait for it, at most this long.
const READY_WAIT_MS = 1_500;

let controller = null;
let lastEventId = null;
let redrawTimer = null;
let ready = Promise.resolve();
let markReady = () => {};

function announce(event) {
  window.dispatchEvent(new CustomEvent("bank:event", { detail: event }));
  if (MONEY_IN.has(event.type) && event.data?.amount > 0) {
    const amount = formatMoney(event.data.amount, event.data.currency);
    const what = event.type === "transfer.received" ? "Money arrived" : "Deposit received";
    flash(`${what}: ${amount}${event.data.description ? ` — ${event.data.description}` : ""}`);
  } else if (event.type === "webhook_endpoint.disabled") {
    flash("A webhook endpoint was disabled after failing deliveries.", { kind: "error" });
  }
  if (MONEY_TYPES.test(event.type) || event.type.startsWith("account.")) {
    const path = router.currentPath();
    if (LIVE_PATHS.some((pattern) => pattern.test(path))) {
      clearTimeout(redrawTimer);
      // Redraw only the screen the event was for, and never under someone's typing.
      redrawTimer = setTimeout(() => {
        if (router.currentPath() !== path) return;
        const update = router.liveUpdater();
        if (update) update().catch(() => {});
        else if (!isTyping()) router.render({ live: true });
      }, REDRAW_AFTER_MS);
    }
  }
}

// The person is in the middle of something a redraw would undo: a field focused or
// changed from its initial value (a radio or box ticked included), or a disclosure they
// opened (a redraw would close it under their pointer).
function isTyping() {
  const active = document.activeElement;
  if (active && active.matches("input, textarea, select")) return true;
  if (document.querySelector("main details[open]")) return true;
  for (const field of document.querySelectorAll("main input, main textarea, main select")) {
    if (field.type === "radio" || field.type === "checkbox") {
      if (field.checked !== field.defaultChecked) return true;
    } else if (field.tagName === "SELECT") {
      if ([...field.options].some((option) => option.selected !== option.defaultSelected)) return true;
    } else if (field.value !== field.defaultValue) {
      return true;
    }
  }
  return false;
}

// One Server-Sent Events message: "id:", "event:" and "data:" lines, then a blank line.
function dispatchBlock(block) {
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) lastEventId = line.slice(3).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  try {
    announce(JSON.parse(data));
  } catch {
    // A malformed message is skipped; the stream goes on.
  }
}

async function readStream(signal) {
  const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
  const response = await api.openStream("/v1/events/stream", { headers, signal });
  // The server fixed the stream's starting point before answering: from here on, nothing
  // that happens is missed.
  markReady();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      dispatchBlock(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
}

async function follow(signal) {
  let delay = RETRY_MIN_MS;
  while (!signal.aborted && api.isSignedIn()) {
    try {
      await readStream(signal);
      delay = RETRY_MIN_MS;
    } catch (error) {
      markReady();
      if (signal.aborted || error?.status === 401) return;
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

export function startNotifications() {
  if (controller || !api.isSignedIn()) return;
  controller = new AbortController();
  ready = new Promise((resolve) => {
    markReady = resolve;
    setTimeout(resolve, READY_WAIT_MS);
  });
  follow(controller.signal);
}

// Resolves once the stream is open (or failed, or after READY_WAIT_MS): a screen that
// loads its data after this sees every later change announced.
export function notificationsReady() {
  return ready;
}

export function stopNotifications() {
  controller?.abort();
  controller = null;
  lastEventId = null;
}
