#!/usr/bin/python3
"""Fails on an include cycle among the daemon's modules.

  check_cycles.py SOURCE_ROOT

A module is daemon/NAME.c with its daemon/NAME.h; module A depends on B when A.c or A.h
includes "daemon/B.h". Modules above call modules below; one below reports back through a
callback the wiring connects, never by including the module above (README.md "Hacking").
Prints every cycle found and exits 1, or prints the module order and exits 0.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"daemon/([a-z_]+)\.h"', re.M)


def graph(root):
    daemon = os.path.join(root, "daemon")
    mods = sorted({f[:-2] for f in os.listdir(daemon) if f.endswith((".c", ".h"))})
    deps = {}
    for m in mods:
        deps[m] = set()
        for ext in (".c", ".h"):
            path = os.path.join(daemon, m + ext)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    deps[m] |= set(INCLUDE.findall(f.read()))
        deps[m].discard(m)
    return deps


def cycles(deps):
    """Every elementary cycle reachable by DFS, each reported once by its smallest name."""
    found = set()

    def walk(start, node, path, seen):
        for nxt in sorted(deps.get(node, ())):
            if nxt == start:
                cyc = path + [start]
                i = cyc.index(min(cyc[:-1]))
                found.add(tuple(cyc[i:-1] + cyc[:i] + [cyc[i]]))
            elif nxt not in seen and nxt > start:
                walk(start, nxt, path + [nxt], seen | {nxt})

    for m in sorted(deps):
        walk(m, m, [m], {m})
    return sorted(found)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    deps = graph(argv[1])
    found = cycles(deps)
    for c in found:
        print("include cycle: " + " -> ".join(c))
    if found:
        return 1
    order, done = [], set()

    def visit(m):
        if m in done:
            return
        done.add(m)
        for d in sorted(deps[m]):
            if d in deps:
                visit(d)
        order.append(m)

    for m in sorted(deps):
        visit(m)
    print("daemon modules, lowest first: " + " ".join(order))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
