// What a form's text becomes in an API body, shared by every form so they send the same types.

// A typed number as a JSON number, so the API answers with its range ("must be between 1 and
// …") rather than "not a string"; anything else stays text for the API to name.
export function numberOrText(v) {
  return /^[-+]?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}

// A datetime-local value ("2026-12-02T09:30" or "2026-12-02T09:30:15") as RFC 3339 with this
// browser's offset. A wall time the zone skips (02:30 as clocks go forward at 02:00) is the end
// of the gap (03:00), as the API and the words read it (README, rule 6): the browser's Date
// would move it on by the gap (03:30). A repeated wall time is its first instant, as in both.
export function toRfc3339(local) {
  if (!local) return undefined;
  const d = new Date(local);
  const wanted = local.length === 16 ? local + ":00" : local.slice(0, 19);
  if (isNaN(d) || toLocalInput(d) === wanted) return d.toISOString();
  // In a gap: the instant the offset changed, found between six hours before and the Date's.
  const after = d.getTimezoneOffset();
  let lo = d.getTime() - 6 * 3600 * 1000;
  let hi = d.getTime();
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (new Date(mid).getTimezoneOffset() === after) hi = mid;
    else lo = mid;
  }
  return new Date(hi).toISOString();
}

// RFC 3339 as a datetime-local value in this browser's zone, to the second: "in 30 seconds"
// cut to its minute would be in the past, and "every 10 seconds for 1 minute" would lose fires.
export function toLocalInput(value) {
  const d = new Date(value);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The attributes of a time input: seconds shown and kept (step 1).
export const TIME_INPUT = { type: "datetime-local", step: "1" };

// Chromium names a zone by its ICU (CLDR) id, which keeps names the tz database retired
// ("Asia/Calcutta" for Asia/Kolkata): a user expects the name they set, and a server whose
// tzdata lacks the old links (Debian's tzdata-legacy) refuses it.
const RETIRED_ZONE_NAMES = {
  "Africa/Asmera": "Africa/Asmara",
  "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
  "America/Catamarca": "America/Argentina/Catamarca",
  "America/Coral_Harbour": "America/Atikokan",
  "America/Cordoba": "America/Argentina/Cordoba",
  "America/Godthab": "America/Nuuk",
  "America/Indianapolis": "America/Indiana/Indianapolis",
  "America/Jujuy": "America/Argentina/Jujuy",
  "America/Louisville": "America/Kentucky/Louisville",
  "America/Mendoza": "America/Argentina/Mendoza",
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Atlantic/Faeroe": "Atlantic/Faroe",
  "Europe/Kiev": "Europe/Kyiv",
  "Pacific/Enderbury": "Pacific/Kanton",
  "Pacific/Ponape": "Pacific/Pohnpei",
  "Pacific/Truk": "Pacific/Chuuk",
};

// The zone datetime-local inputs are read in: the browser's, by its tz database name.
export function browserZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return RETIRED_ZONE_NAMES[zone] || zone;
}

// The hint of a datetime-local input: a schedule's own zone (cron) is not the one it is read in.
export function inYourZone() {
  return `in your time zone (${browserZone()})`;
}
