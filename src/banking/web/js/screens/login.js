import * as api from "../api.js";
import { checkRequired, clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";

export default {
  path: "/login",
  title: "Log in",
  auth: false,
  render({ query, navigate }) {
    const submit = h("button", { type: "submit", class: "button primary" }, "Log in");
    const form = h("form", { class: "stack", novalidate: true },
      field({ label: "Email", name: "email", type: "email", autocomplete: "username",
        value: query.email ?? "" }),
      field({ label: "Password", name: "password", type: "password",
        autocomplete: "current-password" }),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      if (!checkRequired(form)) return;
      const { email, password } = formValues(form);
      setBusy(submit, true, "Logging in…");
      try {
        await api.login(email, password);
        flash("You are logged in.", { next: true });
        navigate(query.next && query.next.startsWith("/") ? query.next : api.isStaff() ? "/staff" : "/");
      } catch (error) {
        showErrors(form, error);
      } finally {
        setBusy(submit, false);
      }
    });
    return h("section", { class: "card narrow" },
      h("h1", { text: "Log in" }),
      query.reason === "expired"
        ? h("p", { class: "notice", text: "Please log in again to continue." })
        : null,
      form,
      h("p", { class: "muted" }, "New here? ", h("a", { href: "#/signup" }, "Open a profile")));
  },
};
