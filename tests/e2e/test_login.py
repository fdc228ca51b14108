# SPDX-License-Identifier: MIT
"""Password login end to end: the daemon logs in to the test RegScale server over real
HTTPS through the login helper, from a password file, a systemd credential, or a
password sent with `regscale-token login`; `logout` forgets token and credentials."""

import time
import uuid

import pytest

from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD, USERNAME, claims_of, needs_binaries, wait_until

pytestmark = needs_binaries


def guid(username):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "regscale-test-server:" + username))


def check_login_token(d, reply, username=USERNAME):
    """Checks a get reply carries a fresh login token for username."""
    assert reply["ok"] is True, reply
    assert reply["kind"] == "login"
    assert reply["user_id"] == guid(username)
    assert reply["url"] == d.server.url
    claims = claims_of(reply["token"])
    assert claims["sub"] == username and claims["id"] == guid(username)
    assert claims["exp"] > time.time()
    assert abs(reply["expires_at"] - claims["exp"]) <= 2
    assert list(reply)[-1] == "token"


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_first_login_from_password_file(lg, api):
    srv = lg.server(lifetime=3600, require_v2=(api == "v2"))
    d = lg.daemon(srv, login_api=api)
    st = d.wait_valid()
    assert st["kind"] == "login" and st["user_id"] == guid(USERNAME)
    assert st["retries"] == 0 and st["last_error"] is None and not st["login_in_flight"]
    # Next refresh at about 2/3 of the lifetime (+-10 % jitter, whole seconds).
    assert 0.6 * 3600 - 2 <= st["next_refresh"] - st["last_refresh"] <= 0.74 * 3600 + 2, st
    check_login_token(d, d.get())

    stats = srv.control.stats()
    assert stats["login"] == 1 and stats["login_ok"] == 1, stats
    e = stats["logins"][0]
    assert e["username"] == USERNAME and e["api"] == api
    assert e["content_type"].startswith("application/json")
    assert e["user_agent"].startswith("regscale-token/"), e
    if api == "v1":
        assert e["keys"] == ["oldPassword", "password", "username"], e
    else:
        assert e["app_id"] == 1 and e["keys"] == ["appId", "oldPassword", "password",
                                                  "username"], e

    rc, out, err = d.client("get")
    assert rc == 0, err
    assert claims_of(out.strip())["sub"] == USERNAME
    rc, out, err = d.client("status")
    assert rc == 0 and "valid" in out, (out, err)
    # Nothing more: serving from the cache does not log in again.
    assert srv.control.stats()["login"] == 1


def test_v1_form_against_a_v2_only_server_fails(lg):
    """login_api matters: a v1 login to a server that wants v2 is not retried as v2 (each
    attempt counts toward the account lockout); it fails as a protocol error."""
    srv = lg.server(require_v2=True)
    d = lg.daemon(srv, login_api="v1")
    st = d.wait_state("retrying")
    assert "404" in st["last_error"], st
    assert [e["api"] for e in srv.control.stats()["logins"]] == ["v1"]
    d.check_refused_no_token()


def test_first_login_from_systemd_credential(lg):
    srv = lg.server()
    d = lg.daemon(srv, password_source="credential")
    d.wait_valid()
    check_login_token(d, d.get())
    stats = srv.control.stats()
    assert stats["login_ok"] == 1 and stats["logins"][0]["username"] == USERNAME


def test_no_credentials_waits_for_login(lg):
    srv = lg.server()
    d = lg.daemon(srv, password=None)
    time.sleep(0.3)
    st = d.status()
    assert st["state"] == "no_token", st
    assert "login" in (st["last_error"] or st["message"])
    assert d.get()["error"] == "no_token"
    rc, out, err = d.client("get")
    assert rc == 4 and out == "", (rc, out, err)
    assert srv.control.stats()["login"] == 0


def test_missing_login_helper_is_named_not_out_of_memory(lg):
    """A login helper that is not there makes a failed login that names it and is retried;
    the log does not blame memory."""
    d = lg.daemon(helper="/nonexistent/regscale-token-login")
    assert wait_until(lambda: d.status()["state"] == "retrying", 5), d.log_text()
    assert "cannot start the login helper" in d.status()["last_error"]
    # A reload with a new password starts its login at once, not after READY=1.
    d.set_password_file("another-" + PASSWORD)
    d.sighup()
    assert wait_until(lambda: d.log_text().count("cannot start the login helper") >= 4, 5)
    assert "out of memory" not in d.log_text()


def test_login_over_socket_then_logout(lg):
    """regscale-token login --username reads the password from stdin (not a tty);
    logout wipes the token and the credentials."""
    srv = lg.server()
    d = lg.daemon(srv, username=None, password=None)
    rc, out, err = d.client("login", "--username", USERNAME, input=PASSWORD + "\n",
                            timeout=30)
    assert rc == 0, (rc, out, err)
    assert guid(USERNAME) in out or "valid" in out, out
    assert PASSWORD not in out + err
    check_login_token(d, d.get())
    stats = srv.control.stats()
    assert stats["login"] == 1 and stats["logins"][0]["username"] == USERNAME
    assert d.state() == "valid"

    rc, out, err = d.client("logout")
    assert rc == 0, (rc, out, err)
    r = d.get()
    assert r["ok"] is False and r["error"] == "no_token", r
    assert "token" not in r
    st = d.status()
    assert st["state"] == "no_token" and st["next_refresh"] is None, st
    rc, out, err = d.client("get")
    assert rc == 4 and out == ""
    # The credentials are gone too: a refresh cannot log in.
    rc, out, err = d.client("refresh")
    assert rc == 6, (rc, out, err)
    time.sleep(0.3)
    assert srv.control.stats()["login"] == 1


def test_login_with_configured_username(lg):
    srv = lg.server()
    d = lg.daemon(srv, password=None)  # username in the configuration
    rc, out, err = d.client("login", input=PASSWORD + "\n", timeout=30)
    assert rc == 0, (rc, out, err)
    check_login_token(d, d.get())
    assert srv.control.stats()["logins"][0]["username"] == USERNAME


def test_login_without_any_username_is_refused(lg):
    srv = lg.server()
    d = lg.daemon(srv, username=None, password=None)
    r = d.rpc({"op": "login", "password": PASSWORD})
    assert r["ok"] is False and r["error"] == "bad_request", r
    assert srv.control.stats()["login"] == 0


def test_login_with_wrong_password(lg):
    srv = lg.server()
    d = lg.daemon(srv, password=None)
    wrong = "definitely-Wr0ng-password"
    d.secrets.add(wrong)
    rc, out, err = d.client("login", input=wrong + "\n", timeout=30)
    assert rc == 6, (rc, out, err)
    assert out == "" and "reject" in err, err
    assert wrong not in err
    st = d.status()
    assert st["state"] == "credentials_rejected", st
    r = d.get()
    assert r["error"] == "credentials_rejected", r
    rc, out, err = d.client("get")
    assert rc == 6, (rc, out, err)
    assert srv.control.stats()["login"] == 1

    # New credentials are the way out.
    rc, out, err = d.client("login", input=PASSWORD + "\n", timeout=30)
    assert rc == 0, (rc, out, err)
    check_login_token(d, d.get())
    assert srv.control.stats()["login"] == 2


def test_login_over_raw_socket(lg):
    srv = lg.server(lifetime=1800)
    d = lg.daemon(srv, password=None)
    r = d.rpc({"op": "login", "id": 5, "username": USERNAME, "password": PASSWORD},
              timeout=30)
    assert r["ok"] is True and r["id"] == "5", r
    assert r["state"] == "valid" and r["user_id"] == guid(USERNAME)
    assert 1790 <= r["expires_in"] <= 1800 and "token" not in r, r
    r = d.rpc({"op": "logout"})
    assert r == {"ok": True, "v": 1, "state": "no_token"}, r


def test_refresh_command_forces_a_login(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    before = d.get()["token"]
    assert srv.control.stats()["login"] == 1
    time.sleep(1.05)  # a new iat, so a new token even if jti were not random
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 0, (rc, out, err)
    assert out.strip(), "refresh printed no outcome"
    assert srv.control.stats()["login"] == 2
    after = d.get()
    assert after["token"] != before
    assert claims_of(after["token"])["iat"] > claims_of(before)["iat"]
    st = d.status()
    assert st["state"] == "valid" and st["retries"] == 0
