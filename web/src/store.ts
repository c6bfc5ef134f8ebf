// The client's state and the rules that keep it in step with the server.
//
// Sources of truth, and how they combine:
//  * A conversation's messages are identified by their conversation seq,
//    dense from 1. Each open conversation holds one contiguous window of
//    them: older pages are prepended on demand (History), live ones are
//    appended; a seq past the end of the window means "fetch what is in
//    between", a seq inside it is a duplicate. So live deliveries, catch-up
//    after a reconnect and history pages can overlap freely.
//  * Unread = last_seq - read_seq, as on the server (never a counter that
//    could drift). GET /api/v1/conversations gives both; live deliveries
//    raise last_seq; viewing a conversation, or writing in it, raises
//    read_seq and tells the server (MarkRead).
//  * The inbox cursor (highest inbox seq processed) goes into every Hello,
//    so after a reconnect the server replays exactly what this tab missed.
//  * Unacknowledged sends live in the outbox with their client ids and are
//    resent after every Welcome; the server's dedup turns a resend of
//    something it already stored into the original Ack, never a copy.

import { Api, ApiError, type ConversationJson, type MessageJson, type PresenceJson } from "./api";
import { cmidFromUuid, codePointLength, idText, newClientMsgId, parseId, type Id } from "./ids";
import * as persist from "./persist";
import {
  encodeHistory,
  encodeMarkRead,
  encodePresenceQuery,
  encodeSend,
  encodeSync,
  type Delivery,
  type ServerFrame,
  type WireMessage,
} from "./protocol";
import { Connection, Disconnected, WireError, type ConnState, type Welcome } from "./ws";

export type Msg = WireMessage;

export interface Pending {
  cmid: string;
  conversationId: Id;
  body: string;
  createdAt: number;
  state: "sending" | "failed";
  error?: string;
  attempts: number;
  inFlight: boolean;
}

export interface Conversation {
  id: Id;
  kind: "direct" | "group";
  title: string;
  peerId?: Id;
  groupId?: Id;
  lastSeq: number;
  readSeq: number;
  readSeqSent: number; // highest read seq the server has been told
  lastActivity: number;
  lastMessage: Msg | null;
  /** The loaded window, ascending and contiguous. */
  messages: Msg[];
  loaded: boolean; // the newest page has been fetched
  loadingOlder: boolean;
  loadError?: string;
}

export interface Person {
  id: Id;
  name: string;
  displayName: string;
  isContact: boolean;
  online?: boolean; // undefined: not known
  lastSeenMs?: number; // 0: never
}

export interface Me {
  id: Id;
  name: string;
  displayName: string;
}

export const PAGE_SIZE = 50;
const DEFAULT_MAX_BODY_CHARS = 100_000;

/** Debug switches for tests and troubleshooting (window.chatcore.debug). */
export const debug = {
  /** Send bodies over the limit anyway, to see the server refuse them. */
  skipLengthCheck: false,
};

const FRIENDLY_ERRORS: Record<string, string> = {
  too_large: "The message is too long for the server",
  invalid_utf8: "The message contains invalid text",
  permission_denied: "You are not allowed to write here (no longer a member?)",
  not_found: "This conversation no longer exists",
  rate_limited: "You are sending too fast",
  unavailable: "The server is busy",
  internal: "The server had an internal error",
  invalid_argument: "The server refused the message",
  unauthenticated: "You are logged out",
};

export function describeError(name: string, message: string): string {
  const friendly = FRIENDLY_ERRORS[name] ?? "The server refused the request";
  return message ? `${friendly}: ${message} (${name})` : `${friendly} (${name})`;
}

function msgFromJson(m: MessageJson): Msg {
  return {
    messageId: parseId(m.message_id),
    conversationId: parseId(m.conversation_id),
    seq: m.seq,
    senderId: parseId(m.sender_id),
    cmid: cmidFromUuid(m.client_msg_id),
    body: m.body,
    sentAtMs: m.sent_at,
  };
}

export class ChatStore {
  readonly conversations = new Map<Id, Conversation>();
  readonly people = new Map<Id, Person>();
  /** Unacknowledged sends by client id, in the order they were written. */
  readonly outbox = new Map<string, Pending>();
  me: Me;
  openId: Id | null = null;
  conn: Connection;
  connState: ConnState = { phase: "stopped" };
  maxBodyChars = DEFAULT_MAX_BODY_CHARS;
  /** Set once the first conversation list has arrived. */
  ready = false;

  private cursor: number;
  private syncing = false;
  private welcomes = 0; // the first Welcome follows start(), which just fetched everything
  private readonly listeners = new Set<() => void>();
  private notifyQueued = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly userFetches = new Map<Id, Promise<void>>();
  private readonly forwardFills = new Set<Id>();
  private wsUrl: string | null = null;

  /** Shown to the user: transient notices ("Bob added"), errors. */
  onNotice: (text: string, kind: "info" | "error") => void = () => {};
  /** The session ended (revoked, expired, logged out elsewhere). */
  onLoggedOut: (reason: string) => void = () => {};

  constructor(
    readonly api: Api,
    private readonly session: persist.SavedSession,
    private readonly deviceId: string,
  ) {
    this.me = { id: parseId(session.userId), name: session.name, displayName: session.name };
    this.cursor = persist.loadCursor(session.userId);
    for (const s of persist.loadOutbox(session.userId)) {
      this.outbox.set(s.cmid, {
        cmid: s.cmid,
        conversationId: parseId(s.conversationId),
        body: s.body,
        createdAt: s.createdAt,
        state: s.failed ? "failed" : "sending",
        error: s.failed,
        attempts: 0,
        inFlight: false,
      });
    }
    this.conn = new Connection({
      resolveUrl: () => this.resolveWsUrl(),
      hello: () => ({ token: session.token, deviceId: this.deviceId, cursor: this.cursor }),
      onWelcome: (w) => this.onWelcome(w),
      onPush: (f) => this.onPush(f),
      onState: (s) => {
        this.connState = s;
        this.changed();
      },
      onUnauthenticated: (reason) => this.onLoggedOut(reason),
    });
  }

  // ---- change notification ----

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Coalesces a burst of changes (a catch-up of hundreds of deliveries, each
   * its own WebSocket event) into one render. A short timer rather than
   * requestAnimationFrame, which never fires in a background tab: the
   * title's unread count must update there too.
   */
  changed(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    setTimeout(() => {
      this.notifyQueued = false;
      for (const fn of this.listeners) fn();
    }, 16);
  }

  // ---- start and stop ----

  async start(): Promise<void> {
    // The conversation list first, so that deliveries replayed after the
    // Hello land on known conversations; then the socket.
    const [me] = await Promise.all([
      this.api.me(),
      this.refreshContacts().catch(() => {}),
      this.refreshConversations(),
    ]);
    this.me = { id: parseId(me.user_id), name: me.name, displayName: me.display_name || me.name };
    this.rememberPerson({ user_id: me.user_id, name: me.name, display_name: me.display_name });
    this.ready = true;
    this.changed();
    this.conn.start();
  }

  stop(): void {
    this.conn.stop();
    clearTimeout(this.refreshTimer);
    clearTimeout(this.readTimer);
  }

  async logout(): Promise<void> {
    // Our socket first, with a normal close (offline at once): revoking the
    // token would otherwise close it as "unauthenticated".
    this.stop();
    persist.saveOutbox(this.session.userId, []);
    try {
      // Revokes the token, which closes the sockets of the other tabs too.
      await this.api.logout();
    } catch {
      // Logged out locally regardless: the caller forgets the token.
    }
  }

  private async resolveWsUrl(): Promise<string> {
    if (this.wsUrl) return this.wsUrl;
    const sameOrigin = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    try {
      const { ws_url } = await this.api.discover();
      const u = new URL(ws_url);
      // A daemon listening on a wildcard or loopback address advertises a
      // loopback URL; from another machine that is useless, while the page's
      // own origin is known to reach the server.
      const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(u.hostname);
      // A page served over https may not open a plain ws:// socket.
      const insecure = location.protocol === "https:" && u.protocol === "ws:";
      this.wsUrl = (loopback && u.hostname !== location.hostname) || insecure ? sameOrigin : ws_url;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      // No discovery answer (an old server, a proxy): try the page's origin, and ask again next time.
      return sameOrigin;
    }
    return this.wsUrl;
  }

  // ---- the socket ----

  private onWelcome(w: Welcome): void {
    this.maxBodyChars = w.maxBodyChars || DEFAULT_MAX_BODY_CHARS;
    if (w.inboxHead < this.cursor) {
      // The server's inbox is shorter than our cursor (its data was reset):
      // follow it, or every new entry up to our old cursor would be ignored.
      this.cursor = w.inboxHead;
      persist.resetCursor(this.session.userId, this.cursor);
    }
    // Whatever changed while we were away and is not in the inbox replay:
    // presence of contacts, groups we were added to, read cursors moved by
    // other devices.
    if (this.welcomes++ > 0) {
      void this.refreshContacts().catch(() => {});
      this.scheduleRefresh(0);
    }
    // Resend what was never acknowledged, with the same client ids.
    for (const p of this.outbox.values()) {
      if (p.state === "sending" && !p.inFlight) this.transmit(p);
    }
    const open = this.openConversation();
    if (open) this.queryPeerPresence(open);
    this.changed();
  }

  private onPush(f: ServerFrame): void {
    switch (f.kind) {
      case "deliver":
        this.onDelivery(f);
        break;
      case "presence":
        this.setPresence(f.userId, f.online, f.lastSeenMs);
        break;
      case "error":
        // request id 0: the server is about to close; otherwise an answer
        // to a request we no longer wait for (the Hello, or a timed-out one).
        this.onNotice(describeError(f.name, f.message), "error");
        break;
      default:
        break; // late replies to timed-out requests; unknown new frame types
    }
  }

  private onDelivery(d: Delivery): void {
    if (d.inboxSeq <= this.cursor) return; // seen already (a replay overlapping live traffic)
    if (d.inboxSeq > this.cursor + 1) {
      // The server sends inbox seqs densely, so this should not happen; if it
      // does, pull the gap explicitly rather than skip it. This delivery will
      // come back in the Sync batch.
      void this.syncGap();
      return;
    }
    this.cursor = d.inboxSeq;
    persist.raiseCursor(this.session.userId, this.cursor);
    this.applyMessage(d.message);
  }

  private async syncGap(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (;;) {
        const f = await this.conn.request((rid) => encodeSync(rid, this.cursor, 200));
        if (f.kind !== "syncBatch") break;
        for (const item of f.items) {
          if (item.inboxSeq === this.cursor + 1) {
            this.cursor = item.inboxSeq;
            this.applyMessage(item.message);
          }
        }
        persist.raiseCursor(this.session.userId, this.cursor);
        if (f.items.length === 0 || this.cursor >= f.inboxHead) break;
      }
    } catch {
      // Disconnected: the next Hello carries the cursor and replays the rest.
    } finally {
      this.syncing = false;
    }
  }

  // ---- messages ----

  /** One message, from any source (delivery, ack, history): merge by seq. */
  private applyMessage(m: Msg): void {
    const mine = m.senderId === this.me.id;
    if (mine && this.outbox.has(m.cmid)) {
      this.outbox.delete(m.cmid);
      this.saveOutbox();
    }
    this.rememberSender(m.senderId);
    const conv = this.conversations.get(m.conversationId);
    if (!conv) {
      // A conversation we have not listed yet: a new 1-on-1, a group we were added to.
      this.scheduleRefresh(200);
      return;
    }
    if (m.seq > conv.lastSeq) conv.lastSeq = m.seq;
    if (!conv.lastMessage || m.seq >= conv.lastMessage.seq) {
      conv.lastMessage = m;
      conv.lastActivity = Math.max(conv.lastActivity, m.sentAtMs);
    }
    // Writing in a conversation means having read it up to there. Told to
    // the server at once (no debounce): the writer may close the tab next.
    let urgent = false;
    if (mine && m.seq > conv.readSeq) {
      conv.readSeq = m.seq;
      urgent = true;
    }
    if (conv.loaded) {
      const last = conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
      if (m.seq === last + 1) {
        conv.messages.push(m);
      } else if (m.seq > last + 1) {
        void this.fillForward(conv);
      } // else: already in the window
    }
    this.maybeMarkRead(conv, urgent);
    this.changed();
  }

  /** Fetches everything between the end of the window and lastSeq. */
  private async fillForward(conv: Conversation): Promise<void> {
    if (this.forwardFills.has(conv.id)) return;
    this.forwardFills.add(conv.id);
    try {
      for (;;) {
        const last = conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
        if (last >= conv.lastSeq) break;
        if (last === 0) {
          // Nothing in the window yet: start it at the newest page, like an open.
          conv.messages = await this.fetchPage(conv.id, { limit: PAGE_SIZE });
          for (const m of conv.messages) this.rememberSender(m.senderId);
          this.changed();
          if (conv.messages.length === 0) break;
          continue;
        }
        const page = await this.fetchPage(conv.id, { after: last, limit: 200 });
        let added = 0;
        for (const m of page) {
          const end = conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
          if (m.seq === end + 1) {
            conv.messages.push(m);
            this.rememberSender(m.senderId);
            added++;
          }
        }
        if (added === 0) break;
        this.changed();
      }
    } catch (e) {
      conv.loadError = (e as Error).message;
    } finally {
      this.forwardFills.delete(conv.id);
      this.maybeMarkRead(conv);
      this.changed();
    }
  }

  /** A page of history: over the socket when it is up, else over HTTP. */
  private async fetchPage(conv: Id, q: { before?: number; after?: number; limit: number }): Promise<Msg[]> {
    if (this.conn.online) {
      try {
        const f = await this.conn.request((rid) => encodeHistory(rid, conv, q.before ?? 0, q.after ?? 0, q.limit));
        if (f.kind === "historyPage") return f.messages;
      } catch (e) {
        if (e instanceof WireError) throw new Error(describeError(e.errorName, e.message));
        // Disconnected mid-request: HTTP below.
      }
    }
    const { messages } = await this.api.messages(idText(conv), q);
    return messages.map(msgFromJson);
  }

  /** The newest page, when a conversation is first opened. */
  async loadNewest(conv: Conversation): Promise<void> {
    if (conv.loaded || conv.loadingOlder) return;
    conv.loadingOlder = true;
    conv.loadError = undefined;
    this.changed();
    try {
      const page = await this.fetchPage(conv.id, { limit: PAGE_SIZE });
      conv.messages = page;
      conv.loaded = true;
      for (const m of page) this.rememberSender(m.senderId);
      const newest = page[page.length - 1];
      if (newest && newest.seq > conv.lastSeq) conv.lastSeq = newest.seq;
      if (newest && (!conv.lastMessage || newest.seq >= conv.lastMessage.seq)) conv.lastMessage = newest;
    } catch (e) {
      conv.loadError = (e as Error).message;
    } finally {
      conv.loadingOlder = false;
      this.changed();
    }
    // Deliveries that arrived while the page was on its way.
    if (conv.loaded) {
      const last = conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
      if (conv.lastSeq > last) void this.fillForward(conv);
      this.maybeMarkRead(conv);
    }
  }

  hasOlder(conv: Conversation): boolean {
    return conv.loaded && conv.messages.length > 0 && conv.messages[0].seq > 1;
  }

  /** The page before the window (scrolling back). Resolves with how many were added. */
  async loadOlder(conv: Conversation): Promise<number> {
    if (!this.hasOlder(conv) || conv.loadingOlder) return 0;
    conv.loadingOlder = true;
    conv.loadError = undefined;
    this.changed();
    try {
      const first = conv.messages[0].seq;
      const page = await this.fetchPage(conv.id, { before: first, limit: PAGE_SIZE });
      // Keep the window contiguous: take the run that ends right before it.
      const older: Msg[] = [];
      let want = first - 1;
      for (let i = page.length - 1; i >= 0 && page[i].seq <= want; i--) {
        if (page[i].seq === want) {
          older.unshift(page[i]);
          want--;
        }
      }
      for (const m of older) this.rememberSender(m.senderId);
      conv.messages = older.concat(conv.messages);
      return older.length;
    } catch (e) {
      conv.loadError = (e as Error).message;
      return 0;
    } finally {
      conv.loadingOlder = false;
      this.changed();
    }
  }

  // ---- sending ----

  /** Validates and queues a message. Returns an error to show, or null. */
  send(conversationId: Id, text: string): string | null {
    const length = codePointLength(text);
    if (text.trim() === "") return "Write something first.";
    if (length > this.maxBodyChars && !debug.skipLengthCheck) {
      return (
        `This message is ${length.toLocaleString("en-US")} characters long; ` +
        `the limit is ${this.maxBodyChars.toLocaleString("en-US")}. Shorten it or split it into several messages.`
      );
    }
    const p: Pending = {
      cmid: newClientMsgId(),
      conversationId,
      body: text,
      createdAt: Date.now(),
      state: "sending",
      attempts: 0,
      inFlight: false,
    };
    this.outbox.set(p.cmid, p);
    this.saveOutbox();
    this.transmit(p);
    this.changed();
    return null;
  }

  /** Sends (or resends) one outbox entry if the socket is up; otherwise the next Welcome will. */
  private transmit(p: Pending): void {
    if (!this.conn.online || p.inFlight || p.state !== "sending") return;
    p.inFlight = true;
    p.attempts++;
    this.conn
      .request((rid) => encodeSend(rid, p.conversationId, p.cmid, p.body), 60_000)
      .then((f) => {
        p.inFlight = false;
        if (f.kind !== "ack") return;
        // The ack names the seq; the body is ours. Merged like any message,
        // so a Deliver of the same seq (now or later) is a no-op.
        this.applyMessage({
          messageId: f.messageId,
          conversationId: f.conversationId,
          seq: f.seq,
          senderId: this.me.id,
          cmid: p.cmid,
          body: p.body,
          sentAtMs: f.sentAtMs,
        });
        if (this.outbox.delete(p.cmid)) this.saveOutbox();
        this.changed();
      })
      .catch((e: Error) => {
        p.inFlight = false;
        if (!this.outbox.has(p.cmid)) return; // resolved meanwhile by its Deliver
        if (e instanceof WireError) return this.onSendError(p, e);
        if (e instanceof Disconnected && this.conn.online) {
          // Timed out on a live connection: ask again (same client id, so
          // at most once stored).
          setTimeout(() => this.transmit(p), 1000);
        }
        // Otherwise the connection dropped: the next Welcome resends it.
      });
  }

  private onSendError(p: Pending, e: WireError): void {
    const transient = e.errorName === "rate_limited" || e.errorName === "unavailable" || e.errorName === "internal";
    if (transient && p.attempts < 6) {
      const wait = e.retryAfterMs || Math.min(30_000, 1000 * 2 ** (p.attempts - 1));
      setTimeout(() => this.transmit(p), wait);
      return;
    }
    p.state = "failed";
    p.error = describeError(e.errorName, e.message);
    this.saveOutbox();
    this.changed();
  }

  retry(cmid: string): void {
    const p = this.outbox.get(cmid);
    if (!p || p.state !== "failed") return;
    p.state = "sending";
    p.error = undefined;
    p.attempts = 0;
    this.saveOutbox();
    this.transmit(p);
    this.changed();
  }

  discard(cmid: string): void {
    if (this.outbox.delete(cmid)) {
      this.saveOutbox();
      this.changed();
    }
  }

  pendingIn(conv: Id): Pending[] {
    return [...this.outbox.values()].filter((p) => p.conversationId === conv);
  }

  private saveOutbox(): void {
    persist.saveOutbox(
      this.session.userId,
      [...this.outbox.values()].map((p) => ({
        cmid: p.cmid,
        conversationId: idText(p.conversationId),
        body: p.body,
        createdAt: p.createdAt,
        failed: p.state === "failed" ? p.error : undefined,
      })),
    );
  }

  // ---- reading ----

  openConversation(): Conversation | undefined {
    return this.openId === null ? undefined : this.conversations.get(this.openId);
  }

  unread(conv: Conversation): number {
    return Math.max(0, conv.lastSeq - conv.readSeq);
  }

  /** Opens a conversation (null: none), loading its newest page the first time. */
  open(id: Id | null): void {
    this.openId = id;
    const conv = this.openConversation();
    if (conv) {
      if (!conv.loaded) void this.loadNewest(conv);
      this.queryPeerPresence(conv);
      this.maybeMarkRead(conv);
    }
    this.changed();
  }

  /** A conversation counts as read while it is open in a visible page. */
  private viewing(conv: Conversation): boolean {
    return conv.id === this.openId && document.visibilityState === "visible";
  }

  maybeMarkRead(conv: Conversation, now = false): void {
    if (this.viewing(conv) && conv.loaded && conv.lastSeq > conv.readSeq) conv.readSeq = conv.lastSeq;
    if (conv.readSeq > conv.readSeqSent) {
      clearTimeout(this.readTimer);
      // Normally a little later, so a burst of messages makes one MarkRead.
      if (now) this.flushReads();
      else this.readTimer = setTimeout(() => this.flushReads(), 250);
    }
  }

  /** Sends every read position the server has not been told yet (also when the page is hidden or closed). */
  flushReads(): void {
    for (const conv of this.conversations.values()) {
      if (conv.readSeq <= conv.readSeqSent) continue;
      const seq = conv.readSeq;
      const done = () => {
        conv.readSeqSent = Math.max(conv.readSeqSent, seq);
      };
      const viaHttp = () =>
        this.api.markRead(idText(conv.id), seq).then(done, () => {
          /* retried with the next change or refresh */
        });
      if (this.conn.online) {
        this.conn.request((rid) => encodeMarkRead(rid, conv.id, seq)).then(done, viaHttp);
      } else {
        void viaHttp();
      }
    }
  }

  // ---- conversations ----

  /** Debounced refresh of the conversation list (new conversations, unread from other devices). */
  scheduleRefresh(delayMs: number): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshConversations().catch((e: Error) => this.onNotice(e.message, "error"));
    }, delayMs);
  }

  async refreshConversations(): Promise<void> {
    const { conversations } = await this.api.conversations();
    const seen = new Set<Id>();
    for (const j of conversations) seen.add(this.mergeConversation(j).id);
    for (const [id] of this.conversations) {
      if (!seen.has(id)) {
        // Removed from a group, say: it is gone from our list.
        this.conversations.delete(id);
        if (this.openId === id) {
          this.openId = null;
          this.onNotice("You are no longer a member of that conversation.", "info");
        }
      }
    }
    this.changed();
  }

  private mergeConversation(j: ConversationJson): Conversation {
    const id = parseId(j.conversation_id);
    let conv = this.conversations.get(id);
    if (!conv) {
      conv = {
        id,
        kind: j.kind,
        title: j.title,
        lastSeq: 0,
        readSeq: 0,
        readSeqSent: 0,
        lastActivity: 0,
        lastMessage: null,
        messages: [],
        loaded: false,
        loadingOlder: false,
      };
      this.conversations.set(id, conv);
    }
    conv.title = j.title;
    if (j.peer_user_id) conv.peerId = parseId(j.peer_user_id);
    if (j.group_id) conv.groupId = parseId(j.group_id);
    conv.lastActivity = Math.max(conv.lastActivity, j.last_activity);
    if (j.last_seq >= conv.lastSeq) {
      conv.lastSeq = j.last_seq;
      if (j.last_message) conv.lastMessage = msgFromJson(j.last_message);
    }
    // Another device may have read further; we may have a MarkRead in flight.
    conv.readSeq = Math.max(conv.readSeq, j.read_seq);
    conv.readSeqSent = Math.max(conv.readSeqSent, j.read_seq);
    if (j.last_message) this.rememberSender(parseId(j.last_message.sender_id));
    if (conv.loaded) {
      const last = conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
      if (conv.lastSeq > last) void this.fillForward(conv);
    }
    this.maybeMarkRead(conv);
    return conv;
  }

  sortedConversations(): Conversation[] {
    return [...this.conversations.values()].sort(
      (a, b) => b.lastActivity - a.lastActivity || (b.id > a.id ? 1 : b.id < a.id ? -1 : 0),
    );
  }

  /** Opens (creating if needed) the 1-on-1 conversation with a user. */
  async openDirect(userId: Id): Promise<Id> {
    const { conversation_id } = await this.api.direct(idText(userId));
    const id = parseId(conversation_id);
    if (!this.conversations.has(id)) await this.refreshConversations();
    return id;
  }

  async createGroup(name: string, members: Id[]): Promise<Id> {
    const r = await this.api.createGroup(name, members.map(idText));
    await this.refreshConversations();
    return parseId(r.conversation_id);
  }

  // ---- people and presence ----

  private rememberPerson(p: { user_id: string; name: string; display_name: string }, isContact?: boolean): Person {
    const id = parseId(p.user_id);
    let person = this.people.get(id);
    if (!person) {
      person = { id, name: p.name, displayName: p.display_name || p.name, isContact: false };
      this.people.set(id, person);
    }
    person.name = p.name;
    person.displayName = p.display_name || p.name;
    if (isContact !== undefined) person.isContact = isContact;
    return person;
  }

  /** Learns a sender's name (for group messages) the first time we see them. */
  private rememberSender(id: Id): void {
    if (!this.people.has(id)) this.fetchPerson(id);
  }

  private fetchPerson(id: Id): void {
    if (this.userFetches.has(id)) return;
    const fetching = this.api
      .user(idText(id))
      .then((u) => {
        this.rememberPerson(u);
        this.changed();
      })
      .catch(() => {})
      .finally(() => this.userFetches.delete(id));
    this.userFetches.set(id, fetching);
  }

  nameOf(id: Id): string {
    if (id === this.me.id) return "You";
    return this.people.get(id)?.displayName ?? `user ${id}`;
  }

  applyPresence(p: PresenceJson, isContact?: boolean): Person {
    const person = this.rememberPerson(p, isContact);
    person.online = p.online;
    person.lastSeenMs = p.last_seen ?? 0;
    return person;
  }

  private setPresence(id: Id, online: boolean, lastSeenMs: number): void {
    let person = this.people.get(id);
    if (!person) {
      // Known by id only so far; its name follows.
      person = { id, name: `user ${id}`, displayName: `user ${id}`, isContact: false };
      this.people.set(id, person);
      this.fetchPerson(id);
    }
    person.online = online;
    if (lastSeenMs) person.lastSeenMs = lastSeenMs;
    this.changed();
  }

  async refreshContacts(): Promise<void> {
    const { contacts } = await this.api.contacts();
    const ids = new Set<Id>();
    for (const c of contacts) ids.add(this.applyPresence(c, true).id);
    for (const p of this.people.values()) if (!ids.has(p.id)) p.isContact = false;
    this.changed();
  }

  contacts(): Person[] {
    return [...this.people.values()]
      .filter((p) => p.isContact)
      .sort((a, b) => Number(b.online ?? false) - Number(a.online ?? false) || a.displayName.localeCompare(b.displayName));
  }

  async addContact(userId: Id): Promise<Person> {
    const p = this.applyPresence(await this.api.addContact(idText(userId)), true);
    this.changed();
    return p;
  }

  async removeContact(userId: Id): Promise<void> {
    await this.api.removeContact(idText(userId));
    const p = this.people.get(userId);
    if (p) p.isContact = false;
    this.changed();
  }

  /** Presence of a 1-on-1 peer who is not a contact is not pushed to us: ask when the chat opens. */
  private queryPeerPresence(conv: Conversation): void {
    if (conv.kind !== "direct" || conv.peerId === undefined || !this.conn.online) return;
    if (this.people.get(conv.peerId)?.isContact) return;
    const peer = conv.peerId;
    this.conn
      .request((rid) => encodePresenceQuery(rid, [peer], 0n))
      .then((f) => {
        if (f.kind !== "presenceList") return;
        for (const p of f.items) this.setPresence(p.userId, p.online, p.lastSeenMs);
      })
      .catch(() => {});
    this.rememberSender(peer);
  }
}
