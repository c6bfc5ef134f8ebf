"""Promise 1 (an acknowledged message is never lost) and the graceful stop,
with the real process: kill -9 in the middle of a stream of sends, and
SIGTERM while sends are in flight."""

import socket
import threading
import time

from chatclient import CLOSE_GOING_AWAY, Closed, RawWs, encode_history, encode_send

STREAM = 400


def full_history(client, conv):
    """Every message of `conv`, oldest first: newest page, then pages
    before it (a 0 bound means "unset" on the wire)."""
    out, before = [], 0
    while True:
        page = client.request(encode_history, conv, before_seq=before, limit=200,
                              reply=("HistoryPage", "Error"))
        assert page.type == "HistoryPage", page
        if not page.messages:
            return out
        out = page.messages + out
        before = page.messages[0].seq
        if before == 1:
            return out


def pipeline(client, peer, count, prefix):
    """Sends `count` messages without waiting -> request id -> body."""
    return {client.send_message(f"{prefix}{i}", peer_user_id=peer): f"{prefix}{i}"
            for i in range(count)}


def read_replies(client, rids, until_closed=True, timeout=30):
    """Acks (request id -> Ack) and Errors received before the stream ends."""
    acks, errors = {}, {}
    deadline = time.monotonic() + timeout
    try:
        while len(acks) + len(errors) < len(rids) and time.monotonic() < deadline:
            f = client.expect(("Ack", "Error"), timeout=max(0.1, deadline - time.monotonic()))
            (acks if f.type == "Ack" else errors)[f.request_id] = f
    except (Closed, TimeoutError, ConnectionError):
        if not until_closed:
            raise
    return acks, errors


def test_kill9_mid_stream_loses_no_acked_message(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")

    # A sender that keeps sending until the connection dies, so the kill
    # lands while sends are being received, committed and acknowledged.
    sent = {}
    def sender():
        for i in range(20_000):
            try:
                body = f"k{i}"
                rid = a.rid()
                sent[rid] = body
                a.send_raw(encode_send(rid, body, peer_user_id=bob.user_id))
            except Exception:  # noqa: BLE001 - the kill ends the stream
                return
    thread = threading.Thread(target=sender)
    thread.start()

    acks = {}
    while len(acks) < 200:
        f = a.expect(("Ack", "Error"))
        assert f.type == "Ack", f
        acks[f.request_id] = f
    daemon.kill9()
    more, errors = read_replies(a, sent, timeout=10)
    thread.join(30)
    acks.update(more)
    assert not errors, errors
    assert len(acks) < len(sent), "every send was acked: the kill tested nothing"

    daemon.start()
    b = daemon.connect(bob, "b")
    conv = next(iter(acks.values())).conversation_id
    stored = full_history(b, conv)
    by_id = {m.message_id: m for m in stored}
    for rid, ack in acks.items():
        m = by_id.get(ack.message_id)
        assert m is not None, f"acked message {rid} lost"
        assert m.seq == ack.seq and m.body == sent[rid]
    # One order, no gaps: seqs are 1..n, and the stored prefix is in send order.
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
    order = {body: i for i, body in enumerate(sent.values())}
    assert [order[m.body] for m in stored] == sorted(order[m.body] for m in stored)
    # Bob's inbox agrees with the history.
    assert b.welcome.inbox_head == len(stored)


def test_sigterm_acks_in_flight_sends_then_closes_1001(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    sent = pipeline(a, bob.user_id, STREAM, "t")
    exit_code = {}
    stopper = threading.Thread(target=lambda: exit_code.setdefault("code", daemon.sigterm()))
    stopper.start()

    acks, errors = read_replies(a, sent)
    code, _ = a.expect_close(timeout=30)
    stopper.join(60)
    assert exit_code.get("code") == 0, daemon.log()
    assert code == CLOSE_GOING_AWAY
    # A send the server read after the stop began is refused as unavailable
    # (retry elsewhere); none is refused for any other reason.
    assert all(e.name == "unavailable" for e in errors.values()), errors

    daemon.start()
    b = daemon.connect(bob, "b")
    stored = full_history(b, next(iter(acks.values())).conversation_id) if acks else []
    # Every message that was committed was acknowledged before the close:
    # the stop drained the commit pipeline and the acks.
    assert sorted(m.message_id for m in stored) == sorted(x.message_id for x in acks.values())
    assert {m.body for m in stored} == {sent[rid] for rid in acks}


def test_readyz_is_503_while_draining(daemon):
    # An HTTP request whose body is still arriving is in flight: the drain
    # waits for it (up to the drain timeout), which keeps the daemon
    # draining long enough to look at it.
    slow = socket.create_connection((daemon.host, daemon.port))
    slow.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 100\r\n\r\n{")
    assert daemon.api.raw("GET", "/readyz")[0] == 200

    exit_code = {}
    stopper = threading.Thread(target=lambda: exit_code.setdefault("code", daemon.sigterm()))
    stopper.start()
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline and status != 503:
        status = daemon.api.raw("GET", "/readyz", timeout=2)[0]
    assert status == 503
    assert daemon.api.raw("GET", "/livez", timeout=2)[0] == 200
    # New chat sessions are refused while draining.
    refused = RawWs(daemon.host, daemon.port)
    assert refused.status == 503
    refused.close()

    stopper.join(60)
    assert exit_code.get("code") == 0, daemon.log()
    slow.close()
