// The logged-in screen: sidebar (conversations, contacts, find a user),
// the open conversation, the connection banner and notices.
//
// Rendering is "state in, DOM out" on every store change, coalesced by the
// store into one call per burst. The lists are small (conversations and
// contacts of one user), so they are simply rebuilt; the message list,
// which can be long, reuses nodes (chat.ts).
//
// The open conversation is in the URL hash (#/c/<id>), so a reload comes
// back to it and the browser's Back button leaves it (on a phone: back to
// the list).

import { ApiError } from "../api";
import { idText, parseId, type Id } from "../ids";
import type { ChatStore, Conversation, Person } from "../store";
import { ChatView } from "./chat";
import { avatar, h, setChildren } from "./dom";
import { presenceText, shortWhen } from "./format";
import { openCreateGroup, openMembers } from "./groups";

export function mountApp(root: HTMLElement, store: ChatStore, onLogout: () => void): () => void {
  let tab: "chats" | "contacts" = "chats";

  // ---- sidebar ----
  const meName = h("span", { class: "me-name" });
  const meHandle = h("small", { class: "me-handle" });
  const meAvatar = h("span", { class: "me-avatar" });
  const logout = h("button", { type: "button", class: "ghost", "data-testid": "logout" }, "Log out");
  logout.addEventListener("click", () => onLogout());

  const banner = h("div", { class: "conn-banner", role: "status", hidden: true });
  const bannerText = h("span");
  const retryNow = h("button", { type: "button", class: "link" }, "Retry now");
  retryNow.addEventListener("click", () => store.conn.retryNow());
  banner.append(bannerText, " ", retryNow);

  const tabChats = h("button", { type: "button", role: "tab", class: "tab", "data-tab": "chats" }, "Chats", h("span", { class: "badge total" }));
  const tabContacts = h("button", { type: "button", role: "tab", class: "tab", "data-tab": "contacts" }, "Contacts");
  for (const t of [tabChats, tabContacts]) {
    t.addEventListener("click", () => {
      tab = t.dataset.tab as typeof tab;
      render();
    });
  }

  const convList = h("ul", { class: "conv-list", "aria-label": "Conversations" });
  const newGroup = h("button", { type: "button", class: "secondary", "data-testid": "new-group" }, "+ New group");
  newGroup.addEventListener("click", () => openCreateGroup(store, (id) => go(id)));
  const chatsPanel = h("section", { class: "panel", role: "tabpanel" }, h("div", { class: "panel-actions" }, newGroup), convList);

  const findInput = h("input", { name: "find", placeholder: "Find a user by name", "aria-label": "Find a user by name", autocapitalize: "none", spellcheck: "false" });
  const findButton = h("button", { type: "submit", class: "secondary" }, "Find");
  const findForm = h("form", { class: "inline-form find" }, findInput, findButton);
  const findResult = h("div", { class: "find-result", "aria-live": "polite" });
  const contactList = h("ul", { class: "contact-list", "aria-label": "Contacts" });
  const contactsPanel = h("section", { class: "panel", role: "tabpanel" }, findForm, findResult, contactList);

  findForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = findInput.value.trim();
    if (!name) return;
    findResult.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const u = await store.api.findUser(name);
      const id = parseId(u.user_id);
      const isMe = id === store.me.id;
      const known = store.people.get(id)?.isContact;
      const add = h("button", { type: "button", class: "primary" }, "Add contact");
      add.addEventListener("click", () =>
        act(add, async () => {
          await store.addContact(id);
          notice(`${u.display_name} is now a contact.`, "info");
          findResult.replaceChildren();
          findInput.value = "";
        }),
      );
      const message = h("button", { type: "button", class: "secondary" }, "Message");
      message.addEventListener("click", () => act(message, () => openDirect(id)));
      findResult.replaceChildren(
        h(
          "div",
          { class: "person-card" },
          avatar(u.display_name),
          h("div", { class: "person-text" }, h("strong", null, u.display_name), h("small", null, `@${u.name}`)),
          isMe ? h("small", { class: "muted" }, "That's you") : [known ? null : add, message],
        ),
      );
    } catch (e) {
      const err = e as ApiError;
      findResult.replaceChildren(
        h("p", { class: "form-error", role: "alert" }, err.code === "not_found" ? `There is no user named “${name}”.` : err.message),
      );
    }
  });

  const sidebar = h(
    "aside",
    { class: "sidebar" },
    h("header", { class: "me" }, meAvatar, h("div", { class: "me-text" }, meName, meHandle), logout),
    banner,
    h("nav", { class: "tabs", role: "tablist" }, tabChats, tabContacts),
    chatsPanel,
    contactsPanel,
  );

  // ---- chat and notices ----
  const chat = new ChatView(store, {
    back: () => go(null),
    showMembers: (conv) => openMembers(store, conv),
  });
  const toasts = h("div", { class: "toasts", "aria-live": "assertive" });
  const shell = h("div", { class: "app" }, sidebar, chat.el, toasts);
  root.replaceChildren(shell);

  function notice(text: string, kind: "info" | "error"): void {
    const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
    const dismiss = h("button", { type: "button", class: "ghost", "aria-label": "Dismiss" }, "✕");
    dismiss.addEventListener("click", () => t.remove());
    t.append(dismiss);
    toasts.append(t);
    setTimeout(() => t.remove(), kind === "error" ? 10_000 : 5_000);
  }
  store.onNotice = notice;

  /** Runs a button's action: disabled meanwhile, errors shown as notices. */
  async function act(button: HTMLButtonElement, fn: () => Promise<unknown>): Promise<void> {
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      notice((e as Error).message, "error");
    } finally {
      button.disabled = false;
    }
  }

  async function openDirect(userId: Id): Promise<void> {
    go(await store.openDirect(userId));
  }

  // ---- routing ----
  function go(id: Id | null): void {
    const hash = id === null ? "" : `#/c/${idText(id)}`;
    // pushState, not location.hash: no hashchange round trip, and "" leaves no bare "#".
    if (location.hash !== hash) history.pushState(null, "", location.pathname + location.search + hash);
    route();
  }
  function route(): void {
    const m = /^#\/c\/(\d{1,20})$/.exec(location.hash);
    const id = m ? BigInt(m[1]) : null;
    // A conversation not (yet) in the list shows nothing; it opens once listed.
    const target = id !== null && store.conversations.has(id) ? id : null;
    if (target !== store.openId) store.open(target);
  }
  const onHash = () => route();
  window.addEventListener("hashchange", onHash);

  // ---- render ----
  function convItem(c: Conversation): HTMLElement {
    const unread = c.id === store.openId && document.visibilityState === "visible" ? 0 : store.unread(c);
    const peer = c.peerId !== undefined ? store.people.get(c.peerId) : undefined;
    const last = c.lastMessage;
    const lastText = last
      ? `${c.kind === "group" || last.senderId === store.me.id ? store.nameOf(last.senderId) + ": " : ""}${last.body.slice(0, 120)}`
      : c.kind === "group"
        ? "Group created"
        : "No messages yet";
    const button = h(
      "button",
      {
        type: "button",
        class: "conv",
        "data-conv-id": idText(c.id),
        "aria-current": c.id === store.openId ? "true" : null,
      },
      avatar(c.title, c.kind === "direct" ? peer?.online : undefined),
      h(
        "span",
        { class: "conv-main" },
        h("span", { class: "conv-title" }, c.title, c.kind === "group" ? h("small", { class: "tag" }, "group") : null),
        h("span", { class: "conv-last" }, lastText),
      ),
      h(
        "span",
        { class: "conv-side" },
        h("time", null, shortWhen(c.lastActivity)),
        unread ? h("span", { class: "badge", "data-testid": "unread", "aria-label": `${unread} unread` }, String(unread)) : null,
      ),
    );
    button.addEventListener("click", () => go(c.id));
    return h("li", null, button);
  }

  function contactItem(p: Person): HTMLElement {
    const message = h("button", { type: "button", class: "secondary" }, "Message");
    message.addEventListener("click", () => act(message, () => openDirect(p.id)));
    const remove = h("button", { type: "button", class: "ghost danger", "aria-label": `Remove ${p.displayName}` }, "Remove");
    remove.addEventListener("click", () => act(remove, () => store.removeContact(p.id)));
    return h(
      "li",
      { class: "contact", "data-user-id": idText(p.id), "data-online": p.online ? "true" : "false" },
      avatar(p.displayName, p.online ?? false),
      h(
        "div",
        { class: "person-text" },
        h("strong", null, p.displayName),
        h("small", { class: "presence" }, presenceText(p.online ?? false, p.lastSeenMs)),
      ),
      message,
      remove,
    );
  }

  function renderBanner(): void {
    const s = store.connState;
    banner.hidden = s.phase === "online" || s.phase === "stopped";
    banner.dataset.phase = s.phase;
    retryNow.hidden = s.phase !== "offline";
    if (s.phase === "connecting") bannerText.textContent = s.attempt ? "Reconnecting…" : "Connecting…";
    else if (s.phase === "offline") {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      bannerText.textContent = `Offline: ${s.reason}. Retrying in ${secs} s.`;
    }
  }

  function render(): void {
    if (!store.ready) return;
    meName.textContent = store.me.displayName;
    meHandle.textContent = `@${store.me.name}`;
    meAvatar.replaceChildren(avatar(store.me.displayName, store.connState.phase === "online"));
    renderBanner();

    tabChats.setAttribute("aria-selected", String(tab === "chats"));
    tabContacts.setAttribute("aria-selected", String(tab === "contacts"));
    chatsPanel.hidden = tab !== "chats";
    contactsPanel.hidden = tab !== "contacts";

    const convs = store.sortedConversations();
    let total = 0;
    for (const c of convs) if (c.id !== store.openId) total += store.unread(c);
    tabChats.querySelector(".badge")!.textContent = total ? String(total) : "";
    setChildren(
      convList,
      convs.length
        ? convs.map(convItem)
        : [h("li", { class: "empty" }, "No conversations yet. Find someone under Contacts, or create a group.")],
    );
    const contacts = store.contacts();
    setChildren(
      contactList,
      contacts.length ? contacts.map(contactItem) : [h("li", { class: "empty" }, "No contacts yet. Find a user by name above.")],
    );

    route();
    shell.classList.toggle("chat-open", store.openId !== null);
    chat.render();
    const open = store.openConversation();
    document.title = total ? `(${total}) chatcore` : open ? `${open.title} · chatcore` : "chatcore";
  }
  const unsubscribe = store.subscribe(render);
  // Relative times ("last seen 3 min ago") and the retry countdown age.
  const clockTimer = setInterval(() => {
    if (store.connState.phase === "offline") renderBanner();
  }, 1000);
  const slowTimer = setInterval(render, 30_000);
  const onVisible = () => {
    if (document.visibilityState === "visible") {
      const open = store.openConversation();
      if (open) store.maybeMarkRead(open);
      // Membership changes are not pushed: a returning user gets a fresh list.
      if (store.ready) store.scheduleRefresh(0);
      render();
    }
  };
  document.addEventListener("visibilitychange", onVisible);
  // Closing the tab within the MarkRead debounce must not leave messages unread.
  const onHide = () => store.flushReads();
  window.addEventListener("pagehide", onHide);
  render();

  return () => {
    unsubscribe();
    clearInterval(clockTimer);
    clearInterval(slowTimer);
    window.removeEventListener("hashchange", onHash);
    document.removeEventListener("visibilitychange", onVisible);
    window.removeEventListener("pagehide", onHide);
  };
}
