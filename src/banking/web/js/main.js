// Boot: register the screens, draw the navigation, resume the session, start the router.
// Adding a screen = one module in screens/ plus one line in SCREENS. A screen with `nav`
// (its label) appears in the sidebar on desktop and under "More" on phones; `icon` names
// one of icons.js, `tab: true` also puts it in the phone's bottom tab bar.

import * as api from "./api.js";
import { clear, h } from "./dom.js";
import { flash, mountFlash, showPendingFlash } from "./flash.js";
import { icon } from "./icons.js";
import * as router from "./router.js";
import account from "./screens/account.js";
import approvals from "./screens/approvals.js";
import cards from "./screens/cards.js";
import dashboard from "./screens/dashboard.js";
import login from "./screens/login.js";
import more from "./screens/more.js";
import notFound from "./screens/notfound.js";
import batch from "./screens/batch.js";
import openAccount from "./screens/open-account.js";
import payees from "./screens/payees.js";
import profile from "./screens/profile.js";
import reversals from "./screens/reversals.js";
import scheduled from "./screens/scheduled.js";
import sessions from "./screens/sessions.js";
import signup from "./screens/signup.js";
import staff from "./screens/staff.js";
import staffAccount from "./screens/staff-account.js";
import staffAudit from "./screens/staff-audit.js";
import staffEntries from "./screens/staff-entries.js";
import staffPerson from "./screens/staff-person.js";
import statements from "./screens/statements.js";
import transfer from "./screens/transfer.js";
import webhooks from "./screens/webhooks.js";
import { notificationsReady, startNotifications, stopNotifications } from "./notifications.js";

// Order matters twice: the first matching path wins ("/accounts/new" before
// "/accounts/:id"), and screens with `nav` appear in the navigation in this order.
const SCREENS = [
  dashboard, transfer, payees, scheduled, batch, cards, statements, reversals, webhooks,
  staff, approvals, staffEntries, staffAudit, profile, sessions, staffPerson, staffAccount, more,
  openAccount, account, login, signup, notFound,
];

// The phone's bottom bar holds at most this many tabs, "More" included.
const MAX_TABS = 5;

// The bank's name (BANK_NAME on the server, from GET /v1/meta) in the header, the footer
// and the document title; index.html carries the default until it is known.
let bankName = "Banking";

function showBankName(name) {
  if (!name) return;
  bankName = name;
  document.querySelector(".brand-name").textContent = name;
  document.querySelector(".brand-mark").textContent = name.trim().charAt(0).toUpperCase();
  document.querySelector(".footer-bank").textContent = name;
}

function navScreens() {
  return router.screensInNav().filter((screen) => !screen.navIf || screen.navIf());
}

function isHere(screen, here) {
  return screen.path === here || (screen.path !== "/" && here.startsWith(`${screen.path}/`));
}

function navLink(screen, here, extraClass = "") {
  return h("a", {
    href: `#${screen.path}`, class: `nav-link ${extraClass}`.trim(),
    "aria-current": isHere(screen, here) ? "page" : null,
  }, icon(screen.icon ?? "list"), h("span", { class: "nav-label", text: screen.nav }));
}

async function logOut() {
  try {
    await api.logout();
  } catch {
    // Logged out locally either way.
  }
  flash("You are logged out.", { next: true });
  router.navigate("/login");
}

function drawNav() {
  const nav = document.getElementById("nav");
  const area = document.getElementById("account-area");
  const here = router.currentPath();
  document.body.classList.toggle("signed-in", api.isSignedIn());
  if (!api.isSignedIn()) {
    clear(nav);
    clear(area).append(
      h("a", { href: "#/login", class: "header-link", "aria-current": here === "/login" ? "page" : null }, "Log in"),
      h("a", { href: "#/signup", class: "header-link", "aria-current": here === "/signup" ? "page" : null }, "Sign up"));
    return;
  }
  const screens = navScreens();
  const tabs = screens.filter((screen) => screen.tab).slice(0, MAX_TABS - 1);
  const moreScreen = router.screensInNav().find((screen) => screen.path === "/more");
  const items = screens.filter((screen) => screen.path !== "/more").map((screen) =>
    h("li", { class: tabs.includes(screen) ? "is-tab" : "not-tab" }, navLink(screen, here)));
  if (moreScreen) {
    items.push(h("li", { class: "is-tab phone-only" },
      h("a", { href: "#/more", class: "nav-link", "aria-current": here === "/more" ? "page" : null },
        icon("more"), h("span", { class: "nav-label", text: "More" }))));
  }
  clear(nav).append(h("ul", {}, items));
  const user = api.currentUser();
  const name = user?.profile ? `${user.profile.first_name} ${user.profile.last_name}` : user?.email ?? "";
  clear(area).append(
    h("span", { class: "who", text: name }),
    h("button", { type: "button", class: "header-link nav-logout", onclick: logOut },
      icon("logout", { size: 18 }), h("span", { text: "Log out" })));
}

function landing() {
  return api.isStaff() ? "/staff" : "/";
}

function guard(screen, path) {
  if (screen.auth && !api.isSignedIn()) {
    return path === "/" ? "/login" : `/login?next=${encodeURIComponent(path)}`;
  }
  if (!screen.auth && api.isSignedIn() && (screen === login || screen === signup)) return landing();
  // Staff have no accounts: their home is the staff console.
  if (screen === dashboard && api.isStaff()) return "/staff";
  return null;
}

mountFlash(document.getElementById("flash"));
router.register(...SCREENS);
api.onAuthChange((signedIn, reason) => {
  drawNav();
  if (signedIn) startNotifications();
  else stopNotifications();
  // A session the server ended (refresh refused) sends the user to log in again.
  if (!signedIn && reason === "expired") {
    flash("Your session has ended. Please log in again.", { kind: "error", next: true });
    router.navigate("/login?reason=expired");
  }
});
// A reload or a new tab continues the session kept in the refresh cookie; the bank's name
// is asked for meanwhile (without it the header keeps the default).
const [meta] = await Promise.all([api.meta().catch(() => null), api.resume()]);
showBankName(meta?.bank_name);
router.start({
  outlet: document.getElementById("main"),
  guard,
  // A signed-in screen loads its data once the event stream is open, so money arriving
  // meanwhile is announced and redrawn, not silently missed.
  beforeRender: (screen) => (screen.auth ? notificationsReady() : null),
  afterRender: (screen, { live }) => {
    document.title = `${screen.title} · ${bankName}`;
    drawNav();
    if (!live) showPendingFlash();
  },
});
