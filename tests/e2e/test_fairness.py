# SPDX-License-Identifier: MIT
"""Who is on the other end, and who gets a slot.

The client checks the peer of its socket (SO_PEERCRED) before it sends anything, so a
socket served by another uid never receives a login password and never has its "token"
printed: the peer must be root, the client's own uid, the system service's user
(regscale-token) or the user named by --daemon-user / REGSCALE_TOKEN_DAEMON_USER; else
exit 5. Here the impostor is a Python listener run as nobody, speaking the protocol with
a fake token, and the client runs as root.

The daemon caps the connections of each uid other than its own and root's
([daemon] max_connections_per_user, default 32), keeps slots that only they may use, and
when every slot a newcomer may use is taken it closes (idle_timeout) a connection that
sent nothing but ping for an idle_timeout. An allowed reader holding 128 pinging
connections no longer starves the daemon's own uid.

Needs root, setpriv, and the users nobody (65534, group nogroup) and daemon (uid 1).
"""

import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import CLIENT, base_env, run_client, wait_until
from harness import PYTHON, stop_process
from tokens import service_token


def _have(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not _have("nobody")
    or not _have("daemon"), reason="needs root, setpriv and the users nobody/daemon")

NOBODY = pwd.getpwnam("nobody").pw_uid if _have("nobody") else 65534
MAX_CLIENTS = 128
PER_USER_DEFAULT = MAX_CLIENTS // 4
RESERVED = 16  # slots only the daemon's uid and root may take
PASSWORD = "Imp0ster-must-NOT-see-this"


def as_user(user, group):
    return ["setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups"]


# --- (C) the client checks its peer ----------------------------------------------------------

# A protocol-speaking impostor: answers every request line as the daemon would, with a
# fake token, and appends every byte it receives to a log file.
IMPOSTOR = r"""
import json, os, socket, sys
path, log, token = sys.argv[1:4]
replies = {
    "ping": {"ok": True, "v": 1, "pong": True},
    "get": {"ok": True, "v": 1, "kind": "service", "user_id": "fake", "url": None,
            "expires_at": None, "expires": None, "expires_in": None, "token": token},
    "status": {"ok": True, "v": 1, "state": "valid", "message": "fake", "kind": "service",
               "user_id": "fake", "url": None, "expires_at": None, "expires": None,
               "expires_in": None, "last_refresh": None, "next_refresh": None,
               "last_error": None, "retries": 0, "version": "0.1.0", "pid": 1, "uptime": 1},
    "login": {"ok": True, "v": 1, "state": "valid", "kind": "login", "user_id": "fake",
              "url": None, "expires_at": None, "expires": None, "expires_in": None,
              "next_refresh": None},
}
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o666)
srv.listen(16)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    c.settimeout(10)
    buf = b""
    with c:
        while True:
            try:
                chunk = c.recv(65536)
            except OSError:
                break
            with open(log, "ab") as f:
                f.write(chunk)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                try:
                    op = json.loads(line).get("op")
                except ValueError:
                    op = None
                reply = replies.get(op, {"ok": False, "v": 1, "error": "unknown_op",
                                         "message": "?"})
                try:
                    c.sendall(json.dumps(reply).encode() + b"\n")
                except OSError:
                    break
"""


def kill_and_close(proc):
    """Kills a helper process of the test and closes its pipes."""
    stop_process(proc, signal.SIGKILL)
    proc.stdout.close()
    proc.stderr.close()


class Impostor:
    """IMPOSTOR run as uid:gid (nobody by default) on <workdir>/imp/default.sock."""

    def __init__(self, workdir, uid=NOBODY, gid=None):
        os.chmod(workdir, 0o755)
        self.dir = os.path.join(workdir, "imp")
        os.mkdir(self.dir, 0o755)
        os.chown(self.dir, uid, -1)
        self.socket = os.path.join(self.dir, "default.sock")
        self.log = os.path.join(self.dir, "received")
        self.token = service_token(exp_in=3600)
        self.workdir = workdir
        self.proc = subprocess.Popen(
            as_user(str(uid), str(gid if gid is not None else uid))
            + [PYTHON, "-c", IMPOSTOR, self.socket, self.log, self.token],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert r and self.proc.stdout.readline() == b"ready\n", self.proc.stderr.read()
        assert os.stat(self.socket).st_uid == uid

    def received(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def client(self, *args, env=None, input=None, prefix=()):
        """Runs regscale-token as root against the impostor's socket."""
        if prefix:
            p = subprocess.run(list(prefix) + [CLIENT, "--socket", self.socket] + list(args),
                               env=base_env(self.workdir, **(env or {})),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
            return p.returncode, p.stdout.decode(), p.stderr.decode()
        return run_client(["--socket", self.socket] + list(args),
                          base_env(self.workdir, **(env or {})), 15, input)

    def stop(self):
        kill_and_close(self.proc)


@pytest.fixture
def impostor(workdir):
    imp = Impostor(workdir)
    yield imp
    imp.stop()


def assert_refused(imp, rc, out, err):
    assert rc == 5 and out == "", (rc, out, err)
    assert err.startswith("regscale-token: ") and err.count("\n") == 1, err
    assert imp.socket in err, err
    assert "uid %d (nobody)" % NOBODY in err, err
    assert "--daemon-user" in err and "REGSCALE_TOKEN_DAEMON_USER" in err, err


@pytest.mark.parametrize("fmt", ["raw", "bearer", "header", "json", "env"])
def test_get_does_not_trust_another_uids_socket(impostor, fmt):
    rc, out, err = impostor.client("get", "--format", fmt)
    assert_refused(impostor, rc, out, err)
    assert impostor.token not in out + err
    # Checked before anything was sent.
    assert impostor.received() == b""


def test_login_sends_no_password_to_another_uid(impostor):
    rc, out, err = impostor.client("login", "--username", "jdoe", input=PASSWORD + "\n")
    assert_refused(impostor, rc, out, err)
    got = impostor.received()
    assert PASSWORD.encode() not in got and b"password" not in got, got
    assert got == b""


def test_exec_runs_nothing_with_another_uids_token(impostor):
    rc, out, err = impostor.client("exec", "--", "sh", "-c", 'echo "ran: $token"')
    assert_refused(impostor, rc, out, err)
    assert impostor.received() == b""


@pytest.mark.parametrize("cmd", ["status", "whoami", "ping", "logout", "refresh"])
def test_other_commands_check_too(impostor, cmd):
    rc, out, err = impostor.client(cmd)
    assert_refused(impostor, rc, out, err)
    assert impostor.received() == b""


@pytest.mark.parametrize("how", ["option", "option-uid", "env"])
def test_named_daemon_user_is_accepted(impostor, how):
    args, env = [], None
    if how == "option":
        args = ["--daemon-user", "nobody"]
    elif how == "option-uid":
        args = ["--daemon-user", str(NOBODY)]
    else:
        env = {"REGSCALE_TOKEN_DAEMON_USER": "nobody"}
    rc, out, err = impostor.client(*args, "get", env=env)
    assert rc == 0 and out == impostor.token + "\n", (rc, out, err)
    rc, out, err = impostor.client(*args, "login", "--username", "jdoe", env=env,
                                   input=PASSWORD + "\n")
    assert rc == 0 and "logged in" in out, (rc, out, err)
    assert PASSWORD.encode() in impostor.received()


def test_naming_another_user_does_not_help(impostor):
    rc, out, err = impostor.client("--daemon-user", "daemon", "get")
    assert_refused(impostor, rc, out, err)
    rc, out, err = impostor.client("get", env={"REGSCALE_TOKEN_DAEMON_USER": "daemon"})
    assert_refused(impostor, rc, out, err)


SERVICE_UID = 65533  # a uid for the service's account, in a private copy of /etc/passwd


def test_the_service_user_is_trusted(workdir):
    """A socket served by the account systemd/regscale-token.conf creates (regscale-token)
    is trusted without --daemon-user. The account is made up in a mount namespace of the
    client's, with /etc/passwd replaced by a copy that has it; outside it, the same uid is
    nobody the client knows, and refused."""
    if _have("regscale-token"):
        pytest.skip("the account regscale-token exists on this machine")
    fake = os.path.join(workdir, "passwd")
    with open("/etc/passwd") as f:
        text = f.read()
    with open(fake, "w") as f:
        f.write(text + "regscale-token:x:%d:%d:RegScale token agent:/:/usr/sbin/nologin\n"
                % (SERVICE_UID, SERVICE_UID))
    os.chmod(fake, 0o644)
    ns = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/passwd && exec "$@"', fake]
    probe = subprocess.run(ns + ["getent", "passwd", "regscale-token"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot bind-mount a passwd file in a mount namespace: %r" % probe)
    imp = Impostor(workdir, uid=SERVICE_UID)
    try:
        rc, out, err = imp.client("get", prefix=ns)
        assert rc == 0 and out == imp.token + "\n", (rc, out, err)
        rc, out, err = imp.client("get")
        assert rc == 5 and out == "", (rc, out, err)
        assert "uid %d (no such user)" % SERVICE_UID in err, err
    finally:
        imp.stop()


def test_daemon_user_usage_errors(impostor):
    rc, out, err = impostor.client("--daemon-user", "no-such-user-e2e", "get")
    assert rc == 2 and out == "" and "no-such-user-e2e" in err, (rc, out, err)
    rc, out, err = impostor.client("get", env={"REGSCALE_TOKEN_DAEMON_USER": "no-such-e2e"})
    assert rc == 2 and out == "" and "REGSCALE_TOKEN_DAEMON_USER" in err, (rc, out, err)
    rc, out, err = impostor.client("get", "--daemon-user", "nobody")
    assert rc == 2 and "goes before the command" in err, (rc, out, err)
    assert impostor.received() == b""


# --- (E) one uid cannot starve the others ------------------------------------------------------

# Opens n connections, each with one ping; keeps those that were served and pings each of
# them every interval seconds. Prints one JSON line after opening and one per round:
# held (connections alive), refused ({error: count}), lost (closed by the daemon later, by
# error).
HOG = r"""
import json, select, socket, sys, time
path, n, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
held, refused, lost, bufs = [], {}, {}, {}

def first_line(s):
    # The next reply line on s, as a dict; what came after it waits in bufs.
    data = bufs.pop(s, b"")
    while b"\n" not in data:
        try:
            chunk = s.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            return {"error": "eof"}
        data += chunk
    line, _, bufs[s] = data.partition(b"\n")
    return json.loads(line)

for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    try:
        s.sendall(b'{"op":"ping"}\n')
    except OSError:
        pass
    r = first_line(s)
    if r.get("pong"):
        held.append(s)
    else:
        refused[r.get("error")] = refused.get(r.get("error"), 0) + 1
        s.close()

def report():
    print(json.dumps({"held": len(held), "refused": refused, "lost": lost}), flush=True)

report()
while True:
    time.sleep(interval)
    for s in list(held):
        try:
            s.sendall(b'{"op":"ping"}\n')
        except OSError:
            pass
    for s in list(held):
        r = first_line(s)
        if not r.get("pong"):
            lost[r.get("error")] = lost.get(r.get("error"), 0) + 1
            held.remove(s)
            s.close()
    report()
"""


class Hog:
    """HOG run as user: n connections pinging every interval seconds."""

    def __init__(self, sock, n, interval, user=("nobody", "nogroup")):
        self.proc = subprocess.Popen(
            as_user(*user) + [PYTHON, "-c", HOG, sock, str(n), str(interval)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.last = None
        assert self.next(20) is not None, self.proc.stderr.read()

    def next(self, timeout):
        """Waits up to timeout for the next report line; returns it (a dict) or None."""
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        self.last = json.loads(line)
        return self.last

    def stop(self):
        kill_and_close(self.proc)


@pytest.fixture
def shared(workdir, daemons):
    """Factory: a root daemon serving a token from <workdir>/run/d.sock, its directory
    made by the daemon; config: lines for [daemon]."""
    os.chmod(workdir, 0o755)
    probe = subprocess.run(as_user("nobody", "nogroup") + [CLIENT, "--version"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("nobody cannot run %s: %s" % (CLIENT, probe.stderr.decode().strip()))

    def make(config):
        token = service_token(exp_in=3600)
        d = daemons(token=token, socket_path=os.path.join(workdir, "run", "d.sock"),
                    config_extra=config)
        d.token = token
        return d

    return make


@pytest.fixture
def hogs():
    made = []

    def make(*args, **kw):
        h = Hog(*args, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


def timed_gets(d, n, limit=0.1):
    """n gets by the daemon's own uid, each on a new connection; returns the slowest, after
    asserting that every one served the token within limit seconds."""
    slowest = 0.0
    for i in range(n):
        t0 = time.monotonic()
        reply = d.rpc({"op": "get", "id": i})
        took = time.monotonic() - t0
        assert reply.get("token") == d.token, (i, reply)
        assert took < limit, "get %d took %.3f s" % (i, took)
        slowest = max(slowest, took)
    return slowest


def refusal_lines(d):
    return [ln for ln in d.log_text().splitlines() if " refused: " in ln]


def test_one_reader_cannot_starve_the_daemons_uid(shared, hogs):
    """nobody (allowed to read) opens 128 connections and pings on each every 2 s: it keeps
    max_connections_per_user (32 by default) of them, and the daemon's own uid gets 50 of
    50 gets, each within 100 ms."""
    d = shared("allow_users = nobody\n")
    t0 = time.monotonic()
    hog = hogs(d.socket, MAX_CLIENTS, 2.0)
    timed_gets(d, 50)
    rc, out, err = d.client("get")
    assert rc == 0 and out == d.token + "\n", (rc, out, err)

    assert hog.last["held"] == PER_USER_DEFAULT, hog.last
    assert hog.last["refused"] == {"too_many_clients": MAX_CLIENTS - PER_USER_DEFAULT}
    # The connections it kept are served as before: two more rounds of pings.
    assert hog.next(10) and hog.next(10), "hog stopped reporting"
    assert hog.last["held"] == PER_USER_DEFAULT and hog.last["lost"] == {}, hog.last
    # 96 refusals, rate-limited to about one log line a second.
    lines = [ln for ln in refusal_lines(d) if "max_connections_per_user" in ln]
    assert 1 <= len(lines) <= 2 + int(time.monotonic() - t0), lines


def test_per_user_cap_is_configurable(shared, hogs):
    d = shared("allow_users = nobody\nmax_connections_per_user = 5\n")
    hog = hogs(d.socket, 20, 2.0)
    assert hog.last["held"] == 5 and hog.last["refused"] == {"too_many_clients": 15}, hog.last
    timed_gets(d, 10)


def test_reserve_and_ping_only_connections_make_room(shared, hogs):
    """Without a per-user cap that bites (max_connections_per_user = 128), nobody fills
    every slot others may use (128 - 16) with connections that only ping. The daemon's
    uid still has its reserve; once those connections have sent nothing but ping for an
    idle_timeout, another allowed uid gets a slot by closing one of them (idle_timeout);
    and the daemon's uid is served beyond its reserve, by closing more."""
    d = shared("allow_users = nobody, daemon\nmax_connections_per_user = 128\n"
               "idle_timeout = 2s\n")
    hog = hogs(d.socket, MAX_CLIENTS, 0.5)
    assert hog.last["held"] == MAX_CLIENTS - RESERVED, hog.last
    assert hog.last["refused"] == {"too_many_clients": RESERVED}, hog.last
    timed_gets(d, 50)

    # Pinging is not using: after idle_timeout, uid daemon takes a ping-only slot.
    time.sleep(2.5)
    p = subprocess.run(as_user("daemon", "daemon") + [CLIENT, "--socket", d.socket, "get"],
                       env=base_env(d.workdir), capture_output=True, timeout=15)
    assert p.returncode == 0 and p.stdout.decode() == d.token + "\n", p
    assert wait_until(lambda: hog.next(2) and hog.last["lost"].get("idle_timeout"), 5), \
        hog.last
    assert d.wait_log("to make room", 2.0), d.log_text()

    # The daemon's uid holds 24 connections at once (more than its reserve of 16), each
    # served within 100 ms.
    conns = []
    try:
        for i in range(24):
            t0 = time.monotonic()
            c = d.conn()
            conns.append(c)
            reply = c.call({"op": "get"})
            assert reply.get("token") == d.token and time.monotonic() - t0 < 0.1, (i, reply)
    finally:
        for c in conns:
            c.close()
    assert d.running()
