// Reminders: the list with filters and cursor paging; rows change live as the stream reports
// them, and new ones that match appear where the list's order (newest first, by id) puts them:
// on top of the first page. A page keeps every row it loaded, so its "Next page" (the cursor
// after its last loaded row) goes on right after the last row shown; a row changed so that it
// no longer matches the filters leaves, and one changed so that it matches comes, as they would
// after a reload or a bulk change.

import { api, query, ApiError } from "./api.js";
import { h, fill, field, input, select, status, time, flash, replaceKeepingFocus, labelledRow, tableHead } from "./dom.js";
import { describeSchedule, entity } from "./format.js";
import { filterForm, loadFiltered } from "./filters.js";
import { pagingLinks } from "./paging.js";

const FILTERS = ["status", "entity_type", "entity_id", "event_type", "channel", "stop_condition_value"];
const BULK_FILTERS = FILTERS.filter((f) => f !== "stop_condition_value");  // what bulk changes take
const LIMIT = 50;
// A page that live rows have grown past this many reloads (a page of LIMIT and the cursor after
// it) rather than grow without end.
const MOST = 2 * LIMIT;
// Live messages are taken every TAKE_MS; past BURST of them at once (a bulk change, thousands of
// creates), the page reloads once instead of changing row by row, which froze the tab for 8-13 s.
const TAKE_MS = 100;
const BURST = 25;

const COLUMNS = ["Id", "Entity", "Event type", "Channel", "Schedule", "Status", "Next fire", "Fires"];

function row(r) {
  const cells = [
    h("a", { href: `#/reminders/${r.id}` }, `#${r.id}`), entity(r), r.event_type, r.channel,
    describeSchedule(r), status(r.status), time(r.next_run_at), r.fire_count,
  ];
  return labelledRow({ "data-id": r.id, "data-updated-at": r.updated_at }, COLUMNS, cells, [7]);
}

function matches(r, params) {
  return FILTERS.every((f) => !params.get(f) || String(r[f]) === params.get(f));
}

export async function remindersView(main, ctx) {
  const params = ctx.params;
  const filters = filterForm("#/reminders", "Filter reminders", params, [
    field("Status", select("status", [["", "any"], "ACTIVE", "PAUSED", "COMPLETED", "CANCELLED", "FAILED"])),
    field("Entity type", input("entity_type", { maxlength: 200 })),
    field("Entity id", input("entity_id", { maxlength: 200 })),
    field("Event type", input("event_type", { maxlength: 200 })),
    field("Channel", select("channel", [["", "any"], "log", "webhook", "email"])),
    field("Stop flag", input("stop_condition_value", { maxlength: 200 }))]);

  const tbody = h("tbody");
  const note = h("p", { id: "reminders-note", role: "status", class: "hint" });
  const region = h("div", { class: "table-wrap", role: "region", "aria-label": "Reminders", tabindex: 0 },
    h("table", { id: "reminders", class: "stack-on-phone" }, tableHead(COLUMNS), tbody));
  const paging = h("div", { class: "paging" });
  const bulkNote = h("p", { role: "status" });
  const hasFilter = BULK_FILTERS.some((f) => params.get(f)) && !params.get("stop_condition_value");
  const bulk = hasFilter
    ? h("div", { class: "bulk needs-write" },
      h("span", {}, "Every reminder matching these filters: "),
      ["pause", "resume", "cancel", "retry"].map((action) =>
        h("button", { type: "button", class: action === "cancel" ? "danger" : null, onclick: () => bulkChange(action) },
          action === "retry" ? "Retry all failed" : action[0].toUpperCase() + action.slice(1) + " all")),
      bulkNote)
    : null;

  // The note is above the rows: a row that leaves the list is said where it is seen.
  fill(main, h("h1", {}, "Reminders"), filters, bulk, note, region, paging);

  let next = null;  // the loaded page's next_cursor
  // Messages taken while a load is in flight, by reminder, for each load: its page was read at
  // some moment meanwhile, so they are applied again over it (apply keeps the newer state). Its
  // rows replaced the rows they had changed, and a reminder fired and completed within the load
  // stayed ACTIVE on screen for good (explore32c F2).
  const inFlight = new Set();
  async function load() {
    const q = { limit: LIMIT, cursor: params.get("cursor") };
    for (const f of FILTERS) q[f] = params.get(f);
    const missed = new Map();
    inFlight.add(missed);
    let page;
    try {
      page = await api("GET", "/v1/reminders" + query(q));
    } finally {
      inFlight.delete(missed);
    }
    next = page.next_cursor;
    // The focus stays on its row's link if the row is still listed, else on the list.
    const focused = tbody.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.id : null;
    fill(tbody, page.items.map(row));
    if (focused) (tbody.querySelector(`tr[data-id="${focused}"] a`) || region).focus();
    note.textContent = page.items.length ? "" : "No reminders match.";
    fill(paging, pagingLinks("#/reminders", params, FILTERS, page.next_cursor));
    for (const r of missed.values()) apply(r);
  }

  async function bulkChange(action) {
    const what = action === "retry" ? "Retry every failed reminder" : `${action[0].toUpperCase()}${action.slice(1)} every reminder`;
    const body = {};
    for (const f of BULK_FILTERS) if (params.get(f)) body[f] = params.get(f);
    // What one OK changes, said in full: the filters, and how many the list holds (explore30b
    // F5: "Cancel all" under the overview's ACTIVE card asked only "matching these filters?").
    const shown = tbody.querySelectorAll("tr[data-id]").length;
    const filtersText = Object.entries(body).map(([k, v]) => `${k} = ${v}`).join(", ");
    const howMany = next ? `more than the ${shown} listed here (up to 10,000 a time)` : `the ${shown} listed here`;
    if (!confirm(`${what} where ${filtersText}: ${howMany}?`)) return;
    bulkNote.textContent = "";
    try {
      const answer = await api("POST", `/v1/reminders/${action}`, body);
      // The count is said once the list shows the change, so the two never disagree on screen.
      await load();
      bulkNote.textContent = `${answer.count} changed${answer.more ? " (more remain: repeat)" : ""}.`;
    } catch (e) {
      bulkNote.textContent = e instanceof ApiError ? e.message : String(e);
    }
  }

  // Puts a new row where this page lists it, by id (newest first), and says whether it did: a
  // row newer than a later page's first belongs to an earlier page, and one older than the last
  // row to a later page, if there is one (its message can come after the page was loaded).
  function place(fresh, id) {
    const older = [...tbody.rows].find((tr) => Number(tr.dataset.id) < id);
    if (older && (older !== tbody.rows[0] || !params.get("cursor"))) older.before(fresh);
    else if (!older && !next) tbody.append(fresh);
    else return false;
    flash(fresh);
    return true;
  }

  // One reload at a time; one asked for meanwhile runs after it, so it sees the latest state.
  let reloading = null;
  let again = false;
  function reload() {
    if (reloading) {
      again = true;
      return;
    }
    reloading = load().catch(() => {}).finally(() => {
      reloading = null;
      if (again) {
        again = false;
        reload();
      }
    });
  }

  let taken = [];
  let burst = false;
  function take() {
    const batch = taken;
    taken = [];
    if (burst) {
      burst = false;
      reload();
      return;
    }
    for (const r of batch) {
      for (const missed of inFlight) missed.set(r.id, r);
      apply(r);
    }
  }

  ctx.subscribe((type, data) => {
    if (type === "resync") {
      reload();
      return;
    }
    if (type !== "reminder" || !data.reminder || burst) return;
    if (!taken.length) setTimeout(take, TAKE_MS);
    taken.push(data.reminder);
    if (taken.length > BURST) {
      burst = true;
      taken = [];
    }
  });

  function apply(r) {
    const old = tbody.querySelector(`tr[data-id="${r.id}"]`);
    // A message rendered before the page's load answered carries an older state than its row.
    if (old && Date.parse(r.updated_at) < Date.parse(old.dataset.updatedAt)) return;
    if (old && !matches(r, params)) {
      const focused = old.contains(document.activeElement);
      old.remove();
      if (focused) region.focus();
      const why = params.get("status") && r.status !== params.get("status") ? `is now ${r.status}` : "changed";
      note.textContent = `Reminder #${r.id} ${why} and no longer matches these filters: it left the list.`;
      // An emptied page may not be the end of the list (a bulk change): the reload says.
      if (!tbody.rows.length) reload();
    } else if (old) {
      const fresh = row(r);
      replaceKeepingFocus(old, fresh);
      flash(fresh);
    } else if (matches(r, params) && place(row(r), r.id)) {
      // New, or come to match (resumed under ?status=ACTIVE): where a reload would show it.
      note.textContent = "";
      if (tbody.rows.length > MOST) {
        // Bounded at once: the reload cannot answer while a burst's messages keep coming.
        while (tbody.rows.length > MOST) tbody.lastElementChild.remove();
        reload();
      }
    }
  }
  // Until a page loads (a refused cursor), the way back to the earlier pages stays.
  fill(paging, pagingLinks("#/reminders", params, FILTERS, null));
  // Bulk changes would be refused for the same filter the list was.
  if (!(await loadFiltered(filters, load)) && bulk) bulk.hidden = true;
}
