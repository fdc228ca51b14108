# SPDX-License-Identifier: MIT
"""The client's login path end to end: pasted tokens (--token, --token-file), one-time codes
(--mfa, the prompt after mfa_required, refresh of an MFA identity), prompts that name the
user and URL, the progress line on a terminal, one line per failure, and --json errors.

Prompts are driven through a pseudo-terminal that is the client's controlling terminal
(PtyClient), as a person at a terminal would see them. Some tests put a scripted fake daemon
(FakeDaemon) on the socket to pin down what the client sends; the rest run the real daemon
against the bundled RegScale server.
"""

import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import termios
import threading
import time

import pytest

from harness import CLIENT, clean_env, scratch_dir
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD, USERNAME, SCRUB_TLS, needs_binaries
from tokens import claims_of, make_jwt

pytestmark = needs_binaries

MFA_USER, MFA_PASSWORD, MFA_CODE = "mfauser", "pw-Mfa-e2e-1", "314159"
USERS = ["{}:{}".format(USERNAME, PASSWORD),
         "{}:{}:{}".format(MFA_USER, MFA_PASSWORD, MFA_CODE)]


# --- a terminal ------------------------------------------------------------------------


class PtyClient:
    """regscale-token with a pseudo-terminal as stdin and controlling terminal (so /dev/tty
    is it), stdout a pipe, and stderr the terminal too (stderr_tty) or a pipe."""

    def __init__(self, args, env, stderr_tty=True, stdin_tty=True, input=None):
        master, slave = os.openpty()

        def child_setup():
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [CLIENT] + list(args), env=env,
            stdin=slave if stdin_tty else subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=slave if stderr_tty else subprocess.PIPE, preexec_fn=child_setup,
            pass_fds=(slave,))
        os.close(slave)
        if not stdin_tty:
            self.proc.stdin.write((input or "").encode())
            self.proc.stdin.close()
        self.master = master
        self.screen = b""  # everything the terminal showed

    def read_some(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return None
        if not data:
            return None
        self.screen += data
        return True

    def expect(self, text, timeout=15):
        """Waits until the terminal has shown text; returns the screen so far."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0 or self.read_some(left) is None:
                raise AssertionError("terminal never showed %r; it showed %r"
                                     % (text, self.screen.decode("utf-8", "replace")))
        return self.screen.decode("utf-8", "replace")

    def type(self, text):
        os.write(self.master, text.encode())

    def finish(self, timeout=30):
        """Waits for the exit; returns (rc, stdout, stderr-pipe text or None, screen)."""
        out, err = self.proc.communicate(timeout=timeout)
        while self.read_some(0.2):
            pass
        os.close(self.master)
        return (self.proc.returncode, out.decode(), err.decode() if err is not None else None,
                self.screen.decode("utf-8", "replace"))


def pty_client(d, *args, **kw):
    return PtyClient(["--socket", d.socket] + list(args), d.environment(), **kw)


def cmdline_of(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().decode("utf-8", "replace").split("\0")


# --- a scripted daemon -----------------------------------------------------------------


class FakeDaemon:
    """Listens on path and answers each request line with answer(request) (a dict);
    requests holds every request received, parsed."""

    def __init__(self, path, answer):
        self.path = path
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        with conn:
            conn.settimeout(30)
            buf = b""
            while True:
                while b"\n" not in buf:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                req = json.loads(line)
                self.requests.append(req)
                conn.sendall(json.dumps(dict({"v": 1}, **self.answer(req))).encode() + b"\n")

    def ops(self):
        return [r["op"] for r in self.requests]

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


VALID = {"ok": True, "state": "valid", "kind": "login", "user_id": "u-1", "username": "jdoe",
         "url": "https://regscale.example.test", "expires_at": int(time.time()) + 3600,
         "expires_in": 3600}


def status_reply(**kw):
    return dict({"ok": True, "state": "valid", "kind": "login", "user_id": "u-1",
                 "username": "jdoe", "url": "https://regscale.example.test"}, **kw)


@pytest.fixture
def fake():
    made = []
    with scratch_dir("rtf-") as d:
        def make(answer):
            f = FakeDaemon(os.path.join(d, "fake%d.sock" % len(made)), answer)
            f.env = clean_env(d, {}, SCRUB_TLS)
            made.append(f)
            return f
        yield make
        for f in made:
            f.close()


def run_detached(args, env, input=None, timeout=30):
    """Runs regscale-token args in a new session: no controlling terminal, so no /dev/tty to
    prompt on (as under cron), even when the tests run in one."""
    p = subprocess.run([CLIENT] + list(args), env=env, input=(input or "").encode(),
                       capture_output=True, timeout=timeout, start_new_session=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fake_client(f, *args, input=None, timeout=30):
    return run_detached(["--socket", f.path] + list(args), f.env, input, timeout)


def detached(d, *args, input=None, timeout=30):
    return run_detached(["--socket", d.socket] + list(args), d.environment(), input, timeout)


def one_line(err):
    assert err.startswith("regscale-token: ") and err.endswith("\n"), err
    assert err.count("\n") == 1, err
    return err


# --- pasted tokens ---------------------------------------------------------------------


def pasted_daemon(lg, **kw):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None, **kw)
    return srv, d


@pytest.mark.parametrize("form", ["{}", "Bearer {}", "  bearer \t{}  \r"])
def test_token_from_stdin(lg, form):
    srv, d = pasted_daemon(lg)
    token = srv.control.token(username="jdoe", lifetime=1800)
    d.secrets.add(token)
    rc, out, err = d.client("login", "--token", input=form.format(token) + "\n", timeout=30)
    assert rc == 0 and err == "", (rc, out, err)
    assert "pasted token" in out and "jdoe" in out and "valid until" in out, out
    assert "login --token" in out and "before then" in out, out
    assert token not in out
    assert d.get()["token"] == token
    st = d.status()
    assert st["kind"] == "pasted" and st["next_refresh"] is None, st
    assert srv.control.stats()["validate"] == 1 and srv.control.stats()["login"] == 0


def test_refused_token_changes_nothing(lg):
    """A token RegScale says 401 to (signed with another key) is refused; the daemon goes
    on serving the token it had, and its status is as it was."""
    srv = lg.server(users=USERS)
    d = lg.daemon(srv)
    d.wait_valid()
    before_token, before = d.get()["token"], d.status()
    forged = make_jwt({"sub": "mallory", "id": "x", "iat": int(time.time()),
                       "exp": int(time.time()) + 3600}, key=b"not-the-servers-key")
    d.secrets.add(forged)
    rc, out, err = d.client("login", "--token", input=forged + "\n", timeout=30)
    assert rc == 6 and out == "", (rc, out, err)
    one_line(err)
    assert "login --token" in err and forged not in err and "same version" not in err, err
    assert d.get()["token"] == before_token
    after = d.status()
    for key in ("state", "kind", "user_id", "expires_at", "next_refresh", "last_error"):
        assert after[key] == before[key], (key, before, after)
    assert srv.control.stats()["validate"] == 1


@pytest.mark.parametrize("bad, why", [
    ("not-a-jwt-at-all", "1 part separated by dots"),
    ("aaa.bbb", "2 parts"),
    ("eyJhbGciOiJIUzI1NiJ9..c2ln", "payload (part 2 of 3) is empty"),
    ("eyJhbGciOiJIUzI1NiJ9.e30.c2ln!x", "not in a JWT"),
    ("YWJj.e30.c2ln", "header (part 1 of 3) is not"),
])
def test_malformed_token_refused_before_sending(fake, bad, why):
    f = fake(lambda req: status_reply() if req["op"] == "status" else VALID)
    rc, out, err = fake_client(f, "login", "--token", input=bad + "\n")
    assert rc == 6 and out == "", (rc, out, err)
    one_line(err)
    assert why in err and bad not in err, err
    assert "login" not in f.ops(), f.requests
    line = err[len("regscale-token: "):-1]
    rc, out, err = fake_client(f, "login", "--token", "--json", input=bad + "\n")
    assert rc == 6 and err == "", (rc, out, err)
    assert json.loads(out) == {"ok": False, "error": "invalid_token", "message": line,
                               "exit": 6}


def test_expired_token_refused_before_sending(fake):
    f = fake(lambda req: VALID)
    now = int(time.time())
    token = make_jwt({"sub": "jdoe", "id": "u-1", "iat": now - 7200, "exp": now - 3600})
    rc, out, err = fake_client(f, "login", "--token", input="Bearer " + token + "\n")
    assert rc == 6 and "expired at" in one_line(err) and "1h ago" in err, err
    assert token.split(".")[2] not in err
    assert f.requests == []


def test_token_sent_as_it_was_pasted_without_bearer(fake):
    f = fake(lambda req: dict(VALID, kind="pasted"))
    token = make_jwt({"sub": "jdoe", "id": "u-1", "exp": int(time.time()) + 600})
    rc, out, err = fake_client(f, "login", "--token", input="  BEARER   " + token + " \n")
    assert rc == 0, (rc, out, err)
    assert [r for r in f.requests if r["op"] == "login"] == [
        {"op": "login", "v": 1, "token": token}]


def test_token_file(lg, fake):
    srv, d = pasted_daemon(lg)
    token = srv.control.token(username="jdoe")
    d.secrets.add(token)
    path = os.path.join(d.workdir, "pasted.token")
    with open(path, "w") as fh:
        fh.write("Bearer " + token + "\n\n")
    os.chmod(path, 0o600)
    rc, out, err = d.client("login", "--token-file", path, timeout=30)
    assert rc == 0 and "pasted token" in out, (rc, out, err)
    assert d.get()["token"] == token


def test_token_file_refusals(fake):
    f = fake(lambda req: VALID)
    token = make_jwt({"sub": "jdoe", "exp": int(time.time()) + 600})
    with scratch_dir("rtt-") as d:
        path = os.path.join(d, "t")
        with open(path, "w") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o644)
        rc, out, err = fake_client(f, "login", "--token-file", path)
        assert rc == 1 and "mode 0644" in one_line(err) and "chmod 600" in err, err
        os.chmod(path, 0o600)
        os.chown(path, 65534, 65534)  # nobody's file, which root could read
        rc, out, err = fake_client(f, "login", "--token-file", path)
        assert rc == 1 and "belongs to uid 65534" in one_line(err), err
        os.chown(path, 0, 0)
        with open(path, "a") as fh:
            fh.write("second line\n")
        rc, out, err = fake_client(f, "login", "--token-file", path)
        assert rc == 6 and "more than one line" in one_line(err), err
        rc, out, err = fake_client(f, "login", "--token-file", os.path.join(d, "nope"))
        assert rc == 1 and "cannot open the token file" in one_line(err), err
        assert token not in err
    assert "login" not in f.ops()


@pytest.mark.parametrize("args", [
    ["--token", "--username", "jdoe"],
    ["--token", "--mfa"],
    ["--token-file", "/dev/null", "--mfa=123456"],
    ["--token", "--token-file", "/dev/null"],
])
def test_token_usage_errors(fake, args):
    f = fake(lambda req: VALID)
    rc, out, err = fake_client(f, "login", *args)
    assert rc == 2 and out == "", (rc, out, err)
    assert one_line(err).endswith("; try 'regscale-token login --help'\n"), err
    assert f.requests == []


def test_long_token_pasted_on_a_terminal(fake):
    """A terminal line holds 4095 bytes; a longer token pasted at the prompt arrives whole,
    and nothing of it is echoed."""
    f = fake(lambda req: status_reply() if req["op"] == "status" else dict(VALID,
                                                                            kind="pasted"))
    token = make_jwt({"sub": "jdoe", "exp": int(time.time()) + 600, "pad": "x" * 6000})
    assert len(token) > 8000
    p = PtyClient(["--socket", f.path, "login", "--token"], f.env)
    p.expect("Paste the RegScale token for https://regscale.example.test: ")
    p.type(token + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, out, screen)
    assert [r.get("token") for r in f.requests if r["op"] == "login"] == [token]
    assert token[-40:] not in screen and token[100:140] not in screen


# --- one-time codes --------------------------------------------------------------------


def test_mfa_prompt_without_echo(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    d.secrets.add(MFA_PASSWORD)
    p = pty_client(d, "login", "--username", MFA_USER, "--mfa")
    p.expect("RegScale password for %s at %s: " % (MFA_USER, srv.url))
    assert all(MFA_CODE not in a and MFA_PASSWORD not in a for a in cmdline_of(p.proc.pid))
    p.type(MFA_PASSWORD + "\r")
    p.expect("One-time code for %s at %s: " % (MFA_USER, srv.url))
    p.type(MFA_CODE[:3] + " " + MFA_CODE[3:] + "\r")  # as an authenticator shows it
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, out, screen)
    assert MFA_CODE[:3] not in screen and MFA_PASSWORD not in screen, screen
    assert "logged in as" in out and "refresh --mfa" in out, out
    e = srv.control.stats()["logins"]
    assert len(e) == 1 and e[0]["mfa"] and e[0]["username"] == MFA_USER, e
    assert d.status()["state"] == "login_required"


def test_mfa_code_as_second_line_without_terminal(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    d.secrets.add(MFA_PASSWORD)
    rc, out, err = detached(d, "login", "--username", MFA_USER, "--mfa",
                            input=MFA_PASSWORD + "\n" + MFA_CODE + "\n")
    assert rc == 0, (rc, out, err)
    assert srv.control.stats()["logins"][0]["mfa"]


@pytest.mark.parametrize("args", [["--mfa=" + MFA_CODE], ["--mfa", MFA_CODE]],
                         ids=["equals", "two-words"])
def test_mfa_code_on_the_command_line(lg, args):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    d.secrets.add(MFA_PASSWORD)
    rc, out, err = d.client("login", "--username", MFA_USER, *args,
                            input=MFA_PASSWORD + "\n", timeout=30)
    assert rc == 0, (rc, out, err)


def test_help_says_a_code_in_argv_is_visible(fake):
    f = fake(lambda req: VALID)
    for args in (["login", "--help"], ["help", "login"], ["refresh", "--help"]):
        rc, out, err = fake_client(f, *args)
        assert rc == 0 and "other users can see it (ps)" in out, (args, out)
    assert fake_client(f, "login", "--help")[1] == fake_client(f, "help", "login")[1]


def mfa_fake(f_answers):
    """A fake whose login answers mfa_required without "mfa" and VALID with it."""
    def answer(req):
        if req["op"] == "status":
            return status_reply(username=MFA_USER)
        if req["op"] == "login" and "mfa" not in req:
            return {"ok": False, "error": "mfa_required",
                    "message": "RegScale asks for a one-time code"}
        return dict(VALID, username=MFA_USER, state="login_required")
    return answer


def test_mfa_required_prompts_and_sends_the_password_again(fake):
    f = fake(mfa_fake(None))
    p = PtyClient(["--socket", f.path, "login"], f.env)
    p.expect("RegScale password for %s at https://regscale.example.test: " % MFA_USER)
    p.type(MFA_PASSWORD + "\r")
    p.expect("One-time code for %s at https://regscale.example.test: " % MFA_USER)
    p.type(MFA_CODE + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, out, screen)
    logins = [r for r in f.requests if r["op"] == "login"]
    assert logins == [{"op": "login", "v": 1, "password": MFA_PASSWORD},
                      {"op": "login", "v": 1, "password": MFA_PASSWORD, "mfa": MFA_CODE}]
    assert MFA_CODE not in screen and "regscale-token:" not in screen


def test_mfa_required_without_terminal_is_one_line(fake):
    f = fake(mfa_fake(None))
    rc, out, err = fake_client(f, "login", input=MFA_PASSWORD + "\n")
    assert rc == 6 and out == "", (rc, out, err)
    assert one_line(err).endswith("; run 'regscale-token login --mfa' to give the one-time "
                                  "code\n"), err
    rc, out, err = fake_client(f, "login", "--json", input=MFA_PASSWORD + "\n")
    assert rc == 6 and err == "" and json.loads(out)["error"] == "mfa_required", (out, err)


def test_mfa_required_then_prompt_then_success(lg):
    """The real daemon: RegScale asks for a code, the client asks the person, logs in."""
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=MFA_USER, password=None)
    d.secrets.add(MFA_PASSWORD)
    p = pty_client(d, "login")
    # No token yet: status names no user (the configured one is not in it), only the URL.
    assert p.expect(" at %s: " % srv.url).startswith("RegScale password")
    p.type(MFA_PASSWORD + "\r")
    p.expect("One-time code")
    p.screen = p.screen[p.screen.index(b"One-time code"):]
    p.expect(" at %s: " % srv.url)
    p.type(MFA_CODE + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "logged in as %s" % MFA_USER in out, (rc, out, screen)
    assert MFA_CODE not in screen and MFA_PASSWORD not in screen, screen
    assert [e["mfa"] for e in srv.control.stats()["logins"]] == [False, True]
    # No terminal to ask on: one line, and the way to give the code.
    rc, out, err = detached(d, "login", input=MFA_PASSWORD + "\n")
    assert rc == 6 and out == "", (rc, out, err)
    assert one_line(err).endswith("; run 'regscale-token login --mfa' to give the one-time "
                                  "code\n"), err
    assert d.status()["state"] == "login_required"  # the failed login changed nothing
    assert d.status()["state"] == "login_required"


def refresh_fake(kind):
    def answer(req):
        if req["op"] == "status":
            return status_reply(kind=kind, state="login_required")
        if "mfa" not in req:
            return {"ok": False, "error": "login_required", "kind": kind,
                    "message": "only a person can renew this token"}
        return dict(VALID, kind=kind, state="login_required")
    return answer


def test_refresh_of_an_mfa_identity_prompts_for_a_code(fake):
    f = fake(refresh_fake("login"))
    p = PtyClient(["--socket", f.path, "refresh"], f.env)
    p.expect("One-time code for jdoe at https://regscale.example.test: ")
    p.type(MFA_CODE + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "refreshed the token for jdoe" in out, (rc, out, screen)
    assert [r for r in f.requests if r["op"] == "refresh"] == [
        {"op": "refresh", "v": 1}, {"op": "refresh", "v": 1, "mfa": MFA_CODE}]
    rc, out, err = fake_client(f, "refresh")
    assert rc == 4 and "refresh --mfa" in one_line(err), err


def test_refresh_of_a_pasted_token_says_paste_a_new_one(fake):
    f = fake(refresh_fake("pasted"))
    p = PtyClient(["--socket", f.path, "refresh"], f.env, stderr_tty=False)
    rc, out, err, screen = p.finish()
    assert rc == 4 and out == "", (rc, out, err, screen)
    assert one_line(err).endswith("; paste a new token with 'regscale-token login --token'\n")
    assert "One-time code" not in screen
    p = PtyClient(["--socket", f.path, "refresh"], f.env)
    rc, out, err, screen = p.finish()
    assert rc == 4 and "refreshing" not in screen and screen.count("\n") == 1, screen


def test_refresh_mfa_real_daemon(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    d.secrets.add(MFA_PASSWORD)
    rc, out, err = d.client("login", "--username", MFA_USER, "--mfa=" + MFA_CODE,
                            input=MFA_PASSWORD + "\n", timeout=30)
    assert rc == 0, (rc, out, err)
    rc, out, err = detached(d, "refresh")
    assert rc == 4 and "refresh --mfa" in one_line(err), (rc, out, err)
    p = pty_client(d, "refresh")
    p.expect("One-time code for %s at %s: " % (MFA_USER, srv.url))
    p.type(MFA_CODE + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "refreshed the token" in out, (rc, out, screen)
    assert [e["mfa"] for e in srv.control.stats()["logins"]] == [True, True]


# --- prompts, progress, one line per failure -------------------------------------------


def test_password_prompt_names_user_and_url(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv)  # logged in from its password file as the configured user
    d.wait_valid()
    p = pty_client(d, "login")
    p.expect("RegScale password for %s at %s: " % (USERNAME, srv.url))
    p.type(PASSWORD + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and PASSWORD not in screen, (rc, out, screen)
    assert out.startswith("logged in as %s (user id " % USERNAME), out


def test_password_prompt_names_the_configured_user_without_a_token(lg):
    # The configured password is wrong: no token, so only status's configured_username
    # can name whom a login is for.
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, password="not-the-password")
    d.wait_state(["credentials_rejected"], timeout=10)
    p = pty_client(d, "login")
    p.expect("RegScale password for %s at %s: " % (USERNAME, srv.url))
    p.type(PASSWORD + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, out, screen)


def test_password_prompt_with_username_option(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    p = pty_client(d, "login", "--username", USERNAME)
    p.expect("RegScale password for %s at %s: " % (USERNAME, srv.url))
    p.type(PASSWORD + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, out, screen)


def test_progress_line_on_a_terminal_only(lg):
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None)
    p = pty_client(d, "login", "--username", USERNAME)
    p.expect("RegScale password")
    p.type(PASSWORD + "\r")
    p.expect("logging in to %s as %s...\r\n" % (srv.url, USERNAME))
    rc, out, err, screen = p.finish()
    assert rc == 0 and out.startswith("logged in as "), (rc, out, screen)
    # stderr a pipe (a script): the password prompt, but no progress line anywhere.
    p = pty_client(d, "login", "--username", USERNAME, stderr_tty=False)
    p.expect("RegScale password")
    p.type(PASSWORD + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and err == "" and "logging in" not in screen, (rc, err, screen)
    p = pty_client(d, "refresh")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "refreshing the token" in screen and "at %s" % srv.url in screen, screen
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 0 and err == "", (rc, err)


def test_exec_says_why_it_waits_on_a_terminal(lg):
    # A token with less left than --min-valid: the daemon logs in first (slowly; the new
    # token's 30 s count from the login's start, so 28.5 s are left after it), and a
    # person at the terminal is told why the command has not started yet; a quick answer
    # prints nothing.
    srv = lg.server(users=USERS, lifetime=30)
    d = lg.daemon(srv)
    d.wait_valid()
    p = pty_client(d, "exec", "--min-valid", "10", "--", "true")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "waiting" not in screen, (rc, screen)
    time.sleep(6)  # less than 25 s left now
    srv.control.fault("slow", seconds=1.5, on="login")
    p = pty_client(d, "exec", "--min-valid", "25", "--", "true")
    rc, out, err, screen = p.finish()
    assert rc == 0, (rc, screen)
    assert "waiting for the daemon to get a token valid for 25s from RegScale..." in screen
    time.sleep(6)
    srv.control.fault("slow", seconds=1.5, on="login")
    p = pty_client(d, "exec", "--min-valid", "25", "--", "true", stderr_tty=False)
    rc, out, err, screen = p.finish()
    assert rc == 0 and err == "", (rc, err)


@pytest.mark.parametrize("held", [True, False], ids=["token-held", "no-token"])
def test_wrong_password_is_one_line(lg, held):
    """The cause once (not again as the error code, nor with the daemon's own advice), then
    the one action that fits a login."""
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, password=PASSWORD if held else None)
    if held:
        d.wait_valid()
    wrong = "definitely-Wr0ng-e2e"
    d.secrets.add(wrong)
    rc, out, err = d.client("login", input=wrong + "\n", timeout=30)
    assert rc == 6 and out == "", (rc, out, err)
    one_line(err)
    cause, _, action = err[len("regscale-token: "):].rstrip("\n").rpartition("; ")
    assert action == "check the username and password, and run 'regscale-token login' again"
    assert "(credentials_rejected)" not in err and "fix the password" not in err, err
    assert wrong not in err


def test_json_errors(lg, fake):
    with scratch_dir("rtj-") as wd:
        env = clean_env(wd, {}, SCRUB_TLS)
        nobody = os.path.join(wd, "nobody.sock")
        for args in (["ping"], ["get"], ["status"], ["login"], ["logout"], ["refresh"]):
            p = subprocess.run([CLIENT, "--socket", nobody] + args + ["--json"], env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            assert p.returncode == 3 and p.stderr == b"", (args, p)
            e = json.loads(p.stdout)
            assert e["ok"] is False and e["error"] == "unreachable" and e["exit"] == 3, e
            assert "not running" in e["message"]
        for args in (["login", "--bogus", "--json"], ["login", "--json", "x"],
                     ["--timeout", "x", "ping", "--json"], ["nosuch", "--json"]):
            p = subprocess.run([CLIENT, "--socket", nobody] + args, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            assert p.returncode == 2 and p.stderr == b"", (args, p)
            e = json.loads(p.stdout)
            assert e["error"] == "usage" and e["exit"] == 2 and "--help" in e["message"], e

    srv = lg.server(users=USERS)
    d = lg.daemon(srv, password=None)
    rc, out, err = d.client("login", "--json", input="Wr0ng-e2e-pw\n", timeout=30)
    d.secrets.add("Wr0ng-e2e-pw")
    assert rc == 6 and err == "", (rc, out, err)
    e = json.loads(out)
    assert e["error"] == "credentials_rejected" and e["exit"] == 6, e
    assert e["message"].endswith("run 'regscale-token login' again"), e
    rc, out, err = d.client("login", "--json", input=PASSWORD + "\n", timeout=30)
    assert rc == 0 and err == "", (rc, out, err)
    r = json.loads(out)
    assert r["ok"] is True and r["state"] == "valid" and "token" not in r, r
    for args in (["ping"], ["refresh"], ["logout"]):
        rc, out, err = d.client(*args, "--json", timeout=30)
        assert rc == 0 and err == "" and json.loads(out)["ok"] is True, (args, out, err)


def test_usage_error_names_the_commands_help(fake):
    f = fake(lambda req: VALID)
    for cmd in ("login", "refresh", "logout", "ping", "status", "get"):
        rc, out, err = fake_client(f, cmd, "--no-such-option")
        assert rc == 2 and one_line(err).endswith("; try 'regscale-token %s --help'\n" % cmd)
        rc, out1, _ = fake_client(f, cmd, "--help")
        rc2, out2, _ = fake_client(f, "help", cmd)
        assert rc == rc2 == 0 and out1 == out2 and out1.startswith("Usage:"), cmd
    assert f.requests == []


def test_slow_typing_outlasts_the_idle_timeout(lg):
    """The daemon closes a connection idle for idle_timeout; a person slower than that at a
    prompt still logs in (the client connects afresh), code and all."""
    srv = lg.server(users=USERS)
    d = lg.daemon(srv, username=None, password=None, extra="idle_timeout = 1\n")
    d.secrets.add(MFA_PASSWORD)
    p = pty_client(d, "login", "--username", MFA_USER)
    p.expect("RegScale password")
    time.sleep(1.6)
    p.type(MFA_PASSWORD + "\r")
    p.expect("One-time code")
    time.sleep(1.6)
    p.type(MFA_CODE + "\r")
    rc, out, err, screen = p.finish()
    assert rc == 0 and "logged in as %s" % MFA_USER in out, (rc, out, screen)
