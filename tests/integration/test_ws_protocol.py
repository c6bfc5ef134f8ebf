"""The WebSocket edge of the protocol: size limits, bad input, framing
(fragmentation, text frames, oversized frames), the close codes, and which
upgrades the server accepts."""

import os

from chatclient import (CLOSE_FRAME_TOO_LARGE, CLOSE_MALFORMED_FRAME,
                        CLOSE_PROTOCOL_VIOLATION, ChatClient, RawWs,
                        decode_frame, encode_heartbeat, encode_hello,
                        encode_send)

MAX_BODY_CHARS = 100_000


def test_largest_body_is_accepted_and_one_more_char_is_refused(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    b = daemon.connect(bob, "b")

    # 100,000 four-byte characters: a 400 KB body, far over any single
    # WebSocket read, so the server must reassemble the frame.
    big = "\U0001F600" * MAX_BODY_CHARS
    rid = a.send_message(big, peer_user_id=bob.user_id)
    ack = a.expect(("Ack", "Error"), request_id=rid, timeout=20)
    assert ack.type == "Ack", ack
    d = b.expect("Deliver", timeout=20)
    assert d.message.message_id == ack.message_id
    assert d.message.body == big

    rid = a.send_message("x" * (MAX_BODY_CHARS + 1), peer_user_id=bob.user_id)
    err = a.expect(("Ack", "Error"), request_id=rid)
    assert err.type == "Error" and err.name == "too_large", err

    # Still connected: the next send goes through.
    rid = a.send_message("small again", peer_user_id=bob.user_id)
    assert a.expect(("Ack", "Error"), request_id=rid).type == "Ack"


def test_invalid_utf8_is_refused_and_the_connection_stays(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    for bad in (b"\xff\xfe", b"abc\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        rid = a.send_message(bad, peer_user_id=bob.user_id)
        err = a.expect(("Ack", "Error"), request_id=rid)
        assert err.type == "Error" and err.name == "invalid_utf8", (bad, err)
    rid = a.send_message("valid: \u00e9\u4e16\U0001F600", peer_user_id=bob.user_id)
    assert a.expect(("Ack", "Error"), request_id=rid).type == "Ack"


def test_malformed_frame_closes_4002(daemon):
    alice = daemon.user()
    a = daemon.connect(alice, "a")
    a.send_raw(os.urandom(7) + b"\x00not a flatbuffer")
    code, _ = a.expect_close()
    assert code == CLOSE_MALFORMED_FRAME
    errors = [f for f in a.backlog if f.type == "Error"]
    assert errors and errors[-1].name == "malformed_frame"


def test_frame_before_hello_closes_4000(daemon):
    c = daemon.connect()
    c.send_raw(encode_heartbeat(1))
    code, _ = c.expect_close()
    assert code == CLOSE_PROTOCOL_VIOLATION


def test_text_message_closes_4002(daemon):
    c = daemon.connect()
    c.send_raw("a text message")
    code, _ = c.expect_close()
    assert code == CLOSE_MALFORMED_FRAME


def test_frame_over_the_frame_limit_closes_4003(daemon):
    alice = daemon.user()
    raw = RawWs(daemon.host, daemon.port)
    assert raw.status == 101
    raw.send_message(encode_hello(1, alice.token, "raw"))
    assert raw.recv_frame()[0] == 0x2  # Welcome
    # Default max_frame_bytes is 512 KiB; announce 600 KiB in fragments.
    raw.send_message(os.urandom(600 * 1024), fragments=4)
    frames, code = raw.read_until_close()
    assert code == CLOSE_FRAME_TOO_LARGE
    assert [f.name for f in frames if f.type == "Error"] == ["too_large"]
    raw.close()
    # The server is fine.
    assert daemon.api.raw("GET", "/livez")[0] == 200


def test_fragmented_messages_are_reassembled(daemon):
    alice, bob = daemon.user(), daemon.user()
    b = daemon.connect(bob, "b")
    raw = RawWs(daemon.host, daemon.port)
    raw.send_message(encode_hello(7, alice.token, "raw"), fragments=5)
    opcode, payload = raw.recv_frame()
    welcome = decode_frame(payload)
    assert welcome.type == "Welcome" and welcome.request_id == 7
    body = "\u4e16" * 50_000  # 150 KB, in 9 fragments
    raw.send_message(encode_send(8, body, peer_user_id=bob.user_id), fragments=9)
    while True:
        frame = decode_frame(raw.recv_frame()[1])
        if frame.type in ("Ack", "Error"):
            break
    assert frame.type == "Ack" and frame.request_id == 8, frame
    assert b.expect("Deliver").message.body == body
    raw.close()


def test_client_without_subprotocol_is_accepted(daemon):
    alice = daemon.user()
    c = ChatClient.connect(daemon.ws_url, subprotocol=None)
    assert c.hello(alice.token, "nosub").user_id == alice.user_id
    c.close()
    raw = RawWs(daemon.host, daemon.port, subprotocol=None)
    assert raw.status == 101
    raw.close()


def test_upgrade_elsewhere_than_ws_is_refused(daemon):
    raw = RawWs(daemon.host, daemon.port, path="/api/v1/users")
    assert raw.status == 404
    raw.close()
    raw = RawWs(daemon.host, daemon.port, path="/")
    assert raw.status == 404
    raw.close()
