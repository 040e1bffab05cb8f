import * as api from "../api.js";
import { checkRequired, clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { errorPanel } from "../ui.js";

// Change the password: the server ends every other session, this one stays.
function passwordForm() {
  const submit = h("button", { type: "submit", class: "button secondary inline", text: "Change password" });
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "password-heading" },
    h("h2", { id: "password-heading", text: "Password" }),
    field({ label: "Current password", name: "current_password", type: "password", autocomplete: "current-password" }),
    field({ label: "New password", name: "new_password", type: "password", autocomplete: "new-password",
      hint: "At least 12 characters; not a common password or your email name." }),
    field({ label: "Repeat the new password", name: "repeat_password", type: "password", autocomplete: "new-password" }),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const v = formValues(form);
    const extra = v.new_password && v.repeat_password && v.new_password !== v.repeat_password
      ? [{ field: "repeat_password", reason: "the two new passwords differ" }] : [];
    if (!checkRequired(form, extra)) return;
    setBusy(submit, true, "Changing…");
    try {
      await api.profile.changePassword(v.current_password, v.new_password);
      form.reset();
      flash("Your password is changed. Other devices have been logged out.");
    } catch (error) {
      showErrors(form, error.code === "invalid_credentials"
        ? { ...error, message: "The current password is not right.",
          errors: [{ field: "current_password", reason: "this is not your current password" }] }
        : error.code === "weak_password"
          ? { ...error, errors: [{ field: "new_password", reason: error.message }] } : error);
    } finally {
      setBusy(submit, false);
    }
  });
  return h("section", { class: "card" }, form);
}

function row(label, value) {
  return h("div", {}, h("dt", { text: label }), h("dd", { text: value || "—" }));
}

export default {
  path: "/profile",
  title: "Profile",
  auth: true,
  nav: "Profile",
  icon: "user",
  async render() {
    let me;
    try {
      me = await api.profile.me();
    } catch (error) {
      return errorPanel("Profile", error);
    }
    const identity = h("dl", { class: "summary" },
      row("Email", me.email), row("Role", me.role));
    if (!me.profile) {
      return h("div", { class: "stack-lg narrow" },
        h("section", { class: "card" }, h("h1", { text: "Profile" }), identity,
          h("p", { class: "muted", text: "Staff users have no account-holder profile." })),
        passwordForm());
    }
    const holder = me.profile;
    const address = holder.address ?? {};
    const details = h("dl", { class: "summary" });
    const drawDetails = (p) => details.replaceChildren(
      row("Name", `${p.first_name} ${p.last_name}`),
      row("Date of birth", p.date_of_birth),
      row("Phone", p.phone),
      row("Address", [p.address?.line1, p.address?.line2, p.address?.postal_code,
        p.address?.city, p.address?.country].filter(Boolean).join(", ")));
    drawDetails(holder);
    const submit = h("button", { type: "submit", class: "button primary", text: "Save changes" });
    const form = h("form", { class: "stack", novalidate: true },
      h("h2", { text: "Contact details" }),
      field({ label: "Phone", name: "phone", type: "tel", required: false,
        value: holder.phone ?? "", hint: "International format, e.g. +14155550100." }),
      field({ label: "Address line 1", name: "line1", required: false, value: address.line1 ?? "" }),
      field({ label: "Address line 2", name: "line2", required: false, value: address.line2 ?? "" }),
      h("div", { class: "row" },
        field({ label: "Postal code", name: "postal_code", required: false, value: address.postal_code ?? "" }),
        field({ label: "City", name: "city", required: false, value: address.city ?? "" })),
      field({ label: "Country", name: "country", required: false, maxlength: 2,
        value: address.country ?? "", hint: "Two-letter code, e.g. US." }),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const v = formValues(form);
      const body = {};
      if (v.phone) body.phone = v.phone;
      if (v.line1 || v.city || v.postal_code || v.country) {
        body.address = { line1: v.line1, city: v.city, postal_code: v.postal_code,
          country: v.country.toUpperCase(), ...(v.line2 ? { line2: v.line2 } : {}) };
      }
      setBusy(submit, true, "Saving…");
      try {
        drawDetails(await api.profile.update(body));
        flash("Your profile is saved.");
      } catch (error) {
        const nested = { ...error, message: error.message,
          errors: (error.errors ?? []).map((e) => ({ ...e, field: String(e.field).replace(/^address\./, "") })) };
        showErrors(form, nested);
      } finally {
        setBusy(submit, false);
      }
    });
    return h("div", { class: "stack-lg" },
      h("div", { class: "grid-2" },
        h("section", { class: "card" }, h("h1", { text: "Profile" }), identity, details,
          h("p", {}, h("a", { href: "#/sessions", text: "Devices where you are logged in" }))),
        h("section", { class: "card" }, form)),
      passwordForm());
  },
};
