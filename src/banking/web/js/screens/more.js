import * as api from "../api.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import * as router from "../router.js";

// On phones the bottom bar has room for a few tabs; every other screen is listed here.
export default {
  path: "/more",
  title: "More",
  auth: true,
  nav: "More",
  icon: "more",
  render() {
    const screens = router.screensInNav()
      .filter((screen) => screen.path !== "/more" && (!screen.navIf || screen.navIf()));
    return h("section", { class: "card narrow" },
      h("h1", { text: "More" }),
      h("ul", { class: "menu-list" }, screens.map((screen) => h("li", {},
        h("a", { href: `#${screen.path}`, class: "menu-link" },
          icon(screen.icon ?? "list"), h("span", { text: screen.nav }))))),
      api.currentUser()?.email
        ? h("p", { class: "muted small", text: `Logged in as ${api.currentUser().email}` }) : null);
  },
};
