# SPDX-License-Identifier: MIT
"""Expiry warnings end to end (issue 13, parts 1 and 2): a service token expiring in
seconds with warn_before in seconds logs each point once, on a CLOCK_REALTIME timer that
leaves the idle daemon asleep between points; a token arriving past points logs one line
for the nearest only, a new token re-arms them; a bad warn_before is a config error naming
file, line and key; STATUS= changes at state changes and warning points and says absolute
times only; a login token whose refresh keeps failing past two thirds of its life is
"late": one warning, refresh_late in status."""

import re
import subprocess
import time

from conftest import Daemon
from harness import DAEMON, wait_until
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from sdenv import Notify, context_switches
from tokens import service_token

WARN_RE = re.compile(r"<4>service token for .* expires in (\S+) \(at (\S+)\): put a new one in ")


def warnings(d):
    return [m.groups() for m in map(WARN_RE.search, d.log_text().splitlines()) if m]


def test_each_point_logged_once_and_status_follows(daemons, workdir):
    notify = Notify(workdir)
    exp = int(time.time()) + 7
    d = daemons(token=service_token(exp=exp), config_extra="warn_before = 4s, 2s\n",
                env={"NOTIFY_SOCKET": notify.path})
    assert wait_until(lambda: d.get_token() == "token_expired", 10), d.log_text()
    time.sleep(0.3)
    notify.drain(0.2)

    got = warnings(d)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    assert [at for _, at in got] == [iso, iso], d.log_text()
    # Each at its point (the timer fires up to 100 ms late, so the second may be gone).
    assert got[0][0] in ("4s", "3s") and got[1][0] in ("2s", "1s"), got
    # The line at the end says when, and what brings a new token.
    ended = [x for x in d.log_text().splitlines() if "service token for " in x and
             " expired at " + iso in x]
    assert len(ended) == 1 and ended[0].endswith("put a new one in %s (read when it changes)"
                                                 % d.token_file), d.log_text()

    status = [x[len("STATUS="):] for _, ls in notify.messages for x in ls
              if x.startswith("STATUS=")]
    assert all(a != b for a, b in zip(status, status[1:])), status
    valid = "valid until " + iso
    assert [s for s in status if valid in s and "under" not in s], status
    four = [i for i, s in enumerate(status) if valid + " (under 4s left)" in s]
    two = [i for i, s in enumerate(status) if valid + " (under 2s left)" in s]
    end = [i for i, s in enumerate(status) if "expired at " + iso in s]
    assert len(four) == 1 and len(two) == 1 and end and four[0] < two[0] < end[0], status
    assert "put a new one in " + d.token_file in status[four[0]], status
    # Absolute times only: nothing in it goes stale.
    assert not [s for s in status if re.search(r"\bin \d", s)], status


def test_idle_daemon_sleeps_between_points(daemons):
    exp = int(time.time()) + 14
    d = daemons(token=service_token(exp=exp), config_extra="warn_before = 10s, 3s\n")
    pid = d.proc.pid
    time.sleep(0.5)
    before = context_switches(pid)
    time.sleep(exp - 10 - time.time() - 0.4)
    quiet1 = context_switches(pid) - before
    assert wait_until(lambda: len(warnings(d)) == 1, 2), d.log_text()
    time.sleep(0.5)
    before = context_switches(pid)
    time.sleep(exp - 3 - time.time() - 0.4)
    quiet2 = context_switches(pid) - before
    assert wait_until(lambda: len(warnings(d)) == 2, 2), d.log_text()
    print("IDLE WAKE-UPS before the first point: %d, between the points: %d"
          % (quiet1, quiet2))
    assert quiet1 == 0 and quiet2 == 0, (quiet1, quiet2)


def test_points_already_past_give_one_line_and_a_new_token_rearms(daemons):
    # Default points 30d, 7d, 1d, 1h: a token with 2 days left is past 30d and 7d.
    d = daemons(token=service_token(exp_in=2 * 86400))
    assert wait_until(lambda: warnings(d), 3), d.log_text()
    time.sleep(0.3)
    got = warnings(d)
    assert len(got) == 1 and got[0][0] in ("2d", "1d 23h"), got
    st = d.rpc({"op": "status"})
    assert "(under 7d left)" in st["message"], st

    d.replace_token(service_token(exp_in=2 * 86400 + 60))
    assert wait_until(lambda: len(warnings(d)) == 2, 5), d.log_text()
    time.sleep(0.3)
    assert len(warnings(d)) == 2, d.log_text()

    far = service_token(exp_in=40 * 86400)
    d.replace_token(far)
    assert d.wait_token(far, 5)
    time.sleep(0.3)
    assert len(warnings(d)) == 2, d.log_text()
    st = d.rpc({"op": "status"})
    assert "under" not in st["message"] and st["refresh_late"] is False, st


def test_bad_warn_before_is_a_config_error(workdir):
    for value, why in (("4x", "bad unit (expected s, m, h or d)"),
                       ("1h,,-2", "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"),
                       ("1h 0s", "must be positive"), (",", "empty list")):
        d = Daemon(workdir, name="bad", token=service_token(),
                   config_extra="warn_before = %s\n" % value)
        p = subprocess.run([DAEMON, "--config", d.config], env=d.env, capture_output=True,
                           stdin=subprocess.DEVNULL, text=True, timeout=10)
        assert p.returncode == 1, (value, p.stderr)
        assert p.stderr.splitlines() == ["<3>%s:7: [daemon] warn_before: %s"
                                         % (d.config, why)], (value, p.stderr)


def test_late_refresh_warned_once(lg):
    srv = lg.server(lifetime=9)
    d = lg.daemon(srv)
    d.wait_valid()
    srv.control.fault("down", on="login")
    assert wait_until(lambda: d.status()["refresh_late"] is True, 9), d.status()
    st = d.status()
    assert st["state"] in ("retrying", "refreshing") and "refresh late" in st["message"], st
    assert wait_until(lambda: d.status()["state"] != "retrying" or
                      d.status()["expires_in"] is None, 6)
    late = [ln for ln in d.log_text().splitlines() if "its refresh is late" in ln]
    assert len(late) == 1 and late[0].startswith("<4>login token for "), d.log_text()
    srv.control.fault(None)
