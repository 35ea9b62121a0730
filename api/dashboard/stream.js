// Live updates: one EventSource on GET /v1/stream, fanned out to the view on screen. The
// connection state is always visible; a lost or refused stream is retried with backoff, and on
// every (re)connection and every `lagged` message the view reloads over REST, so it misses
// nothing the stream could not replay.

import { token, onToken, changeToken } from "./api.js";

const TYPES = ["reminder", "flag", "event", "rule"];
const listeners = new Set();
let source = null;
let retry = 1000;
let timer = null;

// `fn(type, data)` for each message; `fn("resync")` when the view should reload. Returns the
// function that stops it.
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(type, data) {
  for (const fn of [...listeners]) {
    try {
      fn(type, data);
    } catch (e) {
      console.error(e);
    }
  }
}

function show(state, text) {
  const el = document.getElementById("connection");
  el.dataset.state = state;
  el.textContent = "Live updates: " + text;
}

function streamUrl() {
  const t = token();
  return "/v1/stream" + (t ? "?access_token=" + encodeURIComponent(t) : "");
}

// Why the server refused the stream, from its error body, or null: EventSource tells the page
// nothing of it, and "reconnecting…" for ever hid a token holding all its streams (other tabs)
// or lacking read (explore30b F9).
async function refusal() {
  const stop = new AbortController();
  try {
    const res = await fetch(streamUrl(), { cache: "no-store", signal: stop.signal });
    if (res.ok) return null;
    const body = await res.json().catch(() => null);
    return body?.error?.message ?? null;
  } catch {
    return null;
  } finally {
    stop.abort();
  }
}

function open() {
  clearTimeout(timer);
  if (source) source.close();
  source = new EventSource(streamUrl());
  show("connecting", "connecting…");
  source.onopen = () => {
    retry = 1000;
    show("live", "live");
    emit("resync");
  };
  source.onerror = () => {
    // The browser retries by itself while the state is CONNECTING; a refused stream (no such
    // route yet, a 401, a 503 past max_streams) is CLOSED and retried here.
    if (source.readyState === EventSource.CLOSED) {
      show("offline", "offline, reconnecting…");
      const closed = source;
      refusal().then((why) => { if (why && source === closed) show("offline", `offline: ${why}`); });
      timer = setTimeout(open, retry);
      retry = Math.min(retry * 2, 30000);
    } else {
      show("reconnecting", "reconnecting…");
    }
  };
  for (const type of TYPES) {
    source.addEventListener(type, (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      emit(type, data);
    });
  }
  source.addEventListener("lagged", () => emit("resync"));
  // The server cannot read its changes (the database is unreachable): the stream stays open
  // but says nothing, so the page says so; once it is back, the view reloads (one that could
  // not load meanwhile too).
  source.addEventListener("stalled", () => show("offline", "paused: the database is unreachable"));
  source.addEventListener("resumed", () => {
    show("live", "live");
    emit("resync");
  });
  // Changes the tab was shown are gone (pruned, or a database restored): what it shows is redrawn.
  source.addEventListener("gone", () => emit("resync"));
  // The tab's token was revoked (or lost read): the server ends the stream, and retrying with
  // the same token would only be refused, so the tab asks for another (entering one reopens).
  source.addEventListener("revoked", () => {
    source.close();
    show("offline", "offline: the token was revoked");
    changeToken("This tab's token was revoked (or lost read); enter another.");
  });
}

// The stream's pings are comments, which EventSource does not show: a connection gone quiet (a
// dead Wi-Fi, a proxy that stopped forwarding) would read "live" for ever while changes are
// missed. While it is open the page asks GET /livez now and then; no answer in time, and the
// stream is reopened (its view reloads once it is back).
const CHECK_EVERY_MS = 15000;
const CHECK_WITHIN_MS = 8000;

async function checkAnswers() {
  if (!source || source.readyState !== EventSource.OPEN) return;
  const checked = source;
  try {
    const res = await fetch("/livez", { cache: "no-store", signal: AbortSignal.timeout(CHECK_WITHIN_MS) });
    if (res.ok) return;
  } catch {
    // no answer: below
  }
  if (checked !== source) return;  // reopened meanwhile
  source.close();
  show("offline", "no answer from the server, reconnecting…");
  timer = setTimeout(open, retry);
  retry = Math.min(retry * 2, 30000);
}

export function startStream() {
  open();
  onToken(open);
  setInterval(checkAnswers, CHECK_EVERY_MS);
  // The browser knows when its network went: said at once, and reopened when it is back.
  window.addEventListener("offline", () => show("offline", "offline: no network"));
  window.addEventListener("online", open);
}
