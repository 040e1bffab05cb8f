// Webhooks: register endpoints (the signing secret is shown once), see each endpoint's
// deliveries with their attempts, retry a delivery, rotate the secret, disable or delete.

import * as api from "../api.js";
import { clearErrors, field, formatDateTime, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { errorPanel, loadMore, statusBadge } from "../ui.js";

const enc = encodeURIComponent;
const hooks = {
  list: () => api.request("GET", "/v1/webhook-endpoints"),
  create: (body) => api.request("POST", "/v1/webhook-endpoints", { body }),
  update: (id, body) => api.request("PATCH", `/v1/webhook-endpoints/${enc(id)}`, { body }),
  remove: (id) => api.request("DELETE", `/v1/webhook-endpoints/${enc(id)}`),
  rotate: (id) => api.request("POST", `/v1/webhook-endpoints/${enc(id)}/rotate-secret`, { body: {} }),
  deliveries: (id, query) =>
    api.request("GET", `/v1/webhook-endpoints/${enc(id)}/deliveries`, { query }),
  retry: (id, deliveryId) =>
    api.request("POST", `/v1/webhook-endpoints/${enc(id)}/deliveries/${enc(deliveryId)}/retry`),
};

function secretNotice(secret) {
  return h("div", { class: "card", role: "status" },
    h("h2", { text: "Signing secret" }),
    h("p", { text: "Copy it now: it is shown only this once. Verify each delivery's "
      + "Banking-Signature header with it." }),
    h("p", {}, h("code", { class: "secret", text: secret })));
}

function attemptLine(attempt) {
  const outcome = attempt.status_code ? `HTTP ${attempt.status_code}` : (attempt.error || "no answer");
  return h("li", { class: "muted small" },
    `${formatDateTime(attempt.attempted_at)} · ${outcome} · ${attempt.latency_ms} ms`
    + (attempt.response_excerpt ? ` · “${attempt.response_excerpt.slice(0, 80)}”` : ""));
}

function deliveryRow(endpoint, delivery, refresh) {
  const retry = h("button", { type: "button", class: "button secondary small" }, "Retry");
  retry.setAttribute("aria-label", `Retry delivery of ${delivery.event_type}`);
  retry.addEventListener("click", async () => {
    setBusy(retry, true, "Retrying…");
    try {
      await hooks.retry(endpoint.id, delivery.id);
      flash("The delivery will be sent again.");
      await refresh();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(retry, false);
    }
  });
  return h("tr", {},
    h("td", {}, h("code", { text: delivery.event_type })),
    h("td", {}, statusBadge(delivery.status) ?? delivery.status),
    h("td", { text: String(delivery.attempts) }),
    h("td", { text: formatDateTime(delivery.delivered_at ?? delivery.last_attempt_at ?? delivery.created_at) }),
    h("td", {}, h("ul", { class: "plain" }, delivery.attempt_log.map(attemptLine))),
    h("td", {}, retry));
}

function deliveriesPanel(endpoint) {
  const body = h("tbody", {});
  const table = h("table", { class: "table" },
    h("caption", { text: "Deliveries, newest first" }),
    h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last", "Attempts log", ""]
      .map((label) => h("th", { scope: "col", text: label })))),
    body);
  const panel = h("div", { class: "deliveries" }, table);
  let more = null;
  const reload = async () => {
    body.replaceChildren();
    const next = loadMore(
      (cursor) => hooks.deliveries(endpoint.id, { limit: 20, cursor }),
      (items) => {
        if (!items.length && !body.children.length) {
          body.append(h("tr", {}, h("td", { colspan: 6, class: "muted", text: "No deliveries yet." })));
        }
        body.append(...items.map((delivery) => deliveryRow(endpoint, delivery, reload)));
      },
      "More deliveries",
    );
    if (more) more.element.replaceWith(next.element);
    else panel.append(next.element);
    more = next;
    await next.load();
  };
  reload();
  return panel;
}

function endpointCard(endpoint, { rerender }) {
  const details = h("div", {});
  const show = h("button", { type: "button", class: "button secondary small" }, "Deliveries");
  show.addEventListener("click", () => {
    details.replaceChildren(deliveriesPanel(endpoint));
  });
  const toggle = h("button", { type: "button", class: "button secondary small" },
    endpoint.status === "enabled" ? "Disable" : "Enable");
  toggle.addEventListener("click", async () => {
    setBusy(toggle, true);
    try {
      await hooks.update(endpoint.id,
        { status: endpoint.status === "enabled" ? "disabled" : "enabled" });
      await rerender();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(toggle, false);
    }
  });
  const rotate = h("button", { type: "button", class: "button secondary small" }, "Rotate secret");
  rotate.addEventListener("click", async () => {
    setBusy(rotate, true, "Rotating…");
    try {
      const rotated = await hooks.rotate(endpoint.id);
      details.replaceChildren(secretNotice(rotated.secret),
        h("p", { class: "muted small", text: "The previous secret keeps signing until "
          + `${formatDateTime(rotated.previous_secret_expires_at)}.` }));
    } catch (error) {
      flash(error.message, { kind: "error" });
    }
    setBusy(rotate, false);
  });
  const remove = h("button", { type: "button", class: "button danger small" }, "Delete");
  remove.addEventListener("click", async () => {
    if (!window.confirm(`Delete the endpoint ${endpoint.url} and its delivery history?`)) return;
    setBusy(remove, true, "Deleting…");
    try {
      await hooks.remove(endpoint.id);
      flash("The endpoint was deleted.");
      await rerender();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(remove, false);
    }
  });
  return h("li", { class: "card webhook" },
    h("div", { class: "account-head" },
      h("h3", {}, h("code", { text: endpoint.url })),
      statusBadge(endpoint.status === "enabled" ? null : "disabled")),
    h("p", { class: "muted small" },
      `${endpoint.description ? `${endpoint.description} · ` : ""}`
      + `events: ${endpoint.event_types.join(", ")}`
      + (endpoint.disabled_reason ? ` · disabled (${endpoint.disabled_reason})` : "")),
    h("div", { class: "actions" }, show, toggle, rotate, remove),
    details);
}

function createForm(onCreated) {
  const form = h("form", { class: "form", novalidate: true },
    field({ label: "URL", name: "url", type: "url", hint: "https://… (your server's address)" }),
    field({ label: "Event types", name: "event_types", required: false,
      hint: "Comma-separated, e.g. transfer.*, card.*; empty for every event." }),
    field({ label: "Description", name: "description", required: false }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Add endpoint")));
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    clearErrors(form);
    const values = formValues(form);
    const types = String(values.event_types || "").split(",").map((t) => t.trim()).filter(Boolean);
    const button = form.querySelector("button[type=submit]");
    setBusy(button, true, "Adding…");
    try {
      const created = await hooks.create({
        url: values.url,
        event_types: types.length ? types : ["*"],
        ...(values.description ? { description: values.description } : {}),
      });
      form.reset();
      await onCreated(created);
    } catch (error) {
      showErrors(form, error);
    }
    setBusy(button, false);
  });
  return form;
}

export default {
  path: "/webhooks",
  title: "Webhooks",
  auth: true,
  nav: "Webhooks",
  async render() {
    const list = h("ul", { class: "webhooks plain", "aria-live": "polite" });
    const notice = h("div", {});
    const rerender = async () => {
      const endpoints = api.itemsOf(await hooks.list());
      list.replaceChildren(...(endpoints.length
        ? endpoints.map((endpoint) => endpointCard(endpoint, { rerender }))
        : [h("li", { class: "muted", text: "No endpoints yet." })]));
    };
    try {
      await rerender();
    } catch (error) {
      return errorPanel("Webhooks could not be loaded", error);
    }
    return h("section", { class: "card" },
      h("div", { class: "page-head" },
        h("h1", { text: "Webhooks" }),
        h("p", { class: "muted", text: "Your server is told of each event on your accounts, "
          + "signed with a secret only you and the bank know." })),
      notice,
      createForm(async (created) => {
        notice.replaceChildren(secretNotice(created.secret));
        await rerender();
      }),
      h("h2", { text: "Endpoints" }),
      list);
  },
};
