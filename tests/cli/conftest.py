"""Fixtures for the chatcore-cli end-to-end tests.

Everything is real: the chatcored binary on a free loopback port with a
temporary LMDB directory, and chatcore-cli processes with their own temporary
HOME / XDG_CONFIG_HOME (one per simulated user, as on separate machines).

Binaries: $CHATCORE_CLI and $CHATCORED (ctest sets both, see
cli/CMakeLists.txt); without them the newest build-*/ tree of the
repository is searched, so `pytest tests/cli` works after a build.
"""

import glob
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _find_binary(env_name, pattern):
    path = os.environ.get(env_name)
    if path:
        return path
    found = [p for p in glob.glob(os.path.join(REPO, pattern)) if os.access(p, os.X_OK)]
    if not found:
        pytest.skip(f"{env_name} is not set and no {pattern} was built")
    return max(found, key=os.path.getmtime)


@pytest.fixture(scope="session")
def cli_path():
    return _find_binary("CHATCORE_CLI", "build*/cli/chatcore-cli")


@pytest.fixture(scope="session")
def daemon_path():
    return _find_binary("CHATCORED", "build*/daemon/chatcored")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One chatcored process. start() waits for /readyz; stop() always reaps."""

    def __init__(self, binary, data_dir, port, log_path, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", self.data_dir, "--log-level", "warn", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chatcored exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("chatcored did not become ready within 15 s")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def daemon(daemon_path, tmp_path_factory):
    base = tmp_path_factory.mktemp("chatcored")
    d = Daemon(daemon_path, str(base / "data"), free_port(), str(base / "chatcored.log"))
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def own_daemon(daemon_path, tmp_path, request):
    """A daemon of one test's own, for tests that stop or restart it.

    A test marked @pytest.mark.daemon_config("toml text") gets that config.
    """
    extra = []
    marker = request.node.get_closest_marker("daemon_config")
    if marker:
        config = tmp_path / "chatcored.toml"
        config.write_text(marker.args[0])
        extra = ["--config", str(config)]
    d = Daemon(daemon_path, str(tmp_path / "data"), free_port(), str(tmp_path / "chatcored.log"),
               extra)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "daemon_config(toml): config file for own_daemon")


class User:
    """A CLI user: a login name, a password and a private HOME."""

    def __init__(self, cli, home, server, name, password):
        self.cli = cli
        self.home = home
        self.server = server
        self.name = name
        self.password = password
        os.makedirs(os.path.join(home, ".config"), exist_ok=True)

    @property
    def config_dir(self):
        return os.path.join(self.home, ".config", "chatcore")

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                   CHATCORE_SERVER=self.server, LC_ALL="C.UTF-8", TZ="UTC")
        return env

    def run(self, *args, input=None, timeout=20):
        return subprocess.run([self.cli, *args], input=input, capture_output=True,
                              text=True, env=self.env(), timeout=timeout)

    def ok(self, *args, input=None):
        r = self.run(*args, input=input)
        assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args, input=None):
        return json.loads(self.ok("--json", *args, input=input).stdout)

    def signup_and_login(self):
        self.ok("signup", self.name, "--password-stdin", input=self.password + "\n")
        self.ok("login", self.name, "--password-stdin", input=self.password + "\n")
        return self

    def tail(self, *args):
        return TailProcess([self.cli, "tail", *args], self.env())


class TailProcess:
    """A running `chatcore-cli tail`, its stdout and stderr read line by line."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.stdout = queue.Queue()
        self.stderr = queue.Queue()
        self.stderr_lines = []
        for stream, q in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _next(self, q, timeout):
        line = q.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"tail exited ({self.proc.poll()}); stderr: {self.stderr_lines}")
        return line

    def wait_stderr(self, fragment, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(self.stderr, max(0.01, deadline - time.monotonic()))
            self.stderr_lines.append(line)
            if fragment in line:
                return line

    def drain_stderr(self, timeout=0.2):
        """Every stderr line read so far or arriving within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.stderr.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return self.stderr_lines
            if line is None:
                return self.stderr_lines
            self.stderr_lines.append(line)

    def next_line(self, timeout=10):
        return self._next(self.stdout, timeout)

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture(scope="session")
def make_user(cli_path, daemon, tmp_path_factory):
    counter = [0]

    def make(prefix, server=None):
        counter[0] += 1
        name = f"{prefix}{counter[0]}"
        home = str(tmp_path_factory.mktemp(f"home-{name}"))
        return User(cli_path, home, server or daemon.url, name, f"pw-{name}-secret")

    return make


@pytest.fixture(scope="session")
def alice(make_user):
    return make_user("alice").signup_and_login()


@pytest.fixture(scope="session")
def bob(make_user):
    return make_user("bob").signup_and_login()
