// Paging a list the API pages forward only (next_cursor). The URL holds the cursor of the page
// on screen and, in `back`, those of the pages before it ("" for the first page), so "Previous
// page" is a link like "Next page" and a reload or bookmark keeps both. A page opened from a
// bare cursor (no `back`) does not know what came before: it offers "First page" alone.

import { h } from "./dom.js";

// `route` with the filters in `base`, and a cursor with its stack of earlier pages.
function href(route, base, cursor, back) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(base)) if (v) q.set(k, v);
  if (cursor) q.set("cursor", cursor);
  if (cursor && back) q.set("back", back.join(","));
  const s = q.toString();
  return route + (s ? "?" + s : "");
}

// The paging links of the page `params` shows, whose filters are `names`; `next` is the API's
// next_cursor (null on the last page, or when the page did not load).
export function pagingLinks(route, params, names, next) {
  const base = Object.fromEntries(names.map((n) => [n, params.get(n)]));
  const cursor = params.get("cursor");
  const back = cursor && params.has("back") ? params.get("back").split(",") : null;
  const previousIsFirst = back && back.length === 1;
  return [
    cursor && !previousIsFirst ? h("a", { href: href(route, base) }, "First page") : null,
    back ? h("a", { href: href(route, base, back.at(-1), back.slice(0, -1)), rel: "prev" }, "Previous page") : null,
    next ? h("a", { href: href(route, base, next, cursor ? back && [...back, cursor] : [""]), rel: "next" }, "Next page") : null,
  ];
}
