import { h } from "../dom.js";

export default {
  path: "*",
  title: "Not found",
  auth: false,
  render() {
    return h("section", { class: "card narrow" },
      h("h1", { text: "Page not found" }),
      h("p", {}, "There is nothing here. ", h("a", { href: "#/" }, "Go to the home screen")));
  },
};
