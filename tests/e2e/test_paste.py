# SPDX-License-Identifier: MIT
"""Pasted tokens and MFA over the socket, end to end: a `login` with "token" is checked with
the bundled server's validateToken and then served until its expiry with no refresh; a
refused one changes nothing; a token file may say "Bearer <jwt>"; a login RegScale answers
"MFA token required" is `mfa_required`, and an MFA identity refreshes with a fresh code."""

import os
import time
import uuid

import pytest

import tokens
from conftest import daemons, workdir  # noqa: F401 - pytest fixtures
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD, USERNAME, needs_binaries, wait_until

pytestmark = needs_binaries

MFA_USER, MFA_PASSWORD, MFA_CODE = "carol", "carol-Pa55-e2e", "424242"


def guid(username):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "regscale-test-server:" + username))


def paste(d, token, timeout=15.0):
    return d.rpc({"op": "login", "token": token}, timeout=timeout)


def test_pasted_token_is_checked_then_served_without_refresh(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    before = srv.control.stats()
    pasted = srv.control.token(username="bob", lifetime=7200)
    reply = paste(d, "Bearer " + pasted)
    assert reply["ok"] is True, reply
    assert reply["kind"] == "pasted" and reply["state"] == "valid"
    assert reply["user_id"] == guid("bob") and reply["username"] == "bob"
    assert reply["next_refresh"] is None
    # It was asked about once, with the token (and without "Bearer " twice).
    after = srv.control.stats()
    assert after.get("validate", 0) == before.get("validate", 0) + 1, after
    got = d.get()
    assert got["ok"] and got["token"] == pasted and got["kind"] == "pasted"
    assert got["username"] == "bob"
    st = d.status()
    assert st["kind"] == "pasted" and st["next_refresh"] is None
    assert "paste a new one" in st["message"], st
    # Only a person renews it: refresh and a get asking beyond its life say so at once.
    r = d.rpc({"op": "refresh"})
    assert r["ok"] is False and r["error"] == "login_required" and r["kind"] == "pasted", r
    r = d.get(min_valid=3 * 3600)
    assert r["ok"] is False and r["error"] == "token_expired" and r["kind"] == "pasted", r
    assert "paste a new one" in r["message"]
    # The configured account's scheduled refresh is gone with it: no login since.
    time.sleep(0.5)
    assert srv.control.stats()["login"] == after["login"]


def test_refused_pasted_token_changes_nothing(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    held, st0 = d.get()["token"], d.status()
    # Signed with another key: RegScale's validateToken answers 401.
    forged = tokens.make_jwt({"id": guid("mallory"), "sub": "mallory", "iat": int(time.time()),
                              "exp": int(time.time()) + 3600}, key=b"not-the-server-key")
    r = paste(d, forged)
    assert r["ok"] is False and r["error"] == "credentials_rejected", r
    assert "nothing changed" in r["message"]
    assert d.get()["token"] == held
    st = d.status()
    for k in ("state", "kind", "user_id", "username", "next_refresh", "last_error"):
        assert st[k] == st0[k], (k, st0, st)


@pytest.mark.parametrize("token,why", [
    ("not-a-jwt", "not a JWT"),
    ("Bearer ", "empty"),
    (None, "expired"),
])
def test_unusable_pasted_token_is_bad_request(lg, token, why):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    held = d.get()["token"]
    if token is None:
        token = srv.control.token(username="bob", exp=int(time.time()) - 10)
    validations = srv.control.stats().get("validate", 0)
    r = paste(d, token)
    assert r["ok"] is False, r
    assert r["error"] in ("bad_request",), r
    assert d.get()["token"] == held
    assert srv.control.stats().get("validate", 0) == validations  # never sent on


def test_pasted_token_with_password_is_bad_request(lg):
    d = lg.daemon(lg.server())
    d.wait_valid()
    r = d.rpc({"op": "login", "token": "a.b.c", "password": "x"})
    assert r["ok"] is False and r["error"] == "bad_request"
    assert "not both" in r["message"]


def test_pasted_token_without_url_is_taken_as_is(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv, username=None, password=None, start=False)
    with open(d.config) as f:
        text = "".join(line for line in f if not line.startswith("url ="))
    with open(d.config, "w") as f:
        f.write(text)
    d.start()
    wait_until(lambda: d.rpc({"op": "ping"}).get("pong"), 5)
    pasted = srv.control.token(username="bob", lifetime=600)
    r = paste(d, pasted)
    assert r["ok"] is True and r["kind"] == "pasted", r
    assert srv.control.stats().get("validate", 0) == 0
    assert d.get()["token"] == pasted


def test_token_file_may_say_bearer(daemons):  # noqa: F811
    jwt = tokens.make_jwt({"id": "svc-1", "sub": "svc", "iat": int(time.time()),
                           "exp": int(time.time()) + 3600})
    d = daemons(token="Bearer " + jwt)
    got = d.rpc({"op": "get"})
    assert got["ok"] is True and got["token"] == jwt, got


def mfa_env(lg):
    srv = lg.server(lifetime=3600, users=["{}:{}".format(USERNAME, PASSWORD),
                                         "{}:{}:{}".format(MFA_USER, MFA_PASSWORD, MFA_CODE)])
    d = lg.daemon(srv)
    d.wait_valid()
    return srv, d


def test_login_without_a_needed_code_is_mfa_required(lg):
    srv, d = mfa_env(lg)
    held = d.get()["token"]
    r = d.rpc({"op": "login", "username": MFA_USER, "password": MFA_PASSWORD}, timeout=15)
    assert r["ok"] is False and r["error"] == "mfa_required", r
    assert d.get()["token"] == held  # nothing changed
    r = d.rpc({"op": "login", "username": MFA_USER, "password": MFA_PASSWORD,
               "mfa": MFA_CODE}, timeout=15)
    assert r["ok"] is True and r["state"] == "login_required", r
    assert r["username"] == MFA_USER


def test_mfa_identity_refreshes_with_a_fresh_code(lg):
    srv, d = mfa_env(lg)
    r = d.rpc({"op": "login", "username": MFA_USER, "password": MFA_PASSWORD,
               "mfa": MFA_CODE}, timeout=15)
    assert r["ok"] is True, r
    first = d.get()["token"]
    r = d.rpc({"op": "refresh"})
    assert r["ok"] is False and r["error"] == "login_required" and r["kind"] == "login", r
    logins = srv.control.stats()["login"]
    time.sleep(1.1)  # a new iat, so a new token
    r = d.rpc({"op": "refresh", "mfa": MFA_CODE}, timeout=15)
    assert r["ok"] is True and r["state"] == "login_required", r
    assert srv.control.stats()["login"] == logins + 1
    assert d.get()["token"] != first
    # The code is spent: the next refresh needs another.
    r = d.rpc({"op": "refresh"})
    assert r["error"] == "login_required", r


def test_configured_mfa_account_waits_for_a_code(lg):
    srv = lg.server(lifetime=3600, users=["{}:{}:{}".format(MFA_USER, MFA_PASSWORD, MFA_CODE)])
    d = lg.daemon(srv, username=MFA_USER, password=MFA_PASSWORD)
    st = d.wait_state(["credentials_rejected"], timeout=10)
    assert "MFA" in st["last_error"], st
    r = d.rpc({"op": "refresh"})
    assert r["ok"] is False and r["error"] == "login_required", r
    r = d.rpc({"op": "refresh", "mfa": MFA_CODE}, timeout=15)
    assert r["ok"] is True and r["state"] == "login_required", r
    assert d.get()["ok"] is True
