// Words for what the API gives as fields.

import { h } from "./dom.js";
import { browserZone } from "./values.js";

export function every(seconds) {
  const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return n === 1 ? `every ${name}` : `every ${n} ${name}s`;
    }
  }
  return `every ${seconds} seconds`;
}

// The wall clock of `at` in `zone`, as named parts (and the offset, "GMT-05:00").
function wallParts(zone, at) {
  return Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
  }).formatToParts(at).map((p) => [p.type, p.value]));
}

// "2026-12-05 at 22:17:24.0642" in UTC, said in `zone` to the second as the page's times are.
// The second pass of an hour a fall-back repeats is said with its offset, as the server says
// it: its wall time alone names the first pass (the words' rule 6).
function instantIn(zone, date, clock) {
  const [h, m, sec = "00"] = clock.split(":");
  const at = new Date(`${date}T${h}:${m}:${sec.slice(0, 2)}Z`);
  const parts = wallParts(zone, at);
  const wall = (p) => `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  const secondPass = [3600e3, 1800e3].some((shift) => wall(wallParts(zone, new Date(at - shift))) === wall(parts));
  if (secondPass) {
    const offset = parts.timeZoneName === "GMT" ? "+00:00" : parts.timeZoneName.slice(3);
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
  }
  const seconds = clock.split(":").length > 2 ? `:${parts.second}` : "";
  return `${parts.year}-${parts.month}-${parts.day} at ${parts.hour}:${parts.minute}${seconds}`;
}

// The server's sentence names a one-time or interval schedule's instants in UTC; this page
// shows times in the browser's zone, so the sentence says them there too (a cron schedule's
// name its own zone, and stay).
function inBrowserZone(text) {
  const zone = browserZone();
  if (!text.includes("(UTC)") || !zone) return text;
  return text
    .replace(/(\d{4}-\d{2}-\d{2}) at (\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)/g, (_, d, c) => instantIn(zone, d, c))
    .replaceAll("(UTC)", `(${zone})`);
}

// The schedule in words: the server's own wording (schedule_text) when it gives one.
export function describeSchedule(r) {
  if (r.schedule_text) return r.schedule_type === "cron" ? r.schedule_text : inBrowserZone(r.schedule_text);
  if (r.schedule_type === "recurring") return every(r.interval_seconds);
  if (r.schedule_type === "cron") return `cron "${r.cron}" in ${r.timezone || "UTC"}`;
  return "once";
}

// Each part isolated for its text direction: an id holding U+202E (right-to-left override)
// reversed the slash and the page's own text after it (explore32c F5).
export function entity(r) {
  return h("span", {}, h("bdi", {}, r.entity_type), "/", h("bdi", {}, r.entity_id));
}

// Why a reminder ended (completed_reason), in words; an unknown reason is shown as it is.
const REASONS = {
  fired: "it was delivered",  // a one-time reminder (a retried one has fired before, and failed)
  max_fires: "it reached its number of fires",
  ends_at: "its end time passed",
  stop_condition: "its stop flag turned true",
  cancelled: "it was cancelled",
  attempts_exhausted: "its delivery attempts ran out",
};

export function reasonText(reason) {
  return REASONS[reason] || reason;
}
