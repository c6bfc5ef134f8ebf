"""Chat over real WebSockets: live delivery and acks, groups with an offline
member, several devices per user, idempotent resends, history paging after
a restart, and refusals that keep the connection open."""

from chatclient import (direct_conversation, encode_heartbeat, encode_history,
                        encode_mark_read, encode_sync, group_conversation,
                        new_client_msg_id)


def history(client, conv, **kwargs):
    page = client.request(encode_history, conv, reply=("HistoryPage", "Error"), **kwargs)
    assert page.type == "HistoryPage", page
    return page.messages


def test_direct_message_is_acked_then_delivered(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a-phone")
    b = daemon.connect(bob, "b-phone")

    rid = a.send_message("hello bob", peer_user_id=bob.user_id)
    ack = a.expect(("Ack", "Error"), request_id=rid)
    assert ack.type == "Ack", ack
    conv = direct_conversation(alice.user_id, bob.user_id)
    assert ack.conversation_id == conv
    assert ack.seq == 1 and ack.inbox_seq == 1 and not ack.duplicate
    assert ack.message_id > 0

    d = b.expect("Deliver")
    assert d.inbox_seq == 1
    assert d.message.message_id == ack.message_id
    assert d.message.sender_id == alice.user_id
    assert d.message.conversation_id == conv
    assert d.message.seq == 1
    assert d.message.body == "hello bob"

    # Bob answers in the same conversation, by its id this time.
    rid = b.send_message("hi alice", conversation_id=conv)
    assert b.expect("Ack", request_id=rid).seq == 2
    assert a.expect("Deliver", where=lambda f: f.message.sender_id == bob.user_id).message.body \
        == "hi alice"


def test_group_member_offline_gets_everything_by_cursor(daemon):
    alice, bob, carol = daemon.user(), daemon.user(), daemon.user()
    group = daemon.api.create_group(alice.token, "trio", [bob.user_id, carol.user_id])
    conv = group_conversation(group)
    a = daemon.connect(alice, "a")
    b = daemon.connect(bob, "b")

    sent = []
    for i, (client, who) in enumerate([(a, alice), (b, bob), (a, alice), (b, bob), (a, alice)]):
        rid = client.send_message(f"message {i}", conversation_id=conv)
        ack = client.expect(("Ack", "Error"), request_id=rid)
        assert ack.type == "Ack", ack
        sent.append((ack.seq, ack.message_id, f"message {i}", who.user_id))
    assert [s[0] for s in sent] == [1, 2, 3, 4, 5]

    # Bob, online, saw the whole conversation live (his own sends included).
    live = b.collect("Deliver", 5)
    assert [d.message.seq for d in live] == [1, 2, 3, 4, 5]

    # Carol was offline: she connects with cursor 0 and catches up, in order.
    c = daemon.connect(carol, "c", cursor=0)
    assert c.welcome.inbox_head == 5
    caught_up = c.collect("Deliver", 5)
    assert [d.inbox_seq for d in caught_up] == [1, 2, 3, 4, 5]
    assert [(d.message.seq, d.message.message_id, d.message.body, d.message.sender_id)
            for d in caught_up] == sent
    # ... the same order as the history API.
    assert [(m.seq, m.message_id) for m in history(c, conv)] == [(s[0], s[1]) for s in sent]

    # Reconnecting with her cursor gives nothing again; live delivery goes on.
    c.close()
    c2 = daemon.connect(carol, "c", cursor=5)
    rid = a.send_message("after", conversation_id=conv)
    a.expect("Ack", request_id=rid)
    d = c2.expect("Deliver")
    assert d.inbox_seq == 6 and d.message.body == "after"
    assert not [f for f in c2.quiet(0.3) if f.type == "Deliver"]


def test_two_devices_of_one_user_both_receive(daemon):
    alice, bob = daemon.user(), daemon.user()
    phone = daemon.connect(alice, "phone")
    laptop = daemon.connect(alice, "laptop")
    b = daemon.connect(bob, "b")

    rid = b.send_message("to both devices", peer_user_id=alice.user_id)
    ack = b.expect("Ack", request_id=rid)
    for device in (phone, laptop):
        d = device.expect("Deliver")
        assert d.message.message_id == ack.message_id
        assert d.message.body == "to both devices"

    # A message sent from the phone shows up on the laptop too.
    rid = phone.send_message("sent from my phone", peer_user_id=bob.user_id)
    ack = phone.expect("Ack", request_id=rid)
    on_laptop = laptop.expect("Deliver", where=lambda f: f.message.message_id == ack.message_id)
    assert on_laptop.message.sender_id == alice.user_id
    assert on_laptop.inbox_seq == ack.inbox_seq
    assert b.expect("Deliver", where=lambda f: f.message.message_id == ack.message_id)


def test_resending_a_client_msg_id_is_idempotent(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    cmid = new_client_msg_id()
    rid = a.send_message("once", peer_user_id=bob.user_id, client_msg_id=cmid)
    first = a.expect("Ack", request_id=rid)
    assert not first.duplicate

    # The client "lost" the ack: it reconnects and resends the same id.
    a.close()
    a2 = daemon.connect(alice, "a", cursor=first.inbox_seq)
    rid = a2.send_message("once", peer_user_id=bob.user_id, client_msg_id=cmid)
    again = a2.expect("Ack", request_id=rid)
    assert again.duplicate
    assert (again.message_id, again.seq, again.conversation_id) == \
        (first.message_id, first.seq, first.conversation_id)

    msgs = history(a2, first.conversation_id)
    assert [m.message_id for m in msgs] == [first.message_id]
    # Nobody's inbox grew: bob has exactly one entry.
    b = daemon.connect(bob, "b")
    assert b.welcome.inbox_head == 1


def test_history_pages_survive_a_restart(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    acks = []
    for i in range(25):
        rid = a.send_message(f"m{i:02d}", peer_user_id=bob.user_id)
        acks.append(a.expect("Ack", request_id=rid))
    conv = acks[0].conversation_id

    daemon.restart()

    b = daemon.connect(bob, "b")
    newest = history(b, conv, limit=10)
    assert [m.body for m in newest] == [f"m{i:02d}" for i in range(15, 25)]
    middle = history(b, conv, before_seq=newest[0].seq, limit=10)
    assert [m.body for m in middle] == [f"m{i:02d}" for i in range(5, 15)]
    oldest = history(b, conv, before_seq=middle[0].seq, limit=10)
    assert [m.body for m in oldest] == [f"m{i:02d}" for i in range(0, 5)]
    assert [m.message_id for m in oldest + middle + newest] == [x.message_id for x in acks]
    forward = history(b, conv, after_seq=20, limit=10)
    assert [m.seq for m in forward] == [21, 22, 23, 24, 25]

    # The same pages through the HTTP API.
    status, doc = daemon.api.call("GET", f"/api/v1/conversations/{conv}/messages?limit=5",
                                  token=bob.token)
    assert status == 200, doc
    assert [m["body"] for m in doc["messages"]] == [f"m{i:02d}" for i in range(20, 25)]

    # And bob's inbox, synced explicitly, holds all 25 in order.
    batch = b.request(encode_sync, 0, 100, reply="SyncBatch")
    assert [d.inbox_seq for d in batch.items] == list(range(1, 26))
    assert batch.inbox_head == 25


def test_non_member_is_refused_and_stays_connected(daemon):
    alice, bob, mallory = daemon.user(), daemon.user(), daemon.user()
    group = daemon.api.create_group(alice.token, "private", [bob.user_id])
    m = daemon.connect(mallory, "m")

    rid = m.send_message("let me in", conversation_id=group_conversation(group))
    err = m.expect(("Ack", "Error"), request_id=rid)
    assert err.type == "Error" and err.name == "permission_denied", err

    # Someone else's 1-on-1 conversation: also refused.
    rid = m.send_message("psst", conversation_id=direct_conversation(alice.user_id, bob.user_id))
    err = m.expect(("Ack", "Error"), request_id=rid)
    assert err.type == "Error" and err.name == "permission_denied", err

    # Reading it is refused too.
    page = m.request(encode_history, group_conversation(group), reply=("HistoryPage", "Error"))
    assert page.type == "Error" and page.name == "permission_denied"

    # The connection is still up and usable.
    assert m.request(encode_heartbeat, reply="HeartbeatAck").server_time_ms > 0
    rid = m.send_message("hi alice", peer_user_id=alice.user_id)
    assert m.expect(("Ack", "Error"), request_id=rid).type == "Ack"


def test_mark_read_is_acked_over_websocket_and_counts_unread(daemon):
    # MarkRead is a store write: the daemon runs it on its write thread and
    # answers on the network thread; the ack carries the stored cursor.
    alice, bob, carol = daemon.user(), daemon.user(), daemon.user()
    a = daemon.connect(alice, "a-phone")
    b = daemon.connect(bob, "b-phone")
    conv = direct_conversation(alice.user_id, bob.user_id)
    for i in range(3):
        rid = a.send_message(f"m{i}", peer_user_id=bob.user_id)
        assert a.expect("Ack", request_id=rid).seq == i + 1

    ack = b.request(encode_mark_read, conv, 2, reply=("MarkReadAck", "Error"))
    assert ack.type == "MarkReadAck", ack
    assert (ack.conversation_id, ack.seq) == (conv, 2)
    # Never backwards, and clamped to the conversation's last seq.
    assert b.request(encode_mark_read, conv, 1, reply="MarkReadAck").seq == 2
    assert b.request(encode_mark_read, conv, 99, reply="MarkReadAck").seq == 3
    # A stranger's mark is refused with an error, and the connection stays.
    c = daemon.connect(carol, "c-phone")
    err = c.request(encode_mark_read, conv, 1, reply=("MarkReadAck", "Error"))
    assert err.type == "Error" and err.name == "permission_denied", err
    assert c.request(encode_heartbeat, reply="HeartbeatAck").type == "HeartbeatAck"
    # The HTTP view agrees.
    status, doc = daemon.api.call("GET", "/api/v1/conversations", token=bob.token)
    assert status == 200, doc
    assert [x["unread"] for x in doc["conversations"] if x["conversation_id"] == str(conv)] == [0]


def test_a_burst_of_read_marks_gets_one_answer_each_and_the_last_cursor(daemon):
    # Read marks are stored on the daemon's write thread, at most 16 per
    # session at a time; beyond that one is refused with rate_limited rather
    # than queued without bound. Whether any is refused depends on timing:
    # what is checked is that each gets exactly one answer of either kind,
    # the connection stays, and the cursor ends where the accepted marks say.
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a-phone")
    b = daemon.connect(bob, "b-phone")
    conv = direct_conversation(alice.user_id, bob.user_id)
    for i in range(100):
        rid = a.send_message(f"m{i}", peer_user_id=bob.user_id)
    assert a.expect("Ack", request_id=rid).seq == 100
    rids = []
    for seq in range(1, 101):
        rid = b.rid()
        b.send_raw(encode_mark_read(rid, conv, seq))
        rids.append((rid, seq))
    best = 0
    for rid, seq in rids:
        reply = b.expect(("MarkReadAck", "Error"), request_id=rid)
        if reply.type == "Error":
            assert reply.name == "rate_limited", reply
        else:
            assert reply.seq >= seq  # never backwards; may include later marks
            best = max(best, reply.seq)
    assert best >= 1
    # Still connected, and a last mark lands.
    assert b.request(encode_mark_read, conv, 100, reply="MarkReadAck").seq == 100
