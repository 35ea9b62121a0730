// Events: the live log, newest first, each with what its rules did, filtered by type and
// entity (in the URL, as the reminders list's filters are); and a form to record one.

import { api, query, ApiError } from "./api.js";
import { h, fill, moreButton, field, input, textarea, flash } from "./dom.js";
import { checkRequired, submitOnce } from "./form-errors.js";
import { filterForm, loadFiltered } from "./filters.js";
import { eventEntry } from "./event-entry.js";

// The most entries the live log keeps: a burst of thousands of events must not grow it without end.
const LIVE_MOST = 200;

const FILTERS = ["event_type", "entity_type", "entity_id"];

export async function eventsView(main, ctx) {
  const params = ctx.params;
  const chosen = Object.fromEntries(FILTERS.map((f) => [f, params.get(f)]));
  // The filters' ids are their own: the record form below has fields of the same names.
  const filters = filterForm("#/events", "Filter events", params, [
    field("Event type", input("event_type", { id: "filter-event_type", maxlength: 200, list: "system-events" })),
    field("Entity type", input("entity_type", { id: "filter-entity_type", maxlength: 200 })),
    field("Entity id", input("entity_id", { id: "filter-entity_id", maxlength: 200 })),
    h("datalist", { id: "system-events" }, h("option", { value: "nudge.reminder_completed" }), h("option", { value: "nudge.reminder_failed" }))]);
  const log = h("ol", { id: "event-log", class: "events", "aria-live": "polite" });
  const more = h("div", { class: "paging" });
  const form = h("form", { id: "event-form", novalidate: true },
    field("Event type", input("event_type", { required: true, maxlength: 200 })),
    field("Entity type", input("entity_type", { required: true, maxlength: 200 })),
    field("Entity id", input("entity_id", { required: true, maxlength: 200 })),
    field("Data (JSON object)", textarea("data", { placeholder: '{"candidate": "C-7"}' })),
    field("Key (the same key again is recorded once)", input("key", { maxlength: 200 })),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Record event"),
    h("p", { id: "event-recorded", role: "status" }));

  // One event (`?id=`, the link from a reminder a rule made for it), with a way to them all.
  const single = params.get("id");
  fill(main, h("h1", {}, single ? `Event #${single}` : "Events"), h("details", { id: "events-record", class: "needs-write" }, h("summary", {}, "Record an event"), form),
    h("h2", {}, "Log"), filters, log, more);

  async function loadOne() {
    try {
      fill(log, eventEntry(await api("GET", `/v1/events/${encodeURIComponent(single)}`)));
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 400)) throw e;
      fill(log, h("li", {}, `No event #${single}.`));
    }
    fill(more, h("a", { href: "#/events" }, "All events"));
  }

  async function load(cursor) {
    if (single) return loadOne();
    const page = await api("GET", "/v1/events" + query({ ...chosen, limit: 50, cursor }));
    if (!cursor) fill(log);
    for (const x of page.items) log.append(eventEntry(x));
    if (!cursor && !page.items.length) fill(log, h("li", {}, FILTERS.some((f) => chosen[f]) ? "No events match." : "No events yet."));
    fill(more, page.next_cursor ? moreButton(more, "Older events", () => load(page.next_cursor)) : null);
  }

  // A live event joins the log when the filters would have listed it; true when it is listed.
  function add(x) {
    if (single) return false;
    if (log.querySelector(`li[data-id="${x.event.id}"]`)) return true;
    if (FILTERS.some((f) => chosen[f] && x.event[f] !== chosen[f])) return false;
    const li = eventEntry(x);
    if (!log.querySelector("li[data-id]")) fill(log);
    log.prepend(li);
    flash(li);
    if (log.children.length > LIVE_MOST) {
      // The oldest go, and "Older events" starts again from the newest page.
      while (log.children.length > LIVE_MOST) log.lastElementChild.remove();
      fill(more, moreButton(more, "Older events", () => load()));
    }
    return true;
  }

  // What the form did, said whether or not the log shows it: a key already recorded changes
  // nothing, and the log's filters may hide a new event.
  const recorded = form.querySelector("#event-recorded");
  submitOnce(form, async () => {
    recorded.textContent = "";
    if (!checkRequired(form)) return;
    const body = {};
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
    // The first event of a key is an old one: it is not put at the top of the log.
    if (answer.created === false) recorded.textContent = `Already recorded (same key): event #${answer.event.id}; nothing changed.`;
    else recorded.textContent = `Recorded event #${answer.event.id}.${add(answer) ? "" : " The log's filters hide it."}`;
  });

  ctx.subscribe((type, data) => {
    if (type === "resync") load().catch(() => {});
    if (type === "event" && data.event) add({ event: data.event, effects: data.effects });
  });
  await loadFiltered(filters, load);
}
