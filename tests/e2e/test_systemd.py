# SPDX-License-Identifier: MIT
"""systemd integration, tested without systemd as PID 1.

* The units in systemd/ (paths substituted as meson does, pointing at the build tree):
  `systemd-analyze verify` reports nothing, `systemd-analyze security --offline=yes` rates
  the system service at exposure 1.5 or lower, the settings the daemon relies on are
  there, and the sysusers.d file creates the account.
* The daemon runs with the units' own ExecStart= command line under
  systemd-socket-activate: it serves the socket it was passed and creates none.
* A NOTIFY_SOCKET listener sees READY=1, STATUS= changes, RELOADING=1 + MONOTONIC_USEC=
  then READY=1 on the units' ExecReload=, and STOPPING=1; WATCHDOG=1 only under
  WATCHDOG_USEC, and without it an idle daemon does not wake up at all.
* Credentials (token, password) come from a CREDENTIALS_DIRECTORY made by the test.
* Profiles: the client finds a daemon laid out as the user units lay it out.
* Under strace, every system call and address family the daemon and its login helper use
  is allowed by the service's SystemCallFilter= and RestrictAddressFamilies= (skipped
  without strace).
"""

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from conftest import DAEMON, base_env, run_client, try_ping, wait_until, write_file
from loginenv import PASSWORD, USERNAME, lg_ca, start_server  # noqa: F401 - lg_ca: fixture
from sdenv import *  # noqa: F401,F403 - fixtures services, notify, sd_tools and helpers
from sdenv import (HELPER, UNITS, allowed_syscalls, context_switches, credentials_dir,
                   exec_reload, render_units, run_analyze, service_config, system_exec_start,
                   trace_names, unit_text, user_exec_start, user_listen, value, values)
from tokens import service_token

MAX_EXPOSURE = 1.5


# --- the unit files ----------------------------------------------------------------------


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_units_verify_clean(workdir, user):
    service, sock = render_units(workdir, user=user)
    rc, out = run_analyze(["verify", service, sock], workdir, user=user)
    assert (rc, out) == (0, ""), out


def test_verify_reports_problems(workdir):
    """The check above can fail: verify does report a broken copy of the units."""
    service, sock = render_units(workdir)
    with open(service) as f:
        text = f.read()
    text = text.replace("Type=notify", "Type=notify\nNoSuchSetting=yes")
    text = text.replace(os.path.abspath(DAEMON), "/nonexistent/regscale-tokend")
    write_file(service, text, 0o644)
    rc, out = run_analyze(["verify", service, sock], workdir)
    assert "NoSuchSetting" in out and "/nonexistent/regscale-tokend" in out, out


def test_security_exposure_ok(workdir):
    service, _ = render_units(workdir)
    rc, out = run_analyze(["security", "--offline=yes", service], workdir)
    assert rc == 0, out
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", out)
    assert m, out
    score = float(m.group(1))
    print("systemd-analyze security --offline=yes: %s %s" % (m.group(1), m.group(2)))
    assert score <= MAX_EXPOSURE and m.group(2) == "OK", out


def test_security_exposure_check_can_fail(workdir):
    """Without its sandbox the same service rates far above the limit."""
    service, _ = render_units(workdir)
    with open(service) as f:
        text = f.read()
    kept = [line for line in text.splitlines()
            if not line.startswith(("Protect", "Private", "Restrict", "SystemCall", "Capab",
                                    "NoNew", "Memory", "Lock", "User=", "Group="))]
    write_file(service, "\n".join(kept) + "\n", 0o644)
    rc, out = run_analyze(["security", "--offline=yes", service], workdir)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m and float(m.group(1)) > MAX_EXPOSURE, out


def _debian_depends():
    """The names in debian/control's Depends of the package regscale-token."""
    with open(os.path.join(os.path.dirname(UNITS), "debian", "control")) as f:
        text = f.read()
    m = re.search(r"^Package: regscale-token\n(?:.*\n)*?Depends:(.*(?:\n[ \t].*)*)", text,
                  re.MULTILINE)
    assert m, "debian/control has no Depends for regscale-token"
    return {alt.split("(")[0].strip() for dep in m.group(1).split(",")
            for alt in dep.split("|") if alt.strip()}


def _quickstart_test_deps():
    with open(os.path.join(os.path.dirname(UNITS), "tests", "quickstart")) as f:
        m = re.search(r'^TEST_DEPS="([^"]*)"', f.read(), re.MULTILINE)
    return set(m.group(1).split())


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="not a Debian system")
@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_unit_programs_come_with_the_package(user):
    """Every program the units run besides ours (ExecReload='s /bin/kill) is in an Essential
    package, or in one the Debian package depends on and the Quick start's test installs: a
    minimal image (debootstrap minbase, a container) has no procps, and there
    systemd-analyze verify failed on '/bin/kill is not executable'."""
    svc = unit_text(("user/" if user else "") + "regscale-tokend@.service")
    depends, test_deps = _debian_depends(), _quickstart_test_deps()
    checked = []
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop",
                "ExecStopPost"):
        for line in values(svc, key):
            prog = shlex.split(line)[0].lstrip("-@:+!")
            if prog == os.path.abspath(DAEMON):
                continue
            owner = subprocess.run(["dpkg-query", "-S", prog], capture_output=True, text=True)
            pkgs = [ln.split(":")[0] for ln in owner.stdout.splitlines()
                    if not ln.startswith("diversion ") and ln.endswith(": " + prog)]
            assert pkgs, "%s=%s: no package has %s" % (key, line, prog)
            essential = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", pkgs[0]],
                                       capture_output=True, text=True).stdout.strip()
            if essential != "yes":
                assert pkgs[0] in depends, "%s needs %s: not in debian/control's Depends" % (
                    prog, pkgs[0])
                assert pkgs[0] in test_deps, "%s needs %s: not in tests/quickstart's " \
                    "TEST_DEPS" % (prog, pkgs[0])
            checked.append((prog, pkgs[0]))
    assert checked  # ExecReload= at least


def test_system_unit_settings():
    svc = unit_text("regscale-tokend@.service")
    sock = unit_text("regscale-tokend@.socket")
    assert value(svc, "Type") == "notify"
    assert value(svc, "User") == "regscale-token"
    assert value(svc, "Restart") == "on-failure"
    assert re.fullmatch(r"/bin/kill -(HUP|s HUP) \$MAINPID", value(svc, "ExecReload"))
    argv = shlex.split(value(svc, "ExecStart"))
    assert argv[0] == os.path.abspath(DAEMON)
    assert argv[1:] == ["--config", "/etc/regscale-token/%i.conf"]
    # Encrypted credentials by default (test_credentials.py runs them); plain ones documented.
    assert values(svc, "LoadCredentialEncrypted") == [
        "password:/etc/regscale-token/%i.password.cred"]
    assert not values(svc, "LoadCredential")
    assert "LoadCredentialEncrypted=token:/etc/regscale-token/%i.token.cred" in svc
    assert "LoadCredential=password:/etc/regscale-token/%i.password" in svc
    assert "regscale-tokend@%i.socket" in value(svc, "Requires", "Unit")
    # What the daemon needs at run time must stay allowed.
    families = " ".join(values(svc, "RestrictAddressFamilies")).split()
    assert set(families) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    for forbidden in ("PrivateUsers", "PrivateNetwork", "IPAddressDeny", "NoExecPaths",
                      "ExecPaths", "InaccessiblePaths", "DynamicUser"):
        assert not values(svc, forbidden), forbidden
    assert value(svc, "ProtectSystem") == "strict"
    assert value(svc, "MemoryDenyWriteExecute") == "yes"
    assert value(sock, "ListenStream", "Socket") == "/run/regscale-token/%i.sock"
    assert value(sock, "SocketMode", "Socket") == "0660"
    assert value(sock, "SocketGroup", "Socket") == "regscale-token"
    assert value(sock, "DirectoryMode", "Socket") == "0755"


def test_user_unit_settings():
    svc = unit_text("user/regscale-tokend@.service")
    sock = unit_text("user/regscale-tokend@.socket")
    assert value(svc, "Type") == "notify"
    assert shlex.split(value(svc, "ExecStart"))[1:] == [
        "--config", "%E/regscale-token/%i.conf"]
    assert not values(svc, "User")
    assert value(sock, "ListenStream", "Socket") == "%t/regscale-token/%i.sock"
    assert value(sock, "SocketMode", "Socket") == "0600"
    assert value(sock, "DirectoryMode", "Socket") == "0700"


def test_sysusers_creates_account_and_group(workdir):
    root = os.path.join(workdir, "root")
    os.makedirs(os.path.join(root, "etc"))
    p = subprocess.run(["systemd-sysusers", "--root=" + root,
                        os.path.join(UNITS, "regscale-token.conf")],
                       capture_output=True, timeout=30, env=base_env(workdir))
    assert p.returncode == 0, p.stderr
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = {line.split(":")[0]: line.rstrip("\n").split(":") for line in f}
    with open(os.path.join(root, "etc", "group")) as f:
        groups = {line.split(":")[0]: line.split(":") for line in f}
    assert "regscale-token" in users and "regscale-token" in groups
    pw = users["regscale-token"]
    assert pw[3] == groups["regscale-token"][2]  # primary group
    assert 0 < int(pw[2]) < 1000  # a system account
    assert pw[6].endswith("nologin")


# --- running the daemon as the units would --------------------------------------------


def test_socket_activation_serves_passed_socket(workdir, services):
    token = service_token(user_id="user-activated", exp_in=3600)
    tokdir = os.path.join(workdir, "tok")
    os.mkdir(tokdir)
    write_file(os.path.join(tokdir, "prod.token"), token + "\n")
    argv, config = system_exec_start(workdir)
    own = os.path.join(workdir, "own.sock")  # [daemon] socket, must stay unused
    service_config(config, token_file=os.path.join(tokdir, "prod.token"), socket_path=own)
    run = os.path.join(workdir, "run")
    os.mkdir(run)
    listen = os.path.join(run, "prod.sock")
    svc = services(argv, listen)

    env = base_env(workdir)
    rc, out, err = run_client(["--socket", listen, "get"], env)
    assert (rc, out) == (0, token + "\n"), err
    env_s = base_env(workdir, REGSCALE_TOKEN_SOCKET=listen)
    assert run_client(["get", "--format", "bearer"], env_s)[1] == "Bearer " + token + "\n"
    assert not os.path.lexists(own)
    assert sorted(os.listdir(run)) == ["prod.sock"]
    assert "serving on the socket passed by systemd, " + listen in svc.log_text()
    # The metrics name the profile of the socket passed (getsockname), not of [daemon] socket.
    rc, out, err = run_client(["--socket", listen, "metrics"], env)
    samples = [line for line in out.splitlines() if not line.startswith("#")]
    assert rc == 0 and samples, (rc, out, err)
    assert all(re.match(r'regscale_token_[a-z_]+\{profile="prod"[,}]', x) for x in samples), out
    ino = os.lstat(listen).st_ino
    assert svc.stop() == 0
    # The socket belongs to the service manager: the daemon leaves it in place.
    assert os.lstat(listen).st_ino == ino


def test_notify_sequence(workdir, services, notify):
    tokdir = os.path.join(workdir, "tok")
    os.mkdir(tokdir)
    token_path = os.path.join(tokdir, "prod.token")
    write_file(token_path, service_token(user_id="user-first", exp_in=3600) + "\n")
    argv, config = system_exec_start(workdir)
    service_config(config, token_file=token_path)
    listen = os.path.join(workdir, "prod.sock")
    svc = services(argv, listen, env={"NOTIFY_SOCKET": notify.path})

    ready = notify.wait_line("READY=1")
    first = notify.wait_prefix("STATUS=")
    assert first <= ready  # the status describes the state the daemon is ready in
    status1 = [x for x in notify.messages[first][1] if x.startswith("STATUS=")][0]
    assert "user-first" in status1 and "valid until" in status1, status1

    # A state change (a new token in the file) updates the status line.
    write_file(token_path, service_token(user_id="user-second", exp_in=7200) + "\n")
    changed = notify.wait(lambda ls: any(x.startswith("STATUS=") and "user-second" in x
                                         for x in ls), ready + 1)

    # ExecReload= (SIGHUP): RELOADING=1 with the monotonic time in one message, then READY=1.
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    exec_reload(svc.pid)
    reloading = notify.wait_line("RELOADING=1", changed + 1)
    lines = notify.messages[reloading][1]
    stamps = [int(x.split("=", 1)[1]) for x in lines if x.startswith("MONOTONIC_USEC=")]
    assert len(stamps) == 1, lines
    assert before - 1 <= stamps[0] / 1e6 <= time.clock_gettime(time.CLOCK_MONOTONIC) + 1
    ready2 = notify.wait_line("READY=1", reloading + 1)
    assert try_ping(listen)

    assert svc.stop() == 0
    stopping = notify.wait_line("STOPPING=1", ready2 + 1)
    notify.drain(0.2)
    assert stopping == len(notify.messages) - 1, notify.lines()
    assert notify.count("WATCHDOG=1") == 0  # no WatchdogSec=: no pings


def _idle_service(workdir, services, notify, **kw):
    tokdir = os.path.join(workdir, "tok")
    os.mkdir(tokdir)
    write_file(os.path.join(tokdir, "t"), service_token(exp_in=3600) + "\n")
    argv, config = system_exec_start(workdir)
    service_config(config, token_file=os.path.join(tokdir, "t"))
    env = {"NOTIFY_SOCKET": notify.path}
    env.update(kw.pop("env", {}))
    svc = services(argv, os.path.join(workdir, "prod.sock"), env=env, **kw)
    notify.wait_line("READY=1")
    return svc


def test_watchdog_pings_under_watchdog_usec(workdir, services, notify):
    svc = _idle_service(workdir, services, notify, env={"WATCHDOG_USEC": "200000"},
                        watchdog_pid=True)
    t0 = time.monotonic()
    notify.drain(1.0)
    n = notify.count("WATCHDOG=1", since=t0)
    # sd-event pings every 1/2 to 3/4 of the interval: 6 to 10 times a second here.
    assert 4 <= n <= 25, notify.lines()
    assert try_ping(svc.listen)


def test_no_watchdog_no_wakeups(workdir, services, notify):
    svc = _idle_service(workdir, services, notify)
    notify.drain(0.3)  # let the start-up settle
    before = context_switches(svc.pid)
    t0 = time.monotonic()
    notify.drain(2.0)
    assert notify.count("WATCHDOG=1") == 0, notify.lines()
    assert context_switches(svc.pid) == before, "the idle daemon woke up within %.1f s" % (
        time.monotonic() - t0)


def test_watchdog_for_another_pid_is_ignored(workdir, services, notify):
    """WATCHDOG_PID names the main process; a daemon that is not it must not ping."""
    _idle_service(workdir, services, notify,
                  env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    notify.drain(1.0)
    assert notify.count("WATCHDOG=1") == 0, notify.lines()


def test_token_from_credentials_directory(workdir, services, notify):
    token = service_token(user_id="user-credential", exp_in=3600)
    creds = credentials_dir(workdir, token=token + "\n")
    argv, config = system_exec_start(workdir)
    service_config(config)  # no token_file: the credential decides the mode
    listen = os.path.join(workdir, "prod.sock")
    services(argv, listen, env={"CREDENTIALS_DIRECTORY": creds, "NOTIFY_SOCKET": notify.path})
    env = base_env(workdir)
    rc, out, err = run_client(["--socket", listen, "get"], env)
    assert (rc, out) == (0, token + "\n"), err
    rc, out, err = run_client(["--socket", listen, "status"], env)
    assert rc == 0 and "user-credential" in out, out
    notify.wait(lambda ls: any(x.startswith("STATUS=") and "user-credential" in x
                               for x in ls))


def test_password_from_credentials_directory(workdir, services, notify, lg_ca):
    srv = start_server(lg_ca, lifetime=3600)
    try:
        creds = credentials_dir(workdir, password=PASSWORD)
        argv, config = system_exec_start(workdir)
        write_file(config, "[regscale]\nurl = %s\nusername = %s\nca_file = %s\n"
                   % (srv.url, USERNAME, lg_ca["ca_cert"]), 0o644)
        listen = os.path.join(workdir, "prod.sock")
        svc = services(argv + ["--login-helper", HELPER], listen,
                       env={"CREDENTIALS_DIRECTORY": creds, "NOTIFY_SOCKET": notify.path})
        # READY=1 comes before the first login completes; then the status follows it.
        ready = notify.wait_line("READY=1")
        valid = notify.wait(lambda ls: any(x.startswith("STATUS=") and "valid until" in x
                                           and "refresh at" in x for x in ls),
                            timeout=15)
        assert ready < valid, notify.lines()
        rc, out, err = run_client(["--socket", listen, "get", "--min-valid", "1m"],
                                  base_env(workdir), timeout=30)
        assert rc == 0 and out.count(".") == 2, err
        assert srv.control.stats()["login_ok"] == 1
        assert svc.stop() == 0
        assert PASSWORD not in svc.log_text()
    finally:
        srv.stop()
        srv.cleanup()


def test_status_reports_rejected_credentials(workdir, services, notify, lg_ca):
    srv = start_server(lg_ca, lifetime=3600)
    try:
        creds = credentials_dir(workdir, password="not-" + PASSWORD)
        argv, config = system_exec_start(workdir)
        write_file(config, "[regscale]\nurl = %s\nusername = %s\nca_file = %s\n"
                   % (srv.url, USERNAME, lg_ca["ca_cert"]), 0o644)
        listen = os.path.join(workdir, "prod.sock")
        services(argv + ["--login-helper", HELPER], listen,
                 env={"CREDENTIALS_DIRECTORY": creds, "NOTIFY_SOCKET": notify.path})
        ready = notify.wait_line("READY=1")
        notify.wait(lambda ls: any(x.startswith("STATUS=") and "credentials rejected" in x
                                   and "regscale-token login" in x for x in ls),
                    ready, timeout=15)
        assert srv.control.stats()["login"] == 1
    finally:
        srv.stop()
        srv.cleanup()


# --- profiles ----------------------------------------------------------------------------


def _user_service(workdir, services, instance, user_id):
    token = service_token(user_id=user_id, exp_in=3600)
    argv, config = user_exec_start(workdir, instance)
    tok = os.path.join(os.path.dirname(config), instance + ".token")
    write_file(tok, token + "\n")
    service_config(config, token_file=tok)
    services(argv, user_listen(workdir, instance), name=instance)
    return token


@pytest.mark.skipif(os.path.exists("/run/regscale-token/default.sock"),
                    reason="a system-wide default profile would take precedence")
def test_profiles_of_user_units(workdir, services):
    name = "work-" + secrets.token_hex(3)
    work = _user_service(workdir, services, name, "user-work")
    dflt = _user_service(workdir, services, "default", "user-default")
    env = base_env(workdir)
    assert run_client(["get"], env)[:2] == (0, dflt + "\n")
    assert run_client(["-p", name, "get"], env)[:2] == (0, work + "\n")
    assert run_client(["--profile", name, "get"], env)[:2] == (0, work + "\n")
    env_p = base_env(workdir, REGSCALE_TOKEN_PROFILE=name)
    assert run_client(["get"], env_p)[:2] == (0, work + "\n")
    assert run_client(["-p", "default", "get"], env_p)[:2] == (0, dflt + "\n")  # -p wins
    # --socket and -p beat REGSCALE_TOKEN_SOCKET, which beats REGSCALE_TOKEN_PROFILE.
    bogus = os.path.join(workdir, "nothing.sock")
    env_s = base_env(workdir, REGSCALE_TOKEN_SOCKET=bogus, REGSCALE_TOKEN_PROFILE=name)
    assert run_client(["get"], env_s)[0] == 3
    assert run_client(["-p", name, "get"], env_s)[:2] == (0, work + "\n")
    listen = user_listen(workdir, name)
    assert run_client(["--socket", listen, "-p", "default", "get"], env_s)[:2] == (
        0, work + "\n")
    assert run_client(["-p", "missing-" + name, "get"], env)[:2] == (3, "")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make /run/regscale-token")
def test_system_profile_beats_user_profile(workdir, services):
    name = "rte-" + secrets.token_hex(4)
    user_tok = _user_service(workdir, services, name, "user-own")
    run_dir = "/run/regscale-token"
    made_dir = not os.path.isdir(run_dir)
    if made_dir:
        os.mkdir(run_dir, 0o755)
    listen = os.path.join(run_dir, name + ".sock")
    try:
        token = service_token(user_id="user-system", exp_in=3600)
        argv, config = system_exec_start(workdir, name)
        tok = os.path.join(workdir, "etc", name + ".token")
        write_file(tok, token + "\n")
        service_config(config, token_file=tok)
        services(argv, listen, name="system")
        env = base_env(workdir)
        assert run_client(["-p", name, "get"], env)[:2] == (0, token + "\n")
        assert run_client(["get"], base_env(workdir, REGSCALE_TOKEN_PROFILE=name))[:2] == (
            0, token + "\n")
        assert run_client(["--socket", user_listen(workdir, name), "get"], env)[:2] == (
            0, user_tok + "\n")
    finally:
        if os.path.lexists(listen):
            os.unlink(listen)
        if made_dir:
            try:
                os.rmdir(run_dir)
            except OSError:
                pass


# --- the sandbox against what the daemon really does -------------------------------------


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
@pytest.mark.parametrize("mode", ["password", "token"])
def test_sandbox_allows_what_the_daemon_does(workdir, lg_ca, mode):
    """Runs the daemon under strace through a login (password) or a token check (token),
    gets, a reload and a stop, and checks every system call, socket family and mapping
    against the service's sandbox."""
    unit = unit_text("regscale-tokend@.service")
    allowed = allowed_syscalls(unit)
    assert {"mlock", "madvise", "mprotect", "prctl", "clone3", "execve", "pidfd_open",
            "prlimit64", "inotify_add_watch", "signalfd4"} <= allowed
    assert not {"setuid", "setrlimit", "mount", "ptrace", "reboot"} & allowed

    srv = start_server(lg_ca, lifetime=3600)
    trace = os.path.join(workdir, "trace")
    sock = os.path.join(workdir, "d.sock")
    if mode == "password":
        creds = credentials_dir(workdir, password=PASSWORD)
    else:
        creds = credentials_dir(workdir, token=service_token(exp_in=3600) + "\n")
    config = os.path.join(workdir, "d.conf")
    # "localhost" makes the helper resolve a name, as it would for a real server.
    write_file(config, "[regscale]\nurl = %s\nusername = %s\nca_file = %s\n"
               % (srv.url.replace("127.0.0.1", "localhost"), USERNAME, lg_ca["ca_cert"]))
    log = os.path.join(workdir, "d.log")
    proc = None
    try:
        with open(log, "ab") as logf:
            proc = subprocess.Popen(
                ["strace", "-f", "-qq", "-o", trace, DAEMON, "--config", config,
                 "--socket", sock, "--login-helper", HELPER],
                # LeakSanitizer cannot run under ptrace and would fail a sanitizer build's
                # programs at exit; the sanitizer suites check leaks everywhere else.
                env=base_env(workdir, CREDENTIALS_DIRECTORY=creds,
                             ASAN_OPTIONS="detect_leaks=0"),
                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: proc.poll() is not None or try_ping(sock), 10), log
        env = base_env(workdir)
        rc, out, err = run_client(["--socket", sock, "get", "--min-valid", "1m"], env,
                                  timeout=30)
        assert rc == 0, err
        if mode == "password":
            assert run_client(["--socket", sock, "refresh"], env, timeout=30)[0] == 0
        else:
            assert wait_until(lambda: srv.control.stats()["validate_ok"] == 1, 10)
        # strace is the process we started; the daemon is its child.
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            daemon_pid = int(f.read().split()[0])
        os.kill(daemon_pid, signal.SIGHUP)
        assert wait_until(lambda: "SIGHUP" in open(log).read(), 5)
        assert run_client(["--socket", sock, "get"], env)[0] == 0
        os.kill(daemon_pid, signal.SIGTERM)
        assert proc.wait(10) == 0, open(log).read()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        srv.stop()
        srv.cleanup()

    used, families, wx = trace_names(trace)
    assert {"clone3", "execve"} <= used  # the login helper ran
    if mode == "token":
        assert "inotify_add_watch" in used
    assert not used - allowed, "system calls the unit's SystemCallFilter= refuses: %s" % (
        sorted(used - allowed))
    allowed_families = set(" ".join(values(unit, "RestrictAddressFamilies")).split())
    assert families and families <= allowed_families, families
    assert not wx, "writable+executable or newly executable mappings: %s" % wx[:5]
