#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks that the man pages in docs/ cover what the programs accept (so they cannot drift):

  check_docs.py SOURCE_ROOT CLIENT DAEMON [BUILT_PAGE...]

  * regscale-token.1: every command has its "## COMMAND" subsection, holding every option
    the command's help lists (and, for get, every --format value); every option the client's
    --help and help COMMAND print appears in the page; so do its environment variables (in
    ENVIRONMENT) and exit codes (in EXIT STATUS);
  * regscale-tokend.8: every option regscale-tokend --help prints;
  * regscale-tokend.conf.5: every key of the daemon's key tables (daemon/*.c) has an entry
    "*key* = ..." in the subsection of its [section], with its Type, Default and Example;
  * regscale-token-protocol.7: every op, state and error code of proto/proto.c;
  * each BUILT_PAGE renders with `man --warnings -l` (as lintian runs it) without a warning
    (when man is installed).

What the programs accept is read from the binaries and the code (tests/cli_help.py), never
from a list here. Exits 1 listing every gap, 0 when there is none.
"""

import os
import re
import shutil
import subprocess
import sys

import cli_help


def plain(text):
    """The page source with scdoc's escapes (\\_, \\*) undone."""
    return re.sub(r"\\(.)", r"\1", text)


def mentions(text, word):
    """Whether word appears in text as a word of its own (not inside a longer option or
    name)."""
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def headed(text, level, title_re):
    """Returns the text of the heading (level # signs) whose title matches title_re, up to
    the next heading of that level or above; None if there is no such heading."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+) (.*)$", line)
        if m and len(m.group(1)) == level and re.fullmatch(title_re, m.group(2).strip()):
            out = []
            for rest in lines[i + 1:]:
                n = re.match(r"(#+) ", rest)
                if n and len(n.group(1)) <= level:
                    break
                out.append(rest)
            return "\n".join(out)
    return None


def read_page(root, name):
    with open(os.path.join(root, "docs", name + ".scd"), encoding="utf-8") as f:
        return plain(f.read())


def check_client(root, client):
    errors, page_name = [], "regscale-token.1"
    page = read_page(root, page_name)
    c = cli_help.Client(client)
    for cmd in c.commands():
        sub = headed(page, 2, re.escape(cmd))
        if sub is None:
            errors.append("%s: no '## %s' subsection for the command %s" % (page_name, cmd, cmd))
            continue
        for opt in c.command_options(cmd):
            if not mentions(sub, opt):
                errors.append("%s: '## %s' does not mention %s (regscale-token help %s)"
                              % (page_name, cmd, opt, cmd))
        if cmd == "get":
            for fmt in c.formats():
                if not re.search(r"^\s*\*%s\*\s*$" % re.escape(fmt), sub, re.M):
                    errors.append("%s: '## get' has no entry *%s* for --format %s"
                                  % (page_name, fmt, fmt))
    for opt in c.all_options():
        if not mentions(page, opt):
            errors.append("%s: does not mention %s (regscale-token --help, help COMMAND)"
                          % (page_name, opt))
    globals_ = headed(page, 1, "OPTIONS") or ""
    for opt in c.global_options():
        if not mentions(globals_, opt):
            errors.append("%s: OPTIONS does not mention the global option %s" % (page_name, opt))
    env = headed(page, 1, "ENVIRONMENT") or ""
    for name in c.environment():
        if not re.search(r"^\*%s\*\s*$" % re.escape(name), env, re.M):
            errors.append("%s: ENVIRONMENT has no entry *%s*" % (page_name, name))
    codes = headed(page, 1, "EXIT STATUS") or ""
    for code in c.exit_codes():
        if not re.search(r"^\*%s\*\s*$" % code, codes, re.M):
            errors.append("%s: EXIT STATUS has no entry *%s*" % (page_name, code))
    return errors


def check_daemon(root, daemon):
    errors, page_name = [], "regscale-tokend.8"
    page = read_page(root, page_name)
    options = headed(page, 1, "OPTIONS") or ""
    for opt in cli_help.daemon_options(daemon):
        if not mentions(options, opt):
            errors.append("%s: OPTIONS does not mention %s (regscale-tokend --help)"
                          % (page_name, opt))
    return errors


def check_config(root):
    errors, page_name = [], "regscale-tokend.conf.5"
    page = read_page(root, page_name)
    for sect, key in cli_help.config_keys(root):
        sub = headed(page, 2, re.escape("[%s]" % sect))
        if sub is None:
            errors.append("%s: no '## [%s]' subsection" % (page_name, sect))
            continue
        m = re.search(r"^\*%s\* = .*\n((?:\t.*\n|\s*\n)*)" % re.escape(key), sub + "\n", re.M)
        if not m:
            errors.append("%s: '## [%s]' has no entry '*%s* = ...' (a key of daemon/*.c)"
                          % (page_name, sect, key))
            continue
        for what in ("Type:", "Default:", "Example:"):
            if what not in m.group(1):
                errors.append("%s: [%s] %s has no %s" % (page_name, sect, key, what))
        if not re.search(r"Example:\s*\*%s = " % re.escape(key), m.group(1)):
            errors.append("%s: [%s] %s: the example is not '*%s = ...*'"
                          % (page_name, sect, key, key))
    return errors


def check_protocol(root):
    errors, page_name = [], "regscale-token-protocol.7"
    page = read_page(root, page_name)
    for table in ("op_names", "state_names", "error_names"):
        for name in cli_help.proto_names(root, table):
            if not mentions(page, name):
                errors.append("%s: does not mention %s (proto/proto.c %s)"
                              % (page_name, name, table))
    return errors


def check_rendering(pages):
    """Each built page through man --warnings: nothing on stderr."""
    man = shutil.which("man")
    if not pages:
        return [], "no built pages (scdoc not found): rendering not checked"
    if not man:
        return [], "man not found: rendering not checked"
    errors = []
    for page in pages:
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
        # As lintian runs it (manpage-has-errors-from-man): UTF-8 in, UTF-8 out.
        p = subprocess.run([man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page],
                           capture_output=True, text=True, env=env, timeout=60)
        if p.returncode != 0 or p.stderr.strip():
            errors.append("%s: man --warnings -l exited %d: %s"
                          % (page, p.returncode, p.stderr.strip()))
        elif not p.stdout.strip():
            errors.append("%s: renders empty" % page)
    return errors, None


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, client, daemon, pages = argv[1], argv[2], argv[3], argv[4:]
    errors = check_client(root, client) + check_daemon(root, daemon) + check_config(root) + \
        check_protocol(root)
    render_errors, note = check_rendering(pages)
    errors += render_errors
    for e in errors:
        print(e)
    if note:
        print("docs: " + note)
    print("docs: %d gap(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
