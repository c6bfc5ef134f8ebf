"""Presence over real connections, with the suite's shortened timings
(conftest.PRESENCE_TIMEOUT_MS): online while heartbeating, offline after
the timeout when silent or dropped, offline at once on logout."""

import time

from chatclient import (CLOSE_HEARTBEAT_TIMEOUT, CLOSE_UNAUTHENTICATED, Closed,
                        encode_heartbeat, encode_presence_query)
from conftest import PRESENCE_HEARTBEAT_MS, PRESENCE_TIMEOUT_MS

TIMEOUT_S = PRESENCE_TIMEOUT_MS / 1000


def presence_of(client, user_id):
    reply = client.request(encode_presence_query, [user_id], reply="PresenceList")
    (item,) = reply.items
    assert item.user_id == user_id
    return item


def watching(daemon, watcher, watched):
    """`watcher` adds `watched` as a contact: presence changes are pushed."""
    status, doc = daemon.api.call("POST", "/api/v1/contacts", {"user_id": str(watched.user_id)},
                                  token=watcher.token)
    assert status == 201, doc


def test_heartbeats_keep_a_user_online(daemon):
    alice, carol = daemon.user(), daemon.user()
    watching(daemon, carol, alice)
    c = daemon.connect(carol, "c")
    a = daemon.connect(alice, "a", heartbeat=False)
    assert c.expect("Presence", where=lambda f: f.user_id == alice.user_id).online

    # Heartbeat for twice the timeout: never offline, never closed.
    deadline = time.monotonic() + 2 * TIMEOUT_S
    while time.monotonic() < deadline:
        assert a.request(encode_heartbeat, reply="HeartbeatAck").server_time_ms > 0
        time.sleep(PRESENCE_HEARTBEAT_MS / 1000)
    assert presence_of(c, alice.user_id).online
    assert not [f for f in c.quiet(0.1) if f.type == "Presence" and not f.online]


def test_silent_session_goes_offline_after_the_timeout(daemon):
    alice, carol = daemon.user(), daemon.user()
    watching(daemon, carol, alice)
    c = daemon.connect(carol, "c")
    a = daemon.connect(alice, "a", heartbeat=False)
    assert c.expect("Presence", where=lambda f: f.user_id == alice.user_id).online
    assert presence_of(c, alice.user_id).online

    # Alice sends nothing: the server closes her session 4009 and tells
    # carol she went offline, with a last-seen time.
    code, _ = a.expect_close(timeout=TIMEOUT_S + 10)
    assert code == CLOSE_HEARTBEAT_TIMEOUT
    went = c.expect("Presence", where=lambda f: f.user_id == alice.user_id and not f.online,
                    timeout=TIMEOUT_S + 10)
    assert went.last_seen_ms > 0
    after = presence_of(c, alice.user_id)
    assert not after.online and after.last_seen_ms == went.last_seen_ms


def test_dropped_connection_stays_online_until_the_timeout(daemon):
    alice, carol = daemon.user(), daemon.user()
    watching(daemon, carol, alice)
    c = daemon.connect(carol, "c")
    a = daemon.connect(alice, "a")
    c.expect("Presence", where=lambda f: f.user_id == alice.user_id and f.online)

    a.abort()  # no close frame: a network failure, not a logout
    dropped_at = time.monotonic()
    # Right after the drop alice still counts as online (no flapping)...
    assert presence_of(c, alice.user_id).online
    # ... and goes offline once her heartbeat deadline passes.
    went = c.expect("Presence", where=lambda f: f.user_id == alice.user_id and not f.online,
                    timeout=TIMEOUT_S + 10)
    assert time.monotonic() - dropped_at >= TIMEOUT_S / 2
    assert went.last_seen_ms > 0


def test_logout_closes_the_socket_and_goes_offline_at_once(daemon):
    alice, carol = daemon.user(), daemon.user()
    watching(daemon, carol, alice)
    c = daemon.connect(carol, "c")
    a = daemon.connect(alice, "a")
    c.expect("Presence", where=lambda f: f.user_id == alice.user_id and f.online)

    status, _ = daemon.api.call("DELETE", "/api/v1/sessions", token=alice.token)
    assert status == 204
    code, _ = a.expect_close()
    assert code == CLOSE_UNAUTHENTICATED
    assert [f.name for f in a.backlog if f.type == "Error"] == ["unauthenticated"]

    # Offline at once: the push arrives well before the heartbeat timeout
    # could have produced it.
    went = c.expect("Presence", where=lambda f: f.user_id == alice.user_id and not f.online,
                    timeout=TIMEOUT_S / 2)
    assert went.last_seen_ms > 0
    assert not presence_of(c, alice.user_id).online

    # The revoked token no longer opens a session.
    again = daemon.connect()
    try:
        again.hello(alice.token, "a")
        raise AssertionError("revoked token accepted")
    except (AssertionError, Closed) as e:
        assert "revoked token accepted" not in str(e)
