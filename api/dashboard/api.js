// Every call to the API: JSON in and out, the token (when this tab has one) on every request,
// and a 401 answered by asking for a token and trying again; a change refused 403 for the
// token's scope likewise (Escape keeps the refusal). What the token may do is asked of
// GET /v1/auth, so that a read-only one is offered no change at all.

const TOKEN_KEY = "nudge.token";
// A request on a network gone quiet would wait for ever, and its view say nothing: it fails
// after this long instead.
const ANSWER_WITHIN_MS = 30000;

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "";
    this.field = e.field || "";
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

const tokenListeners = [];
// `fn` runs when a new token is entered (the stream reconnects with it; the header offers to
// change it).
export function onToken(fn) {
  tokenListeners.push(fn);
}

let asking = null;
// Escape closed the dialog without a token: later refusals fail as they were answered instead
// of asking again at once (the view behind it called again), until a token is asked for by hand.
let declined = false;
// One prompt however many calls got a 401 (or 403) at once. `why` is said in the dialog;
// `cancelled` is what the call fails with when the dialog is closed without a token; `byHand`:
// the person asked for it (the token button, a change just refused), so it opens even if declined.
function askForToken(why, cancelled = new ApiError(401, { error: { code: "unauthorized", message: "This server needs a token." } }), byHand = false) {
  if (asking) return asking;
  if (declined && !byHand) return Promise.reject(cancelled);
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const field = document.getElementById("token-input");
  document.getElementById("token-error").textContent = why;
  field.value = "";
  asking = new Promise((resolve, reject) => {
    const submitted = () => {
      dialog.removeEventListener("close", closed);
      sessionStorage.setItem(TOKEN_KEY, field.value.trim());
      asking = null;
      declined = false;
      for (const fn of tokenListeners) fn();
      resolve();
    };
    // Escape closes the dialog without a token: the call fails as it was answered. The focus
    // goes back where it was, or, if that was redrawn meanwhile, to the page's content.
    const closed = () => {
      form.removeEventListener("submit", submitted);
      asking = null;
      declined = true;
      reject(cancelled);
      setTimeout(() => {
        if (document.activeElement === document.body) document.getElementById("main").focus();
      });
    };
    form.addEventListener("submit", submitted, { once: true });
    dialog.addEventListener("close", closed, { once: true });
  });
  if (!dialog.open) dialog.showModal();
  field.focus();
  return asking;
}

// Asks for another token now (a read-only one cannot change anything; a shared screen needs its
// own): the one entered replaces this tab's, and the views and the stream use it from then on.
export function changeToken(why = "") {
  return askForToken(why, undefined, true).catch(() => {});
}

// Whether the dialog was closed without a token (the page then offers a button to enter one).
export function tokenDeclined() {
  return declined;
}

// What this tab's token holds ({auth, token, scopes}, from GET /v1/auth), or null while unknown
// (then every control is offered, and the API's answer decides); asked once per token.
let access = null;
let learning = null;
let learnedFor;
const accessListeners = [];

// Calls `fn` when what the kept token may do was learned again (after a change it was refused).
export function onAccess(fn) {
  accessListeners.push(fn);
}

const ASK_AGAIN_MS = 2000;

// Asks what the current token holds. Not answered for a while (a 429, a 503, no network), every
// control is offered meanwhile and it is asked again until it is, the page then following it: a
// read token whose first answer was a 429 was offered every change for the tab's life
// (explore30b F3).
export function learnAccess() {
  const t = token();
  if (learning && learnedFor === t) return learning;
  learnedFor = t;
  learning = api("GET", "/v1/auth").then((a) => {
    access = a;
  }, (e) => {
    access = null;
    if (e instanceof ApiError && e.status !== 429 && e.status < 500) return;
    setTimeout(() => {
      if (learnedFor !== t || access !== null) return;
      learning = null;
      learnAccess().then(() => { for (const fn of accessListeners) fn(); });
    }, ASK_AGAIN_MS);
  });
  return learning;
}

// Whether the token may change anything (scope write), as far as the page knows.
export function canWrite() {
  return !access || access.scopes.includes("write");
}

// Whether the token may read (scope read), as far as the page knows.
export function canRead() {
  return !access || access.scopes.includes("read");
}

// Calls the API; answers the parsed body, or throws ApiError with the error body's field.
export async function api(method, path, body) {
  return (await apiAnswer(method, path, body)).data;
}

// The same, answering {status, data}: where the status says more than the body (a create's 200
// is a live reminder found, not made).
export async function apiAnswer(method, path, body) {
  for (;;) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    let res;
    let text;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      if (res.status !== 401) text = await res.text();
    } catch (e) {
      throw new Error(e.name === "TimeoutError" ? `no answer within ${ANSWER_WITHIN_MS / 1000} s` : e.message);
    }
    if (res.status === 401) {
      await askForToken(t ? "That token was refused; enter another." : "",
        t ? new ApiError(401, { error: { code: "unauthorized", message: "The token was refused: enter another with the token button." } }) : undefined);
      continue;
    }
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    // A change this token may not make (it lost write, or the page did not know): say why and
    // offer another token, and make the change with it.
    if (res.status === 403 && method !== "GET" && /insufficient_scope/.test(res.headers.get("WWW-Authenticate") || "")) {
      const refused = new ApiError(res.status, data);
      learning = null;  // what the page knew of this token is stale: ask again
      try {
        await askForToken(`${refused.message}. Enter a token that may, or press Escape.`, refused, true);
      } catch (e) {
        // The tab keeps this token: the page follows what it may do now.
        learnAccess().then(() => { for (const fn of accessListeners) fn(); });
        throw e;
      }
      continue;
    }
    if (!res.ok) {
      const refused = new ApiError(res.status, data);
      refused.retryAfter = Number(res.headers.get("Retry-After")) || 0;
      throw refused;
    }
    return { status: res.status, data };
  }
}

// "?a=1&b=2" from the keys of `params` that have a value.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

let documentPaths = null;
// Whether the server's OpenAPI document has `path` (features that land later are found here).
export async function hasRoute(path) {
  if (!documentPaths) {
    documentPaths = fetch("/openapi.json")
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((d) => Object.keys(d.paths || {}))
      .catch(() => []);
  }
  return (await documentPaths).includes(path);
}
