// Boot: register the screens, draw the navigation, start the router.
// Adding a screen = one module in screens/ plus one line in SCREENS.

import * as api from "./api.js";
import { clear, h } from "./dom.js";
import { flash, mountFlash, showPendingFlash } from "./flash.js";
import * as router from "./router.js";
import account from "./screens/account.js";
import cards from "./screens/cards.js";
import dashboard from "./screens/dashboard.js";
import login from "./screens/login.js";
import notFound from "./screens/notfound.js";
import openAccount from "./screens/open-account.js";
import profile from "./screens/profile.js";
import sessions from "./screens/sessions.js";
import signup from "./screens/signup.js";
import staff from "./screens/staff.js";
import statements from "./screens/statements.js";
import transfer from "./screens/transfer.js";

// Order matters twice: the first matching path wins ("/accounts/new" before
// "/accounts/:id"), and screens with `nav` appear in the navigation in this order.
const SCREENS = [
  dashboard, transfer, cards, statements, profile, sessions, staff,
  openAccount, account, login, signup, notFound,
];

function drawNav() {
  const nav = document.getElementById("nav");
  const here = router.currentPath();
  const link = (path, label) => h("a", {
    href: `#${path}`, "aria-current": path === here ? "page" : null,
  }, label);
  const items = [];
  if (api.isSignedIn()) {
    for (const screen of router.screensInNav()) {
      if (!screen.navIf || screen.navIf()) items.push(link(screen.path, screen.nav));
    }
    items.push(h("button", {
      type: "button", class: "link-button nav-logout",
      onclick: async () => {
        try {
          await api.logout();
        } catch {
          // Logged out locally either way.
        }
        flash("You are logged out.", { next: true });
        router.navigate("/login");
      },
    }, "Log out"));
  } else {
    items.push(link("/login", "Log in"), link("/signup", "Sign up"));
  }
  clear(nav).append(h("ul", {}, items.map((item) => h("li", {}, item))));
}

function guard(screen, path) {
  if (screen.auth && !api.isSignedIn()) {
    return path === "/" ? "/login" : `/login?next=${encodeURIComponent(path)}`;
  }
  if (!screen.auth && api.isSignedIn() && (screen === login || screen === signup)) return "/";
  return null;
}

mountFlash(document.getElementById("flash"));
router.register(...SCREENS);
api.onAuthChange((signedIn, reason) => {
  drawNav();
  // A session the server ended (refresh refused) sends the user to log in again.
  if (!signedIn && reason === "expired") {
    flash("Your session has ended. Please log in again.", { kind: "error", next: true });
    router.navigate("/login?reason=expired");
  }
});
router.start({
  outlet: document.getElementById("main"),
  guard,
  afterRender: () => {
    drawNav();
    showPendingFlash();
  },
});
