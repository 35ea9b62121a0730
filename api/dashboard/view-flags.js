// Flags: every status flag with a switch. Turning one true stops the reminders waiting on it, in
// the same transaction, for good: the view asks first, then lists them.

import { api, query, canWrite } from "./api.js";
import { h, fill, moreButton, field, input, status, time, flash, replaceKeepingFocus, rowAction, tableHead, labelledRow } from "./dom.js";
import { checkRequired, submitOnce } from "./form-errors.js";
import { entity } from "./format.js";

const COLUMNS = ["Value", "Changed", "Reminders"];

export async function flagsView(main, ctx) {
  const tbody = h("tbody");
  const stopped = h("section", { id: "stopped", "aria-live": "polite" });
  const more = h("div", { class: "paging" });
  const rowError = h("p", { id: "flags-error", class: "error", role: "alert" });
  const form = h("form", { id: "flag-form", class: "needs-write", novalidate: true },
    field("Flag key", input("key", { required: true, maxlength: 200 })),
    h("div", { class: "field" },
      h("input", { type: "checkbox", id: "f-value", name: "value", checked: true }),
      h("label", { for: "f-value" }, " true (stops the reminders waiting on it)")),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Set flag"));

  fill(main, h("h1", {}, "Flags"),
    h("p", {}, "A flag turning true completes every live reminder whose stop condition names it."),
    rowError,
    h("div", { class: "table-wrap", role: "region", "aria-label": "Flags", tabindex: 0 },
      h("table", { id: "flags", class: "stack-on-phone" },
        tableHead(["Key", ...COLUMNS]),
        tbody)),
    more, stopped, h("h2", { class: "needs-write" }, "Set a flag"), form);

  // The key heads its row; on a phone the row stacks into a card under it.
  function row(f) {
    const tr = labelledRow({ "data-key": f.key }, COLUMNS, [
      // A switch: named by its flag, its state is aria-checked (the text beside the track says
      // it to the eye).
      h("button", {
        // A read-only token sees the value, and cannot flip it.
        type: "button", class: "toggle", role: "switch", "aria-checked": String(f.value), "aria-label": f.key, disabled: !canWrite(),
        onclick: () => rowAction(rowError, `Could not set ${f.key}`, () => set(f.key, !f.value)),
      }, h("span", { class: "track", "aria-hidden": "true" }), f.value ? "true" : "false"),
      time(f.updated_at),
      h("a", { href: "#/reminders" + query({ stop_condition_value: f.key }) }, "its reminders")]);
    tr.prepend(h("th", { scope: "row" }, f.key));
    return tr;
  }

  function upsert(f) {
    const fresh = row(f);
    tbody.querySelector("tr.none")?.remove();
    const old = tbody.querySelector(`tr[data-key="${CSS.escape(f.key)}"]`);
    if (old) replaceKeepingFocus(old, fresh);
    else tbody.prepend(fresh);
    flash(fresh);
  }

  async function load(cursor) {
    const page = await api("GET", "/v1/flags" + query({ limit: 100, cursor }));
    if (!cursor) fill(tbody);
    // A flag set live since the first page sits on top until its page comes: then it moves to
    // its place, once.
    const shown = new Map([...tbody.querySelectorAll("tr[data-key]")].map((tr) => [tr.dataset.key, tr]));
    for (const f of page.items) {
      shown.get(f.key)?.remove();
      tbody.append(row(f));
    }
    if (!tbody.rows.length) fill(tbody, h("tr", { class: "none" }, h("td", { colspan: COLUMNS.length + 1 }, "No flags yet.")));
    fill(more, page.next_cursor
      ? moreButton(more, "More flags", () => load(page.next_cursor)) : null);
  }

  async function showStopped(f) {
    if (!f.value) {
      fill(stopped);
      return;
    }
    const page = await api("GET", "/v1/reminders" + query({ stop_condition_value: f.key, status: "COMPLETED", limit: 50 }));
    const now = page.items.filter((r) => r.completed_reason === "stop_condition" && r.finished_at >= f.updated_at);
    fill(stopped, h("h2", {}, `Stopped by ${f.key}`),
      now.length
        ? h("ul", {}, now.map((r) => h("li", {}, h("a", { href: `#/reminders/${r.id}` }, `#${r.id}`), " ", entity(r), ` · ${r.event_type} `, status(r.status))))
        : h("p", {}, "No reminder was waiting on it."),
      // The first 50 only: the list has them all.
      page.next_cursor
        ? h("p", {}, "These are the first 50. ", h("a", { href: "#/reminders" + query({ stop_condition_value: f.key, status: "COMPLETED" }) }, "All the reminders it completed"), ".")
        : null);
  }

  // Counting the reminders waiting on a flag is not cheap (the list's stop flag filter reads the
  // whole table: README, "On big tables"), so the confirm names the flag and what it does.
  async function set(key, value) {
    if (value && !confirm(`Set ${key} to true? Every live reminder waiting on it is completed, and that cannot be undone.`)) return null;
    const f = await api("PUT", `/v1/flags/${encodeURIComponent(key)}`, { value });
    upsert(f);
    await showStopped(f);
    return f;
  }

  submitOnce(form, async () => {
    if (!checkRequired(form)) return;
    await set(form.elements.key.value.trim(), form.elements.value.checked);
  }, "key");

  ctx.subscribe((type, data) => {
    if (type === "resync") load().catch(() => {});
    if (type === "flag" && data.flag) upsert(data.flag);
  });
  await load();
}
