// The open conversation: header, message list with scroll-back, composer.
//
// The message list is rendered by key and reuses its nodes: a message is
// keyed by sender and client id, so the bubble written while "sending" is
// the same node that turns "sent" when the Ack arrives, and prepending an
// older page moves no existing node (the scroll position is then restored
// by the height that was added above).

import { codePointLength, idText, type Id } from "../ids";
import type { ChatStore, Conversation, Msg, Pending } from "../store";
import { avatar, h, setChildren } from "./dom";
import { clock, dayHeading, dayKey, presenceText } from "./format";

/** Bodies longer than this are shown folded, with a button to unfold. */
const FOLD_CHARS = 3000;
/** How close to the top (px) scrolling triggers loading the previous page. */
const LOAD_OLDER_MARGIN = 400;

interface Item {
  key: string;
  msg?: Msg;
  pending?: Pending;
}

export class ChatView {
  readonly el = h("section", { class: "chat", "aria-label": "Conversation" });
  private convId: Id | null = null;
  private nodes = new Map<string, HTMLElement>();
  private list = h("ol", { class: "msg-list", "aria-live": "polite" });
  private scroller = h("div", { class: "messages", tabindex: "0" });
  private historyStatus = h("div", { class: "history-status" });
  private headTitle = h("h2", { class: "chat-title" });
  private headSub = h("p", { class: "chat-sub" });
  private headAvatar = h("span");
  private membersButton = h("button", { type: "button", class: "ghost", "data-testid": "members-button" }, "Members");
  private input = h("textarea", {
    rows: 1,
    placeholder: "Write a message…",
    "aria-label": "Message",
    enterkeyhint: "send",
  });
  private composerError = h("p", { class: "composer-error", role: "alert" });
  private counter = h("span", { class: "counter", "aria-live": "polite" });
  private drafts = new Map<Id, string>();
  private stickToBottom = true;
  private lastFirstKey = "";
  private built = false;

  constructor(
    private readonly store: ChatStore,
    private readonly actions: { back(): void; showMembers(conv: Conversation): void },
  ) {
    this.scroller.append(this.historyStatus, this.list);
    this.scroller.addEventListener("scroll", () => this.onScroll());
    this.input.addEventListener("keydown", (ev) => {
      // Enter sends; Shift+Enter is a new line; Enter while an IME is composing is the IME's.
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.composerError.textContent = "";
      this.autosize();
      this.updateCounter();
    });
    this.membersButton.addEventListener("click", () => {
      const conv = this.store.openConversation();
      if (conv) this.actions.showMembers(conv);
    });
  }

  /** Builds the view for the open conversation (or the placeholder). */
  render(): void {
    const conv = this.store.openConversation();
    if (!this.built || (conv?.id ?? null) !== this.convId) this.switchTo(conv);
    if (!conv) return;
    this.renderHeader(conv);
    this.renderMessages(conv);
  }

  private switchTo(conv: Conversation | undefined): void {
    this.built = true;
    if (this.convId !== null) this.drafts.set(this.convId, this.input.value);
    this.convId = conv?.id ?? null;
    this.nodes = new Map();
    this.list.replaceChildren();
    this.stickToBottom = true;
    this.lastFirstKey = "";
    this.composerError.textContent = "";
    if (!conv) {
      this.el.replaceChildren(
        h(
          "div",
          { class: "placeholder" },
          h("p", { class: "placeholder-big" }, "💬"),
          h("p", null, "Choose a conversation, or find someone under Contacts to start one."),
        ),
      );
      return;
    }
    this.input.value = this.drafts.get(conv.id) ?? "";
    this.membersButton.hidden = conv.kind !== "group";
    const back = h("button", { type: "button", class: "ghost back", "aria-label": "Back to conversations" }, "‹");
    back.addEventListener("click", () => this.actions.back());
    const send = h("button", { type: "submit", class: "primary send", "aria-label": "Send" }, "Send");
    const form = h("form", { class: "composer" }, this.input, send);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    this.el.replaceChildren(
      h(
        "header",
        { class: "chat-head" },
        back,
        this.headAvatar,
        h("div", { class: "chat-head-text" }, this.headTitle, this.headSub),
        this.membersButton,
      ),
      this.scroller,
      h("div", { class: "composer-wrap" }, this.composerError, form, this.counter),
    );
    this.autosize();
    this.updateCounter();
    // On a phone the keyboard would cover half the screen at once: only focus on wide screens.
    if (window.matchMedia("(min-width: 721px)").matches) this.input.focus();
  }

  private renderHeader(conv: Conversation): void {
    this.headTitle.textContent = conv.title;
    let sub = "";
    let online: boolean | undefined;
    if (conv.kind === "direct" && conv.peerId !== undefined) {
      const peer = this.store.people.get(conv.peerId);
      online = peer?.online;
      sub = presenceText(peer?.online, peer?.lastSeenMs);
      if (peer && peer.name !== conv.title) sub = `@${peer.name}${sub ? " · " + sub : ""}`;
    } else {
      sub = "Group · open Members to see who is online";
    }
    this.headSub.textContent = sub;
    const a = avatar(conv.title, online);
    a.classList.add("small");
    this.headAvatar.replaceWith(a);
    this.headAvatar = a;
  }

  private items(conv: Conversation): Item[] {
    const items: Item[] = conv.messages.map((m) => ({ key: `${m.senderId}:${m.cmid || m.seq}`, msg: m }));
    for (const p of this.store.pendingIn(conv.id)) items.push({ key: `${this.store.me.id}:${p.cmid}`, pending: p });
    return items;
  }

  private renderMessages(conv: Conversation): void {
    const s = this.scroller;
    const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    const prevHeight = s.scrollHeight;
    const prevTop = s.scrollTop;

    const items = this.items(conv);
    const live = new Set<string>();
    const children: HTMLElement[] = [];
    let prevDay = "";
    let prevSender: Id | null = null;
    for (const it of items) {
      const when = it.msg?.sentAtMs ?? it.pending!.createdAt;
      const day = dayKey(when);
      if (day !== prevDay) {
        const key = `day:${day}`;
        let node = this.nodes.get(key);
        if (!node) {
          node = h("li", { class: "day" }, h("span", null, dayHeading(when)));
          this.nodes.set(key, node);
        }
        live.add(key);
        children.push(node);
        prevDay = day;
        prevSender = null;
      }
      const sender = it.msg?.senderId ?? this.store.me.id;
      const node = this.messageNode(conv, it, sender !== prevSender);
      live.add(it.key);
      children.push(node);
      prevSender = sender;
    }
    for (const key of this.nodes.keys()) if (!live.has(key)) this.nodes.delete(key);
    setChildren(this.list, children);

    // History status line above the first message.
    const older = this.store.hasOlder(conv);
    this.historyStatus.textContent = conv.loadError
      ? `Could not load messages: ${conv.loadError}`
      : conv.loadingOlder
        ? "Loading messages…"
        : older
          ? ""
          : conv.loaded
            ? conv.messages.length
              ? "This is the beginning of the conversation."
              : "No messages yet. Say hello!"
            : "";
    this.historyStatus.classList.toggle("error", !!conv.loadError);

    const firstKey = children.find((c) => c.classList.contains("msg"))?.dataset.key ?? "";
    const prepended = this.lastFirstKey !== "" && firstKey !== this.lastFirstKey && this.nodes.has(this.lastFirstKey);
    this.lastFirstKey = firstKey;
    if (prepended) {
      // Keep the message that was at the top where it was.
      s.scrollTop = prevTop + (s.scrollHeight - prevHeight);
    } else if (this.stickToBottom || atBottom) {
      s.scrollTop = s.scrollHeight;
    }
    // A first page that does not fill the screen cannot be scrolled: load more right away.
    if (older && !conv.loadingOlder && s.scrollHeight <= s.clientHeight + LOAD_OLDER_MARGIN) {
      void this.store.loadOlder(conv);
    }
  }

  private messageNode(conv: Conversation, it: Item, firstOfRun: boolean): HTMLElement {
    const mine = it.pending !== undefined || it.msg!.senderId === this.store.me.id;
    let node = this.nodes.get(it.key);
    if (!node) {
      const body = it.msg?.body ?? it.pending!.body;
      const text = h("p", { class: "body" });
      const long = [...body.slice(0, FOLD_CHARS + 1)].length > FOLD_CHARS;
      if (long) {
        text.textContent = body.slice(0, FOLD_CHARS) + "…";
        const more = h("button", { type: "button", class: "link more" }, `Show all ${body.length.toLocaleString("en-US")} characters`);
        more.addEventListener("click", () => {
          text.textContent = body;
          more.remove();
        });
        node = h("li", { class: "msg" }, h("div", { class: "bubble" }, text, more, h("span", { class: "meta" })));
      } else {
        text.textContent = body;
        node = h("li", { class: "msg" }, h("div", { class: "bubble" }, text, h("span", { class: "meta" })));
      }
      node.dataset.key = it.key;
      this.nodes.set(it.key, node);
    }
    // The parts that change: state, sequence number, sender line. Most
    // renders change none of them for most messages: compare a signature
    // first and leave the DOM alone.
    const state = it.pending ? it.pending.state : "sent";
    const showSender = conv.kind === "group" && !mine && firstOfRun;
    const sig = [state, it.msg?.seq ?? "", showSender ? this.store.nameOf(it.msg!.senderId) : "",
      it.pending ? String(this.store.conn.online) : "", it.pending?.error ?? ""].join("|");
    if (node.dataset.sig === sig) return node;
    node.dataset.sig = sig;
    node.className = `msg ${mine ? "mine" : "theirs"} ${mine ? state : ""}`.trim();
    if (it.msg) node.dataset.seq = String(it.msg.seq);
    else delete node.dataset.seq;

    const bubble = node.querySelector(".bubble")!;
    let senderLine = node.querySelector<HTMLElement>(".sender");
    if (showSender) {
      const name = this.store.nameOf(it.msg!.senderId);
      if (!senderLine) {
        senderLine = h("span", { class: "sender" });
        bubble.prepend(senderLine);
      }
      senderLine.textContent = name;
    } else senderLine?.remove();

    const meta = node.querySelector(".meta")!;
    const when = it.msg?.sentAtMs ?? it.pending!.createdAt;
    const status =
      !mine ? "" : it.pending?.state === "failed" ? "failed" : it.pending ? (this.store.conn.online ? "sending…" : "waiting for connection…") : "✓ sent";
    const time = h("time", { datetime: new Date(when).toISOString() }, clock(when));
    if (status) meta.replaceChildren(time, h("span", { class: "status", "data-testid": "msg-status" }, status));
    else meta.replaceChildren(time);

    let fail = node.querySelector(".fail");
    if (it.pending?.state === "failed") {
      const p = it.pending;
      if (!fail) {
        const retry = h("button", { type: "button", class: "link" }, "Retry");
        retry.addEventListener("click", () => this.store.retry(p.cmid));
        const discard = h("button", { type: "button", class: "link" }, "Discard");
        discard.addEventListener("click", () => this.store.discard(p.cmid));
        fail = h("div", { class: "fail", role: "alert" }, h("span", { class: "fail-text" }), " ", retry, " · ", discard);
        node.append(fail);
      }
      fail.querySelector(".fail-text")!.textContent = `Not sent. ${p.error ?? ""}`;
    } else fail?.remove();
    return node;
  }

  private onScroll(): void {
    const s = this.scroller;
    this.stickToBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    const conv = this.store.openConversation();
    if (conv && s.scrollTop < LOAD_OLDER_MARGIN && this.store.hasOlder(conv) && !conv.loadingOlder) {
      void this.store.loadOlder(conv);
    }
  }

  private submit(): void {
    const conv = this.store.openConversation();
    if (!conv) return;
    const text = this.input.value;
    const error = this.store.send(conv.id, text);
    if (error) {
      this.composerError.textContent = error;
      return;
    }
    this.input.value = "";
    this.drafts.delete(conv.id);
    this.stickToBottom = true;
    this.autosize();
    this.updateCounter();
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  private updateCounter(): void {
    const max = this.store.maxBodyChars;
    // Cheap upper bound first: UTF-16 units >= code points.
    const units = this.input.value.length;
    if (units < max * 0.9) {
      this.counter.textContent = "";
      return;
    }
    const n = codePointLength(this.input.value);
    this.counter.textContent = `${n.toLocaleString("en-US")} / ${max.toLocaleString("en-US")}`;
    this.counter.classList.toggle("over", n > max);
  }

  /** For tests and links: which conversation is shown. */
  get shownId(): string | null {
    return this.convId === null ? null : idText(this.convId);
  }
}
