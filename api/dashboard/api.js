// Every call to the API: JSON in and out, the token (when this tab has one) on every request,
// and a 401 answered by asking for a token and trying again.

const TOKEN_KEY = "nudge.token";

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

const tokenListeners = [];
// `fn` runs when a new token is entered (the stream reconnects with it; the header offers to
// change it).
export function onToken(fn) {
  tokenListeners.push(fn);
}

let asking = null;
// One prompt however many calls got a 401 at once.
function askForToken(rejected) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const field = document.getElementById("token-input");
  document.getElementById("token-error").textContent =
    rejected ? "That token was refused; enter another." : "";
  field.value = "";
  asking = new Promise((resolve, reject) => {
    const submitted = () => {
      dialog.removeEventListener("close", closed);
      sessionStorage.setItem(TOKEN_KEY, field.value.trim());
      asking = null;
      for (const fn of tokenListeners) fn();
      resolve();
    };
    // Escape closes the dialog without a token: the call fails with the 401.
    const closed = () => {
      form.removeEventListener("submit", submitted);
      asking = null;
      reject(new ApiError(401, { error: { code: "unauthorized", message: "This server needs a token." } }));
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
export function changeToken() {
  return askForToken(false).catch(() => {});
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
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) {
      await askForToken(Boolean(t));
      continue;
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) throw new ApiError(res.status, data);
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
