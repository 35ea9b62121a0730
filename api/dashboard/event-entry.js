// One entry of the event log: the event, and what each rule did about it. Nudge's own events
// (a reminder ended or failed) carry the whole reminder as data; they get a line that says what
// happened with a link to the reminder, and their data folded away, so they do not bury the
// application's events.

import { h, time } from "./dom.js";
import { reasonText } from "./format.js";

const SYSTEM = {
  "nudge.reminder_completed": (d) => ["ended", d.reason ? `: ${reasonText(d.reason)}` : ""],
  "nudge.reminder_failed": (d) => ["failed", d.last_error ? `: ${d.last_error}` : ""],
};

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

// Data longer than this is folded: one 35 KB event made the log 20,000 px tall on a phone
// (explore30b F7).
const SHOWN_DATA_CHARS = 300;

// The data: a system event's folded (with its summary line above it), anyone else's in full
// when short, else folded under its size.
function data(ev) {
  if (!ev.data || !Object.keys(ev.data).length) return null;
  const summary = SYSTEM[ev.event_type];
  const r = ev.data.reminder;
  if (!summary || !r) {
    const text = JSON.stringify(ev.data);
    if (text.length <= SHOWN_DATA_CHARS) return h("p", {}, h("code", {}, text));
    return h("details", { class: "data" }, h("summary", {}, `Data (${text.length.toLocaleString()} characters)`),
      h("pre", {}, JSON.stringify(ev.data, null, 2)));
  }
  const [what, why] = summary(ev.data);
  return [
    h("p", { class: "system" }, h("a", { href: `#/reminders/${r.id}` }, `Reminder #${r.id}`), ` (${r.event_type}) ${what}${why}`),
    h("details", { class: "data" }, h("summary", {}, "Data"), h("pre", {}, JSON.stringify(ev.data, null, 2)))];
}

export function eventEntry(x) {
  const ev = x.event;
  return h("li", { class: "event", "data-id": ev.id },
    h("p", {}, h("strong", {}, ev.event_type), ` · ${ev.entity_type}/${ev.entity_id} · `, time(ev.occurred_at || ev.received_at),
      ev.key ? ` · key ${ev.key}` : "",
      ev.cause_event_id ? [" · caused by ", h("a", { href: `#/events?id=${ev.cause_event_id}` }, `event #${ev.cause_event_id}`)] : ""),
    data(ev),
    (x.effects || []).length ? h("ul", { class: "effects", "aria-label": "Effects" }, x.effects.map(effect)) : h("p", { class: "hint" }, "No rule acted on it."));
}
