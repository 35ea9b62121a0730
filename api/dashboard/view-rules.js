// Rules: the list, and an editor for a new rule or a chosen one (JSON for `when` and `action`).

import { api, query, ApiError } from "./api.js";
import { h, fill, focusIfLost, moreButton, field, input, textarea, rowAction, tableHead, labelledRow } from "./dom.js";
import { clearErrors, checkRequired, submitOnce } from "./form-errors.js";

// The last column holds each rule's buttons; its header names it for screen readers and, on a
// phone, beside the buttons.
const COLUMNS = ["Id", "Name", "Event type", "When", "Enabled", "Action", "Edit or delete"];

const EXAMPLE_ACTION = {
  type: "remind",
  reminder: { event_type: "feedback_form", channel: "log", schedule_type: "recurring", interval_seconds: 86400, delay_seconds: 3600 },
};

export async function rulesView(main, ctx) {
  const tbody = h("tbody");
  const more = h("div", { class: "paging" });
  const list = h("div", { class: "table-wrap", role: "region", "aria-label": "Rules", tabindex: 0 },
    h("table", { id: "rules", class: "stack-on-phone" }, tableHead(COLUMNS), tbody));
  const note = h("p", { role: "status" });
  const rowError = h("p", { id: "rules-error", class: "error", role: "alert" });
  const title = h("h2", { id: "editor-title", class: "needs-write" }, "New rule");
  const form = h("form", { id: "rule-form", class: "needs-write", novalidate: true, "aria-labelledby": "editor-title" },
    field("Name", input("name", { required: true, maxlength: 200 })),
    field("Event type", input("event_type", { required: true, maxlength: 200 })),
    h("div", { class: "field" },
      h("input", { type: "checkbox", id: "f-enabled", name: "enabled", checked: true }),
      h("label", { for: "f-enabled" }, " enabled")),
    field("When (JSON: conditions that must all hold)", textarea("when", { placeholder: '{"data.priority": "high"}' })),
    field("Action (JSON)", textarea("action", { rows: 8 })),
    h("p", { class: "error form-error", role: "alert" }),
    h("div", { class: "actions" },
      h("button", { type: "submit" }, "Save rule"),
      h("button", { type: "button", onclick: () => edit(null) }, "New rule")));

  fill(main, h("h1", {}, "Rules"),
    list,
    more, note, rowError, title, form);

  // The rule being edited, and its fields as the form showed them: a save sends only what was
  // changed since, so a colleague's change to another field is not undone (explore30b F11).
  let editing = null;
  let shown = null;
  function texts(rule) {
    return {
      name: rule ? rule.name : "",
      event_type: rule ? rule.event_type : "",
      enabled: rule ? rule.enabled : true,
      when: rule && Object.keys(rule.when || {}).length ? JSON.stringify(rule.when, null, 2) : "",
      action: JSON.stringify(rule ? rule.action : EXAMPLE_ACTION, null, 2),
    };
  }
  function current() {
    const f = form.elements;
    return { name: f.name.value, event_type: f.event_type.value, enabled: f.enabled.checked, when: f.when.value, action: f.action.value };
  }
  function put(values, only = Object.keys(values)) {
    for (const key of only) {
      if (key === "enabled") form.elements.enabled.checked = values.enabled;
      else form.elements[key].value = values[key];
    }
  }
  function edit(rule) {
    editing = rule;
    clearErrors(form);
    title.textContent = rule ? `Edit rule #${rule.id}` : "New rule";
    shown = texts(rule);
    put(shown);
    if (rule) form.elements.name.focus();
  }
  // The rule being edited changed elsewhere: the fields not touched here show it as it is now,
  // those touched keep what was typed, and the page says so.
  function changedElsewhere(rule) {
    const typed = current();
    const fresh = texts(rule);
    put(fresh, Object.keys(fresh).filter((k) => typed[k] === shown[k]));
    editing = rule;
    shown = fresh;
    note.textContent = `Rule #${rule.id} was changed elsewhere: the editor shows it as it is now, except what you changed here.`;
  }

  function row(r) {
    return labelledRow({ "data-id": r.id }, COLUMNS, [
      `#${r.id}`, r.name, r.event_type,
      Object.keys(r.when || {}).length ? h("code", {}, JSON.stringify(r.when)) : "always", r.enabled ? "yes" : "no", r.action.type,
      [h("button", { type: "button", class: "needs-write", onclick: () => edit(r), "aria-label": `Edit rule ${r.name}` }, "Edit"), " ",
        h("button", { type: "button", class: "danger needs-write", onclick: () => remove(r), "aria-label": `Delete rule ${r.name}` }, "Delete")]]);
  }

  // The newest 100, then 100 more each "More rules" (a live change starts again from the newest).
  // Only the latest load is shown: under a burst of live changes their answers can come out of
  // order, and an older one showed a stale list (or undid a "More rules" asked after it).
  let loads = 0;
  async function load(cursor) {
    const mine = ++loads;
    const page = await api("GET", "/v1/rules" + query({ limit: 100, cursor }));
    if (mine !== loads) return;
    // A focused row that is no longer listed (deleted; past the first page): the focus goes to
    // what was said, not to the page.
    const focused = tbody.contains(document.activeElement);
    if (!cursor) fill(tbody);
    tbody.append(...page.items.map(row));
    if (!cursor && !page.items.length) fill(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length }, "No rules yet.")));
    fill(more, page.next_cursor ? moreButton(more, "More rules", () => load(page.next_cursor)) : null);
    if (focused) focusIfLost(note.textContent ? note : list);
  }

  // A rule deleted elsewhere answers 404: the list is reloaded, which drops it.
  async function remove(r) {
    if (!confirm(`Delete rule "${r.name}"? The reminders it created stay.`)) return;
    note.textContent = "";
    await rowAction(rowError, `Could not delete rule #${r.id}`, async () => {
      await api("DELETE", `/v1/rules/${r.id}`);
      note.textContent = `Rule #${r.id} deleted.`;
      if (editing && editing.id === r.id) edit(null);
      await load();
      focusIfLost(note);
    }, load);
  }

  function parsed(name) {
    const text = form.elements[name].value.trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(400, { error: { code: "invalid_json", message: `${name}: is not valid JSON`, field: name } });
    }
  }

  submitOnce(form, async () => {
    note.textContent = "";
    if (!checkRequired(form)) return;
    const typed = current();
    const changed = (key) => !editing || typed[key] !== shown[key];
    const body = {};
    if (changed("name")) body.name = typed.name.trim();
    if (changed("event_type")) body.event_type = typed.event_type.trim();
    if (changed("enabled")) body.enabled = typed.enabled;
    if (changed("action")) body.action = parsed("action");
    if (changed("when")) body.when = parsed("when") || {};
    if (editing && !Object.keys(body).length) {
      note.textContent = `Nothing to change in rule #${editing.id}.`;
      return;
    }
    const saved = editing ? await api("PATCH", `/v1/rules/${editing.id}`, body) : await api("POST", "/v1/rules", body);
    // Saved, but the newest event of its type could not have run it: said, not hidden.
    note.textContent = `Rule #${saved.id} saved.${saved.warning ? ` Warning: ${saved.warning}` : ""}`;
    edit(saved);
    await load();
  });

  ctx.subscribe((type, data) => {
    if (type === "rule" || type === "resync") load().catch(() => {});
    // The rule being edited was deleted elsewhere: what is typed stays, and saving it makes a
    // new rule (a PATCH could only answer that it does not exist).
    if (type === "rule" && data?.change === "deleted" && editing && data.rule?.id === editing.id) {
      title.textContent = `New rule (rule #${editing.id} was deleted; saving makes a new one)`;
      note.textContent = "";
      editing = null;
    } else if (type === "rule" && editing && data?.rule?.id === editing.id && data.rule.action
      && Date.parse(data.rule.updated_at) > Date.parse(editing.updated_at)) {
      changedElsewhere(data.rule);
    }
  });
  edit(null);
  await load();
  // #/rules?id=N (a reminder's "Made by rule #N") opens that rule in the editor.
  const chosen = ctx.params.get("id");
  if (chosen) {
    await api("GET", `/v1/rules/${encodeURIComponent(chosen)}`).then(edit,
      (e) => { rowError.textContent = `Rule #${chosen}: ${e.message}`; });
  }
}
