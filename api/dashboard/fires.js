// The next fire times a page lists. POST /v1/schedules/preview knows only the schedule: it lists
// the fires of a reminder created at its `from`, and a max_fires it is given counts from the
// first fire it lists, not from the reminder's fires so far, so the page starts from next_run_at
// itself and cuts the list where the reminder will stop; a next_run_at already past is listed
// as a claim now would fire it.

import { api } from "./api.js";

// `times` (RFC 3339, ascending) without those past `maxFires` (fires left, or null) or after
// `endsAt` (a fire at exactly ends_at still happens).
export function trimFires(times, { maxFires = null, endsAt = null } = {}) {
  const end = endsAt ? Date.parse(endsAt) : Infinity;
  const kept = times.filter((t) => Date.parse(t) <= end);
  return maxFires === null ? kept : kept.slice(0, Math.max(0, maxFires));
}

// A live reminder's next `count` fires: next_run_at first, then its schedule after it, or after
// the occurrence being retried (a next_run_at already past: what a claim now makes of it). The fire at next_run_at happens
// whatever max_fires and ends_at say (a reschedule may move it past ends_at; it is the one after
// it that ends the reminder), so only the later ones are cut.
// [misfire] threshold_seconds as shipped: the workers' own is not known here.
const SKIP_THRESHOLD_MS = 60000;

export async function reminderFires(r, count = 5) {
  // While an occurrence is retried (or held by its host's open breaker), next_run_at is its next
  // attempt: the schedule's later occurrences keep their places after the occurrence itself.
  const base = r.retrying_occurrence ?? r.next_run_at;
  const schedule = { schedule_type: r.schedule_type, run_at: base };
  if (r.schedule_type === "recurring") schedule.interval_seconds = r.interval_seconds;
  if (r.schedule_type === "cron") Object.assign(schedule, { cron: r.cron, timezone: r.timezone });
  // Already due (its workers are down, or it was paused past it): what a claim now does with it
  // under its misfire policy (fire it at once, skip it, or fire each missed occurrence), as the
  // preview of a reminder created now with that first fire lists it.
  if (!r.retrying_occurrence && Date.parse(r.next_run_at) <= Date.now()) {
    const spec = { ...schedule, from: new Date().toISOString(), count, misfire_policy: r.misfire_policy };
    if (r.max_fires !== null && r.max_fires !== undefined) spec.max_fires = Math.max(1, r.max_fires - r.fire_count);
    if (r.ends_at) spec.ends_at = r.ends_at;
    return (await api("POST", "/v1/schedules/preview", spec)).times;
  }
  let later = [];
  if (r.schedule_type !== "one_time" && count > 1) {
    // Occurrences due by the time the retried one ends are fired each (fire_all), covered by it
    // (fire_once: the reminder moves on to its first occurrence after that), or fired each when
    // missed by no more than the threshold and skipped before (skip): listed as fires to come, a
    // reminder retrying for minutes showed times long past (explore30b F4).
    let from = base;
    const next = Date.parse(base);
    const retry = Date.parse(r.next_run_at);
    const after = r.misfire_policy === "skip" ? retry - SKIP_THRESHOLD_MS : retry;
    if (r.retrying_occurrence && r.misfire_policy !== "fire_all" && after > next) {
      const step = (r.interval_seconds || 0) * 1000;
      from = new Date(step ? next + (Math.floor((after - next) / step) + 1) * step : after + 1).toISOString();
    }
    const spec = { ...schedule, run_at: from, from, count };
    const past = Date.parse(from) === next ? next : Date.parse(from) - 1;
    later = (await api("POST", "/v1/schedules/preview", spec)).times.filter((t) => Date.parse(t) > past).slice(0, count - 1);
  }
  const after = r.max_fires === null || r.max_fires === undefined ? null : r.max_fires - r.fire_count - 1;
  return [r.next_run_at, ...trimFires(later, { maxFires: after, endsAt: r.ends_at })];
}
