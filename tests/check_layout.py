#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks the tree's layering (README.md "Hacking"): which folder may include which, which
libraries each program may link.

  check_layout.py SOURCE_ROOT [CLIENT DAEMON HELPER]

With the three built programs it also checks what they link (ldd). Exits 1 listing every
violation, 0 when there is none.
"""
import os
import re
import subprocess
import sys

PIPE_HEADER = "daemon/helper/pipe.h"

# folder -> (project folders its files may include, system header prefixes they must not)
RULES = {
    "common": ({"common"}, ("curl/", "systemd/")),
    "proto": ({"proto", "common"}, ("curl/", "systemd/", "sodium")),
    "client": ({"client", "proto", "common"}, ("curl/", "systemd/", "sodium", "json-c/")),
    "daemon/helper": ({"daemon/helper", "common"}, ("systemd/",)),
    "daemon": ({"daemon", "proto", "common"}, ("curl/",)),
}

# Folders of documentation and scripts (README.md "Hacking"): a C file there would escape the
# include rules above, so there must be none.
NO_C = ("docs", "docs/examples", "client/completion")

# program -> shared libraries it must not link
LINKS = {
    # the client reads replies with proto/reply_read.c; json-c is the daemon's
    "client": ("libsodium", "libsystemd", "libcurl", "libjson-c"),
    "daemon": ("libcurl",),
    "helper": ("libsystemd",),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def check_includes(root):
    errors = []
    for folder in RULES:
        base = os.path.join(root, folder)
        for name in sorted(os.listdir(base)):
            if not name.endswith((".c", ".h")):
                continue
            rel = f"{folder}/{name}"
            allowed, banned = RULES[folder]
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                text = f.read()
            for kind, inc in INCLUDE.findall(text):
                if kind == "<":
                    if inc.startswith(banned):
                        errors.append(f"{rel}: includes <{inc}>, which {folder}/ must not use")
                    continue
                if "/" not in inc:
                    errors.append(f'{rel}: includes "{inc}" without its folder prefix')
                    continue
                target = os.path.dirname(inc)
                if folder == "daemon" and inc == PIPE_HEADER:
                    continue
                if target not in allowed:
                    errors.append(f'{rel}: includes "{inc}"; {folder}/ may include only '
                                  + ", ".join(sorted(f"{a}/" for a in allowed))
                                  + (f" and {PIPE_HEADER}" if folder == "daemon" else ""))
                elif not os.path.exists(os.path.join(root, inc)):
                    errors.append(f'{rel}: includes "{inc}", which does not exist')
    for folder in NO_C:
        base = os.path.join(root, folder)
        if not os.path.isdir(base):
            errors.append(f"{folder}/: missing (README.md \"Hacking\" names it)")
            continue
        for name in sorted(os.listdir(base)):
            if name.endswith((".c", ".h")):
                errors.append(f"{folder}/{name}: C code in {folder}/, which holds none; "
                              "put it in the folder of the program it belongs to")
    return errors


# Source files (by folder, walked recursively) that must name their licence on one of their
# first lines: "SPDX-License-Identifier: MIT" (LICENSE; debian/copyright).
SPDX = "SPDX-License-Identifier: MIT"
SPDX_FOLDERS = ("common", "proto", "daemon", "client", "tests", "systemd", "docs", "debian")
SPDX_SKIP = ("tests/fuzz/corpus", "tests/data")


def is_source(rel, name):
    if name in ("meson.build", "meson_options.txt", "rules", "quickstart", "run"):
        return True
    if rel.startswith("debian/tests/") and "." not in name and name != "control":
        return True
    return name.endswith((".c", ".h", ".py", ".sh", ".in", ".socket", ".conf", ".scd", ".bash",
                          ".zsh", ".dict")) or name.startswith("_regscale")


def check_spdx(root):
    errors = []
    paths = [os.path.join(root, n) for n in ("meson.build", "meson_options.txt")]
    for folder in SPDX_FOLDERS:
        for base, dirs, files in os.walk(os.path.join(root, folder)):
            dirs[:] = [d for d in dirs if not os.path.relpath(os.path.join(base, d), root)
                       .startswith(SPDX_SKIP) and not d.startswith(".")]
            paths += [os.path.join(base, f) for f in files
                      if is_source(os.path.relpath(base, root) + "/", f)]
    for path in sorted(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(3)]
        if not any(SPDX in line for line in head):
            errors.append(f"{os.path.relpath(path, root)}: no '{SPDX}' line at its top")
    return errors


def check_links(programs):
    errors = []
    for prog, path in programs.items():
        out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
        for lib in LINKS[prog]:
            if re.search(r"^\s*" + re.escape(lib) + r"[.-]", out, re.M):
                errors.append(f"{path}: links {lib}, which the {prog} must not")
    return errors


def main(argv):
    if len(argv) not in (2, 5):
        print(__doc__, file=sys.stderr)
        return 2
    errors = check_includes(argv[1]) + check_spdx(argv[1])
    if len(argv) == 5:
        errors += check_links(dict(zip(("client", "daemon", "helper"), argv[2:])))
    for e in errors:
        print(e)
    print(f"layout: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
