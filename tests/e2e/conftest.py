# SPDX-License-Identifier: MIT
"""Fixtures for the end-to-end tests: real regscale-tokend and regscale-token binaries.

Environment (set by tests/meson.build): RT_DAEMON, RT_CLIENT, RT_LOGIN_HELPER (absolute
paths of the built programs), RT_SOURCE_ROOT. Without them the run stops with a usage
error, unless every collected test is marked no_binaries (test_server_selfcheck.py).
Nothing here touches the network: the configured RegScale URL is never contacted for a
service token.

The machinery shared with loginenv.py and sdenv.py (environments, the raw protocol,
starting and stopping daemons) is in harness.py.

Socket paths must fit in sun_path (108 bytes), so every test works in a short directory
made with tempfile.mkdtemp(dir="/tmp") (harness.scratch_dir) instead of pytest's long
tmp_path.
"""

import os

import pytest

# Shared with loginenv.py and sdenv.py; the test modules import them from here (__all__).
from harness import (CLIENT, DAEMON, Conn, TokenDaemon, base_env, missing_binaries,
                     replace_file, request, rpc, run_client, scratch_dir, stop_all,
                     try_ping, wait_until, write_file)

URL = "https://regscale.example.test"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "no_binaries: the test runs without the built programs (RT_DAEMON, "
        "RT_CLIENT, RT_LOGIN_HELPER); every other test needs them")
    config.addinivalue_line(
        "markers", "needs_binaries: the test runs the built programs (loginenv's pytestmark; "
        "every test not marked no_binaries needs them anyway)")


def pytest_collection_modifyitems(config, items):
    """A missing program stops the run (it used to skip every test: a suite that skips
    cannot fail). Tests marked no_binaries (test_server_selfcheck.py) run without them."""
    need = [item for item in items if item.get_closest_marker("no_binaries") is None]
    missing = missing_binaries()
    if need and missing:
        raise pytest.UsageError(
            "%s: unset or not executable, and %d of the collected tests run the built "
            "programs (%s, ...). Run the end-to-end tests with `meson test -C build --suite "
            "e2e` (meson sets these), or set RT_DAEMON, RT_CLIENT and RT_LOGIN_HELPER to the "
            "absolute paths of the built regscale-tokend, regscale-token and "
            "regscale-token-login." % (", ".join(missing), len(need), need[0].nodeid))


# --- daemon ---------------------------------------------------------------------------


class Daemon(TokenDaemon):
    """A regscale-tokend under test: its config, token file, socket and captured log."""

    def __init__(self, workdir, name="d", token=None, token_file=True, config_extra="",
                 socket_path=None, env=None, args=()):
        super().__init__(workdir, name, socket_path, args)
        # token_file: True for <name>.token in workdir, a path, or False for none.
        if isinstance(token_file, str):
            self.token_file = token_file
        else:
            self.token_file = os.path.join(workdir, name + ".token") if token_file else None
        self.env = self.environment(env)
        if token is not None and self.token_file:
            self.write_token(token)
        lines = ["[regscale]", "url = " + URL]
        if self.token_file:
            lines.append("token_file = " + self.token_file)
        lines += ["", "[daemon]", "socket = " + self.socket]
        text = "\n".join(lines) + "\n"
        if config_extra:
            text += config_extra
        write_file(self.config, text)

    # token file
    def write_token(self, token, newline=True):
        write_file(self.token_file, token + ("\n" if newline else ""))

    def replace_token(self, token):
        replace_file(self.token_file, token + "\n")

    # log
    def log_lines(self, max_level=7):
        """Returns the log lines with an sd-daemon prefix <N>, N <= max_level."""
        out = []
        for line in self.log_text().splitlines():
            if len(line) >= 3 and line[0] == "<" and line[2] == ">" and line[1].isdigit():
                if int(line[1]) <= max_level:
                    out.append(line)
        return out

    def error_lines(self):
        """Returns the log lines at error level or worse (<0>..<3>)."""
        return self.log_lines(max_level=3)

    # token served
    def wait_token(self, expected, timeout=3.0):
        """Polls get until it serves expected; returns True, or False after timeout."""
        return bool(wait_until(lambda: self.get_token() == expected, timeout))


@pytest.fixture
def workdir():
    """A short private directory under /tmp (sun_path is 108 bytes), with the xdg/ that
    base_env() points XDG_RUNTIME_DIR to."""
    with scratch_dir("rte-") as d:
        yield d


@pytest.fixture
def daemons(workdir):
    """Factory: daemons(token=..., ...) -> a started Daemon (start=False to skip).

    Teardown stops every daemon still running with SIGTERM and asserts a clean exit
    (status 0) and that it removed its socket."""
    made = []

    def make(start=True, **kw):
        kw.setdefault("name", "d%d" % len(made))
        d = Daemon(workdir, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    problems = stop_all(made)
    assert not problems, "\n".join(problems)


@pytest.fixture
def daemon(daemons):
    """A started daemon serving a fresh service token (daemon.token)."""
    from tokens import service_token
    token = service_token(exp_in=3600)
    d = daemons(token=token)
    d.token = token
    return d


__all__ = [
    "DAEMON", "CLIENT", "URL", "base_env", "wait_until", "write_file", "replace_file", "Conn",
    "request", "rpc", "try_ping", "run_client", "scratch_dir", "Daemon", "workdir", "daemons",
    "daemon",
]
