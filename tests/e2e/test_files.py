# SPDX-License-Identifier: MIT
"""Files the daemon trusts: the socket's directory when it already exists, and the
password_file and token_file it reads secrets from.

An existing socket directory must be a real directory (not a symlink), owned by the daemon's
user (or root), that nobody else can write to; a secret file must be private to the daemon's
user (or root): no permission bit for group or others. Anything else stops the daemon at
start with one line naming the path, its owner and mode and the fix; a secret file that
goes bad later is refused on reload while the daemon keeps serving what it holds.
Systemd credentials ($CREDENTIALS_DIRECTORY) are the service manager's business and are
not checked. Each test ends by applying the fix its message names and checking that the
daemon then accepts the path.
"""

import os
import pwd
import signal
import subprocess
import uuid

import pytest

from conftest import replace_file, wait_until
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD
from tokens import service_token

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")


def _nobody():
    return pwd.getpwnam("nobody")


def _me():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "uid %d" % os.geteuid()


def refused_at_start(d, *needles):
    """Starts d, which must exit non-zero by itself with one error line holding every
    needle; returns that line. The daemon counts as reaped (the teardown passes it over)."""
    d.start(wait=False)
    try:
        rc = d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the daemon started although it should have refused; log:\n"
                    + d.log_text())
    d.returncode = rc
    log = d.log_text()
    assert rc != 0, log
    lines = [line for line in log.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, "want one line with %r; log:\n%s" % (needles, log)
    assert lines[0].startswith("<3>"), lines[0]  # an error, not a warning
    assert not os.path.lexists(d.socket), "socket left behind after refusing to start"
    return lines[0]


def restart(d):
    """Starts d again (after a refusal) and waits until it answers ping."""
    d.proc = None
    d.returncode = None
    return d.start()


# --- the socket's directory ------------------------------------------------------------


@needs_root
def test_socket_dir_of_another_user_is_refused(daemons, workdir):
    run = os.path.join(workdir, "run")
    os.mkdir(run, 0o700)
    os.chown(run, _nobody().pw_uid, -1)
    token = service_token()
    d = daemons(start=False, token=token, socket_path=os.path.join(run, "d.sock"))
    line = refused_at_start(d, run, "nobody", "0700")
    assert "another socket path" in line, line
    # The directory's owner fixed, and left 0755 (systemd's RuntimeDirectory=): accepted.
    os.chown(run, os.geteuid(), -1)
    os.chmod(run, 0o755)
    restart(d)
    assert d.get_token() == token
    assert os.stat(run).st_mode & 0o7777 == 0o755  # a directory found is left as it is


@needs_root
@pytest.mark.parametrize("target_owner", ["nobody", "self"])
def test_socket_dir_symlink_is_refused(daemons, workdir, target_owner):
    target = os.path.join(workdir, "target")
    os.mkdir(target, 0o700)
    if target_owner == "nobody":
        os.chown(target, _nobody().pw_uid, -1)
    link = os.path.join(workdir, "link")
    os.symlink(target, link)
    token = service_token()
    d = daemons(start=False, token=token, socket_path=os.path.join(link, "d.sock"))
    line = refused_at_start(d, link, "symbolic link")
    assert "another socket path" in line, line
    assert os.listdir(target) == []
    # Without the link, the daemon makes the directory itself.
    os.unlink(link)
    restart(d)
    assert d.get_token() == token
    assert os.lstat(link).st_mode & 0o7777 == 0o700


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o775, 0o757], ids=oct)
def test_socket_dir_writable_by_others_is_refused(daemons, workdir, mode):
    run = os.path.join(workdir, "tmp")
    os.mkdir(run)
    os.chmod(run, mode)
    token = service_token()
    d = daemons(start=False, token=token, socket_path=os.path.join(run, "d.sock"))
    line = refused_at_start(d, run, "%04o" % mode, _me())
    assert "another socket path" in line, line
    os.chmod(run, 0o755)
    restart(d)
    assert d.get_token() == token


def test_socket_in_tmp_itself_is_refused(daemons, workdir):
    if os.stat("/tmp").st_mode & 0o7777 != 0o1777:
        pytest.skip("/tmp is not 1777 here")
    path = "/tmp/rte-%s.sock" % uuid.uuid4().hex[:12]
    d = daemons(start=False, token=service_token(), socket_path=path)
    refused_at_start(d, "/tmp", "1777", "another socket path")


# --- secret files ----------------------------------------------------------------------


def test_loose_password_file_is_refused_at_start(lg):
    srv = lg.server()
    d = lg.daemon(srv, start=False)
    os.chmod(d.password_file, 0o644)
    line = refused_at_start(d, d.password_file, "0644", "chmod 600 " + d.password_file)
    assert _me() in line, line
    assert srv.control.stats()["login"] == 0
    # The same mode is fine on a systemd credential: the service manager's directory.
    c = lg.daemon(srv, name="cred", password_source="credential", start=False)
    os.chmod(os.path.join(lg.workdir, "cred.creds", "password"), 0o644)
    c.start()
    c.wait_valid()
    # Fixed as the message says: accepted.
    os.chmod(d.password_file, 0o600)
    restart(d)
    d.wait_valid()


def test_loose_token_file_is_refused_at_start(daemons):
    token = service_token()
    d = daemons(start=False, token=token)
    os.chmod(d.token_file, 0o640)
    line = refused_at_start(d, d.token_file, "0640", "chmod 600 " + d.token_file)
    assert _me() in line, line
    os.chmod(d.token_file, 0o400)
    restart(d)
    assert d.get_token() == token


@needs_root
def test_token_file_of_another_user_is_refused(daemons):
    token = service_token()
    d = daemons(start=False, token=token)
    os.chown(d.token_file, _nobody().pw_uid, -1)
    line = refused_at_start(d, d.token_file, "nobody", "0600")
    assert "chown" in line, line
    os.chown(d.token_file, os.geteuid(), -1)
    restart(d)
    assert d.get_token() == token


def _new_errors(d, before, *needles):
    return [line for line in d.log_text().splitlines()[before:]
            if line.startswith("<3>") and all(n in line for n in needles)]


def test_loose_token_file_is_refused_on_reload(daemon):
    old, new = daemon.token, service_token(user_id="user-loose")
    before = len(daemon.log_text().splitlines())
    # An atomic rotation to a 0640 file: the inotify reload refuses it ...
    replace_file(daemon.token_file, new + "\n", mode=0o640)
    assert wait_until(lambda: _new_errors(daemon, before, daemon.token_file, "0640",
                                          "chmod 600"), 3.0), daemon.log_text()
    assert daemon.get_token() == old
    # ... and so does a SIGHUP, and the daemon serves on.
    n = len(_new_errors(daemon, before, daemon.token_file))
    daemon.send_signal(signal.SIGHUP)
    assert wait_until(lambda: len(_new_errors(daemon, before, daemon.token_file)) > n,
                      3.0), daemon.log_text()
    assert daemon.running()
    assert daemon.get_token() == old
    rc, out, _ = daemon.client("get")
    assert (rc, out) == (0, old + "\n")
    # Fixed: the next SIGHUP takes the new token.
    os.chmod(daemon.token_file, 0o600)
    daemon.send_signal(signal.SIGHUP)
    assert daemon.wait_token(new), daemon.log_text()


def test_loose_password_file_is_refused_on_reload(lg):
    d = lg.daemon()
    d.wait_valid()
    token, logins = d.token(), d.logins()
    before = len(d.log_text().splitlines())
    os.chmod(d.password_file, 0o644)
    d.sighup()
    assert wait_until(lambda: _new_errors(d, before, d.password_file, "0644", "chmod 600"),
                      3.0), d.log_text()
    assert d.running()
    assert d.state() == "valid"
    assert d.token() == token
    assert d.logins() == logins
    assert d.status()["last_error"] and d.password_file in d.status()["last_error"]
    # Fixed (0400 is fine too): accepted, and an unchanged password logs in not at all.
    os.chmod(d.password_file, 0o400)
    n = len(_new_errors(d, before, d.password_file))
    d.sighup()
    assert wait_until(lambda: d.status()["last_error"] is None, 3.0), d.status()
    assert len(_new_errors(d, before, d.password_file)) == n
    assert d.token() == token and d.logins() == logins
    assert PASSWORD not in d.log_text()
