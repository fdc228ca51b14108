# SPDX-License-Identifier: MIT
"""What the end-to-end harnesses share: conftest.py (service-token daemons), loginenv.py
(password mode against the bundled HTTPS server) and sdenv.py (the systemd units).

  * the programs under test (RT_DAEMON, RT_CLIENT, RT_LOGIN_HELPER) and missing_binaries();
  * clean environments (clean_env/base_env), short scratch directories, wait_until,
    write_file/replace_file;
  * the raw protocol: Conn, request, rpc, try_ping; run_client for regscale-token;
  * Process (a program started with its output captured to a log file, stopped with an
    exit status) and TokenDaemon (a regscale-tokend with its config, socket and log);
    stop_all, the teardown check that every daemon exits 0 on SIGTERM and removes its
    socket.

It imports neither conftest.py nor the other harnesses, so tests/bench/get_latency.py can
use it (through loginenv) outside pytest. The RT_* variables are read at import.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DAEMON = os.environ.get("RT_DAEMON", "")
CLIENT = os.environ.get("RT_CLIENT", "")
HELPER = os.environ.get("RT_LOGIN_HELPER") or (
    os.path.join(os.path.dirname(DAEMON), "regscale-token-login") if DAEMON else "")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0

# Variables of the test runner that must not leak into the programs under test.
SCRUB = (
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
# ... and, for the programs that talk HTTPS (password mode), their TLS and proxy settings.
SCRUB_TLS = SCRUB + ("no_proxy", "NO_PROXY", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def missing_binaries():
    """Returns the names of the RT_* variables whose program is unset or not executable."""
    return [n for n, p in (("RT_DAEMON", DAEMON), ("RT_CLIENT", CLIENT),
                           ("RT_LOGIN_HELPER", HELPER))
            if not p or not os.access(p, os.X_OK)]


# --- small helpers ---------------------------------------------------------------------


def clean_env(workdir, extra, scrub=SCRUB):
    """Returns the runner's environment without the variables in scrub, rooted in workdir,
    with extra ({name: value}, None to remove) applied."""
    env = {k: v for k, v in os.environ.items() if k not in scrub}
    # Never let profile resolution find a real daemon of the user running the tests.
    env["XDG_RUNTIME_DIR"] = os.path.join(workdir, "xdg")
    env["LC_ALL"] = "C"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def base_env(workdir, **extra):
    """Returns a clean environment for a program under test, rooted in workdir."""
    return clean_env(workdir, extra)


@contextlib.contextmanager
def scratch_dir(prefix):
    """A short private directory under /tmp (sun_path is 108 bytes) with the xdg/ that
    clean_env() points XDG_RUNTIME_DIR to; removed on exit."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o700)
    os.mkdir(os.path.join(d, "xdg"), 0o700)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


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


def read_text(path):
    """Returns the text of path (undecodable bytes replaced), "" if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


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
        reply = rpc(sock_path, {"op": "ping"}, 1.0)
        return reply.get("ok") is True and reply.get("pong") is True
    except (OSError, AssertionError, ValueError):
        return False


def wait_ping_or_exit(proc, sock_path, timeout=START_TIMEOUT):
    """Polls until a daemon answers ping on sock_path or proc has exited (true), or until
    timeout (None)."""
    return wait_until(lambda: proc.poll() is not None or try_ping(sock_path), timeout)


# --- client ----------------------------------------------------------------------------


def run_client(args, env, timeout=15, input=None):
    """Runs regscale-token with args (no implicit --socket), input (str or bytes) on its
    stdin or else /dev/null; returns (rc, stdout, stderr)."""
    p = subprocess.run([CLIENT] + list(args), env=env,
                       input=input.encode() if isinstance(input, str) else input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# --- processes -------------------------------------------------------------------------


def stop_process(proc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """Sends sig to proc unless it has exited, and waits up to timeout: returns the exit
    status, or "hung" when it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "hung"
    return proc.returncode


class Process:
    """A program under test started in workdir with stdout and stderr appended to log;
    proc is its Popen, returncode its exit status once the harness or a test reaped it."""

    def __init__(self, workdir, log):
        self.workdir = workdir
        self.log = log
        self.proc = None
        self.returncode = None

    def spawn(self, argv, env):
        """Starts argv (stdin /dev/null, output to the log); returns the Popen."""
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, cwd=self.workdir)
        return self.proc

    def children(self):
        """The pids of the daemon's live child processes (login helpers)."""
        pids = []
        try:
            for tid in os.listdir("/proc/%d/task" % self.proc.pid):
                with open("/proc/%d/task/%s/children" % (self.proc.pid, tid)) as f:
                    pids += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
        return pids

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Sends sig and returns the exit status (waits up to STOP_TIMEOUT, then kills:
        "hung")."""
        if self.proc is None:
            return None
        self.returncode = stop_process(self.proc, sig, STOP_TIMEOUT)
        return self.returncode

    def log_text(self):
        return read_text(self.log)

    def wait_log(self, what, timeout=3.0):
        """Polls the log until it contains what (a str), or until what(log text) holds (a
        callable); returns True, or False after timeout."""
        check = (lambda text: what in text) if isinstance(what, str) else what
        return bool(wait_until(lambda: check(self.log_text()), timeout))


class TokenDaemon(Process):
    """A regscale-tokend under test, named name in workdir: name.conf (written by the
    subclass), name.log, and its socket (name.sock unless socket_path). The subclass sets
    env (from environment()) and may add to args."""

    scrub = SCRUB  # what environment() leaves out of the runner's environment

    def __init__(self, workdir, name, socket_path=None, args=()):
        super().__init__(workdir, os.path.join(workdir, name + ".log"))
        self.name = name
        self.config = os.path.join(workdir, name + ".conf")
        self.socket = socket_path or os.path.join(workdir, name + ".sock")
        self.args = list(args)
        self.env = None

    def environment(self, extra=None):
        """A clean environment for the daemon or its client, with extra applied."""
        return clean_env(self.workdir, extra or {}, self.scrub)

    def argv(self):
        return [DAEMON, "--config", self.config] + self.args

    def start(self, wait=True):
        """Starts the daemon; with wait, until it answers ping (fails the test if it exits
        or does not answer within START_TIMEOUT)."""
        self.spawn(self.argv(), self.env)
        if wait:
            ok = wait_ping_or_exit(self.proc, self.socket, START_TIMEOUT)
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                pytest.fail("regscale-tokend exited with %d at startup; log:\n%s"
                            % (self.returncode, self.log_text()))
            if not ok:
                pytest.fail("regscale-tokend did not answer ping on %s within %.0f s; log:\n%s"
                            % (self.socket, START_TIMEOUT, self.log_text()))
        return self

    # talking to it
    def client(self, *args, env=None, timeout=15, input=None):
        """Runs regscale-token --socket SOCK args...; returns (rc, stdout, stderr)."""
        return run_client(["--socket", self.socket] + list(args), self.environment(env),
                          timeout, input)

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


def stop_all(daemons, overlap=False, between=None):
    """The teardown check of the TokenDaemons a test made: each one still running gets
    SIGTERM and must exit 0 and remove its socket; one that exited by itself is a problem
    too. Daemons never started, or already reaped by the test, are passed over.

    One at a time (Process.stop: STOP_TIMEOUT, then killed), or with overlap all signalled
    first, between() run, and then each waited for STOP_TIMEOUT before its stop() (which
    signals once more if it still runs). Returns the problems found (strings)."""
    problems, signalled = [], []

    def check(d, rc):
        if rc != 0:
            problems.append("%s: SIGTERM gave exit status %r; log:\n%s"
                            % (d.name, rc, d.log_text()))
        elif os.path.lexists(d.socket):
            problems.append("%s: socket %s still exists after SIGTERM" % (d.name, d.socket))

    for d in daemons:
        if d.proc is None or d.returncode is not None:
            continue  # never started, or the test already reaped it
        if d.proc.poll() is not None:
            d.returncode = d.proc.returncode
            problems.append("%s exited by itself with %d; log:\n%s"
                            % (d.name, d.returncode, d.log_text()))
        elif overlap:
            d.proc.send_signal(signal.SIGTERM)
            signalled.append(d)
        else:
            check(d, d.stop(signal.SIGTERM))
    if between is not None:
        between()
    for d in signalled:
        try:
            d.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        check(d, d.stop())
    return problems
