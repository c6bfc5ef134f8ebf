"""chatcored's own HTTP surface (the transport, not the API handlers):
health, metrics, static files, body limits, routing, keep-alive, TLS, and
the command line / config file checks."""

import os
import re
import shutil
import socket
import subprocess

import pytest

from chatclient import (Api, ChatClient, http_get_keepalive,
                        unverified_ssl_context)
from conftest import DAEMON_BIN

SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? -?[0-9]+(\.[0-9]+)?$')
HELP = re.compile(r"^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$")
TYPE = re.compile(r"^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$")


def parse_metrics(text):
    """Checks every line of the exposition -> {series: value}."""
    assert text.endswith("\n")
    values, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            assert HELP.match(line), line
        elif line.startswith("# TYPE"):
            assert TYPE.match(line), line
            name = line.split()[2]
            assert name not in typed, f"TYPE twice: {name}"
            typed.add(name)
        else:
            assert SAMPLE.match(line), f"bad sample line: {line!r}"
            series, value = line.rsplit(" ", 1)
            assert series not in values, f"duplicate series {series}"
            assert series.split("{")[0] in typed, f"sample before its TYPE: {line}"
            values[series] = float(value)
    return values


def test_health_endpoints(daemon):
    assert daemon.api.raw("GET", "/livez")[:2] == (200, b"ok\n")
    assert daemon.api.raw("GET", "/readyz")[:2] == (200, b"ready\n")
    status, body, headers = daemon.api.raw("HEAD", "/livez")
    assert status == 200 and body == b""
    assert daemon.api.raw("POST", "/livez", b"")[0] == 405


def test_metrics_are_well_formed_and_count(daemon):
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    rid = a.send_message("counted", peer_user_id=bob.user_id)
    a.expect("Ack", request_id=rid)
    daemon.api.raw("GET", "/nope")

    status, body, headers = daemon.api.raw("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    v = parse_metrics(text)
    assert v["chatcore_messages_committed_total"] >= 1
    assert v["chatcore_commit_batches_total"] >= 1
    assert v["chatcore_sessions_authenticated"] == 1
    assert v["chatcored_ws_connections"] == 1
    assert v["chatcored_ws_frames_received_total"] >= 2  # Hello, Send
    assert v['chatcored_http_requests_total{code="2xx"}'] >= 4  # signups, logins
    assert v['chatcored_http_requests_total{code="4xx"}'] >= 1
    assert any(k.startswith("chatcored_build_info{") and val == 1 for k, val in v.items())
    # The message went through the journal: it waits for a checkpoint, or
    # one has applied it already.
    assert v["chatcored_journal_unapplied_batches"] + v["chatcored_journal_checkpoints_total"] >= 1
    assert v["chatcored_journal_checkpoint_failures_total"] == 0

    promtool = shutil.which("promtool")
    if promtool:  # Debian package "prometheus"
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_static_files_and_unknown_paths(daemon):
    status, body, headers = daemon.api.raw("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"chatcore" in body  # the web client, or daemon/web's page without it
    assert daemon.api.raw("GET", "/index.html")[0] == 200
    status, body, headers = daemon.api.raw("GET", "/no/such/file.js")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert daemon.api.raw("GET", "/../../etc/passwd")[0] == 404
    assert daemon.api.raw("GET", "/ws")[0] == 426
    assert daemon.api.raw("GET", "/api/v2/x")[0] == 404


def test_keep_alive_serves_several_requests(daemon):
    results = http_get_keepalive(daemon.host, daemon.port,
                                 ["/livez", "/metrics", "/nope", "/readyz", "/"])
    assert [s for s, _ in results] == [200, 200, 404, 200, 200]


def test_keep_alive_after_a_static_file(daemon):
    # A static file must leave the connection ready for the next request
    # (lws needs the transaction completed on HTTP_FILE_COMPLETION).
    results = http_get_keepalive(daemon.host, daemon.port,
                                 ["/", "/livez", "/", "/", "/readyz"])
    assert [s for s, _ in results] == [200, 200, 200, 200, 200]
    assert b"<html" not in results[1][1].lower()  # /livez answered itself, not the file
    assert results[2][1] == results[0][1] == results[3][1]


def test_request_body_limits(daemon):
    # Over http_max_body_bytes (default 1280 KiB): 413 as JSON.
    status, body, _ = daemon.api.raw("POST", "/api/v1/users", b"x" * 1_400_000,
                                     {"Content-Type": "application/json"})
    assert status == 413
    assert b'"too_large"' in body
    # A body without a length cannot be delimited: 411.
    with socket.create_connection((daemon.host, daemon.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 411")
    # The query string reaches the API intact, escapes and all.
    alice = daemon.user()
    status, doc = daemon.api.call("GET", "/api/v1/users?name=" + alice.name.replace("_", "%5F"),
                                  token=alice.token)
    assert status == 200, doc
    # The server is still healthy.
    assert daemon.api.raw("GET", "/livez")[0] == 200


@pytest.fixture
def tls_files(tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("openssl CLI missing (Debian package openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_https_and_wss(make_daemon, tls_files):
    cert, key = tls_files
    daemon = make_daemon(tls={"cert": cert, "key": key})
    assert daemon.http_url.startswith("https://")
    assert daemon.api.raw("GET", "/livez")[:2] == (200, b"ok\n")
    alice, bob = daemon.user(), daemon.user()  # signup + login over https
    a = ChatClient.connect(daemon.ws_url, ssl_context=unverified_ssl_context())
    assert a.hello(alice.token, "tls").user_id == alice.user_id
    b = daemon.connect(bob, "b")
    rid = a.send_message("over TLS", peer_user_id=bob.user_id)
    assert a.expect(("Ack", "Error"), request_id=rid).type == "Ack"
    assert b.expect("Deliver").message.body == "over TLS"
    a.close()
    # Plain HTTP on the TLS port gets no HTTP answer.
    plain = Api(f"http://{daemon.host}:{daemon.port}")
    with pytest.raises(Exception):
        status, _, _ = plain.raw("GET", "/livez", timeout=5)
        assert status != 200


# ---- command line and config file ------------------------------------------------------

def run(*args, timeout=20):
    return subprocess.run([DAEMON_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("chatcored ")
    r = run("--help")
    assert r.returncode == 0
    for flag in ("--listen", "--data-dir", "--config", "--web-root", "--log-level",
                 "--check-config", "--version"):
        assert flag in r.stdout
    assert run("--no-such-flag").returncode == 2


def test_example_config_is_valid():
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon",
                           "chatcored.conf.example")
    r = run("--config", example, "--check-config")
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


@pytest.mark.parametrize("toml, key", [
    ("[server]\nlisen = \"127.0.0.1:1\"\n", "server.lisen"),
    ("[limits]\nmax_body_chars = -5\n", "limits.max_body_chars"),
    ("[limits]\nmax_body_chars = \"many\"\n", "limits.max_body_chars"),
    ("[storage]\ndurability = \"sometimes\"\n", "storage.durability"),
    ("[server]\nevent_loop = \"select\"\n", "server.event_loop"),
    ("[storage]\nmap_size = \"12 parsecs\"\n", "storage.map_size"),
    ("[storage]\ncommit_delay_us = 200000\n", "storage.commit_delay_us"),
    ("[presence]\nheartbeat_interval_ms = 40000\n", "presence.heartbeat_interval_ms"),
    ("[limits]\noutbound_soft_bytes = \"16MiB\"\n", "limits.outbound_soft_bytes"),
    ("[tls]\ncert = \"/nonexistent.pem\"\n", "tls"),
    ("[nosuchtable]\nx = 1\n", "nosuchtable"),
    ("[log]\nlevel = \"loud\"\n", "log.level"),
    ("[server\n", "chatcored.toml"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, toml, key):
    path = tmp_path / "chatcored.toml"
    path.write_text(toml)
    for extra in (["--check-config"], ["--data-dir", str(tmp_path / "d")]):
        r = run("--config", str(path), *extra)
        assert r.returncode == 2, (toml, r.stdout, r.stderr)
        assert key in r.stderr, (key, r.stderr)
    assert not os.path.exists(tmp_path / "d")  # refused before touching anything


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "chatcored.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:1"\ndata_dir = "/nonexistent/x"\n'
                    '[log]\nlevel = "debug"\n')
    r = run("--config", str(path), "--listen", "127.0.0.1:5555", "--data-dir",
            str(tmp_path / "d"), "--check-config")
    assert r.returncode == 0, r.stderr
    assert "listen 127.0.0.1:5555" in r.stdout and str(tmp_path / "d") in r.stdout
    assert run("--listen", "nonsense", "--check-config").returncode == 2
    assert run("--log-level", "loud", "--check-config").returncode == 2


@pytest.mark.parametrize("event_loop", ["epoll", "poll"])
def test_a_port_in_use_is_a_clear_start_error(tmp_path, event_loop):
    # lws on a foreign libuv loop reports a failed bind by handing back a
    # half-destroyed context; the daemon must still exit with its message.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cfg = tmp_path / "chatcored.toml"
        cfg.write_text(f"[server]\nevent_loop = \"{event_loop}\"\n")
        # On its own poll loop lws 4.1 leaks 72 bytes inside a failed
        # lws_create_context (its allocation, not ours): LeakSanitizer
        # would turn that into an abort in the sanitizer build.
        env = dict(os.environ)
        if event_loop == "poll":
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        r = subprocess.run([DAEMON_BIN, "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
                            "--data-dir", str(tmp_path / "data")],
                           capture_output=True, text=True, timeout=20, env=env)
    finally:
        taken.close()
    assert r.returncode == 1, r.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_a_data_dir_in_use_is_a_clear_start_error(daemon, tmp_path):
    # Two daemons on one store would each believe they own the journal.
    r = subprocess.run([DAEMON_BIN, "--listen", "127.0.0.1:0", "--data-dir", daemon.data_dir],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "in use by another process" in r.stderr
    # The first one is unharmed.
    alice, bob = daemon.user(), daemon.user()
    a = daemon.connect(alice, "a")
    rid = a.send_message("still here", peer_user_id=bob.user_id)
    assert a.expect("Ack", request_id=rid).type == "Ack"
