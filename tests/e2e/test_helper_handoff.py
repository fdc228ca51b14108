# SPDX-License-Identifier: MIT
"""The hand-off to the login helper (daemon/helper/pipe.h): no secret reaches
regscale-token-login before another process of the daemon's user can no longer read it.

The attacker is a process of the daemon's own uid: the daemon, the test server and the
attacker all run as nobody (setpriv). While logins run, it loops over /proc and, for every
regscale-token-login it sees, opens /proc/PID/fd/0 and /proc/PID/fd/1 (the helper's stdin,
which carries the request with the password or the token to validate, and its stdout, which
carries the new token), keeps whatever it could open and reads it in a thread of its own,
as a patient attacker would. Before the fix the daemon wrote the request into a pipe right
after spawning, while the helper was still dumpable: the attacker read the password back in
most logins. Now stdin and stdout are sockets, which /proc/PID/fd cannot open, and the
daemon writes the request only once the helper said it is non-dumpable and untraced.

What no code in the helper can stop: an attacker allowed to ptrace it (no Yama
restriction) may open /proc/PID/mem in the moment between exec and harden_process() and
keep reading through that fd. Installed mode 0711 the helper is non-dumpable from its first
instruction; test_installed_0711_helper_is_never_dumpable runs that attacker against it.

Also here: a traced helper refuses before it reads a byte, the ready marker comes before
anything else, and the daemon kills the helper's whole process group at the timeout.

Needs root (setpriv, chown) and the user nobody.
"""

import base64
import ctypes
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import time

import pytest

from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import (HELPER, PASSWORD, PYTHON, USERNAME, LoginDaemon, needs_binaries,
                      wait_until, write_file)

import regscale_server

LOGINS = 100
VALIDATIONS = 20
READY = b"ready 0\n\n"  # PIPE_READY in daemon/helper/pipe.h
SETPRIV = shutil.which("setpriv")
AS_NOBODY = [SETPRIV or "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


pytestmark = [
    needs_binaries,
    pytest.mark.skipif(os.geteuid() != 0 or not SETPRIV or not _nobody(),
                       reason="needs root, setpriv and the user nobody"),
]


# --- the attacker ------------------------------------------------------------------------

# Run as nobody: attacker.py STOP_FILE OUT_FILE NEEDLES_FILE [mem]. Writes OUT_FILE (JSON)
# once STOP_FILE exists; "started" in OUT_FILE.started as soon as it loops.
ATTACKER = r"""
import base64, json, os, sys, threading, time

stop, out, needles_file = sys.argv[1:4]
mem = "mem" in sys.argv[4:]
needles = [n.encode() for n in json.load(open(needles_file))]
PREFIX = "regscale-token-"  # the comm of regscale-token-login (15 characters)
lock = threading.Lock()
helpers = {}  # pid -> what was got from it
threads = []


def note(pid, key, n=1):
    with lock:
        helpers[pid][key] = helpers[pid].get(key, 0) + n


def drain(pid, name, fd):
    # Blocking reads: queued on the pipe before the helper gets there, if it can.
    buf = b""
    try:
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            buf += b
    except OSError:
        pass
    os.close(fd)
    with lock:
        helpers[pid][name] = base64.b64encode(buf).decode()


def scan(fd, pid, maps):
    # Every readable mapping of pid through the open /proc/PID/mem fd: needles found. The
    # mappings as last seen (maps, a list updated in place) once /proc/PID/maps is closed.
    hits = 0
    try:
        with open("/proc/%d/maps" % pid) as f:
            maps[:] = f.read().splitlines()
    except OSError:
        pass
    for line in maps:
        addr, perms = line.split()[:2]
        if not perms.startswith("r") or "[v" in line:
            continue
        start, end = (int(x, 16) for x in addr.split("-"))
        if end - start > 64 << 20:
            continue
        try:
            data = os.pread(fd, end - start, start)
        except OSError:
            continue
        hits += sum(1 for n in needles if n in data)
    return hits


def watch_mem(pid):
    # Opens /proc/PID/mem (the kernel checks only at the open) and scans through it every
    # millisecond until the helper exits.
    try:
        fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    except OSError:
        return
    note(pid, "mem_opened")
    maps = []
    while os.path.exists("/proc/%d" % pid):
        h = scan(fd, pid, maps)
        if h > 0:
            note(pid, "mem_hits", h)
        time.sleep(0.001)
    os.close(fd)


def found(pid):
    helpers[pid] = {}
    for n, name in ((0, "fd0"), (1, "fd1")):
        try:
            fd = os.open("/proc/%d/fd/%d" % (pid, n), os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            helpers[pid][name + "_errno"] = e.errno
            continue
        os.set_blocking(fd, True)
        note(pid, name + "_opened")
        t = threading.Thread(target=drain, args=(pid, name, fd), daemon=True)
        t.start()
        threads.append(t)
    if mem:
        t = threading.Thread(target=watch_mem, args=(pid,), daemon=True)
        t.start()
        threads.append(t)


others = set()
with open(out + ".started", "w") as f:
    f.write("started\n")
loops = 0
while not os.path.exists(stop):
    loops += 1
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in helpers or pid in others:
            continue
        try:
            with open("/proc/%s/comm" % name) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(PREFIX) and comm != "regscale-token":
            found(pid)
        elif comm != "regscale-tokend":  # a spawned child before its exec: look again
            others.add(pid)
time.sleep(0.5)
for t in threads:
    t.join(0.1)
with lock:
    json.dump({"loops": loops, "helpers": helpers}, open(out + ".tmp", "w"))
os.rename(out + ".tmp", out)
"""


class Attacker:
    """The attacker process, as nobody, looking for needles (str) in what it reads."""

    def __init__(self, workdir, needles, mem=False):
        self.dir = workdir
        self.stop_file = os.path.join(workdir, "attacker.stop")
        self.out = os.path.join(workdir, "attacker.json")
        script = os.path.join(workdir, "attacker.py")
        nfile = os.path.join(workdir, "attacker.needles")
        write_file(script, ATTACKER, mode=0o644)
        write_file(nfile, json.dumps(list(needles)), mode=0o644)
        self.proc = subprocess.Popen(
            AS_NOBODY + [PYTHON, script, self.stop_file, self.out, nfile]
            + (["mem"] if mem else []),
            stdin=subprocess.DEVNULL, cwd="/")
        assert wait_until(lambda: os.path.exists(self.out + ".started")
                          or self.proc.poll() is not None, 10), "attacker did not start"
        assert self.proc.poll() is None, "attacker exited with %s" % self.proc.returncode

    def finish(self):
        """Stops the attacker; returns the helpers it saw: {pid: {...}}."""
        with open(self.stop_file, "w"):
            pass
        rc = self.proc.wait(20)
        assert rc == 0, "attacker failed with %d" % rc
        with open(self.out) as f:
            report = json.load(f)
        assert report["loops"] > 0
        return report["helpers"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def captures(helpers, needle, stream):
    """The helpers from whose stream ("fd0", "fd1") the attacker read needle (bytes)."""
    return [pid for pid, h in helpers.items()
            if needle in base64.b64decode(h.get(stream, ""))]


def summary(helpers):
    total = lambda key: sum(h.get(key, 0) for h in helpers.values())  # noqa: E731
    read = lambda s: sum(len(base64.b64decode(h.get(s, ""))) for h in helpers.values())  # noqa
    return ("%d helpers seen; opened fd/0 %d, fd/1 %d, mem %d times; read %d bytes of "
            "requests, %d of answers; %d hits in memory"
            % (len(helpers), total("fd0_opened"), total("fd1_opened"), total("mem_opened"),
               read("fd0"), read("fd1"), total("mem_hits")))


# --- a world owned by nobody --------------------------------------------------------------


def give_to_nobody(path):
    """chown -R nobody:nogroup path: the daemon and the server run as nobody."""
    nobody = _nobody()
    for root, dirs, files in os.walk(path):
        dirs[:] = [n for n in dirs if n != "libexec"]  # root's, like an installed helper
        for p in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(p, nobody.pw_uid, nobody.pw_gid)


class NobodyDaemon(LoginDaemon):
    """A LoginDaemon run as nobody. With token, a service-token daemon (no username or
    password) whose token file RegScale is asked to validate."""

    def __init__(self, workdir, server, ca_file, token=None, **kw):
        if token is not None:
            kw.update(username=None, password=None)
        super().__init__(workdir, server, ca_file, **kw)
        if token is not None:
            self.token_file = os.path.join(workdir, self.name + ".token")
            write_file(self.token_file, token + "\n")
            write_file(self.config, "[regscale]\nurl = %s\nca_file = %s\ntoken_file = %s\n"
                       "connect_timeout = 2\ntotal_timeout = 3\n\n[daemon]\nsocket = %s\n"
                       % (server.url, ca_file, self.token_file, self.socket))
            self.secrets.add(token)

    def argv(self):
        return AS_NOBODY + super().argv()


class World:
    """A test server and daemons run as nobody in lg's workdir (handed over to nobody)."""

    def __init__(self, lg):
        self.lg = lg
        d = lg.workdir
        for key in ("ca_cert", "server_cert", "server_key"):
            shutil.copy(lg.ca[key], os.path.join(d, key + ".pem"))
        self.ca_file = os.path.join(d, "ca_cert.pem")
        srvdir = os.path.join(d, "srv")
        os.mkdir(srvdir)
        python = os.path.join(d, "python-as-nobody")
        write_file(python, "#!/bin/sh\nexec %s %s \"$@\"\n" % (" ".join(AS_NOBODY), PYTHON),
                   mode=0o755)
        self.server = regscale_server.RegScaleServer(
            os.path.join(d, "server_cert.pem"), os.path.join(d, "server_key.pem"),
            cafile=lg.ca["ca_cert"], workdir=srvdir, lifetime=3600,
            users=["%s:%s" % (USERNAME, PASSWORD)], python=python)
        give_to_nobody(d)
        self.server.start()
        lg.servers.append(self.server)

    def daemon(self, **kw):
        kw.setdefault("name", "d%d" % len(self.lg.daemons))
        d = NobodyDaemon(self.lg.workdir, self.server, self.ca_file, **kw)
        self.lg.daemons.append(d)
        give_to_nobody(self.lg.workdir)
        return d.start()


@pytest.fixture
def world(lg):
    return World(lg)


def helper_uid(d):
    """Checks the daemon (and so its helpers) runs as nobody, the attacker's uid."""
    with open("/proc/%d/status" % d.proc.pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
    assert uids == [str(_nobody().pw_uid)] * 4, uids


def problems(d):
    """The daemon's log lines at warning level or worse."""
    return "\n".join(line for line in d.log_text().splitlines() if line[:3] < "<5>")


def run_logins(d, n):
    """n forced logins over the socket, one after the other; returns how many succeeded."""
    ok = 0
    for _ in range(n):
        r = d.rpc({"op": "refresh"}, timeout=30)
        ok += r.get("ok") is True
    return ok


# --- the tests ------------------------------------------------------------------------------


def test_same_uid_process_cannot_read_the_password(world):
    attacker = Attacker(world.lg.workdir, [PASSWORD])
    try:
        d = world.daemon()
        helper_uid(d)
        # The first login of the start must be over, or the first refresh joins it.
        assert wait_until(lambda: world.server.control.stats()["login_ok"] >= 1, 10)
        assert wait_until(lambda: not d.children(), 5), "first login still running"
        ok = run_logins(d, LOGINS)
    finally:
        helpers = attacker.finish() if attacker.proc.poll() is None else {}
        attacker.kill()
    print(summary(helpers))
    pw = captures(helpers, PASSWORD.encode(), "fd0")
    tokens = captures(helpers, b"\ntoken ", "fd1")
    mem = [pid for pid, h in helpers.items() if h.get("mem_hits")]
    # It must have been there: a helper may come and go between two of its looks.
    assert len(helpers) >= LOGINS * 9 // 10, "the attacker saw only %d helpers: %s" % (
        len(helpers), summary(helpers))
    assert not pw and not tokens and not mem, (
        "%d of %d logins: password read from the helper's stdin; %d: token read from its "
        "stdout; %d: password found in its memory (%s)"
        % (len(pw), len(helpers), len(tokens), len(mem), summary(helpers)))
    assert ok == LOGINS, "%d of %d logins failed:\n%s" % (LOGINS - ok, LOGINS, problems(d))
    assert world.server.control.stats()["login_ok"] == LOGINS + 1


def test_same_uid_process_cannot_read_the_token_to_validate(world):
    """validateToken runs through the same hand-off: the token sent to the helper."""
    token = world.server.control.token(username=USERNAME, lifetime=3600)
    attacker = Attacker(world.lg.workdir, [token])
    try:
        d = world.daemon(token=token)
        helper_uid(d)
        # The validation of the start must be over, or the first refresh supersedes it.
        assert wait_until(lambda: world.server.control.stats()["validate_ok"] >= 1, 10)
        assert wait_until(lambda: not d.children(), 5), "first validation still running"
        for i in range(VALIDATIONS):
            # A refresh re-reads the token file and asks RegScale about it again, from the
            # loop's next turn on (after the reply): wait for the answer, then the exit.
            assert d.rpc({"op": "refresh"})["ok"] is True
            assert wait_until(lambda: world.server.control.stats()["validate_ok"] >= i + 2, 10)
            assert wait_until(lambda: not d.children(), 5), "validation still running"
    finally:
        helpers = attacker.finish() if attacker.proc.poll() is None else {}
        attacker.kill()
    print(summary(helpers))
    sig = token.split(".")[2].encode()
    got = captures(helpers, sig, "fd0")
    mem = [pid for pid, h in helpers.items() if h.get("mem_hits")]
    assert len(helpers) >= VALIDATIONS * 9 // 10, summary(helpers)
    assert not got and not mem, "token read from %d of %d helpers (%s)" % (
        len(got) + len(mem), len(helpers), summary(helpers))
    stats = world.server.control.stats()
    assert stats["validate_ok"] == VALIDATIONS + 1, (stats, d.log_text())
    assert "RegScale confirmed the service token is valid" in d.log_text()


def test_installed_0711_helper_is_never_dumpable(world):
    """Installed mode 0711 (daemon/helper/meson.build), the helper cannot be read by the
    daemon's user, so the kernel makes it non-dumpable at exec: not even during its first
    instructions can the attacker open its fds or its /proc/PID/mem (which, opened then,
    would stay readable after harden_process())."""
    ldd = subprocess.run(["ldd", HELPER], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        # LeakSanitizer's exit-time check makes the process dumpable again (it ptraces
        # its own threads): a property of the sanitizer build, not of the helper.
        pytest.skip("an AddressSanitizer build: its leak check makes the helper dumpable")
    libexec = os.path.join(world.lg.workdir, "libexec")
    os.mkdir(libexec, 0o755)
    helper = os.path.join(libexec, "regscale-token-login")
    shutil.copy(HELPER, helper)
    os.chmod(helper, 0o711)
    attacker = Attacker(world.lg.workdir, [PASSWORD], mem=True)
    try:
        d = world.daemon(helper=helper)
        ok = run_logins(d, 20)
    finally:
        helpers = attacker.finish() if attacker.proc.poll() is None else {}
        attacker.kill()
    print(summary(helpers))
    assert ok == 20, problems(d)
    assert len(helpers) >= 18, summary(helpers)
    opened = [pid for pid, h in helpers.items()
              if h.get("fd0_opened") or h.get("fd1_opened") or h.get("mem_opened")]
    assert not opened, "opened in %d helpers: %s" % (len(opened), summary(helpers))


PTRACE_TRACEME, PTRACE_CONT = 0, 7


def _traceme():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
        os._exit(99)


def test_traced_helper_refuses_before_reading(lg_workdir):
    """A helper with a tracer (here its parent, PTRACE_TRACEME before the exec) answers
    "config" and exits 13 without saying ready, so the daemon never sends it the request."""
    # LeakSanitizer cannot run under ptrace: in a sanitizer build it would end the helper
    # with status 1 at exit instead of the outcome under test.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.Popen([HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=_traceme, cwd=lg_workdir, env=env)
    libc = ctypes.CDLL(None, use_errno=True)
    deadline = time.monotonic() + 5
    while True:
        pid, status = os.waitpid(p.pid, os.WNOHANG)
        if pid == 0:
            if time.monotonic() > deadline:
                p.kill()
                os.waitpid(p.pid, 0)
                pytest.fail("the traced helper waits for its request (stdin never written)")
            time.sleep(0.01)
        elif os.WIFSTOPPED(status):
            sig = os.WSTOPSIG(status)
            libc.ptrace(PTRACE_CONT, p.pid, None, 0 if sig == signal.SIGTRAP else sig)
        else:
            break
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdin.close()  # never written: a traced helper must not wait for it
    out, err = p.stdout.read(), p.stderr.read().decode()
    p.stdout.close()
    p.stderr.close()
    assert p.returncode == 13, (p.returncode, out, err)
    assert out.startswith(b"outcome 6\nconfig\n") and READY not in out, out
    assert "trace" in err, err


SPAWN_AND_READ_READY = r"""
import os, subprocess, sys
p = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
first = os.read(p.stdout.fileno(), 64)
p.stdin.close()
p.wait()
sys.stdout.write(repr(first))
"""


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_helper_traced_along_with_its_parent_is_served(lg_workdir):
    """strace -f of the whole service traces the daemon too, which holds the secrets anyway:
    a helper whose tracer also traces its parent says ready."""
    out = subprocess.run(["strace", "-f", "-qq", "-o", os.path.join(lg_workdir, "trace"),
                          PYTHON, "-c", SPAWN_AND_READ_READY, HELPER],
                         capture_output=True, timeout=10, cwd=lg_workdir)
    assert out.stdout.decode() == repr(READY), out


def test_ready_comes_first(lg_workdir):
    """Untraced, the helper says ready before it reads anything; then an empty request
    (stdin closed) is refused as config."""
    p = subprocess.Popen([HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=lg_workdir)
    try:
        got = b""
        deadline = time.monotonic() + 5
        while len(got) < len(READY) and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 0.1)[0]:
                b = os.read(p.stdout.fileno(), len(READY) - len(got))
                if not b:
                    break
                got += b
        assert got == READY, "no ready marker before the request: %r" % got
        p.stdin.close()
        out, err = p.stdout.read(), p.stderr.read()
        assert p.wait(5) == 13 and out.startswith(b"outcome 6\nconfig\n"), (out, err)
    finally:
        p.kill()
        p.wait()


def test_timeout_kills_the_helpers_process_group(lg):
    """A helper that never says ready and leaves a grandchild: at the kill timer the whole
    process group goes, the grandchild with it."""
    pidfile = os.path.join(lg.workdir, "grandchild.pid")
    helper = os.path.join(lg.workdir, "fake-helper")
    write_file(helper, "#!/bin/sh\nsleep 60 &\necho $! > %s\nexec sleep 60\n" % pidfile,
               mode=0o700)
    srv = lg.server()
    d = lg.daemon(srv, helper=helper, connect_timeout=1, total_timeout=1)
    assert wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 3)
    grandchild = int(open(pidfile).read())
    try:
        assert os.path.exists("/proc/%d" % grandchild)
        # Backstop: connect + total timeout + 5 s grace.
        st = d.wait_state("retrying", timeout=10, interval=0.2)
        assert "killed" in st["last_error"], st

        def gone():
            try:
                with open("/proc/%d/stat" % grandchild) as f:
                    return f.read().split(") ")[1][0] == "Z"  # a zombie for init to reap
            except FileNotFoundError:
                return True
        assert wait_until(gone, 2), "the helper's child survived its kill"
    finally:
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass
