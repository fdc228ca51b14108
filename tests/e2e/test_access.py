# SPDX-License-Identifier: MIT
"""Access control end to end: clients run as other uids (setpriv) against a daemon run by
root. By default the socket is private (0600 in a 0700 directory) and the kernel refuses
everybody else; allow_users / allow_groups open it (0666 in 0755) to readers that may get
the token but never change what the daemon holds; admin_users / admin_groups may; anybody
else is refused with permission_denied and one rate-limited log line naming pid, uid and
command. Unknown names in the lists stop the daemon at startup.

Needs root, setpriv, and the users nobody (65534, group nogroup) and daemon (uid 1).
"""

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import CLIENT, base_env, wait_until
from tokens import service_token

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else "python3"


def _have(user=None, group=None):
    try:
        if user:
            pwd.getpwnam(user)
        if group:
            grp.getgrnam(group)
        return True
    except KeyError:
        return False


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not _have("nobody", "nogroup")
    or not _have("daemon", "daemon"),
    reason="needs root, setpriv and the users nobody/daemon")

NOBODY = pwd.getpwnam("nobody").pw_uid if _have("nobody") else 65534
DAEMON_UID = pwd.getpwnam("daemon").pw_uid if _have("daemon") else 1

REFUSAL_RE = r'client pid (\d+) uid (\d+) \("([^"]*)"\) refused: not the daemon\'s user'


def as_user(user, group, groups=None):
    """The setpriv prefix that runs a command as user:group with exactly the supplementary
    groups given (none by default)."""
    cmd = ["setpriv", "--reuid=" + user, "--regid=" + group]
    cmd += ["--groups=" + ",".join(groups)] if groups else ["--clear-groups"]
    return cmd


def client_as(d, user, group, *args, groups=None, input=None, timeout=15):
    """Runs regscale-token --socket SOCK args as user; returns (rc, stdout, stderr, pid)."""
    p = subprocess.Popen(as_user(user, group, groups) + [CLIENT, "--socket", d.socket]
                         + list(args), env=base_env(d.workdir),
                         stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(input.encode() if input is not None else None, timeout=timeout)
    return p.returncode, out.decode(), err.decode(), p.pid


RAW = r"""
import json, socket, sys
path, lines = sys.argv[1], json.loads(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(path)
except OSError as e:
    print(json.dumps({"connect_errno": e.errno}))
    sys.exit(0)
f = s.makefile("rb")
out = []
for line in lines:
    try:
        s.sendall(line.encode() + b"\n")
    except OSError:
        pass
    try:
        r = f.readline()
    except ConnectionResetError:
        r = b""
    if not r:
        out.append(None)
        break
    out.append(json.loads(r))
print(json.dumps({"replies": out}))
"""


def raw_as(d, user, group, requests, groups=None):
    """Sends requests (dicts) on one connection as user; returns the parsed result
    {"replies": [...]} or {"connect_errno": N}."""
    p = subprocess.run(as_user(user, group, groups) + [PYTHON, "-c", RAW, d.socket,
                                                      json.dumps([json.dumps(r)
                                                                  for r in requests])],
                       env=base_env(d.workdir), capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


@pytest.fixture
def shared(workdir, daemons):
    """Factory: a daemon serving a token from <workdir>/runN/d.sock, the run directory made
    by the daemon itself; workdir is opened to others (0755) so only the daemon's own modes
    decide. config: lines for [daemon]."""
    os.chmod(workdir, 0o755)
    made = []

    def make(config="", start=True, umask=None):
        token = service_token(exp_in=3600)
        run = os.path.join(workdir, "run%d" % len(made))
        old = os.umask(umask) if umask is not None else None
        try:
            d = daemons(token=token, socket_path=os.path.join(run, "d.sock"),
                        config_extra=config, start=start)
        finally:
            if old is not None:
                os.umask(old)
        d.token = token
        d.rundir = run
        made.append(d)
        return d

    # The client must be executable by the other users (a build tree in a private home
    # would not be).
    probe = subprocess.run(as_user("nobody", "nogroup") + [CLIENT, "--version"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("nobody cannot run %s: %s" % (CLIENT, probe.stderr.decode().strip()))
    return make


def modes(d):
    return (stat.S_IMODE(os.stat(d.rundir).st_mode), stat.S_IMODE(os.stat(d.socket).st_mode))


def refusals(d):
    return re.findall(REFUSAL_RE, d.log_text())


# --- private socket ----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_private_socket_refuses_other_uids(shared, umask):
    """No access lists: 0700 directory, 0600 socket whatever the umask the daemon started
    with; another uid cannot even connect (exit 5, permission denied)."""
    d = shared(umask=umask)
    assert modes(d) == (0o700, 0o600)
    rc, out, err, _ = client_as(d, "nobody", "nogroup", "get")
    assert rc == 5 and out == "", (rc, out, err)
    assert "permission denied" in err
    r = raw_as(d, "nobody", "nogroup", [{"op": "get"}])
    assert r == {"connect_errno": 13}, r
    # The daemon's own uid is served as before.
    rc, out, err = d.client("get")
    assert rc == 0 and out == d.token + "\n", err


# --- readers ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["allow_users = nobody\n", "allow_users = 65534\n",
                                    "allow_users = daemon, nobody\n",
                                    "allow_groups = nogroup\n"])
def test_reader_gets_but_cannot_change(shared, config):
    d = shared(config, umask=0o077)
    assert modes(d) == (0o755, 0o666)
    rc, out, err, _ = client_as(d, "nobody", "nogroup", "get")
    assert rc == 0 and out == d.token + "\n", (rc, out, err)
    rc, out, err, _ = client_as(d, "nobody", "nogroup", "status")
    assert rc == 0 and "valid" in out, (rc, out, err)

    for args, inp in ((["logout"], None), (["refresh"], None),
                      (["login", "--username", "mallory"], "not-the-password\n")):
        rc, out, err, pid = client_as(d, "nobody", "nogroup", *args, input=inp, timeout=30)
        assert rc == 5, (args, rc, out, err)
        # One line: the daemon's cause, the client's action (no error code: --json has it).
        assert "admin_users" in err and err.count("\n") == 1, (args, err)
        assert d.get_token() == d.token, args
        line = "client pid %d uid %d: %s refused: permission_denied" % (pid, NOBODY, args[0])
        assert d.log_text().count(line) == 1, d.log_text()

    # On the wire: refused, and the connection stays usable for reading.
    r = raw_as(d, "nobody", "nogroup", [{"op": "logout"}, {"op": "get"}])["replies"]
    assert r[0]["ok"] is False and r[0]["error"] == "permission_denied", r
    assert r[1]["token"] == d.token, r
    assert d.rpc({"op": "status"})["state"] == "valid"
    assert refusals(d) == []  # readers are not refused at the door


def test_allow_groups_counts_supplementary_groups(shared):
    """SO_PEERGROUPS: uid daemon is let in by nogroup as a supplementary group, and refused
    without it."""
    d = shared("allow_groups = nogroup\n")
    rc, out, err, _ = client_as(d, "daemon", "daemon", "get", groups=["daemon", "nogroup"])
    assert rc == 0 and out == d.token + "\n", (rc, out, err)
    rc, out, err, _ = client_as(d, "daemon", "daemon", "get")
    assert rc == 5, (rc, out, err)
    rc, out, err, _ = client_as(d, "daemon", "daemon", "logout", groups=["daemon", "nogroup"])
    assert rc == 5 and d.get_token() == d.token, (rc, out, err)


# --- refusals --------------------------------------------------------------------------


def test_other_uid_refused_with_one_log_line(shared):
    d = shared("allow_users = nobody\n")
    rc, out, err, pid = client_as(d, "daemon", "daemon", "get")
    assert rc == 5 and out == "", (rc, out, err)
    assert "may not use the daemon" in err and "allow_users" in err, err
    rc, out, err, _ = client_as(d, "daemon", "daemon", "get", "--json")
    assert rc == 5 and err == "" and json.loads(out)["error"] == "permission_denied", (out, err)
    assert wait_until(lambda: refusals(d), 2.0)
    assert refusals(d) == [(str(pid), str(DAEMON_UID), "regscale-token")], d.log_text()
    # The wire form: one permission_denied line, then the end of the connection.
    r = raw_as(d, "daemon", "daemon", [{"op": "ping"}, {"op": "ping"}])
    assert r["replies"][0]["error"] == "permission_denied" and r["replies"][1:] == [None], r
    assert "token" not in json.dumps(r)
    assert d.get_token() == d.token


BURST = r"""
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
errors = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    errors.append(json.loads(data)["error"])
print(json.dumps(errors))
"""


def test_refusals_are_rate_limited(shared):
    """50 refused connections in a burst: every one answered permission_denied, at most a
    couple of log lines; the next refusal after a quiet second says some went unlogged."""
    d = shared("allow_users = nobody\n")
    t0 = time.monotonic()
    p = subprocess.run(as_user("daemon", "daemon") + [PYTHON, "-c", BURST, d.socket, "50"],
                       capture_output=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout) == ["permission_denied"] * 50
    n = len(refusals(d))
    assert 1 <= n <= 1 + int(elapsed) + 1, (n, elapsed, d.log_text())
    assert "not logged" not in d.log_text()

    time.sleep(1.1)
    rc, _, _, _ = client_as(d, "daemon", "daemon", "get")
    assert rc == 5
    assert wait_until(lambda: len(refusals(d)) == n + 1, 2.0), d.log_text()
    last = [ln for ln in d.log_text().splitlines() if "refused: not the daemon" in ln][-1]
    assert "more refusals in the last second not logged" in last, last
    # Readers and the owner are served all along.
    assert client_as(d, "nobody", "nogroup", "get")[0] == 0
    assert d.get_token() == d.token


# --- admins -----------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["admin_users = nobody\n",
                                    "allow_users = nobody\nadmin_groups = nogroup\n"])
def test_admin_may_refresh_and_logout(shared, config):
    d = shared(config)
    assert modes(d) == (0o755, 0o666)
    # Not an admin, not a reader: refused at the door.
    assert client_as(d, "daemon", "daemon", "get")[0] == 5
    rc, out, err, _ = client_as(d, "nobody", "nogroup", "refresh")
    assert rc == 0, (rc, out, err)
    rc, out, err, _ = client_as(d, "nobody", "nogroup", "logout")
    assert rc == 0, (rc, out, err)
    assert d.rpc({"op": "get"})["error"] == "no_token"
    assert d.rpc({"op": "status"})["state"] == "no_token"
    assert "permission_denied" not in d.log_text()


# --- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize("key,kind", [("allow_users", "user"), ("allow_groups", "group"),
                                      ("admin_users", "user"), ("admin_groups", "group")])
def test_unknown_name_stops_the_daemon(shared, key, kind):
    d = shared("%s = nobody-no-such-%s\n" % (key, kind), start=False)
    d.start(wait=False)
    try:
        d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the daemon started with an unknown %s in %s" % (kind, key))
    d.returncode = d.proc.returncode
    assert d.returncode != 0
    log = d.log_text()
    assert key in log and '"nobody-no-such-%s"' % kind in log and kind in log, log
    assert not os.path.exists(d.socket)


CRAFTED_COMM = r"""
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, b'x") ok\x1b[8m\rz', 0, 0, 0)  # PR_SET_NAME, 15 bytes
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
print(s.recv(4096).decode().strip())
"""


def test_refusal_log_line_escapes_the_command_name(shared):
    """A refused user names its process 'x") ok<ESC>[8m<CR>z': the one log line about it
    keeps the name inside its quotes and holds no raw control character."""
    d = shared("allow_users = nobody\n")
    p = subprocess.run(as_user("daemon", "daemon") + [PYTHON, "-c", CRAFTED_COMM, d.socket],
                       capture_output=True, timeout=20)
    assert json.loads(p.stdout)["error"] == "permission_denied", p
    assert wait_until(lambda: "refused: not the daemon" in d.log_text(), 2.0)
    # split("\n"), not splitlines(): a raw CR must not pass for a line end here.
    line = [ln for ln in d.log_text().split("\n") if "refused: not the daemon" in ln][0]
    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in line), repr(line)
    assert '("x") ok' not in line, repr(line)
