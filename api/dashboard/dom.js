// Building the page without innerHTML: every value from the API becomes text, never markup.

// h("a", {href: "#/x", class: "y"}, "text", child): an element with attributes and children.
// An attribute that is null, undefined or false is left out; on* attributes become listeners.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces what `el` holds.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A time as the browser's locale shows it, in the browser's zone and naming it (a schedule's
// words name the schedule's zone, which may be another), with the exact value on hover.
export function time(value) {
  if (!value) return "";
  return h("time", { datetime: value, title: value }, timeText(value));
}

// The same as text (a confirm's message).
export function timeText(value) {
  return new Date(value).toLocaleString(undefined, { timeZoneName: "short" });
}

// A labelled form field with the place its error goes (aria-describedby), so a screen reader
// reads the error with the field. `control` is an <input>, <select> or <textarea>; its id is
// "f-<name>".
export function field(label, control, hint) {
  const id = control.id;
  const errorId = id + "-error";
  const hintId = hint ? id + "-hint" : null;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h("div", { class: "field", "data-field": control.name },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null,
    h("p", { id: errorId, class: "error field-error" }));
}

export function input(name, attrs = {}) {
  return h("input", { id: "f-" + name, name, ...attrs });
}

export function select(name, options, attrs = {}) {
  return h("select", { id: "f-" + name, name, ...attrs },
    options.map((o) => (Array.isArray(o) ? h("option", { value: o[0] }, o[1]) : h("option", { value: o }, o))));
}

export function textarea(name, attrs = {}) {
  return h("textarea", { id: "f-" + name, name, rows: 3, ...attrs });
}

// A row button's call (toggle, remove, delete): its failure is shown in `note` with what it was
// for, never left as an uncaught rejection. A 404 means the row's subject is already gone
// (removed elsewhere), so `gone`, when given, drops the stale row. Then the focus, if it fell to
// the page with its row, moves to the failure.
export async function rowAction(note, what, call, gone) {
  note.textContent = "";
  try {
    await call();
  } catch (e) {
    note.textContent = `${what}: ${e.message}`;
    if (e.status === 404 && gone) await Promise.resolve().then(gone).catch(() => {});
    focusIfLost(note);
  }
}

// Moves the focus to `el` (a message that said what happened) when it fell to the page: the
// control that had it was redrawn or removed.
export function focusIfLost(el) {
  const at = document.activeElement;
  if (at && at !== document.body && at.isConnected) return;
  if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
  el.focus();
}

// A table row of `cells` under `columns`. Each cell names its column (data-label), which a phone
// shows beside the value where a table.stack-on-phone stacks its cells; `numeric` are the
// indexes of the number columns (aligned right).
export function labelledRow(attrs, columns, cells, numeric = []) {
  return h("tr", attrs, cells.map((c, i) => {
    const td = h("td", { "data-label": columns[i], class: numeric.includes(i) ? "num" : null }, c);
    if (!hasLongWord(td.textContent)) td.classList.add("whole-words");
    return td;
  }));
}

// Whether `text` holds a run of more than 30 characters without a space. A cell without one keeps
// its words whole (its column is made as wide as its longest word); one with a long unbroken value
// (a 200-character id, a URL) wraps it anywhere, so that the table still fits the screen.
function hasLongWord(text) {
  return /\S{31}/.test(text);
}

// The head of a table with these columns.
export function tableHead(columns) {
  return h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c))));
}

// A status badge.
export function status(value) {
  return h("span", { class: "badge status-" + String(value).toLowerCase() }, value);
}

// Briefly highlights a row that changed live. The animation restarts at the next frame, not by
// forcing a layout: a forced layout per row made a burst of N live rows cost N layouts of the
// whole table (a batch of 500 froze the tab for 44 s).
export function flash(el) {
  el.classList.remove("flash");
  requestAnimationFrame(() => el.classList.add("flash"));
}

// Puts `fresh` in the place of `old` (a row updated live), keeping the keyboard focus on the
// same control if it was in `old`: a live update must not take it from someone using the page.
export function replaceKeepingFocus(old, fresh) {
  const controls = (el) => [...el.querySelectorAll("a[href], button, input, select, textarea")];
  const at = old.contains(document.activeElement) ? controls(old).indexOf(document.activeElement) : -1;
  old.replaceWith(fresh);
  if (at >= 0) controls(fresh)[at]?.focus();
}

// A button in `box` that loads more of a list (older events, more flags) into the page, `load`
// refilling `box` with the next such button. The focus, which would fall to the page with the
// button, moves to that next one, or else to a line saying the list is all shown.
export function moreButton(box, label, load) {
  return h("button", {
    type: "button",
    onclick: async (e) => {
      const focused = document.activeElement === e.currentTarget;
      await load();
      if (!focused || box.contains(document.activeElement)) return;
      let next = box.querySelector("button");
      if (!next) {
        next = h("p", { class: "hint", tabindex: -1 }, "That is all of them.");
        box.append(next);
      }
      next.focus();
    },
  }, label);
}
