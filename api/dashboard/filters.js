// A list's filters: a search form whose fields start from the URL's parameters and whose submit
// puts them back into the URL (#/route?name=value), where the router shows what they choose. A
// filter the API refuses (a bad value typed into the URL) is shown next to its field, so the
// filters stay on screen to be corrected.

import { h } from "./dom.js";
import { query, ApiError } from "./api.js";
import { showFieldError } from "./form-errors.js";

// `fields` are field() elements; the form's named controls are the filters.
export function filterForm(route, label, params, fields) {
  const form = h("form", { class: "filters", role: "search", "aria-label": label, novalidate: true },
    fields,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")),
    h("p", { class: "error form-error", role: "alert" }));
  const controls = [...form.elements].filter((el) => el.name);
  for (const el of controls) {
    const wanted = params.get(el.name) || "";
    // A value the URL asks for that a select does not offer ("active"): shown as asked, beside
    // the API's error, not as "any", which is not what the list was asked for.
    if (el.tagName === "SELECT" && wanted && ![...el.options].some((o) => o.value === wanted))
      el.append(h("option", { value: wanted }, wanted));
    el.value = wanted;
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = route + query(Object.fromEntries(controls.map((el) => [el.name, el.value.trim()])));
  });
  return form;
}

// Runs a list's first load; a 400 (a filter or cursor from the URL the API refuses) is shown in
// the filter form instead of replacing the view. True when the list loaded.
export async function loadFiltered(form, load) {
  try {
    await load();
    return true;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 400) throw e;
    showFieldError(form, e.field, e.message);
    return false;
  }
}
