// The wire protocol (docs/protocol.md): encoding client frames and decoding
// server frames, over the FlatBuffers code that `flatc --ts` generates from
// schema/wire.fbs at build time ("@chatcore/wire" is an alias the build
// script points at the build tree; the generated code is never committed).
//
// The rest of the client never touches FlatBuffers: it gets plain objects
// (`ServerFrame`) and hands over plain values. That keeps the generated
// accessors, which read lazily from the receive buffer, from leaking into
// long-lived state.

import * as flatbuffers from "flatbuffers";
import * as wire from "@chatcore/wire";
import { bytesToHex, hexToBytes, seqOf, type Id } from "./ids";

/** The WebSocket subprotocol chatcored speaks (lws_transport.hpp kProtocolName). */
export const SUBPROTOCOL = "chatcore.v1";

/** Close codes (docs/protocol.md, "Close codes"). */
export const Close = {
  normal: 1000,
  goingAway: 1001,
  protocolViolation: 4000,
  unauthenticated: 4001,
  malformedFrame: 4002,
  frameTooLarge: 4003,
  slowConsumer: 4008,
  heartbeatTimeout: 4009,
} as const;

export interface WireMessage {
  messageId: Id;
  conversationId: Id;
  seq: number;
  senderId: Id;
  cmid: string; // client message id, lowercase hex
  body: string;
  sentAtMs: number;
}

export interface WirePresence {
  userId: Id;
  online: boolean;
  lastSeenMs: number; // 0: never seen
}

export interface Delivery {
  inboxSeq: number;
  message: WireMessage;
}

export type ServerFrame = { requestId: bigint } & (
  | {
      kind: "welcome";
      userId: Id;
      inboxHead: number;
      heartbeatMs: number;
      presenceTimeoutMs: number;
      serverTimeMs: number;
      maxBodyChars: number;
      sessionId: bigint;
    }
  | {
      kind: "ack";
      messageId: Id;
      conversationId: Id;
      seq: number;
      inboxSeq: number;
      sentAtMs: number;
      duplicate: boolean;
    }
  | ({ kind: "deliver" } & Delivery)
  | { kind: "syncBatch"; items: Delivery[]; inboxHead: number }
  | { kind: "historyPage"; conversationId: Id; messages: WireMessage[] }
  | { kind: "heartbeatAck"; serverTimeMs: number }
  | ({ kind: "presence" } & WirePresence)
  | { kind: "presenceList"; items: WirePresence[] }
  | { kind: "markReadAck"; conversationId: Id; seq: number }
  | { kind: "error"; code: number; name: string; message: string; retryAfterMs: number }
  // A body type this client does not know (a newer server): ignored.
  | { kind: "unknown"; bodyType: number }
);

// ---- encoding (client -> server) -------------------------------------------------

function frame(requestId: bigint, type: wire.Body, build: (b: flatbuffers.Builder) => number): Uint8Array {
  // 1 KiB grows on demand; a 100,000-character body needs up to 400 KB.
  const b = new flatbuffers.Builder(1024);
  const body = build(b);
  b.finish(wire.Frame.createFrame(b, requestId, type, body));
  return b.asUint8Array();
}

export function encodeHello(requestId: bigint, token: string, deviceId: string, cursor: number): Uint8Array {
  return frame(requestId, wire.Body.Hello, (b) => {
    const t = b.createString(token);
    const d = b.createString(deviceId);
    return wire.Hello.createHello(b, t, d, BigInt(cursor));
  });
}

export function encodeSend(requestId: bigint, conversationId: Id, cmidHex: string, body: string): Uint8Array {
  return frame(requestId, wire.Body.Send, (b) => {
    const text = b.createString(body);
    const cmid = wire.Send.createClientMsgIdVector(b, hexToBytes(cmidHex));
    return wire.Send.createSend(b, conversationId, 0n, cmid, text);
  });
}

export function encodeHeartbeat(requestId: bigint): Uint8Array {
  return frame(requestId, wire.Body.Heartbeat, (b) => {
    wire.Heartbeat.startHeartbeat(b);
    return wire.Heartbeat.endHeartbeat(b);
  });
}

export function encodeSync(requestId: bigint, afterInboxSeq: number, limit: number): Uint8Array {
  return frame(requestId, wire.Body.Sync, (b) => wire.Sync.createSync(b, BigInt(afterInboxSeq), limit));
}

/** A page of history: at most one of `beforeSeq` / `afterSeq` (0 = unset). */
export function encodeHistory(
  requestId: bigint,
  conversationId: Id,
  beforeSeq: number,
  afterSeq: number,
  limit: number,
): Uint8Array {
  return frame(requestId, wire.Body.History, (b) =>
    wire.History.createHistory(b, conversationId, BigInt(beforeSeq), BigInt(afterSeq), limit),
  );
}

export function encodePresenceQuery(requestId: bigint, userIds: Id[], groupId: Id): Uint8Array {
  return frame(requestId, wire.Body.PresenceQuery, (b) => {
    const ids = wire.PresenceQuery.createUserIdsVector(b, userIds);
    return wire.PresenceQuery.createPresenceQuery(b, ids, groupId);
  });
}

export function encodeMarkRead(requestId: bigint, conversationId: Id, seq: number): Uint8Array {
  return frame(requestId, wire.Body.MarkRead, (b) => wire.MarkRead.createMarkRead(b, conversationId, BigInt(seq)));
}

// ---- decoding (server -> client) -------------------------------------------------

function message(m: wire.Message): WireMessage {
  const cmid = m.clientMsgIdArray();
  return {
    messageId: m.messageId(),
    conversationId: m.conversationId(),
    seq: seqOf(m.seq()),
    senderId: m.senderId(),
    cmid: cmid ? bytesToHex(cmid) : "",
    body: m.body() ?? "",
    sentAtMs: Number(m.sentAtMs()),
  };
}

function delivery(d: wire.Deliver): Delivery {
  const m = d.message();
  if (!m) throw new Error("Deliver without a message");
  return { inboxSeq: seqOf(d.inboxSeq()), message: message(m) };
}

function presence(p: wire.Presence): WirePresence {
  return { userId: p.userId(), online: p.online(), lastSeenMs: Number(p.lastSeenMs()) };
}

/**
 * Decodes one binary WebSocket message. Throws on a buffer that is not a
 * Frame: the server never sends one, so the caller treats it as a broken
 * connection.
 */
export function decodeFrame(data: Uint8Array): ServerFrame {
  if (data.byteLength < 8) throw new Error(`frame too short (${data.byteLength} bytes)`);
  const f = wire.Frame.getRootAsFrame(new flatbuffers.ByteBuffer(data));
  const requestId = f.requestId();
  const type = f.bodyType();
  switch (type) {
    case wire.Body.Welcome: {
      const w: wire.Welcome = f.body(new wire.Welcome());
      return {
        requestId,
        kind: "welcome",
        userId: w.userId(),
        inboxHead: seqOf(w.inboxHead()),
        heartbeatMs: w.heartbeatMs(),
        presenceTimeoutMs: w.presenceTimeoutMs(),
        serverTimeMs: Number(w.serverTimeMs()),
        maxBodyChars: w.maxBodyChars(),
        sessionId: w.sessionId(),
      };
    }
    case wire.Body.Ack: {
      const a: wire.Ack = f.body(new wire.Ack());
      return {
        requestId,
        kind: "ack",
        messageId: a.messageId(),
        conversationId: a.conversationId(),
        seq: seqOf(a.seq()),
        inboxSeq: seqOf(a.inboxSeq()),
        sentAtMs: Number(a.sentAtMs()),
        duplicate: a.duplicate(),
      };
    }
    case wire.Body.Deliver:
      return { requestId, kind: "deliver", ...delivery(f.body(new wire.Deliver())) };
    case wire.Body.SyncBatch: {
      const s: wire.SyncBatch = f.body(new wire.SyncBatch());
      const items: Delivery[] = [];
      for (let i = 0; i < s.itemsLength(); i++) items.push(delivery(s.items(i)!));
      return { requestId, kind: "syncBatch", items, inboxHead: seqOf(s.inboxHead()) };
    }
    case wire.Body.HistoryPage: {
      const p: wire.HistoryPage = f.body(new wire.HistoryPage());
      const messages: WireMessage[] = [];
      for (let i = 0; i < p.messagesLength(); i++) messages.push(message(p.messages(i)!));
      return { requestId, kind: "historyPage", conversationId: p.conversationId(), messages };
    }
    case wire.Body.HeartbeatAck: {
      const h: wire.HeartbeatAck = f.body(new wire.HeartbeatAck());
      return { requestId, kind: "heartbeatAck", serverTimeMs: Number(h.serverTimeMs()) };
    }
    case wire.Body.Presence:
      return { requestId, kind: "presence", ...presence(f.body(new wire.Presence())) };
    case wire.Body.PresenceList: {
      const l: wire.PresenceList = f.body(new wire.PresenceList());
      const items: WirePresence[] = [];
      for (let i = 0; i < l.itemsLength(); i++) items.push(presence(l.items(i)!));
      return { requestId, kind: "presenceList", items };
    }
    case wire.Body.MarkReadAck: {
      const m: wire.MarkReadAck = f.body(new wire.MarkReadAck());
      return { requestId, kind: "markReadAck", conversationId: m.conversationId(), seq: seqOf(m.seq()) };
    }
    case wire.Body.Error: {
      const e: wire.Error = f.body(new wire.Error());
      return {
        requestId,
        kind: "error",
        code: e.code(),
        name: e.name() ?? "unknown",
        message: e.message() ?? "",
        retryAfterMs: e.retryAfterMs(),
      };
    }
    default:
      return { requestId, kind: "unknown", bodyType: type };
  }
}

// ---- for tests: decoding what a client sends -----------------------------------------

/** Decodes a client frame's header and, for Hello and Send, its fields (round-trip test). */
export function decodeClientFrameForTest(data: Uint8Array): {
  requestId: bigint;
  type: string;
  hello?: { token: string; deviceId: string; cursor: bigint };
  send?: { conversationId: Id; cmid: string; body: string };
} {
  const f = wire.Frame.getRootAsFrame(new flatbuffers.ByteBuffer(data));
  const type = wire.Body[f.bodyType()] ?? String(f.bodyType());
  const out: ReturnType<typeof decodeClientFrameForTest> = { requestId: f.requestId(), type };
  if (f.bodyType() === wire.Body.Hello) {
    const h: wire.Hello = f.body(new wire.Hello());
    out.hello = { token: h.token() ?? "", deviceId: h.deviceId() ?? "", cursor: h.cursor() };
  } else if (f.bodyType() === wire.Body.Send) {
    const s: wire.Send = f.body(new wire.Send());
    out.send = { conversationId: s.conversationId(), cmid: bytesToHex(s.clientMsgIdArray()!), body: s.body() ?? "" };
  }
  return out;
}

/** Builds a server frame (round-trip test of the decoder; the client never sends these). */
export function encodeDeliverForTest(requestId: bigint, inboxSeq: number, m: WireMessage): Uint8Array {
  return frame(requestId, wire.Body.Deliver, (b) => {
    const cmid = wire.Message.createClientMsgIdVector(b, hexToBytes(m.cmid));
    const body = b.createString(m.body);
    const msg = wire.Message.createMessage(
      b,
      m.messageId,
      m.conversationId,
      BigInt(m.seq),
      m.senderId,
      cmid,
      body,
      BigInt(m.sentAtMs),
    );
    wire.Deliver.startDeliver(b);
    wire.Deliver.addInboxSeq(b, BigInt(inboxSeq));
    wire.Deliver.addMessage(b, msg);
    return wire.Deliver.endDeliver(b);
  });
}
