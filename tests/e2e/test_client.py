# SPDX-License-Identifier: MIT
"""The client on its own: exit codes, error lines, usage, socket resolution. Some tests put
a scripted fake daemon (a Python thread) on the socket to pin down how replies map to exit
codes."""

import json
import os
import socket
import threading
import time

import pytest

from conftest import base_env, run_client
from tokens import service_token


def assert_one_error_line(err):
    assert err.startswith("regscale-token: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "; " in err, "error line should say what to do after '; ': %r" % err


class FakeDaemon:
    """Listens on path; answers each request line with the next scripted reply (bytes)."""

    def __init__(self, path, replies):
        self.path = path
        self.replies = list(replies)
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            buf = b""
            while self.replies:
                while b"\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                self.requests.append(line)
                conn.sendall(self.replies.pop(0))

    def close(self):
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def fake(workdir):
    made = []

    def make(*replies):
        f = FakeDaemon(os.path.join(workdir, "fake%d.sock" % len(made)), replies)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def client_at(workdir, path, *args, env=None):
    return run_client(["--socket", path] + list(args), base_env(workdir, **(env or {})))


def test_no_daemon_exit_3(workdir):
    path = os.path.join(workdir, "nobody.sock")
    for cmd in (["get"], ["status"], ["ping"], ["get", "--format", "json"]):
        rc, out, err = client_at(workdir, path, *cmd)
        assert rc == 3, (cmd, rc, out, err)
        assert out == ""
        assert_one_error_line(err)


def test_stale_socket_exit_3(workdir):
    path = os.path.join(workdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    rc, out, err = client_at(workdir, path, "get")
    assert (rc, out) == (3, "")
    assert_one_error_line(err)


def test_daemon_not_answering_times_out_exit_3(workdir):
    path = os.path.join(workdir, "mute.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)  # connections queue up but nobody ever answers
    try:
        t0 = time.monotonic()
        rc, out, err = client_at(workdir, path, "--timeout", "1", "get")
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert (rc, out) == (3, "")
    assert_one_error_line(err)
    assert 0.8 <= elapsed < 4.0, elapsed


def _full_listener(path):
    """A listener whose backlog (listen(0): one connection) is full; returns it and the
    connection filling it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(0)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler.connect(path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    with pytest.raises(BlockingIOError):  # the backlog is full indeed
        probe.connect(path)
    probe.close()
    return s, filler


def test_full_backlog_times_out_exit_3(workdir):
    path = os.path.join(workdir, "full.sock")
    s, filler = _full_listener(path)
    try:
        t0 = time.monotonic()
        rc, out, err = client_at(workdir, path, "--timeout", "1", "get")
        elapsed = time.monotonic() - t0
    finally:
        filler.close()
        s.close()
    assert (rc, out) == (3, "")
    assert_one_error_line(err)
    assert "no answer from the daemon" in err, err
    assert 0.8 <= elapsed < 4.0, elapsed


def test_full_backlog_waits_for_room(workdir):
    """A daemon too busy to accept at once is waited for, within the timeout: once it
    accepts, the client connects and is served."""
    path = os.path.join(workdir, "busy.sock")
    s, filler = _full_listener(path)
    reply = ('{"ok":true,"v":1,"token":"%s"}\n' % TOKEN).encode()

    def serve():
        time.sleep(0.5)
        first, _ = s.accept()  # the filler: now there is room
        first.close()
        conn, _ = s.accept()
        with conn:
            conn.settimeout(10)
            buf = b""
            while b"\n" not in buf:
                buf += conn.recv(4096)
            conn.sendall(reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        rc, out, err = client_at(workdir, path, "--timeout", "5", "get")
        elapsed = time.monotonic() - t0
    finally:
        t.join(5)
        filler.close()
        s.close()
    assert (rc, out, err) == (0, TOKEN + "\n", "")
    assert 0.4 <= elapsed < 4.0, elapsed


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["get", "--format", "yaml"],
    ["get", "--no-such-option"],
    ["--timeout", "soon", "get"],
    ["--no-such-option", "get"],
    ["get", "extra-argument"],
], ids=lambda a: " ".join(a) or "<none>")
def test_usage_error_exit_2(workdir, args):
    path = os.path.join(workdir, "nobody.sock")
    rc, out, err = client_at(workdir, path, *args)
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert err.startswith("regscale-token: "), err


def test_help_and_version(workdir):
    env = base_env(workdir)
    rc, out, err = run_client(["--help"], env)
    assert rc == 0
    for word in ("get", "status", "ping", "--socket", "--format"):
        assert word in out, word
    rc, out, err = run_client(["--version"], env)
    assert rc == 0
    assert "0.1.0" in out


def test_socket_option_beats_environment(daemons):
    a = daemons(token=service_token(user_id="user-A"), name="a")
    b = daemons(token=service_token(user_id="user-B"), name="b")
    env = base_env(a.workdir, REGSCALE_TOKEN_SOCKET=a.socket)
    a_tok = open(a.token_file).read().strip()
    b_tok = open(b.token_file).read().strip()
    rc, out, _ = run_client(["get"], env)
    assert (rc, out) == (0, a_tok + "\n")
    rc, out, _ = run_client(["--socket", b.socket, "get"], env)
    assert (rc, out) == (0, b_tok + "\n")
    # ... and beats the profile $REGSCALE_TOKEN_PROFILE names; -p beats it (test_identity.py)
    env_p = dict(env, REGSCALE_TOKEN_PROFILE="other")
    rc, out, _ = run_client(["get"], env_p)
    assert (rc, out) == (0, a_tok + "\n")


@pytest.mark.skipif(os.path.exists("/run/regscale-token"),
                    reason="a system-wide /run/regscale-token would take precedence")
def test_profile_resolution_via_xdg_runtime_dir(daemons, workdir):
    xdg = os.path.join(workdir, "xdg", "regscale-token")
    dflt = daemons(token=service_token(user_id="user-default"), name="default",
                   socket_path=os.path.join(xdg, "default.sock"))
    other = daemons(token=service_token(user_id="user-other"), name="other",
                    socket_path=os.path.join(xdg, "other.sock"))
    d_tok = open(dflt.token_file).read().strip()
    o_tok = open(other.token_file).read().strip()
    env = base_env(workdir)  # XDG_RUNTIME_DIR = workdir/xdg
    assert run_client(["get"], env)[1] == d_tok + "\n"
    assert run_client(["--profile", "other", "get"], env)[1] == o_tok + "\n"
    assert run_client(["-p", "other", "get"], env)[1] == o_tok + "\n"
    env_p = base_env(workdir, REGSCALE_TOKEN_PROFILE="other")
    assert run_client(["get"], env_p)[1] == o_tok + "\n"
    assert run_client(["--profile", "default", "get"], env_p)[1] == d_tok + "\n"
    rc, out, err = run_client(["--profile", "missing", "get"], env)
    assert (rc, out) == (3, "")


# --- reply -> exit code mapping, with a scripted daemon -------------------------------

TOKEN = service_token(user_id="user-fake")


def _err(code):
    return json.dumps({"ok": False, "v": 1, "error": code,
                       "message": "scripted " + code}).encode() + b"\n"


@pytest.mark.parametrize("code,rc", [
    ("no_token", 4),
    ("token_expired", 4),
    ("permission_denied", 5),
    ("login_failed", 6),
    ("credentials_rejected", 6),
    ("internal", 1),
])
def test_error_reply_exit_codes(workdir, fake, code, rc):
    f = fake(_err(code))
    got_rc, out, err = client_at(workdir, f.path, "get")
    assert got_rc == rc, (code, got_rc, out, err)
    assert out == ""
    assert_one_error_line(err)
    req = json.loads(f.requests[0])
    assert req["op"] == "get"
    assert req.get("v", 1) == 1


@pytest.mark.parametrize("reply", [
    b"this is not json\n",
    b'{"ok":true,"v":1}\n',                      # get reply without a token
    b'{"ok":true,"v":1,"token":42}\n',
    b"",                                         # connection closed without a reply
], ids=["garbage", "no-token-field", "token-not-string", "closed"])
def test_bad_reply_exit_1(workdir, fake, reply):
    f = fake(reply) if reply else fake()
    rc, out, err = client_at(workdir, f.path, "get")
    assert rc in ((1, 3) if not reply else (1,)), (rc, out, err)
    assert out == ""
    assert_one_error_line(err)


def test_get_json_prints_reply_line_as_received(workdir, fake):
    line = ('{"ok":true,"v":1,"kind":"service","user_id":"u","url":null,'
            '"expires_at":null,"expires":null,"expires_in":null,"token":"%s"}' % TOKEN)
    f = fake(line.encode() + b"\n")
    rc, out, err = client_at(workdir, f.path, "get", "--format", "json")
    # ... with the socket used and its profile added (test_identity.py)
    tail = ',"socket":"%s","profile":null}\n' % f.path
    assert (rc, out, err) == (0, line[:-1] + tail, "")


def test_status_json_prints_reply(workdir, fake):
    s = {"ok": True, "v": 1, "state": "no_token", "message": "no token held",
         "kind": None, "user_id": None, "url": None, "expires_at": None, "expires": None,
         "expires_in": None, "last_refresh": None, "next_refresh": None, "last_error": None,
         "retries": 0, "version": "0.1.0", "pid": 1, "uptime": 3}
    f = fake(json.dumps(s).encode() + b"\n")
    rc, out, err = client_at(workdir, f.path, "status", "--json")
    assert json.loads(out) == dict(s, socket=f.path, profile=None)
    assert json.loads(f.requests[0])["op"] == "status"


def test_json_before_the_command(workdir, fake):
    # "regscale-token --json status" is what people type: the same as "status --json", and
    # its errors are JSON too.
    s = {"ok": True, "v": 1, "state": "no_token", "message": "no token held"}
    f = fake(json.dumps(s).encode() + b"\n")
    rc, out, err = run_client(["--socket", f.path, "--json", "status"], base_env(workdir))
    assert rc == 0 and err == "", (rc, out, err)
    assert json.loads(out)["state"] == "no_token"
    rc, out, err = run_client(["--json", "--socket", os.path.join(workdir, "none.sock"),
                               "get"], base_env(workdir))
    assert rc == 3 and err == "", (rc, out, err)
    reply = json.loads(out)
    assert reply["ok"] is False and reply["error"] == "unreachable" and reply["exit"] == 3
