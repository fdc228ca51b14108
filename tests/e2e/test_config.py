# SPDX-License-Identifier: MIT
"""Configuration files whose keys do not work together: the real daemon refuses them at start
(exit status 1, one error line on stderr naming the file, the line and the key, with the
fix) and at a reload (one log line; the running configuration and token stay)."""

import os
import signal
import subprocess

import pytest

from conftest import DAEMON, URL, base_env, write_file

NEEDS_URL = (": needs url, the RegScale server to log in to; add its base URL, e.g. "
             "\"url = https://regscale.example.com\", to [regscale]")


def not_with_token_file(key, line):
    return ("[regscale] {0}: does not go with token_file (line {1}): a token file is served "
            "as it is, {0} is for password login; remove one of the two".format(key, line))


# (id, [regscale] lines, line of the error, message after "FILE:LINE: ")
BAD = [
    ("username_without_url", ["username = jdoe", "password_file = pw"], 2,
     "[regscale] username" + NEEDS_URL),
    ("username_alone_without_url", ["ca_file = ca.pem", "username = jdoe"], 3,
     "[regscale] username" + NEEDS_URL),
    ("password_file_without_url", ["password_file = pw"], 2,
     "[regscale] password_file" + NEEDS_URL),
    ("password_file_without_username", ["url = " + URL, "password_file = pw"], 3,
     "[regscale] password_file: needs username, the account whose password it holds; add "
     "\"username = NAME\" to [regscale]"),
    ("token_file_and_username", ["url = " + URL, "token_file = t.token", "", "username = jdoe"],
     5, not_with_token_file("username", 3)),
    ("token_file_and_password_file", ["password_file = pw", "token_file = t.token"], 2,
     not_with_token_file("password_file", 3)),
    ("url_ends_in_api", ["url = " + URL + "/api/", "token_file = t.token"], 2,
     "[regscale] url: ends in /api, which the daemon adds itself; give the base URL without "
     "it: " + URL),
    ("duration_over_365d", ["url = " + URL, "token_file = t.token", "default_lifetime = 366d"],
     4, "[regscale] default_lifetime: too large (at most 365d)"),
]


def bad_config(workdir, regscale_lines, sock):
    return "[regscale]\n" + "".join(l + "\n" for l in regscale_lines) + \
        "\n[daemon]\nsocket = %s\n" % sock


@pytest.mark.parametrize("lines,line,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refused_at_start(workdir, lines, line, message):
    conf, sock = os.path.join(workdir, "bad.conf"), os.path.join(workdir, "bad.sock")
    write_file(os.path.join(workdir, "pw"), "secret\n")
    write_file(conf, bad_config(workdir, lines, sock))
    p = subprocess.run([DAEMON, "--config", conf], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, err
    assert err.splitlines() == ["<3>%s:%d: %s" % (conf, line, message)]
    assert p.stdout == b""
    assert not os.path.lexists(sock)


@pytest.mark.parametrize("lines,line,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refused_at_reload(daemon, lines, line, message):
    before = daemon.rpc({"op": "status"})
    write_file(daemon.config, bad_config(daemon.workdir, lines, daemon.socket))
    daemon.send_signal(signal.SIGHUP)
    want = "<3>reload: %s:%d: %s; keeping the running configuration and token" % (
        daemon.config, line, message)
    assert daemon.wait_log(want), daemon.log_text()
    assert daemon.running()
    assert daemon.get_token() == daemon.token
    after = daemon.rpc({"op": "status"})
    assert (after["state"], after["kind"], after["url"]) == ("valid", "service", URL)
    assert (after["state"], after["kind"], after["url"]) == (
        before["state"], before["kind"], before["url"])


def test_durations_in_days(daemons):
    """Every duration key takes d."""
    d = daemons(config_extra="idle_timeout = 1d\n", start=False)
    with open(d.config) as f:
        text = f.read()
    text = text.replace("[regscale]\n", "[regscale]\nconnect_timeout = 1d\ntotal_timeout = 2d\n"
                        "default_lifetime = 7d\n")
    write_file(d.config, text)
    d.start()
    assert d.client("ping")[0] == 0


def test_username_without_url_with_token_credential(daemons, workdir):
    """The systemd credential "token" is service mode: a username there needs no url (and
    is not used)."""
    from tokens import service_token
    creds = os.path.join(workdir, "creds")
    os.mkdir(creds, 0o700)
    token = service_token(user_id="user-from-credential")
    write_file(os.path.join(creds, "token"), token + "\n")
    d = daemons(token_file=False, start=False, env={"CREDENTIALS_DIRECTORY": creds})
    write_file(d.config, "[regscale]\nusername = jdoe\n\n[daemon]\nsocket = %s\n" % d.socket)
    d.start()
    assert d.get_token() == token
