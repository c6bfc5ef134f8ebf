"""Test clients for a running chatcored: HTTP (urllib), WebSocket
(python3-websockets 10, asyncio) and a raw WebSocket socket for protocol
abuse.

Frames are built and parsed with the Python code flatc generates from
schema/wire.fbs at build time (the build puts it in
<build>/generated/python; conftest.py adds that to sys.path).

Nothing here asserts: the tests do. Every wait has a timeout, so a broken
server fails a test instead of hanging the suite.

    api = Api("http://127.0.0.1:8080")
    status, doc = api.call("POST", "/api/v1/users", {"name": "ann", "password": "..."})

    c = ChatClient.connect("ws://127.0.0.1:8080/ws")
    welcome = c.hello(token, "phone")
    rid = c.send_message(peer_user_id=2, body="hi")
    ack = c.expect("Ack", request_id=rid)
    deliver = other.expect("Deliver")
    c.close()
"""

import asyncio
import base64
import http.client
import json
import os
import socket
import ssl
import struct
import threading
import time
import types
import urllib.error
import urllib.request
import uuid

import flatbuffers
import websockets
import websockets.exceptions

from chatcore.wire import (Ack, Body, Deliver, Error, Frame, Heartbeat,
                           HeartbeatAck, Hello, History, HistoryPage,
                           MarkRead, MarkReadAck, Message, Presence,
                           PresenceList, PresenceQuery, Send, Sync,
                           SyncBatch, Welcome)

PROTOCOL = "chatcore.v1"
DEFAULT_TIMEOUT = 10.0

# The wire's close codes (include/chatcore/session.hpp, docs/protocol.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_VIOLATION = 4000
CLOSE_UNAUTHENTICATED = 4001
CLOSE_MALFORMED_FRAME = 4002
CLOSE_FRAME_TOO_LARGE = 4003
CLOSE_SLOW_CONSUMER = 4008
CLOSE_HEARTBEAT_TIMEOUT = 4009

BODY_NAMES = {v: k for k, v in vars(Body.Body).items()
              if not k.startswith("_") and isinstance(v, int)}


# ---- ids -----------------------------------------------------------------------------

def direct_conversation(a, b):
    """The 1-on-1 conversation id of users a and b (include/chatcore/ids.hpp)."""
    lo, hi = min(a, b), max(a, b)
    return (lo << 31) | hi


def group_conversation(group_id):
    return (1 << 62) | group_id


def new_client_msg_id():
    return uuid.uuid4().bytes


# ---- HTTP ---------------------------------------------------------------------------------

class Api:
    """Minimal JSON-over-HTTP client for /api/v1 and the health endpoints."""

    def __init__(self, base_url, ssl_context=None):
        self.base_url = base_url.rstrip("/")
        self.ssl_context = ssl_context

    def raw(self, method, path, body=None, headers=None, timeout=DEFAULT_TIMEOUT):
        """-> (status, body bytes, headers). Never raises for an HTTP status."""
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                return r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def call(self, method, path, doc=None, token=None, timeout=DEFAULT_TIMEOUT):
        """JSON request -> (status, parsed JSON or None)."""
        headers = {}
        data = None
        if doc is not None:
            data = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        status, body, _ = self.raw(method, path, data, headers, timeout)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return status, parsed

    def signup_login(self, name, password="correct-horse-battery"):
        """Creates a user and logs in -> SimpleNamespace(name, user_id, token)."""
        status, doc = self.call("POST", "/api/v1/users", {"name": name, "password": password})
        if status != 201:
            raise RuntimeError(f"signup {name}: HTTP {status} {doc}")
        status, doc = self.call("POST", "/api/v1/sessions", {"name": name, "password": password})
        if status != 200:
            raise RuntimeError(f"login {name}: HTTP {status} {doc}")
        return types.SimpleNamespace(name=name, user_id=int(doc["user_id"]), token=doc["token"])

    def create_group(self, owner_token, name, member_ids):
        status, doc = self.call("POST", "/api/v1/groups",
                                {"name": name, "members": [str(m) for m in member_ids]},
                                token=owner_token)
        if status != 201:
            raise RuntimeError(f"create group: HTTP {status} {doc}")
        return int(doc["group_id"])


# ---- frames -------------------------------------------------------------------------------

def _finish(builder, request_id, body_type, body):
    Frame.FrameStart(builder)
    Frame.FrameAddRequestId(builder, request_id)
    Frame.FrameAddBodyType(builder, body_type)
    Frame.FrameAddBody(builder, body)
    builder.Finish(Frame.FrameEnd(builder))
    return bytes(builder.Output())


def encode_hello(request_id, token, device_id, cursor=0):
    b = flatbuffers.Builder(256)
    tok = b.CreateString(token)
    dev = b.CreateString(device_id)
    Hello.HelloStart(b)
    Hello.HelloAddToken(b, tok)
    Hello.HelloAddDeviceId(b, dev)
    Hello.HelloAddCursor(b, cursor)
    return _finish(b, request_id, Body.Body.Hello, Hello.HelloEnd(b))


def encode_send(request_id, body, conversation_id=0, peer_user_id=0, client_msg_id=None):
    """`body` may be str or bytes (bytes go on the wire as they are, valid
    UTF-8 or not)."""
    raw = body.encode() if isinstance(body, str) else body
    b = flatbuffers.Builder(len(raw) + 256)
    text = b.CreateString(raw)
    cmid = b.CreateByteVector(client_msg_id or new_client_msg_id())
    Send.SendStart(b)
    Send.SendAddConversationId(b, conversation_id)
    Send.SendAddPeerUserId(b, peer_user_id)
    Send.SendAddClientMsgId(b, cmid)
    Send.SendAddBody(b, text)
    return _finish(b, request_id, Body.Body.Send, Send.SendEnd(b))


def encode_sync(request_id, after_inbox_seq, limit=100):
    b = flatbuffers.Builder(64)
    Sync.SyncStart(b)
    Sync.SyncAddAfterInboxSeq(b, after_inbox_seq)
    Sync.SyncAddLimit(b, limit)
    return _finish(b, request_id, Body.Body.Sync, Sync.SyncEnd(b))


def encode_history(request_id, conversation_id, before_seq=0, after_seq=0, limit=50):
    b = flatbuffers.Builder(64)
    History.HistoryStart(b)
    History.HistoryAddConversationId(b, conversation_id)
    History.HistoryAddBeforeSeq(b, before_seq)
    History.HistoryAddAfterSeq(b, after_seq)
    History.HistoryAddLimit(b, limit)
    return _finish(b, request_id, Body.Body.History, History.HistoryEnd(b))


def encode_heartbeat(request_id):
    b = flatbuffers.Builder(32)
    Heartbeat.HeartbeatStart(b)
    return _finish(b, request_id, Body.Body.Heartbeat, Heartbeat.HeartbeatEnd(b))


def encode_presence_query(request_id, user_ids=(), group_id=0):
    b = flatbuffers.Builder(64)
    vec = None
    if user_ids:
        PresenceQuery.PresenceQueryStartUserIdsVector(b, len(user_ids))
        for uid in reversed(list(user_ids)):
            b.PrependUint64(uid)
        vec = b.EndVector()
    PresenceQuery.PresenceQueryStart(b)
    if vec is not None:
        PresenceQuery.PresenceQueryAddUserIds(b, vec)
    PresenceQuery.PresenceQueryAddGroupId(b, group_id)
    return _finish(b, request_id, Body.Body.PresenceQuery, PresenceQuery.PresenceQueryEnd(b))


def encode_mark_read(request_id, conversation_id, seq):
    b = flatbuffers.Builder(64)
    MarkRead.MarkReadStart(b)
    MarkRead.MarkReadAddConversationId(b, conversation_id)
    MarkRead.MarkReadAddSeq(b, seq)
    return _finish(b, request_id, Body.Body.MarkRead, MarkRead.MarkReadEnd(b))


def _message(m):
    cmid = bytes(m.ClientMsgId(i) for i in range(m.ClientMsgIdLength()))
    return types.SimpleNamespace(message_id=m.MessageId(), conversation_id=m.ConversationId(),
                                 seq=m.Seq(), sender_id=m.SenderId(), client_msg_id=cmid,
                                 body=(m.Body() or b"").decode("utf-8"),
                                 sent_at_ms=m.SentAtMs())


def _deliver(d):
    return types.SimpleNamespace(inbox_seq=d.InboxSeq(), message=_message(d.Message()))


def _presence(p):
    return types.SimpleNamespace(user_id=p.UserId(), online=p.Online(),
                                 last_seen_ms=p.LastSeenMs())


def decode_frame(data):
    """bytes -> SimpleNamespace(type="Ack", request_id=..., <fields>)."""
    frame = Frame.Frame.GetRootAs(bytearray(data), 0)
    kind = BODY_NAMES.get(frame.BodyType(), f"unknown({frame.BodyType()})")
    out = types.SimpleNamespace(type=kind, request_id=frame.RequestId())
    table = frame.Body()
    if table is None:
        return out

    def view(cls):
        obj = cls()
        obj.Init(table.Bytes, table.Pos)
        return obj

    if kind == "Welcome":
        w = view(Welcome.Welcome)
        out.user_id, out.inbox_head = w.UserId(), w.InboxHead()
        out.heartbeat_ms, out.presence_timeout_ms = w.HeartbeatMs(), w.PresenceTimeoutMs()
        out.server_time_ms, out.max_body_chars = w.ServerTimeMs(), w.MaxBodyChars()
        out.session_id = w.SessionId()
    elif kind == "Ack":
        a = view(Ack.Ack)
        out.message_id, out.conversation_id, out.seq = a.MessageId(), a.ConversationId(), a.Seq()
        out.inbox_seq, out.sent_at_ms, out.duplicate = a.InboxSeq(), a.SentAtMs(), a.Duplicate()
    elif kind == "Deliver":
        d = _deliver(view(Deliver.Deliver))
        out.inbox_seq, out.message = d.inbox_seq, d.message
    elif kind == "SyncBatch":
        s = view(SyncBatch.SyncBatch)
        out.items = [_deliver(s.Items(i)) for i in range(s.ItemsLength())]
        out.inbox_head = s.InboxHead()
    elif kind == "HistoryPage":
        h = view(HistoryPage.HistoryPage)
        out.conversation_id = h.ConversationId()
        out.messages = [_message(h.Messages(i)) for i in range(h.MessagesLength())]
    elif kind == "HeartbeatAck":
        out.server_time_ms = view(HeartbeatAck.HeartbeatAck).ServerTimeMs()
    elif kind == "Presence":
        p = _presence(view(Presence.Presence))
        out.user_id, out.online, out.last_seen_ms = p.user_id, p.online, p.last_seen_ms
    elif kind == "PresenceList":
        pl = view(PresenceList.PresenceList)
        out.items = [_presence(pl.Items(i)) for i in range(pl.ItemsLength())]
    elif kind == "MarkReadAck":
        m = view(MarkReadAck.MarkReadAck)
        out.conversation_id, out.seq = m.ConversationId(), m.Seq()
    elif kind == "Error":
        e = view(Error.Error)
        out.code, out.name = e.Code(), (e.Name() or b"").decode()
        out.message, out.retry_after_ms = (e.Message() or b"").decode(), e.RetryAfterMs()
    return out


# ---- WebSocket client (python3-websockets, asyncio on a background loop) ---------

class _Loop:
    """One asyncio loop in a daemon thread, shared by every ChatClient, so
    all connections keep reading concurrently while a test blocks on one."""
    _lock = threading.Lock()
    _loop = None

    @classmethod
    def run(cls, coro, timeout=DEFAULT_TIMEOUT):
        with cls._lock:
            if cls._loop is None:
                cls._loop = asyncio.new_event_loop()
                threading.Thread(target=cls._loop.run_forever, daemon=True,
                                 name="chatclient-loop").start()
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result(timeout)


class Closed(Exception):
    """The connection ended; .code/.reason are the close frame's (1006: none)."""

    def __init__(self, code, reason):
        super().__init__(f"connection closed: {code} {reason!r}")
        self.code, self.reason = code, reason


class ChatClient:
    """A chat device: one WebSocket, frames as SimpleNamespaces.

    Frames that arrive while the test waits for something else are kept in
    order and returned by later expect()/frames() calls: nothing is lost."""

    # Request ids of automatic heartbeats (start_heartbeats); their
    # HeartbeatAcks are dropped instead of filling the backlog.
    AUTO_RID_BASE = 1 << 62

    def __init__(self, ws):
        self.ws = ws
        self.backlog = []
        self._next_rid = 1
        self._heartbeat_task = None

    @classmethod
    def connect(cls, url, subprotocol=PROTOCOL, ssl_context=None, max_queue=None):
        # max_queue=None: websockets reads everything as it arrives (the test
        # reads from its own backlog), so a close frame is never stuck behind
        # unread messages; RawWs is the client that stops reading.
        kwargs = dict(ping_interval=None, max_size=64 * 1024 * 1024, compression=None,
                      open_timeout=DEFAULT_TIMEOUT, close_timeout=5, max_queue=max_queue)
        if subprotocol:
            kwargs["subprotocols"] = [subprotocol]
        if ssl_context is not None:
            kwargs["ssl"] = ssl_context

        async def open_connection():
            return await websockets.connect(url, **kwargs)
        return cls(_Loop.run(open_connection()))

    def rid(self):
        r = self._next_rid
        self._next_rid += 1
        return r

    # -- sending --
    def send_raw(self, data):
        """One WebSocket message (bytes: binary, str: text, list: fragments)."""
        _Loop.run(self.ws.send(data))

    def hello(self, token, device_id, cursor=0, timeout=DEFAULT_TIMEOUT):
        """Hello -> the Welcome (raises AssertionError on an Error)."""
        rid = self.rid()
        self.send_raw(encode_hello(rid, token, device_id, cursor))
        reply = self.expect(("Welcome", "Error"), request_id=rid, timeout=timeout)
        assert reply.type == "Welcome", f"Hello refused: {reply}"
        return reply

    def send_message(self, body, conversation_id=0, peer_user_id=0, client_msg_id=None):
        """Queues a Send; returns its request id (wait with expect('Ack', request_id=...))."""
        rid = self.rid()
        self.send_raw(encode_send(rid, body, conversation_id, peer_user_id, client_msg_id))
        return rid

    def request(self, encoder, *args, reply=None, timeout=DEFAULT_TIMEOUT, **kwargs):
        """Sends encoder(rid, ...) and returns the frame that answers it."""
        rid = self.rid()
        self.send_raw(encoder(rid, *args, **kwargs))
        return self.expect(reply, request_id=rid, timeout=timeout)

    def start_heartbeats(self, interval_s):
        """Sends a Heartbeat every `interval_s` from the background loop, as
        a real client does, until close() or the connection ends."""
        async def beat():
            rid = self.AUTO_RID_BASE
            try:
                while True:
                    await asyncio.sleep(interval_s)
                    rid += 1
                    await self.ws.send(encode_heartbeat(rid))
            except (websockets.exceptions.ConnectionClosed, asyncio.CancelledError):
                pass

        async def start():
            return asyncio.ensure_future(beat())
        self._heartbeat_task = _Loop.run(start())

    def stop_heartbeats(self):
        if self._heartbeat_task is not None:
            task, self._heartbeat_task = self._heartbeat_task, None

            async def cancel():
                task.cancel()
            _Loop.run(cancel())

    # -- receiving --
    def _recv(self, timeout):
        async def recv():
            return await asyncio.wait_for(self.ws.recv(), timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = _Loop.run(recv(), timeout + 5)
            except websockets.exceptions.ConnectionClosed as e:
                raise Closed(e.code, e.reason) from None
            if isinstance(data, str):
                raise AssertionError(f"server sent a text message: {data[:80]!r}")
            frame = decode_frame(data)
            if frame.type == "HeartbeatAck" and frame.request_id > self.AUTO_RID_BASE:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise asyncio.TimeoutError()
                continue
            return frame

    def expect(self, types_=None, request_id=None, timeout=DEFAULT_TIMEOUT, where=None):
        """The first frame (backlog first) matching the type(s), request id
        and predicate; other frames stay in the backlog. Raises TimeoutError
        or Closed."""
        if isinstance(types_, str):
            types_ = (types_,)

        def matches(f):
            return ((types_ is None or f.type in types_)
                    and (request_id is None or f.request_id == request_id)
                    and (where is None or where(f)))

        for i, f in enumerate(self.backlog):
            if matches(f):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types_} (request_id={request_id}) within {timeout}s; "
                                   f"backlog: {[f.type for f in self.backlog]}")
            try:
                f = self._recv(left)
            except asyncio.TimeoutError:
                continue
            if matches(f):
                return f
            self.backlog.append(f)

    def collect(self, type_, count, timeout=DEFAULT_TIMEOUT):
        """`count` frames of one type, in arrival order."""
        deadline = time.monotonic() + timeout
        return [self.expect(type_, timeout=max(0.01, deadline - time.monotonic()))
                for _ in range(count)]

    def quiet(self, seconds):
        """Reads everything that arrives within `seconds` into the backlog."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.backlog.append(self._recv(left))
            except asyncio.TimeoutError:
                break
        return self.backlog

    def expect_close(self, timeout=DEFAULT_TIMEOUT):
        """Reads (into the backlog) until the server closes -> (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"connection not closed within {timeout}s")
            try:
                self.backlog.append(self._recv(left))
            except asyncio.TimeoutError:
                continue
            except Closed as c:
                return c.code, c.reason

    def close(self, code=1000):
        self.stop_heartbeats()
        try:
            _Loop.run(self.ws.close(code), 10)
        except Exception:  # noqa: BLE001 - closing a dead connection is fine
            pass

    def abort(self):
        """Drops the TCP connection without a close frame (a network failure)."""
        self.stop_heartbeats()
        self.ws.transport.abort()


# ---- raw WebSocket socket: framing under the test's control ------------------------

class RawWs:
    """A blocking socket that speaks just enough RFC 6455 to misbehave on
    purpose: arbitrary fragmentation, text frames, oversized frames, never
    reading, never answering a close."""

    def __init__(self, host, port, path="/ws", subprotocol=PROTOCOL, rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError(f"handshake: connection closed after {head!r}")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])
        self.buffer = b""

    def send_frame(self, payload, opcode=0x2, fin=True):
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
             ).to_bytes(n, "big")
        self.sock.sendall(header + mask + masked)

    def send_message(self, payload, fragments=1):
        """A binary message split into `fragments` WebSocket frames."""
        size = max(1, -(-len(payload) // fragments))
        parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        for i, part in enumerate(parts):
            self.send_frame(part, opcode=0x2 if i == 0 else 0x0, fin=i == len(parts) - 1)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv_frame(self):
        """-> (opcode, payload) of one server frame (servers never mask)."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def read_until_close(self, timeout=30):
        """Frames until a close frame or EOF -> (frames, close code or None)."""
        self.sock.settimeout(timeout)
        frames = []
        try:
            while True:
                opcode, payload = self.recv_frame()
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    return frames, code
                frames.append(decode_frame(payload))
        except (ConnectionError, OSError):
            return frames, None

    def read_delivers(self, count, timeout=60):
        """Reads until `count` Deliver frames arrived or the connection ended
        -> (delivers, close code or None if it ended without one, or
        "open" if it is still up)."""
        self.sock.settimeout(timeout)
        delivers = []
        try:
            while len(delivers) < count:
                opcode, payload = self.recv_frame()
                if opcode == 0x8:
                    return delivers, struct.unpack("!H", payload[:2])[0]
                f = decode_frame(payload)
                if f.type == "Deliver":
                    delivers.append(f)
        except (ConnectionError, OSError):
            return delivers, None
        return delivers, "open"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def unverified_ssl_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get_keepalive(host, port, paths, timeout=DEFAULT_TIMEOUT):
    """GETs several paths over ONE HTTP/1.1 connection -> [(status, body)]."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    out = []
    for p in paths:
        conn.request("GET", p)
        r = conn.getresponse()
        out.append((r.status, r.read()))
    conn.close()
    return out
