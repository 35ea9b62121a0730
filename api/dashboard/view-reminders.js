// Reminders: the list with filters and cursor paging; rows change live as the stream reports
// them, and new ones that match appear at the top of the first page.

import { api, query, ApiError } from "./api.js";
import { h, fill, field, input, select, status, time, flash, replaceKeepingFocus, labelledRow, tableHead } from "./dom.js";
import { describeSchedule, entity } from "./format.js";
import { filterForm, loadFiltered } from "./filters.js";
import { pagingLinks } from "./paging.js";

const FILTERS = ["status", "entity_type", "entity_id", "event_type", "channel", "stop_condition_value"];
const BULK_FILTERS = FILTERS.filter((f) => f !== "stop_condition_value");  // what bulk changes take
const LIMIT = 50;

const COLUMNS = ["Id", "Entity", "Event type", "Channel", "Schedule", "Status", "Next fire", "Fires"];

function row(r) {
  const cells = [
    h("a", { href: `#/reminders/${r.id}` }, `#${r.id}`), entity(r), r.event_type, r.channel,
    describeSchedule(r), status(r.status), time(r.next_run_at), r.fire_count,
  ];
  return labelledRow({ "data-id": r.id }, COLUMNS, cells, [7]);
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
  const note = h("p", { role: "status", class: "hint" });
  const paging = h("div", { class: "paging" });
  const bulkNote = h("p", { role: "status" });
  const hasFilter = BULK_FILTERS.some((f) => params.get(f)) && !params.get("stop_condition_value");
  const bulk = hasFilter
    ? h("div", { class: "bulk" },
      h("span", {}, "Every reminder matching these filters: "),
      ["pause", "resume", "cancel"].map((action) =>
        h("button", { type: "button", class: action === "cancel" ? "danger" : null, onclick: () => bulkChange(action) },
          action[0].toUpperCase() + action.slice(1) + " all")),
      bulkNote)
    : null;

  fill(main, h("h1", {}, "Reminders"), filters, bulk,
    h("div", { class: "table-wrap", role: "region", "aria-label": "Reminders", tabindex: 0 },
      h("table", { id: "reminders", class: "stack-on-phone" },
        tableHead(COLUMNS),
        tbody)),
    note, paging);

  async function load() {
    const q = { limit: LIMIT, cursor: params.get("cursor") };
    for (const f of FILTERS) q[f] = params.get(f);
    const page = await api("GET", "/v1/reminders" + query(q));
    fill(tbody, page.items.map(row));
    note.textContent = page.items.length ? "" : "No reminders match.";
    fill(paging, pagingLinks("#/reminders", params, FILTERS, page.next_cursor));
  }

  async function bulkChange(action) {
    if (action === "cancel" && !confirm("Cancel every reminder matching these filters?")) return;
    const body = {};
    for (const f of BULK_FILTERS) if (params.get(f)) body[f] = params.get(f);
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

  ctx.subscribe((type, data) => {
    if (type === "resync") {
      load().catch(() => {});
      return;
    }
    if (type !== "reminder" || !data.reminder) return;
    const r = data.reminder;
    const old = tbody.querySelector(`tr[data-id="${r.id}"]`);
    if (old) {
      const fresh = row(r);
      replaceKeepingFocus(old, fresh);
      flash(fresh);
    } else if (data.change === "created" && !params.get("cursor") && matches(r, params)) {
      const fresh = row(r);
      tbody.prepend(fresh);
      flash(fresh);
      while (tbody.rows.length > LIMIT) tbody.lastElementChild.remove();
      note.textContent = "";
    }
  });
  // Until a page loads (a refused cursor), the way back to the earlier pages stays.
  fill(paging, pagingLinks("#/reminders", params, FILTERS, null));
  // Bulk changes would be refused for the same filter the list was.
  if (!(await loadFiltered(filters, load)) && bulk) bulk.hidden = true;
}
