# SPDX-License-Identifier: MIT
"""Reloading the service token: SIGHUP, inotify (in-place write and atomic rename), and
keeping the old token when the new file is bad."""

import json
import os
import signal
import time

import pytest

from conftest import write_file

from tokens import service_token


def test_sighup_reloads(daemon):
    new = service_token(user_id="user-after-sighup")
    daemon.write_token(new)
    daemon.send_signal(signal.SIGHUP)
    assert daemon.wait_token(new), daemon.log_text()
    assert daemon.running()
    rc, out, _ = daemon.client("get")
    assert (rc, out) == (0, new + "\n")


def test_sighup_reloads_change_inotify_cannot_see(daemons, workdir):
    # token_file goes through a symlinked directory; swapping the symlink changes the file
    # the path names without any event in the directory the daemon watches, so only the
    # SIGHUP can make the daemon notice.
    a, b = os.path.join(workdir, "A"), os.path.join(workdir, "B")
    os.mkdir(a)
    os.mkdir(b)
    link = os.path.join(workdir, "cur")
    os.symlink(a, link)
    old, new = service_token(user_id="user-A"), service_token(user_id="user-B")
    write_file(os.path.join(a, "token"), old + "\n")
    write_file(os.path.join(b, "token"), new + "\n")
    d = daemons(token_file=os.path.join(link, "token"))
    assert d.get_token() == old
    tmp = link + ".new"
    os.symlink(b, tmp)
    os.rename(tmp, link)
    time.sleep(0.3)
    if d.get_token() == new:
        pytest.skip("the daemon saw the symlink swap without SIGHUP; cannot isolate SIGHUP")
    d.send_signal(signal.SIGHUP)
    assert d.wait_token(new), d.log_text()


def test_sighup_without_change_keeps_serving(daemon):
    for _ in range(3):
        daemon.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    assert daemon.running()
    assert daemon.get_token() == daemon.token


def test_inotify_in_place_write(daemon):
    new = service_token(user_id="user-after-write")
    daemon.write_token(new)
    assert daemon.wait_token(new, timeout=3.0), daemon.log_text()


def test_inotify_atomic_rename(daemon):
    first = service_token(user_id="user-rename-1")
    daemon.replace_token(first)
    assert daemon.wait_token(first, timeout=3.0), daemon.log_text()
    # the watch must survive the replacement: a second rename and an in-place write
    second = service_token(user_id="user-rename-2")
    daemon.replace_token(second)
    assert daemon.wait_token(second, timeout=3.0), daemon.log_text()
    third = service_token(user_id="user-rename-3")
    daemon.write_token(third)
    assert daemon.wait_token(third, timeout=3.0), daemon.log_text()


def _errors_after(d, n):
    return [line for line in d.error_lines()[n:] if d.token_file in line]


def test_bad_file_on_sighup_keeps_old_token(daemon):
    before = len(daemon.error_lines())
    daemon.write_token("garbage garbage")
    daemon.send_signal(signal.SIGHUP)
    assert daemon.wait_log(lambda _: _errors_after(daemon, before), timeout=3.0), \
        "no error line naming the token file; log:\n" + daemon.log_text()
    assert daemon.get_token() == daemon.token
    rc, out, _ = daemon.client("get")
    assert (rc, out) == (0, daemon.token + "\n")
    assert "garbage garbage" not in daemon.log_text()
    status = json.loads(daemon.client("status", "--json")[1])
    assert status["state"] == "valid"
    assert status["last_error"] and daemon.token_file in status["last_error"], status
    # a good file afterwards is taken, and the error is forgotten
    new = service_token(user_id="user-recovered")
    daemon.write_token(new)
    daemon.send_signal(signal.SIGHUP)
    assert daemon.wait_token(new), daemon.log_text()
    assert json.loads(daemon.client("status", "--json")[1])["last_error"] is None


def test_bad_file_on_inotify_keeps_old_token(daemon):
    before = len(daemon.error_lines())
    daemon.replace_token("not.a-jwt")
    assert daemon.wait_log(lambda _: _errors_after(daemon, before), timeout=3.0), \
        "no error line naming the token file; log:\n" + daemon.log_text()
    assert daemon.get_token() == daemon.token
    # an in-place write of garbage too
    daemon.write_token("still garbage")
    time.sleep(0.3)
    assert daemon.get_token() == daemon.token
    new = service_token(user_id="user-recovered-inotify")
    daemon.replace_token(new)
    assert daemon.wait_token(new), daemon.log_text()


def test_empty_file_keeps_old_token(daemon):
    daemon.write_token("", newline=False)
    daemon.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert daemon.get_token() == daemon.token


def test_reload_to_expired_token_is_never_served(daemon):
    # Whether an expired replacement is rejected (old token kept) or taken (get answers
    # token_expired) is the daemon's choice; serving the expired token is never right.
    expired = service_token(exp_in=-5)
    daemon.replace_token(expired)
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.add(daemon.get_token())
        time.sleep(0.05)
    assert expired not in seen
    assert seen <= {daemon.token, "token_expired"}, seen
