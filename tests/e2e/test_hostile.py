# SPDX-License-Identifier: MIT
"""Hostile clients against a service-token daemon: over-long lines, slowloris, broken JSON
and UTF-8, NUL bytes, deep nesting, huge numbers, wrong types, a thousand connections at
once, clients that vanish mid-reply or never read, and running out of file descriptors.

After every test the daemon is alive and still serves its token, its log holds no piece of
the token, and each bad input left exactly one log line (not zero, not a flood).

The daemon runs with [daemon] idle_timeout = 2s so that slowloris is quick to test.
"""

import json
import os
import re
import resource
import select
import socket
import time

import pytest

import procmem
from conftest import Conn, Daemon, scratch_dir, wait_until
from loginenv import lg, lg_ca, lg_workdir, needs_binaries  # noqa: F401 - fixtures
from tokens import service_token

IDLE = 2  # seconds, the idle_timeout configured below
MAX_LINE = 65536
MAX_CLIENTS = 128
WINDOW = 24


class Hostile:
    """The daemon under attack and the bookkeeping of its log."""

    def __init__(self, d, token):
        self.d = d
        self.token = token
        self.mark = 0

    @property
    def socket(self):
        return self.d.socket

    @property
    def pid(self):
        return self.d.pid

    def new_lines(self):
        """Log lines written since the last call."""
        lines = self.d.log_text().splitlines()
        out, self.mark = lines[self.mark:], len(lines)
        return out

    def wait_lines(self, n, timeout=3.0):
        """Waits for n more log lines than at the last mark (and a moment for more), then
        returns the new lines."""
        wait_until(lambda: len(self.d.log_text().splitlines()) >= self.mark + n, timeout)
        time.sleep(0.05)
        return self.new_lines()

    def conn(self, timeout=5.0):
        return Conn(self.socket, timeout)

    def check_serves(self):
        assert self.d.running(), "daemon died; log:\n" + self.d.log_text()
        with self.conn() as c:
            r = c.call({"op": "get"})
        assert r.get("token") == self.token, r


def _check_log_clean(d, token):
    hits = procmem.find_fragments([("log", d.log_text().encode())],
                                  {"token": token.split(".", 1)[1]}, WINDOW)
    assert not hits, "token fragments in the daemon's log:\n" + procmem.describe_hits(hits)


@pytest.fixture(scope="module")
def hostile_daemon():
    """One daemon for the module (starting one per input would cost most of the time);
    hostile restarts it if a test killed it, so a failure stays with its test."""
    with scratch_dir("rth-") as wd:
        token = service_token(exp_in=3600)
        state = {"n": 0}

        def start():
            state["n"] += 1
            # The configured URL is never reachable; a helper that cannot start makes the
            # one validateToken attempt fail at once, so its log lines come before any
            # test's.
            d = Daemon(wd, name="h%d" % state["n"], token=token,
                       config_extra="idle_timeout = %ds\n" % IDLE,
                       args=["--login-helper", "/nonexistent/regscale-token-login"]).start()
            assert wait_until(lambda: "cannot check the service token" in d.log_text(), 3.0), \
                d.log_text()
            return Hostile(d, token)

        h = start()
        h.restart = start
        yield h
        if h.d.running():
            assert h.d.stop() == 0, h.d.log_text()
            assert not os.path.lexists(h.d.socket)


@pytest.fixture
def hostile(hostile_daemon):
    h = hostile_daemon
    if not h.d.running():
        fresh = h.restart()
        h.d, h.mark = fresh.d, 0
    h.new_lines()
    yield h
    h.check_serves()
    _check_log_clean(h.d, h.token)


def assert_one_line(lines, *words):
    assert len(lines) == 1, "expected one log line with %s, got:\n%s" % (
        words, "\n".join(lines))
    for w in words:
        assert w in lines[0], (w, lines[0])


# --- line limits and slowloris --------------------------------------------------------------


def test_longest_line_is_served(hostile):
    """A request of exactly 65536 bytes, newline included, is answered."""
    head, tail = b'{"op":"ping","pad":"', b'"}\n'
    line = head + b"x" * (MAX_LINE - len(head) - len(tail)) + tail
    assert len(line) == MAX_LINE
    with hostile.conn() as c:
        assert c.call(line[:-1])["pong"] is True
        assert c.call({"op": "ping"})["pong"] is True
    assert hostile.new_lines() == []


@pytest.mark.parametrize("newline", [True, False], ids=["newline", "no-newline"])
def test_overlong_line(hostile, newline):
    """One byte more (or a stream without a newline): too_large, then the end."""
    head, tail = b'{"op":"ping","pad":"', b'"}'
    line = head + b"x" * (MAX_LINE + 1 - len(head) - len(tail) - 1) + tail
    line += b"\n" if newline else b"y" * 200000
    with hostile.conn() as c:
        c.send(line)
        r = json.loads(c.readline())
        assert r["ok"] is False and r["error"] == "too_large", r
        assert c.at_eof()
    assert_one_line(hostile.wait_lines(1), "longer than")


def test_slowloris(hostile):
    """A partial line then silence, and a line trickled a byte every 0.4 s: both are
    answered idle_timeout and closed after the idle timeout; others are served meanwhile."""
    silent, trickle = hostile.conn(10), hostile.conn(10)
    t0 = time.monotonic()
    silent.send(b'{"op":"pi')
    closed_at = None
    payload = b'{"op":"ping","pad":"' + b"x" * 100
    for i in range(len(payload)):
        if not trickle.send(payload[i:i + 1]):
            closed_at = time.monotonic() - t0
            break
        r, _, _ = select.select([trickle.sock], [], [], 0.4)
        if r:
            closed_at = time.monotonic() - t0
            break
        if i == 1:
            hostile.check_serves()
    for c in (silent, trickle):
        r = json.loads(c.readline())
        assert r["ok"] is False and r["error"] == "idle_timeout", r
        assert c.at_eof()
        c.close()
    elapsed = time.monotonic() - t0
    assert closed_at is not None and IDLE - 0.3 <= closed_at <= IDLE + 1.0, closed_at
    assert elapsed <= IDLE + 1.5, elapsed
    lines = hostile.wait_lines(2)
    assert len(lines) == 2 and all("without a request" in ln for ln in lines), lines


def test_idle_timer_restarts_after_each_reply(hostile):
    with hostile.conn() as c:
        for _ in range(2):
            time.sleep(IDLE * 0.7)
            assert c.call({"op": "ping"})["pong"] is True
    assert hostile.new_lines() == []


# --- malformed requests ------------------------------------------------------------------


def nest(depth, inner=b"1"):
    """A request whose object is nesting level 1 and whose field x adds depth - 1 levels."""
    return b'{"op":"ping","x":' + b"[" * (depth - 1) + inner + b"]" * (depth - 1) + b"}"


BAD = [
    # invalid JSON
    ("truncated", b'{"op":"ping"', "bad_request"),
    ("not json", b"hello", "bad_request"),
    ("trailing comma", b'{"op":"ping",}', "bad_request"),
    ("array", b'["op","ping"]', "bad_request"),
    ("string", b'"ping"', "bad_request"),
    ("empty line", b"", "bad_request"),
    ("two objects", b'{"op":"ping"}{"op":"ping"}', "bad_request"),
    ("single quotes", b"{'op':'ping'}", "bad_request"),
    ("raw control char", b'{"op":"ping","x":"a\tb"}', "bad_request"),
    ("bad escape", b'{"op":"ping","x":"\\q"}', "bad_request"),
    ("op missing", b'{"id":1}', "bad_request"),
    ("duplicate op", b'{"op":"ping","op":"get"}', "bad_request"),
    # invalid UTF-8
    ("bad utf-8 byte", b'{"op":"ping","x":"\xff"}', "bad_request"),
    ("overlong utf-8", b'{"op":"ping","x":"\xc0\xaf"}', "bad_request"),
    ("encoded surrogate", b'{"op":"ping","x":"\xed\xa0\x80"}', "bad_request"),
    ("truncated utf-8", b'{"op":"ping","x":"\xe2\x82"}', "bad_request"),
    ("lone surrogate escape", b'{"op":"ping","x":"\\ud800"}', "bad_request"),
    ("utf-8 in key", b'{"op\xff":"ping"}', "bad_request"),
    # NUL bytes
    ("nul after object", b'{"op":"ping"}\x00', "bad_request"),
    ("nul in string", b'{"op":"pi\x00ng"}', "bad_request"),
    ("nul first", b'\x00{"op":"ping"}', "bad_request"),
    ("escaped nul in op", b'{"op":"ping\\u0000"}', "bad_request"),
    ("escaped nul in id", b'{"op":"ping","id":"a\\u0000b"}', "bad_request"),
    # nesting
    ("depth 9", nest(9), "bad_request"),
    ("depth 1000", nest(1000), "bad_request"),
    ("depth 30000 objects", b'{"op":"ping","x":' + b'{"a":' * 6000 + b"1" + b"}" * 6000 + b"}",
     "bad_request"),
    ("unclosed depth 20000", b'{"op":"ping","x":' + b"[" * 20000, "bad_request"),
    # huge numbers in known fields
    ("min_valid 1e999", b'{"op":"get","min_valid":1e999}', "bad_request"),
    ("min_valid 2^64", b'{"op":"get","min_valid":18446744073709551616}', "bad_request"),
    ("min_valid 400 digits", b'{"op":"get","min_valid":' + b"9" * 400 + b"}", "bad_request"),
    ("wait -2^63-1", b'{"op":"get","wait":-9223372036854775809}', "bad_request"),
    ("id 65 digits", b'{"op":"ping","id":' + b"1" * 65 + b"}", "bad_request"),
    ("v 1.0", b'{"op":"ping","v":1.0}', "bad_request"),
    ("v 1e0", b'{"op":"ping","v":1e0}', "bad_request"),
    ("v huge", b'{"op":"ping","v":' + b"1" * 300 + b"}", "bad_request"),
    # wrong types
    ("op number", b'{"op":1}', "bad_request"),
    ("op null", b'{"op":null}', "bad_request"),
    ("op array", b'{"op":["ping"]}', "bad_request"),
    ("id array", b'{"op":"ping","id":[]}', "bad_request"),
    ("id object", b'{"op":"ping","id":{}}', "bad_request"),
    ("id bool", b'{"op":"ping","id":true}', "bad_request"),
    ("id too long", b'{"op":"ping","id":"' + b"i" * 65 + b'"}', "bad_request"),
    ("min_valid string", b'{"op":"get","min_valid":"5"}', "bad_request"),
    ("min_valid negative", b'{"op":"get","min_valid":-1}', "bad_request"),
    ("wait bool", b'{"op":"get","wait":true}', "bad_request"),
    ("v string", b'{"op":"ping","v":"1"}', "bad_request"),
    ("username number", b'{"op":"ping","username":7}', "bad_request"),
    # well-formed, but not for us
    ("v 2", b'{"op":"ping","v":2}', "unsupported_version"),
    ("unknown op", b'{"op":"rm -rf"}', "unknown_op"),
    ("op case", b'{"op":"PING"}', "unknown_op"),
    ("op too long", b'{"op":"' + b"p" * 200 + b'"}', "unknown_op"),
]


@pytest.mark.parametrize("name,line,error", BAD, ids=[b[0] for b in BAD])
def test_bad_request(hostile, name, line, error):
    """Each bad line: one error reply, the connection stays open and serves the next
    request, one log line naming the error."""
    with hostile.conn() as c:
        r = c.call(line)
        assert r["ok"] is False and r["error"] == error, r
        assert r["v"] == 1 and isinstance(r["message"], str) and r["message"], r
        assert c.call({"op": "ping", "id": "after"}) == {"ok": True, "v": 1, "id": "after",
                                                          "pong": True}
    assert_one_line(hostile.wait_lines(1), "uid %d" % os.getuid(), error)


GOOD = [
    ("depth 8", nest(8)),
    ("unknown fields of every type", b'{"op":"get","zz":{"a":[1,2.5e3,{"b":null}]},"OP":"x",'
     b'"n":-0.0e-7,"t":true,"s":"\\u00e9\\ud83d\\ude00","big":' + b"9" * 400 + b',"e":1e99999}'),
    ("escaped op name", b'{"\\u006fp":"get"}'),
    ("crlf", b'{"op":"get"}\r'),
    ("spaces", b' \t {"op" : "get" , "id" : 7 } \t '),
    ("utf-8 id", '{"op":"get","id":"\u00e9\u6f22\U0001f600"}'.encode()),
    ("v 1", b'{"op":"get","v":1}'),
    ("id 64 digits", b'{"op":"get","id":' + b"9" * 64 + b"}"),
    ("int64 bounds", b'{"op":"get","x":-9223372036854775808,"min_valid":0,'
     b'"wait":0,"id":9223372036854775807}'),
]


@pytest.mark.parametrize("name,line", GOOD, ids=[g[0] for g in GOOD])
def test_odd_but_valid_request(hostile, name, line):
    """Valid JSON within the limits: unknown fields are ignored, the token is served, and
    nothing is logged."""
    with hostile.conn() as c:
        r = c.call(line)
    assert r["ok"] is True, r
    if b'"get"' in line or b"\\u006fp" in line:
        assert r["token"] == hostile.token
    assert hostile.new_lines() == []


def test_many_bad_lines_on_one_connection(hostile):
    """All of the bad lines pipelined on one connection: one reply each, in order, one log
    line each."""
    data = b"".join(line + b"\n" for _, line, _ in BAD if b"\n" not in line)
    n = data.count(b"\n")
    assert len(data) < 64 * 1024
    with hostile.conn() as c:
        c.send(data)
        replies = [json.loads(x) for x in c.readlines(n)]
        assert [r["error"] for r in replies] == [e for _, line, e in BAD if b"\n" not in line]
        assert c.call({"op": "get"})["token"] == hostile.token
    lines = hostile.wait_lines(n)
    assert len(lines) == n, "\n".join(lines)


# --- many clients ---------------------------------------------------------------------------


def open_many(path, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect(path)
        socks.append(s)
    return socks


def read_all_nonblocking(socks, wait):
    """Returns {index: bytes received, b'' at EOF} after wait seconds of polling."""
    got = {i: b"" for i in range(len(socks))}
    eof = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        live = [s for i, s in enumerate(socks) if i not in eof]
        r, _, _ = select.select(live, [], [], 0.05)
        for s in r:
            i = socks.index(s)
            try:
                chunk = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                eof.add(i)
            got[i] += chunk
    return got, eof


def _need_fds(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip("needs %d file descriptors" % n)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def test_thousand_connections(hostile):
    """1000 connections at once: 128 are served, the other 872 get too_many_clients and
    are closed; the daemon burns little CPU, and serves a new client after they close."""
    _need_fds(1200)
    cpu0 = procmem.cpu_seconds(hostile.pid)
    socks = open_many(hostile.socket, 1000)
    try:
        got, eof = read_all_nonblocking(socks, 0.8)
        refused = [i for i, data in got.items() if data]
        for i in refused:
            r = json.loads(got[i])
            assert r["error"] == "too_many_clients" and i in eof, (i, got[i])
        assert len(refused) == 1000 - MAX_CLIENTS, len(refused)
        held = [socks[i] for i in range(1000) if i not in refused]
        # The 128 served ones work, while one more is still refused.
        for s in held[:3]:
            s.setblocking(True)
            s.settimeout(5)
            s.sendall(b'{"op":"get"}\n')
            assert hostile.token.encode() in s.recv(65536)
        with hostile.conn() as c:
            assert json.loads(c.readline())["error"] == "too_many_clients"
            assert c.at_eof()
        cpu1 = procmem.cpu_seconds(hostile.pid)
        time.sleep(0.5)
        assert procmem.cpu_seconds(hostile.pid) - cpu1 < 0.1, "daemon busy with idle clients"
    finally:
        for s in socks:
            s.close()
    assert procmem.cpu_seconds(hostile.pid) - cpu0 < 1.0
    hostile.check_serves()
    assert wait_until(lambda: procmem.open_fds(hostile.pid) < 32, 3.0), \
        procmem.open_fds(hostile.pid)
    lines = hostile.new_lines()
    refusals = [ln for ln in lines if "clients connected already" in ln]
    # Rate-limited like permission refusals (one a second); on a slow machine the held
    # clients may reach the idle timeout, one line each.
    assert 1 <= len(refusals) <= 3, len(refusals)
    idle = [ln for ln in lines if "without a request" in ln]
    assert len(idle) <= MAX_CLIENTS
    other = [ln for ln in lines if ln not in refusals and ln not in idle]
    assert len(other) <= 2, other[:5]


def test_too_many_clients_log_is_rate_limited(hostile):
    """With 128 connections held, 500 more attempts in a burst leave a couple of log lines,
    as permission refusals do."""
    _need_fds(800)
    socks = open_many(hostile.socket, MAX_CLIENTS)
    try:
        time.sleep(0.2)
        hostile.new_lines()
        extra = open_many(hostile.socket, 500)
        got, eof = read_all_nonblocking(extra, 0.5)
        assert len(eof) == 500
        for s in extra:
            s.close()
        lines = [ln for ln in hostile.new_lines() if "clients connected already" in ln]
        assert 1 <= len(lines) <= 3, "%d log lines for 500 refusals" % len(lines)
    finally:
        for s in socks:
            s.close()


# --- clients that do not read ----------------------------------------------------------------


def test_clients_vanish_mid_reply(hostile):
    """Clients that pipeline many gets and close (or reset) without reading: no SIGPIPE
    death, no descriptor leak, no log flood."""
    fds0 = procmem.open_fds(hostile.pid)
    req = b'{"op":"get"}\n' * 4000  # 52 KB of requests, ~2 MB of replies
    for i in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hostile.socket)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.sendall(req)
        if i % 3 == 0:
            s.recv(100)  # a few bytes of the first reply, then gone
        s.close()
    # Also many at the same moment.
    socks = []
    for _ in range(50):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hostile.socket)
        s.sendall(req[:13 * 500])
        socks.append(s)
    for s in socks:
        s.close()
    hostile.check_serves()
    assert wait_until(lambda: procmem.open_fds(hostile.pid) <= fds0, 3.0), \
        (fds0, procmem.open_fds(hostile.pid))
    assert len(hostile.new_lines()) <= 5


def test_client_that_never_reads(hostile):
    """A client writes gets but never reads: the daemon stops reading from it (it does not
    buffer without bound), serves others meanwhile, stays idle, and drops it after the idle
    timeout plus the grace period."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(hostile.socket)
    s.setblocking(False)
    sent = 0
    t0 = time.monotonic()
    chunk = b'{"op":"get"}\n' * 1000
    while time.monotonic() - t0 < 1.0:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)
    # The daemon took what fits in its buffers and stopped: we are blocked.
    assert sent < 4 * 1024 * 1024, sent
    cpu = procmem.cpu_seconds(hostile.pid)
    hostile.check_serves()
    time.sleep(0.5)
    assert procmem.cpu_seconds(hostile.pid) - cpu < 0.1
    # Dropped after idle_timeout (2 s) + the 5 s grace for reading the refusal: then our
    # writes fail.
    dropped = wait_until(lambda: _peer_gone(s), IDLE + 7.0, 0.2)
    s.close()
    assert dropped, "the daemon kept a client that never reads"
    hostile.check_serves()
    lines = hostile.new_lines()
    assert 1 <= len(lines) <= 2, lines


def _peer_gone(sock):
    try:
        sock.send(b" ")
    except BlockingIOError:
        return False
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


# --- file descriptors -----------------------------------------------------------------------


def test_fd_exhaustion_does_not_spin(daemons):
    """The daemon limited to 32 descriptors and sent 60 connections: accept fails with
    EMFILE, and instead of spinning on the listening socket it pauses (CPU < 0.3 s over
    2 s), logs once, and serves again once the connections close."""
    token = service_token(exp_in=3600)
    d = daemons(token=token)
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (32, 32))
    time.sleep(0.3)
    socks = open_many(d.socket, 60)
    try:
        assert wait_until(lambda: procmem.open_fds(d.pid) >= 31, 3.0), procmem.open_fds(d.pid)
        assert wait_until(lambda: "cannot accept clients" in d.log_text(), 3.0), d.log_text()
        cpu = procmem.cpu_seconds(d.pid)
        time.sleep(2.0)
        used = procmem.cpu_seconds(d.pid) - cpu
        assert used < 0.3, "daemon spun %.2f s of CPU in 2 s with accept failing" % used
        assert d.running()
    finally:
        for s in socks:
            s.close()
    assert wait_until(lambda: _serves(d, token), 5.0), d.log_text()
    assert d.log_text().count("cannot accept clients") == 1, d.log_text()


def _serves(d, token):
    try:
        return d.get_token() == token
    except (OSError, AssertionError):
        return False


# --- strings from clients in the log ----------------------------------------------------------


@needs_binaries
def test_login_username_cannot_forge_log_lines(lg):
    """A login whose username holds a newline, an sd-daemon priority prefix, a quote and
    escape sequences: every log line still comes from the daemon (starts with <N>, no
    forged <0> line) and holds no raw control character."""
    d = lg.daemon(password=None, username=None)
    # Control characters make no username: refused before any login attempt is spent.
    name = 'ev"il\n<0>FORGED EMERGENCY\u001b[31m\r'
    r = d.rpc({"op": "login", "username": name, "password": "p" * 32}, timeout=20)
    assert r["ok"] is False and r["error"] == "bad_request", r
    assert "control characters" in r["message"], r
    # Quotes and backslashes may be in a name: the server judges it, the log escapes it.
    name = 'ev"il\\ <0>FORGED'
    r = d.rpc({"op": "login", "username": name, "password": "p" * 32}, timeout=20)
    assert r["ok"] is False and r["error"] == "credentials_rejected", r
    lines = d.log_text().rstrip("\n").split("\n")  # not splitlines(): CR is no line end
    assert any('as "ev\\"il\\\\ <0>FORGED"' in ln for ln in lines), lines
    assert not [ln for ln in lines if ln.startswith("<0>FORGED")], lines
    for ln in lines:
        assert re.match(r"<[0-7]>", ln), repr(ln)
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in ln), repr(ln)
