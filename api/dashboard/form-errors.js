// What a form says is wrong: each error next to its field (aria-invalid, and the place
// field() made for it, which the field's aria-describedby names), or in the form's general place;
// and a form's submit, sent once at a time.

import { ApiError } from "./api.js";

// The control of the top-level field of a path like "request.headers.X", if the form has it.
function controlFor(form, name) {
  const top = (name || "").split(/[.[]/)[0];
  return top ? form.querySelector(`[name="${CSS.escape(top)}"]`) : null;
}

// The error place is looked for in the control's own field, not the document: a view replaced
// while it loaded must not write into the next one's field of the same id.
function mark(control, message) {
  control.setAttribute("aria-invalid", "true");
  control.closest(".field").querySelector(`#${CSS.escape(control.id + "-error")}`).textContent = message;
}

// The API's message for `control` without the API's name for it ("entity_type: is required"
// gives "is required"), or null when it names a deeper path ("request.headers.X: …"), which the
// control's label does not say.
function ownMessage(control, message) {
  return message.startsWith(control.name + ": ") ? message.slice(control.name.length + 2) : null;
}

// An API error said outside its field (the preview box): named by the field's label, as the
// page names it, not by the API's name for it ("Interval in seconds: must be ...").
export function labelledMessage(form, name, message) {
  const control = controlFor(form, name);
  const label = control?.labels?.[0]?.textContent;
  const own = control && ownMessage(control, message);
  return label && own !== null ? `${label}: ${own}` : message;
}

// Shows `message` next to the field called `name` in `form`, or in the form's general error
// place; true when a field took it. Under its label a field's error leaves out the API's name
// for it ("entity_type: is required" reads "is required" under "Entity type"); a deeper path
// ("request.headers.X: …") is kept, as the label does not say which part.
export function showFieldError(form, name, message) {
  const control = controlFor(form, name);
  if (control) {
    mark(control, ownMessage(control, message) ?? message);
    control.focus();
    return true;
  }
  const general = form.querySelector(".form-error");
  if (general) general.textContent = message;
  return false;
}

// Marks every required field of `form` that is shown and empty, all at once (the API names one
// per answer, so a blank form would take a submit per field), and focuses the first; true when
// none is missing and the form may be sent.
export function checkRequired(form) {
  const missing = [...form.elements].filter((el) => el.required && !el.closest("[hidden]") && !el.value.trim());
  for (const el of missing) mark(el, "is required");
  if (missing.length) missing[0].focus();
  return !missing.length;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
}

// Says why a submit failed: an API error by its field (`fallback` when it names none the form
// has), a request that got no answer in the form's general place. Such a request may have
// reached the server: the message says to look before sending it again.
export function showSubmitError(form, err, fallback = "") {
  if (err instanceof ApiError) {
    showFieldError(form, err.field || fallback, err.message);
    return;
  }
  showFieldError(form, "", `No answer from the server (${err.message}): it may have been saved or not; look before you send it again.`);
}

// Runs `send` on each submit of `form`, one at a time: a second Enter or click while the first is
// on its way (a slow network) is ignored, not sent again (a rule or an event was saved twice).
// The submit buttons say so with aria-disabled, not disabled, which would drop their focus.
export function submitOnce(form, send, fallback = "") {
  let busy = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    const buttons = [...form.querySelectorAll('button[type="submit"]')];
    for (const b of buttons) b.setAttribute("aria-disabled", "true");
    form.setAttribute("aria-busy", "true");
    clearErrors(form);
    try {
      await send();
    } catch (err) {
      showSubmitError(form, err, fallback);
    } finally {
      busy = false;
      for (const b of buttons) b.removeAttribute("aria-disabled");
      form.removeAttribute("aria-busy");
    }
  });
}
