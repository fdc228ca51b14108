# SPDX-License-Identifier: MIT
"""Lifecycle of a password-mode daemon, end to end: the first get waits for the first
login, a reload keeps an identity given at run time, a failed login changes nothing, MFA
accounts are never refreshed unattended, a min_valid no token can meet causes no login,
expiry follows the monotonic clock as well as the wall clock, a broken configuration is
refused on reload, and a password too long for the helper never reaches the server.

Each test names, in a comment, what the daemon did before this behaviour was specified
(the reason the test fails on the older binaries).

The two clock tests step CLOCK_REALTIME (they need root or CAP_SYS_TIME, else they are
skipped) and put it back in a finally: block, at the original time plus the monotonic time
elapsed meanwhile.
"""

import contextlib
import time
import uuid

import pytest

from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD, USERNAME, claims_of, needs_binaries, wait_until, write_file

pytestmark = needs_binaries


def guid(username):
    """The test server's user id of username."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "regscale-test-server:" + username))


def log_offset(d):
    return len(d.log_text())


def new_log_lines(d, offset):
    return d.log_text()[offset:].splitlines()


def warning_lines_naming(d, offset, what):
    """The log lines since offset at warning level or worse (<0>..<4>) that contain what."""
    out = []
    for line in new_log_lines(d, offset):
        if len(line) >= 3 and line[0] == "<" and line[1] in "01234" and line[2] == ">" \
                and what in line:
            out.append(line)
    return out


def reload_and_settle(d, settle=1.0):
    """Sends SIGHUP, waits for the daemon to log it (at most 2 s; its wording is not
    asserted) and then settle seconds, so a login the reload started has reached the
    server."""
    before = d.log_text().count("SIGHUP")
    d.sighup()
    wait_until(lambda: d.log_text().count("SIGHUP") > before, 2.0)
    time.sleep(settle)


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return time.monotonic() - t0, r


@contextlib.contextmanager
def wall_clock_shifted(delta):
    """Steps CLOCK_REALTIME by delta seconds for the duration of the block; afterwards
    sets it to the original time plus the CLOCK_MONOTONIC time elapsed. Skips the test
    when the clock cannot be set."""
    rt0 = time.clock_gettime(time.CLOCK_REALTIME)
    m0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    try:
        time.clock_settime(time.CLOCK_REALTIME, rt0 + (time.clock_gettime(
            time.CLOCK_MONOTONIC) - m0) + delta)
    except PermissionError:
        pytest.skip("cannot set CLOCK_REALTIME (needs root or CAP_SYS_TIME): the wall "
                    "clock jump tests cannot run")
    try:
        yield
    finally:
        elapsed = time.clock_gettime(time.CLOCK_MONOTONIC) - m0
        time.clock_settime(time.CLOCK_REALTIME, rt0 + elapsed)


# --- 1. first use ----------------------------------------------------------------------


def test_first_get_waits_for_the_first_login(lg):
    # Old binaries: the client sends no "wait", and the daemon answers no_token ("a login
    # is in progress") at once: exit 4 instead of 0 and a token.
    srv = lg.server(lifetime=3600)
    srv.control.fault("slow", count=1, seconds=2, on="login")
    d = lg.daemon(srv)  # waits for ping only, not for the login
    took, (rc, out, err) = timed(d.client, "get", timeout=20)
    assert rc == 0, "first get during the first login: rc %d, stderr %r, %.2f s" % (
        rc, err, took)
    tok = out.strip()
    assert claims_of(tok)["sub"] == USERNAME, out
    assert d.get()["token"] == tok
    assert srv.control.stats()["login"] == 1

    # The raw protocol: "wait" bounds how long a get waits for the first login.
    srv.control.fault("slow", count=1, seconds=2, on="login")
    d1 = lg.daemon(srv)
    took, r = timed(d1.rpc, {"op": "get", "wait": 5}, timeout=15)
    assert r["ok"] is True and claims_of(r["token"])["sub"] == USERNAME, r
    assert 1.0 <= took < 5.0, "answered in %.2f s, not after the 2 s login" % took
    assert srv.control.stats()["login"] == 2


def test_get_waits_for_the_login_of_a_reload_that_changed_the_identity(lg):
    # Old binaries: the reload keeps serving admin's token while carol's login runs, and
    # the client sends no "wait": get prints admin's token at once.
    carol_pw = "carol-Pa55word-e2e"
    srv = lg.server(lifetime=3600)
    srv.control.config(user="carol:" + carol_pw)
    d = lg.daemon(srv)
    d.secrets.add(carol_pw)
    d.wait_valid()
    with open(d.config) as f:
        conf = f.read()
    assert "username = %s\n" % USERNAME in conf
    write_file(d.config, conf.replace("username = %s\n" % USERNAME, "username = carol\n"))
    d.set_password_file(carol_pw)
    srv.control.fault("slow", count=1, seconds=2, on="login")
    d.sighup()
    assert wait_until(lambda: srv.control.stats()["login"] == 2, 3.0), \
        "the reload started no login; log:\n" + d.log_text()
    # --timeout 10: the client waits up to 9 s.
    took, (rc, out, err) = timed(d.client, "--timeout", "10", "get", timeout=20)
    assert rc == 0, (rc, err)
    claims = claims_of(out.strip())
    assert claims["sub"] == "carol" and claims["id"] == guid("carol"), (claims, took)
    assert took >= 0.5, "answered in %.2f s, before carol's 2 s login ended" % took
    st = d.wait_valid()
    assert st["user_id"] == guid("carol"), st
    assert srv.control.stats()["login"] == 2


# --- 2. reload keeps a runtime identity --------------------------------------------------


def test_reload_keeps_runtime_identity(lg):
    # Old binaries: a SIGHUP re-reads username and password_file and logs in again as
    # admin: one more login and the user id changes from carol's to admin's.
    carol_pw = "carol-Pa55word-e2e"
    new_pw = "admin-N3w-Pa55word-e2e"
    srv = lg.server(lifetime=3600)
    srv.control.config(user="carol:" + carol_pw)
    d = lg.daemon(srv)
    d.secrets.update({carol_pw, new_pw})
    d.wait_valid()
    assert srv.control.stats()["login"] == 1

    # Nothing changed at all: no login.
    reload_and_settle(d)
    st = d.status()
    assert srv.control.stats()["login"] == 1
    assert st["state"] == "valid" and st["user_id"] == guid(USERNAME), st

    rc, out, err = d.client("login", "--username", "carol", input=carol_pw + "\n",
                            timeout=30)
    assert rc == 0, (rc, out, err)
    stats = srv.control.stats()
    assert stats["login"] == 2 and stats["logins"][-1]["username"] == "carol", stats
    r = d.get()
    tok = r["token"]
    assert claims_of(tok)["id"] == guid("carol") == r["user_id"], r
    st1 = d.status()
    assert st1["user_id"] == guid("carol"), st1

    # Configuration unchanged: carol stays, no login, same token and schedule.
    reload_and_settle(d)
    stats = srv.control.stats()
    assert stats["login"] == 2, "the reload logged in again: %s" % [
        (e["username"], e["status"]) for e in stats["logins"]]
    st2 = d.status()
    assert st2["state"] == "valid" and st2["user_id"] == guid("carol"), st2
    assert st2["next_refresh"] == st1["next_refresh"], (st1, st2)
    assert d.get()["token"] == tok

    # A changed password file: exactly one login, with it.
    srv.control.config(user="admin:" + new_pw)
    d.set_password_file(new_pw)
    reload_and_settle(d)
    wait_until(lambda: srv.control.stats()["login"] >= 3, 3.0)
    time.sleep(0.5)
    stats = srv.control.stats()
    assert stats["login"] == 3, [(e["username"], e["status"]) for e in stats["logins"]]
    assert stats["logins"][-1]["username"] == USERNAME and stats["login_ok"] == 3, stats
    st3 = d.wait_valid()
    assert st3["user_id"] == guid(USERNAME), st3


# --- 3. a failed login changes nothing ---------------------------------------------------


def check_unchanged(d, before_get, before_status):
    r = d.get()
    assert r["ok"] is True and r["token"] == before_get["token"], r
    st = d.status()
    assert st["state"] == "valid", st
    for k in ("user_id", "next_refresh", "expires_at", "kind"):
        assert st[k] == before_status[k], (k, before_status, st)
    rc, out, err = d.client("get")
    assert rc == 0 and out.strip() == before_get["token"], (rc, err)


def test_failed_login_with_wrong_password_changes_nothing(lg):
    # Old binaries: the wrong password replaces the working one; the state becomes
    # credentials_rejected and the refresh schedule is dropped (next_refresh null).
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    st0 = d.wait_valid()
    r0 = d.get()
    wrong = "definitely-Wr0ng-password"
    d.secrets.add(wrong)
    rc, out, err = d.client("login", "--username", USERNAME, input=wrong + "\n",
                            timeout=30)
    assert rc == 6 and out == "", (rc, out, err)
    assert srv.control.stats()["login"] == 2
    check_unchanged(d, r0, st0)
    time.sleep(1.0)
    assert srv.control.stats()["login"] == 2
    check_unchanged(d, r0, st0)


def test_failed_login_with_server_down_changes_nothing(lg):
    # Old binaries: the failed login counts as a failed refresh: state retrying, a new
    # next_refresh, and a retry about 1 s later (a third login at the server).
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    st0 = d.wait_valid()
    r0 = d.get()
    srv.control.fault("down", count=1, on="login")
    rc, out, err = d.client("login", "--username", USERNAME, input=PASSWORD + "\n",
                            timeout=30)
    assert rc == 6 and out == "", (rc, out, err)
    assert srv.control.stats()["login"] == 2
    check_unchanged(d, r0, st0)
    time.sleep(1.6)
    assert srv.control.stats()["login"] == 2, "a failed login caused a retry"
    check_unchanged(d, r0, st0)


# --- 4. MFA accounts are never refreshed unattended ------------------------------------


def test_mfa_account_is_not_refreshed_unattended(lg):
    # Old binaries: state "valid"; at 2/3 of the lifetime the daemon logs in again without
    # the one-time code (rejected: "MFA token required"), and get --min-valid 1h starts a
    # login too.
    bob_pw = "bob-Pa55word-e2e"
    srv = lg.server(lifetime=6, users=["%s:%s" % (USERNAME, PASSWORD),
                                       "bob:%s:123456" % bob_pw])
    d = lg.daemon(srv, password=None)  # no password file: no login at start
    d.secrets.add(bob_pw)
    rc, out, err = d.client("login", "--username", "bob", "--mfa", "123456",
                            input=bob_pw + "\n", timeout=30)
    t_login = time.monotonic()
    assert rc == 0, (rc, out, err)
    stats = srv.control.stats()
    assert stats["login"] == 1 and stats["logins"][0]["mfa"] is True, stats

    st = d.status()
    assert st["state"] == "login_required", st
    assert st["user_id"] == guid("bob"), st
    r = d.get()
    assert r["ok"] is True and claims_of(r["token"])["sub"] == "bob", r

    took, r = timed(d.rpc, {"op": "get", "min_valid": 3600, "wait": 5}, timeout=10)
    assert r["ok"] is False and r["error"] == "login_required" and "token" not in r, r
    assert took < 2.0, "get --min-valid waited %.2f s" % took
    took, (rc, out, err) = timed(d.client, "get", "--min-valid", "1h", timeout=20)
    assert rc != 0 and out == "", (rc, out, err)
    assert took < 2.0, "regscale-token get --min-valid 1h took %.2f s" % took
    assert srv.control.stats()["login"] == 1

    # Past 2/3 of the 6 s lifetime (and its +10 % jitter): still no login of its own.
    time.sleep(max(0.0, t_login + 5.0 - time.monotonic()))
    stats = srv.control.stats()
    assert stats["login"] == 1, "unattended MFA logins: %s" % [
        (e["username"], e["status"], e["mfa"]) for e in stats["logins"]]
    st = d.status()
    assert st["state"] == "login_required", st


# --- 5. min_valid longer than any token --------------------------------------------------


def test_min_valid_longer_than_lifetime_causes_no_login(lg):
    """The daemon cannot know the server's token lifetime (a RegScale setting) before a
    login shows it: the first get asking for more than the held token's lifetime makes one
    login; once that login brought less than asked, every further such get is answered at
    once with a clear error and makes none."""
    # Old binaries: each get starts a login, whose token cannot satisfy min_valid either:
    # five more logins.
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    assert srv.control.stats()["login"] == 1
    r = d.rpc({"op": "get", "min_valid": 7200, "wait": 5}, timeout=10)
    assert r["ok"] is False and r["error"] == "token_expired" and "token" not in r, r
    assert srv.control.stats()["login"] == 2
    for i in range(5):
        took, r = timed(d.rpc, {"op": "get", "min_valid": 7200, "wait": 5}, timeout=10)
        assert r["ok"] is False and r["error"] == "token_expired" and "token" not in r, (
            i, r)
        assert "longer than a whole token lifetime" in r["message"], r
        assert took < 1.0, "get %d took %.2f s" % (i, took)
    stats = srv.control.stats()
    assert stats["login"] == 2, "%d logins for min_valid 7200 > lifetime 3600" % (
        stats["login"] - 1)
    # Asking for what a token gives still works, from the cache.
    r = d.rpc({"op": "get", "min_valid": 600, "wait": 5}, timeout=10)
    assert r["ok"] is True, r
    assert srv.control.stats()["login"] == 2


# --- 6. expiry on two clocks -------------------------------------------------------------


def test_wall_clock_back_jump_does_not_extend_the_token(lg):
    # Old binaries: expiry is judged on the wall clock only; with the clock an hour back
    # the 4 s token is still served after more than 4 s.
    srv = lg.server(lifetime=4)
    d = lg.daemon(srv)
    d.wait_valid()
    t_valid = time.monotonic()
    r = d.get()
    assert r["ok"] is True, r
    srv.control.fault("down", on="login")  # until cleared: no refresh can succeed
    # No control calls while the clock is back: the server certificate is "not yet valid".
    with wall_clock_shifted(-3600):
        time.sleep(max(0.0, t_valid + 5.0 - time.monotonic()))
        r = d.get()
    assert r["ok"] is False and "token" not in r, "token served %.1f s after a 4 s " \
        "token arrived, with the wall clock an hour back: %r" % (
            time.monotonic() - t_valid, {k: v for k, v in r.items() if k != "token"})
    assert r["error"] == "token_expired", r


def test_wall_clock_forward_jump_starts_the_refresh(lg):
    # Old binaries: the refresh timer runs on CLOCK_BOOTTIME only; a wall clock now past
    # the 2/3 point starts no refresh (the login count stays 1).
    srv = lg.server(lifetime=60)
    d = lg.daemon(srv)
    d.wait_valid()
    assert srv.control.stats()["login"] == 1
    with wall_clock_shifted(+50):
        # Only the server is polled: a get could start an overdue refresh by itself.
        n = wait_until(lambda: srv.control.stats()["login"] >= 2, 3.0, 0.1)
        seen = srv.control.stats()["login"]
    assert n, "no refresh within 3 s of the wall clock passing the refresh point " \
        "(logins %d)" % seen
    assert seen == 2, seen
    d.wait_state(("valid", "refreshing"))


# --- 7. reload safety --------------------------------------------------------------------


def check_still_serving(d, tok, st0, srv):
    r = d.get()
    assert r["ok"] is True and r["token"] == tok, r
    st = d.status()
    assert st["state"] == "valid", st
    assert st["url"] == srv.url and st["user_id"] == st0["user_id"], st
    assert st["next_refresh"] == st0["next_refresh"], (st0, st)
    assert srv.control.stats()["login"] == 1


def refused_reload_lines(d):
    off = log_offset(d)
    reload_and_settle(d, settle=0.2)
    wait_until(lambda: warning_lines_naming(d, off, d.config), 2.0)
    time.sleep(0.3)
    return warning_lines_naming(d, off, d.config)


def test_reload_refuses_a_broken_configuration(lg):
    # Old binaries: the truncated file is refused, but the empty one is taken as a valid
    # configuration without url or credentials: no log line names the file, and the
    # daemon forgets its url (status url null) and tries to log in without one.
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    st0 = d.wait_valid()
    tok = d.get()["token"]
    with open(d.config) as f:
        good = f.read()
    lines = good.splitlines(True)
    i = next(n for n, line in enumerate(lines) if line.startswith("connect_timeout"))

    # Truncated in the middle of line i+1, after "connect_timeout =".
    write_file(d.config, "".join(lines[:i]) + "connect_timeout =")
    found = refused_reload_lines(d)
    assert len(found) == 1, "want one line naming %s, got %s\nlog:\n%s" % (
        d.config, found, d.log_text())
    assert "%s:%d" % (d.config, i + 1) in found[0] and "connect_timeout" in found[0], found
    check_still_serving(d, tok, st0, srv)

    # Empty.
    write_file(d.config, "")
    found = refused_reload_lines(d)
    assert len(found) == 1, "want one line naming %s, got %s\nlog:\n%s" % (
        d.config, found, d.log_text())
    check_still_serving(d, tok, st0, srv)

    # Back to the good file: accepted, still no login.
    write_file(d.config, good)
    reload_and_settle(d, settle=0.5)
    check_still_serving(d, tok, st0, srv)


def test_last_error_is_cleared_by_a_successful_login_or_reload(lg):
    # Old binaries: a failed refresh's error is cleared by the next successful login, but
    # an error from a reload (here: an empty password file) survives the next successful
    # reload: last_error still says "cannot read the password ...: file is empty".
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    tok0 = d.get()["token"]
    assert d.status()["last_error"] is None
    srv.control.fault("status", count=1, status=500, on="login")
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 6, (rc, out, err)
    st = d.status()
    assert st["last_error"] and "500" in st["last_error"], st
    rc, out, err = d.client("refresh", timeout=30)
    assert rc == 0, (rc, out, err)
    st0 = d.status()
    assert st0["state"] == "valid" and st0["last_error"] is None, st0
    tok = d.get()["token"]
    assert tok != tok0
    assert srv.control.stats()["login"] == 3

    # A reload that cannot read the password: no login (the held credentials stay) ...
    write_file(d.password_file, "")
    reload_and_settle(d, settle=0.5)
    assert srv.control.stats()["login"] == 3
    assert d.get()["token"] == tok
    # ... and the next successful reload (same password as held: no login) clears
    # whatever error that reload left.
    d.set_password_file(PASSWORD)
    reload_and_settle(d, settle=0.5)
    st = d.status()
    assert st["last_error"] is None, st
    assert st["state"] == "valid" and st["next_refresh"] == st0["next_refresh"], (st0, st)
    assert d.get()["token"] == tok
    assert srv.control.stats()["login"] == 3


# --- 8. no pointless server calls --------------------------------------------------------


def test_password_too_long_for_the_helper_is_refused_at_once(lg):
    # Old binaries: the password is accepted, replaces the working one, and the helper
    # cannot be started with it: login_failed (and a retry schedule) instead of
    # bad_request / too_large.
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    st0 = d.wait_valid()
    tok = d.get()["token"]
    took, r = timed(d.rpc, {"op": "login", "username": USERNAME, "password": "x" * 40000},
                    timeout=10)
    assert r["ok"] is False and r["error"] in ("bad_request", "too_large"), r
    assert took < 1.0, took
    time.sleep(1.5)
    assert srv.control.stats()["login"] == 1
    r = d.get()
    assert r["ok"] is True and r["token"] == tok, r
    st = d.status()
    assert st["state"] == "valid" and st["next_refresh"] == st0["next_refresh"], st
    rc, out, err = d.client("get")
    assert rc == 0 and out.strip() == tok, (rc, err)
