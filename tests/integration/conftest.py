"""Fixtures that run the REAL chatcored binary for the integration tests.

Environment (set by tests/integration/CMakeLists.txt when run from ctest):
    CHATCORED_BIN          path of the built chatcored
    CHATCORE_PYTHON_GEN    directory of the flatc-generated Python code
                           (contains the package chatcore.wire)

Fixtures
--------
daemon          a running chatcored on a free loopback port, with a fresh
                temporary data dir and a config with short presence timings
                (PRESENCE_HEARTBEAT_MS / PRESENCE_TIMEOUT_MS below) and a
                generous send rate. Stopped at teardown with SIGTERM, and the
                test fails if it does not exit 0 (so a crash or a sanitizer
                report at exit is caught); SIGKILLed if it will not stop.
make_daemon     factory: make_daemon(**config) -> a started Daemon whose
                config has the given tables merged in, e.g.
                make_daemon(limits={"outbound_hard_bytes": "1MiB"},
                            tls={"cert": c, "key": k}).

Daemon API
----------
    daemon.http_url      "http://127.0.0.1:PORT" (https:// with TLS)
    daemon.ws_url        "ws://127.0.0.1:PORT/ws" (wss:// with TLS)
    daemon.host, daemon.port, daemon.pid
    daemon.data_dir      the LMDB directory (survives restart())
    daemon.log_path      the daemon's stderr
    daemon.api           chatclient.Api for daemon.http_url
    daemon.user(name=None) -> SimpleNamespace(name, user_id, token): signs a
                         new user up and logs in (a unique name if None)
    daemon.connect(user=None, device="dev", cursor=0, heartbeat=True)
                      -> ChatClient; with a user: after Hello/Welcome (.welcome
                         holds it) and sending Heartbeats in the background
                         unless heartbeat=False
    daemon.restart()     graceful stop (asserts exit 0), start again, same
                         port and data dir
    daemon.kill9()       SIGKILL, wait; daemon.start() brings it back
    daemon.sigterm(timeout=30) -> exit status (sends SIGTERM, waits)
    daemon.start()       start (again) after kill9()/sigterm()
    daemon.rss_kib()     resident memory of the daemon process
    daemon.log()         the log text so far
"""

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.environ.get("CHATCORE_PYTHON_GEN")
if GEN:
    sys.path.insert(0, GEN)
sys.path.insert(0, HERE)

import chatclient  # noqa: E402

DAEMON_BIN = os.environ.get("CHATCORED_BIN", "")

PRESENCE_HEARTBEAT_MS = 300
PRESENCE_TIMEOUT_MS = 2000

BASE_CONFIG = {
    "presence": {"heartbeat_interval_ms": PRESENCE_HEARTBEAT_MS,
                 "timeout_ms": PRESENCE_TIMEOUT_MS},
    # The suite sends bursts from one user; the default 50/s would make it
    # a rate-limit test.
    "limits": {"sends_per_second": 5000.0, "send_burst": 5000.0},
    "server": {"drain_timeout_ms": 15000,
               # CHATCORED_EVENT_LOOP=poll runs the suite on lws' own poll()
               # loop instead of the default libuv/epoll one.
               "event_loop": os.environ.get("CHATCORED_EVENT_LOOP", "epoll")},
    "log": {"level": "info"},
}

_names = itertools.count(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path, tables):
    with open(path, "w") as f:
        for table, keys in tables.items():
            f.write(f"[{table}]\n")
            for k, v in keys.items():
                f.write(f"{k} = {toml_value(v)}\n")
            f.write("\n")


def merge(base, extra):
    out = {t: dict(k) for t, k in base.items()}
    for t, keys in extra.items():
        out.setdefault(t, {}).update(keys)
    return out


class Daemon:
    def __init__(self, workdir, config):
        if not DAEMON_BIN or not os.access(DAEMON_BIN, os.X_OK):
            raise RuntimeError("CHATCORED_BIN must name the built chatcored "
                               "(run the suite through ctest)")
        self.workdir = str(workdir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.data_dir = os.path.join(self.workdir, "data")
        self.config_path = os.path.join(self.workdir, "chatcored.toml")
        self.log_path = os.path.join(self.workdir, "chatcored.log")
        self.tls = "tls" in config
        write_toml(self.config_path, config)
        scheme = "https" if self.tls else "http"
        self.http_url = f"{scheme}://{self.host}:{self.port}"
        self.ws_url = f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws"
        self.ssl_context = chatclient.unverified_ssl_context() if self.tls else None
        self.api = chatclient.Api(self.http_url, self.ssl_context)
        self.proc = None
        self.clients = []
        self.stopped_by_test = False

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "a")
        self.stopped_by_test = False
        env = dict(os.environ)
        # Under AddressSanitizer, freed memory sits in a quarantine (256 MB by
        # default) and counts as resident: keep it small so that the memory
        # checks (rss_kib) see live memory. Ignored by non-ASan builds.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "quarantine_size_mb=8"]))
        self.proc = subprocess.Popen(
            [DAEMON_BIN, "--config", self.config_path, "--listen", f"{self.host}:{self.port}",
             "--data-dir", self.data_dir],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chatcored exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _, _ = self.api.raw("GET", "/readyz", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"chatcored not ready within {timeout}s:\n{self.log()}")

    def _wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def sigterm(self, timeout=30):
        self.stopped_by_test = True
        self.proc.send_signal(signal.SIGTERM)
        return self._wait(timeout)

    def kill9(self):
        self.stopped_by_test = True
        self.proc.send_signal(signal.SIGKILL)
        self._wait(10)

    def restart(self):
        code = self.sigterm()
        assert code == 0, f"graceful stop exited {code}:\n{self.log()}"
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def metric(self, name):
        """The value of one unlabelled series from GET /metrics."""
        status, body, _ = self.api.raw("GET", "/metrics")
        assert status == 200
        m = re.search(rf"^{name} (\d+)$", body.decode(), re.M)
        assert m, name
        return int(m.group(1))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- conveniences for tests --
    def user(self, name=None):
        return self.api.signup_login(name or f"user{next(_names)}_{os.getpid()}")

    def connect(self, user=None, device="dev", cursor=0, heartbeat=True, **kwargs):
        c = chatclient.ChatClient.connect(self.ws_url, ssl_context=self.ssl_context, **kwargs)
        self.clients.append(c)
        if user is not None:
            c.welcome = c.hello(user.token, device, cursor)
            if heartbeat:
                c.start_heartbeats(PRESENCE_HEARTBEAT_MS / 1000)
        return c

    def stop(self):
        """Teardown: SIGTERM -> exit status (SIGKILL and None if it hangs)."""
        for c in self.clients:
            c.close()
        if not self.running():
            # Stopped by the test itself (which checks what it expects), or
            # it died on its own: that is a failure.
            if self.proc is None or self.stopped_by_test:
                return 0
            return self.proc.returncode
        try:
            return self.sigterm(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_daemon(tmp_path, request):
    started = []

    def make(**config):
        workdir = tmp_path / f"d{len(started)}"
        os.makedirs(workdir, exist_ok=True)
        d = Daemon(workdir, merge(BASE_CONFIG, config))
        started.append(d)
        return d.start()

    yield make
    failures = []
    for d in started:
        code = d.stop()
        if code != 0:
            failures.append(f"chatcored (port {d.port}) exited {code} at teardown")
        rep = getattr(request.node, "rep_call", None)
        if failures or (rep is not None and rep.failed):
            sys.stderr.write(f"\n---- chatcored log ({d.log_path}), last 60 lines ----\n")
            sys.stderr.write("\n".join(d.log().splitlines()[-60:]) + "\n")
    assert not failures, "; ".join(failures)


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


def pytest_report_header(config):
    return [f"chatcored: {DAEMON_BIN or '(CHATCORED_BIN unset)'}",
            f"generated python: {GEN or '(CHATCORE_PYTHON_GEN unset)'}"]


__all__ = ["Daemon", "PRESENCE_HEARTBEAT_MS", "PRESENCE_TIMEOUT_MS", "types"]
