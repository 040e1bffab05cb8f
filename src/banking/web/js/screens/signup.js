import * as api from "../api.js";
import { checkRequired, clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";

export default {
  path: "/signup",
  title: "Sign up",
  auth: false,
  render({ navigate }) {
    const submit = h("button", { type: "submit", class: "button primary" }, "Create my profile");
    const form = h("form", { class: "stack", novalidate: true },
      h("div", { class: "row" },
        field({ label: "First name", name: "first_name", autocomplete: "given-name" }),
        field({ label: "Last name", name: "last_name", autocomplete: "family-name" })),
      field({ label: "Email", name: "email", type: "email", autocomplete: "email" }),
      field({ label: "Password", name: "password", type: "password",
        autocomplete: "new-password", minlength: 12,
        hint: "At least 12 characters; not a common password or your email name." }),
      field({ label: "Date of birth", name: "date_of_birth", type: "date",
        autocomplete: "bday", hint: "You must be 18 or older." }),
      field({ label: "Phone", name: "phone", type: "tel", autocomplete: "tel", required: false }),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      if (!checkRequired(form)) return;
      const values = formValues(form);
      if (!values.phone) delete values.phone;
      setBusy(submit, true, "Creating…");
      let user;
      try {
        user = await api.signup(values);
      } catch (error) {
        showErrors(form, error);
        setBusy(submit, false);
        return;
      }
      // Straight in: the password was just typed, so log in with it.
      try {
        await api.login(user.email, values.password);
        flash("Welcome! Your profile is ready. Open your first account to get started.", { next: true });
        navigate("/");
      } catch {
        flash("Your profile is ready. Log in to continue.", { next: true });
        navigate(`/login?email=${encodeURIComponent(user.email)}`);
      }
    });
    return h("section", { class: "card narrow" },
      h("h1", { text: "Sign up" }),
      h("p", { class: "muted", text: "Open your profile; accounts and cards come next." }),
      form,
      h("p", { class: "muted" }, "Already have a profile? ", h("a", { href: "#/login" }, "Log in")));
  },
};
