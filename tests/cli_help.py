# SPDX-License-Identifier: MIT
"""What the programs say they accept, read from the built binaries and the code, never from a
list kept here: tests/check_docs.py checks the man pages against it, check_completion.py the
shell completion. A new command, option, format, config key or error shows up here by itself.

  * the client: its commands (the "Commands:" of --help and the list its unknown-command error
    gives), its global options, each command's options (help CMD), the --format values (the
    list its unknown-format error gives), its environment variables and exit codes;
  * the daemon: its options (--help), its config keys (the key tables of daemon/*.c);
  * the protocol: the op, state and error names of proto/proto.c.
"""

import glob
import os
import re
import subprocess

# An option as help text writes it: --long-name or -x, not inside a word or a path.
OPTION = re.compile(r"(?<![\w/.-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def run(argv):
    """Returns (exit status, stdout + stderr) of argv, run with no locale or profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGSCALE_TOKEN")}
    env["LC_ALL"] = "C"
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def listed(message):
    """Returns the names of the last "(a, b or c)" in an error message."""
    m = re.findall(r"\(([a-z][^()]*)\)", message)
    if not m:
        raise AssertionError("no list of names in %r" % message)
    return [w for w in re.split(r",\s*|\s+or\s+", m[-1].strip()) if w]


def section(text, title):
    """Returns the lines of text after the line "title" up to the next unindented line."""
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        if inside:
            if line and not line[0].isspace():
                break
            out.append(line)
        elif line.strip() == title:
            inside = True
    if not inside:
        raise AssertionError("no %r in the help" % title)
    return out


class Client:
    """The client's commands and options, from its own output."""

    def __init__(self, path):
        self.path = path
        rc, self.help = run([path, "--help"])
        assert rc == 0, self.help

    def commands(self):
        """Every command: those --help lists under "Commands:" and those the client names
        when it refuses an unknown one (the two should agree; either may grow first)."""
        from_help = []
        for line in section(self.help, "Commands:"):
            m = re.match(r"  ([a-z][a-z-]*)\b", line)
            if m and m.group(1) not in from_help:
                from_help.append(m.group(1))
        _, err = run([self.path, "no-such-command"])
        names = from_help + [c for c in listed(err) if c not in from_help]
        assert names, "no commands found"
        return names

    def command_help(self, cmd):
        rc, text = run([self.path, "help", cmd])
        assert rc == 0, "'help %s' exited %d: %s" % (cmd, rc, text)
        return text

    def command_options(self, cmd):
        """The options the command's help lists: those of its "Usage:" lines and those that
        begin an indented line, but --help (every command takes it, and 'See
        regscale-token --help' is not one of its own)."""
        text = self.command_help(cmd)
        if text == self.help:
            return []  # "help help": the global help, whose options are global_options()
        opts, usage = [], True
        for line in text.splitlines():
            if usage and not line.strip():
                usage = False
            if usage:
                found = OPTION.findall(line)
            elif line.startswith(" ") and line.lstrip().startswith("-"):
                found = OPTION.findall(line.split()[0])
            else:
                found = []
            opts += [o for o in found if o not in opts and o != "--help"]
        return opts

    def global_options(self):
        """The options of "Options (before COMMAND):" in --help."""
        opts = []
        for line in section(self.help, "Options (before COMMAND):"):
            m = re.match(r"\s+((?:-[a-zA-Z], )?--[a-z][a-z0-9-]*)", line)
            if m:
                opts += [o.strip() for o in m.group(1).split(",")]
        assert opts, "no global options found"
        return opts

    def all_options(self):
        """Every option named anywhere in --help or a command's help."""
        texts = [self.help] + [self.command_help(c) for c in self.commands() if c != "help"]
        opts = []
        for t in texts:
            for o in OPTION.findall(t):
                if o not in opts:
                    opts.append(o)
        return opts

    def formats(self):
        """The --format values of get, as its error for an unknown one lists them."""
        rc, err = run([self.path, "get", "--format", "no-such-format"])
        assert rc == 2, err
        return listed(err)

    def environment(self):
        """The variables of "Environment:" in --help."""
        names = [m.group(1) for line in section(self.help, "Environment:")
                 for m in [re.match(r"  ([A-Z][A-Z0-9_]+)", line)] if m]
        assert names, "no environment variables found"
        return names

    def exit_codes(self):
        """The codes of "Exit status:" in --help."""
        codes = [m.group(1) for line in section(self.help, "Exit status:")
                 for m in [re.match(r"  (\d+)  ", line)] if m]
        assert codes, "no exit codes found"
        return codes


def daemon_options(path):
    """The options regscale-tokend --help lists."""
    rc, text = run([path, "--help"])
    assert rc == 0, text
    opts = []
    for line in section(text, "Options:"):
        m = re.match(r"\s+((?:-[a-zA-Z], )?--[a-z][a-z0-9-]*)", line)
        if m:
            opts += [o.strip() for o in m.group(1).split(",")]
    assert opts, "no daemon options found"
    return opts


# A key table: "static const struct key NAME[] = { ... };" with entries
# {"section", "name", KIND_..., ...}.
KEY_TABLE = re.compile(r"struct\s+key\s+\w+\s*\[\]\s*=\s*\{(.*?)\n\};", re.S)
KEY_ENTRY = re.compile(r'\{\s*"([a-z_]+)"\s*,\s*"([a-z_0-9]+)"\s*,\s*KIND_')


def config_keys(root):
    """Returns [(section, key)] of every key table in daemon/*.c, the keys the daemon
    accepts. Fails if an entry of a table does not read as one (so a new form of entry
    cannot slip by uncounted)."""
    keys = []
    for path in sorted(glob.glob(os.path.join(root, "daemon", "*.c"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for table in KEY_TABLE.findall(text):
            entries = KEY_ENTRY.findall(table)
            opened = len(re.findall(r"\{\s*\"", table))
            assert opened == len(entries), \
                "%s: %d key entries, %d read" % (path, opened, len(entries))
            keys += entries
    assert keys, "no config key table found in daemon/*.c"
    return keys


def proto_names(root, table):
    """Returns the wire names of proto/proto.c's table (op_names, state_names,
    error_names), but "ok"."""
    with open(os.path.join(root, "proto", "proto.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"\b%s\[[^]]*\]\s*=\s*\{(.*?)\};" % table, text, re.S)
    assert m, "no %s in proto/proto.c" % table
    names = [n for n in re.findall(r'=\s*"([a-z_]+)"', m.group(1)) if n != "ok"]
    assert names, "no names in %s" % table
    return names
