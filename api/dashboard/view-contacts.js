// Contacts: where an entity's reminders without a target are delivered, by channel. The entity
// shown is in the URL (#/contacts?entity_type=&entity_id=), so a search can be bookmarked.

import { api, query } from "./api.js";
import { h, fill, field, input, select, rowAction } from "./dom.js";
import { clearErrors, checkRequired, submitOnce, showSubmitError } from "./form-errors.js";

const enc = encodeURIComponent;

export async function contactsView(main, ctx) {
  const find = h("form", { id: "contacts-find", role: "search", "aria-label": "Find an entity's contacts", novalidate: true },
    field("Entity type", input("entity_type", { required: true, maxlength: 200 })),
    field("Entity id", input("entity_id", { required: true, maxlength: 200 })),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Show contacts"));
  const list = h("section", { id: "contact-list", "aria-live": "polite" });
  const rowError = h("p", { id: "contacts-error", class: "error", role: "alert" });
  const putTitle = h("h2", { id: "contact-form-title" }, "Set an address");
  const put = h("form", { id: "contact-form", class: "needs-write", novalidate: true, hidden: true, "aria-labelledby": "contact-form-title" },
    putTitle,
    field("Channel", select("channel", ["email", "webhook"])),
    field("Address", input("address", { required: true, maxlength: 2048 }), "email: an address; webhook: an http(s) URL"),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, "Save address"));

  fill(main, h("h1", {}, "Contacts"), find, rowError, list, put);

  // What is typed in the search, which is not yet the entity listed until it is searched for.
  const typed = () => [find.elements.entity_type.value.trim(), find.elements.entity_id.value.trim()];
  for (const name of ["entity_type", "entity_id"]) find.elements[name].value = ctx.params.get(name) || "";
  // The entity whose list is on screen: what its row buttons and the address form act on.
  let shown = null;

  async function load(entity = shown) {
    const [type, id] = entity;
    const contacts = await api("GET", `/v1/contacts/${enc(type)}/${enc(id)}`);
    const items = Array.isArray(contacts) ? contacts : contacts.items || [];
    shown = entity;
    putTitle.textContent = `Set an address for ${type}/${id}`;
    fill(list, h("h2", {}, `${type}/${id}`),
      items.length
        ? h("ul", {}, items.map((c) => h("li", {}, `${c.channel}: ${c.address} `,
          h("button", { type: "button", class: "danger needs-write", "aria-label": `Remove the ${c.channel} address`, onclick: () => remove(c.channel) }, "Remove"))))
        : h("p", {}, "No contacts."));
    put.hidden = false;
  }

  // A contact removed elsewhere answers 404: the list is reloaded, which drops it.
  function remove(channel) {
    const [type, id] = shown;
    return rowAction(rowError, `Could not remove the ${channel} address`, async () => {
      await api("DELETE", `/v1/contacts/${enc(type)}/${enc(id)}/${channel}`);
      await load();
    }, load);
  }

  // The entity's list, or what is wrong with the search next to its fields.
  async function search() {
    clearErrors(find);
    try {
      await load(typed());
    } catch (err) {
      fill(list);
      shown = null;
      put.hidden = true;
      showSubmitError(find, err);
    }
  }

  // A new search goes through the URL (the router shows it); the same one again reloads here.
  find.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(find);
    if (!checkRequired(find)) return;
    const [type, id] = typed();
    const before = location.hash;
    location.hash = "#/contacts" + query({ entity_type: type, entity_id: id });
    if (location.hash === before) search();
  });

  submitOnce(put, async () => {
    if (!checkRequired(put)) return;
    const [type, id] = shown;
    await api("PUT", `/v1/contacts/${enc(type)}/${enc(id)}/${put.elements.channel.value}`, { address: put.elements.address.value.trim() });
    put.elements.address.value = "";
    await load();
  });

  if (typed()[0] && typed()[1]) await search();
}
