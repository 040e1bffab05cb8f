import * as api from "../api.js";
import { field, formatDateTime, formValues, h, setBusy } from "../dom.js";
import { loadMore, scrollRegion } from "../ui.js";

// The audit log (admin): who did what, when, with what outcome; filtered by event type,
// user and time.

function actorText(event) {
  if (event.actor_email) return event.actor_email;
  return event.actor_id ? event.actor_id : "System";
}

function targetText(event) {
  if (!event.target_type) return "—";
  return `${event.target_type.replace(/_/g, " ")} ${String(event.target_id ?? "").slice(0, 8)}`;
}

export default {
  path: "/staff/audit",
  title: "Audit log",
  auth: true,
  nav: "Audit log",
  icon: "audit",
  tab: true,
  navIf: () => api.isAdmin(),
  async render({ query, navigate }) {
    if (!api.isAdmin()) {
      return h("section", { class: "card" }, h("h1", { text: "Audit log" }),
        h("p", { class: "notice", text: "The audit log is for admins only." }));
    }
    const submit = h("button", { type: "submit", class: "button secondary inline", text: "Filter" });
    const form = h("form", { class: "filters", "aria-label": "Filter the audit log", novalidate: true },
      field({ label: "Event type", name: "event_type", required: false, value: query.event_type ?? "",
        hint: "e.g. account.frozen" }),
      field({ label: "User id", name: "user", required: false, value: query.user ?? "", autocomplete: "off" }),
      field({ label: "Since", name: "since", type: "date", required: false, value: query.since ?? "" }),
      h("div", { class: "filters-submit" }, submit));
    const tbody = h("tbody");
    const filters = {};
    if (query.event_type) filters.event_type = query.event_type;
    if (query.user) filters.user = query.user;
    if (query.since) filters.since = `${query.since}T00:00:00Z`;
    const status = h("p", { class: "muted small", role: "status" });
    const more = loadMore((cursor) => api.staff.audit({ limit: 25, cursor, ...filters }), (items) => {
      for (const e of items) {
        tbody.append(h("tr", {},
          h("td", { "data-label": "When", class: "nowrap", text: formatDateTime(e.occurred_at) }),
          h("td", { "data-label": "Who", text: actorText(e) }),
          h("td", { "data-label": "What", class: "mono", text: e.event_type }),
          h("td", { "data-label": "Outcome" }, h("span", { class: `badge badge-${e.outcome}`, text: e.outcome })),
          h("td", { "data-label": "Target", class: "muted small", text: targetText(e) }),
          h("td", { "data-label": "Reason", class: "small", text: e.details?.reason ?? "" })));
      }
      if (!tbody.children.length) status.textContent = "No events match.";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = formValues(form);
      const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
      setBusy(submit, true, "Filtering…");
      navigate(`/staff/audit${params.size ? `?${params}` : ""}`);
    });
    await more.load();
    return h("div", { class: "stack-lg" },
      h("section", { class: "card" },
        h("div", { class: "page-head" }, h("h1", { text: "Audit log" }),
          h("p", { class: "muted", text: "Who did what and when, newest first. Reading the log is itself recorded." })),
        form,
        scrollRegion(h("table", { class: "audit" },
          h("caption", { class: "visually-hidden", text: "Audit events, newest first" }),
          h("thead", {}, h("tr", {}, ["When", "Who", "What", "Outcome", "Target", "Reason"].map((t) => h("th", { scope: "col", text: t })))),
          tbody)),
        status, more.element));
  },
};
