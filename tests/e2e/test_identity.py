# SPDX-License-Identifier: MIT
"""Which daemon, and whose token, a person can see: -p and --socket beat
$REGSCALE_TOKEN_SOCKET; get --format json and status --json add "socket" and "profile";
status shows username, user id, URL, kind, socket and profile; whoami says whose token the
daemon holds."""

import json
import os

import pytest

from conftest import URL, base_env, run_client
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import USERNAME
from test_client import FakeDaemon
from tokens import service_token

NO_SYSTEM_DIR = pytest.mark.skipif(os.path.exists("/run/regscale-token"),
                                   reason="a system-wide /run/regscale-token would take "
                                   "precedence over the profiles of $XDG_RUNTIME_DIR")


def profile_socket(workdir, name):
    return os.path.join(workdir, "xdg", "regscale-token", name + ".sock")


def tok(d):
    return open(d.token_file).read().strip()


@pytest.fixture
def three(daemons, workdir):
    """Daemons for the profiles "default" and "other" of $XDG_RUNTIME_DIR, and one at a path
    of its own ("plain"), each with a token of its own user."""
    made = {}
    for name in ("default", "other"):
        made[name] = daemons(token=service_token(user_id="user-" + name), name=name,
                             socket_path=profile_socket(workdir, name))
    made["plain"] = daemons(token=service_token(user_id="user-plain"), name="plain")
    return made


# --- the order: --socket > -p > REGSCALE_TOKEN_SOCKET > REGSCALE_TOKEN_PROFILE > default ---


@NO_SYSTEM_DIR
def test_profile_option_beats_socket_environment(three, workdir):
    env = base_env(workdir, REGSCALE_TOKEN_SOCKET=three["plain"].socket)
    assert run_client(["get"], env)[:2] == (0, tok(three["plain"]) + "\n")
    assert run_client(["-p", "other", "get"], env)[:2] == (0, tok(three["other"]) + "\n")
    assert run_client(["--profile", "default", "get"], env)[:2] == (
        0, tok(three["default"]) + "\n")


@NO_SYSTEM_DIR
def test_socket_option_beats_profile_and_environment(three, workdir):
    env = base_env(workdir, REGSCALE_TOKEN_SOCKET=three["other"].socket,
                   REGSCALE_TOKEN_PROFILE="other")
    args = ["--socket", three["plain"].socket, "-p", "other", "get"]
    assert run_client(args, env)[:2] == (0, tok(three["plain"]) + "\n")
    # -p before or after --socket: --socket wins
    args = ["-p", "other", "--socket", three["plain"].socket, "get"]
    assert run_client(args, env)[:2] == (0, tok(three["plain"]) + "\n")


@NO_SYSTEM_DIR
def test_socket_environment_beats_profile_environment(three, workdir):
    env = base_env(workdir, REGSCALE_TOKEN_SOCKET=three["plain"].socket,
                   REGSCALE_TOKEN_PROFILE="other")
    assert run_client(["get"], env)[:2] == (0, tok(three["plain"]) + "\n")
    env = base_env(workdir, REGSCALE_TOKEN_PROFILE="other")
    assert run_client(["get"], env)[:2] == (0, tok(three["other"]) + "\n")
    assert run_client(["-p", "default", "get"], env)[:2] == (0, tok(three["default"]) + "\n")


# --- socket and profile in the JSON ------------------------------------------------------


@NO_SYSTEM_DIR
@pytest.mark.parametrize("cmd", [["get", "--format", "json"], ["status", "--json"]])
def test_json_names_socket_and_profile(three, workdir, cmd):
    plain = three["plain"].socket
    cases = [
        ([], {}, profile_socket(workdir, "default"), "default"),
        (["-p", "other"], {"REGSCALE_TOKEN_SOCKET": plain}, profile_socket(workdir, "other"),
         "other"),
        ([], {"REGSCALE_TOKEN_PROFILE": "other"}, profile_socket(workdir, "other"), "other"),
        ([], {"REGSCALE_TOKEN_SOCKET": plain}, plain, None),
        (["--socket", plain, "-p", "other"], {}, plain, None),
    ]
    for opts, extra, socket_path, profile in cases:
        rc, out, err = run_client(opts + cmd, base_env(workdir, **extra))
        assert (rc, err) == (0, ""), (opts, extra)
        assert out.endswith("\n") and out.count("\n") == 1
        pairs = json.loads(out, object_pairs_hook=list)
        reply = dict(pairs)
        assert [k for k, _ in pairs][-2:] == ["socket", "profile"], out
        assert (reply["socket"], reply["profile"]) == (socket_path, profile), (opts, extra)
        assert reply["ok"] is True
        user = "user-" + (profile or "plain")
        assert reply["user_id"] == user
        if cmd[0] == "get":
            assert reply["token"] == tok(three[profile or "plain"])


def test_get_json_is_the_reply_line_with_socket_and_profile(workdir):
    """The daemon's line, byte for byte, with the two fields before its final brace."""
    token = service_token()
    line = ('{"ok":true,"v":1,"kind":"service","user_id":"u","username":null,"url":null,'
            '"expires_at":null,"expires":null,"expires_in":null,"token":"%s"}' % token)
    path = os.path.join(workdir, "we \"ird\\.sock")
    f = FakeDaemon(path, [line.encode() + b"\n"])
    try:
        rc, out, err = run_client(["--socket", path, "get", "--format", "json"],
                                  base_env(workdir))
    finally:
        f.close()
    assert (rc, err) == (0, "")
    assert out == line[:-1] + ',"socket":%s,"profile":null}\n' % json.dumps(path)


# --- status and whoami -------------------------------------------------------------------


def status_lines(out):
    """The "label: value" lines of status, as {label: value}."""
    lines = {}
    for line in out.splitlines():
        label, _, value = line.partition(":")
        lines[label] = value.strip()
    return lines


@NO_SYSTEM_DIR
def test_status_shows_user_url_kind_socket_profile(three, workdir):
    rc, out, err = run_client(["-p", "other", "status"], base_env(workdir))
    assert (rc, err) == (0, "")
    s = status_lines(out)
    assert s["user id"] == "user-other"
    assert s["url"] == URL
    assert s["kind"] == "service (service-account token)"
    assert s["socket"] == profile_socket(workdir, "other")
    assert s["profile"] == "other"
    # A RegScale token names its user in "sub" next to the user id in "id" (PROTOCOL.md).
    assert s["username"] == "svc-e2e"
    rc, out, err = run_client(["--socket", three["plain"].socket, "status"], base_env(workdir))
    s = status_lines(out)
    assert s["socket"] == three["plain"].socket
    assert s["profile"].startswith("-"), s["profile"]


def scripted_status(**fields):
    s = {"ok": True, "v": 1, "state": "valid", "message": "scripted", "kind": "login",
         "user_id": "6f1c-uid", "username": "jdoe", "url": "https://regscale.example.test",
         "expires_at": None, "expires": None, "expires_in": None, "last_refresh": None,
         "next_refresh": None, "last_error": None, "retries": 0, "version": "0.1.0",
         "pid": 1, "uptime": 3}
    s.update(fields)
    return json.dumps(s).encode() + b"\n"


def run_fake(workdir, reply, *args):
    """Runs the client against a scripted daemon answering reply; returns (rc, out, err,
    the socket's path)."""
    path = os.path.join(workdir, "fake.sock")
    f = FakeDaemon(path, [reply])
    try:
        return run_client(["--socket", path] + list(args), base_env(workdir)) + (path,)
    finally:
        f.close()
        os.unlink(path)


@pytest.mark.parametrize("kind,words", [("login", "login (password login)"),
                                        ("pasted", "pasted (pasted token)")])
def test_status_shows_username_when_known(workdir, kind, words):
    rc, out, err, path = run_fake(workdir, scripted_status(kind=kind), "status")
    assert (rc, err) == (0, "")
    s = status_lines(out)
    assert (s["username"], s["user id"], s["kind"]) == ("jdoe", "6f1c-uid", words)
    order = [line.partition(":")[0] for line in out.splitlines()]
    assert order.index("username") < order.index("user id") < order.index("url")
    assert order[-2:] == ["socket", "profile"]
    assert s["socket"] == path


@pytest.mark.parametrize("fields,line", [
    ({}, "jdoe (6f1c-uid) at https://regscale.example.test"),
    ({"username": None}, "6f1c-uid at https://regscale.example.test"),
    ({"kind": "pasted"}, "jdoe (6f1c-uid) at https://regscale.example.test (pasted token)"),
    ({"kind": "pasted", "state": "expired"},
     "jdoe (6f1c-uid) at https://regscale.example.test (pasted token, expired)"),
    ({"kind": "login", "state": "expired"},
     "jdoe (6f1c-uid) at https://regscale.example.test (expired)"),
    ({"url": None, "username": None}, "6f1c-uid"),
], ids=["login", "no-username", "pasted", "pasted-expired", "login-expired", "no-url"])
def test_whoami(workdir, fields, line):
    rc, out, err, _ = run_fake(workdir, scripted_status(**fields), "whoami")
    assert (rc, out, err) == (0, line + "\n", "")


def test_whoami_service_daemon(daemons):
    d = daemons(token=service_token(user_id="user-svc", sub="svc-e2e"))
    rc, out, err = d.client("whoami")
    assert (rc, out, err) == (0, "svc-e2e (user-svc) at %s (service-account token)\n" % URL, "")
    # Without a username the daemon knows (no unique_name, no sub), the user id alone.
    d = daemons(token=service_token(user_id="user-nameless", sub=None))
    rc, out, err = d.client("whoami")
    assert (rc, out, err) == (0, "user-nameless at %s (service-account token)\n" % URL, "")


def test_whoami_json(workdir):
    rc, out, err, path = run_fake(workdir, scripted_status(kind="pasted"), "whoami", "--json")
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"username": "jdoe", "user_id": "6f1c-uid",
                               "url": "https://regscale.example.test", "kind": "pasted",
                               "state": "valid", "socket": path, "profile": None}


def test_whoami_without_token_exits_4(workdir):
    reply = scripted_status(state="no_token", kind=None, user_id=None, username=None)
    rc, out, err, _ = run_fake(workdir, reply, "whoami")
    assert (rc, out) == (4, "")
    assert err.startswith("regscale-token: ") and err.count("\n") == 1 and "; " in err, err
    assert "no_token" in err
    rc, out, err, path = run_fake(workdir, reply, "whoami", "--json")
    assert rc == 4, err
    assert json.loads(out) == {"username": None, "user_id": None,
                               "url": "https://regscale.example.test", "kind": None,
                               "state": "no_token", "socket": path, "profile": None}


def test_whoami_real_daemon_without_token(daemons):
    d = daemons(token_file=False)
    rc, out, err = d.client("whoami")
    assert (rc, out) == (4, ""), err


def test_whoami_and_status_of_a_password_login(lg):
    """The daemon knows the username of its own login: whoami and status show it."""
    d = lg.daemon()
    st = d.wait_valid()
    rc, out, err = d.client("whoami")
    assert (rc, out, err) == (0, "%s (%s) at %s\n" % (USERNAME, st["user_id"], d.server.url),
                              "")
    rc, out, err = d.client("status")
    assert rc == 0, err
    s = status_lines(out)
    assert (s["username"], s["user id"], s["url"]) == (USERNAME, st["user_id"], d.server.url)
    assert s["kind"] == "login (password login)"
    assert (s["socket"], s["profile"][:1]) == (d.socket, "-")
    rc, out, err = d.client("whoami", "--json")
    assert json.loads(out) == {"username": USERNAME, "user_id": st["user_id"],
                               "url": d.server.url, "kind": "login", "state": "valid",
                               "socket": d.socket, "profile": None}
