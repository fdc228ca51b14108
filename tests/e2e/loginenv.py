"""Harness for the password-mode end-to-end tests (test_login.py, test_refresh.py,
test_faults.py) and the latency benchmark (tests/bench/get_latency.py).

It runs the real programs against the RegScale-compatible test server over real HTTPS:

  * a test CA per session (tests/testca.py): the daemon's ca_file points at it;
  * a RegScaleServer (tests/regscale_server.py) per test, on 127.0.0.1, with a
    ControlClient (server.control) to read login counts and inject faults;
  * a regscale-tokend per test in password mode, configured with [regscale] url,
    username, password_file (or the systemd credential "password"), ca_file, login_api,
    connect_timeout, total_timeout and [daemon] socket, and started with
    --login-helper RT_LOGIN_HELPER; its stderr is captured to a log file.

It does not import tests/e2e/conftest.py (owned by the service-token tests); test files
import its fixtures by name (`from loginenv import lg, lg_ca, lg_workdir`: pytest needs the
ones lg depends on in the module too). Fixture names start with lg so they never clash with
conftest.py's.

Environment: RT_DAEMON, RT_CLIENT, RT_LOGIN_HELPER (absolute paths of the built programs;
the helper defaults to regscale-token-login next to RT_DAEMON).

Every LoginDaemon checks at teardown that it exited 0 on SIGTERM, removed its socket, and
that its log holds neither the password nor any fragment of a token a test saw.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

import regscale_server  # noqa: E402
import testca  # noqa: E402

DAEMON = os.environ.get("RT_DAEMON", "")
CLIENT = os.environ.get("RT_CLIENT", "")
HELPER = os.environ.get("RT_LOGIN_HELPER") or (
    os.path.join(os.path.dirname(DAEMON), "regscale-token-login") if DAEMON else "")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

USERNAME = "admin"
PASSWORD = "s3cret-Pa55word-e2e"  # long and unusual, so finding it in a log means a leak

START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0

# Variables of the test runner that must not leak into the programs under test.
_SCRUB = (
    "REGSCALE_TOKEN_SOCKET", "REGSCALE_TOKEN_PROFILE", "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
    "WATCHDOG_PID", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
    "ALL_PROXY", "no_proxy", "NO_PROXY", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
)


def _missing():
    return [n for n, p in (("RT_DAEMON", DAEMON), ("RT_CLIENT", CLIENT),
                           ("RT_LOGIN_HELPER", HELPER))
            if not p or not os.access(p, os.X_OK)]


# Test modules use this as their pytestmark.
needs_binaries = pytest.mark.skipif(bool(_missing()), reason="no built binary in "
                                    + ", ".join(_missing()))


# --- small helpers ---------------------------------------------------------------------


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
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token):
    """Returns the decoded payload of a JWT (a dict)."""
    return json.loads(b64url_decode(token.split(".")[1]))


def base_env(workdir, **extra):
    """A clean environment for a program under test, rooted in workdir."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["XDG_RUNTIME_DIR"] = os.path.join(workdir, "xdg")
    env["LC_ALL"] = "C"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


# --- raw protocol ----------------------------------------------------------------------


class Conn:
    """One raw connection to a daemon socket."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8")

    def call(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")
        line = self.readline()
        assert line is not None, "daemon closed the connection without a reply"
        return json.loads(line)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rpc(path, obj, timeout=5.0):
    with Conn(path, timeout) as c:
        return c.call(obj)


def try_ping(path):
    try:
        return rpc(path, {"op": "ping"}, 1.0).get("pong") is True
    except (OSError, AssertionError, ValueError):
        return False


# --- test CA and server ----------------------------------------------------------------


def make_ca():
    """Creates the test CAs in a new /tmp directory; returns testca's dict of paths."""
    d = tempfile.mkdtemp(prefix="rtl-ca-", dir="/tmp")
    return testca.make_ca(d)


def start_server(ca, lifetime=3600, users=None, require_v2=False, other_ca=False):
    """Starts a RegScaleServer with a certificate from the test CA (or from the unrelated
    CA when other_ca); its control client trusts the certificate's CA."""
    cert = ca["other_server_cert"] if other_ca else ca["server_cert"]
    key = ca["other_server_key"] if other_ca else ca["server_key"]
    cafile = ca["other_ca_cert"] if other_ca else ca["ca_cert"]
    srv = regscale_server.RegScaleServer(
        cert, key, cafile=cafile, users=users or ["{}:{}".format(USERNAME, PASSWORD)],
        lifetime=lifetime, require_v2=require_v2, python=PYTHON)
    return srv.start()


# --- daemon ----------------------------------------------------------------------------


class LoginDaemon:
    """A regscale-tokend in password mode talking to a RegScaleServer.

    password: written to password_file (password_source "file"), or to
    $CREDENTIALS_DIRECTORY/password ("credential"), or nowhere (None: log in over the
    socket). username None leaves it out of the configuration."""

    def __init__(self, workdir, server, ca_file, name="d", username=USERNAME,
                 password=PASSWORD, password_source="file", login_api="v1",
                 connect_timeout=2, total_timeout=3, default_lifetime=None, extra="",
                 helper=None, url=None, args=()):
        self.workdir = workdir
        self.server = server
        self.name = name
        self.config = os.path.join(workdir, name + ".conf")
        self.log = os.path.join(workdir, name + ".log")
        self.socket = os.path.join(workdir, name + ".sock")
        self.password_file = os.path.join(workdir, name + ".password")
        self.helper = helper or HELPER
        self.args = list(args)
        self.password = password
        self.secrets = set()  # strings that must never appear in the log
        if password:
            self.secrets.add(password)
        env = {}
        lines = ["[regscale]", "url = " + (url or server.url), "ca_file = " + ca_file,
                 "login_api = " + login_api,
                 "connect_timeout = {}".format(connect_timeout),
                 "total_timeout = {}".format(total_timeout)]
        if default_lifetime is not None:
            lines.append("default_lifetime = {}".format(default_lifetime))
        if username is not None:
            lines.append("username = " + username)
        if password is not None and password_source == "file":
            write_file(self.password_file, password + "\n")
            lines.append("password_file = " + self.password_file)
        elif password is not None and password_source == "credential":
            creds = os.path.join(workdir, name + ".creds")
            os.mkdir(creds, 0o700)
            write_file(os.path.join(creds, "password"), password)
            env["CREDENTIALS_DIRECTORY"] = creds
        lines += ["", "[daemon]", "socket = " + self.socket]
        write_file(self.config, "\n".join(lines) + "\n" + extra)
        self.env = base_env(workdir, **env)
        self.proc = None
        self.returncode = None

    # process
    def start(self, wait=True):
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [DAEMON, "--config", self.config, "--login-helper", self.helper] + self.args,
                env=self.env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                cwd=self.workdir)
        if wait:
            ok = wait_until(lambda: self.proc.poll() is not None or try_ping(self.socket),
                            START_TIMEOUT)
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                pytest.fail("regscale-tokend exited with %d at startup; log:\n%s"
                            % (self.returncode, self.log_text()))
            if not ok:
                pytest.fail("regscale-tokend did not answer ping within %.0f s; log:\n%s"
                            % (START_TIMEOUT, self.log_text()))
        return self

    def stop(self, sig=signal.SIGTERM):
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

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def set_password_file(self, password):
        self.secrets.add(password)
        write_file(self.password_file, password + "\n")

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=3.0):
        return bool(wait_until(lambda: text in self.log_text(), timeout))

    # protocol
    def rpc(self, obj, timeout=5.0):
        reply = rpc(self.socket, obj, timeout)
        self.remember(reply)
        return reply

    def remember(self, reply):
        """Notes the token of a get reply, so the teardown can check the log for it."""
        tok = reply.get("token") if isinstance(reply, dict) else None
        if tok:
            self.secrets.add(tok)
        return reply

    def status(self):
        return self.rpc({"op": "status"})

    def state(self):
        return self.status()["state"]

    def get(self, **kw):
        return self.rpc(dict({"op": "get"}, **kw))

    def token(self):
        """The token served now, or the error code answered instead."""
        r = self.get()
        return r["token"] if r.get("ok") else r.get("error")

    def wait_state(self, states, timeout=5.0, interval=0.05):
        """Polls status until its state is one of states; returns the status or fails."""
        if isinstance(states, str):
            states = (states,)
        last = {}

        def check():
            last["s"] = self.status()
            return last["s"] if last["s"]["state"] in states else None
        st = wait_until(check, timeout, interval)
        if st is None:
            pytest.fail("state never became %s within %.1f s; last status %s\nlog:\n%s"
                        % ("|".join(states), timeout, json.dumps(last.get("s")),
                           self.log_text()))
        return st

    def wait_valid(self, timeout=5.0):
        return self.wait_state("valid", timeout)

    # client
    def client(self, *args, input=None, timeout=15, env=None):
        """Runs regscale-token --socket SOCK args...; returns (rc, stdout, stderr)."""
        e = base_env(self.workdir, **(env or {}))
        p = subprocess.run([CLIENT, "--socket", self.socket] + list(args), env=e,
                           input=input.encode() if isinstance(input, str) else input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        for word in out.split():
            if word.count(".") == 2 and len(word) > 40:
                self.secrets.add(word)
        return p.returncode, out, p.stderr.decode("utf-8", "replace")

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

    def check_refused_no_token(self, client=True):
        """Checks get serves no token after failed logins: login_failed (client exit 6),
        or no_token "a login is in progress" (exit 4) when a retry has started. (A get
        can start a due retry itself, up to ~1 s early: see test_faults.py.)"""
        r = self.get()
        assert r["ok"] is False and "token" not in r, r
        assert r["error"] == "login_failed" or (
            r["error"] == "no_token" and "in progress" in r["message"]), r
        if client:
            rc, out, err = self.client("get")
            assert out == "" and (rc == 6 or (rc == 4 and "in progress" in err)), (
                rc, out, err)
        return r

    # server side
    def logins(self):
        return self.server.control.stats()["login"]

    def check_log_clean(self):
        """Returns the problems found: a secret, or a fragment of one, in the log."""
        text = self.log_text()
        problems = []
        for s in sorted(self.secrets):
            # A JWT's header is no secret (all tokens share it): its claims and signature
            # are. Whole parts and their halves are looked for.
            frags = [s] if s.count(".") != 2 else [p for p in s.split(".")[1:] if len(p) >= 16]
            more = []
            for p in frags:
                if len(p) >= 32:
                    more += [p[:len(p) // 2], p[len(p) // 2:]]
            for f in frags + more:
                if f in text:
                    problems.append("%s: log holds a secret fragment %r..." % (self.name,
                                                                                f[:8]))
                    break
        return problems


class LoginEnv:
    """One test's world: the session's CA, servers and daemons it started."""

    def __init__(self, ca, workdir):
        self.ca = ca
        self.workdir = workdir
        self.servers = []
        self.daemons = []

    def server(self, **kw):
        srv = start_server(self.ca, **kw)
        self.servers.append(srv)
        return srv

    def daemon(self, server=None, start=True, **kw):
        """A LoginDaemon for server (default: a new server with lifetime 3600)."""
        if server is None:
            server = self.server()
        kw.setdefault("name", "d%d" % len(self.daemons))
        d = LoginDaemon(self.workdir, server, self.ca["ca_cert"], **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def close(self):
        problems = []
        # Signal everything first, then wait: the exits overlap.
        for d in self.daemons:
            if d.proc is None or d.returncode is not None:
                continue
            if d.proc.poll() is not None:
                problems.append("%s exited by itself with %d; log:\n%s"
                                % (d.name, d.proc.returncode, d.log_text()))
                d.returncode = d.proc.returncode
            else:
                d.proc.send_signal(signal.SIGTERM)
        for srv in self.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()  # its clean exit is test_server_selfcheck's business
        for d in self.daemons:
            if d.proc is None or d.returncode is not None:
                problems += d.check_log_clean()
                continue
            try:
                d.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            rc = d.stop()
            if rc != 0:
                problems.append("%s: SIGTERM gave exit status %r; log:\n%s"
                                % (d.name, rc, d.log_text()))
            elif os.path.lexists(d.socket):
                problems.append("%s: socket still exists after SIGTERM" % d.name)
            problems += d.check_log_clean()
        for srv in self.servers:
            srv.stop()
            srv.cleanup()
        return problems


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lg_ca():
    """The test CAs (testca.make_ca) for the whole session."""
    ca = make_ca()
    yield ca
    shutil.rmtree(ca["dir"], ignore_errors=True)


@pytest.fixture
def lg_workdir():
    """A short private directory under /tmp (sun_path is 108 bytes)."""
    d = tempfile.mkdtemp(prefix="rtl-", dir="/tmp")
    os.chmod(d, 0o700)
    os.mkdir(os.path.join(d, "xdg"), 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lg(lg_ca, lg_workdir):
    """A LoginEnv: lg.server(lifetime=..) starts a test server, lg.daemon(server, ...) a
    daemon against it. Teardown stops everything and checks the daemons' exits and logs."""
    env = LoginEnv(lg_ca, lg_workdir)
    yield env
    problems = env.close()
    assert not problems, "\n".join(problems)


# --- concurrency ---------------------------------------------------------------------


def concurrent_gets(sock_path, n, timeout=5.0, request=None):
    """Opens n connections, sends one get on each at (nearly) the same moment from n
    threads, and returns [(latency_seconds, reply_dict_or_exception)] where the latency
    runs from sending the request to reading its reply."""
    req = json.dumps(request or {"op": "get"}).encode() + b"\n"
    conns = [Conn(sock_path, timeout) for _ in range(n)]
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        c = conns[i]
        barrier.wait()
        t0 = time.monotonic()
        try:
            c.sock.sendall(req)
            line = c.readline()
            out[i] = (time.monotonic() - t0, json.loads(line) if line else
                      EOFError("closed"))
        except Exception as e:  # noqa: BLE001 - reported by the caller
            out[i] = (time.monotonic() - t0, e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    for c in conns:
        c.close()
    return out


def percentile(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


__all__ = [
    "DAEMON", "CLIENT", "HELPER", "USERNAME", "PASSWORD", "needs_binaries", "wait_until",
    "write_file", "claims_of", "base_env", "Conn", "rpc", "try_ping", "make_ca",
    "start_server", "LoginDaemon", "LoginEnv", "lg_ca", "lg_workdir", "lg",
    "concurrent_gets", "percentile",
]
