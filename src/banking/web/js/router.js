// A hash router: "#/sessions", "#/accounts/:id". Each screen is a plain object
// { path, title, auth, nav, render(context) } registered in main.js; render returns a Node
// (or a Promise of one). Screens needing a signed-in user redirect to the login screen.

import { clear, h } from "./dom.js";

const screens = [];
let outlet = null;
let guard = () => true;
let afterRender = () => {};
let beforeRender = async () => {};
let renderCount = 0;
let liveUpdate = null;

// A screen that can bring its figures up to date in place (without touching its forms)
// registers how, for the live notifications; each render starts without one.
export function onLiveUpdate(update) {
  liveUpdate = update;
}

export function liveUpdater() {
  return liveUpdate;
}

export function register(...list) {
  for (const screen of list) {
    const names = [];
    const source = screen.path
      .split("/")
      .map((part) => {
        if (!part.startsWith(":")) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        names.push(part.slice(1));
        return "([^/]+)";
      })
      .join("/");
    screens.push({ ...screen, pattern: new RegExp(`^${source}$`), names });
  }
}

export function screensInNav() {
  return screens.filter((screen) => screen.nav);
}

export function currentPath() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  return hash.split("?")[0];
}

export function navigate(path) {
  if (`#${path}` === window.location.hash) render();
  else window.location.hash = path;
}

function match(path) {
  for (const screen of screens) {
    const found = screen.pattern.exec(path);
    if (found) {
      const params = Object.fromEntries(
        screen.names.map((name, i) => [name, decodeURIComponent(found[i + 1])]),
      );
      return { screen, params };
    }
  }
  return null;
}

// `{ live: true }`: a redraw for fresh figures, not a navigation. The old view stays until
// the new one is ready, and the message on screen, the focus and the scroll position stay.
export async function render(options = {}) {
  const live = options.live === true;
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?");
  const query = Object.fromEntries(new URLSearchParams(search));
  const found = match(path) ?? match("*");
  const redirect = guard(found.screen, path);
  if (redirect) {
    navigate(redirect);
    return;
  }
  const token = ++renderCount;
  liveUpdate = null;
  document.title = `${found.screen.title} · Banking`;
  if (!live) clear(outlet).append(h("p", { class: "loading", text: "Loading…" }));
  let view;
  try {
    await beforeRender(found.screen);
    if (token !== renderCount) return; // a newer navigation won
    view = await found.screen.render({ params: found.params, query, navigate, path });
  } catch (error) {
    view = h("section", { class: "card" },
      h("h1", { text: "Something went wrong" }),
      h("p", { class: "error-text", text: error.message || String(error) }));
  }
  if (token !== renderCount) return; // a newer navigation won
  clear(outlet).append(view);
  afterRender(found.screen, { live });
  if (live) return;
  // Move focus to the new heading so keyboard and screen-reader users land on the content.
  const heading = outlet.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

export function start(options) {
  outlet = options.outlet;
  guard = options.guard ?? guard;
  afterRender = options.afterRender ?? afterRender;
  beforeRender = options.beforeRender ?? beforeRender;
  window.addEventListener("hashchange", render);
  render();
}
