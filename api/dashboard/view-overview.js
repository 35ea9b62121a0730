// Overview: reminders by status (estimated on big tables), the due backlog, the last hour's
// fires, and the database's gauges (circuit breakers among them, when there are any).

import { api } from "./api.js";
import { h, fill } from "./dom.js";

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

export async function overviewView(main, ctx) {
  const body = h("div", { "aria-live": "polite" });
  fill(main, h("h1", {}, "Overview"), body,
    h("button", { type: "button", onclick: () => load() }, "Refresh"));

  async function load() {
    const o = await api("GET", "/v1/overview");
    const approx = o.counts_estimated ? "≈ " : "";
    const dueCapped = o.due_now >= o.due_now_cap ? "+" : "";
    const breakers = o.gauges.filter((g) => g.name.includes("breaker"));
    fill(body,
      h("h2", {}, "Reminders by status", o.counts_estimated ? h("small", {}, " (estimated)") : null),
      h("ul", { class: "cards" },
        STATUSES.map((s) => card(s, approx + (o.counts[s] || 0).toLocaleString(), `#/reminders?status=${s}`))),
      h("h2", {}, "Now"),
      h("ul", { class: "cards" },
        card("due now", o.due_now.toLocaleString() + dueCapped),
        card("oldest due for", duration(o.oldest_due_seconds)),
        card("delivered in the last hour", o.last_hour.delivered.toLocaleString()),
        card("failed in the last hour", o.last_hour.failed.toLocaleString())),
      breakers.length
        ? [h("h2", {}, "Circuit breakers"),
          h("table", {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "gauge"), h("th", { scope: "col" }, "which"), h("th", { scope: "col" }, "value"))),
            h("tbody", {}, breakers.map((g) => h("tr", {}, h("td", {}, g.name), h("td", {}, g.label_value || ""), h("td", {}, g.value)))))]
        : null,
      h("p", { class: "hint" }, "As of ", new Date(o.as_of).toLocaleTimeString(undefined, { timeZoneName: "short" })));
  }

  // Live: reload at most every two seconds while things change.
  let pending = null;
  ctx.subscribe((type) => {
    if (type !== "reminder" && type !== "flag" && type !== "resync") return;
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      load().catch(() => {});
    }, 2000);
  });
  await load();
}
