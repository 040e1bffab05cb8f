import * as api from "../api.js";
import { formatDateTime, h, setBusy } from "../dom.js";
import { flash } from "../flash.js";

// "Mozilla/5.0 (X11; Linux x86_64) … Chrome/120 …" → "Chrome on Linux".
export function describeDevice(userAgent) {
  if (!userAgent) return "Unknown device";
  const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"],
    ["Safari/", "Safari"], ["python-httpx", "API client"], ["banking-client", "API client"]]
    .find(([marker]) => userAgent.includes(marker))?.[1] ?? "Browser";
  const system = [["iPhone", "iPhone"], ["Android", "Android"], ["Windows", "Windows"],
    ["Mac OS", "macOS"], ["Linux", "Linux"]]
    .find(([marker]) => userAgent.includes(marker))?.[1];
  return system ? `${browser} on ${system}` : browser;
}

function sessionRow(session, { navigate, refresh }) {
  const button = h("button", { type: "button", class: "button danger small" },
    session.current ? "Log out" : "Revoke");
  button.setAttribute("aria-label", session.current
    ? "Log out of this device"
    : `Revoke ${describeDevice(session.user_agent)} session from ${session.ip ?? "unknown address"}`);
  button.addEventListener("click", async () => {
    setBusy(button, true, "Revoking…");
    try {
      if (session.current) {
        await api.logout();
        flash("You are logged out.", { next: true });
        navigate("/login");
        return;
      }
      await api.sessions.revoke(session.id);
      flash("The session was revoked; that device must log in again.");
      await refresh();
    } catch (error) {
      flash(error.message, { kind: "error" });
      setBusy(button, false);
    }
  });
  return h("li", { class: "session" },
    h("div", { class: "session-main" },
      h("p", { class: "session-device" },
        describeDevice(session.user_agent),
        session.current ? h("span", { class: "badge badge-current", text: "This device" }) : null),
      h("p", { class: "muted small" },
        `IP ${session.ip ?? "unknown"} · signed in ${formatDateTime(session.created_at)}`
        + ` · last used ${formatDateTime(session.last_used_at)}`)),
    button);
}

export default {
  path: "/sessions",
  title: "Sessions",
  auth: true,
  nav: "Sessions",
  icon: "shield",
  async render({ navigate }) {
    const list = h("ul", { class: "sessions", "aria-live": "polite" });
    const refresh = async () => {
      const sessions = api.itemsOf(await api.sessions.list());
      list.replaceChildren(...sessions.map((s) => sessionRow(s, { navigate, refresh })));
    };
    await refresh();
    const everywhere = h("button", { type: "button", class: "button secondary" },
      "Log out everywhere");
    everywhere.addEventListener("click", async () => {
      setBusy(everywhere, true, "Logging out…");
      try {
        await api.logout({ everywhere: true });
        flash("Every session has ended.", { next: true });
        navigate("/login");
      } catch (error) {
        flash(error.message, { kind: "error" });
        setBusy(everywhere, false);
      }
    });
    return h("section", { class: "card" },
      h("div", { class: "page-head" },
        h("h1", { text: "Sessions" }),
        h("p", { class: "muted",
          text: "Devices where you are logged in. Revoke any you do not recognise." })),
      list,
      h("div", { class: "actions" }, everywhere));
  },
};
