# SPDX-License-Identifier: MIT
"""The socket: taking over a stale one, refusing to steal a live one, permissions, and the
wire protocol spoken raw (malformed requests, several requests per connection, limits)."""

import json
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import try_ping, wait_until


def test_stale_socket_is_replaced(daemons, workdir):
    path = os.path.join(workdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert not try_ping(path)
    d = daemons(token=None, socket_path=path)
    rc, _, err = d.client("ping")
    assert rc == 0, err


def test_live_socket_is_not_stolen(daemon, daemons):
    ino = os.lstat(daemon.socket).st_ino
    second = daemons(start=False, socket_path=daemon.socket, name="second")
    second.write_token(daemon.token)
    second.start(wait=False)
    try:
        rc = second.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("second daemon on a live socket still running after 5 s; log:\n"
                    + second.log_text())
    second.returncode = rc
    assert rc != 0
    log = second.log_text()
    assert daemon.socket in log, log
    assert any(daemon.socket in line for line in second.error_lines()), log
    # the first daemon still owns and serves the socket
    assert os.lstat(daemon.socket).st_ino == ino
    assert daemon.get_token() == daemon.token
    rc, out, _ = daemon.client("get")
    assert (rc, out) == (0, daemon.token + "\n")


def test_socket_dir_and_socket_modes(daemons, workdir):
    path = os.path.join(workdir, "run", "t.sock")
    d = daemons(token=None, socket_path=path)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert d.client("ping")[0] == 0


def test_socket_option_overrides_config(daemons, workdir):
    path = os.path.join(workdir, "cli.sock")
    d = daemons(start=False)
    d.args = ["--socket", path]
    d.socket = path
    d.start()
    assert d.client("ping")[0] == 0
    assert not os.path.exists(os.path.join(workdir, d.name + ".sock"))


def _assert_error(reply, code):
    assert reply["ok"] is False, reply
    assert reply["v"] == 1, reply
    assert reply["error"] == code, reply
    assert isinstance(reply["message"], str) and reply["message"], reply
    assert "token" not in reply


MALFORMED = [
    (b"hello world", "bad_request"),
    (b'{"op":"get"', "bad_request"),
    (b"[1,2,3]", "bad_request"),
    (b'"get"', "bad_request"),
    (b'{"op":5}', "bad_request"),
    (b'{"op":"get","id":1.5}', "bad_request"),
    (b'{"op":"get","id":["x"]}', "bad_request"),
    (b'{"op":"get","id":"' + b"x" * 65 + b'"}', "bad_request"),
    (b'{"op":"\xff\xfe"}', "bad_request"),
    (b'{"op":"ping","x":[[[[[[[[[[[1]]]]]]]]]]]}', "bad_request"),
    (b'{"op":"frobnicate"}', "unknown_op"),
    (b'{"op":"GET"}', "unknown_op"),
    (b'{"op":"get","v":2}', "unsupported_version"),
    (b'{"op":"get","v":0}', "unsupported_version"),
]


@pytest.mark.parametrize("line,code", MALFORMED, ids=[c + ":" + repr(l[:24]) for l, c in MALFORMED])
def test_malformed_request(daemon, line, code):
    with daemon.conn() as good, daemon.conn() as bad:
        # both connections are accepted before the bad request is sent
        assert good.call({"op": "ping"})["pong"] is True
        _assert_error(bad.call(line), code)
        reply = good.call({"op": "get"})
        assert reply["ok"] is True and reply["token"] == daemon.token
    rc, out, _ = daemon.client("get")
    assert (rc, out) == (0, daemon.token + "\n")


def test_errors_echo_id(daemon):
    with daemon.conn() as c:
        r = c.call({"op": "frobnicate", "id": "q1"})
        _assert_error(r, "unknown_op")
        assert r["id"] == "q1"
        r = c.call({"op": "get", "v": 2, "id": 99})
        _assert_error(r, "unsupported_version")
        assert r["id"] == "99"
        # the connection is still usable after error replies
        r = c.call({"op": "get", "id": "after"})
        assert r["ok"] is True and r["id"] == "after" and r["token"] == daemon.token


def test_too_large_closes_connection(daemon):
    with daemon.conn() as good, daemon.conn() as bad:
        assert good.call({"op": "ping"})["pong"] is True
        bad.send(b'{"op":"get","pad":"' + b"a" * (70 * 1024))
        # the daemon keeps serving others while one connection sends a huge line
        reply = good.call({"op": "get"})
        assert reply["ok"] is True and reply["token"] == daemon.token
        bad.send(b'"}\n')
        line = bad.readline()
        assert line is not None, "connection closed without a too_large reply"
        _assert_error(json.loads(line), "too_large")
        assert bad.at_eof(), "connection not closed after too_large"
        reply = good.call({"op": "get"})
        assert reply["ok"] is True and reply["token"] == daemon.token
    assert daemon.running()


def test_line_just_under_limit_is_parsed(daemon):
    # 64 KiB including the newline is allowed: it is parsed (and refused as unknown op)
    head = b'{"op":"nope","pad":"'
    tail = b'"}'
    pad = b"a" * (64 * 1024 - 1 - len(head) - len(tail))
    with daemon.conn() as c:
        r = c.call(head + pad + tail)
        _assert_error(r, "unknown_op")


def test_several_requests_on_one_connection(daemon):
    lines = daemon.request(b'{"op":"ping","id":"a"}\n'
                           b'{"op":"get","id":7}\n'
                           b'{"op":"status","id":"x-3","v":1}\n'
                           b'{"op":"nope","id":"last"}\n')
    assert len(lines) == 4, lines
    r = [json.loads(line) for line in lines]
    assert [x.get("id") for x in r] == ["a", "7", "x-3", "last"]
    assert r[0]["pong"] is True
    assert r[1]["token"] == daemon.token
    assert r[2]["state"] == "valid"
    assert r[3]["error"] == "unknown_op"
    assert all(x["v"] == 1 for x in r)


def test_requests_split_across_writes(daemon):
    with daemon.conn() as c:
        for piece in (b'{"op":', b'"get",', b'"id":"sp', b'lit"}\n{"op":"pi', b'ng"}\n'):
            c.send(piece)
        r1, r2 = json.loads(c.readline()), json.loads(c.readline())
    assert r1["id"] == "split" and r1["token"] == daemon.token
    assert r2["pong"] is True and "id" not in r2


def test_too_many_clients(daemon):
    conns = []
    time.sleep(0.2)  # let the daemon reap the fixture's startup connection
    try:
        for _ in range(128):
            c = daemon.conn()
            conns.append(c)
            c.send(b'{"op":"ping"}\n')
        for c in conns:
            assert json.loads(c.readline())["pong"] is True
        with daemon.conn() as extra:
            line = extra.readline()
            assert line is not None, "129th connection closed without a reply"
            _assert_error(json.loads(line), "too_many_clients")
            assert extra.at_eof()
        conns.pop().close()

        def served():
            try:
                return daemon.rpc({"op": "get"}).get("token") == daemon.token
            except (OSError, AssertionError):
                return False
        assert wait_until(served, 3.0), "a freed slot is not reused"
    finally:
        for c in conns:
            c.close()


def test_client_disconnecting_early_does_not_hurt(daemon):
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(b'{"op":"get"}\n{"op":"status"}\n')
        s.close()
    assert daemon.get_token() == daemon.token
    assert daemon.running()
