# SPDX-License-Identifier: MIT
"""Metrics end to end: the metrics request and `regscale-token metrics` against a daemon in
password mode and the bundled RegScale server. The exposition is parsed strictly as the
Prometheus text format 0.0.4 (parse() below; `promtool check metrics` too where Debian's
prometheus package installed it), and its values must follow what happens: logins that
work, are rejected or fail, requests and their errors, clients refused (as another uid, with
setpriv), open connections. Every series carries the label profile, the name of the
daemon's socket less ".sock", so that two daemons' files in one textfile directory hold no
series twice. metrics_file must hold the same text, be replaced by rename (never seen partial
by a reader), written at once on a state change, and not at all while the daemon is idle.
"""

import json
import math
import os
import pwd
import re
import shutil
import stat
import subprocess
import threading
import time

import pytest

from harness import PYTHON, Conn
from sdenv import context_switches
from loginenv import (USERNAME, base_env, lg, lg_ca, lg_workdir,  # noqa: F401
                      needs_binaries, wait_until)

pytestmark = needs_binaries

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
FLOAT = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class FormatError(AssertionError):
    pass


def _unescape(text, allowed):
    """Undoes the format's escapes; allowed: the characters that may follow a backslash."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise FormatError("bad escape in %r" % text)
            out.append("\n" if text[i + 1] == "n" else text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _labels(text, where):
    """Parses the inside of {...}: name="value" pairs separated by commas."""
    labels, i = {}, 0
    while i < len(text):
        m = re.compile(LABEL).match(text, i)
        if not m or text[m.end():m.end() + 2] != '="':
            raise FormatError("%s: bad label at %r" % (where, text[i:]))
        name = m.group(0)
        if name.startswith("__"):
            raise FormatError("%s: reserved label name %s" % (where, name))
        j = m.end() + 2
        value = []
        while True:
            if j >= len(text):
                raise FormatError("%s: unterminated label value" % where)
            if text[j] == "\\":
                value.append(text[j:j + 2])
                j += 2
                continue
            if text[j] == '"':
                break
            if text[j] == "\n":
                raise FormatError("%s: raw newline in a label value" % where)
            value.append(text[j])
            j += 1
        if name in labels:
            raise FormatError("%s: label %s twice" % (where, name))
        labels[name] = _unescape("".join(value), "\\\"n")
        i = j + 1
        if i < len(text):
            # Strict: pairs separated by one comma, no trailing comma, no blanks.
            if text[i] != "," or i + 1 == len(text):
                raise FormatError("%s: expected ',' between labels at %r" % (where, text[i:]))
            i += 1
    return labels


def parse(text):
    """Parses text strictly as the 0.0.4 text format the daemon promises: every line ends in
    a newline, no blank line, no comment but HELP and TYPE, each family's HELP and TYPE once
    and before its samples, which come together and carry its exact name (no histogram or
    summary is exported), valid names and labels, float values, no timestamps, no series
    twice. Returns ({family: type}, {family: help}, {(name, labels as sorted tuple):
    value})."""
    if not text.endswith("\n"):
        raise FormatError("the text does not end in a newline")
    types, helps, samples, done = {}, {}, {}, set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line == "":
            raise FormatError(where + ": blank line")
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (" + NAME + r") (.*)\Z", line)
            if not m:
                raise FormatError("%s: a comment that is no HELP or TYPE: %r" % (where, line))
            kind, name, rest = m.groups()
            if name != current:
                if name in done or name in types or name in helps:
                    raise FormatError("%s: family %s comes back" % (where, name))
                if current is not None:
                    done.add(current)
                current = name
            if kind == "HELP":
                if name in helps:
                    raise FormatError("%s: second HELP for %s" % (where, name))
                helps[name] = _unescape(rest, "\\n")
            else:
                if name in types:
                    raise FormatError("%s: second TYPE for %s" % (where, name))
                if rest not in TYPES:
                    raise FormatError("%s: unknown type %r" % (where, rest))
                if any(k[0] == name for k in samples):
                    raise FormatError("%s: TYPE of %s after its samples" % (where, name))
                types[name] = rest
            continue
        m = re.match(r"(" + NAME + r")(?:\{(.*)\})? (\S+)\Z", line)
        if not m:
            raise FormatError("%s: not a sample line (or it has a timestamp): %r"
                              % (where, line))
        name, inner, value = m.groups()
        if name != current or name not in types or name not in helps:
            raise FormatError("%s: sample of %s without its HELP and TYPE right before"
                              % (where, name))
        if not FLOAT.match(value):
            raise FormatError("%s: value %r is no float" % (where, value))
        labels = _labels(inner, where) if inner is not None else {}
        if inner is not None and not labels:
            raise FormatError(where + ": empty braces")
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise FormatError("%s: series %r twice" % (where, key))
        v = float(value)
        if types[name] == "counter" and not (v >= 0 and not math.isinf(v)):
            raise FormatError("%s: counter %s is %r" % (where, name, value))
        samples[key] = v
    for name in types:
        if not any(k[0] == name for k in samples):
            raise FormatError("family %s has no sample" % name)
    return types, helps, samples


def value(samples, name, **labels):
    """The value of series name{labels}; None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def profile_of(d):
    """The profile d's metrics name: its socket's file name less .sock, as the client's -p."""
    name = os.path.basename(d.socket)
    return name[:-len(".sock")] if name.endswith(".sock") and name != ".sock" else name


def own(samples, profile):
    """Checks that every series carries profile="profile"; returns the samples without it,
    for value()."""
    out = {}
    for (name, labels), v in samples.items():
        d = dict(labels)
        if d.pop("profile", None) != profile:
            raise FormatError("%s%r: not profile %r" % (name, labels, profile))
        out[(name, tuple(sorted(d.items())))] = v
    return out


def file_samples(d, path):
    """metrics_file path of daemon d, parsed strictly, its profile checked and left out."""
    return own(parse(read_file(path))[2], profile_of(d))


def merge(texts):
    """What node_exporter's textfile collector makes of several files: one family of each
    name (their HELP and TYPE must agree), holding the samples of all of them; every series
    must then be unique, as parse() demands."""
    families, order = {}, []
    for text in texts:
        seen = {}
        for line in text[:-1].split("\n"):
            m = re.match(r"# (?:HELP|TYPE) (" + NAME + r") ", line) or re.match(NAME, line)
            name = m.group(1) if line.startswith("#") else m.group(0)
            if name not in families:
                families[name] = {"head": [], "samples": []}
                order.append(name)
            fam = families[name]
            if line.startswith("#"):
                seen.setdefault(name, []).append(line)
            else:
                fam["samples"].append(line)
        for name, head in seen.items():
            if families[name]["head"] and families[name]["head"] != head:
                raise FormatError("%s: HELP or TYPE differ between files" % name)
            families[name]["head"] = head
    return "".join("\n".join(families[n]["head"] + families[n]["samples"]) + "\n"
                   for n in order)


FAMILIES = {
    "regscale_token_info": "gauge",
    "regscale_token_state": "gauge",
    "regscale_token_expiry_timestamp_seconds": "gauge",
    "regscale_token_next_refresh_timestamp_seconds": "gauge",
    "regscale_token_logins_total": "counter",
    "regscale_token_last_login_timestamp_seconds": "gauge",
    "regscale_token_retries": "gauge",
    "regscale_token_requests_total": "counter",
    "regscale_token_clients_refused_total": "counter",
    "regscale_token_connections": "gauge",
    "regscale_token_start_time_seconds": "gauge",
}
DELAY = 3  # METRICS_FILE_DELAY_USEC
STATES = ("no_token", "logging_in", "valid", "refreshing", "retrying", "expired",
          "credentials_rejected", "login_required")


def promtool_check(text):
    """Runs promtool check metrics on text where it is installed (Debian: prometheus)."""
    if not shutil.which("promtool"):
        return
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b"", (p.returncode, p.stdout,
                                                                        p.stderr)


def metrics(d):
    """regscale-token metrics: exit 0, nothing on stderr; returns (text, samples), checked."""
    rc, out, err = d.client("metrics")
    assert rc == 0 and err == "", (rc, out, err)
    types, helps, samples = parse(out)
    samples = own(samples, profile_of(d))
    assert types == FAMILIES, types
    states = {dict(k[1])["state"]: v for k, v in samples.items()
              if k[0] == "regscale_token_state"}
    assert set(states) == set(STATES) and sorted(states.values()) == [0] * 7 + [1], states
    promtool_check(out)
    return out, samples


def current_state(samples):
    return [dict(k[1])["state"] for k, v in samples.items()
            if k[0] == "regscale_token_state" and v == 1][0]


def test_parser_is_strict():
    """The parser refuses what the format (or our promise) does not allow."""
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
    parse(good)
    for bad in (good[:-1],                                                 # no newline
                good.replace("# HELP a_total x\n", ""),                    # no HELP
                "a_total 1\n# HELP a_total x\n# TYPE a_total counter\n",   # sample first
                good + "a_total{x=\"1\"} 3\n",                             # duplicate
                good + "# TYPE a_total counter\n",                         # second TYPE
                good.replace("} 2", "} two"),                              # no float
                good.replace("} 2", "} 2 1700000000"),                     # timestamp
                good.replace('x="1"', 'x="1",'),                           # trailing comma
                good.replace('x="1"', 'x="1",x="2"'),                      # label twice
                good.replace('x="1"', 'x="\\q"'),                          # bad escape
                good.replace('x="1"', '1x="1"'),                           # bad label name
                good.replace("a_total{", "b_total{"),                      # other family
                good + "\n",                                               # blank line
                good + "# just a comment\n",
                good.replace("counter", "countr"),
                good.replace("} 2", "} -1")):                              # counter < 0
        with pytest.raises(FormatError):
            parse(bad)
    _, _, s = parse('# HELP g x\n# TYPE g gauge\ng{a="q\\"\\\\\\n"} -1.5e3\n')
    assert value(s, "g", a='q"\\\n') == -1500.0
    # A series without the profile, or of another.
    with pytest.raises(FormatError):
        own(parse(good)[2], "prod")
    with pytest.raises(FormatError):
        own(parse(good.replace('x="1"', 'profile="staging",x="1"'))[2], "prod")
    assert own(parse(good.replace('x="1"', 'profile="prod",x="1"'))[2], "prod") == {
        ("a_total", (("x", "1"),)): 2}
    # Two files merged as the collector does: families once, a series twice refused.
    other = good.replace('x="1"', 'x="2"')
    assert value(parse(merge([good, other]))[2], "a_total", x="2") == 2
    with pytest.raises(FormatError):
        parse(merge([good, good]))
    with pytest.raises(FormatError):
        merge([good, other.replace("# HELP a_total x", "# HELP a_total y")])


def test_logins_requests_and_reply(lg):
    """Values follow logins (ok, rejected, failed), requests and their errors, and the state;
    the reply names its format and carries the same text the client prints."""
    srv = lg.server()
    d = lg.daemon(srv)
    d.wait_valid()
    before = time.time()
    text, s = metrics(d)
    assert current_state(s) == "valid"
    assert value(s, "regscale_token_logins_total", result="ok") == 1
    assert value(s, "regscale_token_logins_total", result="rejected") == 0
    assert value(s, "regscale_token_logins_total", result="failed") == 0
    st = d.status()
    assert value(s, "regscale_token_expiry_timestamp_seconds") == st["expires_at"] > before
    assert value(s, "regscale_token_next_refresh_timestamp_seconds") == st["next_refresh"]
    assert before - 10 < value(s, "regscale_token_last_login_timestamp_seconds") <= before + 1
    assert value(s, "regscale_token_info", version=st["version"], kind="login") == 1
    assert value(s, "regscale_token_retries") == 0
    assert value(s, "regscale_token_connections") == 1  # the client asking
    start = value(s, "regscale_token_start_time_seconds")
    assert before - 60 < start <= before

    # The reply: format, and the text exactly as printed (less the request counted since).
    r = d.rpc({"op": "metrics", "id": 5})
    assert r["ok"] is True and r["v"] == 1 and r["id"] == "5", r
    assert r["format"] == "prometheus-0.0.4"
    s2 = own(parse(r["metrics"])[2], profile_of(d))
    metrics_ok = value(s, "regscale_token_requests_total", op="metrics", result="ok")
    assert value(s2, "regscale_token_requests_total", op="metrics", result="ok") == metrics_ok + 1
    # The client prints that text exactly: the same but for the request counted since.
    series = 'regscale_token_requests_total{profile="d0",op="metrics",result="ok"} '
    rc, out, err = d.client("metrics")
    assert rc == 0 and out == r["metrics"].replace(
        series + "%d\n" % (metrics_ok + 1), series + "%d\n" % (metrics_ok + 2)), (out, r)
    rc, out, err = d.client("metrics", "--json")
    assert rc == 0 and err == "" and json.loads(out)["format"] == "prometheus-0.0.4", (rc, out)

    # Requests: each answered one counted once, by op and result.
    gets = value(s2, "regscale_token_requests_total", op="get", result="ok")
    for _ in range(5):
        assert d.get()["ok"] is True
    assert d.rpc({"op": "get", "min_valid": "x"})["error"] == "bad_request"
    assert d.rpc({"op": "frobnicate"})["error"] == "unknown_op"
    assert d.rpc({"op": "get", "v": 2})["error"] == "unsupported_version"
    _, s = metrics(d)
    assert value(s, "regscale_token_requests_total", op="get", result="ok") == gets + 5
    assert value(s, "regscale_token_requests_total", op="invalid", result="bad_request") == 1
    assert value(s, "regscale_token_requests_total", op="invalid", result="unknown_op") == 1
    assert value(s, "regscale_token_requests_total", op="invalid",
                 result="unsupported_version") == 1
    assert value(s, "regscale_token_requests_total", op="metrics", result="ok") == metrics_ok + 4

    # A login with a wrong password: rejected, and the working token stays.
    r = d.rpc({"op": "login", "username": USERNAME, "password": "wrong"}, timeout=15)
    assert r["error"] == "credentials_rejected", r
    _, s = metrics(d)
    assert value(s, "regscale_token_logins_total", result="rejected") == 1
    assert value(s, "regscale_token_requests_total", op="login",
                 result="credentials_rejected") == 1
    assert current_state(s) == "valid"

    # A refresh RegScale cannot answer: failed, retrying (in 60 s: Retry-After).
    srv.control.fault("status", status=503, retry_after=60)
    r = d.rpc({"op": "refresh"}, timeout=15)
    assert r["ok"] is False and r["error"] == "login_failed", r
    _, s = metrics(d)
    assert value(s, "regscale_token_logins_total", result="failed") == 1
    assert value(s, "regscale_token_retries") == 1
    assert current_state(s) == "retrying"
    last_ok = value(s, "regscale_token_last_login_timestamp_seconds")

    # It works again: ok, retries back to 0, a later last login.
    srv.control.clear_faults()
    time.sleep(1.1)
    r = d.rpc({"op": "refresh"}, timeout=15)
    assert r["ok"] is True, r
    _, s = metrics(d)
    assert value(s, "regscale_token_logins_total", result="ok") == 2
    assert value(s, "regscale_token_retries") == 0
    assert value(s, "regscale_token_last_login_timestamp_seconds") > last_ok
    assert value(s, "regscale_token_requests_total", op="refresh", result="login_failed") == 1
    assert value(s, "regscale_token_requests_total", op="refresh", result="ok") == 1

    # The password changes at RegScale: the next login is rejected, and so is the state.
    srv.control.config(user="%s:other-password" % USERNAME)
    r = d.rpc({"op": "refresh"}, timeout=15)
    assert r["error"] == "credentials_rejected", r
    _, s = metrics(d)
    assert value(s, "regscale_token_logins_total", result="rejected") == 2
    assert current_state(s) == "credentials_rejected"

    # Logged out: no token, kind none, expiry 0.
    assert d.rpc({"op": "logout"})["ok"] is True
    _, s = metrics(d)
    assert current_state(s) == "no_token"
    assert value(s, "regscale_token_expiry_timestamp_seconds") == 0
    assert value(s, "regscale_token_info", version=st["version"], kind="none") == 1
    assert value(s, "regscale_token_start_time_seconds") == start


def test_help(lg):
    d = lg.daemon(lg.server(), password=None, username=None)
    for args in (["metrics", "--help"], ["help", "metrics"]):
        rc, out, err = d.client(*args)
        assert rc == 0 and err == "" and "Prometheus text format" in out, (args, rc, out, err)
        assert "metrics_file" in out
    rc, out, err = d.client("--help")
    assert rc == 0 and "metrics [--json]" in out
    rc, out, err = d.client("metrics", "extra")
    assert rc == 2 and out == "", (rc, out, err)


# --- other uids: refused clients ------------------------------------------------------


def _have_nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid == 65534 and pwd.getpwnam("daemon")
    except KeyError:
        return False


needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not _have_nobody(),
    reason="needs root, setpriv and the users nobody and daemon")

RAW = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(sys.argv[2].encode() + b"\n")
except OSError:
    pass  # a refused client has its reply already, and the connection is closed
print(s.makefile("rb").readline().decode(), end="")
"""


TWO = r"""
import json, socket, sys
first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
first.settimeout(5)
first.connect(sys.argv[1])
first.sendall(b'{"op":"ping"}\n')
print(first.makefile("rb").readline().decode(), end="")
second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
second.settimeout(5)
second.connect(sys.argv[1])
print(second.makefile("rb").readline().decode(), end="")
"""


def raw_as(d, uid, line):
    """Sends one request line as uid (group nogroup, no supplementary groups); returns the
    reply parsed."""
    p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=65534", "--clear-groups",
                        PYTHON, "-c", RAW, d.socket, line], env=base_env(d.workdir),
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


@needs_setpriv
def test_refused_clients(lg):
    """Each way the daemon refuses or closes a connection is counted by its reason; a reader
    (allow_users) may ask for the metrics as it may for status, and its refused login is a
    request counted with permission_denied."""
    os.chmod(lg.workdir, 0o755)
    reader = pwd.getpwnam("daemon").pw_uid
    d = lg.daemon(lg.server(), socket_path=os.path.join(lg.workdir, "run", "d.sock"),
                  extra="allow_users = daemon\nidle_timeout = 1\nmax_connections_per_user = 1\n")
    d.wait_valid()
    _, s = metrics(d)
    refused = {dict(k[1])["reason"]: v for k, v in s.items()
               if k[0] == "regscale_token_clients_refused_total"}
    assert refused == dict.fromkeys(("permission_denied", "max_connections_per_user",
                                     "too_many_clients", "idle_timeout", "evicted",
                                     "too_large"), 0), refused

    for _ in range(2):
        r = raw_as(d, 65534, '{"op":"metrics"}')
        assert r["error"] == "permission_denied", r
    r = raw_as(d, reader, '{"op":"metrics"}')
    assert r["ok"] is True and r["format"] == "prometheus-0.0.4", r
    own(parse(r["metrics"])[2], "d")
    r = raw_as(d, reader, '{"op":"logout"}')
    assert r["error"] == "permission_denied", r
    # A second connection of the reader while its first is open: max_connections_per_user.
    p = subprocess.run(["setpriv", "--reuid=%d" % reader, "--regid=65534", "--clear-groups",
                        PYTHON, "-c", TWO, d.socket], env=base_env(d.workdir),
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr.decode()
    first, second = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert first["pong"] is True and second["error"] == "too_many_clients", (first, second)

    # A line over the limit, and a connection that sends nothing for idle_timeout.
    with Conn(d.socket) as c:
        c.send(b"x" * (70 * 1024))
        assert json.loads(c.readline())["error"] == "too_large"
    with Conn(d.socket) as c:
        assert json.loads(c.readline())["error"] == "idle_timeout"

    _, s = metrics(d)
    assert value(s, "regscale_token_clients_refused_total", reason="permission_denied") == 2
    assert value(s, "regscale_token_clients_refused_total", reason="too_large") == 1
    assert value(s, "regscale_token_clients_refused_total", reason="idle_timeout") == 1
    assert value(s, "regscale_token_clients_refused_total",
                 reason="max_connections_per_user") == 1
    assert value(s, "regscale_token_clients_refused_total", reason="too_many_clients") == 0
    assert value(s, "regscale_token_clients_refused_total", reason="evicted") == 0
    assert value(s, "regscale_token_requests_total", op="logout",
                 result="permission_denied") == 1
    assert value(s, "regscale_token_connections") == 1


def test_connections(lg):
    """The gauge counts the connections open now."""
    d = lg.daemon(lg.server(), password=None, username=None)
    conns = [Conn(d.socket) for _ in range(3)]
    try:
        for c in conns:
            assert c.call({"op": "ping"})["ok"] is True
        _, s = metrics(d)
        assert value(s, "regscale_token_connections") == 4
    finally:
        for c in conns:
            c.close()
    assert wait_until(lambda: value(metrics(d)[1], "regscale_token_connections") == 1, 5)


# --- metrics_file ----------------------------------------------------------------------


def read_file(path):
    with open(path) as f:
        return f.read()


def file_daemon(lg, **kw):
    prom = os.path.join(lg.workdir, "textfile", "regscale-token.prom")
    os.mkdir(os.path.dirname(prom), 0o755)
    d = lg.daemon(lg.server(), extra="metrics_file = %s\n" % prom, **kw)
    return d, prom


def test_metrics_file(lg):
    """The file: written at start, mode 0644 whatever the umask, the metrics reply's text
    exactly, rewritten at once on a state change, a few seconds after counters changed,
    not at all while idle, by rename; removed when the daemon stops."""
    old = os.umask(0o077)
    try:
        d, prom = file_daemon(lg)
    finally:
        os.umask(old)
    d.wait_valid()
    assert wait_until(lambda: os.path.exists(prom) and
                      'regscale_token_state{profile="d0",state="valid"} 1' in read_file(prom), 5)
    st = os.stat(prom)
    assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == os.geteuid()
    file_samples(d, prom)
    promtool_check(read_file(prom))
    assert sorted(os.listdir(os.path.dirname(prom))) == ["regscale-token.prom"]

    # Idle: no write at all (same inode and mtime for longer than the delay), once the
    # write for the last status request of wait_valid() is done.
    time.sleep(DELAY + 1)
    assert value(file_samples(d, prom), "regscale_token_connections") == 0
    st, woken = os.stat(prom), context_switches(d.pid)
    time.sleep(4)
    st2 = os.stat(prom)
    assert (st2.st_ino, st2.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert context_switches(d.pid) == woken  # no timer armed while nothing changes

    # Same text as the reply: on a connection held open (so the connection count is the
    # same), once the file has counted the first metrics request, a second one answers
    # what the file says.
    with Conn(d.socket) as c:
        r1 = c.call({"op": "metrics"})
        n1 = value(own(parse(r1["metrics"])[2], "d0"), "regscale_token_requests_total",
                   op="metrics", result="ok")
        t0 = time.monotonic()
        assert wait_until(lambda: value(file_samples(d, prom),
                                        "regscale_token_requests_total", op="metrics",
                                        result="ok") == n1 + 1, 10)
        delay = time.monotonic() - t0
        r2 = c.call({"op": "metrics"})
        assert read_file(prom) == r2["metrics"]
    # Counters wait for the coalescing delay (3 s), not written at each request.
    assert 2.0 < delay < 6.0, delay
    assert os.stat(prom).st_ino != st2.st_ino

    # A state change is written at once.
    assert d.rpc({"op": "logout"})["ok"] is True
    t0 = time.monotonic()
    assert wait_until(lambda: 'regscale_token_state{profile="d0",state="no_token"} 1'
                      in read_file(prom), 5)
    assert time.monotonic() - t0 < 1.5

    # Stopped, the daemon has no metrics: the file goes with it.
    assert d.stop() == 0
    assert not os.path.exists(prom)


def test_metrics_file_atomic(lg):
    """Readers never see a partial file while requests run and the file is replaced again and
    again (a new inode each time); the temporary file is not *.prom."""
    d, prom = file_daemon(lg)
    d.wait_valid()
    assert wait_until(lambda: os.path.exists(prom), 5)
    stop = threading.Event()
    seen, bad, names = set(), [], set()

    def reader():
        while not stop.is_set():
            try:
                with open(prom) as f:
                    ino = os.fstat(f.fileno()).st_ino
                    text = f.read()
            except FileNotFoundError:
                bad.append("the file was missing")
                continue
            seen.add(ino)
            try:
                own(parse(text)[2], "d0")
                last = text.rstrip("\n").rsplit("\n", 1)[-1]
                assert last.startswith('regscale_token_start_time_seconds{profile="d0"} '), last
            except AssertionError as e:
                bad.append("%s: %r" % (e, text[-200:]))
            names.update(os.listdir(os.path.dirname(prom)))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        with Conn(d.socket) as c:
            while time.monotonic() < deadline:
                assert c.call({"op": "get"})["ok"] is True
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not bad, bad[:3]
    assert len(seen) >= 3, seen
    assert all(n == "regscale-token.prom" or not n.endswith(".prom") for n in names), names


def test_two_profiles_one_directory(lg):
    """Two daemons on one host (the profiles prod and staging), each with its metrics_file
    in one textfile directory: every series of each file carries its profile, so the files
    merged as node_exporter's collector merges them hold no series twice (the collector
    refuses a series "collected before with the same name and label values"); promtool
    accepts each file. A daemon on a socket path not ending in .sock is named by the whole
    file name."""
    textfile = os.path.join(lg.workdir, "textfile")
    os.mkdir(textfile, 0o755)
    srv = lg.server()
    daemons = []
    for name in ("prod", "staging"):
        prom = os.path.join(textfile, "regscale-token-%s.prom" % name)
        daemons.append((name, lg.daemon(srv, name=name, extra="metrics_file = %s\n" % prom),
                        prom))
    for _, d, prom in daemons:
        d.wait_valid()
        assert wait_until(lambda: os.path.exists(prom) and current_state(
            parse(read_file(prom))[2]) == "valid", 5)
    texts = [read_file(prom) for _, _, prom in daemons]
    assert sorted(os.listdir(textfile)) == ["regscale-token-prod.prom",
                                            "regscale-token-staging.prom"]
    _, _, union = parse(merge(texts))
    assert len(union) == sum(len(parse(t)[2]) for t in texts)
    for (name, d, _), text in zip(daemons, texts):
        assert profile_of(d) == name
        assert value(own(parse(text)[2], name), "regscale_token_state", state="valid") == 1
    assert {dict(k[1])["profile"] for k in union} == {"prod", "staging"}
    assert value(union, "regscale_token_connections", profile="prod") is not None
    assert value(union, "regscale_token_connections", profile="staging") is not None

    # The daemon's socket = PATH (or the client's --socket) need not end in .sock.
    d = lg.daemon(srv, name="odd", socket_path=os.path.join(lg.workdir, "odd-socket"))
    d.wait_valid()
    assert profile_of(d) == "odd-socket"
    metrics(d)

    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (Debian: prometheus)")
    for text in texts + [merge(texts)]:
        promtool_check(text)


def test_metrics_file_must_be_absolute(lg):
    """A relative metrics_file stops the daemon with file, line and key named."""
    d = lg.daemon(lg.server(), start=False, extra="metrics_file = regscale-token.prom\n")
    p = subprocess.run(d.argv(), env=d.env, capture_output=True, timeout=10)
    err = p.stderr.decode()
    assert p.returncode != 0, err
    line = [n for n, text in enumerate(open(d.config).read().split("\n"), 1)
            if text.startswith("metrics_file")][0]
    assert "%s:%d: [daemon] metrics_file: must be an absolute path" % (d.config, line) in err, err
