// What a form's text becomes in an API body, shared by every form so they send the same types.

// A typed number as a JSON number, so the API answers with its range ("must be between 1 and
// …") rather than "not a string"; anything else stays text for the API to name.
export function numberOrText(v) {
  return /^[-+]?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}

// A datetime-local value ("2026-12-02T09:30") as RFC 3339 with this browser's offset.
export function toRfc3339(local) {
  return local ? new Date(local).toISOString() : undefined;
}

// RFC 3339 as a datetime-local value in this browser's zone.
export function toLocalInput(value) {
  const d = new Date(value);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The zone datetime-local inputs are read in: the browser's.
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

// The hint of a datetime-local input: a schedule's own zone (cron) is not the one it is read in.
export function inYourZone() {
  return `in your time zone (${browserZone()})`;
}
