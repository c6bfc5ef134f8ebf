// Dialogs for groups: create one, and see/change its members.
//
// Group presence is not pushed (DESIGN.md §2.7): the member list fetches
// it when opened (GET /api/v1/groups/{id} returns members with presence)
// and offers a refresh.

import type { ApiError, GroupJson, MemberJson } from "../api";
import { idText, type Id } from "../ids";
import type { ChatStore, Conversation } from "../store";
import { avatar, h } from "./dom";
import { presenceText } from "./format";

function dialog(title: string, ...content: Node[]): { dlg: HTMLDialogElement; close(): void } {
  const closeButton = h("button", { type: "button", class: "ghost close", "aria-label": "Close" }, "✕");
  const dlg = h("dialog", { class: "dialog" }, h("header", null, h("h2", null, title), closeButton), ...content);
  const close = () => {
    dlg.close();
    dlg.remove();
  };
  closeButton.addEventListener("click", close);
  dlg.addEventListener("cancel", () => setTimeout(close));
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, close };
}

export function openCreateGroup(store: ChatStore, onCreated: (conv: Id) => void): void {
  const error = h("p", { class: "form-error", role: "alert" });
  const name = h("input", { name: "group-name", required: true, maxlength: 128, placeholder: "e.g. Weekend trip" });
  const contacts = store.contacts();
  const boxes = contacts.map((p) => {
    const box = h("input", { type: "checkbox", value: idText(p.id) });
    return { p, box, row: h("label", { class: "check-row" }, box, avatar(p.displayName, p.online), h("span", null, p.displayName, h("small", null, ` @${p.name}`))) };
  });
  const create = h("button", { type: "submit", class: "primary" }, "Create group");
  const form = h(
    "form",
    { class: "dialog-body" },
    h("label", { class: "field" }, h("span", null, "Group name"), name),
    h("fieldset", { class: "members-pick" }, h("legend", null, "Members"),
      boxes.length ? boxes.map((b) => b.row) : h("p", { class: "muted" }, "Add contacts first (Contacts tab); you can also add members later.")),
    error,
    create,
  );
  const { close } = dialog("New group", form);
  name.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) {
      error.textContent = "Give the group a name.";
      return;
    }
    create.disabled = true;
    try {
      const members = boxes.filter((b) => b.box.checked).map((b) => b.p.id);
      const conv = await store.createGroup(name.value.trim(), members);
      close();
      onCreated(conv);
    } catch (e) {
      error.textContent = (e as Error).message;
    } finally {
      create.disabled = false;
    }
  });
}

export function openMembers(store: ChatStore, conv: Conversation): void {
  if (conv.groupId === undefined) return;
  const groupId = idText(conv.groupId);
  const list = h("ul", { class: "member-list", "aria-label": "Members" });
  const status = h("p", { class: "muted" }, "Loading members…");
  const error = h("p", { class: "form-error", role: "alert" });
  const addName = h("input", { name: "member-name", placeholder: "User name", autocapitalize: "none", spellcheck: "false" });
  const addButton = h("button", { type: "submit", class: "primary" }, "Add");
  const addForm = h("form", { class: "inline-form", hidden: true }, addName, addButton);
  const suggestions = h("datalist", { id: `contacts-${groupId}` });
  addName.setAttribute("list", suggestions.id);
  const refresh = h("button", { type: "button", class: "ghost" }, "Refresh");
  const body = h("div", { class: "dialog-body" }, status, list, error, h("h3", { class: "add-title", hidden: true }, "Add a member"), addForm, suggestions, refresh);
  const { close } = dialog(`Members of ${conv.title}`, body);

  const load = async () => {
    error.textContent = "";
    let g: GroupJson;
    try {
      g = await store.api.group(groupId);
    } catch (e) {
      status.textContent = "";
      error.textContent = (e as Error).message;
      return;
    }
    const mine = g.members.find((m) => m.user_id === idText(store.me.id));
    const canManage = mine?.role === "owner" || mine?.role === "admin";
    const online = g.members.filter((m) => m.online).length;
    status.textContent = `${g.members.length} member${g.members.length === 1 ? "" : "s"}, ${online} online`;
    list.replaceChildren(...g.members.map((m) => memberRow(m, canManage, mine?.user_id === m.user_id)));
    for (const m of g.members) store.applyPresence(m);
    body.querySelector<HTMLElement>(".add-title")!.hidden = !canManage;
    addForm.hidden = !canManage;
    const inGroup = new Set(g.members.map((m) => m.user_id));
    suggestions.replaceChildren(
      ...store.contacts().filter((p) => !inGroup.has(idText(p.id))).map((p) => h("option", { value: p.name }, p.displayName)),
    );
  };

  const memberRow = (m: MemberJson, canManage: boolean, isMe: boolean): HTMLElement => {
    const row = h(
      "li",
      { class: "member", "data-user-id": m.user_id },
      avatar(m.display_name, m.online),
      h(
        "div",
        { class: "member-text" },
        h("span", { class: "member-name" }, isMe ? `${m.display_name} (you)` : m.display_name),
        h("small", { class: "presence" }, `${m.role} · ${presenceText(m.online, m.last_seen ?? 0)}`),
      ),
    );
    const removable = m.role !== "owner" && (canManage || isMe);
    if (removable) {
      const remove = h("button", { type: "button", class: "ghost danger" }, isMe ? "Leave" : "Remove");
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await store.api.removeMember(groupId, m.user_id);
          if (isMe) {
            await store.refreshConversations();
            close();
          } else await load();
        } catch (e) {
          error.textContent = (e as Error).message;
          remove.disabled = false;
        }
      });
      row.append(remove);
    }
    return row;
  };

  addForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const name = addName.value.trim();
    if (!name) return;
    addButton.disabled = true;
    try {
      const user = await store.api.findUser(name).catch((e: ApiError) => {
        throw e.code === "not_found" ? new Error(`There is no user named “${name}”.`) : e;
      });
      await store.api.addMember(groupId, user.user_id);
      addName.value = "";
      await load();
    } catch (e) {
      error.textContent = (e as Error).message;
    } finally {
      addButton.disabled = false;
    }
  });
  refresh.addEventListener("click", () => void load());
  void load();
}
