# SPDX-License-Identifier: MIT
"""get / status / ping through the real client, and how the daemon treats the token's exp."""

import json
import time

from conftest import URL
from tokens import claims_of, iso8601, make_jwt, service_token

GET_FIELDS = ["ok", "v", "kind", "user_id", "url", "expires_at", "expires", "expires_in",
              "token"]


def test_get_raw_is_exactly_the_token(daemon):
    rc, out, err = daemon.client("get")
    assert (rc, err) == (0, "")
    assert out == daemon.token + "\n"

    rc, out, err = daemon.client("get", "--format", "raw")
    assert (rc, out, err) == (0, daemon.token + "\n", "")


def test_get_bearer(daemon):
    rc, out, err = daemon.client("get", "--format", "bearer")
    assert (rc, out, err) == (0, "Bearer " + daemon.token + "\n", "")


def test_get_header(daemon):
    rc, out, err = daemon.client("get", "--format", "header")
    assert (rc, out, err) == (0, "Authorization: Bearer " + daemon.token + "\n", "")


def test_get_json(daemon):
    rc, out, err = daemon.client("get", "--format", "json")
    assert (rc, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1, "one reply line expected: %r" % out
    pairs = json.loads(out, object_pairs_hook=list)
    reply = dict(pairs)
    claims = claims_of(daemon.token)
    assert reply["ok"] is True and reply["v"] == 1
    assert reply["token"] == daemon.token
    # The daemon's fields as it sent them, token last; then the client's two
    # (test_identity.py).
    assert [k for k, _ in pairs][-3:] == ["token", "socket", "profile"], out
    assert (reply["socket"], reply["profile"]) == (daemon.socket, None)
    assert reply["kind"] == "service"
    assert reply["user_id"] == claims["id"]
    assert reply["url"] == URL
    assert reply["expires_at"] == claims["exp"]
    assert reply["expires"] == iso8601(claims["exp"])
    assert isinstance(reply["expires_in"], int)
    assert 3500 <= reply["expires_in"] <= 3600
    assert set(GET_FIELDS) <= set(reply)


def test_get_raw_protocol_matches_spec(daemon):
    lines = daemon.request(b'{"op":"get","v":1}\n')
    assert len(lines) == 1
    pairs = json.loads(lines[0], object_pairs_hook=list)
    assert [k for k, _ in pairs][-1] == "token"
    assert dict(pairs)["token"] == daemon.token


def test_status_human(daemon):
    rc, out, err = daemon.client("status")
    assert (rc, err) == (0, "")
    claims = claims_of(daemon.token)
    low = out.lower()
    assert "valid" in low, out
    assert claims["id"] in out, out
    assert URL in out, out
    assert "expir" in low, out
    # the expiry is shown as a date (ISO or similar), not only as a relative time
    assert iso8601(claims["exp"])[:10] in out, out
    assert daemon.token.split(".")[2] not in out


def test_status_json(daemon):
    rc, out, err = daemon.client("status", "--json")
    assert (rc, err) == (0, "")
    assert out.count("\n") == 1
    s = json.loads(out)
    claims = claims_of(daemon.token)
    assert s["ok"] is True and s["v"] == 1
    assert s["state"] == "valid"
    assert isinstance(s["message"], str) and s["message"] and "\n" not in s["message"]
    assert s["kind"] == "service"
    assert s["user_id"] == claims["id"]
    assert s["url"] == URL
    assert s["expires_at"] == claims["exp"]
    assert s["expires"] == iso8601(claims["exp"])
    assert isinstance(s["expires_in"], int) and 3500 <= s["expires_in"] <= 3600
    for k in ("last_refresh", "next_refresh", "last_error"):
        assert k in s
    assert s["last_error"] is None
    assert isinstance(s["last_refresh"], int)
    assert abs(s["last_refresh"] - time.time()) < 60
    assert s["retries"] == 0
    assert s["version"] == "0.1.0"
    assert s["pid"] == daemon.pid
    assert isinstance(s["uptime"], int) and 0 <= s["uptime"] < 60
    assert "token" not in s
    assert daemon.token.split(".")[2] not in out


def test_ping(daemon):
    rc, out, err = daemon.client("ping")
    assert rc == 0, err
    assert err == ""
    assert daemon.rpc({"op": "ping"}) == {"ok": True, "v": 1, "pong": True}


def test_token_without_exp_has_null_expiry(daemons):
    token = service_token(exp_in=None)
    d = daemons(token=token)
    rc, out, err = d.client("get", "--format", "json")
    assert (rc, err) == (0, "")
    reply = json.loads(out)
    assert reply["token"] == token
    assert reply["expires_at"] is None
    assert reply["expires"] is None
    assert reply["expires_in"] is None
    rc, out, _ = d.client("get")
    assert (rc, out) == (0, token + "\n")
    s = json.loads(d.client("status", "--json")[1])
    assert s["state"] == "valid"
    assert s["expires_at"] is None and s["expires"] is None and s["expires_in"] is None


def test_user_id_falls_back_to_sub(daemons):
    now = int(time.time())
    token = make_jwt({"sub": "only-sub", "iat": now, "exp": now + 600})
    d = daemons(token=token)
    reply = json.loads(d.client("get", "--format", "json")[1])
    assert reply["user_id"] == "only-sub"


def test_expired_at_start(daemons):
    token = service_token(exp_in=-60)
    d = daemons(token=token)
    for fmt in ("raw", "json", "bearer"):
        rc, out, err = d.client("get", "--format", fmt)
        assert rc == 4, (fmt, rc, out, err)
        assert out == ""
        assert "expired" in err.lower()
        assert err.startswith("regscale-token: ") and err.count("\n") == 1, err
    reply = d.rpc({"op": "get"})
    assert reply["ok"] is False and reply["error"] == "token_expired"
    assert "token" not in reply
    assert token.split(".")[2] not in json.dumps(reply)
    rc, out, err = d.client("status", "--json")
    s = json.loads(out)
    assert s["state"] == "expired"
    assert s["expires_at"] == claims_of(token)["exp"]


def test_token_expires_while_running(daemons):
    token = service_token(exp_in=3)
    exp = claims_of(token)["exp"]
    d = daemons(token=token)
    rc, out, err = d.client("get")
    assert (rc, out, err) == (0, token + "\n", "")
    # exp is whole seconds: one second past it the token is expired whatever the rounding.
    time.sleep(max(0.0, exp + 1.05 - time.time()))
    rc, out, err = d.client("get")
    assert rc == 4, (rc, out, err)
    assert out == ""
    assert "expired" in err.lower()
    reply = d.rpc({"op": "get"})
    assert reply["error"] == "token_expired"
    assert json.loads(d.client("status", "--json")[1])["state"] == "expired"


def test_not_a_jwt_is_refused(daemons):
    d = daemons(token="this-is-not-a-jwt")
    rc, out, err = d.client("get")
    assert rc == 4, (rc, out, err)
    assert out == ""
    assert "this-is-not-a-jwt" not in err
    reply = d.rpc({"op": "get"})
    assert reply["ok"] is False and reply["error"] == "no_token"
    s = json.loads(d.client("status", "--json")[1])
    assert s["state"] == "no_token"
    errors = d.error_lines()
    assert any(d.token_file in line for line in errors), d.log_text()
    assert "this-is-not-a-jwt" not in d.log_text()


def test_missing_token_file_gives_no_token(daemons):
    d = daemons()  # token_file configured but never written
    reply = d.rpc({"op": "get"})
    assert reply["error"] == "no_token"
    rc, out, err = d.client("get")
    assert (rc, out) == (4, "")
    assert err.startswith("regscale-token: ")


def test_token_file_created_later_is_picked_up(daemons):
    d = daemons()
    assert d.get_token() == "no_token"
    token = service_token()
    d.replace_token(token)
    d.replace_token(token)
    assert d.wait_token(token), d.log_text()
