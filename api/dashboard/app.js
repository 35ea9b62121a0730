// The dashboard's shell: a hash router (#/reminders?status=ACTIVE, #/reminders/12) that mounts
// one view at a time into <main>, and the live stream that feeds it.

import { h, fill } from "./dom.js";
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
  [/^\/overview$/, overviewView],
  [/^\/reminders$/, remindersView],
  [/^\/new$/, createView],
  [/^\/reminders\/(\d+)$/, detailView],
  [/^\/flags$/, flagsView],
  [/^\/rules$/, rulesView],
  [/^\/events$/, eventsView],
  [/^\/contacts$/, contactsView],
];

let unmount = null;

// "#/reminders?status=ACTIVE" -> {path: "/reminders", params: URLSearchParams}.
function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/overview";
  const [path, q] = hash.split("?");
  return { path, params: new URLSearchParams(q || "") };
}

async function render() {
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
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/overview" }, "Back to the overview")));
    loaded(main);
    return;
  }
  const [re, view] = found;
  const args = path.match(re).slice(1);
  // What a view subscribes to is dropped when another view replaces it.
  const stops = [];
  const ctx = { params, args, subscribe: (fn) => stops.push(subscribe(fn)) };
  fill(main);
  try {
    await view(main, ctx);
  } catch (e) {
    fill(main, h("h1", {}, "Could not load this view"), h("p", { class: "error", role: "alert" }, e.message));
  }
  unmount = () => stops.forEach((s) => s());
  loaded(main);
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
  render().then(() => document.getElementById("main").focus({ preventScroll: true }));
});
startStream();
render();
