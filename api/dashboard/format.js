// Words for what the API gives as fields.

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

// The schedule in words: the server's own wording (schedule_text) when it gives one.
export function describeSchedule(r) {
  if (r.schedule_text) return r.schedule_text;
  if (r.schedule_type === "recurring") return every(r.interval_seconds);
  if (r.schedule_type === "cron") return `cron "${r.cron}" in ${r.timezone || "UTC"}`;
  return "once";
}

export function entity(r) {
  return `${r.entity_type}/${r.entity_id}`;
}

// Why a reminder ended (completed_reason), in words; an unknown reason is shown as it is.
const REASONS = {
  fired: "its one fire happened",
  max_fires: "it reached its number of fires",
  ends_at: "its end time passed",
  stop_condition: "its stop flag turned true",
  cancelled: "it was cancelled",
  attempts_exhausted: "its delivery attempts ran out",
};

export function reasonText(reason) {
  return REASONS[reason] || reason;
}
