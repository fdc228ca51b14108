#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks the shell completion in client/completion/ against what the client accepts:

  check_completion.py SOURCE_ROOT CLIENT

In bash (client/completion/regscale-token.bash sourced, _regscale_token called the way bash
calls it, with COMP_WORDS and COMP_CWORD), and in an interactive zsh with compinit on a
pseudo-terminal (tests/zsh_complete.zsh) when zsh is installed, the completion must offer:

  * every command (regscale-token <TAB>, and after a global option and its argument);
  * every global option (regscale-token -<TAB>);
  * every option each command's help lists (regscale-token CMD -<TAB>);
  * every --format value (get --format <TAB>, and --format=<TAB>);
  * the profile of a socket the test creates in $XDG_RUNTIME_DIR/regscale-token
    (regscale-token -p <TAB>, --profile <TAB>), and not that of a plain file there.

The commands, options and formats come from the client (tests/cli_help.py). Exits 1 listing
every gap, 0 when there is none.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import cli_help

PROFILE = "comptest-prof"
NOT_A_SOCKET = "plainfile"


def bash_complete(script, words, env):
    """Returns what _regscale_token offers for words (the last one being completed)."""
    prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
            'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _regscale_token; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog, "bash", script] + words,
                       capture_output=True, text=True, env=env, timeout=30)
    if p.returncode != 0 or p.stderr:
        raise AssertionError("bash completion of %r failed: %s" % (words, p.stderr))
    return [w for w in p.stdout.splitlines() if w]


def bash_registered(script, env):
    """Returns complete -p's line for regscale-token once the file is sourced."""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source "$1" && complete -p regscale-token', "bash", script],
                       capture_output=True, text=True, env=env, timeout=30)
    return p.stdout.strip()


def zsh_complete(helper, fpath, words, env):
    """Returns what zsh's completion offers for the line words (ending in the word being
    completed) in an interactive zsh."""
    line = " ".join(words)
    p = subprocess.run(["zsh", "-f", helper, fpath, line], capture_output=True, text=True,
                       env=env, timeout=60)
    if p.returncode == 77:
        raise RuntimeError("zsh has no zpty module")
    out = p.stdout.splitlines()
    if p.returncode != 0 or "<matches>" not in out or "</matches>" not in out:
        raise AssertionError("zsh completion of %r failed (exit %d): %s %s"
                             % (line, p.returncode, p.stdout, p.stderr))
    return out[out.index("<matches>") + 1:out.index("</matches>")]


def cases(c):
    """(words, what must be offered, what must not) for every check."""
    commands = c.commands()
    yield ["regscale-token", ""], commands, []
    yield ["regscale-token", "-p", PROFILE, ""], commands, []
    yield ["regscale-token", "--timeout", "3", "--json", ""], commands, []
    yield ["regscale-token", "help", ""], [x for x in commands if x != "help"], []
    yield ["regscale-token", "-"], c.global_options(), []
    for cmd in commands:
        opts = c.command_options(cmd)
        if opts:
            yield ["regscale-token", cmd, "-"], opts, []
    yield ["regscale-token", "get", "--format", ""], c.formats(), []
    yield ["regscale-token", "-p", PROFILE, "get", "--json", "--format", ""], c.formats(), []
    yield ["regscale-token", "-p", ""], [PROFILE], [NOT_A_SOCKET]
    yield ["regscale-token", "--profile", "comp"], [PROFILE], []


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    root, client = argv[1], argv[2]
    comp = os.path.join(root, "client", "completion")
    bash_file = os.path.join(comp, "regscale-token.bash")
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zsh_complete.zsh")
    c = cli_help.Client(client)
    errors, notes = [], []

    with tempfile.TemporaryDirectory(prefix="rtc-", dir="/tmp") as xdg:
        d = os.path.join(xdg, "regscale-token")
        os.mkdir(d, 0o700)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.join(d, PROFILE + ".sock"))
        open(os.path.join(d, NOT_A_SOCKET + ".sock"), "w").close()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": xdg,
               "XDG_RUNTIME_DIR": xdg, "LC_ALL": "C", "TERM": "dumb"}

        reg = bash_registered(bash_file, env)
        if reg != "complete -F _regscale_token regscale-token":
            errors.append("bash: complete -p regscale-token says %r" % reg)
        # bash splits "--format=json" at '=': COMP_WORDS (... --format = j)
        got = bash_complete(bash_file, ["regscale-token", "get", "--format", "=", ""], env)
        for want in c.formats():
            if want not in got:
                errors.append("bash: get --format=<TAB> does not offer %s (offers %s)"
                              % (want, " ".join(got)))

        shells = [("bash", lambda w: bash_complete(bash_file, w, env))]
        if shutil.which("zsh"):
            shells.append(("zsh", lambda w: zsh_complete(helper, comp, w, env)))
        else:
            notes.append("zsh not found: the zsh completion is not checked")
        for shell, complete in shells:
            try:
                for words, want, unwanted in cases(c):
                    got = complete(words)
                    for w in want:
                        if w not in got:
                            errors.append("%s: '%s<TAB>' does not offer %s (offers: %s)"
                                          % (shell, " ".join(words), w, " ".join(got)))
                    for w in unwanted:
                        if w in got:
                            errors.append("%s: '%s<TAB>' offers %s" % (shell, " ".join(words), w))
            except RuntimeError as e:
                notes.append("%s: %s: not checked" % (shell, e))
        s.close()

    for e in errors:
        print(e)
    for n in notes:
        print("completion: " + n)
    print("completion: %d gap(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
