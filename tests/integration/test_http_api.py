"""The JSON HTTP API (/api/v1, docs/http-api.md) against the REAL chatcored:
accounts and tokens, profiles, contacts with presence, groups and their
membership rules (the 101st member), conversations with unread counts,
sends (durable, idempotent, the same path as WebSocket sends), history pages
that survive a daemon restart, a 100,000-character body JSON-escaped to
about 1.2 MB, the rate limit, and the error contract (status, code,
headers).

HTTP goes through chatclient.Api (urllib); WebSockets, where a test checks
that HTTP and WebSocket share one engine, through chatclient.ChatClient.
daemon/tests/http_api_test.cpp covers every route and error in-process,
including token expiry (which here would take the 60 s minimum TTL)."""

import json
import time
import uuid

from chatclient import direct_conversation, group_conversation

PASSWORD = "correct-horse-battery"


def call(daemon, method, path, doc=None, token=None):
    return daemon.api.call(method, "/api/v1" + path, doc, token=token)


def raw(daemon, method, path, body=None, token=None):
    """-> (status, parsed JSON or None, headers), for bodies json.dumps cannot make."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    status, data, hdrs = daemon.api.raw(method, "/api/v1" + path, body, headers)
    return status, (json.loads(data) if data else None), hdrs


def error_code(doc):
    return doc["error"]["code"]


def send(daemon, user, conv, body, cmid=None):
    return call(daemon, "POST", f"/conversations/{conv}/messages",
                {"client_msg_id": cmid or str(uuid.uuid4()), "body": body}, user.token)


def page(daemon, user, conv, query=""):
    status, doc = call(daemon, "GET", f"/conversations/{conv}/messages{query}", token=user.token)
    assert status == 200, doc
    return doc["messages"]


def test_signup_login_profile_logout(daemon):
    status, doc = call(daemon, "POST", "/users",
                       {"name": "alice", "password": PASSWORD, "email": "alice@example.org",
                        "display_name": "Alice"})
    assert status == 201, doc
    assert isinstance(doc["user_id"], str)
    alice_id = doc["user_id"]

    status, doc = call(daemon, "POST", "/users", {"name": "alice", "password": PASSWORD})
    assert (status, error_code(doc)) == (409, "already_exists")
    for bad in ({"name": "al ice", "password": PASSWORD}, {"name": "bob", "password": "short"},
                {"name": "x" * 65, "password": PASSWORD}, {"name": "bob"},
                {"name": 7, "password": PASSWORD}):
        status, doc = call(daemon, "POST", "/users", bad)
        assert (status, error_code(doc)) == (400, "invalid_argument"), bad

    status, doc = call(daemon, "POST", "/sessions", {"name": "alice", "password": "wrong-password"})
    assert (status, error_code(doc)) == (401, "unauthenticated")
    status, doc = call(daemon, "POST", "/sessions", {"name": "nobody", "password": PASSWORD})
    assert (status, error_code(doc)) == (401, "unauthenticated")
    status, doc = call(daemon, "POST", "/sessions", {"name": "alice", "password": PASSWORD})
    assert status == 200, doc
    assert doc["user_id"] == alice_id and len(doc["token"]) == 64
    assert doc["expires_at"] > time.time() * 1000
    token = doc["token"]

    status, me = call(daemon, "GET", "/users/me", token=token)
    assert status == 200
    assert me["name"] == "alice" and me["display_name"] == "Alice"
    assert me["email"] == "alice@example.org"
    status, me = call(daemon, "PATCH", "/users/me",
                      {"about": "hi", "image_url": "https://example.org/a.png"}, token)
    assert status == 200 and me["about"] == "hi" and me["display_name"] == "Alice"
    status, doc = call(daemon, "PATCH", "/users/me", {"image_url": "javascript:alert(1)"}, token)
    assert (status, error_code(doc)) == (400, "invalid_argument")

    # Another user sees the public profile: no email, phone or hash.
    bob = daemon.user("bob")
    for path in (f"/users/{alice_id}", "/users?name=alice"):
        status, doc = call(daemon, "GET", path, token=bob.token)
        assert status == 200, path
        assert doc["user_id"] == alice_id and doc["about"] == "hi"
        assert "email" not in doc and "phone" not in doc
        assert "argon2" not in json.dumps(doc)
    status, doc = call(daemon, "GET", "/users?name=nobody", token=bob.token)
    assert (status, error_code(doc)) == (404, "not_found")

    # Logout revokes exactly this token.
    status, second = call(daemon, "POST", "/sessions", {"name": "alice", "password": PASSWORD})
    status, doc = call(daemon, "DELETE", "/sessions", token=token)
    assert (status, doc) == (204, None)
    status, doc = call(daemon, "GET", "/users/me", token=token)
    assert (status, error_code(doc)) == (401, "unauthenticated")
    assert call(daemon, "GET", "/users/me", token=second["token"])[0] == 200


def test_error_contract(daemon):
    user = daemon.user()
    status, doc, headers = raw(daemon, "GET", "/no/such/route", token=user.token)
    assert (status, error_code(doc)) == (404, "not_found")

    status, doc, headers = raw(daemon, "PUT", "/users", b"{}")
    assert status == 405 and headers["Allow"] == "POST, GET"
    assert error_code(doc) == "invalid_argument"

    status, doc, headers = raw(daemon, "GET", "/users/me")
    assert (status, error_code(doc)) == (401, "unauthenticated")
    assert headers["WWW-Authenticate"] == "Bearer"
    status, doc, _ = raw(daemon, "GET", "/users/me", token="f" * 64)
    assert (status, error_code(doc)) == (401, "unauthenticated")

    status, doc, _ = raw(daemon, "POST", "/contacts", b'{"user_id": ', user.token)
    assert (status, error_code(doc)) == (400, "invalid_argument")
    status, doc, _ = raw(daemon, "POST", "/contacts", b'{"user_id": "\xff"}', user.token)
    assert (status, error_code(doc)) == (400, "invalid_utf8")
    status, doc, _ = raw(daemon, "POST", "/contacts", b"[]", user.token)
    assert (status, error_code(doc)) == (400, "invalid_argument")

    status, doc = call(daemon, "GET", "/discover", token=user.token)
    assert status == 200 and doc["ws_url"] == daemon.ws_url


def test_logout_closes_the_websocket_opened_with_the_token(daemon):
    alice = daemon.user()
    ws = daemon.connect(alice, "phone")
    assert call(daemon, "DELETE", "/sessions", token=alice.token)[0] == 204
    code, _ = ws.expect_close()
    assert code == 4001


def test_contacts_with_presence(daemon):
    alice, bob = daemon.user(), daemon.user()
    bob_id = str(bob.user_id)
    status, doc = call(daemon, "POST", "/contacts", {"user_id": bob_id}, alice.token)
    assert status == 201 and doc["user_id"] == bob_id and doc["online"] is False
    status, doc = call(daemon, "POST", "/contacts", {"user_id": bob_id}, alice.token)
    assert (status, error_code(doc)) == (409, "already_exists")
    status, doc = call(daemon, "POST", "/contacts", {"user_id": "999999"}, alice.token)
    assert (status, error_code(doc)) == (404, "not_found")

    ws = daemon.connect(bob, "b")
    status, doc = call(daemon, "GET", "/contacts", token=alice.token)
    assert status == 200
    [entry] = doc["contacts"]
    assert entry["user_id"] == bob_id and entry["name"] == bob.name and entry["online"] is True

    # A clean close makes bob offline at once, with a last-seen time.
    ws.close()
    deadline = time.monotonic() + 5
    while True:
        entry = call(daemon, "GET", "/contacts", token=alice.token)[1]["contacts"][0]
        if not entry["online"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entry["online"] is False
    assert isinstance(entry["last_seen"], int) and entry["last_seen"] > 0

    assert call(daemon, "DELETE", f"/contacts/{bob_id}", token=alice.token)[0] == 204
    status, doc = call(daemon, "DELETE", f"/contacts/{bob_id}", token=alice.token)
    assert (status, error_code(doc)) == (404, "not_found")
    assert call(daemon, "GET", "/contacts", token=alice.token)[1] == {"contacts": []}


def test_groups_membership_rules(daemon):
    alice, bob, carol = daemon.user(), daemon.user(), daemon.user()
    status, doc = call(daemon, "POST", "/groups",
                       {"name": "Team", "members": [str(bob.user_id)]}, alice.token)
    assert status == 201, doc
    gid = doc["group_id"]
    assert doc["conversation_id"] == str(group_conversation(int(gid)))

    status, doc = call(daemon, "GET", f"/groups/{gid}", token=bob.token)
    assert status == 200
    assert doc["name"] == "Team" and doc["owner_id"] == str(alice.user_id)
    assert [(m["user_id"], m["role"]) for m in doc["members"]] == \
        [(str(alice.user_id), "owner"), (str(bob.user_id), "member")]
    assert all("online" in m and "last_seen" in m for m in doc["members"])

    status, doc = call(daemon, "GET", f"/groups/{gid}", token=carol.token)
    assert (status, error_code(doc)) == (403, "permission_denied")
    assert "Team" not in json.dumps(doc)

    status, doc = call(daemon, "POST", f"/groups/{gid}/members",
                       {"user_id": str(carol.user_id)}, bob.token)
    assert (status, error_code(doc)) == (403, "permission_denied")
    status, doc = call(daemon, "POST", f"/groups/{gid}/members",
                       {"user_id": str(carol.user_id)}, alice.token)
    assert status == 201 and doc["role"] == "member"
    status, doc = call(daemon, "POST", f"/groups/{gid}/members",
                       {"user_id": str(carol.user_id)}, alice.token)
    assert (status, error_code(doc)) == (409, "already_exists")

    status, doc = call(daemon, "GET", "/groups", token=carol.token)
    assert [(g["group_id"], g["role"]) for g in doc["groups"]] == [(gid, "member")]

    status, doc = call(daemon, "DELETE", f"/groups/{gid}/members/{carol.user_id}", token=bob.token)
    assert (status, error_code(doc)) == (403, "permission_denied")
    assert call(daemon, "DELETE", f"/groups/{gid}/members/{bob.user_id}", token=bob.token)[0] == 204
    status, doc = call(daemon, "DELETE", f"/groups/{gid}/members/{alice.user_id}",
                       token=alice.token)
    assert (status, error_code(doc)) == (409, "failed_precondition")
    assert call(daemon, "GET", f"/groups/{gid}", token=bob.token)[0] == 403


def test_the_101st_group_member_is_refused(daemon):
    owner = daemon.user()
    ids = []
    for i in range(100):
        status, doc = call(daemon, "POST", "/users", {"name": f"m{i}_{owner.user_id}",
                                                      "password": PASSWORD})
        assert status == 201, doc
        ids.append(doc["user_id"])
    status, doc = call(daemon, "POST", "/groups", {"name": "Big", "members": ids}, owner.token)
    assert (status, error_code(doc)) == (409, "group_full")

    status, doc = call(daemon, "POST", "/groups", {"name": "Big", "members": ids[:99]},
                       owner.token)
    assert status == 201, doc
    gid = doc["group_id"]
    assert len(call(daemon, "GET", f"/groups/{gid}", token=owner.token)[1]["members"]) == 100
    status, doc = call(daemon, "POST", f"/groups/{gid}/members", {"user_id": ids[99]},
                       owner.token)
    assert (status, error_code(doc)) == (409, "group_full")
    assert len(call(daemon, "GET", f"/groups/{gid}", token=owner.token)[1]["members"]) == 100


def test_send_is_idempotent_and_shares_the_websocket_path(daemon):
    alice, bob, carol = daemon.user(), daemon.user(), daemon.user()
    status, doc = call(daemon, "POST", "/conversations/direct", {"user_id": str(bob.user_id)},
                       alice.token)
    assert status == 200
    conv = doc["conversation_id"]
    assert conv == str(direct_conversation(alice.user_id, bob.user_id))
    assert call(daemon, "POST", "/conversations/direct", {"user_id": str(alice.user_id)},
                bob.token)[1]["conversation_id"] == conv

    b = daemon.connect(bob, "b")
    cmid = str(uuid.uuid4())
    status, first = send(daemon, alice, conv, "hello over http", cmid)
    assert status == 201, first
    assert first["seq"] == 1 and first["duplicate"] is False
    # Bob's WebSocket gets it like any other message.
    d = b.expect("Deliver")
    assert d.message.message_id == int(first["message_id"])
    assert d.message.body == "hello over http"
    assert d.message.client_msg_id == uuid.UUID(cmid).bytes

    # Resend: 200, the original ids, nothing stored twice.
    status, again = send(daemon, alice, conv, "hello over http", cmid)
    assert status == 200
    assert (again["message_id"], again["seq"], again["sent_at"], again["duplicate"]) == \
        (first["message_id"], 1, first["sent_at"], True)

    # A WebSocket send and an HTTP resend of its client id: one message.
    ws_cmid = uuid.uuid4()
    rid = b.send_message("hello over ws", conversation_id=int(conv), client_msg_id=ws_cmid.bytes)
    ack = b.expect("Ack", request_id=rid)
    status, dup = send(daemon, bob, conv, "hello over ws", str(ws_cmid))
    assert status == 200 and dup["message_id"] == str(ack.message_id) and dup["seq"] == ack.seq

    msgs = page(daemon, alice, conv)
    assert [(m["seq"], m["sender_id"], m["body"]) for m in msgs] == \
        [(1, str(alice.user_id), "hello over http"), (2, str(bob.user_id), "hello over ws")]
    assert msgs[0]["client_msg_id"] == cmid and msgs[0]["sent_at"] == first["sent_at"]

    # Non-members get 403 and never content.
    status, doc = call(daemon, "GET", f"/conversations/{conv}/messages", token=carol.token)
    assert (status, error_code(doc)) == (403, "permission_denied")
    assert "hello" not in json.dumps(doc)
    status, doc = send(daemon, carol, conv, "let me in")
    assert (status, error_code(doc)) == (403, "permission_denied")

    status, doc = call(daemon, "GET", f"/conversations/{conv}/messages?before_seq=2&after_seq=1",
                       token=alice.token)
    assert (status, error_code(doc)) == (400, "invalid_argument")


def test_conversation_list_and_unread_counts(daemon):
    alice, bob = daemon.user(), daemon.user()
    conv = call(daemon, "POST", "/conversations/direct", {"user_id": str(bob.user_id)},
                alice.token)[1]["conversation_id"]
    gid = daemon.api.create_group(alice.token, "Team", [bob.user_id])
    gconv = str(group_conversation(gid))
    for i in range(3):
        assert send(daemon, alice, conv, f"d{i}")[0] == 201
    time.sleep(0.01)
    assert send(daemon, alice, gconv, "g0")[0] == 201

    status, doc = call(daemon, "GET", "/conversations", token=bob.token)
    assert status == 200
    convs = doc["conversations"]
    assert [c["conversation_id"] for c in convs] == [gconv, conv]  # newest activity first
    group, direct = convs
    assert group["kind"] == "group" and group["title"] == "Team" and group["group_id"] == str(gid)
    assert group["unread"] == 1 and group["last_message"]["body"] == "g0"
    assert direct["kind"] == "direct" and direct["peer_user_id"] == str(alice.user_id)
    assert direct["title"] == alice.name
    assert (direct["last_seq"], direct["unread"]) == (3, 3)
    assert direct["last_message"]["body"] == "d2"

    status, doc = call(daemon, "POST", f"/conversations/{conv}/read", {"seq": 2}, bob.token)
    assert status == 200 and (doc["read_seq"], doc["unread"]) == (2, 1)
    status, doc = call(daemon, "POST", f"/conversations/{conv}/read", {"seq": 1}, bob.token)
    assert doc["read_seq"] == 2  # never backwards
    status, doc = call(daemon, "POST", f"/conversations/{conv}/read", {"seq": 99}, bob.token)
    assert (doc["read_seq"], doc["unread"]) == (3, 0)  # clamped to last_seq
    unread = {c["conversation_id"]: c["unread"]
              for c in call(daemon, "GET", "/conversations", token=bob.token)[1]["conversations"]}
    assert unread == {gconv: 1, conv: 0}


def test_history_pages_survive_a_restart(daemon):
    alice, bob = daemon.user(), daemon.user()
    conv = call(daemon, "POST", "/conversations/direct", {"user_id": str(bob.user_id)},
                alice.token)[1]["conversation_id"]
    sent = []
    for i in range(1, 121):
        cmid = str(uuid.uuid4())
        status, doc = send(daemon, alice if i % 2 else bob, conv, f"message {i}", cmid)
        assert status == 201, doc
        sent.append((doc["seq"], doc["message_id"], f"message {i}", cmid))
    assert [s[0] for s in sent] == list(range(1, 121))
    call(daemon, "POST", f"/conversations/{conv}/read", {"seq": 100}, bob.token)

    daemon.restart()

    # Tokens, messages, dedup keys and read cursors are all durable.
    got = []
    before = ""
    while True:
        msgs = page(daemon, bob, conv, f"?limit=50{before}")
        if not msgs:
            break
        assert [m["seq"] for m in msgs] == sorted(m["seq"] for m in msgs)  # chronological
        got = msgs + got
        before = f"&before_seq={msgs[0]['seq']}"
    assert [(m["seq"], m["message_id"], m["body"], m["client_msg_id"]) for m in got] == sent
    assert [m["seq"] for m in page(daemon, alice, conv, "?after_seq=115")] == \
        [116, 117, 118, 119, 120]
    assert len(page(daemon, alice, conv, "?limit=1000")) == 120  # clamped to 200

    status, doc = send(daemon, alice, conv, "message 1", sent[0][3])
    assert status == 200 and doc["message_id"] == sent[0][1]
    [c] = call(daemon, "GET", "/conversations", token=bob.token)[1]["conversations"]
    assert (c["last_seq"], c["unread"]) == (120, 20)
    assert send(daemon, alice, conv, "after restart")[1]["seq"] == 121


def test_100000_character_body_escaped_to_1_2_mb(daemon):
    alice, bob = daemon.user(), daemon.user()
    conv = call(daemon, "POST", "/conversations/direct", {"user_id": str(bob.user_id)},
                alice.token)[1]["conversation_id"]
    # json.dumps escapes each emoji as a surrogate pair "\ud83d\ude00"
    # (12 bytes): 100,000 characters become 1.2 MB of JSON.
    body = "\U0001F600" * 100_000
    wire = json.dumps({"client_msg_id": str(uuid.uuid4()), "body": body}).encode()
    assert 1_200_000 < len(wire) < 1_210_000
    status, doc, _ = raw(daemon, "POST", f"/conversations/{conv}/messages", wire, alice.token)
    assert status == 201, doc
    [m] = page(daemon, bob, conv)
    assert m["body"] == body and m["seq"] == doc["seq"]

    status, doc = send(daemon, alice, conv, "a" * 100_001)
    assert (status, error_code(doc)) == (413, "too_large")
    status, doc, _ = raw(daemon, "POST", f"/conversations/{conv}/messages",
                         b" " * 2_000_000, alice.token)
    assert (status, error_code(doc)) == (413, "too_large")
    status, doc, _ = raw(daemon, "POST", f"/conversations/{conv}/messages",
                         b'{"client_msg_id":"%s","body":"\xc3\x28"}' % str(uuid.uuid4()).encode(),
                         alice.token)
    assert (status, error_code(doc)) == (400, "invalid_utf8")
    assert len(page(daemon, bob, conv)) == 1


def test_rate_limit_is_429_with_retry_after(make_daemon):
    daemon = make_daemon(limits={"sends_per_second": 1.0, "send_burst": 2.0})
    alice, bob = daemon.user(), daemon.user()
    conv = str(direct_conversation(alice.user_id, bob.user_id))
    assert send(daemon, alice, conv, "1")[0] == 201
    assert send(daemon, alice, conv, "2")[0] == 201
    cmid = str(uuid.uuid4())
    status, doc, headers = raw(daemon, "POST", f"/conversations/{conv}/messages",
                               json.dumps({"client_msg_id": cmid, "body": "3"}).encode(),
                               alice.token)
    assert (status, error_code(doc)) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1
    retry_ms = doc["error"]["retry_after_ms"]
    assert 0 < retry_ms <= 1000
    time.sleep(retry_ms / 1000 + 0.05)
    assert send(daemon, alice, conv, "3", cmid)[0] == 201
    assert [m["body"] for m in page(daemon, bob, conv)] == ["1", "2", "3"]
