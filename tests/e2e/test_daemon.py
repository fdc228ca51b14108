# SPDX-License-Identifier: MIT
"""Daemon lifecycle: signals, credentials from systemd, configuration errors, log hygiene."""

import os
import re
import signal
import subprocess

import pytest

from conftest import DAEMON, base_env, write_file
from tokens import service_token


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_exit_on_signal(daemon, sig):
    assert os.path.exists(daemon.socket)
    rc = daemon.stop(sig)
    assert rc == 0, daemon.log_text()
    assert not os.path.lexists(daemon.socket)


def test_clean_exit_with_connected_clients(daemon):
    c1, c2 = daemon.conn(), daemon.conn()
    try:
        assert c1.call({"op": "ping"})["pong"] is True
        c2.send(b'{"op":"get"')  # half a request pending
        assert daemon.stop(signal.SIGTERM) == 0, daemon.log_text()
        assert not os.path.lexists(daemon.socket)
        assert c1.at_eof()
    finally:
        c1.close()
        c2.close()


def test_token_from_credentials_directory(daemons, workdir):
    creds = os.path.join(workdir, "creds")
    os.mkdir(creds, 0o700)
    token = service_token(user_id="user-from-credentials")
    write_file(os.path.join(creds, "token"), token + "\n")
    d = daemons(token_file=False, env={"CREDENTIALS_DIRECTORY": creds})
    rc, out, err = d.client("get")
    assert (rc, out, err) == (0, token + "\n", "")


def test_token_file_wins_over_credentials_directory(daemons, workdir):
    creds = os.path.join(workdir, "creds")
    os.mkdir(creds, 0o700)
    write_file(os.path.join(creds, "token"), service_token(user_id="from-creds") + "\n")
    token = service_token(user_id="from-token-file")
    d = daemons(token=token, env={"CREDENTIALS_DIRECTORY": creds})
    assert d.get_token() == token


def test_no_token_source_at_all(daemons):
    d = daemons(token_file=False)
    assert d.get_token() == "no_token"
    rc, out, err = d.client("get")
    assert (rc, out) == (4, "")


def run_daemon_to_exit(workdir, config_text, timeout=5):
    conf = os.path.join(workdir, "bad.conf")
    write_file(conf, config_text)
    p = subprocess.run([DAEMON, "--config", conf], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return conf, p.returncode, p.stderr.decode("utf-8", "replace")


def test_unknown_key_is_fatal(workdir):
    sock = os.path.join(workdir, "x.sock")
    text = ("[regscale]\n"
            "url = https://regscale.example.test\n"
            "tokenfile = /nonexistent\n"
            "[daemon]\n"
            "socket = %s\n" % sock)
    conf, rc, err = run_daemon_to_exit(workdir, text)
    assert rc != 0
    assert re.search(re.escape(conf) + r":3\b", err), err
    assert "tokenfile" in err, err
    assert not os.path.exists(sock)


def test_unknown_section_is_fatal(workdir):
    text = ("[regscale]\n"
            "url = https://regscale.example.test\n"
            "\n"
            "[deamon]\n"
            "socket = /tmp/nowhere.sock\n")
    conf, rc, err = run_daemon_to_exit(workdir, text)
    assert rc != 0
    assert conf in err, err
    assert "deamon" in err, err


def test_bad_number_is_fatal(workdir):
    text = ("[regscale]\n"
            "url = https://regscale.example.test\n"
            "connect_timeout = soon\n")
    conf, rc, err = run_daemon_to_exit(workdir, text)
    assert rc != 0
    assert re.search(re.escape(conf) + r":3\b", err), err
    assert "connect_timeout" in err, err


def test_missing_config_file_is_fatal(workdir):
    conf = os.path.join(workdir, "does-not-exist.conf")
    p = subprocess.run([DAEMON, "--config", conf], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    assert p.returncode != 0
    assert conf in p.stderr.decode(), p.stderr


def test_daemon_usage_error(workdir):
    p = subprocess.run([DAEMON, "--no-such-option"], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    assert p.returncode != 0
    assert p.stderr


def test_daemon_version_and_help(workdir):
    p = subprocess.run([DAEMON, "--version"], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    assert p.returncode == 0
    assert "0.1.0" in p.stdout.decode()
    p = subprocess.run([DAEMON, "--help"], env=base_env(workdir),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    assert p.returncode == 0
    assert "--config" in (p.stdout + p.stderr).decode()


def test_log_never_contains_token_bytes(daemons):
    token = service_token(user_id="user-log-hygiene")
    d = daemons(token=token, args=["--debug"])
    # exercise everything that might log: every op, errors, reloads good and bad
    d.client("get")
    d.client("get", "--format", "json")
    d.client("status")
    d.client("status", "--json")
    d.client("ping")
    d.request(b'{"op":"nope"}\nnot json\n')
    new = service_token(user_id="user-log-hygiene-2")
    d.write_token(new)
    d.send_signal(signal.SIGHUP)
    assert d.wait_token(new), d.log_text()
    d.replace_token(new.split(".")[0] + "." + new.split(".")[1])  # two parts: not a JWT
    d.send_signal(signal.SIGHUP)
    d.wait_log(lambda text: len(d.error_lines()) > 0, timeout=2.0)
    assert d.get_token() == new
    assert d.stop(signal.SIGTERM) == 0
    log = d.log_text()
    assert log.strip(), "the daemon logged nothing even with --debug"
    for t in (token, new):
        _, payload, sig = t.split(".")
        assert payload not in log
        assert sig not in log
        # nor a sizeable piece of them
        for piece in (payload[:24], payload[-24:], sig[:16], sig[-16:]):
            assert piece not in log, piece
    # every line carries an sd-daemon level prefix
    for line in log.splitlines():
        assert re.match(r"<[0-7]>", line), line
