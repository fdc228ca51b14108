"""Fixtures for the end-to-end tests: real regscale-tokend and regscale-token binaries.

Environment (set by tests/meson.build): RT_DAEMON, RT_CLIENT (absolute paths of the built
binaries), RT_SOURCE_ROOT. Nothing here touches the network: the configured RegScale URL
is never contacted for a service token.

Socket paths must fit in sun_path (108 bytes), so every test works in a short directory
made with tempfile.mkdtemp(dir="/tmp") instead of pytest's long tmp_path.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

DAEMON = os.environ.get("RT_DAEMON", "")
CLIENT = os.environ.get("RT_CLIENT", "")
URL = "https://regscale.example.test"

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0

# Variables of the test runner that must not leak into the programs under test.
_SCRUB = (
    "REGSCALE_TOKEN_SOCKET",
    "REGSCALE_TOKEN_PROFILE",
    "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def pytest_collection_modifyitems(config, items):
    missing = [n for n, p in (("RT_DAEMON", DAEMON), ("RT_CLIENT", CLIENT))
               if not p or not os.access(p, os.X_OK)]
    if missing:
        skip = pytest.mark.skip(reason="no built binary in " + ", ".join(missing))
        for item in items:
            item.add_marker(skip)


def base_env(workdir, **extra):
    """Returns a clean environment for a program under test, rooted in workdir."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    # Never let profile resolution find a real daemon of the user running the tests.
    env["XDG_RUNTIME_DIR"] = os.path.join(workdir, "xdg")
    env["LC_ALL"] = "C"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a true value (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def write_file(path, text, mode=0o600):
    """Writes text to path in place (truncate + write), as an editor would."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def replace_file(path, text, mode=0o600):
    """Writes text to path atomically: a temporary file in the same directory, renamed."""
    tmp = "{}.tmp{}".format(path, time.monotonic_ns())
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


# --- raw protocol ----------------------------------------------------------------------


class Conn:
    """One raw connection to a daemon socket, reading newline-terminated reply lines."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.eof = False

    def send(self, data):
        """Sends bytes; returns False if the daemon already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def readline(self):
        """Returns the next reply line (str, without newline), or None at end of stream."""
        while b"\n" not in self.buf:
            if self.eof:
                return None
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                # AF_UNIX reports ECONNRESET after the queued data when the daemon closed
                # with our unread bytes pending: it is still the end of the stream.
                chunk = b""
            if not chunk:
                self.eof = True
                if self.buf:
                    raise AssertionError("reply not newline-terminated: %r" % self.buf[:200])
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8")

    def readlines(self, n):
        """Returns up to n reply lines (fewer if the stream ends)."""
        lines = []
        while len(lines) < n:
            line = self.readline()
            if line is None:
                break
            lines.append(line)
        return lines

    def call(self, obj):
        """Sends one request (dict, or bytes without newline) and returns its parsed reply."""
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        assert self.send(data + b"\n"), "daemon closed the connection"
        line = self.readline()
        assert line is not None, "daemon closed the connection without a reply"
        return json.loads(line)

    def at_eof(self):
        """Returns True if the daemon has closed the connection (waits up to the timeout)."""
        while True:
            line = self.readline()
            if line is None:
                return True
            raise AssertionError("unexpected extra reply: %r" % line)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(sock_path, line_bytes, timeout=5.0):
    """Sends line_bytes on a new connection and returns the reply lines (str, no newline):
    one per newline in line_bytes, fewer if the daemon closes the connection first."""
    with Conn(sock_path, timeout) as c:
        c.send(line_bytes)
        return c.readlines(line_bytes.count(b"\n"))


def rpc(sock_path, obj, timeout=5.0):
    """Sends one request (a dict) on a new connection and returns the parsed reply."""
    with Conn(sock_path, timeout) as c:
        return c.call(obj)


def try_ping(sock_path):
    """Returns True if a daemon answers ping on sock_path."""
    try:
        with Conn(sock_path, 1.0) as c:
            reply = c.call({"op": "ping"})
        return reply.get("ok") is True and reply.get("pong") is True
    except (OSError, AssertionError, ValueError):
        return False


# --- client ---------------------------------------------------------------------------


def run_client(args, env, timeout=15):
    """Runs regscale-token with args (no implicit --socket); returns (rc, stdout, stderr)."""
    p = subprocess.run([CLIENT] + list(args), env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# --- daemon ---------------------------------------------------------------------------


class Daemon:
    """A regscale-tokend under test: its config, token file, socket and captured log."""

    def __init__(self, workdir, name="d", token=None, token_file=True, config_extra="",
                 socket_path=None, env=None, args=()):
        self.workdir = workdir
        self.name = name
        self.config = os.path.join(workdir, name + ".conf")
        self.log = os.path.join(workdir, name + ".log")
        self.socket = socket_path or os.path.join(workdir, name + ".sock")
        # token_file: True for <name>.token in workdir, a path, or False for none.
        if isinstance(token_file, str):
            self.token_file = token_file
        else:
            self.token_file = os.path.join(workdir, name + ".token") if token_file else None
        self.env = base_env(workdir, **(env or {}))
        self.args = list(args)
        self.proc = None
        self.returncode = None
        if token is not None and self.token_file:
            self.write_token(token)
        lines = ["[regscale]", "url = " + URL]
        if self.token_file:
            lines.append("token_file = " + self.token_file)
        lines += ["", "[daemon]", "socket = " + self.socket]
        text = "\n".join(lines) + "\n"
        if config_extra:
            text += config_extra
        write_file(self.config, text)

    # token file
    def write_token(self, token, newline=True):
        write_file(self.token_file, token + ("\n" if newline else ""))

    def replace_token(self, token):
        replace_file(self.token_file, token + "\n")

    # process
    def start(self, wait=True):
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [DAEMON, "--config", self.config] + self.args,
                env=self.env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=self.workdir)
        finally:
            logf.close()
        if wait:
            ok = wait_until(lambda: self.proc.poll() is not None or try_ping(self.socket),
                            START_TIMEOUT)
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                pytest.fail("regscale-tokend exited with %d at startup; log:\n%s"
                            % (self.returncode, self.log_text()))
            if not ok:
                pytest.fail("regscale-tokend did not answer ping on %s within %.0f s; log:\n%s"
                            % (self.socket, START_TIMEOUT, self.log_text()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Sends sig and returns the exit status (waits up to STOP_TIMEOUT, then kills)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "hung"
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, max_level=7):
        """Returns the log lines with an sd-daemon prefix <N>, N <= max_level."""
        out = []
        for line in self.log_text().splitlines():
            if len(line) >= 3 and line[0] == "<" and line[2] == ">" and line[1].isdigit():
                if int(line[1]) <= max_level:
                    out.append(line)
        return out

    def error_lines(self):
        """Returns the log lines at error level or worse (<0>..<3>)."""
        return self.log_lines(max_level=3)

    # talking to it
    def client(self, *args, env=None, timeout=15):
        """Runs regscale-token --socket SOCK args...; returns (rc, stdout, stderr)."""
        e = base_env(self.workdir, **(env or {}))
        return run_client(["--socket", self.socket] + list(args), e, timeout)

    def request(self, line_bytes, timeout=5.0):
        return request(self.socket, line_bytes, timeout)

    def rpc(self, obj, timeout=5.0):
        return rpc(self.socket, obj, timeout)

    def conn(self, timeout=5.0):
        return Conn(self.socket, timeout)

    def get_token(self):
        """Returns the token the daemon serves now, or the error code it answers instead."""
        reply = self.rpc({"op": "get"})
        return reply["token"] if reply.get("ok") else reply.get("error")

    def wait_token(self, expected, timeout=3.0):
        """Polls get until it serves expected; returns True, or False after timeout."""
        return bool(wait_until(lambda: self.get_token() == expected, timeout))

    def wait_log(self, predicate, timeout=3.0):
        """Polls the log until predicate(log_text) holds; returns True or False."""
        return bool(wait_until(lambda: predicate(self.log_text()), timeout))


@pytest.fixture
def workdir():
    """A short private directory under /tmp (sun_path is 108 bytes)."""
    d = tempfile.mkdtemp(prefix="rte-", dir="/tmp")
    os.chmod(d, 0o700)
    os.mkdir(os.path.join(d, "xdg"), 0o700)  # the XDG_RUNTIME_DIR base_env() points to
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemons(workdir):
    """Factory: daemons(token=..., ...) -> a started Daemon (start=False to skip).

    Teardown stops every daemon still running with SIGTERM and asserts a clean exit
    (status 0) and that it removed its socket."""
    made = []

    def make(start=True, **kw):
        kw.setdefault("name", "d%d" % len(made))
        d = Daemon(workdir, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make

    problems = []
    for d in made:
        if d.proc is None or d.returncode is not None:
            continue  # never started, or the test already reaped it
        if d.proc.poll() is not None:
            problems.append("%s exited by itself with %d; log:\n%s"
                            % (d.name, d.proc.returncode, d.log_text()))
            continue
        rc = d.stop(signal.SIGTERM)
        if rc != 0:
            problems.append("%s: SIGTERM gave exit status %r; log:\n%s"
                            % (d.name, rc, d.log_text()))
        elif os.path.lexists(d.socket):
            problems.append("%s: socket %s still exists after SIGTERM" % (d.name, d.socket))
    assert not problems, "\n".join(problems)


@pytest.fixture
def daemon(daemons):
    """A started daemon serving a fresh service token (daemon.token)."""
    from tokens import service_token
    token = service_token(exp_in=3600)
    d = daemons(token=token)
    d.token = token
    return d
