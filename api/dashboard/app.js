// The dashboard's shell: a hash router (#/reminders?status=ACTIVE, #/reminders/12) that mounts
// one view at a time into <main>, and the live stream that feeds it.

import { h, fill } from "./dom.js";
import { token, forgetToken, changeToken, onToken, onAccess, learnAccess, canWrite, tokenDeclined } from "./api.js";
import { startStream, subscribe } from "./stream.js";
import { overviewView } from "./view-overview.js";
import { remindersView } from "./view-reminders.js";
import { createView } from "./view-create.js";
import { detailView } from "./view-detail.js";
import { flagsView } from "./view-flags.js";
import { rulesView } from "./view-rules.js";
import { eventsView } from "./view-events.js";
import { contactsView } from "./view-contacts.js";

const routes = [
  [/^\/(overview)?$/, overviewView],  // "#/" too
  [/^\/reminders$/, remindersView],
  [/^\/new$/, createView],
  [/^\/reminders\/(\d+)$/, detailView],
  [/^\/flags$/, flagsView],
  [/^\/rules$/, rulesView],
  [/^\/events$/, eventsView],
  [/^\/contacts$/, contactsView],
];

// Stops the subscriptions of the view on screen (or still loading).
let unmount = null;
// Counts navigations: only the latest may put its view on screen.
let renders = 0;

// "#/reminders?status=ACTIVE" -> {path: "/reminders", params: URLSearchParams}.
function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/overview";
  const [path, q] = hash.split("?");
  return { path, params: new URLSearchParams(q || "") };
}

// A view loads into a box of its own in <main>: a view still loading when the next navigation
// comes (a slow answer) then fills a box no longer on screen, never the next view's page, and
// its subscriptions are dropped at once, not when it finishes. True when it is still on screen.
async function render() {
  const mine = ++renders;
  if (unmount) unmount();
  unmount = null;
  const { path, params } = currentRoute();
  const main = document.getElementById("main");
  delete main.dataset.route;
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").slice(1);
    if (target === path || (target === "/reminders" && /^\/reminders\/\d+$/.test(path))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const box = h("div", { class: "view" });
  fill(main, box);
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    fill(box, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/overview" }, "Back to the overview")));
    loaded(main);
    return true;
  }
  const [re, view] = found;
  const args = path.match(re).slice(1);
  // What a view subscribes to is dropped when another view replaces it, even mid-load; one it
  // asks for after that is never made.
  const stops = [];
  let gone = false;
  unmount = () => {
    gone = true;
    stops.splice(0).forEach((s) => s());
  };
  const ctx = {
    params, args,
    subscribe: (fn) => { if (!gone) stops.push(subscribe(fn)); },
    // A timer that stops with the view.
    every: (ms, fn) => {
      if (gone) return;
      const timer = setInterval(fn, ms);
      stops.push(() => clearInterval(timer));
    },
  };
  // Said while it loads (a slow network showed empty tables, read as "none").
  main.setAttribute("aria-busy", "true");
  const loading = setTimeout(() => { document.getElementById("loading").hidden = false; }, 300);
  try {
    await view(box, ctx);
  } catch (e) {
    // Offered again, and tried again by itself once the stream is back (the network returned).
    fill(box, h("h1", {}, "Could not load this view"), h("p", { class: "error", role: "alert" }, e.message),
      h("button", { type: "button", onclick: showAgain }, "Try again"));
    ctx.subscribe((type) => { if (type === "resync") showAgain(); });
    // A server that asked to be asked again later (a 429 over the token's rate, a busy 503) is,
    // once its Retry-After has passed (explore30b F9: the view stayed failed until clicked).
    if (e.retryAfter > 0) ctx.every(Math.min(e.retryAfter, 30) * 1000, showAgain);
  } finally {
    clearTimeout(loading);
    if (mine === renders) {
      document.getElementById("loading").hidden = true;
      main.removeAttribute("aria-busy");
    }
  }
  if (mine !== renders) return false;
  loaded(main);
  return true;
}

// Draws the view again and gives it the focus (its button, if it had it, is gone).
function showAgain() {
  const hadFocus = document.getElementById("main").contains(document.activeElement);
  render().then((current) => {
    if (current && (hadFocus || document.activeElement === document.body)) document.getElementById("main").focus({ preventScroll: true });
  });
}

// The tab's title from the view's heading, and which view is on screen once loaded (what the
// browser tests wait for); a "Not found" is a view too, so the previous one's title goes.
function loaded(main) {
  const title = main.querySelector("h1");
  document.title = (title ? title.textContent + " · " : "") + "Nudge";
  main.dataset.route = location.hash.replace(/^#/, "") || "/overview";
}

// "Skip to content" moves the focus to <main> itself: following its href (#main) would change
// the hash, which this router reads as a route, and lose the view.
document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main").focus();
});

window.addEventListener("hashchange", () => {
  render().then((current) => {
    if (current) document.getElementById("main").focus({ preventScroll: true });
  });
});
// The link of the view on screen changes no hash: it draws the view again (after a failure, say).
document.querySelector("nav").addEventListener("click", (e) => {
  const a = e.target.closest("a[href^='#']");
  if (a && a.getAttribute("href") === (location.hash || "#/overview")) {
    e.preventDefault();
    showAgain();
  }
});
startStream();

// Once this tab has a token, it can be swapped for another (a write token after a read-only one).
// A token without write is offered no change: the page's write controls (class needs-write) are
// hidden or disabled, and the header says "read-only token".
const tokenButton = document.getElementById("token-change");
const forgetButton = document.getElementById("token-forget");
// Logging out: the tab forgets its token and starts again (a server that needs one asks).
forgetButton.addEventListener("click", () => {
  forgetToken();
  location.reload();
});
function showAccess() {
  // Once the dialog was closed without one, the button is how a token is entered.
  tokenButton.hidden = !token() && !tokenDeclined();
  forgetButton.hidden = !token();
  tokenButton.textContent = token() ? "Change token" : "Enter token";
  document.body.classList.toggle("read-only", !canWrite());
}
let started = false;
let fromButton = false;
tokenButton.addEventListener("click", () => {
  fromButton = true;
  changeToken().finally(() => { fromButton = false; });
});
// A token entered later (the button, a 401, a revoked stream): the view is drawn again when asked
// for, or when what the token may do changed (a call that asked for it goes on with it).
// A change refused 403 and no other token entered: the token lost write, so its controls go.
onAccess(() => {
  const could = document.body.classList.contains("read-only") === false;
  showAccess();
  if (started && could !== canWrite()) render();
});
onToken(async () => {
  const redraw = fromButton;
  const could = canWrite();
  await learnAccess();
  showAccess();
  if (started && (redraw || could !== canWrite())) render();
});
// The first view waits for what the token may do (asking for a token first, when one is needed).
learnAccess().then(() => {
  showAccess();
  started = true;
  render();
});
