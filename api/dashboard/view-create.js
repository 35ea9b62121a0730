// New reminder: every field of a create, the next fire times previewed as the schedule is typed
// (POST /v1/schedules/preview), a refused field's error shown next to it, and, where the server
// parses schedules in words (POST /v1/schedules/parse), a box whose text fills the form.

import { api, apiAnswer, hasRoute, ApiError, canRead } from "./api.js";
import { h, fill, field, input, select, textarea, time } from "./dom.js";
import { checkRequired, labelledMessage, submitOnce } from "./form-errors.js";
import { trimFires } from "./fires.js";
import { numberOrText, toRfc3339, toLocalInput, browserZone, inYourZone, TIME_INPUT } from "./values.js";

const SCHEDULE_FIELDS = ["schedule_type", "run_at", "interval_seconds", "cron", "timezone"];
const NUMBER_FIELDS = ["interval_seconds", "max_fires", "max_attempts"];
const JSON_FIELDS = ["payload", "request"];
const TIME_FIELDS = ["run_at", "ends_at"];
// What the preview also follows: the list stops where these end the reminder.
const LIMIT_FIELDS = ["max_fires", "ends_at"];
// And what a first fire already past does: fire once, be skipped, or fire per missed occurrence.
const POLICY_FIELDS = ["misfire_policy"];
// The stop flag the sentence says ("until feedback_submitted is true"), once both are given.
const STOP_FIELDS = ["stop_condition_type", "stop_condition_value"];
// What "Describe it in words" can set: each is cleared first, so the form holds the last
// description alone, never a field left from an earlier one.
const WORD_FIELDS = [...SCHEDULE_FIELDS, ...LIMIT_FIELDS, ...STOP_FIELDS];
// The field each schedule type needs before there is anything to preview, and what to ask for.
const NEEDS = {
  one_time: ["run_at", "Pick the first fire to see when it fires."],
  recurring: ["interval_seconds", "Give the interval to see the next fires."],
  cron: ["cron", "Give a cron expression to see the next fires."],
};
// The fields each schedule type uses (the others are hidden and not sent): a limit on fires or
// an end means nothing to a schedule that fires once.
const WHICH = {
  one_time: ["run_at"],
  recurring: ["run_at", "interval_seconds", "max_fires", "ends_at"],
  cron: ["run_at", "cron", "timezone", "max_fires", "ends_at"],
};

// The create body from the form: only fields that are shown and filled; `fields` limits it.
function body(form, fields) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || (fields && !fields.includes(el.name))) continue;
    if (el.closest("[hidden]")) continue;
    const v = el.value.trim();
    if (v === "") continue;
    if (NUMBER_FIELDS.includes(el.name)) out[el.name] = numberOrText(v);
    // A time the words box filled is sent as the instant it said, while it is left as shown: a
    // wall time in the hour a fall-back repeats names its first pass, and the words may mean
    // the second (02:30+01:00 in Berlin).
    else if (TIME_FIELDS.includes(el.name)) out[el.name] = el.dataset.shown === el.value ? el.dataset.instant : toRfc3339(v);
    else if (JSON_FIELDS.includes(el.name)) {
      try {
        out[el.name] = JSON.parse(v);
      } catch {
        throw new ApiError(400, { error: { code: "invalid_json", message: `${el.name}: is not valid JSON`, field: el.name } });
      }
    } else out[el.name] = v;
  }
  return out;
}

export async function createView(main) {
  const form = h("form", { id: "create-form", class: "needs-write", novalidate: true },
    h("fieldset", {}, h("legend", {}, "Who and what"),
      field("Entity type", input("entity_type", { required: true, maxlength: 200 }), "e.g. interviewer"),
      field("Entity id", input("entity_id", { required: true, maxlength: 200 }), "e.g. INT_100"),
      field("Event type", input("event_type", { required: true, maxlength: 200 }), "e.g. feedback_form")),
    h("fieldset", {}, h("legend", {}, "When"),
      field("Schedule", select("schedule_type", [["one_time", "once"], ["recurring", "every interval"], ["cron", "cron"]])),
      field("First fire", input("run_at", TIME_INPUT), `${inYourZone()}; required once, otherwise empty means now`),
      field("Interval in seconds", input("interval_seconds", { inputmode: "numeric" })),
      field("Cron expression", input("cron", { placeholder: "0 9 * * 1-5" })),
      field("Time zone", input("timezone", { placeholder: "UTC" })),
      field("When fires were missed", select("misfire_policy", [["", "default (fire once)"], ["fire_once", "fire once"], ["skip", "skip"], ["fire_all", "fire all"]])),
      field("At most this many fires", input("max_fires", { inputmode: "numeric" })),
      field("Ends at", input("ends_at", TIME_INPUT), inYourZone())),
    h("section", { class: "preview", "aria-labelledby": "preview-title" },
      h("h2", { id: "preview-title" }, "Next fires"),
      h("div", { id: "preview", "aria-live": "polite" }, "…")),
    h("fieldset", {}, h("legend", {}, "How"),
      field("Channel", select("channel", ["log", "webhook", "email"])),
      field("Target", input("target", { maxlength: 2048 }), "webhook: a URL, or {{secret.NAME}} for one kept in the workers' secrets; email: an address; empty: the entity's contact"),
      field("Payload (JSON object)", textarea("payload", { placeholder: '{"subject": "Your feedback is due"}' })),
      field("Webhook request (JSON: method, headers, body)", textarea("request")),
      field("Attempts per fire", input("max_attempts", { inputmode: "numeric" }), "1 to 100; empty: the server's default")),
    h("fieldset", {}, h("legend", {}, "Until"),
      field("Stop condition", select("stop_condition_type", [["", "none"], ["db_check", "a flag turns true"]])),
      field("Stop flag key", input("stop_condition_value", { maxlength: 200 }))),
    h("p", { class: "error form-error", role: "alert" }),
    h("p", { id: "create-notice", class: "notice", role: "alert", hidden: true }),
    h("button", { type: "submit" }, "Create reminder"));

  const words = (await hasRoute("/v1/schedules/parse"))
    ? h("form", { id: "words-form", class: "words needs-write" },
      field("Describe it in words", input("text", { placeholder: "every weekday at 9am until feedback_submitted" })),
      h("p", { class: "error form-error", role: "alert" }),
      h("button", { type: "submit" }, "Fill the form"))
    : null;

  fill(main, h("h1", {}, "New reminder"),
    h("p", { class: "notice read-only-only" }, "This token is read-only: it cannot create reminders. \"Change token\" (at the top) swaps it for one with write."),
    words, form);

  const preview = form.querySelector("#preview");
  const kind = form.elements.schedule_type;
  // The field a schedule type needs is required, so an empty submit names it with the others.
  function showScheduleFields() {
    for (const name of ["run_at", "interval_seconds", "cron", "timezone", "max_fires", "ends_at"]) {
      form.querySelector(`[data-field="${name}"]`).hidden = !WHICH[kind.value].includes(name);
      form.elements[name].required = name === NEEDS[kind.value][0];
    }
  }
  kind.addEventListener("change", showScheduleFields);
  showScheduleFields();

  let seq = 0;
  let timer = null;
  async function updatePreview() {
    const mine = ++seq;
    const [needed, ask] = NEEDS[kind.value];
    // Nothing typed yet is not an error: say what the preview needs instead of asking the API.
    if (!form.elements[needed].value.trim()) {
      fill(preview, h("p", { class: "hint" }, ask));
      return;
    }
    // A write-only token may create but not preview: said here, not by the token dialog opening
    // over the form at each keystroke (explore30b F8).
    if (!canRead()) {
      fill(preview, h("p", { class: "hint" }, "The preview needs a token with scope read."));
      return;
    }
    let answer;
    let limits;
    // The preview gives the fires of a reminder created at its `from`, now: an interval
    // schedule with no first fire, or a first fire already past, fires at once, listed first.
    const now = new Date().toISOString();
    const spec = { ...body(form, SCHEDULE_FIELDS), ...body(form, POLICY_FIELDS), count: 5, from: now };
    // An interval schedule's sentence names its start and end in this browser's zone, as the
    // form and the list do (a cron's names its own zone, which the form shows).
    if (spec.schedule_type === "recurring" && browserZone()) spec.text_timezone = browserZone();
    let most = null;
    try {
      limits = body(form, LIMIT_FIELDS);
      // A max_fires the create would refuse is left for the create's error, not shown as "never".
      most = Number.isInteger(limits.max_fires) && limits.max_fires > 0 ? limits.max_fires : null;
      // The sentence says the limits too ("until ...", "at most N times"), and the list stops
      // at them.
      if (most !== null) spec.max_fires = most;
      if (limits.ends_at) spec.ends_at = limits.ends_at;
      const stop = body(form, STOP_FIELDS);
      if (stop.stop_condition_type && stop.stop_condition_value) Object.assign(spec, stop);
      answer = await api("POST", "/v1/schedules/preview", spec).catch((e) => {
        // A zone this browser knows and the database does not: the sentence in UTC, then.
        if (!(e instanceof ApiError) || e.field !== "text_timezone") throw e;
        delete spec.text_timezone;
        return api("POST", "/v1/schedules/preview", spec);
      });
    } catch (e) {
      if (mine === seq) fill(preview, h("p", { class: "error" }, e instanceof ApiError ? labelledMessage(form, e.field, e.message) : e.message));
      return;
    }
    if (mine !== seq) return;  // a later keystroke's answer wins
    const times = trimFires(answer.times, { maxFires: most, endsAt: limits.ends_at });
    // A one-time schedule's sentence names its time in UTC, the list below in this browser's
    // zone, as the form is: the list alone says it without two clocks.
    const sentence = spec.schedule_type === "one_time" ? null : answer.schedule_text;
    fill(preview,
      sentence ? h("p", {}, sentence) : null,
      times.length
        ? h("ol", {}, times.map((t) => h("li", {}, time(t), Date.parse(t) === Date.parse(now) ? " (now, once created)" : "")))
        : h("p", {}, "It never fires."));
  }
  form.addEventListener("input", (e) => {
    if (![...SCHEDULE_FIELDS, ...LIMIT_FIELDS, ...POLICY_FIELDS, ...STOP_FIELDS].includes(e.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(updatePreview, 250);
  });
  kind.addEventListener("change", updatePreview);
  updatePreview();

  // A create whose entity and event type match a live reminder makes nothing and answers that
  // reminder (200): the form stays, with what was typed, and says so.
  const notice = form.querySelector("#create-notice");
  submitOnce(form, async () => {
    notice.hidden = true;
    if (!checkRequired(form)) return;
    const { status, data: r } = await apiAnswer("POST", "/v1/reminders", body(form));
    if (status === 201) {
      location.hash = `#/reminders/${r.id}`;
      return;
    }
    fill(notice, "A live reminder for this entity and event type already exists: ",
      h("a", { href: `#/reminders/${r.id}` }, `#${r.id}`), ". Nothing was created.");
    notice.hidden = false;
  });

  if (words) {
    // Every error of the parse is the text's.
    submitOnce(words, async () => {
      let answer;
      try {
        answer = await api("POST", "/v1/schedules/parse", { text: words.elements.text.value, timezone: browserZone() });
      } catch (err) {
        if (err instanceof ApiError) err.field = "text";
        throw err;
      }
      for (const name of WORD_FIELDS) {
        const el = form.elements[name];
        el.value = el.tagName === "SELECT" ? el.options[0].value : "";
        delete el.dataset.instant;
      }
      for (const [name, value] of Object.entries(answer.schedule || {})) {
        const el = form.elements[name];
        if (!el) continue;
        el.value = TIME_FIELDS.includes(name) ? toLocalInput(value) : value;
        if (TIME_FIELDS.includes(name)) Object.assign(el.dataset, { instant: value, shown: el.value });
      }
      showScheduleFields();
      updatePreview();
    });
  }
}
