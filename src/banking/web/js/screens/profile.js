import * as api from "../api.js";
import { clearErrors, field, formValues, h, setBusy, showErrors } from "../dom.js";
import { flash } from "../flash.js";
import { errorPanel } from "../ui.js";

function row(label, value) {
  return h("div", {}, h("dt", { text: label }), h("dd", { text: value || "—" }));
}

export default {
  path: "/profile",
  title: "Profile",
  auth: true,
  nav: "Profile",
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
      return h("section", { class: "card narrow" }, h("h1", { text: "Profile" }), identity,
        h("p", { class: "muted", text: "Staff users have no account-holder profile." }));
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
    return h("div", { class: "grid-2" },
      h("section", { class: "card" }, h("h1", { text: "Profile" }), identity, details),
      h("section", { class: "card" }, form));
  },
};
