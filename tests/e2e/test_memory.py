# SPDX-License-Identifier: MIT
"""No plaintext at rest: after real work (logins over HTTPS, a refresh, a thousand gets, a
logout/login cycle, token rotations, refused logins) the daemon's memory, read from the
outside through /proc/PID/mem, holds neither a token, nor a password, nor any 24-byte piece
of one; its log holds none either. Plus the process hardening: no core dumps, not dumpable.

The scanner is shown to work on every run: it must find planted copies in another process
(whole secrets and bare 24-byte pieces, but not a 23-byte one), and non-secret strings the
daemon certainly holds (its socket path, the user id) in the daemon's own memory.

Needs root (CAP_SYS_PTRACE): the daemon is not dumpable, so nobody else may read it.
"""

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile

import pytest

import procmem
from loginenv import *  # noqa: F401,F403 - fixtures lg, lg_ca, lg_workdir
from loginenv import PYTHON, USERNAME, needs_binaries
from conftest import DAEMON, Conn, wait_until
from tokens import service_token

WINDOW = 24


def _can_read_others_memory():
    if os.geteuid() != 0:
        return False
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 19))  # CAP_SYS_PTRACE
    return False


pytestmark = [
    needs_binaries,
    pytest.mark.skipif(not _can_read_others_memory(),
                       reason="reading a non-dumpable process's memory needs root with "
                       "CAP_SYS_PTRACE"),
]


def new_password(tag):
    """A long random password (no ':', which the test server's user syntax reserves)."""
    return tag + "-" + secrets.token_urlsafe(30)  # 40 random characters


def quiesce(sock, pid):
    """Waits until the daemon is between requests. A reply reaches us the moment the daemon
    sends it, a few instructions before it wipes its copy; a ping answered afterwards
    proves the single-threaded daemon got past that wipe. Then it must be asleep."""
    with Conn(sock) as c:
        assert c.call({"op": "ping"})["pong"] is True
    assert wait_until(lambda: _state(pid) == "S", 2.0), _state(pid)


def _state(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    return text[text.rindex(")") + 2]


def assert_memory_clean(sock, pid, named_secrets, what):
    """Reads every mapping of pid once it is idle and fails if any secret or 24-byte piece
    of one is there. Returns the regions read, for further checks."""
    quiesce(sock, pid)
    hits, regs = procmem.scan_process(pid, named_secrets, WINDOW)
    unread = procmem.unread_regions(regs)
    assert not unread, "%s: mappings that could not be read: %s" % (what, unread)
    total = sum(len(r.data) for r in regs if r.data)
    assert total > 1 << 20, "%s: only %d bytes read: the scan saw nothing" % (what, total)
    assert not hits, "%s: secrets in the daemon's memory (%d bytes read):\n%s" % (
        what, total, procmem.describe_hits(hits))
    return regs


def assert_text_clean(text, named_secrets, what):
    hits = procmem.find_fragments([(what, text.encode())], named_secrets, WINDOW)
    assert not hits, "secrets in %s:\n%s" % (what, procmem.describe_hits(hits))


def assert_holds(regs, needle, what):
    """The control: a non-secret string the daemon must hold is found by the same read."""
    needle = needle.encode()
    assert any(r.data and needle in r.data for r in regs), \
        "control failed: %r not found in the %s's memory: the scanner reads nothing" % (
            needle, what)


def no_helper_left(d):
    """Waits until the daemon has no child (a login helper holding secrets) any more."""
    assert wait_until(lambda: not d.children(), 5.0), "login helper still running"


def gets(sock, n_separate, n_pipelined, expected):
    """n_separate gets on as many connections, then n_pipelined gets written at once on
    one connection and read back; every reply must carry expected."""
    for _ in range(n_separate):
        with Conn(sock) as c:
            r = c.call({"op": "get"})
            assert r.get("token") == expected, r
    with Conn(sock, timeout=10) as c:
        lines = "".join('{"op":"get","id":%d}\n' % i for i in range(n_pipelined)).encode()
        assert c.send(lines)
        for i in range(n_pipelined):
            r = json.loads(c.readline())
            assert r.get("id") == str(i) and r.get("token") == expected, r


def check_hardening(pid):
    assert procmem.limit(pid, "Max core file size") == ("0", "0")
    for name in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            data = f.read()
        assert b"eyJ" not in data and b"password=" not in data.lower(), (name, data[:200])


# --- the scanner itself -------------------------------------------------------------------


HOLDER = r"""
import sys
lines = [sys.stdin.readline().rstrip("\n") for _ in range(3)]
held = [lines[0], bytearray(lines[1].encode()), lines[2].encode()]
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.readline()
"""


def test_scanner_finds_planted_copies():
    """A process holding a token, a bare 24-byte piece of a password and a 23-byte piece of
    another: the scanner reports the first two, and not the third (below the window)."""
    token = service_token(user_id="scanner-control")
    pw = new_password("ctl")
    other = new_password("short")
    p = subprocess.Popen([PYTHON, "-c", HOLDER], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        # The holder gets the whole token but only a 24-byte piece of pw and a 23-byte
        # piece of other: nowhere in its memory is there more of either.
        p.stdin.write(("%s\n%s\n%s\n" % (token, pw[5:5 + WINDOW], other[3:3 + WINDOW - 1]))
                      .encode())
        p.stdin.flush()
        assert p.stdout.readline() == b"ready\n"
        hits, regs = procmem.scan_process(p.pid, {"token": token, "pw": pw, "other": other})
        found = {name: max(n for nm, _, _, n in hits if nm == name)
                 for name in {h[0] for h in hits}}
        assert found.get("token", 0) >= len(token), procmem.describe_hits(hits)
        assert found.get("pw", 0) >= WINDOW, procmem.describe_hits(hits)
        assert "other" not in found, procmem.describe_hits(hits)
    finally:
        p.stdin.close()
        p.wait(5)


def test_find_fragments_windows():
    secret = "0123456789abcdefghijklmnopqrstuvwxyz"
    blob = b"xx" + secret[7:7 + 24].encode() + b"yy" + secret[:23].encode()
    hits = procmem.find_fragments([("blob", blob)], {"s": secret}, 24)
    assert [(h[2], h[3]) for h in hits] == [(2, 24)]
    assert procmem.find_fragments([("b", secret.encode())], {"s": secret}, 24)[0][3] == 36


# --- password mode -----------------------------------------------------------------------


def test_password_mode_leaves_no_plaintext(lg):
    pw1, pw2 = new_password("pw1"), new_password("pw2")
    srv = lg.server(lifetime=3600, users=["%s:%s" % (USERNAME, pw1)])
    d = lg.daemon(srv, password=pw1)  # first login from the password file
    d.secrets.add(pw2)
    d.wait_valid()
    t1 = d.token()

    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 0, (out, err)
    t2 = d.token()
    assert t2 != t1 and t2.count(".") == 2

    gets(d.socket, 100, 900, t2)

    rc, out, err = d.client("logout")
    assert rc == 0, (out, err)
    assert d.get()["error"] == "no_token"
    srv.control.config(user="%s:%s" % (USERNAME, pw2))
    rc, out, err = d.client("login", input=pw2 + "\n", timeout=30)
    assert rc == 0, (out, err)
    t3 = d.token()
    assert t3 not in (t1, t2)
    gets(d.socket, 3, 10, t3)
    # A pasted token RegScale refuses, then one it accepts (with "Bearer "): checked by the
    # helper, sealed, served; the refused one is wiped.
    t4 = srv.control.token(username="pasted-nobody", lifetime=3600)
    t4 = t4[:-4] + ("AAAA" if not t4.endswith("AAAA") else "BBBB")  # bad signature
    assert d.rpc({"op": "login", "token": t4}, timeout=15)["error"] == "credentials_rejected"
    t5 = srv.control.token(username=USERNAME, lifetime=3600)
    assert d.rpc({"op": "login", "token": "Bearer " + t5}, timeout=15)["ok"] is True
    assert d.token() == t5
    gets(d.socket, 3, 10, t5)
    no_helper_left(d)
    assert srv.control.stats()["login_ok"] == 3

    user_id = d.status()["user_id"]
    named = {"password 1": pw1, "password 2": pw2, "token 1": t1, "token 2": t2,
             "token 3": t3, "token 4 (refused paste)": t4, "token 5 (pasted, current)": t5}
    regs = assert_memory_clean(d.socket, d.proc.pid, named, "password-mode daemon")
    # Controls: the same read does see what the daemon holds in the clear.
    assert_holds(regs, d.socket, "daemon")
    assert_holds(regs, user_id, "daemon")
    check_hardening(d.proc.pid)
    assert_text_clean(d.log_text(), named, "the daemon's log")


# --- service tokens ------------------------------------------------------------------------


def test_service_token_leaves_no_plaintext(daemons):
    """A service token read from its file, served a thousand times, then rotated twice
    (atomic replace seen by inotify, rewrite + SIGHUP): none of the three is in memory."""
    ta = service_token(user_id="svc-memory-a", exp_in=7200)
    tb = service_token(user_id="svc-memory-b", exp_in=7200)
    tc = service_token(user_id="svc-memory-c", exp_in=7200)
    d = daemons(token=ta)
    gets(d.socket, 100, 900, ta)
    d.replace_token(tb)
    assert d.wait_token(tb)
    gets(d.socket, 5, 20, tb)
    d.write_token(tc)
    d.send_signal(signal.SIGHUP)
    assert d.wait_token(tc)
    gets(d.socket, 5, 20, tc)

    # Each token read is checked with RegScale by a helper, which holds it while it runs
    # (the installed daemon finds its helper; a build tree's may not): wait for it to end.
    no_helper_left(d)
    named = {"token a": ta, "token b": tb, "token c (current)": tc}
    regs = assert_memory_clean(d.socket, d.pid, named, "service-token daemon")
    assert_holds(regs, d.socket, "daemon")
    assert_holds(regs, "svc-memory-c", "daemon")  # the user id claim of the current token
    check_hardening(d.pid)
    assert_text_clean(d.log_text(), named, "the daemon's log")


# Login requests that carry a password and then go wrong somewhere, each with its own
# password: the parser decodes the password into guarded memory before it meets the error,
# so each failure path must wipe it. {P} is replaced by the password.
BROKEN_LOGINS = [
    ("refused (service mode)", '{"op":"login","password":"{P}"}', "bad_request"),
    ("duplicate password", '{"op":"login","password":"{P}","password":"{P}"}', "bad_request"),
    ("bad version after it", '{"op":"login","password":"{P}","v":2}', "unsupported_version"),
    ("unknown op", '{"op":"logon","password":"{P}"}', "unknown_op"),
    ("too deep after it", '{"op":"login","password":"{P}","x":[[[[[[[[1]]]]]]]]}',
     "bad_request"),
    ("wrong type after it", '{"op":"login","password":"{P}","username":5}', "bad_request"),
    ("syntax error after it", '{"op":"login","password":"{P}",}', "bad_request"),
    ("trailing garbage", '{"op":"login","password":"{P}"} x', "bad_request"),
    ("escaped password", '{"op":"login","password":"{E}","mfa":[]}', "bad_request"),
]


def test_refused_logins_leave_no_password(daemons):
    """Passwords sent in login requests that are refused or broken are gone from the
    daemon's memory and never in its log."""
    token = service_token(exp_in=3600)
    d = daemons(token=token)
    named = {}
    with d.conn() as c:
        for name, template, error in BROKEN_LOGINS:
            pw = new_password("bad")
            named[name] = pw
            # \u escapes: the decoder must write the password, not the escapes, in place.
            escaped = "".join("\\u%04x" % ord(ch) for ch in pw)
            line = template.replace("{P}", pw).replace("{E}", escaped)
            r = c.call(line.encode())
            assert r["ok"] is False and r["error"] == error, (name, r)
        assert c.call({"op": "ping"})["pong"] is True
    # A password line cut off by the end of the connection (never a complete request).
    cut = new_password("cut")
    named["cut off"] = cut
    with d.conn() as c:
        c.send(('{"op":"login","password":"%s"' % cut).encode())
        c.sock.shutdown(1)
        assert c.at_eof()
    # And one far beyond the line limit.
    big = new_password("big")
    named["too large"] = big
    with d.conn() as c:
        c.send(('{"op":"login","password":"%s' % big).encode() + b"A" * 70000 + b'"}\n')
        assert json.loads(c.readline())["error"] == "too_large"
        assert c.at_eof()
    assert d.get_token() == token
    regs = assert_memory_clean(d.socket, d.pid, named, "daemon after refused logins")
    assert_holds(regs, d.socket, "daemon")
    assert_text_clean(d.log_text(), named, "the daemon's log")


# --- hardening ----------------------------------------------------------------------------


def _comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


@pytest.mark.skipif(not shutil.which("setpriv") or not _nobody(), reason="needs setpriv and "
                    "the user nobody")
def test_daemon_not_dumpable_to_its_own_user():
    """Run as nobody, the daemon's /proc files belong to root (the kernel's mark of a
    non-dumpable process) and another process of nobody cannot read its memory, while it
    can read an ordinary process of nobody (the control)."""
    nobody = _nobody()
    wd = tempfile.mkdtemp(prefix="rtm-", dir="/tmp")
    os.chmod(wd, 0o755)
    token = service_token(exp_in=3600)
    procs = []
    try:
        os.chown(wd, nobody.pw_uid, nobody.pw_gid)
        tok = os.path.join(wd, "d.token")
        cfg = os.path.join(wd, "d.conf")
        sock = os.path.join(wd, "d.sock")
        with open(tok, "w") as f:
            f.write(token + "\n")
        with open(cfg, "w") as f:
            f.write("[regscale]\ntoken_file = %s\n\n[daemon]\nsocket = %s\n" % (tok, sock))
        for p in (tok, cfg):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
            os.chmod(p, 0o600)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
        with open(os.path.join(wd, "d.log"), "wb") as log:
            daemon = subprocess.Popen(as_nobody + [DAEMON, "--config", cfg], env=env,
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        procs.append(daemon)
        plain = subprocess.Popen(as_nobody + ["sleep", "30"], env=env)
        procs.append(plain)
        assert wait_until(lambda: os.path.exists(sock), 5.0), open(
            os.path.join(wd, "d.log")).read()
        with Conn(sock) as c:  # root may connect to anybody's daemon
            assert c.call({"op": "get"})["token"] == token

        assert wait_until(lambda: _comm(plain.pid) == "sleep", 5.0)  # setpriv has exec'd
        assert os.stat("/proc/%d/status" % plain.pid).st_uid == nobody.pw_uid  # control
        assert os.stat("/proc/%d/status" % daemon.pid).st_uid == 0, "daemon is dumpable"
        assert procmem.limit(daemon.pid, "Max core file size") == ("0", "0")

        probe = ("import sys\nfor pid in sys.argv[1:]:\n"
                 "    try:\n        f = open('/proc/%s/mem' % pid, 'rb'); print('read')\n"
                 "    except OSError as e:\n        print('refused', e.errno)\n")
        out = subprocess.run(as_nobody + [PYTHON, "-c", probe, str(plain.pid),
                                          str(daemon.pid)],
                             env=env, capture_output=True, timeout=10, check=True)
        assert out.stdout.decode().split("\n")[:2] == ["read", "refused 13"], out
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(5)
        shutil.rmtree(wd, ignore_errors=True)
