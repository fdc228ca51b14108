# SPDX-License-Identifier: MIT
"""Background refresh end to end: 6-second tokens refreshed before they expire, clients
never handed an expired token, single-flight logins that never block a get, get
--min-valid, and SIGHUP with a changed password after a rejection."""

import threading
import time

from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import (PASSWORD, claims_of, concurrent_gets, needs_binaries,
                      percentile, rpc, wait_until)

pytestmark = needs_binaries


def poll_gets(d, seconds, interval=0.1):
    """Polls get every interval for seconds; returns [(receipt_time, reply)]."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = d.get()
        out.append((time.time(), r))
        time.sleep(interval)
    return out


def test_refresh_before_expiry_with_6s_tokens(lg):
    srv = lg.server(lifetime=6)
    d = lg.daemon(srv)
    d.wait_valid()
    seen = poll_gets(d, 15.0)

    errors = [(t, r) for t, r in seen if not r.get("ok")]
    assert not errors, "get failed during refresh: %s" % errors[:3]
    stale = []
    for t, r in seen:
        exp = claims_of(r["token"])["exp"]
        if not exp > t:
            stale.append((t, exp))
        assert r["expires_in"] > 0, r
    assert not stale, "expired tokens served (receipt time, exp): %s" % stale[:5]
    tokens = []
    for _, r in seen:
        if not tokens or tokens[-1] != r["token"]:
            tokens.append(r["token"])
    assert len(tokens) >= 3, "only %d distinct tokens in 15 s" % len(tokens)

    logins = srv.control.stats()["logins"]
    print("LOGINS 6 s tokens over 15 s: %d, gaps %s" % (len(logins), [
        "%.2f" % (b["time"] - a["time"]) for a, b in zip(logins, logins[1:])]))
    assert all(e["status"] == 200 for e in logins), logins
    # 15 s of 6 s tokens refreshed at ~2/3 (4 s +-10 %): 3 or 4 refreshes plus the first.
    assert 4 <= len(logins) <= 6, [e["time"] for e in logins]
    for prev, nxt in zip(logins, logins[1:]):
        issued_exp = int(prev["time"]) + 6
        assert nxt["time"] < issued_exp, "refresh after the previous token expired"
        gap = nxt["time"] - prev["time"]
        # Planned at 3.6..4.4 s; 1.9 tolerates the whole-second rounding of next_refresh
        # that lets a polling get start it early (see test_faults.py, Retry-After test).
        assert 1.9 <= gap <= 5.0, "refresh gap %.2f s is not ~2/3 of 6 s" % gap
    st = d.status()
    assert st["state"] in ("valid", "refreshing") and st["retries"] == 0, st


def test_min_valid_forces_a_refresh(lg):
    srv = lg.server(lifetime=120)
    d = lg.daemon(srv)
    d.wait_valid()
    first = d.get()["token"]
    assert srv.control.stats()["login"] == 1

    # Valid long enough: served from the cache.
    rc, out, err = d.client("get", "--min-valid", "60")
    assert rc == 0 and out.strip() == first, (rc, err)
    assert srv.control.stats()["login"] == 1

    # Longer than the remaining lifetime: the daemon logs in and answers the new token.
    srv.control.config(lifetime=3600)
    time.sleep(1.05)
    rc, out, err = d.client("get", "--min-valid", "10m")
    assert rc == 0, (rc, out, err)
    tok = out.strip()
    assert tok != first
    assert claims_of(tok)["exp"] - time.time() >= 600
    assert srv.control.stats()["login"] == 2
    assert d.get()["token"] == tok

    # Longer than any token the server gives: one refresh, then token_expired (exit 4).
    rc, out, err = d.client("get", "--min-valid", "2h", "--wait", "10")
    assert rc == 4 and out == "", (rc, out, err)
    assert srv.control.stats()["login"] == 3
    # The token is still served to clients without min_valid.
    assert d.get()["ok"] is True


def test_min_valid_raw_waits_for_the_login(lg):
    srv = lg.server(lifetime=60)
    d = lg.daemon(srv)
    d.wait_valid()
    srv.control.config(lifetime=600)
    srv.control.fault("slow", count=1, seconds=1.5)
    t0 = time.monotonic()
    r = d.get(min_valid=300, wait=10)
    took = time.monotonic() - t0
    assert r["ok"] is True and r["expires_in"] >= 590, r
    assert took >= 1.3, "answered before the slow login finished (%.2f s)" % took
    assert srv.control.stats()["login"] == 2


def test_concurrent_gets_during_slow_login(lg):
    """50 concurrent gets while a 5 s login is in flight are all answered at once from the
    cache; concurrent refresh requests join the one login in flight."""
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv, total_timeout=10)
    d.wait_valid()
    cached = d.get()["token"]
    srv.control.fault("slow", count=1, seconds=5)

    refreshes = []

    def refresh():
        t0 = time.monotonic()
        r = rpc(d.socket, {"op": "refresh"}, timeout=30)
        refreshes.append((time.monotonic() - t0, r))

    first = threading.Thread(target=refresh)
    first.start()
    assert wait_until(lambda: srv.control.stats()["login"] == 2, 3), "login not started"
    st = d.status()
    assert st["login_in_flight"] is True and st["state"] == "refreshing", st

    results = concurrent_gets(d.socket, 50)
    joiners = [threading.Thread(target=refresh) for _ in range(5)]
    for t in joiners:
        t.start()
    lat = []
    for latency, r in results:
        assert isinstance(r, dict), "get failed: %r" % (r,)
        assert r["ok"] is True and r["token"] == cached, r
        lat.append(latency)
    assert d.status()["login_in_flight"] is True, "the slow login was not in flight"
    print("50 gets during a slow login: p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
        percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3, max(lat) * 1e3))
    assert max(lat) < 0.1, "slowest get took %.0f ms" % (max(lat) * 1e3)

    first.join(30)
    for t in joiners:
        t.join(30)
    assert len(refreshes) == 6
    for took, r in refreshes:
        assert r["ok"] is True and r["state"] == "valid", r
    assert max(t for t, _ in refreshes) < 8
    stats = srv.control.stats()
    assert stats["login"] == 2 and stats["login_ok"] == 2, stats
    new = d.get()["token"]
    assert new != cached


def test_outage_longer_than_the_token(lg):
    """With the server failing, the token is served until it expires, never after;
    get then answers token_expired (exit 4) until a login works again."""
    srv = lg.server(lifetime=4)
    d = lg.daemon(srv)
    d.wait_valid()
    srv.control.fault("status", status=503)
    exp = claims_of(d.get()["token"])["exp"]
    seen = poll_gets(d, max(0.5, exp - time.time() + 1.0))
    served = [(t, r) for t, r in seen if r.get("ok")]
    assert served, "no token served during the outage"
    for t, r in served:
        assert claims_of(r["token"])["exp"] > t, "expired token served"
    t_last, r_last = seen[-1]
    assert r_last["ok"] is False and r_last["error"] == "token_expired", r_last
    rc, out, err = d.client("get")
    assert rc == 4 and out == "", (rc, out, err)
    st = d.status()
    assert st["state"] in ("retrying", "expired", "logging_in"), st
    assert st["retries"] >= 1 and "503" in (st["last_error"] or ""), st
    n_failed = srv.control.stats()["login"]
    print("LOGINS 503 outage outlasting a 4 s token: %d by its expiry + 1 s" % n_failed)
    # Retries were bounded by the token's end: several happened before it expired.
    assert n_failed >= 3, n_failed
    srv.control.clear_faults()
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 0, (rc, out, err)
    assert d.get()["ok"] is True


def test_sighup_with_changed_password_recovers(lg):
    srv = lg.server()
    wrong = "not-the-Right-one"
    d = lg.daemon(srv, password=wrong)
    st = d.wait_state("credentials_rejected")
    assert st["next_refresh"] is None, st
    assert srv.control.stats()["login"] == 1

    # Reload with the same wrong password: no new login attempt.
    d.sighup()
    assert d.wait_log("SIGHUP")
    time.sleep(1.5)
    assert srv.control.stats()["login"] == 1
    assert d.state() == "credentials_rejected"
    assert d.get()["error"] == "credentials_rejected"

    d.set_password_file(PASSWORD)
    d.sighup()
    st = d.wait_valid()
    assert st["retries"] == 0 and st["last_error"] is None, st
    assert d.get()["ok"] is True
    stats = srv.control.stats()
    assert stats["login"] == 2 and stats["login_ok"] == 1, stats


def test_sighup_with_valid_token_keeps_schedule(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    st1 = d.wait_valid()
    d.sighup()
    assert d.wait_log("SIGHUP")
    time.sleep(0.5)
    st2 = d.status()
    assert st2["state"] == "valid" and st2["next_refresh"] == st1["next_refresh"], (st1, st2)
    assert srv.control.stats()["login"] == 1
