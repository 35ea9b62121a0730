// Events: the live log, newest first, each with what its rules did; and a form to record one.

import { api, query, ApiError } from "./api.js";
import { h, fill, field, input, textarea, time, flash } from "./dom.js";
import { showFieldError, clearErrors, checkRequired } from "./form-errors.js";

// What one rule did: remind (reminder, created), set_flag (flag), cancel (cancelled ids), error.
function effect(e) {
  const rule = `rule #${e.rule_id}: `;
  if (e.error) return h("li", { class: "error" }, rule, "failed: ", e.error);
  if (e.type === "remind" && e.reminder) {
    return h("li", {}, rule, e.created ? "created " : "found live ",
      h("a", { href: `#/reminders/${e.reminder.id}` }, `reminder #${e.reminder.id}`));
  }
  if (e.type === "set_flag" && e.flag) return h("li", {}, rule, `set flag ${e.flag.key} to ${e.flag.value}`);
  if (e.type === "cancel") {
    const ids = e.cancelled || [];
    return h("li", {}, rule, ids.length ? ["cancelled ", ids.map((id, i) => [i ? ", " : "", h("a", { href: `#/reminders/${id}` }, `#${id}`)])] : "cancelled nothing");
  }
  return h("li", {}, rule, e.type);
}

function entry(x) {
  const ev = x.event;
  return h("li", { class: "event", "data-id": ev.id },
    h("p", {}, h("strong", {}, ev.event_type), ` · ${ev.entity_type}/${ev.entity_id} · `, time(ev.occurred_at || ev.received_at),
      ev.key ? ` · key ${ev.key}` : ""),
    ev.data && Object.keys(ev.data).length ? h("p", {}, h("code", {}, JSON.stringify(ev.data))) : null,
    (x.effects || []).length ? h("ul", { class: "effects", "aria-label": "Effects" }, x.effects.map(effect)) : h("p", { class: "hint" }, "No rule acted on it."));
}

export async function eventsView(main, ctx) {
  const log = h("ol", { id: "event-log", class: "events", "aria-live": "polite" });
  const more = h("div", { class: "paging" });
  const form = h("form", { id: "event-form", novalidate: true },
    field("Event type", input("event_type", { required: true, maxlength: 200 })),
    field("Entity type", input("entity_type", { required: true, maxlength: 200 })),
    field("Entity id", input("entity_id", { required: true, maxlength: 200 })),
    field("Data (JSON object)", textarea("data", { placeholder: '{"candidate": "C-7"}' })),
    field("Key (the same key again is recorded once)", input("key", { maxlength: 200 })),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Record event"));

  fill(main, h("h1", {}, "Events"), h("details", { id: "events-record" }, h("summary", {}, "Record an event"), form),
    h("h2", {}, "Log"), log, more);

  async function load(cursor) {
    const page = await api("GET", "/v1/events" + query({ limit: 50, cursor }));
    if (!cursor) fill(log);
    for (const x of page.items) log.append(entry(x));
    if (!cursor && !page.items.length) fill(log, h("li", {}, "No events yet."));
    fill(more, page.next_cursor ? h("button", { type: "button", onclick: () => load(page.next_cursor) }, "Older events") : null);
  }

  function add(x) {
    if (log.querySelector(`li[data-id="${x.event.id}"]`)) return;
    const li = entry(x);
    if (!log.querySelector("li[data-id]")) fill(log);
    log.prepend(li);
    flash(li);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!checkRequired(form)) return;
    const body = {};
    try {
      for (const name of ["event_type", "entity_type", "entity_id", "key"]) {
        const v = form.elements[name].value.trim();
        if (v) body[name] = v;
      }
      const data = form.elements.data.value.trim();
      if (data) {
        try {
          body.data = JSON.parse(data);
        } catch {
          throw new ApiError(400, { error: { code: "invalid_json", message: "data: is not valid JSON", field: "data" } });
        }
      }
      const answer = await api("POST", "/v1/events", body);
      add(answer);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showFieldError(form, err.field, err.message);
    }
  });

  ctx.subscribe((type, data) => {
    if (type === "resync") load().catch(() => {});
    if (type === "event" && data.event) add({ event: data.event, effects: data.effects });
  });
  await load();
}
