# SPDX-License-Identifier: MIT
"""regscale-token check end to end (issue 13, part 3): a Monitoring Plugins check, one line
"REGSCALE-TOKEN STATE - text | perfdata" and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
for every state the daemon can be in, the daemon unreachable, and the check's own errors."""

import os
import re

import pytest

from harness import base_env, run_client, wait_until
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import PASSWORD, USERNAME
from tokens import service_token

LINE = re.compile(r"^REGSCALE-TOKEN (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)"
                  r"(?: \| expires_in=(\d+)s;([0-9:]*);([0-9:]*);0)?\n$")
CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def check(d, *args):
    """Runs check against d; returns (state, text, perfdata or None) after checking the
    line's form, that it is all of stdout, and that the exit code is the state's."""
    rc, out, err = d.client("check", *args)
    m = LINE.match(out)
    assert m, (rc, out, err)
    assert rc == CODES[m.group(1)], (rc, out)
    perf = None if m.group(3) is None else (int(m.group(3)), m.group(4), m.group(5))
    return m.group(1), m.group(2), perf


def test_service_token_thresholds(daemons):
    d = daemons(token=service_token(exp_in=30 * 86400 + 600))
    state, text, perf = check(d)
    assert state == "OK" and "service token for" in text and "valid until" in text, text
    assert perf[1:] == ("604800:", "86400:") and 30 * 86400 <= perf[0] <= 30 * 86400 + 600

    d.replace_token(service_token(exp_in=3 * 86400))
    assert wait_until(lambda: check(d)[0] == "WARNING", 5)
    state, text, perf = check(d)
    assert re.match(r"expires in (3d|2d 23h) \(within --warn\): service token for ", text), text
    assert check(d, "--warn", "2d")[0] == "OK"
    state, text, perf = check(d, "--warn", "5d", "--crit", "4d")
    assert state == "CRITICAL" and "within --crit" in text and perf[1:] == ("432000:",
                                                                            "345600:"), text


def test_expired_and_no_token_are_critical(daemons):
    d = daemons(token=service_token(exp_in=2))
    assert check(d)[0] == "CRITICAL"  # within --crit
    assert wait_until(lambda: d.get_token() == "token_expired", 5)
    state, text, perf = check(d)
    assert state == "CRITICAL" and text.startswith("token expired: "), text

    d2 = daemons(token_file=False)
    state, text, perf = check(d2)
    assert state == "CRITICAL" and text.startswith("no token: ") and perf is None, text


def test_daemon_unreachable_is_critical(workdir):
    sock = os.path.join(workdir, "none.sock")
    rc, out, err = run_client(["--socket", sock, "check"], base_env(workdir))
    assert rc == 2 and out.startswith("REGSCALE-TOKEN CRITICAL - the daemon is not running"), \
        (rc, out, err)
    assert sock in out and out.count("\n") == 1


@pytest.mark.parametrize("args,what", [
    (["--warn", "7x"], "invalid --warn '7x'"),
    (["--crit"], "--crit needs a DURATION"),
    (["--warn", "1h", "--crit", "2h"], "--crit (7200s) is longer than --warn (3600s)"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["extra"], "unexpected argument 'extra'"),
])
def test_bad_options_are_unknown(workdir, args, what):
    rc, out, err = run_client(["--socket", os.path.join(workdir, "x.sock"), "check"] + args,
                              base_env(workdir))
    assert rc == 3 and out.startswith("REGSCALE-TOKEN UNKNOWN - " + what), (rc, out, err)


def test_help_is_unknown(workdir):
    # A plugin's --help exits 3 (UNKNOWN), as monitoring plugins' do; "help check" is the
    # client's help command, which succeeds like every other "help CMD".
    for argv, code in ((["check", "--help"], 3), (["help", "check"], 0)):
        rc, out, err = run_client(argv, base_env(workdir))
        assert rc == code and out.startswith("Usage: regscale-token [OPTIONS] check"), (rc, out)
    rc, out, err = run_client(["--help"], base_env(workdir))
    assert rc == 0 and "check [--warn DURATION] [--crit DURATION]" in out


def test_login_token_ok_retrying_late_and_rejected(lg):
    srv = lg.server(lifetime=3600)
    d = lg.daemon(srv)
    d.wait_valid()
    state, text, perf = check(d)
    # A login token the daemon renews: judged by its refreshes, no thresholds.
    assert state == "OK" and "refresh at " in text and perf[1:] == ("", ""), text

    srv.control.fault("down", on="login")
    d.client("refresh", timeout=30)
    assert d.status()["state"] == "retrying"
    state, text, perf = check(d)
    assert state == "WARNING" and text.startswith("refresh failing: "), text
    srv.control.fault(None)

    srv2 = lg.server(lifetime=9)
    d2 = lg.daemon(srv2)
    d2.wait_valid()
    srv2.control.fault("down", on="login")
    assert wait_until(lambda: d2.status()["refresh_late"] is True, 9), d2.status()
    state, text, perf = check(d2)
    assert state == "WARNING" and text.startswith("refresh late, expires in "), text
    assert wait_until(lambda: d2.status()["expires_in"] is None
                      or d2.status()["expires_in"] <= 0, 6)
    state, text, perf = check(d2)
    assert state == "CRITICAL", text
    srv2.control.fault(None)

    srv3 = lg.server()
    srv3.control.fault("wrong_password", status=401)
    d3 = lg.daemon(srv3)
    d3.wait_state("credentials_rejected")
    state, text, perf = check(d3)
    assert state == "CRITICAL" and text.startswith("credentials rejected: "), text


def test_mfa_login_is_judged_by_thresholds(lg):
    user, pw, code = "mfauser", "pw-Mfa-e2e-1", "314159"
    srv = lg.server(users=["{}:{}".format(USERNAME, PASSWORD),
                           "{}:{}:{}".format(user, pw, code)])
    d = lg.daemon(srv, username=None, password=None)
    d.secrets.add(pw)
    rc, out, err = d.client("login", "--username", user, "--mfa=" + code, input=pw + "\n")
    assert rc == 0, (rc, out, err)
    assert d.status()["state"] == "login_required"
    state, text, perf = check(d)  # a 1 h token is within the default --crit 1d
    assert state == "CRITICAL" and "within --crit" in text and perf[1:] == ("604800:",
                                                                            "86400:"), text
    assert check(d, "--warn", "2h", "--crit", "10m")[0] == "WARNING"
    state, text, perf = check(d, "--warn", "30m", "--crit", "10m")
    assert state == "OK" and "refresh" in text, text


def test_logging_in_is_warning(lg):
    srv = lg.server()
    srv.control.fault("hang", count=1, on="login")
    d = lg.daemon(srv, total_timeout=8)
    assert d.status()["state"] == "logging_in"
    state, text, perf = check(d)
    assert state == "WARNING" and text.startswith("no token yet, logging in: ") \
        and perf is None, text
