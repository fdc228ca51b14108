# SPDX-License-Identifier: MIT
"""Every server fault of the test RegScale server, end to end: the daemon's state and last
error while it lasts, the token kept being served while valid, the retry policy (backoff,
Retry-After, never for rejected credentials), and recovery once the fault is cleared.

Each test prints "LOGINS <case>: <n>" (the logins the server saw); run with -s to see them.
"""

import json
import os
import threading
import time

import pytest

from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import (PASSWORD, USERNAME, claims_of, needs_binaries, rpc, wait_until,
                      write_file)

pytestmark = needs_binaries


def report(case, srv):
    stats = srv.control.stats()
    print("LOGINS %s: %d (ok %d)" % (case, stats["login"], stats["login_ok"]))
    return stats


def login_gaps(srv):
    times = [e["time"] for e in srv.control.stats()["logins"]]
    return [b - a for a, b in zip(times, times[1:])]


# --- transient faults with a token in hand ---------------------------------------------


@pytest.mark.parametrize("fault,params,error_text,count", [
    ("down", {}, "login failed", 1),
    ("status", {"status": 500}, "500", 1),
    ("status", {"status": 502}, "502", 1),
    ("status", {"status": 503}, "503", 1),
], ids=["down", "500", "502", "503"])
def test_transient_fault_keeps_serving_and_recovers(lg, fault, params, error_text, count):
    """count 1: the refresh fails, the first retry works; count 2: the daemon retries by
    itself while the fault lasts and recovers after it ends."""
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    token = d.get()["token"]
    srv.control.fault(fault, count=count, **params)

    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 6 and out == "", (rc, out, err)
    st = d.status()
    assert st["state"] == "retrying", st
    assert st["retries"] == 1 and st["next_refresh"] is not None, st
    assert error_text in st["last_error"], st
    # The token in hand is still served, and the client prints it.
    r = d.get()
    assert r["ok"] is True and r["token"] == token, r
    rc, out, err = d.client("get")
    assert rc == 0 and out.strip() == token

    st = d.wait_valid(timeout=1.6 + 2.6 * (count - 1))
    assert st["retries"] == 0 and st["last_error"] is None, st
    r = d.get()
    assert r["ok"] is True and r["token"] != token
    stats = report(fault + str(params.get("status", "")), srv)
    assert stats["login_ok"] == 2, stats
    assert stats["login"] == 2 + count, stats  # first, the failures, the recovery
    # (The retry gaps are checked in test_backoff_grows_exponentially, which does not
    # call get during the backoff.)


def test_backoff_grows_exponentially(lg):
    """No token yet, two failures: retries after ~1 s, then ~2 s."""
    srv = lg.server()
    srv.control.fault("malformed_json", count=2)
    d = lg.daemon(srv)
    # Watch with status only: it never starts a login.
    st = d.wait_state("retrying")
    assert st["retries"] == 1, st
    assert wait_until(lambda: d.status()["retries"] == 2, 2.5), d.log_text()
    st = d.wait_valid(timeout=4)
    assert st["retries"] == 0 and st["last_error"] is None, st
    gaps = login_gaps(srv)
    assert len(gaps) == 2, gaps
    # 1 s, then 2 s, each +-20 % (plus the helper's run time).
    assert 0.75 <= gaps[0] <= 1.6, gaps
    assert 1.55 <= gaps[1] <= 2.7, gaps
    report("malformed_json x2 (backoff)", srv)


def test_rate_limit_retry_after_is_honoured(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    srv.control.fault("rate_limit", count=1, retry_after=2)
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 6, (rc, out, err)
    st = d.status()
    assert st["state"] == "retrying" and "429" in st["last_error"], st
    assert st["next_refresh"] - time.time() >= 0.9, st
    assert d.get()["ok"] is True
    # Wait with status only (see the next test for clients polling get).
    assert wait_until(lambda: srv.control.stats()["login_ok"] == 2, 6, 0.1), d.log_text()
    gaps = login_gaps(srv)
    # The first retry's backoff is 1 s +-20 %: this is the Retry-After.
    assert gaps[-1] >= 1.97, "retried %.2f s after a Retry-After: 2" % gaps[-1]
    assert gaps[-1] <= 3.2, gaps
    d.wait_valid()
    stats = report("429 Retry-After 2", srv)
    assert stats["login"] == 3, stats


def test_rate_limit_retry_after_with_clients_polling(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    srv.control.fault("rate_limit", count=1, retry_after=2)
    # Fail the login at ~0.6 s past a whole second, so rounding down loses ~0.6 s.
    time.sleep((1.6 - time.time() % 1.0) % 1.0)
    r = d.rpc({"op": "refresh"}, timeout=30)
    assert r["error"] == "login_failed", r
    end = time.monotonic() + 3.5
    while time.monotonic() < end and srv.control.stats()["login_ok"] < 2:
        assert d.get()["ok"] is True
        time.sleep(0.05)
    gaps = login_gaps(srv)
    report("429 Retry-After 2, polling", srv)
    assert len(gaps) == 2, gaps
    assert gaps[-1] >= 1.97, "retried %.2f s after a Retry-After: 2" % gaps[-1]


def test_hang_past_total_timeout(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv, connect_timeout=2, total_timeout=3)
    d.wait_valid()
    token = d.get()["token"]
    srv.control.fault("hang", count=1, seconds=30)

    result = {}

    def refresh():
        t0 = time.monotonic()
        result["reply"] = rpc(d.socket, {"op": "refresh"}, timeout=30)
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=refresh)
    t.start()
    assert wait_until(lambda: srv.control.stats()["login"] == 2, 3)
    # Meanwhile clients are served at once.
    st = d.status()
    assert st["state"] == "refreshing" and st["login_in_flight"] is True, st
    for _ in range(10):
        t0 = time.monotonic()
        r = d.get()
        assert r["ok"] is True and r["token"] == token
        assert time.monotonic() - t0 < 0.1
        time.sleep(0.1)
    t.join(30)
    r = result["reply"]
    assert r["ok"] is False and r["error"] == "login_failed", r
    assert 2.5 <= result["took"] <= 10.5, result["took"]
    st = d.status()
    assert st["state"] in ("retrying", "refreshing"), st
    assert "time" in st["last_error"], st  # "timed out" / "did not finish in time"
    assert d.get()["token"] == token
    # Retried after the backoff: the fault was for one request only.
    st = d.wait_valid(timeout=5)
    assert st["retries"] == 0
    assert d.children() == [], "login helper left behind"
    stats = report("hang 30 s, total_timeout 3 s", srv)
    assert stats["login"] == 3 and stats["login_ok"] == 2, stats


# --- protocol faults, no token yet -----------------------------------------------------


@pytest.mark.parametrize("fault,params,error_text", [
    ("malformed_json", {}, "not JSON"),
    ("missing_fields", {}, "auth_token"),
    ("bad_token_chars", {}, "JWT"),
    ("huge_body", {}, "too large"),
    ("huge_body", {"no_length": True}, "too large"),
    ("redirect", {}, "redirect"),
    ("redirect", {"location": "https://elsewhere.example/api"}, "elsewhere.example"),
    ("raw", {"status": 418, "body": "{}"}, "418"),
], ids=["malformed_json", "missing_fields", "bad_token_chars", "huge_body",
        "huge_body_chunked", "redirect_http", "redirect_other_host",
        "status_418"])
def test_protocol_fault_then_recovery(lg, fault, params, error_text):
    srv = lg.server()
    srv.control.fault(fault, count=1, **params)
    d = lg.daemon(srv)
    st = d.wait_state("retrying")
    assert error_text in st["last_error"], st
    assert st["retries"] == 1, st
    assert st["kind"] is None and st["expires_at"] is None, st
    d.check_refused_no_token()
    # One retry after ~1 s succeeds.
    st = d.wait_valid(timeout=4)
    assert d.get()["ok"] is True
    stats = report(fault + ("-" + json.dumps(params) if params else ""), srv)
    assert stats["login"] == 2, stats
    assert stats["logins"][-1]["status"] == 200 and stats["logins"][-1]["fault"] is None


def test_double_encoded_response_works(lg):
    srv = lg.server(lifetime=1200)
    srv.control.fault("double_encoded")
    d = lg.daemon(srv)
    d.wait_valid()
    r = d.get()
    assert r["ok"] is True and r["kind"] == "login", r
    assert 1190 <= r["expires_in"] <= 1200
    stats = report("double_encoded", srv)
    assert stats["login"] == 1 and stats["logins"][0]["fault"] == "double_encoded"


def test_double_encoded_v2_works(lg):
    srv = lg.server(require_v2=True)
    srv.control.fault("double_encoded")
    d = lg.daemon(srv, login_api="v2")
    d.wait_valid()
    assert d.get()["ok"] is True
    assert srv.control.stats()["login"] == 1


def test_token_without_exp_gets_default_lifetime(lg):
    srv = lg.server()
    srv.control.fault("no_exp", count=1)
    d = lg.daemon(srv, default_lifetime=90)
    st = d.wait_valid()
    r = d.get()
    assert r["ok"] is True, r
    assert "exp" not in claims_of(r["token"])
    assert 85 <= r["expires_in"] <= 90, r
    # Refreshed at ~2/3 of the default lifetime.
    assert 0.6 * 90 - 2 <= st["next_refresh"] - st["last_refresh"] <= 0.74 * 90 + 1, st
    report("no_exp", srv)


def test_token_without_exp_uses_expires_in(lg):
    srv = lg.server()
    srv.control.fault("no_exp", count=1, expires_in=300)
    d = lg.daemon(srv, default_lifetime=90)
    d.wait_valid()
    r = d.get()
    assert 295 <= r["expires_in"] <= 300, r


def test_clock_skew_counts_lifetime_from_receipt(lg):
    """A server clock an hour ahead: exp - iat (600 s) counts from the local receipt."""
    srv = lg.server(lifetime=600)
    srv.control.fault("skew", count=1, seconds=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    r = d.get()
    assert claims_of(r["token"])["exp"] - time.time() > 3600
    assert 595 <= r["expires_in"] <= 600, r


def test_already_expired_token_is_refused(lg):
    srv = lg.server(lifetime=60)
    srv.control.fault("expired")
    d = lg.daemon(srv)
    st = d.wait_state(("retrying", "valid"))
    r = d.get()
    report("expired", srv)
    assert "token" not in r, "served a token with exp %d, now %d" % (
        claims_of(r["token"])["exp"], time.time())
    assert st["state"] == "retrying" and "expired" in st["last_error"], st


@pytest.mark.parametrize("with_iat", [True, False], ids=["exp_before_iat", "no_iat_exp_past"])
def test_token_expired_on_arrival_is_refused(lg, with_iat):
    """Tokens expired whatever the clocks: exp before iat, or exp past and no iat."""
    import regscale_server
    srv = lg.server()
    now = int(time.time())
    claims = claims_of(srv.control.token(username=USERNAME, exp=now - 30))
    if with_iat:
        claims["iat"] = now
    else:
        del claims["iat"]
    tok = regscale_server.make_jwt(claims)
    srv.control.fault("bad_token_chars", token=tok)  # sends tok verbatim
    d = lg.daemon(srv)
    d.secrets.add(tok)
    st = d.wait_state("retrying")
    assert "expired" in st["last_error"], st
    r = d.get()
    assert r["ok"] is False and "token" not in r, r
    rc, out, err = d.client("get")
    assert rc != 0 and out == ""
    report("expired on arrival (%s)" % ("exp < iat" if with_iat else "no iat"), srv)


# --- rejected credentials: never retried -------------------------------------------------


def test_wrong_password_one_attempt_only(lg):
    """400, 401 and 403 each produce exactly one login attempt over 7.5 s (automatic
    retries would have come after about 1, 3 and 7 s), whatever clients do meanwhile."""
    cases = [("wrong_password", {"status": 400}), ("wrong_password", {"status": 403}),
             ("status", {"status": 401})]
    envs = []
    for fault, params in cases:
        srv = lg.server()
        srv.control.fault(fault, **params)
        envs.append((params["status"], srv, lg.daemon(srv)))
    t0 = time.monotonic()
    for code, srv, d in envs:
        st = d.wait_state("credentials_rejected")
        assert str(code) in st["last_error"], st
        assert st["next_refresh"] is None and st["login_in_flight"] is False, st
    # Clients asking for tokens, fresher tokens or a refresh do not cause another attempt.
    for code, srv, d in envs:
        r = d.get()
        assert r["ok"] is False and r["error"] == "credentials_rejected", r
        rc, out, err = d.client("get")
        assert rc == 6 and out == "", (rc, err)
        rc, out, err = d.client("get", "--min-valid", "60")
        assert rc == 6, (rc, err)
        rc, out, err = d.client("refresh")
        assert rc == 6, (rc, err)
        rc, out, err = d.client("status")
        assert rc == 0 and "reject" in out, out
    time.sleep(max(0.0, 7.5 - (time.monotonic() - t0)))
    for code, srv, d in envs:
        assert d.state() == "credentials_rejected"
        stats = report("wrong password %d over 7.5 s" % code, srv)
        assert stats["login"] == 1, stats
        assert len([line for line in d.log_text().splitlines()
                    if line.startswith("<3>") and "rejected" in line]) == 1, d.log_text()


# --- TLS -------------------------------------------------------------------------------


def test_certificate_from_another_ca_is_refused(lg):
    srv = lg.server(other_ca=True)
    d = lg.daemon(srv)
    st = d.wait_state("retrying")
    assert "certificate" in st["last_error"].lower(), st
    d.check_refused_no_token(client=False)
    stats = report("certificate from another CA", srv)
    assert stats["login"] == 0 and stats["tls_errors"] >= 1, stats


def test_plain_http_to_a_non_loopback_url_is_refused(lg):
    srv = lg.server()
    d = lg.daemon(srv, url="http://regscale.example.test", start=False)
    d.start(wait=False)
    d.returncode = d.proc.wait(5)
    assert d.returncode == 1
    assert "https" in d.log_text(), d.log_text()
    assert srv.control.stats()["requests"] == 0


# --- the helper process ----------------------------------------------------------------


def fake_helper(workdir, body):
    path = os.path.join(workdir, "fake-helper")
    write_file(path, "#!/bin/sh\n" + body + "\n", mode=0o700)
    return path


def test_hanging_helper_is_killed(lg):
    srv = lg.server()
    helper = fake_helper(lg.workdir, "exec sleep 60")
    d = lg.daemon(srv, helper=helper, connect_timeout=1, total_timeout=1)
    st = d.wait_state("logging_in", timeout=2)
    pids = d.children()
    assert len(pids) == 1, pids
    assert d.get()["error"] == "no_token"
    # Backstop: connect + total timeout + 5 s grace.
    st = d.wait_state("retrying", timeout=10, interval=0.2)
    assert "killed" in st["last_error"], st
    assert not os.path.exists("/proc/%d" % pids[0]), "helper still running"


def test_crashing_helper_is_a_transient_failure(lg):
    srv = lg.server()
    # It reads its whole input first (see the next test for one that does not).
    helper = fake_helper(lg.workdir, "cat >/dev/null; kill -SEGV $$")
    d = lg.daemon(srv, helper=helper)
    st = d.wait_state("retrying")
    assert "crash" in st["last_error"], st
    assert st["retries"] >= 1
    # It keeps retrying (transient), with backoff.
    assert wait_until(lambda: d.status()["retries"] >= 2, 3)
    d.check_refused_no_token(client=False)


def test_helper_dying_before_reading_its_input(lg):
    """A helper that dies at once: each refresh fails as transient; the daemon lives. The
    race (helper gone before the daemon writes the request) is hit within a few hundred
    attempts."""
    srv = lg.server()
    helper = fake_helper(lg.workdir, "exec 0<&-; kill -SEGV $$")
    d = lg.daemon(srv, helper=helper, password=None)
    r = d.rpc({"op": "login", "password": PASSWORD})
    assert r["ok"] is False and r["error"] == "login_failed", r
    for _ in range(1500):
        try:
            r = d.rpc({"op": "refresh"})
        except (OSError, AssertionError):
            break
        assert r["error"] == "login_failed", r
    rc = d.proc.poll() if wait_until(lambda: d.proc.poll() is not None, 0.2) else None
    d.returncode = rc  # a dead daemon is this test's failure, not a teardown error
    assert rc is None, "regscale-tokend died with %s; log tail:\n%s" % (
        rc, d.log_text()[-600:])
    assert d.rpc({"op": "ping"})["pong"] is True


# --- secrets never logged ------------------------------------------------------------------


def test_log_never_holds_password_or_token(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv, args=["--debug"])
    d.wait_valid()
    good = d.get()["token"]
    bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrLXRlc3QtdG9rZW4tcGF5bG9hZCJ9.c2lnbmF0dXJl+/=!"
    d.secrets.add(bad)
    for fault, params in [("bad_token_chars", {"token": bad}), ("malformed_json", {}),
                          ("huge_body", {}), ("status", {"status": 500}),
                          ("redirect", {}), ("down", {})]:
        srv.control.fault(fault, count=1, **params)
        d.rpc({"op": "refresh"}, timeout=30)
    srv.control.clear_faults()
    wrong = "An0ther-wrong-Passw0rd"
    d.secrets.add(wrong)
    r = d.rpc({"op": "login", "username": USERNAME, "password": wrong}, timeout=30)
    assert r["error"] == "credentials_rejected", r
    r = d.rpc({"op": "login", "username": USERNAME, "password": PASSWORD}, timeout=30)
    assert r["ok"] is True, r
    d.get()
    text = d.log_text()
    assert "<7>" in text, "no debug lines: is --debug on?"
    assert PASSWORD not in text and wrong not in text
    problems = d.check_log_clean()
    assert not problems, problems
    assert good.split(".")[2] not in text
