"""A client that stops reading must cost neither memory without bound nor
another client a message (DESIGN.md promise 6): its outbound queue is
capped (limits.outbound_hard_bytes) and it is closed 4008; it resyncs
from its cursor when it comes back."""

from chatclient import RawWs, encode_hello, group_conversation

MESSAGES = 150
BODY = "s" * 50_000  # 150 x 50 KB = 7.5 MB for the slow reader


def test_slow_consumer_is_cut_off_and_others_get_everything(make_daemon):
    # A long presence timeout: the raw slow reader sends no heartbeats.
    daemon = make_daemon(limits={"outbound_soft_bytes": "256KiB",
                                 "outbound_hard_bytes": "1MiB"},
                         presence={"heartbeat_interval_ms": 1000, "timeout_ms": 120_000})
    alice, fast_user, slow_user = daemon.user(), daemon.user(), daemon.user()
    group = daemon.api.create_group(alice.token, "firehose", [fast_user.user_id,
                                                              slow_user.user_id])
    conv = group_conversation(group)

    # The slow reader: a tiny receive buffer, a Hello, then it never reads.
    slow = RawWs(daemon.host, daemon.port, rcvbuf=4096)
    slow.send_message(encode_hello(1, slow_user.token, "slow"))
    fast = daemon.connect(fast_user, "fast")
    a = daemon.connect(alice, "a")
    rss_before = daemon.rss_kib()

    acks = []
    for i in range(MESSAGES):
        rid = a.send_message(f"{i:04d}{BODY}", conversation_id=conv)
        acks.append(a.expect(("Ack", "Error"), request_id=rid, timeout=30))
        # The fast reader keeps up, as a healthy client does.
        fast.quiet(0)
    assert all(x.type == "Ack" for x in acks)

    # Nothing lost for the client that reads.
    got = [f for f in fast.backlog if f.type == "Deliver"]
    got += fast.collect("Deliver", MESSAGES - len(got), timeout=60)
    assert [d.message.body[:4] for d in got] == [f"{i:04d}" for i in range(MESSAGES)]

    # The slow reader either fell behind with a bounded queue (the engine
    # stops feeding a session at the soft limit and resumes when it drains)
    # or was closed as a slow consumer at the hard limit. Either way its
    # backlog never became daemon memory: 7.5 MB were sent to it.
    assert daemon.metric("chatcored_ws_outbound_queued_bytes") <= 1024 * 1024 + 512 * 1024
    assert daemon.rss_kib() - rss_before < 64 * 1024

    # When it reads again it gets everything, in order: from the same
    # connection if it is still up, else by resyncing from its cursor.
    delivers, state = slow.read_delivers(MESSAGES, timeout=60)
    seqs = [d.inbox_seq for d in delivers]
    assert seqs == list(range(1, len(seqs) + 1))
    slow.close()
    if state != "open":
        assert state in (4008, None), state
        assert daemon.metric("chatcore_slow_consumer_closes_total") >= 1
        again = daemon.connect(slow_user, "slow", cursor=len(seqs))
        seqs += [d.inbox_seq for d in again.collect("Deliver", MESSAGES - len(seqs), timeout=60)]
    assert seqs == list(range(1, MESSAGES + 1))
