"""The outbound path of a WebSocket connection: chatcored frames messages
itself and writes several queued for one connection in one socket write
(LwsSession::write_pending). Every length encoding of RFC 6455 must
reach the client intact, and coalescing must actually happen."""


def test_every_payload_length_encoding_arrives_intact(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    b = daemon.connect(bob, "b")
    # Bodies whose framed Deliver crosses the 7-bit (<126), 16-bit
    # (<65,536) and 64-bit payload length forms, and sizes around each edge.
    sizes = [1, 20, 60, 100, 125, 126, 127, 1_000, 65_000, 65_536, 70_000, 100_000]
    for i, n in enumerate(sizes):
        body = chr(ord("a") + i % 26) * n
        rid = a.send_message(body, peer_user_id=bob.user_id)
        assert a.expect(("Ack", "Error"), request_id=rid).type == "Ack"
        d = b.expect("Deliver")
        assert d.message.body == body, n
        assert d.message.seq == i + 1


def test_frames_queued_together_share_one_write(make_daemon):
    daemon = make_daemon(limits={"sends_per_second": 10_000, "send_burst": 10_000})
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    b = daemon.connect(bob, "b")
    frames_before = daemon.metric("chatcored_ws_frames_sent_total")
    writes_before = daemon.metric("chatcored_ws_writes_total")

    burst = 200
    rids = [a.send_message(f"m{i}", peer_user_id=bob.user_id) for i in range(burst)]
    for rid in rids:
        assert a.expect("Ack", request_id=rid).type == "Ack"
    got = [b.expect("Deliver").message.body for _ in range(burst)]
    assert got == [f"m{i}" for i in range(burst)]

    frames = daemon.metric("chatcored_ws_frames_sent_total") - frames_before
    writes = daemon.metric("chatcored_ws_writes_total") - writes_before
    # Each message is an Ack and a Deliver to alice's connection (her own
    # device gets its Deliver too) and a Deliver to bob's: 3 frames. The
    # Ack and alice's Deliver come out of one commit in one loop pass, so
    # they always share a write: at most 2 writes per message, fewer when
    # a commit carries several messages.
    assert frames >= 3 * burst
    assert writes <= 2 * burst, (frames, writes)
    assert writes >= 1
