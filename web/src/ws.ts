// The WebSocket connection: Hello/Welcome, heartbeats, request/reply by
// request id, and reconnection with backoff.
//
// It knows nothing of messages or conversations. The store hands it a
// `hello()` callback (so every attempt says the *current* cursor) and
// receives the Welcome and every pushed frame. What a reconnect must redo
// (resend unacked messages, refetch what may have changed) is the store's
// business, in its onWelcome.
//
// Backoff: 0.5 s doubling to 15 s, with jitter so a restarted server is
// not hit by every client in the same millisecond; reset by a Welcome.
// A dead connection that the browser has not noticed (a half-open TCP
// connection after the server's machine vanished) is caught by missing
// HeartbeatAcks.

import { Close, SUBPROTOCOL, decodeFrame, encodeHeartbeat, encodeHello, type ServerFrame } from "./protocol";

export type Welcome = Extract<ServerFrame, { kind: "welcome" }>;

export type ConnState =
  | { phase: "connecting"; attempt: number }
  | { phase: "online" }
  | { phase: "offline"; retryAt: number; reason: string }
  | { phase: "stopped" };

/** An Error frame answering a request. */
export class WireError extends Error {
  constructor(
    readonly code: number,
    readonly errorName: string,
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = "WireError";
  }
}

/** The connection went away before the reply came. */
export class Disconnected extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "Disconnected";
  }
}

export interface ConnectionOptions {
  resolveUrl(): Promise<string>;
  hello(): { token: string; deviceId: string; cursor: number };
  onWelcome(w: Welcome): void;
  /** Frames nobody asked for: Deliver, Presence, close announcements. */
  onPush(f: ServerFrame): void;
  onState(s: ConnState): void;
  /** Closed for a reason a reconnect cannot fix: the token is no longer valid. */
  onUnauthenticated(message: string): void;
}

interface PendingRequest {
  resolve(f: ServerFrame): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;
const WELCOME_TIMEOUT_MS = 10_000;

/** Heartbeat ticks from a worker (see tick-worker.ts), or plain timers where workers are unavailable. */
class Ticker {
  private worker: Worker | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(private readonly onTick: () => void) {
    try {
      this.worker = new Worker(new URL("tick.js", document.baseURI));
      this.worker.onmessage = () => this.onTick();
      this.worker.onerror = () => {
        this.worker = null; // e.g. the file is missing: fall back to timers
      };
    } catch {
      this.worker = null;
    }
  }
  start(everyMs: number): void {
    this.stop();
    if (this.worker) this.worker.postMessage(everyMs);
    else this.timer = setInterval(this.onTick, everyMs);
  }
  stop(): void {
    this.worker?.postMessage(0);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
  dispose(): void {
    this.stop();
    this.worker?.terminate();
    this.worker = null;
  }
}

export class Connection {
  private ws: WebSocket | null = null;
  private nextRequestId = 1n;
  private readonly pending = new Map<bigint, PendingRequest>();
  private attempt = 0;
  private stopped = true;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private welcomeTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly ticker = new Ticker(() => this.tick());
  private heartbeatSentAt = 0; // 0: no HeartbeatAck outstanding
  private lastTickAt = 0;
  welcome: Welcome | null = null;
  state: ConnState = { phase: "stopped" };

  // The browser knows before our timers do that the network is back, or
  // that the user is looking again.
  private readonly onOnline = () => this.retryNow();
  private readonly onVisible = () => {
    if (document.visibilityState === "visible") this.retryNow();
  };

  constructor(private readonly opts: ConnectionOptions) {}

  get online(): boolean {
    return this.welcome !== null && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    void this.open();
  }

  /** Closes for good (logout): a normal close, so the server marks us offline at once. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    const ws = this.ws;
    this.teardown("stopped");
    this.ticker.dispose();
    ws?.close(Close.normal, "bye");
    this.setState({ phase: "stopped" });
  }

  /** Skips the rest of the backoff (the user clicked "retry now", or the network came back). */
  retryNow(): void {
    if (this.stopped || this.state.phase !== "offline") return;
    clearTimeout(this.retryTimer);
    void this.open();
  }

  /**
   * Sends a request and resolves with its reply (the frame echoing its
   * request id). Rejects with WireError for an Error reply, Disconnected if
   * the connection drops first or nothing comes back in time.
   */
  request(encode: (requestId: bigint) => Uint8Array, timeoutMs = 30_000): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      if (!this.online) return reject(new Disconnected("not connected"));
      const id = this.nextRequestId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Disconnected("no reply in time"));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws!.send(encode(id));
    });
  }

  // ---- lifecycle ----

  private setState(s: ConnState): void {
    this.state = s;
    this.opts.onState(s);
  }

  private async open(): Promise<void> {
    this.setState({ phase: "connecting", attempt: this.attempt });
    let url: string;
    try {
      url = await this.opts.resolveUrl();
    } catch (e) {
      return this.scheduleRetry(`cannot find the chat server (${(e as Error).message})`);
    }
    if (this.stopped) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, SUBPROTOCOL);
    } catch {
      return this.scheduleRetry(`bad WebSocket URL ${url}`);
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const h = this.opts.hello();
      // Request id 0 is "unprompted" in the protocol; the Hello takes a real one.
      ws.send(encodeHello(this.nextRequestId++, h.token, h.deviceId, h.cursor));
      this.welcomeTimer = setTimeout(() => this.abandon(ws, "the server did not answer"), WELCOME_TIMEOUT_MS);
    };
    ws.onmessage = (ev) => this.onMessage(ws, ev);
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    // onerror is always followed by onclose, which does the work.
  }

  private onMessage(ws: WebSocket, ev: MessageEvent): void {
    if (ws !== this.ws) return;
    if (!(ev.data instanceof ArrayBuffer)) return this.abandon(ws, "the server sent a text frame");
    let f: ServerFrame;
    try {
      f = decodeFrame(new Uint8Array(ev.data));
    } catch (e) {
      return this.abandon(ws, `undecodable frame: ${(e as Error).message}`);
    }
    if (f.kind === "heartbeatAck") {
      this.heartbeatSentAt = 0;
      return;
    }
    if (f.kind === "welcome") {
      clearTimeout(this.welcomeTimer);
      this.welcome = f;
      this.attempt = 0;
      this.heartbeatSentAt = 0;
      this.lastTickAt = Date.now();
      this.ticker.start(Math.max(250, Math.min(f.heartbeatMs, f.presenceTimeoutMs / 2)));
      this.setState({ phase: "online" });
      this.opts.onWelcome(f);
      return;
    }
    const waiting = f.requestId !== 0n ? this.pending.get(f.requestId) : undefined;
    if (waiting) {
      this.pending.delete(f.requestId);
      clearTimeout(waiting.timer);
      if (f.kind === "error") waiting.reject(new WireError(f.code, f.name, f.message, f.retryAfterMs));
      else waiting.resolve(f);
      return;
    }
    this.opts.onPush(f);
  }

  private tick(): void {
    const now = Date.now();
    const w = this.welcome;
    if (!w || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    // A HeartbeatAck normally comes back within a round trip. None for two
    // intervals (and at least 5 s): the connection is dead without the
    // browser having noticed. A long gap between our own ticks means this
    // machine slept, not that the server is gone, so give it a fresh chance.
    const slept = now - this.lastTickAt > 3 * w.heartbeatMs;
    this.lastTickAt = now;
    if (this.heartbeatSentAt && !slept && now - this.heartbeatSentAt > Math.max(2 * w.heartbeatMs, 5000)) {
      return this.abandon(this.ws, "no heartbeat reply from the server");
    }
    if (!this.heartbeatSentAt || slept) this.heartbeatSentAt = now;
    this.ws.send(encodeHeartbeat(this.nextRequestId++));
  }

  /** Gives up on a socket at once, without waiting for the browser's close handshake. */
  private abandon(ws: WebSocket, reason: string): void {
    if (ws !== this.ws) return;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      // If the peer is really gone this close frame never arrives, and the
      // server times the session out; if it is there, it learns why.
      ws.close(4000, reason.slice(0, 100));
    } catch {
      /* already closing */
    }
    this.onClose(ws, 0, reason);
  }

  private teardown(reason: string): void {
    clearTimeout(this.welcomeTimer);
    this.ticker.stop();
    this.welcome = null;
    this.ws = null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Disconnected(reason));
      this.pending.delete(id);
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.teardown(reason || `closed (${code})`);
    if (this.stopped) return;
    if (code === Close.unauthenticated) {
      this.stopped = true;
      this.setState({ phase: "stopped" });
      this.opts.onUnauthenticated(reason || "your session is no longer valid");
      return;
    }
    this.scheduleRetry(describeClose(code, reason));
  }

  private scheduleRetry(reason: string): void {
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.setState({ phase: "offline", retryAt: Date.now() + delay, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }
}

function describeClose(code: number, reason: string): string {
  switch (code) {
    case Close.goingAway:
      return "the server is restarting";
    case Close.slowConsumer:
      return "the connection fell behind";
    case Close.heartbeatTimeout:
      return "the connection was idle too long";
    case Close.protocolViolation:
    case Close.malformedFrame:
    case Close.frameTooLarge:
      return `the server closed the connection: ${reason || code}`;
    case 1006:
    case 0:
      return reason || "the connection was lost";
    default:
      return reason || `the connection closed (${code})`;
  }
}
