#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fails on an include cycle among the daemon's modules.

  check_cycles.py SOURCE_ROOT

A module is daemon/NAME.c with its daemon/NAME.h (and, for a module in several files,
NAME-PART.c and NAME-internal.h); module A depends on B when one of A's files includes
"daemon/B.h" or "daemon/B-internal.h". Modules above call modules below; one below reports back through a
callback the wiring connects, never by including the module above (README.md "Hacking").
Prints every cycle found and exits 1, or prints the module order and exits 0.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"daemon/([a-z_]+)(?:-internal)?\.h"', re.M)


def graph(root):
    daemon = os.path.join(root, "daemon")
    deps = {}
    for name in sorted(os.listdir(daemon)):
        if not name.endswith((".c", ".h")):
            continue
        m = name[:-2].split("-")[0]
        with open(os.path.join(daemon, name), encoding="utf-8") as f:
            deps.setdefault(m, set()).update(INCLUDE.findall(f.read()))
    for m in deps:
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
