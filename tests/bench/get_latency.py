#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: latency of `get` while the daemon is idle and while a slow login is in flight.

Run by hand (not by meson), from the source tree, after building:

    tests/bench/get_latency.py --build build            # or set RT_DAEMON, RT_CLIENT,
    tests/bench/get_latency.py -n 100 --slow 5          # RT_LOGIN_HELPER

It starts the RegScale test server (HTTPS, a test CA made on the fly) and regscale-tokend in
password mode, waits for the first login, then measures over the raw socket:

  1. idle: IDLE sequential gets on one connection, IDLE gets on a new connection each,
     and N gets at once on N connections (the baseline for 2.);
  2. slow login: injects a SLOW-second login (server fault "slow"), starts it with a
     refresh request, and while it is in flight fires N gets at once on N connections
     (all sent before any reply is read; each timed from its own send to its reply).

Prints p50/p99/max in milliseconds and the number of logins the server saw (expected: 2,
the first login and the one slow refresh). Exits 1 if any get failed or was not answered
from the cache while the login was in flight.
"""

import argparse
import json
import os
import selectors
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")


def ms(x):
    return x * 1e3


def summary(label, lat, pct):
    return "%s: n=%d p50 %.3f ms, p99 %.3f ms, max %.3f ms" % (
        label, len(lat), ms(pct(lat, 50)), ms(pct(lat, 99)), ms(max(lat)))


def idle_one_connection(L, path, n):
    lat = []
    with L.Conn(path, 5.0) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.call({"op": "get"})
            lat.append(time.perf_counter() - t0)
            if not r.get("ok"):
                raise SystemExit("get failed: %s" % r)
    return lat


def idle_new_connections(L, path, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = L.rpc(path, {"op": "get"})
        lat.append(time.perf_counter() - t0)
        if not r.get("ok"):
            raise SystemExit("get failed: %s" % r)
    return lat


def burst(path, n, timeout=10.0):
    """Connects n sockets, sends one get on each, then reads all replies; returns
    [(latency_s, reply)] (reply None if the connection closed or timed out)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    sent, bufs, out = {}, {}, {}
    req = b'{"op":"get"}\n'
    for i, s in enumerate(socks):
        sent[i] = time.perf_counter()
        s.send(req)  # 13 bytes into an empty socket buffer: never partial
        bufs[i] = b""
        sel.register(s, selectors.EVENT_READ, i)
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            i = key.data
            chunk = key.fileobj.recv(65536)
            now = time.perf_counter()
            if not chunk:
                out[i] = (now - sent[i], None)
                sel.unregister(key.fileobj)
                continue
            bufs[i] += chunk
            if b"\n" in bufs[i]:
                out[i] = (now - sent[i], json.loads(bufs[i].split(b"\n", 1)[0]))
                sel.unregister(key.fileobj)
    for s in socks:
        s.close()
    return [out.get(i, (timeout, None)) for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("-n", type=int, default=50, help="concurrent gets during the login")
    ap.add_argument("--slow", type=float, default=5.0, help="login duration in seconds")
    ap.add_argument("--idle", type=int, default=1000, help="sequential idle gets")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    os.environ.setdefault("RT_DAEMON", os.path.join(build, "daemon", "regscale-tokend"))
    os.environ.setdefault("RT_CLIENT", os.path.join(build, "client", "regscale-token"))
    os.environ.setdefault("RT_LOGIN_HELPER",
                          os.path.join(build, "daemon", "helper", "regscale-token-login"))
    for k in ("RT_DAEMON", "RT_LOGIN_HELPER"):
        if not os.access(os.environ[k], os.X_OK):
            sys.exit("no executable %s (%s); build first or pass --build" % (
                os.environ[k], k))
    sys.path.insert(0, E2E)
    import loginenv as L  # after RT_* are set: it reads them at import

    ca = L.make_ca()
    wd = tempfile.mkdtemp(prefix="rtb-", dir="/tmp")
    os.mkdir(os.path.join(wd, "xdg"), 0o700)
    env = L.LoginEnv(ca, wd)
    failed = False
    try:
        srv = env.server(lifetime=3600)
        d = env.daemon(srv, total_timeout=int(args.slow) + 10)
        if not L.wait_until(lambda: d.status()["state"] == "valid", 10):
            sys.exit("no first login; daemon log:\n" + d.log_text())
        cached = d.get()["token"]

        print(summary("idle get, one connection, %d sequential" % args.idle,
                      idle_one_connection(L, d.socket, args.idle), L.percentile))
        print(summary("idle get, new connection each, %d sequential" % args.idle,
                      idle_new_connections(L, d.socket, args.idle), L.percentile))

        idle_burst = burst(d.socket, args.n)
        if any(not r or not r.get("ok") for _, r in idle_burst):
            failed = True
        print(summary("%d concurrent gets, idle (baseline)" % args.n,
                      [t for t, _ in idle_burst], L.percentile))

        srv.control.fault("slow", count=1, seconds=args.slow)
        refresh = L.Conn(d.socket, args.slow + 30)
        t_start = time.monotonic()
        refresh.sock.sendall(b'{"op":"refresh"}\n')
        if not L.wait_until(lambda: srv.control.stats()["login"] == 2, 3):
            sys.exit("the slow login did not start")
        results = burst(d.socket, args.n)
        in_flight = d.status()["login_in_flight"]
        elapsed = time.monotonic() - t_start
        bad = [r for _, r in results if not r or not r.get("ok") or r["token"] != cached]
        lat = [t for t, _ in results]
        print(summary("%d concurrent gets during a %.0f s login (%.2f s into it)" % (
            args.n, args.slow, elapsed), lat, L.percentile))
        print("  all answered from the cache: %s; login still in flight after: %s" % (
            "yes" if not bad else "NO (%d failed)" % len(bad), in_flight))
        reply = json.loads(refresh.readline())
        refresh.close()
        took = time.monotonic() - t_start
        stats = srv.control.stats()
        print("refresh answered after %.2f s: %s" % (
            took, "ok" if reply.get("ok") else reply.get("error")))
        print("logins seen by the server: %d (ok %d; expected 2: the first + the slow one)"
              % (stats["login"], stats["login_ok"]))
        failed = failed or bool(bad) or not in_flight or not reply.get("ok") or stats["login"] != 2
    finally:
        problems = env.close()
        shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(ca["dir"], ignore_errors=True)
        for p in problems:
            print("problem:", p, file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
