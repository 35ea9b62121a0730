// One reminder: its fields, the schedule in words, the next fires, every execution with its
// delivery attempts, and the buttons that change it. Updates live.

import { api, query, ApiError } from "./api.js";
import { h, fill, moreButton, field, input, status, time, timeText, flash, labelledRow, tableHead } from "./dom.js";
import { showFieldError, submitOnce } from "./form-errors.js";
import { describeSchedule, entity, reasonText } from "./format.js";
import { reminderFires } from "./fires.js";
import { holdingBreaker } from "./held.js";
import { numberOrText, toRfc3339, inYourZone, TIME_INPUT } from "./values.js";

const LIVE = ["ACTIVE", "PAUSED"];
const HISTORY_PAGE = 20;

function facts(r) {
  const rows = [
    ["Entity", entity(r)], ["Event type", r.event_type], ["Channel", r.channel],
    ["Target", r.target || (r.channel === "log" ? "the worker's log" : "the entity's contact")],
    ["Schedule", describeSchedule(r)],
    // A reason that only repeats the status ("CANCELLED (cancelled)") is left out.
    ["Status", [status(r.status), r.completed_reason && r.completed_reason !== r.status.toLowerCase() ? ` (${reasonText(r.completed_reason)})` : ""]],
    ["Next fire", time(r.next_run_at)], ["Fires so far", r.fire_count],
    ["At most this many fires", r.max_fires], ["Ends at", time(r.ends_at)],
    ["Stops when flag is true", r.stop_condition_value], ["Misfire policy", r.misfire_policy],
    ["Attempts per fire", r.max_attempts], ["Retrying occurrence", time(r.retrying_occurrence)],
    ["Last error", r.last_error], ["Made by rule", r.rule_id ? h("a", { href: `#/rules?id=${r.rule_id}` }, `#${r.rule_id}`) : null],
    ["Made for event", r.event_id ? h("a", { href: `#/events?id=${r.event_id}` }, `#${r.event_id}`) : null],
    ["Payload", h("code", {}, JSON.stringify(r.payload))],
    ["Request", r.request ? h("code", {}, JSON.stringify(r.request)) : null],
    ["Created", time(r.created_at)], ["Finished", time(r.finished_at)],
  ];
  return h("dl", { class: "facts" }, rows
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

const ATTEMPT_COLUMNS = ["Attempt", "At", "Outcome", "Status code", "Error", "Response", "Duration", "Worker"];

// On a phone its rows stack into cards, as the reminders list's do: eight columns do not fit.
function attemptsTable(attempts) {
  return h("table", { class: "attempts stack-on-phone" },
    h("caption", { class: "sr-only" }, "Delivery attempts"),
    tableHead(ATTEMPT_COLUMNS),
    h("tbody", {}, attempts.map((a) => labelledRow({}, ATTEMPT_COLUMNS, [
      a.attempt, time(a.attempted_at), a.outcome, a.status_code ?? "", a.error || "",
      a.response ? h("code", {}, typeof a.response === "string" ? a.response : JSON.stringify(a.response)) : "",
      a.duration_ms !== undefined ? `${a.duration_ms} ms` : "", a.worker || ""], [0, 3, 6]))));
}

// An ended occurrence has fired_at; one still retrying, skipped or left unfinished has not.
function execution(e) {
  // A 429, or a webhook host that could not be reached, uses none of the fire's attempts while
  // the free ones last (README): "16 attempts" of a reminder allowed 3 read as a bug (explore30b
  // F4). The worker's error says which unreachable tries were free.
  const tries = e.delivery_attempts || [];
  const limited = tries.filter((a) => a.status_code === 429).length;
  const unreached = tries.filter((a) => (a.error || "").includes("this try uses none of the occurrence's attempts")).length;
  const free = [limited ? `${limited} answered 429` : "", unreached ? `${unreached} found the host unreachable` : ""].filter(Boolean).join(", ");
  const attempts = `${e.attempts} attempt${e.attempts === 1 ? "" : "s"}` +
    (free ? ` (${free}, which use no attempt: up to 20 of them)` : "");
  return h("li", { class: "execution" },
    h("p", {}, h("strong", {}, e.outcome), " · scheduled ", time(e.scheduled_for), e.fired_at ? [" · fired ", time(e.fired_at)] : null,
      ` · ${attempts} · ${e.worker}`, e.error ? ` · ${e.error}` : ""),
    e.delivery_attempts ? attemptsTable(e.delivery_attempts) : null);
}

// What a next fire in the past does, by the reminder's misfire policy (README, "After downtime").
const PAST_FIRE = {
  fire_once: "the reminder fires at once",
  skip: "under misfire policy skip, the occurrences since then more than [misfire] threshold_seconds ago (60 s by default) are skipped, not fired, and each later one fires at once",
  fire_all: "under misfire policy fire_all, every occurrence since then fires at once (up to the workers' cap)",
};

// The confirm a reschedule into the past needs, or null: the API takes a past time, which the
// misfire policy then handles at once (a one-time reminder is then done); none of it can be undone.
function pastWarning(patch, r) {
  const now = Date.now();
  const said = [];
  if (patch.run_at && Date.parse(patch.run_at) < now) {
    const policy = r.schedule_type === "one_time" ? "fire_once" : r.misfire_policy;
    // A paused reminder does nothing until it is resumed (explore27a DOC 9).
    const when = r.status === "PAUSED" ? "once it is resumed, " : "";
    said.push(`The next fire, ${timeText(patch.run_at)}, is in the past: ${when}${PAST_FIRE[policy] ?? PAST_FIRE.fire_once}${r.schedule_type === "one_time" ? " and is then completed" : ""}.`);
  }
  if (patch.ends_at && Date.parse(patch.ends_at) < now) said.push(`"Ends at", ${timeText(patch.ends_at)}, is in the past.`);
  return said.length ? `${said.join(" ")} Reschedule anyway?` : null;
}

// A box that removes a limit the reminder has (PATCH with null); shown only while it has one.
function removeLimit(name, label) {
  const id = `f-remove-${name}`;
  return h("div", { class: "field", "data-remove": name, hidden: true },
    h("input", { type: "checkbox", id, name: `remove_${name}` }),
    h("label", { for: id }, ` ${label}`));
}

export async function detailView(main, ctx) {
  const id = ctx.args[0];
  const heading = h("h1", {}, `Reminder #${id}`);
  const factsBox = h("div", { id: "facts" });
  const buttons = h("div", { class: "actions needs-write", role: "group", "aria-label": "Change this reminder" });
  const actionNote = h("p", { role: "status", tabindex: "-1" });
  const next = h("div", { id: "next-fires", "aria-live": "polite" });
  const history = h("ol", { id: "executions", class: "executions" });
  const older = h("div", { class: "paging" });
  const reschedule = h("form", { id: "reschedule-form", novalidate: true },
    field("Next fire", input("run_at", TIME_INPUT), inYourZone()),
    field("Interval in seconds", input("interval_seconds", { inputmode: "numeric" })),
    field("Cron expression", input("cron", { spellcheck: "false", autocomplete: "off" }), "the next fire becomes the new schedule's first at or after Next fire, else after now"),
    field("Time zone", input("timezone", { spellcheck: "false", autocomplete: "off" })),
    field("At most this many fires", input("max_fires", { inputmode: "numeric" })),
    removeLimit("max_fires", "no limit on fires"),
    field("Ends at", input("ends_at", TIME_INPUT), inYourZone()),
    removeLimit("ends_at", "no end"),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Reschedule"));

  const back = () => h("p", {}, h("a", { href: "#/reminders" }, "← All reminders"));
  fill(main, back(), heading, factsBox, buttons, actionNote,
    h("h2", {}, "Next fires"), next,
    h("details", { class: "needs-write" }, h("summary", {}, "Reschedule"), reschedule),
    h("h2", {}, "Executions"), history, older);

  let reminder = null;

  function show(r) {
    reminder = r;
    fill(factsBox, facts(r));
    const live = LIVE.includes(r.status);
    const focused = buttons.contains(document.activeElement) ? document.activeElement.textContent : null;
    fill(buttons,
      r.status === "ACTIVE" ? h("button", { type: "button", onclick: () => change("pause") }, "Pause") : null,
      r.status === "PAUSED" ? h("button", { type: "button", onclick: () => change("resume") }, "Resume") : null,
      live ? h("button", { type: "button", class: "danger", onclick: () => change("cancel") }, "Cancel") : null,
      // Its attempts ran out: once its receiver is back, a new occurrence, due now.
      r.status === "FAILED" ? h("button", { type: "button", onclick: () => change("retry") }, "Retry") : null);
    // The focused button was rebuilt: the focus stays on its successor (the same button after a
    // live update; Resume in place of Pause), or goes to what the change said when none is left,
    // never back to the top of the page.
    if (focused !== null) {
      const all = [...buttons.querySelectorAll("button")];
      (all.find((b) => b.textContent === focused) ?? all[0] ?? actionNote).focus();
    }
    reschedule.closest("details").hidden = !live;
    // An interval is only a recurring reminder's (the API refuses it for the others).
    reschedule.querySelector('[data-field="interval_seconds"]').hidden = r.schedule_type !== "recurring";
    // A cron reminder's schedule, shown as it is until changed.
    for (const name of ["cron", "timezone"]) {
      reschedule.querySelector(`[data-field="${name}"]`).hidden = r.schedule_type !== "cron";
      reschedule.elements[name].placeholder = r[name] ?? "";
    }
    // A live update (a fire) leaves what is being typed alone: a tick it undid was lost without
    // a word (explore30b F10). A limit the reminder no longer has offers no removal.
    for (const name of ["max_fires", "ends_at"]) {
      const box = reschedule.querySelector(`[data-remove="${name}"]`);
      box.hidden = r[name] == null;
      if (box.hidden) keepLimit(name);
    }
    loadNext(r).catch(() => {});
  }

  async function loadNext(r) {
    if (!LIVE.includes(r.status) || !r.next_run_at) {
      fill(next, h("p", {}, "None: it is ", r.status.toLowerCase(), "."));
      return;
    }
    const times = await reminderFires(r);
    // A fire already due happens as soon as a worker claims it (once resumed, if paused); an
    // occurrence being retried is tried again first, and the later ones already due follow it.
    const now = Date.now();
    const retry = Date.parse(r.next_run_at);
    const note = (t, i) => {
      if (i === 0 && r.retrying_occurrence) return [" (next attempt at the fire due ", time(r.retrying_occurrence), ")"];
      if (r.retrying_occurrence && Date.parse(t) <= retry) return " (once that attempt ends)";
      return Date.parse(t) <= now ? " (at once)" : "";
    };
    fill(next, h("ol", {}, times.map((t, i) => h("li", {}, time(t), note(t, i)))),
      r.status === "PAUSED" ? h("p", { class: "hint" }, "While paused, none of these is fired.") : null);
    // Its next attempt waits for its host's breaker: say so, and where breakers are listed.
    const held = await holdingBreaker(r).catch(() => null);
    if (held) {
      next.append(h("p", { id: "held", class: "hint" }, `Held: the circuit breaker of ${held.host} is ${held.state} after ${held.failures} failures; `,
        "its next probe is at ", time(held.next_probe_at), ". Held deliveries use no attempts. ", h("a", { href: "#/overview" }, "Breakers")));
    }
  }

  // The newest executions, 20 more each "Show older executions"; a reload (a fire, a resync)
  // asks for as many as are shown, so older ones shown stay and the next cursor follows them.
  let shown = HISTORY_PAGE;
  let reloads = 0;
  function showOlder(cursor) {
    fill(older, cursor ? moreButton(older, "Show older executions", () => loadOlder(cursor)) : null);
  }

  async function loadHistory() {
    reloads += 1;
    // In pages of the API's 500 at most: past 500 shown, one call dropped the oldest (explore32c F1).
    const items = [];
    let cursor;
    do {
      const page = await api("GET", `/v1/reminders/${id}/executions${query({ limit: Math.min(shown - items.length, 500), cursor })}`);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < shown);
    fill(history, items.length ? items.map(execution) : h("li", {}, "No fires yet."));
    showOlder(cursor);
  }

  async function loadOlder(cursor) {
    const before = reloads;
    try {
      const page = await api("GET", `/v1/reminders/${id}/executions${query({ limit: HISTORY_PAGE, cursor })}`);
      shown += HISTORY_PAGE;
      // The list was reloaded meanwhile (a fire): its cursor is not this one, so reload it all.
      if (reloads !== before) return await loadHistory();
      history.append(...page.items.map(execution));
      showOlder(page.next_cursor);
    } catch (e) {
      fill(older, h("p", { class: "error", role: "alert" }, `Could not load older executions: ${e.message}`));
    }
  }

  async function change(action) {
    if (action === "cancel" && !confirm(`Cancel reminder #${id} for good?`)) return;
    try {
      show(await api("POST", `/v1/reminders/${id}/${action}`));
      actionNote.textContent = action === "retry" && reminder.status === "ACTIVE"
        ? "Retried: due now, as a new occurrence."
        : `Done: ${reminder.status.toLowerCase()}.`;
    } catch (e) {
      actionNote.textContent = e.message;
    }
  }

  function keepLimit(name) {
    reschedule.elements["remove_" + name].checked = false;
    reschedule.elements[name].disabled = false;
  }

  // A limit being removed takes no new value.
  reschedule.addEventListener("change", (e) => {
    if (!e.target.name?.startsWith("remove_")) return;
    const limit = reschedule.elements[e.target.name.slice("remove_".length)];
    limit.disabled = e.target.checked;
    if (e.target.checked) limit.value = "";
  });

  submitOnce(reschedule, async () => {
    actionNote.textContent = "";
    const patch = {};
    for (const el of reschedule.elements) {
      if (!el.name || el.disabled || el.closest("[hidden]")) continue;
      if (el.type === "checkbox") {
        if (el.checked) patch[el.name.replace(/^remove_/, "")] = null;
        continue;
      }
      const v = el.value.trim();
      if (v) patch[el.name] = el.type === "datetime-local" ? toRfc3339(v) : numberOrText(v);
    }
    // The API's own "nothing to change" names fields this form does not have.
    if (!Object.keys(patch).length) {
      const rescheduleLabels = [...reschedule.querySelectorAll(".field:not([hidden]):not([data-remove]) label")].map((l) => l.textContent);
      showFieldError(reschedule, "", `Nothing to change: fill in ${rescheduleLabels.slice(0, -1).join(", ")} or ${rescheduleLabels.at(-1)}.`);
      return;
    }
    const warning = pastWarning(patch, reminder);
    if (warning && !confirm(warning)) return;
    show(await api("PATCH", `/v1/reminders/${id}`, patch));
    // Sent and shown above: a later change sends only what is typed then.
    reschedule.reset();
    for (const name of ["max_fires", "ends_at"]) keepLimit(name);
    actionNote.textContent = "Rescheduled.";
  });

  ctx.subscribe((type, data) => {
    if (type === "resync") {
      // A message shown while the read was on its way may be newer than the read (explore32c F2).
      api("GET", `/v1/reminders/${id}`)
        .then((r) => { if (!reminder || Date.parse(r.updated_at) >= Date.parse(reminder.updated_at)) show(r); })
        .catch(() => {});
      loadHistory().catch(() => {});
      return;
    }
    if (type !== "reminder" || !data.reminder || String(data.reminder.id) !== id) return;
    // A message rendered before a later change whose answer came first (pause, then resume)
    // carries the older state: showing it would put the Resume button back for a moment.
    if (reminder && Date.parse(data.reminder.updated_at) < Date.parse(reminder.updated_at)) return;
    show(data.reminder);
    flash(factsBox);
    // Cancelling or completing a retrying reminder leaves its occurrence unfinished.
    if (data.execution || ["fired", "failed", "retrying", "cancelled", "completed"].includes(data.change)) loadHistory().catch(() => {});
  });

  try {
    show(await api("GET", `/v1/reminders/${id}`));
  } catch (e) {
    // No such reminder (404), or an id that cannot be one (400 naming id: #/reminders/0).
    if (e instanceof ApiError && (e.status === 404 || e.field === "id")) {
      fill(main, back(), h("h1", {}, `Reminder #${id}`), h("p", { role: "alert" }, e.message));
      return;
    }
    throw e;
  }
  await loadHistory();
}
