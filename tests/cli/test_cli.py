"""chatcore-cli against a real chatcored (fixtures in conftest.py).

Exit codes under test (docs/cli.md): 0 ok, 1 usage, 2 refused by the server,
3 network/unavailable, 4 unauthenticated.
"""

import json
import os
import stat
import time
import uuid

import pytest


# ---- accounts -----------------------------------------------------------------

def test_login_saves_a_private_token(alice):
    path = os.path.join(alice.config_dir, "credentials.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(alice.config_dir).st_mode) == 0o700
    with open(path) as f:
        saved = json.load(f)
    assert saved["name"] == alice.name
    assert saved["server"] == alice.server
    assert len(saved["token"]) == 64
    me = alice.json("whoami")
    assert me["name"] == alice.name and me["user_id"] == saved["user_id"]


def test_login_json_never_prints_the_token(make_user):
    u = make_user("jsonlogin")
    u.ok("signup", u.name, "--password-stdin", input=u.password + "\n")
    out = u.json("login", u.name, "--password-stdin", input=u.password + "\n")
    assert out["name"] == u.name and out["server"] == u.server
    assert "token" not in out


def test_wrong_password_exits_4(alice):
    r = alice.run("login", alice.name, "--password-stdin", input="not-the-password\n")
    assert r.returncode == 4, r.stderr
    assert "unauthenticated" in r.stderr


def test_signup_taken_name_exits_2(alice):
    r = alice.run("signup", alice.name, "--password-stdin", input="whatever-password\n")
    assert r.returncode == 2
    assert "already_exists" in r.stderr


def test_not_logged_in_exits_4(make_user):
    r = make_user("nobody").run("contacts")
    assert r.returncode == 4
    assert "not logged in" in r.stderr


def test_password_needs_a_terminal_or_stdin_flag(make_user):
    r = make_user("tty").run("login", "someone", input="")
    assert r.returncode == 1
    assert "--password-stdin" in r.stderr


def test_logout_revokes_the_token(make_user):
    u = make_user("leaver").signup_and_login()
    token = json.load(open(os.path.join(u.config_dir, "credentials.json")))["token"]
    u.ok("logout")
    assert not os.path.exists(os.path.join(u.config_dir, "credentials.json"))
    assert u.run("whoami").returncode == 4
    # The token itself is dead on the server, not only forgotten here.
    os.makedirs(u.config_dir, exist_ok=True)
    with open(os.path.join(u.config_dir, "credentials.json"), "w") as f:
        json.dump({"server": u.server, "name": u.name, "user_id": "1", "token": token}, f)
    r = u.run("whoami", "--json")
    assert r.returncode == 4
    assert json.loads(r.stderr)["error"]["code"] == "unauthenticated"


# ---- send and history ---------------------------------------------------------------

def test_send_then_history_in_both_directions(alice, bob):
    text = f"hello bob {uuid.uuid4()}"
    r = alice.ok("send", bob.name, text)
    assert "sent to @" + bob.name in r.stdout

    human = alice.ok("history", bob.name).stdout
    assert f"{alice.name}: {text}" in human

    page = bob.json("history", "@" + alice.name)
    last = page["messages"][-1]
    assert last["body"] == text
    assert last["sender_name"] == alice.name
    assert page["conversation_id"] == last["conversation_id"]
    seqs = [m["seq"] for m in page["messages"]]
    assert seqs == sorted(seqs)


def test_send_json_and_client_id_makes_retries_idempotent(alice, bob):
    cid = str(uuid.uuid4())
    first = alice.json("send", bob.name, "exactly once", "--client-id", cid)
    again = alice.json("send", bob.name, "exactly once", "--client-id", cid)
    assert first["duplicate"] is False and again["duplicate"] is True
    assert first["message_id"] == again["message_id"] and first["seq"] == again["seq"]
    assert first["client_msg_id"] == cid
    bodies = [m["body"] for m in alice.json("history", bob.name, "--limit", "200")["messages"]]
    assert bodies.count("exactly once") == 1


def test_send_reads_stdin_and_keeps_newlines(alice, bob):
    alice.ok("send", bob.name, input="line one\nline two\n")
    last = alice.json("history", bob.name, "-n", "1")["messages"][-1]
    assert last["body"] == "line one\nline two"


def test_send_by_conversation_id(alice, bob):
    conv = alice.json("history", bob.name)["conversation_id"]
    alice.ok("send", conv, "by id")
    assert alice.json("history", "conv:" + conv, "-n", "1")["messages"][-1]["body"] == "by id"


def test_history_paging(alice, bob):
    for i in range(3):
        alice.ok("send", bob.name, f"page {i}")
    newest = alice.json("history", bob.name, "-n", "2")["messages"]
    assert [m["body"] for m in newest] == ["page 1", "page 2"]
    older = alice.json("history", bob.name, "-n", "1", "--before", str(newest[0]["seq"]))
    assert older["messages"][-1]["body"] == "page 0"


def test_unknown_user_exits_2_with_the_error_code(alice):
    r = alice.run("send", "no-such-user", "hi")
    assert r.returncode == 2
    assert "not_found" in r.stderr

    r = alice.run("--json", "send", "no-such-user", "hi")
    assert r.returncode == 2
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "not_found" and err["exit_code"] == 2 and err["http_status"] == 404


def test_message_over_100000_characters_is_too_large(alice, bob):
    r = alice.run("send", bob.name, "-", input="x" * 100_001)
    assert r.returncode == 2
    assert "too_large" in r.stderr
    # The limit counts characters, not bytes: 100,000 of them (300 KB) pass.
    alice.ok("send", bob.name, "-", input="€" * 100_000)
    assert alice.json("history", bob.name, "-n", "1")["messages"][0]["body"] == "€" * 100_000


def test_usage_errors_exit_1(alice):
    assert alice.run().returncode == 1
    assert alice.run("send").returncode == 1
    assert alice.run("history", "x", "--before", "2", "--after", "1").returncode == 1
    assert alice.run("send", "bob", "hi", "--client-id", "not-a-uuid").returncode == 1
    assert alice.run("send", "123", "hi").returncode == 1  # not a conversation id
    assert alice.run("--help").returncode == 0


# ---- contacts and groups -------------------------------------------------------------

def test_contacts_listing(alice, bob):
    alice.ok("add-contact", bob.name)
    r = alice.run("add-contact", bob.name)
    assert r.returncode == 2 and "already_exists" in r.stderr
    contacts = alice.json("contacts")["contacts"]
    assert [c["name"] for c in contacts] == [bob.name]
    assert bob.name in alice.ok("contacts").stdout


def test_groups_listing_and_group_targets(alice, bob, make_user):
    carol = make_user("carol").signup_and_login()
    group_name = f"team-{uuid.uuid4().hex[:8]}"
    created = alice.json("create-group", group_name, bob.name, carol.name)
    groups = bob.json("groups")["groups"]
    mine = [g for g in groups if g["group_id"] == created["group_id"]]
    assert mine and mine[0]["name"] == group_name and mine[0]["role"] == "member"
    assert group_name in bob.ok("groups").stdout

    alice.ok("send", "#" + group_name, "hello group")
    carol.ok("send", "group:" + created["group_id"], "hi all")
    page = bob.json("history", "#" + group_name)
    assert [(m["sender_name"], m["body"]) for m in page["messages"]] == [
        (alice.name, "hello group"), (carol.name, "hi all")]

    # A group the user is not in is refused by the server, not guessed at.
    outsider = make_user("outsider").signup_and_login()
    r = outsider.run("history", "group:" + created["group_id"])
    assert r.returncode == 2 and "permission_denied" in r.stderr


# ---- tail ----------------------------------------------------------------------------

def test_tail_prints_a_live_message_then_resumes_from_its_cursor(alice, bob):
    tail = bob.tail("--json")
    try:
        tail.wait_stderr("connected as")
        text = f"live {uuid.uuid4()}"
        alice.ok("send", bob.name, text)  # another process
        line = json.loads(tail.next_line())
        assert line["type"] == "message" and line["body"] == text
        assert line["sender_name"] == alice.name
        inbox_seq = line["inbox_seq"]
    finally:
        assert tail.stop() == 0  # SIGINT: a clean exit

    # Sent while nobody was tailing: the next tail starts at the saved cursor.
    alice.ok("send", bob.name, "while you were away")
    tail = bob.tail("--json")
    try:
        line = json.loads(tail.next_line())
        assert line["body"] == "while you were away"
        assert line["inbox_seq"] == inbox_seq + 1
    finally:
        assert tail.stop() == 0


def test_tail_human_output_and_conversation_filter(alice, bob, make_user):
    dave = make_user("dave").signup_and_login()
    tail = bob.tail("--new", alice.name)
    try:
        tail.wait_stderr("connected as")
        dave.ok("send", bob.name, "filtered out")
        alice.ok("send", bob.name, "shown")
        line = tail.next_line()
        assert line.endswith(f"@{alice.name}  {alice.name}: shown")
    finally:
        assert tail.stop() == 0


def test_tail_reconnects_after_a_server_restart(own_daemon, make_user):
    carl = make_user("carl", server=own_daemon.url).signup_and_login()
    erin = make_user("erin", server=own_daemon.url).signup_and_login()
    tail = erin.tail("--json")
    try:
        tail.wait_stderr("connected as")
        own_daemon.stop()
        tail.wait_stderr("reconnecting")
        own_daemon.start()  # same port, same data directory
        tail.wait_stderr("connected as", timeout=15)
        carl.ok("send", erin.name, "after the restart")
        assert json.loads(tail.next_line(timeout=15))["body"] == "after the restart"
    finally:
        assert tail.stop() == 0


@pytest.mark.daemon_config("""
[presence]
heartbeat_interval_ms = 200
timeout_ms = 1000
""")
def test_tail_sends_heartbeats_at_the_welcome_interval(own_daemon, make_user):
    # The server closes a session silent for 1 s (close 4009); tail must keep
    # it open by heartbeating every Welcome.heartbeat_ms (200 ms here).
    gail = make_user("gail", server=own_daemon.url).signup_and_login()
    hank = make_user("hank", server=own_daemon.url).signup_and_login()
    tail = gail.tail("--json")
    try:
        tail.wait_stderr("connected as")
        time.sleep(2.5)
        hank.ok("send", gail.name, "still here")
        assert json.loads(tail.next_line())["body"] == "still here"
        assert not any("disconnected" in line for line in tail.drain_stderr())
    finally:
        assert tail.stop() == 0


def test_tail_exits_4_when_its_token_is_revoked(make_user):
    ivy = make_user("ivy").signup_and_login()
    tail = ivy.tail()
    tail.wait_stderr("connected as")
    ivy.ok("logout")  # revokes this very token: the server closes with 4001
    assert tail.proc.wait(timeout=10) == 4
    assert any("unauthenticated" in line for line in tail.drain_stderr(timeout=5))


def test_server_down_exits_3(own_daemon, make_user):
    fay = make_user("fay", server=own_daemon.url).signup_and_login()
    own_daemon.stop()
    for args in (("contacts",), ("send", "someone", "hi"), ("tail",),
                 ("login", fay.name, "--password-stdin")):
        r = fay.run(*args, input=fay.password + "\n")
        assert r.returncode == 3, (args, r.stderr)
        assert "network_error" in r.stderr
    r = fay.run("--json", "groups")
    assert r.returncode == 3 and json.loads(r.stderr)["error"]["code"] == "network_error"


def test_token_is_never_sent_to_another_server(alice):
    r = alice.run("--server", "http://127.0.0.1:9", "contacts")
    assert r.returncode == 4
    assert "logged in at" in r.stderr
