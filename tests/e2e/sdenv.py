# SPDX-License-Identifier: MIT
"""Harness for tests/e2e/test_systemd.py: the units of systemd/ as meson would install
them (pointing at the build tree), and the daemon run the way those units run it, without
systemd as PID 1:

  * unit_text()/values()/value() read a unit; render_units() writes instances of it;
    run_analyze() runs systemd-analyze on them;
  * Service: the unit's ExecStart= (specifiers expanded) under systemd-socket-activate, with
    the environment the service manager gives (NOTIFY_SOCKET, CREDENTIALS_DIRECTORY,
    WATCHDOG_USEC, and WATCHDOG_PID through a sh wrapper), its log captured;
  * Notify: a NOTIFY_SOCKET collecting sd_notify() messages in order;
  * allowed_syscalls()/trace_names(): the unit's SystemCallFilter= as a set, and what an
    strace -f log shows the daemon doing.

Fixtures: services (a factory of started Services, stopped at teardown, exit status 0
checked) and notify. Environment: RT_DAEMON, RT_CLIENT, RT_LOGIN_HELPER, RT_SOURCE_ROOT.
What it shares with conftest.py and loginenv.py (clean environments, ping, starting and
stopping a process with its log) is in harness.py.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import (DAEMON, HELPER, START_TIMEOUT, Process, base_env, wait_ping_or_exit,
                     wait_until, write_file)

SOURCE_ROOT = os.environ.get("RT_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(SOURCE_ROOT, "systemd")
TOOLS = ("systemd-analyze", "systemd-socket-activate", "systemd-sysusers")


@pytest.fixture(autouse=True)
def sd_tools():
    """systemd is a declared test dependency (tests/quickstart): its absence fails the
    tests instead of skipping them."""
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.fail("install Debian's systemd package: no " + ", ".join(missing))


# --- unit files --------------------------------------------------------------------------


def unit_text(rel):
    """Returns systemd/<rel> (or <rel>.in) with @bindir@/@libexecdir@ pointing at the
    build tree, as meson's configure_file() would for an install."""
    path = os.path.join(UNITS, rel)
    if not os.path.exists(path):
        path += ".in"
    with open(path) as f:
        text = f.read()
    return (text.replace("@bindir@", os.path.dirname(os.path.abspath(DAEMON)))
            .replace("@libexecdir@", os.path.dirname(os.path.abspath(HELPER))))


def unit_settings(text):
    """Returns [(section, key, value)] of a unit file, in order, comments left out."""
    out, section, pending = [], None, ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(text, key, section="Service"):
    """Returns every value of key in section, in order."""
    return [v for s, k, v in unit_settings(text) if s == section and k == key]


def value(text, key, section="Service"):
    vs = values(text, key, section)
    assert len(vs) == 1, (key, vs)
    return vs[0]


def expand(s, specifiers):
    """Expands systemd %-specifiers (%% included) from a dict {"i": ..., ...}."""
    def one(m):
        c = m.group(1)
        if c == "%":
            return "%"
        assert c in specifiers, "specifier %" + c + " not provided"
        return specifiers[c]
    return re.sub(r"%(.)", one, s)


def render_units(dirpath, instance="prod", user=False):
    """Writes the (system or user) service and socket as instances in dirpath; returns
    their paths."""
    prefix = "user/" if user else ""
    paths = []
    for suffix in ("service", "socket"):
        p = os.path.join(dirpath, "regscale-tokend@%s.%s" % (instance, suffix))
        write_file(p, unit_text(prefix + "regscale-tokend@." + suffix), 0o644)
        paths.append(p)
    return paths


def run_analyze(args, workdir, user=False):
    """Runs systemd-analyze [--user] args in workdir; returns (rc, stdout+stderr).

    verify runs with --man=no: the units' Documentation= names man pages, which exist only
    once installed; debian/tests/installed (tests/quickstart package) verifies the installed
    units with their pages."""
    env = base_env(workdir, LC_ALL="C.UTF-8", SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="",
                   SYSTEMD_COLORS="0")
    args = list(args)
    if args and args[0] == "verify":
        args.insert(1, "--man=no")
    p = subprocess.run(["systemd-analyze"] + (["--user"] if user else []) + list(args),
                       env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


# --- running the daemon as the units do ------------------------------------------------


class Notify:
    """A NOTIFY_SOCKET: an AF_UNIX datagram socket collecting sd_notify() messages."""

    def __init__(self, dirpath):
        self.path = os.path.join(dirpath, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # [(monotonic arrival, [lines])]

    def drain(self, timeout=0.0):
        """Reads what arrives within timeout seconds (at least what is queued)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left > 0:
                self.sock.settimeout(left)
            else:
                self.sock.setblocking(False)
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, socket.timeout):
                return
            self.messages.append((time.monotonic(), data.decode().splitlines()))

    def wait(self, predicate, start=0, timeout=5.0):
        """Returns the index of the first message from start on whose lines satisfy
        predicate, waiting up to timeout; fails the test when none arrives."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if predicate(self.messages[i][1]):
                    return i
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("no such sd_notify message after #%d within %.1f s; got %r"
                            % (start, timeout, self.lines()))
            self.drain(min(left, 0.1))

    def wait_line(self, line, start=0, timeout=5.0):
        return self.wait(lambda ls: line in ls, start, timeout)

    def wait_prefix(self, prefix, start=0, timeout=5.0):
        return self.wait(lambda ls: any(x.startswith(prefix) for x in ls), start, timeout)

    def lines(self):
        return [m[1] for m in self.messages]

    def count(self, line, since=0.0):
        return sum(1 for t, ls in self.messages if t >= since and line in ls)

    def close(self):
        self.sock.close()


class Service(Process):
    """regscale-tokend started the way a unit starts it: the unit's ExecStart= (specifiers
    expanded), its socket passed by systemd-socket-activate, and the environment the
    service manager would give (NOTIFY_SOCKET, CREDENTIALS_DIRECTORY, WATCHDOG_USEC...).
    pid is the daemon's: systemd-socket-activate execs it in place."""

    def __init__(self, workdir, argv, listen, env=None, name="svc", watchdog_pid=False):
        super().__init__(workdir, os.path.join(workdir, name + ".log"))
        self.listen = listen
        self.env = dict(env or {})
        self.env.setdefault("XDG_RUNTIME_DIR", os.path.join(workdir, "xdg"))
        self.env.setdefault("LC_ALL", "C")
        cmd = ["systemd-socket-activate", "-l", listen]
        for k, v in sorted(self.env.items()):
            cmd += ["-E", "%s=%s" % (k, v)]
        if watchdog_pid:
            # The service manager sets WATCHDOG_PID to the main process: sh execs the
            # daemon, so $$ is the daemon's pid.
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + list(argv)
        self.cmd = cmd + ["--"] + list(argv)

    def start(self):
        """Starts the listener, connects once (the daemon starts on the first connection,
        as with Accept=no) and waits until the daemon answers ping."""
        self.spawn(self.cmd, base_env(self.workdir))
        if not wait_until(lambda: self.proc.poll() is not None or os.path.exists(self.listen),
                          START_TIMEOUT):
            pytest.fail("systemd-socket-activate did not bind %s; log:\n%s"
                        % (self.listen, self.log_text()))
        ok = wait_ping_or_exit(self.proc, self.listen, START_TIMEOUT)
        if self.proc.poll() is not None or not ok:
            pytest.fail("the daemon did not answer on %s (exit %r); log:\n%s"
                        % (self.listen, self.proc.poll(), self.log_text()))
        return self

    def stop(self):
        """SIGTERM; returns the exit status (killed and failed after STOP_TIMEOUT, 5 s)."""
        rc = super().stop(signal.SIGTERM)
        if rc == "hung":
            pytest.fail("the daemon did not stop on SIGTERM; log:\n" + self.log_text())
        return rc


@pytest.fixture
def services(workdir):
    """Factory: services(argv, listen, ...) -> a started Service; stopped at teardown,
    which then checks the exit status 0."""
    made = []

    def make(*args, start=True, **kw):
        s = Service(workdir, *args, **kw)
        made.append(s)
        return s.start() if start else s

    yield make
    problems = []
    for s in made:
        if s.proc is not None and s.proc.returncode is None:
            rc = s.stop()
            if rc != 0:
                problems.append("exit status %r; log:\n%s" % (rc, s.log_text()))
    assert not problems, "\n".join(problems)


@pytest.fixture
def notify(workdir):
    n = Notify(workdir)
    yield n
    n.close()


def system_exec_start(workdir, instance="prod"):
    """The system service's ExecStart= for instance, with /etc/regscale-token moved into
    workdir/etc (created); returns (argv, config path)."""
    etc = os.path.join(workdir, "etc")
    os.makedirs(etc, exist_ok=True)
    line = value(unit_text("regscale-tokend@.service"), "ExecStart")
    line = expand(line, {"i": instance}).replace("/etc/regscale-token/", etc + "/")
    argv = shlex.split(line)
    return argv, os.path.join(etc, instance + ".conf")


def exec_reload(pid):
    """Runs the unit's ExecReload= with $MAINPID set, as the service manager would."""
    line = value(unit_text("regscale-tokend@.service"), "ExecReload")
    subprocess.run(["/bin/sh", "-c", line], env={"MAINPID": str(pid), "PATH": "/usr/bin:/bin"},
                   check=True, timeout=10)


def service_config(path, token_file=None, socket_path=None, extra=""):
    lines = ["[regscale]", "url = https://regscale.example.test"]
    if token_file:
        lines.append("token_file = " + token_file)
    if socket_path:
        lines += ["", "[daemon]", "socket = " + socket_path]
    write_file(path, "\n".join(lines) + "\n" + extra, 0o644)


def credentials_dir(workdir, **creds):
    """A CREDENTIALS_DIRECTORY like systemd's: read-only files (the directory stays 0700,
    not 0500, so that the workdir fixture can remove it without root)."""
    d = os.path.join(workdir, "creds")
    os.mkdir(d, 0o700)
    for name, text in creds.items():
        write_file(os.path.join(d, name), text, 0o400)
    return d


def context_switches(pid):
    """Context switches of every thread of pid: each wakeup of a sleeping thread counts."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def user_exec_start(workdir, instance):
    """The user service's ExecStart= with %E = workdir/config; returns (argv, config)."""
    config_home = os.path.join(workdir, "config")
    os.makedirs(os.path.join(config_home, "regscale-token"), exist_ok=True)
    line = expand(value(unit_text("user/regscale-tokend@.service"), "ExecStart"),
                  {"i": instance, "E": config_home})
    return shlex.split(line), os.path.join(config_home, "regscale-token", instance + ".conf")


def user_listen(workdir, instance):
    """The user socket's ListenStream= with %t = the test's XDG_RUNTIME_DIR; makes the
    directory as DirectoryMode= says."""
    sock = unit_text("user/regscale-tokend@.socket")
    path = expand(value(sock, "ListenStream", "Socket"),
                  {"i": instance, "t": os.path.join(workdir, "xdg")})
    os.makedirs(os.path.dirname(path), int(value(sock, "DirectoryMode", "Socket"), 8),
                exist_ok=True)
    return path


# --- the sandbox -------------------------------------------------------------------------


def filter_groups():
    """Returns {"@group": [members]} as this systemd defines them."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                         capture_output=True, check=True, timeout=30,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                              "LC_ALL": "C"}).stdout.decode()
    groups, cur = {}, None
    for line in out.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if line.startswith("@"):
            cur = groups.setdefault(s, [])
        elif cur is not None:
            cur.append(s)
    return groups


def allowed_syscalls(unit):
    """The set of system calls the unit's SystemCallFilter= lines allow (allow list first,
    then ~ deny lists, as systemd applies them)."""
    groups = filter_groups()

    def names(items):
        out = set()
        for it in items:
            if it.startswith("@"):
                out |= names(groups[it])
            else:
                out.add(it.split(":")[0])
        return out

    allowed = None
    for v in values(unit, "SystemCallFilter"):
        deny = v.startswith("~")
        items = names(v.lstrip("~").split())
        if deny:
            allowed = (allowed or set()) - items
        else:
            allowed = items if allowed is None else allowed | items
    return allowed


def trace_names(trace):
    """Returns (system call names, socket families, W+X mappings) found in an strace -f
    log."""
    used, families, wx = set(), set(), []
    call = re.compile(r"^\d+ +(?:<\.\.\. )?([a-z_0-9]+)(\(| resumed>)(.*)$")
    with open(trace) as f:
        for line in f:
            m = call.match(line)
            if not m:
                continue
            name, rest = m.group(1), m.group(3)
            used.add(name)
            if name in ("socket", "socketpair") and m.group(2) == "(":
                families.add(rest.split(",")[0])
            # MemoryDenyWriteExecute=: no W+X mapping, no mprotect() adding PROT_EXEC.
            if name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_EXEC" in rest and (
                    name != "mmap" or "PROT_WRITE" in rest):
                wx.append(line.strip())
    return used, families, wx


__all__ = [
    "HELPER", "UNITS", "unit_text", "unit_settings", "values", "value", "expand",
    "render_units", "run_analyze", "Notify", "Service", "services", "notify", "sd_tools",
    "system_exec_start", "exec_reload", "service_config", "credentials_dir",
    "context_switches", "user_exec_start", "user_listen", "filter_groups",
    "allowed_syscalls", "trace_names",
]
