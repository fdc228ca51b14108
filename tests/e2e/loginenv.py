# SPDX-License-Identifier: MIT
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

The machinery it shares with conftest.py and sdenv.py (clean environments, the raw protocol,
starting a daemon and checking its exit) is in harness.py. It does not import
tests/e2e/conftest.py (owned by the service-token tests); test files
import its fixtures by name (`from loginenv import lg, lg_ca, lg_workdir`: pytest needs the
ones lg depends on in the module too). Fixture names start with lg so they never clash with
conftest.py's.

Environment: RT_DAEMON, RT_CLIENT, RT_LOGIN_HELPER (absolute paths of the built programs;
the helper defaults to regscale-token-login next to RT_DAEMON).

Every LoginDaemon checks at teardown that it exited 0 on SIGTERM, removed its socket, and
that its log holds neither the password nor any fragment of a token a test saw.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import pytest

from harness import (CLIENT, DAEMON, HELPER, PYTHON, SCRUB_TLS, TESTS_DIR, Conn,  # noqa: F401
                     TokenDaemon, clean_env, rpc, scratch_dir, stop_all, try_ping, wait_until,
                     write_file)
from tokens import claims_of  # noqa: F401 - for the test modules

if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

import regscale_server  # noqa: E402
import testca  # noqa: E402

USERNAME = "admin"
PASSWORD = "s3cret-Pa55word-e2e"  # long and unusual, so finding it in a log means a leak

# Test modules use this as their pytestmark. A missing program is not a skip but a usage
# error: conftest.py's pytest_collection_modifyitems stops the run.
needs_binaries = pytest.mark.needs_binaries


def base_env(workdir, **extra):
    """A clean environment for a program under test, rooted in workdir, without the
    runner's TLS and proxy settings either."""
    return clean_env(workdir, extra, SCRUB_TLS)


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


class LoginDaemon(TokenDaemon):
    """A regscale-tokend in password mode talking to a RegScaleServer.

    password: written to password_file (password_source "file"), or to
    $CREDENTIALS_DIRECTORY/password ("credential"), or nowhere (None: log in over the
    socket). username None leaves it out of the configuration. socket_path: where it
    listens (default: name.sock in workdir)."""

    scrub = SCRUB_TLS

    def __init__(self, workdir, server, ca_file, name="d", username=USERNAME,
                 password=PASSWORD, password_source="file", login_api="v1",
                 connect_timeout=2, total_timeout=3, default_lifetime=None, extra="",
                 helper=None, url=None, socket_path=None, args=()):
        super().__init__(workdir, name, socket_path, args)
        self.server = server
        self.password_file = os.path.join(workdir, name + ".password")
        self.helper = helper or HELPER
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
        self.env = self.environment(env)

    # process
    def argv(self):
        return [DAEMON, "--config", self.config, "--login-helper", self.helper] + self.args

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def set_password_file(self, password):
        self.secrets.add(password)
        write_file(self.password_file, password + "\n")

    # protocol
    def rpc(self, obj, timeout=5.0):
        reply = super().rpc(obj, timeout)
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
        return self.get_token()

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
        """Runs regscale-token --socket SOCK args...; returns (rc, stdout, stderr). Tokens
        it prints are noted for the teardown's log check."""
        rc, out, err = super().client(*args, input=input, timeout=timeout, env=env)
        for word in out.split():
            if word.count(".") == 2 and len(word) > 40:
                self.secrets.add(word)
        return rc, out, err

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
        """Stops the daemons (each must exit 0 on SIGTERM and remove its socket) and the
        servers; returns the problems found, with any secret in a daemon's log."""
        def kill_servers():
            for srv in self.servers:
                if srv.proc is not None and srv.proc.poll() is None:
                    srv.proc.kill()  # its clean exit is test_server_selfcheck's business
        # Signal every daemon first, then wait: the exits overlap.
        problems = stop_all(self.daemons, overlap=True, between=kill_servers)
        for d in self.daemons:
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
    with scratch_dir("rtl-") as d:
        yield d


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
