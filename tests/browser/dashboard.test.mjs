// The dashboard in a real browser against a real API, worker and PostgreSQL: the flows a person
// goes through, each view checked with axe-core (no serious or critical violation), and nothing
// loaded from outside. One browser, one API and one worker for every flow, to stay fast.
//
// Flows that watch something happen live use GET /v1/stream. NUDGE_BROWSER_SCREENSHOTS=DIR saves the main views as PNGs into DIR (how
// docs/dashboard-*.png are made).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { join } from "node:path";
import { Stack, waitUntil } from "./harness.mjs";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const shots = process.env.NUDGE_BROWSER_SCREENSHOTS;

const stack = new Stack();
let page;
const pageErrors = [];
const outside = [];
let failed = false;
// A real webhook receiver on loopback: it counts what it gets and answers 200, except that
// /down answers 503 to its first request (a receiver down, then back).
let received = 0;
let downRequests = 0;
const receiver = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    received += 1;
    if (req.url === "/down" && ++downRequests === 1) {
      res.writeHead(503, { "Content-Type": "text/plain" }).end("down");
      return;
    }
    res.writeHead(200, { "Content-Type": "text/plain" }).end("thanks");
  });
});
let hookUrl;

before(async () => {
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  await stack.start();
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // The pages' own policy (default-src 'self') must not have to block anything they do.
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
  });
  page.on("request", (r) => {
    if (!r.url().startsWith(stack.base) && !r.url().startsWith("data:")) outside.push(r.url());
  });
});

after(async () => {
  if (failed) console.error(stack.logs());
  await stack.stop(failed);
  receiver.close();
});

// Each flow: run, and keep the processes' logs when it fails.
function flow(name, options, fn) {
  test(name, options, async (t) => {
    try {
      await fn(t);
      assert.deepEqual(pageErrors.splice(0), [], "uncaught errors or blocked content in the page");
    } catch (e) {
      failed = true;
      // What the page showed and threw: a flow that times out says no more than its selector.
      const shown = await page.evaluate(() => document.getElementById("main").innerText).catch(() => "");
      console.error(`--- ${name}: the page's errors`, pageErrors.splice(0), `\n--- what it showed\n${shown.slice(0, 2000)}`);
      throw e;
    }
  });
}

// Shows the view at `hash`, loaded afresh (the same hash again is a reload: no hashchange).
async function open(hash) {
  const url = `${stack.base}/#${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await page.waitForSelector(`main[data-route="${hash}"]`);
}

async function noSeriousViolations(view) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), [],
    `accessibility violations on ${view}`);
}

async function screenshot(name, options = {}) {
  if (shots) await page.screenshot({ path: join(shots, `dashboard-${name}.png`), ...options });
}

// Waits until the page's live stream is connected (what a flow that watches a live change needs).
async function streamLive() {
  await waitUntil(async () => (await page.getAttribute("#connection", "data-state")) === "live", 10000, "live state");
}

let seq = 0;
const unique = (prefix) => `${prefix}_${process.pid}_${++seq}`;

// A recurring reminder, created through the form: its id.
async function createInForm({ entityId, interval = 2, flag }) {
  await open("/new");
  await page.fill("#f-entity_type", "interviewer");
  await page.fill("#f-entity_id", entityId);
  await page.fill("#f-event_type", "feedback_form");
  await page.selectOption("#f-schedule_type", "recurring");
  await page.fill("#f-interval_seconds", String(interval));
  // The preview follows the typing: five fires, `interval` seconds apart.
  await page.waitForFunction(() => document.querySelectorAll("#preview li").length === 5);
  const times = await page.$$eval("#preview time", (els) => els.map((e) => Date.parse(e.dateTime)));
  assert.equal(times[1] - times[0], interval * 1000);
  await page.selectOption("#f-channel", "webhook");
  await page.fill("#f-target", hookUrl);
  await page.fill("#f-payload", '{"subject": "Your feedback is due"}');
  if (flag) {
    await page.selectOption("#f-stop_condition_type", "db_check");
    await page.fill("#f-stop_condition_value", flag);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot("create", { fullPage: true });
  await page.click("#create-form button[type=submit]");
  await page.waitForURL(/#\/reminders\/\d+$/);
  return Number(page.url().match(/(\d+)$/)[1]);
}

let fired;  // {id, flag}: the reminder the later flows follow

flow("the page and the docs load from this server alone, with no token and no uncaught error", {}, async () => {
  await open("/overview");
  await page.waitForSelector(".cards");
  // The connection state is shown, and the stream goes live.
  await streamLive();
  await page.goto(`${stack.base}/docs`);
  await page.waitForSelector(".swagger-ui .opblock", { timeout: 30000 });
  assert.ok(await page.locator(".opblock-summary-path", { hasText: "/v1/reminders" }).first().isVisible());
  // "Try it out" calls the server the docs came from (the document's server is relative).
  const overview = page.locator(".opblock:has(.opblock-summary-path[data-path='/v1/overview'])").first();
  await overview.locator(".opblock-summary").click();
  await overview.locator("button.try-out__btn").click();
  await overview.locator("button.execute").click();
  await overview.locator(".live-responses-table .response .response-col_status").first().waitFor();
  assert.equal((await overview.locator(".live-responses-table .response .response-col_status").first().textContent()).trim(), "200");
  assert.equal(await overview.locator(".request-url pre").textContent(), `${stack.base}/v1/overview`);
  assert.deepEqual(outside, [], "requests to other hosts");
});

flow("the overview names the webhook hosts whose circuit breaker is open", {}, async () => {
  await open("/overview");
  await page.waitForSelector("#breakers:has-text('None is open')");
  stack.sql(`INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at, next_probe_at, open_seconds, last_error)
             VALUES ('https://down.example:443', 'open', 5, now(), now() + interval '5 minutes', 300, 'HTTP 503')`);
  await page.click("button:text-is('Refresh')");
  const row = await page.waitForSelector("#breakers tbody tr");
  assert.match(await row.textContent(), /^https:\/\/down\.example:443open50/);
  // Why it is open: its last failed attempt's error (explore18a #2).
  assert.match(await row.textContent(), /HTTP 503Close now$/);
  // The deliveries it holds, and the workers connected (explore18a #2, #3).
  assert.match(await page.textContent("main"), /0held by circuit breakers/);
  assert.match(await page.textContent("main"), /1workers connected/);
  assert.equal(await page.isVisible("#no-worker"), false);
  // Closed by hand once its receiver is back (asked first).
  const asked = [];
  page.once("dialog", (d) => asked.push(d.message()) && d.accept());
  await page.click("#breakers button:text-is('Close now')");
  await page.waitForSelector("#breakers:has-text('None is open')");
  assert.match(asked[0] || "", /^Close the circuit breaker of https:\/\/down\.example:443 now\?/);
  assert.equal((await stack.api("GET", "/v1/targets")).body.items.find((t) => t.host === "https://down.example:443").state, "closed");
});

// An open breaker past its probe time with nothing held probes with its host's next delivery:
// its probe time, in the past, read as a probe that never came (explore23a #5).
flow("an open breaker with nothing to probe with says it waits for the next delivery", {}, async () => {
  stack.sql(`INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at, next_probe_at, open_seconds)
             VALUES ('https://idle.example:443', 'open', 5, now() - interval '5 minutes', now() - interval '4 minutes', 60)`);
  await open("/overview");
  const row = page.locator("#breakers tbody tr", { hasText: "https://idle.example:443" });
  assert.match(await row.textContent(), /^https:\/\/idle\.example:443open50with the next delivery/);
  stack.sql("DELETE FROM nudge.target_hosts WHERE host = 'https://idle.example:443'");
});

// A host or URL that answers 429 keeps its breaker closed: the overview names it with its pace.
flow("the overview names the hosts and URLs paced because they answered 429", {}, async () => {
  await open("/overview");
  await page.waitForSelector("#paced-hosts:has-text('No webhook host is rate-limiting')");
  stack.sql(`INSERT INTO nudge.target_hosts (host, pace, limited_at, paced_until, next_send_at)
             VALUES ('https://limited.example:443', 2, now() + interval '1 minute', now() + interval '5 minutes',
                     now() + interval '1 minute')`);
  // A delivery it holds back, due a minute ago: how long it has waited is said (explore30b F6).
  const held = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("PACED"), event_type: "paced", channel: "webhook",
    target: "https://limited.example/in", schedule_type: "one_time", run_at: new Date(Date.now() - 60000).toISOString() });
  assert.equal(held.status, 201, JSON.stringify(held.body));
  await page.click("button:text-is('Refresh')");
  const row = await page.waitForSelector("#paced-hosts tbody tr");
  assert.match(await row.textContent(), /^https:\/\/limited\.example:4432 a second\d.*End pacing$/);
  assert.match(await (await page.waitForSelector("#paced-waiting")).textContent(), /^1 due delivery waits for them; the oldest has been due for \d+ s\.$/);
  assert.equal((await stack.api("POST", `/v1/reminders/${held.body.id}/cancel`)).status, 200);
  page.once("dialog", (d) => d.accept());
  await page.click("#paced-hosts button:text-is('End pacing')");
  await page.waitForSelector("#overview-said:has-text('Ended the pacing of https://limited.example:443')");
  await page.waitForSelector("#paced-hosts:has-text('No webhook host is rate-limiting')");
  stack.sql("DELETE FROM nudge.target_hosts WHERE host = 'https://limited.example:443'");

  // A URL paced on its own (Slack limits each incoming webhook): its row names the URL.
  stack.sql(`INSERT INTO nudge.target_hosts (host) VALUES ('https://hooks.example:443')`);
  stack.sql(`INSERT INTO nudge.paced_targets (url, host, pace, limited_at, paced_until, next_send_at, refused_at)
             VALUES ('https://hooks.example:443/services/T1', 'https://hooks.example:443', 1, now() + interval '1 minute',
                     now() + interval '5 minutes', now() + interval '1 minute', now())`);
  await page.click("button:text-is('Refresh')");
  const url = await page.waitForSelector("#paced-hosts tbody tr");
  assert.match(await url.textContent(), /^https:\/\/hooks\.example:443\/services\/T11 a second\d.*End pacing$/);
  page.once("dialog", (d) => d.accept());
  await page.click("#paced-hosts button:text-is('End pacing')");
  await page.waitForSelector("#overview-said:has-text('Ended the pacing of https://hooks.example:443')");
  await page.waitForSelector("#paced-hosts:has-text('No webhook host is rate-limiting')");
  stack.sql("DELETE FROM nudge.target_hosts WHERE host = 'https://hooks.example:443'");
});

// A slow receiver never opens its breaker: the overview names the host its deliveries wait on.
flow("the overview names the webhook hosts with the most deliveries under way", {}, async () => {
  await open("/overview");
  await page.waitForSelector("#busy-hosts");
  // Leased to a worker that is not this stack's (so none of its workers takes them): under way.
  stack.sql(`INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target, schedule_type,
               next_run_at, leased_by, lease_expires_at)
             SELECT 'busy', g::text, 'x', 'webhook', 'https://slow.example/hook', 'one_time',
                    now() - interval '2 minutes', 'elsewhere:1:00000000/0', now() + interval '10 minutes'
               FROM generate_series(1, 3) g`);
  await page.click("button:text-is('Refresh')");
  const row = await page.waitForSelector("#busy-hosts tbody tr");
  assert.equal(await row.textContent(), "https://slow.example:44330noneclosed");
  stack.sql("DELETE FROM nudge.reminders WHERE entity_type = 'busy'");
  await page.click("button:text-is('Refresh')");
  await page.waitForSelector("#busy-hosts:has-text('No webhook delivery is under way or due')");
});

flow("a recurring reminder created in the form opens its detail", {}, async () => {
  const flag = unique("feedback");
  const id = await createInForm({ entityId: unique("INT"), flag });
  await page.waitForSelector("#facts dl");
  assert.match(await page.textContent("#facts"), /every 2 seconds/);
  assert.match(await page.textContent("#facts"), /ACTIVE/);
  fired = { id, flag };
});

flow("it fires in the live list without a reload", {}, async () => {
  await open("/reminders");
  await page.evaluate(() => { window.__sameDocument = true; });
  const row = `#reminders tr[data-id="${fired.id}"]`;
  await page.waitForSelector(row);
  await page.waitForFunction((sel) => Number(document.querySelector(sel + " td.num").textContent) >= 2, row, { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
});

flow("its detail shows the executions and their delivery attempts", {}, async () => {
  await waitUntil(async () => (await stack.api("GET", `/v1/reminders/${fired.id}/executions`)).body.items.length >= 1,
    20000, "a fire");
  await open(`/reminders/${fired.id}`);
  await page.waitForSelector("#executions .attempts tbody tr").catch(async (e) => {
    console.error("executions:", JSON.stringify((await stack.api("GET", `/v1/reminders/${fired.id}/executions`)).body).slice(0, 2000));
    console.error(await page.textContent("main"));
    throw e;
  });
  const attempt = await page.textContent("#executions .attempts tbody tr");
  assert.match(attempt, /delivered/);
  assert.match(attempt, /200/);  // the receiver's status code
  assert.match(attempt, /thanks/);  // and its answer
  assert.ok(received >= 1);
  await page.waitForSelector("#next-fires li");
  await screenshot("detail", { fullPage: true });
  await noSeriousViolations("the reminder's detail");
});

flow("toggling its stop flag completes it and the flags view lists what it stopped", {}, async () => {
  const set = await stack.api("PUT", `/v1/flags/${fired.flag}`, { value: false });
  assert.ok([200, 201].includes(set.status), JSON.stringify(set));
  await open("/flags");
  const toggle = `#flags tr[data-key="${fired.flag}"] [role=switch][aria-label="${fired.flag}"]`;
  await page.waitForSelector(toggle);
  assert.equal(await page.getAttribute(toggle, "aria-checked"), "false");
  await page.focus(toggle);
  // Turning it true asks first, naming the flag; declined, nothing is set.
  const asked = [];
  page.once("dialog", (d) => asked.push(d.message()) && d.dismiss());
  await page.keyboard.press("Enter");  // the keyboard alone
  assert.match(asked[0] || "", new RegExp(`^Set ${fired.flag} to true\\?`));
  assert.equal((await stack.api("GET", `/v1/flags/${fired.flag}`)).body.value, false);
  page.once("dialog", (d) => d.accept());
  await page.keyboard.press("Enter");
  await page.waitForSelector(`${toggle}[aria-checked="true"]`);
  await page.waitForSelector(`#stopped a[href="#/reminders/${fired.id}"]`);
  assert.match(await page.textContent("#stopped"), /COMPLETED/);
  await noSeriousViolations("flags");
  // The flag's reminders, through the list's stop flag filter.
  await page.click(`#flags tr[data-key="${fired.flag}"] a`);
  await page.waitForSelector(`main[data-route^="/reminders?stop_condition_value="]`);
  assert.deepEqual(await page.$$eval("#reminders tbody tr", (rows) => rows.map((r) => r.dataset.id)), [String(fired.id)]);
  await open(`/reminders/${fired.id}`);
  await page.waitForSelector("#facts .status-completed");
  assert.match(await page.textContent("#facts"), /\(its stop flag turned true\)/);
});

flow("a refused field shows the API's error next to that field", {}, async () => {
  await open("/new");
  await page.fill("#f-entity_type", "interviewer");
  await page.fill("#f-entity_id", unique("INT"));
  await page.fill("#f-event_type", "feedback_form");
  await page.selectOption("#f-schedule_type", "recurring");
  await page.fill("#f-interval_seconds", "60");
  await page.selectOption("#f-channel", "webhook");
  await page.fill("#f-target", "not a url");
  // The API's answer first, so that a failure says which side went wrong (once, under a loaded
  // CI run, the field was never marked and nothing said why).
  const answered = page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/reminders");
  await page.click("#create-form button[type=submit]");
  const answer = await answered;
  const refusal = await answer.text();
  assert.equal(answer.status(), 400, refusal);
  assert.equal(JSON.parse(refusal).error.field, "target", refusal);
  await page.waitForSelector("#f-target[aria-invalid=true]");
  // Under its label, the error does not repeat the API's name for the field.
  assert.match(await page.textContent("#f-target-error"), /^must /);
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-target");
  // The preview says what is wrong with a schedule as it is typed.
  await page.selectOption("#f-schedule_type", "cron");
  await page.fill("#f-cron", "61 * * * *");
  await page.waitForSelector("#preview .error:has-text('61')");
  // Named by the field's label, as the page names it, not by the API's name for it.
  assert.match(await page.textContent("#preview"), /^Cron expression: /);
  await screenshot("field-error");
  await noSeriousViolations("the create form");
});

flow("a create that finds a live reminder says so and keeps the form", {}, async () => {
  const entityId = unique("DUP");
  const live = await stack.api("POST", "/v1/reminders", { entity_type: "interviewer", entity_id: entityId, event_type: "feedback_form", channel: "log", schedule_type: "cron", cron: "30 2 * * *" });
  assert.equal(live.status, 201, JSON.stringify(live.body));
  await open("/new");
  await page.fill("#f-entity_type", "interviewer");
  await page.fill("#f-entity_id", entityId);
  await page.fill("#f-event_type", "feedback_form");
  await page.fill("#f-run_at", "2030-03-01T09:00");
  await page.click("#create-form button[type=submit]");
  const notice = await page.waitForSelector("#create-notice:not([hidden])");
  assert.equal(await notice.textContent(), `A live reminder for this entity and event type already exists: #${live.body.id}. Nothing was created.`);
  assert.equal(await notice.$eval("a", (a) => a.getAttribute("href")), `#/reminders/${live.body.id}`);
  assert.equal(new URL(page.url()).hash, "#/new");
  assert.equal(await page.inputValue("#f-run_at"), "2030-03-01T09:00");
});

let ruleEventType;  // the event type of the rule the editor saved

flow("a rule saved in the editor and an event recorded in the form create a reminder", {}, async () => {
  const eventType = unique("interview_completed");
  ruleEventType = eventType;
  await open("/rules");
  await page.fill("#f-name", "nag the interviewer");
  await page.fill("#f-event_type", eventType);
  await page.fill("#f-action", JSON.stringify({
    type: "remind",
    reminder: { event_type: "feedback_form", channel: "log", schedule_type: "one_time", delay_seconds: 3600 },
  }));
  await page.click("#rule-form button[type=submit]");
  await page.waitForSelector(`#rules td:text-is("${eventType}")`);
  await noSeriousViolations("rules");

  // The event from the form: its effect links to the reminder the rule created.
  await open("/events");
  await page.click("#events-record summary");
  await page.fill("#f-event_type", eventType);
  await page.fill("#f-entity_type", "interviewer");
  const entityId = unique("INT");
  await page.fill("#f-entity_id", entityId);
  await page.fill("#f-data", '{"candidate": "C-7"}');
  await page.fill("#f-key", unique("key"));
  await page.click("#event-form button[type=submit]");
  const link = await page.waitForSelector("#event-log .effects a[href^='#/reminders/']");
  assert.match(await page.textContent("#event-log .effects"), /created/);
  // The form says what it did, also when the same key makes it do nothing.
  const recorded = await page.textContent("#event-recorded");
  assert.match(recorded, /^Recorded event #\d+\.$/);
  await page.click("#event-form button[type=submit]");
  const eventId = recorded.match(/#(\d+)/)[1];
  await page.waitForSelector(`#event-recorded:text-is("Already recorded (same key): event #${eventId}; nothing changed.")`);
  assert.equal(await page.locator(`#event-log li.event[data-id="${eventId}"]`).count(), 1);
  await link.click();
  await page.waitForSelector("#facts .status-active");
  await noSeriousViolations("events");
  // The reminder links the event it was made for, shown alone.
  const reminderId = page.url().match(/reminders\/(\d+)/)[1];
  await page.click(`#facts a[href="#/events?id=${eventId}"]`);
  await page.waitForSelector(`#event-log li.event[data-id="${eventId}"]`);
  assert.equal(await page.locator("#event-log li.event").count(), 1);
  assert.equal(await page.locator(".paging a[href='#/events']").count(), 1);
  assert.equal(await page.textContent("main h1"), `Event #${eventId}`);
  // Its end is Nudge's own event, which links back to the event that made the reminder.
  assert.equal((await stack.api("POST", `/v1/reminders/${reminderId}/cancel`)).status, 200);
  await open(`/events?event_type=nudge.reminder_completed&entity_id=${entityId}`);
  await page.click(`#event-log a[href="#/events?id=${eventId}"]`);
  await page.waitForSelector(`main[data-route="/events?id=${eventId}"] #event-log li.event[data-id="${eventId}"]`);
  await open("/events?id=999999999");
  await page.waitForSelector("#event-log:has-text('No event #999999999.')");
});

flow("an event's reminder appears live in the list and the event log", {}, async () => {
  const eventType = ruleEventType;
  await open("/reminders");
  await page.evaluate(() => { window.__sameDocument = true; });
  const answer = await stack.api("POST", "/v1/events", { event_type: eventType, entity_type: "interviewer", entity_id: unique("INT") });
  assert.equal(answer.status, 201);
  const id = answer.body.effects[0].reminder.id;
  await page.waitForSelector(`#reminders tr[data-id="${id}"]`, { timeout: 10000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  await open("/events");
  await page.waitForSelector(`#event-log a[href="#/reminders/${id}"]`);
});

flow("the event log folds Nudge's own events and is filtered from its URL", {}, async () => {
  const entityId = unique("SYS");
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: entityId, event_type: "sys", channel: "log", schedule_type: "one_time", run_at: new Date(Date.now() + 3600000).toISOString() });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.equal((await stack.api("POST", `/v1/reminders/${made.body.id}/cancel`)).status, 200);
  await open(`/events?entity_id=${entityId}`);
  assert.equal(await page.inputValue("#filter-entity_id"), entityId);
  // One line with a link to the reminder; the reminder itself is folded away.
  const entry = await page.waitForSelector("#event-log li.event");
  assert.equal(await page.locator("#event-log li.event").count(), 1);
  assert.equal(await entry.$eval(".system", (p) => p.textContent), `Reminder #${made.body.id} (sys) ended: it was cancelled`);
  assert.equal(await entry.$eval("details.data", (d) => d.open), false);
  // Another filter goes through the URL too.
  await page.fill("#filter-event_type", "nudge.reminder_failed");
  await page.press("#filter-event_type", "Enter");
  await page.waitForSelector(`main[data-route="/events?event_type=nudge.reminder_failed&entity_id=${entityId}"]`);
  await page.waitForSelector("#event-log:has-text('No events match.')");
  // Its detail says CANCELLED once.
  await open(`/reminders/${made.body.id}`);
  await page.waitForSelector("#facts .status-cancelled");
  assert.doesNotMatch(await page.textContent("#facts"), /\(cancelled\)/);
});

flow("a burst of live rows keeps the reminders list responsive and bounded", {}, async () => {
  const eventType = unique("burst");
  await open(`/reminders?event_type=${eventType}`);
  await page.waitForSelector(`main[data-route="/reminders?event_type=${eventType}"]`);
  await streamLive();
  // The longest gap between two frames from here on: a forced layout per live row froze the tab
  // for 44 s on 500 of them.
  await page.evaluate(() => {
    window.__gap = 0;
    let last = performance.now();
    const tick = (t) => { window.__gap = Math.max(window.__gap, t - last); last = t; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  const items = Array.from({ length: 500 }, (_, i) => ({ entity_type: "user", entity_id: `b${i}`, event_type: eventType, channel: "log", schedule_type: "one_time", run_at: new Date(Date.now() + 3600000).toISOString() }));
  assert.equal((await stack.api("POST", "/v1/reminders/batch", { items })).status, 200);
  await page.waitForFunction(() => document.querySelectorAll("#reminders tbody tr").length >= 50, null, { timeout: 20000 });
  await page.waitForTimeout(1500);
  const rows = await page.$$eval("#reminders tbody tr", (r) => r.length);
  assert.ok(rows <= 100, `${rows} rows: the live list is bounded by a page and a reload`);
  const gap = await page.evaluate(() => window.__gap);
  assert.ok(gap < 3000, `the tab froze for ${Math.round(gap)} ms`);
});

flow("the list pages forward and back, and a bad filter in the URL stays on screen to correct", {}, async () => {
  const eventType = unique("pages");
  const items = Array.from({ length: 51 }, (_, i) => ({ entity_type: "user", entity_id: `p${i}`, event_type: eventType, channel: "log", schedule_type: "one_time", run_at: new Date(Date.now() + 3600000).toISOString() }));
  assert.equal((await stack.api("POST", "/v1/reminders/batch", { items })).status, 200);
  const ids = () => page.$$eval("#reminders tbody tr", (rows) => rows.map((r) => r.dataset.id));
  await open(`/reminders?event_type=${eventType}`);
  await page.waitForSelector("#reminders tbody tr");
  const first = await ids();
  assert.equal(first.length, 50);
  await page.click("a:text-is('Next page')");
  await page.waitForSelector(`main[data-route*="cursor="]`);
  assert.equal((await ids()).length, 1);
  await page.click("a:text-is('Previous page')");
  await page.waitForSelector(`main[data-route="/reminders?event_type=${eventType}"]`);
  assert.deepEqual(await ids(), first);
  // One created live goes on top and pushes no row off the page: "Next page" still starts right
  // after the last row shown.
  await streamLive();
  const added = await stack.api("POST", "/v1/reminders", { ...items[0], entity_id: "p_live" });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  await page.waitForSelector(`#reminders tr[data-id="${added.body.id}"]`);
  assert.deepEqual(await ids(), [String(added.body.id), ...first]);
  await page.click("a:text-is('Next page')");
  await page.waitForSelector(`main[data-route*="cursor="]`);
  assert.equal((await ids()).length, 1);
  assert.ok(!first.includes((await ids())[0]));
  // A refused value is named next to its filter, without the API's name for it.
  await open(`/reminders?status=BOGUS&event_type=${eventType}`);
  await page.waitForSelector("#f-status[aria-invalid=true]");
  assert.match(await page.textContent("#f-status-error"), /^must be /);
  assert.equal(await page.inputValue("#f-status"), "BOGUS");  // what was asked, not "any"
  // Bulk changes would be refused for the same filter: they are not offered.
  assert.equal(await page.isVisible(".bulk"), false);
  await open("/reminders?cursor=garbage");
  await page.waitForSelector(".filters .form-error:has-text('cursor')");
  assert.ok(await page.isVisible("a:text-is('First page')"));
});

flow("'#/' is the overview, as a bare address is", {}, async () => {
  await page.goto(`${stack.base}/#/`);
  await page.waitForSelector("main .cards");
});

flow("an unknown route and a missing reminder say so, with a way back", {}, async () => {
  await open("/bogus");
  assert.equal(await page.title(), "Not found · Nudge");
  await open("/reminders/999999999");
  await page.waitForSelector("main [role=alert]:has-text('does not exist')");
  assert.ok(await page.isVisible("main a[href='#/reminders']"));
});

flow("only the latest navigation shows its view, and a view left while loading stops listening", {}, async () => {
  // Slow answers: the API's document (which New reminder waits for) and the rules list.
  const slow = async (route) => {
    await new Promise((r) => setTimeout(r, 500));
    await route.continue().catch(() => {});
  };
  await page.route("**/openapi.json", slow);
  await page.route("**/v1/rules?*", slow);
  const rulesAsked = [];
  const asked = (r) => r.url().includes("/v1/rules?") && rulesAsked.push(r.url());
  page.on("request", asked);
  try {
    // A fresh page (it asks for the document once): Rules, New reminder, Flags, each before the
    // one before it has loaded.
    await page.goto("about:blank");
    await page.goto(`${stack.base}/#/rules`);
    await page.evaluate(() => { location.hash = "#/new"; });
    await page.click("nav a[href='#/flags']");
    await page.waitForSelector("main[data-route='/flags']");
    await streamLive();
    await new Promise((r) => setTimeout(r, 700));  // the slow views have finished by now
    assert.deepEqual(await page.$$eval("main h1", (els) => els.map((e) => e.textContent)), ["Flags"]);
    assert.equal(await page.title(), "Flags · Nudge");
    // The rules view, left while it loaded, no longer reloads on a rule change.
    rulesAsked.length = 0;
    const key = unique("after");
    assert.equal((await stack.api("POST", "/v1/rules", { name: key, event_type: key, action: { type: "set_flag", flag: { key, value: true } } })).status, 201);
    assert.ok([200, 201].includes((await stack.api("PUT", `/v1/flags/${key}`, { value: false })).status));
    await page.waitForSelector(`#flags tr[data-key="${key}"]`);  // the stream got past the rule
    assert.deepEqual(rulesAsked, []);
  } finally {
    page.off("request", asked);
    await page.unroute("**/openapi.json");
    await page.unroute("**/v1/rules?*");
  }
});

flow("pause every reminder matching a filter, then resume them", {}, async () => {
  const eventType = unique("bulk");
  const items = [1, 2, 3].map((i) => ({ entity_type: "user", entity_id: `b${i}`, event_type: eventType, channel: "log", schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString() }));
  assert.equal((await stack.api("POST", "/v1/reminders/batch", { items })).status, 200);
  await open("/reminders");
  await page.fill("#f-event_type", eventType);
  await page.press("#f-event_type", "Enter");
  await page.waitForSelector(`main[data-route="/reminders?event_type=${eventType}"]`);
  assert.equal(await page.locator("#reminders tbody tr").count(), 3);
  // Asked first: one Enter paused 284 reminders (explore19b #16).
  const asked = [];
  page.once("dialog", (d) => asked.push(d.message()) && d.accept());
  await page.click("button:text-is('Pause all')");
  await page.waitForSelector(".bulk [role=status]:has-text('3 changed')");
  // The question names the filters and how many it changes (explore30b F5).
  assert.equal(asked[0], `Pause every reminder where event_type = ${eventType}: the 3 listed here?`);
  assert.equal(await page.locator("#reminders .status-paused").count(), 3);
  page.once("dialog", (d) => d.accept());
  await page.click("button:text-is('Resume all')");
  await page.waitForSelector(".bulk [role=status]:has-text('3 changed')");
  await page.waitForFunction(() => document.querySelectorAll("#reminders .status-active").length === 3);
  // Paused by another client, a row leaves a list filtered to ACTIVE, as it would after "Pause all".
  await open(`/reminders?status=ACTIVE&event_type=${eventType}`);
  await page.waitForSelector("#reminders tbody tr");
  await streamLive();
  const left = await page.$eval("#reminders tbody tr", (r) => r.dataset.id);
  assert.equal((await stack.api("POST", `/v1/reminders/${left}/pause`)).status, 200);
  await page.waitForSelector(`#reminders-note:text-is("Reminder #${left} is now PAUSED and no longer matches these filters: it left the list.")`);
  assert.equal(await page.locator("#reminders tbody tr").count(), 2);
  // Resumed by another client, it comes back where a reload would show it.
  assert.equal((await stack.api("POST", `/v1/reminders/${left}/resume`)).status, 200);
  await page.waitForFunction(() => document.querySelectorAll("#reminders tbody tr").length === 3);
  assert.equal(await page.$eval("#reminders tbody tr", (r) => r.dataset.id), left);
});

flow("a contact is set, listed and removed; a bad address shows its error", {}, async () => {
  await open("/contacts");
  await page.fill("#f-entity_type", "interviewer");
  await page.fill("#f-entity_id", "INT_C1");
  await page.click("#contacts-find button[type=submit]");
  // The search is in the URL, to bookmark or reload.
  await page.waitForSelector(`main[data-route="/contacts?entity_type=interviewer&entity_id=INT_C1"]`);
  await page.waitForSelector("#contact-list:has-text('No contacts')");
  await page.selectOption("#f-channel", "email");
  await page.fill("#f-address", "not an address");
  await page.click("#contact-form button[type=submit]");
  await page.waitForSelector("#f-address[aria-invalid=true]");
  assert.match(await page.textContent("#f-address-error"), /address/);
  await page.fill("#f-address", "ann@example.com");
  await page.click("#contact-form button[type=submit]");
  await page.waitForSelector("#contact-list:has-text('email: ann@example.com')");
  await noSeriousViolations("contacts");
  await page.click("#contact-list button:text-is('Remove')");
  await page.waitForSelector("#contact-list:has-text('No contacts')");
});

flow("'Skip to content' moves the focus to the content and keeps the view", {}, async () => {
  await open("/reminders?status=ACTIVE");
  await page.focus(".skip");
  await page.keyboard.press("Enter");
  await waitUntil(() => page.evaluate(() => document.activeElement.id === "main"), 5000, "the focus on <main>");
  assert.equal(new URL(page.url()).hash, "#/reminders?status=ACTIVE");
  assert.equal(await page.textContent("main h1"), "Reminders");
  // The focus ring stands out (3:1 at least, WCAG 1.4.11) from the page, and from the header.
  await page.keyboard.press("Tab");
  const ringOn = () => page.evaluate(() => getComputedStyle(document.activeElement).outlineColor);
  assert.equal(await page.evaluate(() => getComputedStyle(document.activeElement).outline.replace(/^rgb\(.*?\) /, "")), "solid 3px");
  assert.ok(contrast(await ringOn(), "rgb(255, 255, 255)") >= 3, `the ring ${await ringOn()} on white`);
  await page.focus("nav a[href='#/flags']");
  const header = await page.evaluate(() => getComputedStyle(document.querySelector(".top")).backgroundColor);
  assert.ok(contrast(await ringOn(), header) >= 3, `the ring ${await ringOn()} on the header's ${header}`);
});

// The contrast ratio of two "rgb(r, g, b)" colours (WCAG 2).
function contrast(a, b) {
  const luminance = (c) => {
    const [r, g, bl] = c.match(/\d+/g).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// The texts of the list under `selector` once it has `n` entries, as epoch milliseconds.
async function firesListed(selector, n) {
  await page.waitForFunction(([sel, count]) => document.querySelectorAll(sel + " li").length === count, [selector, n]);
  return page.$$eval(selector + " time", (els) => els.map((e) => Date.parse(e.dateTime)));
}

flow("'Next fires' starts at the next fire and stops at max_fires and ends_at", {}, async () => {
  const hour = 3600000;
  const start = Date.now() + hour;
  const make = async (fields) => {
    const answer = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("NF"), event_type: "nf", channel: "log", ...fields });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body;
  };
  // Ends at its third fire (a fire at exactly ends_at happens).
  const ending = await make({ schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(start).toISOString(), ends_at: new Date(start + 2 * hour).toISOString() });
  await open(`/reminders/${ending.id}`);
  assert.deepEqual(await firesListed("#next-fires", 3), [0, 1, 2].map((i) => Date.parse(ending.next_run_at) + i * hour));
  // Three fires at most, one of them already fired: two left, the first its next_run_at.
  const capped = await make({ schedule_type: "recurring", interval_seconds: 3600, max_fires: 3 });
  const fired = await waitUntil(async () => {
    const r = (await stack.api("GET", `/v1/reminders/${capped.id}`)).body;
    return r.fire_count === 1 && r;
  }, 20000, "its first fire");
  await open(`/reminders/${capped.id}`);
  assert.deepEqual(await firesListed("#next-fires", 2), [0, 1].map((i) => Date.parse(fired.next_run_at) + i * hour));
  assert.match(await page.textContent("#facts"), /At most this many fires3/);
  // Once: its one fire.
  const once = await make({ schedule_type: "one_time", run_at: new Date(start).toISOString() });
  await open(`/reminders/${once.id}`);
  assert.deepEqual(await firesListed("#next-fires", 1), [Date.parse(once.next_run_at)]);

  // The reschedule form sends typed numbers as numbers, and its own words when nothing is typed.
  await page.click("details:has(#reschedule-form) > summary");
  await page.click("#reschedule-form button[type=submit]");
  const empty = await page.waitForSelector("#reschedule-form .form-error:not(:empty)");
  // An interval is for recurring reminders only: a one-time one has no such field, nor hint.
  assert.equal(await empty.textContent(), "Nothing to change: fill in Next fire, At most this many fires or Ends at.");
  assert.equal(await page.isVisible("#reschedule-form #f-interval_seconds"), false);
  await page.fill("#reschedule-form #f-max_fires", "-3");
  await page.click("#reschedule-form button[type=submit]");
  await page.waitForSelector("#reschedule-form #f-max_fires[aria-invalid=true]");
  const refused = await page.textContent("#reschedule-form #f-max_fires-error");
  assert.match(refused, /^must be /);
  assert.doesNotMatch(refused, /string/);
  // A next fire in the past is sent only once confirmed, and the question names the time.
  await page.fill("#reschedule-form #f-max_fires", "");
  await page.fill("#reschedule-form #f-run_at", "2020-01-01T09:00");
  const asked = [];
  page.once("dialog", (d) => asked.push(d.message()) && d.dismiss());
  await page.click("#reschedule-form button[type=submit]");
  assert.match(asked[0] || "", /^The next fire, .*2020.*, is in the past: the reminder fires at once and is then completed\. Reschedule anyway\?$/);
  assert.equal((await stack.api("GET", `/v1/reminders/${once.id}`)).body.next_run_at, once.next_run_at);

  // A limit the reminder has can be removed (only that one is offered); its field then takes nothing.
  await open(`/reminders/${ending.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  assert.equal(await page.isVisible("#f-remove-max_fires"), false);
  await page.check("#f-remove-ends_at");
  assert.equal(await page.isDisabled("#reschedule-form #f-ends_at"), true);
  await page.click("#reschedule-form button[type=submit]");
  await waitUntil(async () => !("ends_at" in (await stack.api("GET", `/v1/reminders/${ending.id}`)).body), 10000, "ends_at removed");
  await page.waitForSelector("#f-remove-ends_at", { state: "hidden" });
  assert.equal(await page.isDisabled("#reschedule-form #f-ends_at"), false);
  assert.equal(await page.isVisible("#reschedule-form #f-cron"), false);

  // A cron reminder's expression and zone are changed in place (shown as they are until then),
  // and the page says the new schedule; a bad expression is named on its field.
  const nightly = await make({ schedule_type: "cron", cron: "0 9 * * 1-5", timezone: "Europe/Berlin" });
  await open(`/reminders/${nightly.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  assert.equal(await page.getAttribute("#reschedule-form #f-cron", "placeholder"), "0 9 * * 1-5");
  assert.equal(await page.getAttribute("#reschedule-form #f-timezone", "placeholder"), "Europe/Berlin");
  await page.fill("#reschedule-form #f-cron", "30 7 * * *");
  await page.fill("#reschedule-form #f-timezone", "America/New_York");
  await page.click("#reschedule-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#facts").textContent.includes("every day at 07:30 (America/New_York)"));
  assert.equal((await stack.api("GET", `/v1/reminders/${nightly.id}`)).body.timezone, "America/New_York");
  await page.fill("#reschedule-form #f-cron", "61 * * * *");
  await page.click("#reschedule-form button[type=submit]");
  await page.waitForSelector("#reschedule-form #f-cron[aria-invalid=true]");
  assert.match(await page.textContent("#reschedule-form #f-cron-error"), /minute/);
});

// Paused while its fires went by: 'Next fires' lists what a claim does once it is resumed, under
// its misfire policy.
flow("'Next fires' of a reminder whose next fire is past follows its misfire policy", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("MP"), event_type: "mp", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString(), misfire_policy: "fire_all" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.equal((await stack.api("POST", `/v1/reminders/${made.body.id}/pause`)).status, 200);
  stack.sql(`UPDATE nudge.reminders SET next_run_at = now() - interval '3 hours 30 minutes' WHERE id = ${made.body.id}`);
  const atOnce = async () => (await page.$$eval("#next-fires li", (els) => els.map((e) => e.textContent.endsWith("(at once)"))));
  await open(`/reminders/${made.body.id}`);
  await page.waitForFunction(() => document.querySelectorAll("#next-fires li").length === 5);
  assert.deepEqual(await atOnce(), [true, true, true, true, false]);
  stack.sql(`UPDATE nudge.reminders SET misfire_policy = 'skip' WHERE id = ${made.body.id}`);
  await open(`/reminders/${made.body.id}`);
  await page.waitForFunction(() => document.querySelectorAll("#next-fires li").length === 5);
  assert.deepEqual(await atOnce(), [false, false, false, false, false]);
});

// An occurrence being retried (or held by its host's open breaker): next_run_at is its next
// attempt, and the schedule's later occurrences keep their places after the occurrence.
flow("'Next fires' of a reminder retrying an occurrence keeps the schedule's places", {}, async () => {
  const hour = 3600000;
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("RT"), event_type: "rt", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + hour).toISOString() });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  stack.sql(`UPDATE nudge.reminders SET occurrence_at = date_trunc('second', now()) - interval '10 minutes',
             next_run_at = now() + interval '30 minutes', attempt = 1 WHERE id = ${made.body.id}`);
  const r = (await stack.api("GET", `/v1/reminders/${made.body.id}`)).body;
  await open(`/reminders/${made.body.id}`);
  await page.waitForFunction(() => document.querySelectorAll("#next-fires li").length === 5);
  const listed = await page.$$eval("#next-fires li", (els) => els.map((li) => [Date.parse(li.querySelector("time").dateTime), li.textContent]));
  assert.equal(listed[0][0], Date.parse(r.next_run_at));
  assert.match(listed[0][1], /next attempt at the fire due/);
  assert.deepEqual(listed.slice(1).map(([t]) => t), [1, 2, 3, 4].map((k) => Date.parse(r.retrying_occurrence) + k * hour));

  // A webhook's occurrence held by its host's open breaker says so, naming the host.
  const hook = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("HB"), event_type: "hb", channel: "webhook",
    target: "https://held.example/in", schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + hour).toISOString() });
  assert.equal(hook.status, 201, JSON.stringify(hook.body));
  stack.sql(`INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at, next_probe_at, open_seconds)
             VALUES ('https://held.example:443', 'open', 5, now(), now() + interval '30 minutes', 1800)`);
  stack.sql(`UPDATE nudge.reminders SET occurrence_at = now() - interval '1 minute', next_run_at = now() + interval '30 minutes'
             WHERE id = ${hook.body.id}`);
  await open(`/reminders/${hook.body.id}`);
  assert.match(await (await page.waitForSelector("#held")).textContent(), /^Held: the circuit breaker of https:\/\/held\.example:443 is open after 5 failures/);
});

// A reschedule's fields are emptied once it is made: a later one sends only what is typed then
// (the old next fire, sent again, once re-fired an occurrence).
flow("a reschedule made empties its form", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("RS"), event_type: "rs", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString() });
  await open(`/reminders/${made.body.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  await page.fill("#reschedule-form #f-run_at", "2099-01-01T09:00");
  await page.click("#reschedule-form button[type=submit]");
  await waitUntil(async () => (await stack.api("GET", `/v1/reminders/${made.body.id}`)).body.next_run_at.startsWith("2099-01-01"), 10000, "rescheduled");
  await page.waitForFunction(() => document.querySelector("#reschedule-form #f-run_at").value === "");
  await page.fill("#reschedule-form #f-max_fires", "7");
  await page.click("#reschedule-form button[type=submit]");
  await page.waitForSelector("#facts:has-text('At most this many fires7')");
  assert.equal(await page.inputValue("#reschedule-form #f-max_fires"), "");
});

// A fire's 429s use none of its attempts: its line says how many of its tries they were
// (explore30b F4: "16 attempts" of a reminder allowed 3).
flow("an execution says how many of its tries were answered 429", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("RL429"), event_type: "rl", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString() });
  const id = made.body.id;
  stack.sql(`INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, status_code, worker)
             VALUES (${id}, '2026-01-01T00:00:00Z', 1, 'failed', 429, 'w'), (${id}, '2026-01-01T00:00:00Z', 2, 'failed', 429, 'w'),
                    (${id}, '2026-01-01T00:00:00Z', 3, 'delivered', 200, 'w');
             INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker)
             VALUES (${id}, '2026-01-01T00:00:00Z', 'delivered', 3, 'w')`);
  await open(`/reminders/${id}`);
  await page.waitForSelector("#executions > li:has-text('3 attempts (2 answered 429, which use no attempt: up to 20 of them)')");
});

// A view the server refused with a Retry-After (a token over its rate) loads again by itself once
// that has passed (explore30b F9: it stayed "Could not load this view" until clicked).
flow("a view refused with Retry-After loads again by itself", {}, async () => {
  let asked = 0;
  await page.route("**/v1/overview", (route) => (++asked === 1
    ? route.fulfill({ status: 429, contentType: "application/json", headers: { "Retry-After": "1" },
      body: JSON.stringify({ error: { code: "rate_limited", message: "token browser sent too many requests" } }) })
    : route.continue()));
  try {
    await open("/overview");
    await page.waitForSelector("main h1:text-is('Could not load this view')");
    await page.waitForSelector("main .cards", { timeout: 5000 });
    assert.ok(asked >= 2);
  } finally {
    await page.unroute("**/v1/overview");
  }
});

// A live update while the form is being filled leaves it alone: a ticked "no limit on fires" was
// unticked by the next fire, and "Rescheduled." said with the limit still there (explore30b F10).
flow("a live update keeps what the reschedule form holds", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("RL"), event_type: "rl", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, max_fires: 1000, run_at: new Date(Date.now() + 3600000).toISOString() });
  await open(`/reminders/${made.body.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  await page.check("#f-remove-max_fires");
  assert.equal((await stack.api("PATCH", `/v1/reminders/${made.body.id}`, { payload: { live: 1 } })).status, 200);
  await page.waitForSelector("#facts:has-text('live')");
  assert.equal(await page.isChecked("#f-remove-max_fires"), true);
  assert.equal(await page.isDisabled("#reschedule-form #f-max_fires"), true);
  await page.click("#reschedule-form button[type=submit]");
  await waitUntil(async () => (await stack.api("GET", `/v1/reminders/${made.body.id}`)).body.max_fires === undefined, 10000, "the limit removed");
});

// More than a page of flags, and one set live meanwhile: it shows once, where its page puts it.
flow("a flag set live shows once when the page holding it is loaded", {}, async () => {
  const prefix = unique("pg").toLowerCase();
  stack.sql(`INSERT INTO nudge.status_flags (key, value) SELECT '${prefix}-' || lpad(g::text, 3, '0'), false FROM generate_series(1, 150) g`);
  await open("/flags");
  await page.waitForFunction(() => document.querySelectorAll("#flags tbody tr").length >= 100);
  const live = `${prefix}-zzz`;
  assert.ok([200, 201].includes((await stack.api("PUT", `/v1/flags/${live}`, { value: false })).status));
  await page.waitForSelector(`#flags tr[data-key="${live}"]`);
  for (let more; (more = await page.$(".paging button:text-is('More flags')"));) {
    await more.click();
    await more.waitForElementState("hidden");  // replaced once the page is in
  }
  const keys = await page.$$eval("#flags tbody tr", (rows) => rows.map((r) => r.dataset.key));
  assert.equal(keys.filter((k) => k === live).length, 1);
  assert.equal(new Set(keys).size, keys.length);
});

// The rule being edited is changed elsewhere: the editor says so and shows the change, and a save
// sends only what was changed here (explore30b F11: a save undid a colleague's disable).
flow("the rules editor keeps a change made elsewhere to the rule it edits", {}, async () => {
  const rule = await stack.api("POST", "/v1/rules", { name: unique("both"), event_type: "both", action: { type: "set_flag", flag: { key: "both", value: true } } });
  assert.equal(rule.status, 201, JSON.stringify(rule.body));
  await open(`/rules?id=${rule.body.id}`);
  await page.waitForSelector(`#editor-title:text-is('Edit rule #${rule.body.id}')`);
  await page.fill("#f-name", "renamed here");
  assert.equal((await stack.api("PATCH", `/v1/rules/${rule.body.id}`, { enabled: false, when: { "data.priority": "high" } })).status, 200);
  await page.waitForSelector(`p[role=status]:has-text('Rule #${rule.body.id} was changed elsewhere')`);
  assert.equal(await page.isChecked("#f-enabled"), false);
  assert.match(await page.inputValue("#f-when"), /data\.priority/);
  assert.equal(await page.inputValue("#f-name"), "renamed here");
  await page.click("#rule-form button[type=submit]");
  await page.waitForSelector(`p[role=status]:has-text('Rule #${rule.body.id} saved')`);
  const saved = (await stack.api("GET", `/v1/rules/${rule.body.id}`)).body;
  assert.deepEqual([saved.name, saved.enabled, saved.when], ["renamed here", false, { "data.priority": "high" }]);
});

// The rule being edited is deleted elsewhere: the editor says so, and saving makes a new one.
flow("the rules editor says when the rule it edits was deleted elsewhere", {}, async () => {
  const rule = await stack.api("POST", "/v1/rules", { name: unique("gone"), event_type: "gone", action: { type: "set_flag", flag: { key: "gone", value: true } } });
  assert.equal(rule.status, 201, JSON.stringify(rule.body));
  await open(`/rules?id=${rule.body.id}`);
  await page.waitForSelector(`#editor-title:text-is('Edit rule #${rule.body.id}')`);
  assert.equal((await stack.api("DELETE", `/v1/rules/${rule.body.id}`)).status, 204);
  await page.waitForSelector(`#editor-title:has-text('rule #${rule.body.id} was deleted')`);
  await page.click("#rule-form button[type=submit]");
  await page.waitForSelector("#rules-view-note, p[role=status]:has-text('saved')");
  const note = await page.textContent("p[role=status]:has-text('saved')");
  assert.doesNotMatch(note, new RegExp(`#${rule.body.id} saved`));
});

flow("a reminder's older executions are shown on asking", {}, async () => {
  // 25 fires at once: every second of the last 25, all missed, all fired (fire_all).
  const made = await stack.api("POST", "/v1/reminders", {
    entity_type: "user", entity_id: unique("OLD"), event_type: "old", channel: "log", schedule_type: "recurring",
    interval_seconds: 1, run_at: new Date(Date.now() - 24500).toISOString(), misfire_policy: "fire_all", max_fires: 25,
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await waitUntil(async () => (await stack.api("GET", `/v1/reminders/${made.body.id}`)).body.status === "COMPLETED", 20000, "25 fires");
  await open(`/reminders/${made.body.id}`);
  await page.waitForSelector("#executions > li");
  assert.equal(await page.locator("#executions > li").count(), 20);
  await page.click("button:text-is('Show older executions')");
  await page.waitForFunction(() => document.querySelectorAll("#executions > li").length === 25);
  const scheduled = await page.$$eval("#executions > li time:first-of-type", (els) => els.map((e) => e.dateTime));
  assert.equal(new Set(scheduled).size, 25);
  assert.equal(await page.locator("button:text-is('Show older executions')").count(), 0);
});

flow("the create form's preview waits for a schedule, then stops at max_fires", {}, async () => {
  const previews = [];
  const count = (r) => r.url().endsWith("/v1/schedules/preview") && previews.push(r.url());
  page.on("request", count);
  try {
    await open("/new");
    // Nothing typed: a hint, no error and no request.
    await page.waitForSelector("#preview .hint:has-text('first fire')");
    assert.equal(await page.locator("#preview .error").count(), 0);
    // An empty submit marks every required field at once, without asking the API.
    await page.click("#create-form button[type=submit]");
    assert.deepEqual(await page.$$eval("#create-form [aria-invalid=true]", (els) => els.map((e) => e.name)),
      ["entity_type", "entity_id", "event_type", "run_at"]);
    assert.equal(await page.textContent("#f-entity_type-error"), "is required");
    assert.equal(await page.evaluate(() => document.activeElement.id), "f-entity_type");
    assert.deepEqual(previews, []);
  } finally {
    page.off("request", count);
  }
  // Once: its time in this browser's zone alone, without the API's sentence naming it in UTC.
  await page.fill("#f-run_at", "2099-01-01T09:00");
  await firesListed("#preview", 1);
  assert.equal(await page.locator("#preview p").count(), 0);
  await page.fill("#f-run_at", "");
  await page.selectOption("#f-schedule_type", "recurring");
  await page.fill("#f-interval_seconds", "60");
  // With no first fire it fires when created, as the preview's first time says.
  const [now] = await firesListed("#preview", 5);
  assert.ok(Math.abs(now - Date.now()) < 10000, `the first fire is now, not ${new Date(now).toISOString()}`);
  assert.match(await page.textContent("#preview li"), /\(now, once created\)$/);
  await page.fill("#f-max_fires", "2");
  // At most two: now and a minute later (a third, a minute later again, never happens).
  const capped = await firesListed("#preview", 2);
  assert.ok(Math.abs(capped[0] - Date.now()) < 10000);
  assert.equal(capped[1] - capped[0], 60000);
  // The sentence says the limit the list keeps to.
  assert.match(await page.textContent("#preview p"), /at most 2 times/);
  // A first fire already past fires when the reminder is created: listed now, not "never".
  await page.fill("#f-max_fires", "");
  await page.selectOption("#f-schedule_type", "one_time");
  // A limit on fires or an end means nothing to a schedule that fires once: not offered.
  assert.equal(await page.isVisible("#f-max_fires"), false);
  assert.equal(await page.isVisible("#f-ends_at"), false);
  await page.fill("#f-run_at", "2020-01-01T09:00");
  const [past] = await firesListed("#preview", 1);
  assert.ok(Math.abs(past - Date.now()) < 10000, `the missed fire is now, not ${new Date(past).toISOString()}`);
  assert.match(await page.textContent("#preview li"), /\(now, once created\)$/);
  // An hourly schedule that started three and a half hours ago: fire_all fires each of the 4
  // occurrences due when created, skip none of them (missed by more than a minute), as a
  // worker will.
  await page.selectOption("#f-schedule_type", "recurring");
  await page.fill("#f-interval_seconds", "3600");
  await page.fill("#f-run_at", await page.evaluate(() => {
    const d = new Date(Date.now() - 12600e3);
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 16);
  }));
  // (A function, not a string: the page's Content-Security-Policy refuses eval.)
  const listedNow = (n) => {
    const fires = [...document.querySelectorAll("#preview li")];
    return fires.length === 5 && fires.filter((li) => li.textContent.endsWith("(now, once created)")).length === n;
  };
  await page.selectOption("#f-misfire_policy", "fire_all");
  await page.waitForFunction(listedNow, 4);
  await page.selectOption("#f-misfire_policy", "skip");
  await page.waitForFunction(listedNow, 0);
});

// A daily schedule from 13 to 16 March 2027, 09:00 in the page's zone (across New York's DST start).
async function fillDailyFrom13To16March(page) {
  await page.selectOption("#f-schedule_type", "recurring");
  await page.fill("#f-run_at", "2027-03-13T09:00");
  await page.fill("#f-interval_seconds", "86400");
  await page.fill("#f-ends_at", "2027-03-16T09:00");
}

flow("an interval schedule's sentence gives its start and end in the browser's zone", {}, async () => {
  const context = await stack.browser.newContext({ timezoneId: "America/New_York" });
  try {
    const ny = await context.newPage();
    await ny.goto(`${stack.base}/#/new`);
    await ny.waitForSelector('main[data-route="/new"]');
    await fillDailyFrom13To16March(ny);
    // The form's 09:00, not 14:00 UTC; the list beside it says 9:00 and 10:00 (EDT from 14 March).
    await ny.waitForSelector("#preview p:has-text('until 2027-03-16')");
    assert.equal(await ny.textContent("#preview p"),
      "every 24 hours, starting 2027-03-13 at 09:00, until 2027-03-16 at 09:00 (America/New_York)");
    // 02:30 the day clocks go forward at 02:00 is the gap's end, 03:00, as the API and the words
    // box place it (the browser's own Date says 03:30).
    await ny.fill("#f-ends_at", "");
    await ny.selectOption("#f-schedule_type", "one_time");
    await ny.fill("#f-run_at", "2027-03-14T02:30");
    // (The one-time list replaces the interval's, which also has a 14 March, then 13 March's.)
    await ny.waitForFunction(() => {
      const fires = document.querySelectorAll("#preview li");
      return fires.length === 1 && fires[0].textContent.startsWith("3/14/2027");
    });
    assert.match(await ny.textContent("#preview li"), /^3\/14\/2027, 3:00:00\sAM/);
    // A saved one-time reminder's sentence says its time in this zone too, as its "Next fire".
    const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("NY"), event_type: "ny", channel: "log", schedule_type: "one_time", run_at: "2027-03-14T07:00:00.250Z" });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    await ny.goto(`${stack.base}/#/reminders/${made.body.id}`);
    await ny.waitForSelector("dt:text-is('Schedule') + dd");
    assert.equal(await ny.textContent("dt:text-is('Schedule') + dd"), "once on 2027-03-14 at 03:00:00 (America/New_York)");
  } finally {
    await context.close();
  }
});

flow("the browser's zone is named as the tz database names it, not by Chromium's retired alias", {}, async () => {
  const context = await stack.browser.newContext({ timezoneId: "Asia/Kolkata" });
  try {
    const kolkata = await context.newPage();
    await kolkata.goto(`${stack.base}/#/new`);
    await kolkata.waitForSelector('main[data-route="/new"]');
    // Chromium itself says "Asia/Calcutta", a name servers without tzdata-legacy refuse.
    assert.equal(await kolkata.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone), "Asia/Calcutta");
    assert.match(await kolkata.textContent("#f-run_at-hint"), /^in your time zone \(Asia\/Kolkata\);/);
    await fillDailyFrom13To16March(kolkata);
    await kolkata.waitForSelector("#preview p:has-text('until 2027-03-16')");
    assert.equal(await kolkata.textContent("#preview p"),
      "every 24 hours, starting 2027-03-13 at 09:00, until 2027-03-16 at 09:00 (Asia/Kolkata)");
  } finally {
    await context.close();
  }
});

// 02:30 on the night Berlin falls back is shown as 02:30 either way; the words said the second
// pass (+01:00), and the form once sent the first, an hour early.
flow("a time in the repeated hour that the words box filled is created as the words said", {}, async () => {
  const context = await stack.browser.newContext({ timezoneId: "Europe/Berlin" });
  try {
    const berlin = await context.newPage();
    await berlin.goto(`${stack.base}/#/new`);
    await berlin.waitForSelector('main[data-route="/new"]');
    await berlin.fill("#words-form #f-text", "on 2027-10-31T02:30:00+01:00");
    await berlin.click("#words-form button[type=submit]");
    await berlin.waitForFunction(() => document.querySelector("#f-run_at").value !== "");
    assert.equal(await berlin.inputValue("#f-run_at"), "2027-10-31T02:30");  // either pass
    await berlin.waitForSelector("#preview time");
    assert.equal(Date.parse(await berlin.getAttribute("#preview time", "datetime")), Date.parse("2027-10-31T01:30:00Z"));
    const entityId = unique("FALLBACK");
    await berlin.fill("#f-entity_type", "interviewer");
    await berlin.fill("#f-entity_id", entityId);
    await berlin.fill("#f-event_type", "fall_back");
    await berlin.click("#create-form button[type=submit]");
    await berlin.waitForURL(/#\/reminders\/\d+$/);
    const made = await stack.api("GET", `/v1/reminders?entity_id=${entityId}`);
    assert.equal(made.body.items[0].next_run_at, "2027-10-31T01:30:00+00:00");
    // Its sentence names the second pass with its offset: "at 02:30" alone names the first.
    await berlin.waitForSelector("main:has-text('once on 2027-10-31T02:30:00+01:00 (Europe/Berlin)')");
    // And the first pass, as a wall time.
    const first = await stack.api("POST", "/v1/reminders", { entity_type: "interviewer", entity_id: unique("FIRST"),
      event_type: "fall_back", channel: "log", schedule_type: "one_time", run_at: "2027-10-31T00:30:00Z" });
    await berlin.goto(`${stack.base}/#/reminders/${first.body.id}`);
    await berlin.waitForSelector("main:has-text('once on 2027-10-31 at 02:30 (Europe/Berlin)')");
  } finally {
    await context.close();
  }
});

flow("each description in words replaces what an earlier one filled in", {}, async (t) => {
  await open("/new");
  if (!(await page.isVisible("#words-form"))) return t.skip("this server does not parse words");
  const describe = async (text, done) => {
    await page.fill("#words-form #f-text", text);
    await page.click("#words-form button[type=submit]");
    await page.waitForFunction(done);
  };
  await describe("every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times",
    () => document.querySelector("#f-stop_condition_value").value === "feedback_submitted");
  assert.equal(await page.inputValue("#f-max_fires"), "5");
  // The preview's sentence says the stop flag the words set (explore27a DOC 8: it said all but it).
  await page.waitForSelector("#preview p:has-text('until feedback_submitted is true')");
  await describe("tomorrow at 9", () => document.querySelector("#f-schedule_type").value === "one_time");
  for (const name of ["stop_condition_type", "stop_condition_value", "max_fires", "cron", "timezone", "ends_at"]) {
    assert.equal(await page.inputValue(`#f-${name}`), "", `${name} is left from the first description`);
  }
});

flow("a reschedule into the past says what the misfire policy will do", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("PAST"), event_type: "past", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString(), misfire_policy: "skip" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await open(`/reminders/${made.body.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  await page.fill("#reschedule-form #f-run_at", "2020-01-01T09:00");
  const asked = [];
  page.once("dialog", (d) => asked.push(d.message()) && d.dismiss());
  await page.click("#reschedule-form button[type=submit]");
  assert.match(asked[0] || "", /is in the past: under misfire policy skip, .* are skipped, not fired, and each later one fires at once/);
  // Paused, it does nothing until it is resumed.
  assert.equal((await stack.api("POST", `/v1/reminders/${made.body.id}/pause`)).status, 200);
  await open(`/reminders/${made.body.id}`);
  await page.click("details:has(#reschedule-form) > summary");
  await page.fill("#reschedule-form #f-run_at", "2020-01-01T09:00");
  page.once("dialog", (d) => asked.push(d.message()) && d.dismiss());
  await page.click("#reschedule-form button[type=submit]");
  assert.match(asked[1] || "", /is in the past: once it is resumed, under misfire policy skip/);
});

flow("a reminder that failed while its receiver was down is retried from its page", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("DOWN"), event_type: "down",
    channel: "webhook", target: hookUrl.replace("/hook", "/down"), schedule_type: "one_time",
    run_at: new Date().toISOString(), max_attempts: 1 });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const id = made.body.id;
  await waitUntil(async () => (await stack.api("GET", `/v1/reminders/${id}`)).body.status === "FAILED", 20000, "FAILED");
  await open(`/reminders/${id}`);
  await streamLive();
  await page.click("button:text-is('Retry')");
  await page.waitForSelector("#main:has-text('Retried: due now, as a new occurrence.')");
  // The worker delivers it: the page shows it live, with both occurrences in its history.
  await page.waitForSelector("button:text-is('Retry')", { state: "detached" });
  await waitUntil(async () => (await page.$$("#executions > li")).length === 2, 20000, "two executions shown");
  const history = await page.textContent("#executions");
  assert.match(history, /delivered/);
  assert.match(history, /failed/);
  assert.equal((await stack.api("GET", `/v1/reminders/${id}`)).body.status, "COMPLETED");
  assert.equal(downRequests, 2);
});

flow("Pause and Resume pressed from the keyboard keep the focus on the buttons", {}, async () => {
  const made = await stack.api("POST", "/v1/reminders", { entity_type: "user", entity_id: unique("KB"), event_type: "kb", channel: "log",
    schedule_type: "recurring", interval_seconds: 3600, run_at: new Date(Date.now() + 3600000).toISOString() });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await open(`/reminders/${made.body.id}`);
  await page.focus("button:text-is('Pause')");
  await page.keyboard.press("Enter");
  await page.waitForSelector("button:text-is('Resume')");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Resume");
  await page.keyboard.press("Enter");
  await page.waitForSelector("button:text-is('Pause')");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Pause");
});

flow("a description in words fills the form to the second", {}, async (t) => {
  await open("/new");
  if (!(await page.isVisible("#words-form"))) return t.skip("this server does not parse words");
  const expected = Date.now() + 30000;
  await page.fill("#words-form #f-text", "in 30 seconds");
  await page.click("#words-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#f-run_at").value !== "");
  // Cut to its minute, "in 30 seconds" was up to a minute early, often already past.
  const filled = Date.parse(await page.inputValue("#f-run_at"));
  assert.ok(Math.abs(filled - expected) < 3000, `run_at ${new Date(filled).toISOString()}, not about ${new Date(expected).toISOString()}`);
  assert.doesNotMatch(await page.textContent("#preview"), /never fires/);
});

flow("a contact already removed elsewhere shows why Remove failed and leaves the list", {}, async () => {
  const id = unique("STALE");
  const put = await stack.api("PUT", `/v1/contacts/interviewer/${id}/email`, { address: "stale@example.com" });
  assert.ok([200, 201].includes(put.status), JSON.stringify(put));
  await open(`/contacts?entity_type=interviewer&entity_id=${id}`);
  await page.waitForSelector("#contact-list:has-text('stale@example.com')");
  assert.equal((await stack.api("DELETE", `/v1/contacts/interviewer/${id}/email`)).status, 204);
  await page.click("#contact-list button:text-is('Remove')");
  await page.waitForSelector("#contacts-error:has-text('Could not remove the email address')");
  await page.waitForSelector("#contact-list:has-text('No contacts')");
});

flow("Remove and Save act on the entity listed, not on what is typed in the search", {}, async () => {
  const [listed, typed] = [unique("LISTED"), unique("TYPED")];
  for (const id of [listed, typed]) {
    const put = await stack.api("PUT", `/v1/contacts/interviewer/${id}/email`, { address: `${id}@example.com` });
    assert.ok([200, 201].includes(put.status), JSON.stringify(put));
  }
  const addresses = async (id) => (await stack.api("GET", `/v1/contacts/interviewer/${id}`)).body.items.map((c) => c.address);
  await open(`/contacts?entity_type=interviewer&entity_id=${listed}`);
  await page.waitForSelector(`#contact-list:has-text('${listed}@example.com')`);
  await page.fill("#contacts-find #f-entity_id", typed);  // typed, not searched for
  await page.fill("#f-address", "new@example.com");
  await page.click("#contact-form button[type=submit]");
  await page.waitForSelector("#contact-list:has-text('new@example.com')");
  await page.click("#contact-list button:text-is('Remove')");
  await page.waitForSelector("#contact-list:has-text('No contacts')");
  assert.deepEqual(await addresses(listed), []);
  assert.deepEqual(await addresses(typed), [`${typed}@example.com`]);
  assert.equal(await page.textContent("#contact-form h2"), `Set an address for interviewer/${listed}`);
});

// For the pictures only: a list with some variety in it.
async function seedForPictures() {
  const kinds = [
    { channel: "email", schedule_type: "cron", cron: "0 9 * * 1-5", timezone: "Europe/Berlin", target: "ann@example.com" },
    { channel: "webhook", schedule_type: "recurring", interval_seconds: 3600, target: hookUrl },
    { channel: "log", schedule_type: "one_time", run_at: new Date(Date.now() + 86400000).toISOString() },
  ];
  const items = [];
  for (let i = 0; i < 12; i++) {
    items.push({ entity_type: i % 2 ? "interviewer" : "candidate", entity_id: `C-${100 + i}`, event_type: ["feedback_form", "offer_letter", "onboarding"][i % 3], ...kinds[i % 3] });
  }
  const batch = await stack.api("POST", "/v1/reminders/batch", { items });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  const ids = batch.body.items.map((x) => x.reminder.id);
  await stack.api("POST", "/v1/reminders/pause", { ids: ids.slice(0, 2) });
  await stack.api("POST", "/v1/reminders/cancel", { ids: ids.slice(2, 3) });
}

flow("every other view passes the accessibility check and fits a phone", {}, async () => {
  if (shots) await seedForPictures();
  // Each view's content, not "networkidle": the open stream keeps the network busy.
  const loaded = { "/overview": ".cards", "/reminders": "#reminders tbody tr", "/new": "#create-form" };
  for (const [hash, selector] of Object.entries(loaded)) {
    await open(hash);
    await page.waitForSelector(selector);
    await noSeriousViolations(hash);
  }
  // Dark when the system asks (explore19b #13), with the same contrast.
  await page.emulateMedia({ colorScheme: "dark" });
  try {
    for (const [hash, selector] of Object.entries(loaded)) {
      await open(hash);
      await page.waitForSelector(selector);
      assert.equal(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor), "rgb(18, 23, 28)");
      await noSeriousViolations(`${hash} in dark mode`);
    }
  } finally {
    await page.emulateMedia({ colorScheme: "light" });
  }
  await open("/overview");
  await page.waitForSelector(".cards");
  await screenshot("overview");
  await open("/reminders");
  await page.waitForSelector("#reminders tbody tr");
  await screenshot("reminders");
  await page.setViewportSize({ width: 390, height: 844 });
  await open("/reminders");
  await page.waitForSelector("#reminders tbody tr");
  // Nothing wider than the screen but the table, which scrolls in its own region.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await screenshot("phone");
  await noSeriousViolations("the reminders list on a phone");
  // Long unbroken values wrap: neither the page nor the list's table is wider than the screen.
  const long = await stack.api("POST", "/v1/reminders", {
    entity_type: "user", entity_id: "Y".repeat(200), event_type: "E".repeat(150), channel: "webhook",
    target: `${hookUrl}?${"q".repeat(280)}`, schedule_type: "one_time", run_at: new Date(Date.now() + 86400000).toISOString(),
  });
  assert.equal(long.status, 201, JSON.stringify(long.body));
  const fits = () => page.evaluate(() => [document.documentElement, ...document.querySelectorAll(".table-wrap, .execution")]
    .map((el) => el.scrollWidth - el.clientWidth).filter((over) => over > 0));
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    await open(`/reminders/${long.body.id}`);
    await page.waitForSelector("#next-fires li");
    assert.deepEqual(await fits(), [], `the detail at ${width}px`);
    await open(`/reminders?entity_id=${"Y".repeat(200)}`);
    await page.waitForSelector(`#reminders tr[data-id="${long.body.id}"]`);
    assert.deepEqual(await fits(), [], `the list at ${width}px`);
  }
  // A fire's delivery attempts stack into cards on a phone, as the list does.
  await page.setViewportSize({ width: 390, height: 844 });
  await open(`/reminders/${fired.id}`);
  await page.waitForSelector("#executions .attempts tbody tr");
  assert.deepEqual(await fits(), [], "the delivery attempts on a phone");
  // So do the rules, whose buttons stay on screen; every column is named.
  await open("/rules");
  await page.waitForSelector("#rules tbody tr[data-id]");
  assert.deepEqual(await fits(), [], "the rules on a phone");
  const button = await page.locator("#rules tbody tr[data-id] button:text-is('Delete')").first().boundingBox();
  assert.ok(button.x + button.width <= 390, "Delete is off-screen");
  assert.deepEqual(await page.$$eval("#rules thead th", (ths) => ths.filter((th) => !th.textContent.trim()).length), 0);
  await page.setViewportSize({ width: 1280, height: 900 });
});

// A slow network (explore19b): a form pressed twice saves once, a request that gets no answer says
// so in the form (it was an uncaught error), and a view that could not load is offered again.
flow("on a slow or lost network a form saves once, says when nothing answered, and a view loads again", {}, async () => {
  const eventType = unique("slow_rule");
  const rulesOfType = async () => (await stack.api("GET", `/v1/rules?event_type=${eventType}`)).body.items.length;
  await open("/rules");
  await page.fill("#f-name", "slow");
  await page.fill("#f-event_type", eventType);
  const late = async (route) => {
    await new Promise((r) => setTimeout(r, 600));
    await route.continue();
  };
  await page.route("**/v1/rules", late);
  await page.press("#f-name", "Enter");
  await page.press("#f-name", "Enter");
  await page.waitForSelector("main p[role=status]:has-text('saved.')");
  await page.unroute("**/v1/rules", late);
  assert.equal(await rulesOfType(), 1, "saved once");
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-name");

  const lost = (route) => route.abort("internetdisconnected");
  await page.route(/\/v1\/rules/, lost);
  await page.fill("#f-name", "slow, renamed");
  await page.press("#f-name", "Enter");
  await page.waitForSelector("#rule-form .form-error:has-text('No answer from the server')");
  await open("/rules");
  await page.waitForSelector("main h1:text-is('Could not load this view')");
  await page.unroute(/\/v1\/rules/, lost);
  await page.click("main button:text-is('Try again')");
  await page.waitForSelector(`#rules td:text-is("${eventType}")`);
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
});

// More than a page of rules: the older ones are reached with "More rules", by keyboard, and the
// focus follows each action rather than falling to the page (explore19b #8, #9).
flow("rules past the first hundred are listed, and the focus follows More and Delete", {}, async () => {
  const eventType = unique("many_rules");
  await open("/overview");
  const first = await stack.api("POST", "/v1/rules", { name: "oldest", event_type: eventType, action: { type: "set_flag", flag: { key: "k", value: true } } });
  // An event type takes at most 20 enabled rules: one each.
  stack.sql(`SELECT nudge.create_rule('r' || g, '${eventType}_' || g, '{"type": "set_flag", "flag": {"key": "k", "value": true}}')
               FROM generate_series(1, 100) g`);
  await open("/rules");
  await page.waitForSelector("#rules tbody tr");
  // The stream's first connection reloads the list from its first page: after it, not under it.
  await streamLive();
  assert.equal(await page.locator(`#rules tr[data-id="${first.body.id}"]`).count(), 0);
  await page.focus("main button:text-is('More rules')");
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#rules tr[data-id="${first.body.id}"]`);
  assert.match(await page.evaluate(() => document.activeElement.textContent), /^(More rules|That is all of them\.)$/);
  page.once("dialog", (d) => d.accept());
  await page.focus(`#rules tr[data-id="${first.body.id}"] button:text-is('Delete')`);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.activeElement.textContent.endsWith("deleted."));
});

flow("with tokens on, the page works only after a token is entered", {}, async (t) => {
  const doc = (await stack.api("GET", "/openapi.json")).body;
  if (!doc.components?.securitySchemes?.bearer) return t.skip("this server has no tokens");
  const secured = await new Stack().start({ api: { NUDGE_API_AUTH: "token" } });
  try {
    const token = secured.createToken("browser", "read,write");
    const context = await secured.browser.newContext();
    const p = await context.newPage();
    const errors = [];
    p.on("pageerror", (e) => errors.push(String(e)));
    // The page itself loads without a token, then asks for one: nothing is shown before it.
    await p.goto(`${secured.base}/#/overview`);
    await p.waitForSelector("#token-dialog[open]");
    assert.equal(await p.isVisible(".cards"), false);
    assert.equal(await p.evaluate(() => document.activeElement.id), "token-input");
    // Escape closes it for good: the view behind it, refused too, does not open it again at once;
    // a button in the header does.
    await p.keyboard.press("Escape");
    await p.waitForSelector("#token-change:text-is('Enter token')");
    await p.waitForTimeout(1500);
    assert.equal(await p.isVisible("#token-dialog[open]"), false);
    await p.click("#token-change");
    await p.waitForSelector("#token-dialog[open]");
    await p.fill("#token-input", "nudge_wrong");
    await p.press("#token-input", "Enter");
    await p.waitForSelector("#token-dialog[open] #token-error:has-text('refused')");
    await p.fill("#token-input", token);
    await p.press("#token-input", "Enter");
    await p.waitForSelector(".cards");
    assert.equal(await p.evaluate(() => sessionStorage.getItem("nudge.token")), token);
    // Every later call carries it: a create through the form works.
    await p.goto(`${secured.base}/#/flags`);
    await p.fill("#f-key", "signed_in");
    p.once("dialog", (d) => d.accept());  // true: it asks first
    await p.click("#flag-form button[type=submit]");
    await p.waitForSelector('#flags tr[data-key="signed_in"]');
    // "Forget token" logs the tab out: the token goes, and the page asks for one again.
    await p.click("#token-forget");
    await p.waitForSelector("#token-dialog[open]");
    assert.equal(await p.evaluate(() => sessionStorage.getItem("nudge.token")), null);
    // A new tab of the browser session has no token: it asks again.
    const other = await context.newPage();
    other.on("pageerror", (e) => errors.push(String(e)));
    await other.goto(`${secured.base}/#/overview`);
    await other.waitForSelector("#token-dialog[open]");
    // A read-only token (GET /v1/auth) is offered no change: the header says so, a flag's switch
    // shows its value and cannot flip it, and no form or row button that changes anything shows.
    const rule = await secured.api("POST", "/v1/rules", { name: "kept", event_type: "kept", action: { type: "set_flag", flag: { key: "kept", value: true } } }, token);
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    // Its first GET /v1/auth answered 429, the page asks again and then follows it: it offered
    // every change for the tab's life (explore30b F3).
    let authAsked = 0;
    await other.route("**/v1/auth", (route) => (++authAsked === 1
      ? route.fulfill({ status: 429, contentType: "application/json", headers: { "Retry-After": "1" },
        body: JSON.stringify({ error: { code: "rate_limited", message: "token reader sent too many requests" } }) })
      : route.continue()));
    await other.fill("#token-input", secured.createToken("reader", "read"));
    await other.press("#token-input", "Enter");
    await other.waitForSelector("#token-note:visible");
    assert.ok(authAsked >= 2, `GET /v1/auth asked ${authAsked} times`);
    await other.unroute("**/v1/auth");
    await other.goto(`${secured.base}/#/flags`);
    await other.waitForSelector('#flags tr[data-key="signed_in"] button.toggle[disabled]');
    assert.equal(await other.isVisible("#flag-form"), false);
    await other.goto(`${secured.base}/#/rules`);
    await other.waitForSelector(`#rules tr[data-id="${rule.body.id}"]`);
    assert.equal(await other.isVisible(`#rules tr[data-id="${rule.body.id}"] button:text-is('Delete')`), false);
    assert.equal(await other.isVisible("#rule-form"), false);
    await other.goto(`${secured.base}/#/new`);
    await other.waitForSelector("main .read-only-only:has-text('read-only')");
    assert.equal(await other.isVisible("#create-form"), false);
    // The read-only token is swapped for the write token from the header: every control is back.
    await other.goto(`${secured.base}/#/rules`);
    await other.click("#token-change");
    await other.waitForSelector("#token-dialog[open]");
    await other.fill("#token-input", token);
    await other.press("#token-input", "Enter");
    await other.waitForSelector(`#rules tr[data-id="${rule.body.id}"] button:text-is('Delete'):visible`);
    assert.equal(await other.isVisible("#token-note"), false);
    // A change the API still refuses for its scope (the token lost write meanwhile) says why in
    // the token dialog; the write token entered there makes it.
    secured.sql("UPDATE nudge.api_tokens SET scopes = '{read}' WHERE name = 'browser'");
    await waitUntil(async () => !(await secured.api("GET", "/v1/auth", undefined, token)).body.scopes.includes("write"), 10000, "the scope change");
    other.once("dialog", (d) => d.accept());
    await other.click(`#rules tr[data-id="${rule.body.id}"] button:text-is('Delete')`);
    await other.waitForSelector("#token-dialog[open] #token-error:has-text('needs a token with scope write')");
    const writer = secured.createToken("writer", "read,write");
    await other.fill("#token-input", writer);
    await other.press("#token-input", "Enter");
    await other.waitForSelector(`#rules tr[data-id="${rule.body.id}"]`, { state: "detached" });
    assert.equal(await other.evaluate(() => sessionStorage.getItem("nudge.token")), writer);
    // It loses write too, and the next refusal is answered with Escape: the tab keeps the token
    // and, knowing it is read-only now, offers no change.
    const spare = await secured.api("POST", "/v1/rules", { name: "spare", event_type: "kept", action: { type: "set_flag", flag: { key: "kept", value: true } } }, writer);
    await other.waitForSelector(`#rules tr[data-id="${spare.body.id}"] button:text-is('Delete')`);
    secured.sql("UPDATE nudge.api_tokens SET scopes = '{read}' WHERE name = 'writer'");
    await waitUntil(async () => !(await secured.api("GET", "/v1/auth", undefined, writer)).body.scopes.includes("write"), 10000, "the scope change");
    other.once("dialog", (d) => d.accept());
    await other.click(`#rules tr[data-id="${spare.body.id}"] button:text-is('Delete')`);
    await other.waitForSelector("#token-dialog[open] #token-error:has-text('needs a token with scope write')");
    await other.keyboard.press("Escape");
    await other.waitForSelector("#token-note:visible");
    await other.waitForSelector(`#rules tr[data-id="${spare.body.id}"] button:text-is('Delete')`, { state: "hidden" });
    // Revoked, the token's live stream ends and the tab asks for another.
    await waitUntil(async () => (await other.getAttribute("#connection", "data-state")) === "live", 10000, "live state");
    secured.sql("SELECT nudge.revoke_token('writer')");
    await other.waitForSelector("#token-dialog[open]", { timeout: 15000 });
    assert.match(await other.textContent("#connection"), /revoked/);
    assert.match(await other.textContent("#token-error"), /revoked/);
    // A stream the server refuses says why in the header, not "reconnecting…" for ever: here a
    // token without read (explore30b F9).
    const third = await context.newPage();
    third.on("pageerror", (e) => errors.push(String(e)));
    await third.goto(`${secured.base}/#/overview`);
    await third.waitForSelector("#token-dialog[open]");
    await third.fill("#token-input", secured.createToken("poster", "write"));
    await third.press("#token-input", "Enter");
    await third.waitForSelector("#connection:has-text('offline: ')");
    assert.match(await third.textContent("#connection"), /scope read/);
    assert.deepEqual(errors, []);
  } finally {
    await secured.stop(false);
  }
});
