// Overview: reminders by status (estimated on big tables), the due backlog, the workers
// connected, the last hour's fires, the webhook hosts whose circuit breaker is not closed
// (GET /v1/targets) with the deliveries each holds, the hosts and URLs paced because they answered
// 429 (GET /v1/targets?paced=true), and the hosts with the most deliveries under way and due
// (GET /v1/targets/busy: a slow host never opens its breaker).

import { api, hasRoute } from "./api.js";
import { h, fill, focusIfLost, time, labelledRow, tableHead } from "./dom.js";

const STATUSES = ["ACTIVE", "PAUSED", "COMPLETED", "CANCELLED", "FAILED"];

function duration(seconds) {
  if (!seconds) return "none";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function card(label, value, href) {
  const body = [h("span", { class: "value" }, value), h("span", { class: "label" }, label)];
  return h("li", { class: "card" }, href ? h("a", { href }, body) : body);
}

const BREAKER_COLUMNS = ["Host", "State", "Failures", "Held", "Next probe", "Last error", "Action"];

// An open breaker past its probe time with nothing held probes with the next delivery to its
// host: a time in the past read as a probe that never came.
function nextProbe(t) {
  if (t.state === "open" && t.held === 0 && new Date(t.next_probe_at) <= Date.now()) return "with the next delivery";
  return time(t.next_probe_at);
}

// Closes a breaker by hand (POST /v1/targets/close) once its receiver is known to be back: what
// it holds goes out at once rather than at its next probe, which doubles while it stays down.
function closeButton(t, done) {
  return h("button", {
    type: "button", class: "needs-write",
    onclick: async () => {
      if (!confirm(`Close the circuit breaker of ${t.host} now? The ${t.held} deliveries it holds go out at once.`)) return;
      try {
        await api("POST", "/v1/targets/close", { host: t.host });
        done(null, `Closed the circuit breaker of ${t.host}: what it held goes out now.`);
      } catch (e) {
        done(e);
      }
    },
  }, "Close now");
}

// The hosts deliveries are held back from: open (waiting for the next probe) or probing. The
// overview's breaker gauges only count them; an operator needs to know which hosts, and when
// they are tried again.
async function breakers(closed) {
  if (!(await hasRoute("/v1/targets"))) return null;
  const pages = await Promise.all(["open", "probing"].map((state) => api("GET", `/v1/targets?state=${state}&limit=50`)));
  const hosts = pages.flatMap((p) => p.items);
  const more = pages.some((p) => p.next_cursor);
  return [h("h2", {}, "Circuit breakers"),
    hosts.length
      ? [h("div", { class: "table-wrap", role: "region", "aria-label": "Open circuit breakers", tabindex: 0 },
        h("table", { id: "breakers", class: "stack-on-phone" }, tableHead(BREAKER_COLUMNS),
          h("tbody", {}, hosts.map((t) => labelledRow({}, BREAKER_COLUMNS, [t.host, t.state, t.failures, t.held, nextProbe(t), t.last_error ?? "", closeButton(t, closed)], [2, 3]))))),
      more ? h("p", { class: "hint" }, "More hosts are open than shown here: see GET /v1/targets.") : null]
      : h("p", { id: "breakers" }, "None is open: every webhook host is taking deliveries.")];
}

const PACED_COLUMNS = ["Host or URL", "Pace", "Next slot", "Action"];

// Ends a host's pacing, and its URLs', by hand (POST /v1/targets/close) once its limit is known
// to be lifted: what its pace holds goes out at once.
function endPacingButton(t, done) {
  return h("button", {
    type: "button", class: "needs-write",
    onclick: async () => {
      if (!confirm(`End the pacing of ${t.host} and its URLs now? What waits for it goes out at once.`)) return;
      try {
        await api("POST", "/v1/targets/close", { host: t.host });
        done(null, `Ended the pacing of ${t.host}: what waited goes out now.`);
      } catch (e) {
        done(e, null, "Could not end its pacing");
      }
    },
  }, "End pacing");
}

// The hosts and URLs that answered 429 (Too Many Requests): their deliveries go out at a pace
// that each 429 cuts, without using attempts. A URL is paced on its own (Slack limits each
// incoming-webhook URL), a host whole when its 429s show a wider limit. Their breakers stay
// closed: without this, a receiver that limits its rate is nowhere to be seen while its backlog
// waits.
async function pacedHosts(ended, overview) {
  if (!(await hasRoute("/v1/targets"))) return null;
  const [p, o] = await Promise.all([api("GET", "/v1/targets?paced=true&limit=50"), overview]);
  // The pace's next free slot: "free" says the pace holds nothing back now, while what waits may
  // still wait (a 429's backoff): how long the oldest has waited is said below (explore30b F6:
  // "now" read as "delivered now" beside an occurrence 16 minutes overdue).
  const next = (at) => (new Date(at) <= Date.now() + 500 ? "free" : time(at));
  const gauge = (name) => (o?.gauges ?? []).find((g) => g.name === name)?.value ?? 0;
  const waiting = gauge("nudge_paced_deliveries");
  const pace = (n) => `${n.toLocaleString()} a second`;
  const rows = p.items.flatMap((t) => [
    ...(t.pace != null ? [[t.host, pace(t.pace), next(t.next_send_at), endPacingButton(t, ended)]] : []),
    ...(t.paced_urls ?? []).map((u) => [u.url, pace(u.pace), next(u.next_send_at), endPacingButton(t, ended)]),
  ]);
  const hidden = p.items.reduce((n, t) => n + (t.paced_url_count ?? 0) - (t.paced_urls ?? []).length, 0);
  return [h("h2", {}, "Rate-limited hosts"),
    rows.length
      ? [h("div", { class: "table-wrap", role: "region", "aria-label": "Rate-limited hosts", tabindex: 0 },
        h("table", { id: "paced-hosts", class: "stack-on-phone" }, tableHead(PACED_COLUMNS),
          h("tbody", {}, rows.map((cells) => labelledRow({}, PACED_COLUMNS, cells, [1]))))),
        hidden > 0 ? h("p", { class: "hint" }, `And ${hidden.toLocaleString()} more paced URLs: see GET /v1/targets?paced=true.`) : null,
        waiting > 0 ? h("p", { id: "paced-waiting" }, `${waiting.toLocaleString()} due ${waiting === 1 ? "delivery waits" : "deliveries wait"} for them; the oldest has been due for ${duration(gauge("nudge_oldest_paced_seconds"))}.`) : null,
        h("p", { class: "hint" }, "They answered 429: their deliveries go out at this pace, which each 429 cuts to 0.7 and which grows back without one; a 429 uses no attempt. A URL is paced on its own, a whole host when its 429s show a limit wider than one URL.")]
      : h("p", { id: "paced-hosts" }, "No webhook host is rate-limiting its deliveries.")];
}

const BUSY_COLUMNS = ["Host", "Under way", "Due", "Earliest due for", "Breaker"];

// Where the webhook deliveries of this moment run and wait, by host, busiest first.
async function busyHosts() {
  if (!(await hasRoute("/v1/targets/busy"))) return null;
  const b = await api("GET", "/v1/targets/busy?limit=10");
  const cut = b.read >= b.read_cap ? ` Counted among the ${b.read_cap.toLocaleString()} earliest due reminders.` : "";
  return [h("h2", {}, "Busiest webhook hosts"),
    b.hosts.length
      ? [h("div", { class: "table-wrap", role: "region", "aria-label": "Busiest webhook hosts", tabindex: 0 },
        h("table", { id: "busy-hosts", class: "stack-on-phone" }, tableHead(BUSY_COLUMNS),
          h("tbody", {}, b.hosts.map((t) => labelledRow({}, BUSY_COLUMNS,
            [t.host, t.in_flight.toLocaleString(), t.due.toLocaleString(), duration(t.oldest_due_seconds), t.breaker], [1, 2]))))),
      h("p", { class: "hint" }, "Under way: a worker is delivering them now (a slow receiver keeps them there). Due: waiting for a worker." + cut)]
      : h("p", { id: "busy-hosts" }, "No webhook delivery is under way or due.")];
}

export async function overviewView(main, ctx) {
  // Not a live region: reloaded every few seconds while things change, it would be read out
  // again each time.
  const body = h("div");
  const note = h("p", { id: "refresh-note", class: "error", role: "status" });
  const said = h("p", { id: "overview-said", role: "status" });
  fill(main, h("h1", {}, "Overview"), said, body, note,
    h("button", { type: "button", onclick: () => reload() }, "Refresh"));

  async function load() {
    const overview = api("GET", "/v1/overview");
    const [o, held, paced, busy] = await Promise.all([overview, breakers(afterClose), pacedHosts(afterClose, overview), busyHosts()]);
    const approx = o.counts_estimated ? "≈ " : "";
    const dueCapped = o.due_now >= o.due_now_cap ? "+" : "";
    fill(body,
      h("h2", {}, "Reminders by status", o.counts_estimated ? h("small", {}, " (estimated)") : null),
      h("ul", { class: "cards" },
        STATUSES.map((s) => card(s, approx + (o.counts[s] || 0).toLocaleString(), `#/reminders?status=${s}`))),
      h("h2", {}, "Now"),
      o.workers === 0
        ? h("p", { id: "no-worker", class: "error", role: "alert" }, "No worker is connected: nothing is delivered until one runs (nudge-worker).")
        : null,
      h("ul", { class: "cards" },
        card("due now", o.due_now.toLocaleString() + dueCapped),
        card("oldest due for", duration(o.oldest_due_seconds)),
        card("workers connected", o.workers.toLocaleString()),
        card("held by circuit breakers", o.held.toLocaleString()),
        card("delivered in the last hour", o.last_hour.delivered.toLocaleString()),
        card("failed in the last hour", o.last_hour.failed.toLocaleString())),
      held,
      paced,
      busy,
      h("p", { class: "hint" }, "As of ", new Date(o.as_of).toLocaleTimeString(undefined, { timeZoneName: "short" })));
  }

  // What a "Close now" did, said above the cards; the focus, lost with its button, goes there.
  async function afterClose(e, done, failed = "Could not close it") {
    if (e) note.textContent = `${failed}: ${e.message}`;
    else {
      said.textContent = done;
      await reload();
    }
    focusIfLost(e ? note : said);
  }

  // A reload that fails says so, beside what is still shown and its time.
  function reload() {
    return load().then(
      () => { note.textContent = ""; },
      (e) => { note.textContent = `Could not refresh: ${e.message}. What is shown is as of the time below.`; });
  }

  // Live: reload at most every two seconds while things change, and every 15 s anyway: a
  // backlog that grows because no worker runs changes nothing the stream reports.
  let pending = null;
  ctx.subscribe((type) => {
    if (type !== "reminder" && type !== "flag" && type !== "resync") return;
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      reload();
    }, 2000);
  });
  ctx.every(15000, () => { if (document.visibilityState === "visible") reload(); });
  await load();
}
