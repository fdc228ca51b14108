# SPDX-License-Identifier: MIT
"""Every shell and Python example in README.md and proto/PROTOCOL.md runs as written.

The examples are read from the two files when the tests are collected, so one added later is
covered without touching this file. The convention, for whoever writes one:

* A fenced block labelled ```sh, ```shell, ```bash, ```console, ```python or ```py is a
  program, and it is run. ```json, ```ini, ```text and unlabelled blocks are documentation
  (a request and its reply, a configuration, a synopsis) and are not run. An unlabelled
  block whose first line starts with "$ " is a transcript without its ```console label, and
  fails; so does any other label, until it is added to RUN_LANGS or DOC_LANGS below.
* A marker, an HTML comment on the last non-blank line before the fence, says more:

    <!-- example: not run: REASON -->
        the block cannot run in a test (it needs systemd as PID 1, apt-get, a real
        RegScale, or writes /etc): it is only checked for syntax (sh -n, bash -n,
        compile()) and reported as skipped with REASON. Keep these few: every example a
        script writer copies (the socket, the client in a script) must run.
    <!-- example: needs: CMD -->
        the block runs a program that is a test dependency but no build one (promtool):
        it runs where CMD is on PATH (the Quick start installs it) and is skipped elsewhere.
    <!-- example: prelude -->
        a shell block that sets what the file's other shell blocks use ($SOCK in
        PROTOCOL.md): it runs before each of them, as a reader pastes it once, and on its
        own it must exit 0 and print nothing.

  A marker of another kind, or one not followed by a fence, fails.
* In a ```console block the lines starting with "$ " are commands (one ending in "\\" goes
  on to the next line) and the lines after a command are its output. The commands run as one
  shell script, and what they print must match the lines shown, "..." standing for any text
  (a line of its own "..." for any number of lines). A console block shows no output only
  if it must print nothing.

Each runnable block is its own test case, named FILE:LINE (the line of its opening fence)
and environment, run against a daemon started for it, as a user would run it:

  user    XDG_RUNTIME_DIR set and the daemon on $XDG_RUNTIME_DIR/regscale-token/default.sock
          (a person's own daemon, `systemctl --user`);
  script  XDG_RUNTIME_DIR unset (root, a service, cron) and REGSCALE_TOKEN_SOCKET naming the
          daemon's socket;
  system  XDG_RUNTIME_DIR and REGSCALE_TOKEN_SOCKET unset, REGSCALE_TOKEN_PROFILE=NAME and the
          daemon on /run/regscale-token/NAME.sock (the system units; needs root).

The daemon serves a service token (conftest.py), or, for a block that sends login, refresh
or logout (as an op or a regscale-token command), it is a password-mode daemon logged in to
the bundled HTTPS server (loginenv.py), whose logins then take 1.5 s: the bundled server
answers in milliseconds, a real RegScale in a second or more, and an example has to wait
for the answer. PATH starts with a directory holding regscale-token and regscale-tokend
(symlinks to the built programs). Shell blocks run with `sh -e` (```bash with `bash -e`),
Python blocks with /usr/bin/python3, in a scratch directory, stdin /dev/null.

A block fails when it exits non-zero (`-e`: any command failing) or runs over BLOCK_TIMEOUT,
writes a Python traceback, prints nothing (a prelude, and a console block that shows no
output, must print nothing), prints a JSON reply with "ok":false (unless a console block
shows it), or prints a token other than the one the daemon serves.

The raw-protocol examples need socat and nc (OpenBSD netcat, Debian's netcat-openbsd): both
are in TEST_DEPS of tests/quickstart.
"""

import json
import os
import re
import shutil
import secrets
import subprocess
import textwrap
from dataclasses import dataclass

import pytest

from conftest import CLIENT, DAEMON
from harness import PYTHON, SCRUB_TLS, TESTS_DIR, clean_env
from loginenv import LoginDaemon
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - fixtures
from tokens import service_token

SOURCE_ROOT = os.environ.get("RT_SOURCE_ROOT") or os.path.dirname(TESTS_DIR)
FILES = ("README.md", "proto/PROTOCOL.md")

# fence label -> how the block runs
RUN_LANGS = {"sh": "sh", "shell": "sh", "bash": "bash", "console": "console",
             "python": "python", "py": "python"}
DOC_LANGS = {"", "json", "ini", "text", "c"}

BLOCK_TIMEOUT = 90  # seconds: more than the examples' own waits (socat -t 60)
SLOW_LOGIN = 1.5  # seconds each login takes once a password daemon is logged in
ENVS = ("user", "script", "system")

FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
FENCE_END = re.compile(r"^\s*```\s*$")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(.*?)\s*-->\s*$")
NEEDS_LOGIN = re.compile(r'"op"\s*:\s*"(?:login|refresh|logout)"'
                         r"|\bregscale-token\b[^\n|;&]*\b(?:login|refresh|logout)\b")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass
class Block:
    file: str
    line: int  # of the opening fence, 1-based
    lang: str  # the fence's label, lower case
    text: str
    marker: str = ""  # "", "prelude" or "not run"
    reason: str = ""  # why a "not run" block is not run
    needs: str = ""  # a program the block runs only where it is installed

    @property
    def name(self):
        return "%s:%d" % (self.file, self.line)

    @property
    def kind(self):
        return RUN_LANGS.get(self.lang)


def read_blocks(name):
    """Returns (blocks, problems) of the file name (relative to the source root): every
    fenced block with the marker before it, and what breaks the convention."""
    blocks, problems = [], []
    path = os.path.join(SOURCE_ROOT, name)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return [], ["%s: %s" % (name, e)]
    marker = None  # (line, text) of a marker waiting for its fence
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            mk = MARKER.match(lines[i])
            if marker and (mk or lines[i].strip()):
                problems.append("%s:%d: marker %r is not followed by a fenced block"
                                % (name, marker[0], marker[1]))
                marker = None
            if mk:
                marker = (i + 1, mk.group(1))
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not FENCE_END.match(lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            problems.append("%s:%d: fence never closed" % (name, start + 1))
        i += 1
        b = Block(name, start + 1, m.group(2).lower(), textwrap.dedent("\n".join(body)) + "\n")
        if marker:
            text = marker[1]
            if text == "prelude":
                b.marker = "prelude"
            elif text.startswith("not run:") and text[len("not run:"):].strip():
                b.marker, b.reason = "not run", text[len("not run:"):].strip()
            elif re.fullmatch(r"needs: [A-Za-z0-9_.-]+", text):
                b.needs = text[len("needs: "):]
            else:
                problems.append("%s:%d: unknown marker %r (want \"not run: REASON\", "
                                "\"needs: CMD\" or \"prelude\")" % (name, marker[0], text))
            marker = None
        first = next((ln for ln in b.text.splitlines() if ln.strip()), "")
        if b.kind is None and b.lang not in DOC_LANGS:
            problems.append("%s: unknown fence label %r: add it to RUN_LANGS or DOC_LANGS in "
                            "tests/e2e/test_examples.py" % (b.name, b.lang))
        elif b.kind is None and b.lang == "" and first.startswith("$ "):
            problems.append("%s: a transcript without a label: make it ```console" % b.name)
        elif b.kind is None and b.marker:
            problems.append("%s: a %s block is never run: drop its marker" % (b.name, b.lang))
        elif b.marker == "prelude" and b.kind not in ("sh", "bash"):
            problems.append("%s: a prelude must be a sh or bash block" % b.name)
        blocks.append(b)
    if marker:
        problems.append("%s:%d: marker %r is not followed by a fenced block"
                        % (name, marker[0], marker[1]))
    return blocks, problems


def collect():
    blocks, problems = [], []
    for name in FILES:
        b, p = read_blocks(name)
        blocks += b
        problems += p
        if not any(x.kind for x in b):
            problems.append("%s: no runnable example found" % name)
    return blocks, problems


BLOCKS, PROBLEMS = collect()
RUN = [b for b in BLOCKS if b.kind and b.marker != "not run"]
NOT_RUN = [b for b in BLOCKS if b.kind and b.marker == "not run"]


def preludes(block):
    """The text of the preludes of block's file, to run before block (a shell block)."""
    return "".join(p.text for p in BLOCKS
                   if p.file == block.file and p.marker == "prelude" and p is not block)


def console_parts(text):
    """Splits a console block into (commands, expected output lines)."""
    commands, expected, cont = [], [], False
    for ln in text.splitlines():
        if cont:
            commands[-1] += "\n" + ln
        elif ln.startswith("$ "):
            commands.append(ln[2:])
        elif commands:
            expected.append(ln)
        else:
            raise AssertionError("console block: output before the first \"$ \" command")
        cont = ln.endswith("\\")
    return commands, expected


def loose_match(expected, output):
    """True when output (str) matches the expected lines, "..." standing for any text and a
    line of its own "..." for any number of lines."""
    parts = []
    for ln in expected:
        if ln.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\\n]*".join(re.escape(p) for p in ln.split("...")) + r"\n")
    return re.fullmatch("".join(parts), output) is not None


# --- syntax -------------------------------------------------------------------------------


def check_syntax(block, tmp):
    """Fails the test if the block does not even parse."""
    if block.kind == "python":
        compile(block.text, block.name, "exec")
        return
    text = block.text
    if block.kind == "console":
        text = "\n".join(console_parts(block.text)[0]) + "\n"
    path = os.path.join(tmp, "syntax.sh")
    with open(path, "w") as f:
        f.write(text)
    shell = "bash" if block.kind == "bash" else "sh"
    p = subprocess.run([shell, "-n", path], capture_output=True, text=True)
    assert p.returncode == 0, "%s does not parse with %s -n:\n%s" % (block.name, shell,
                                                                      p.stderr)


# --- the world a block runs in -----------------------------------------------------------


@pytest.fixture
def system_dir():
    """/run/regscale-token, made for the test if it was missing (and then removed)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make /run/regscale-token")
    run_dir = "/run/regscale-token"
    made = not os.path.isdir(run_dir)
    if made:
        os.mkdir(run_dir, 0o755)
    yield run_dir
    if made:
        try:
            os.rmdir(run_dir)
        except OSError:
            pass


def bin_dir(workdir):
    """A directory of symlinks to the built regscale-token and regscale-tokend."""
    d = os.path.join(workdir, "bin")
    os.mkdir(d)
    os.symlink(CLIENT, os.path.join(d, "regscale-token"))
    os.symlink(DAEMON, os.path.join(d, "regscale-tokend"))
    return d


def world(request, block, env_kind, workdir):
    """Starts the daemon block runs against and returns (environment, token_now, daemon):
    the environment of block's process, a function returning the token served now, and the
    daemon."""
    env = clean_env(workdir, {}, SCRUB_TLS)  # XDG_RUNTIME_DIR = workdir/xdg
    env["PATH"] = bin_dir(workdir) + ":" + os.environ.get("PATH", "/usr/bin:/bin")
    if env_kind == "user":
        if os.path.exists("/run/regscale-token/default.sock"):
            pytest.skip("a system-wide /run/regscale-token/default.sock takes precedence")
        sock = os.path.join(env["XDG_RUNTIME_DIR"], "regscale-token", "default.sock")
    elif env_kind == "script":
        env.pop("XDG_RUNTIME_DIR")
        sock = os.path.join(workdir, "examples.sock")
        env["REGSCALE_TOKEN_SOCKET"] = sock
    else:
        run_dir = request.getfixturevalue("system_dir")
        env.pop("XDG_RUNTIME_DIR")
        profile = "rte-" + secrets.token_hex(4)
        env["REGSCALE_TOKEN_PROFILE"] = profile
        sock = os.path.join(run_dir, profile + ".sock")

    if NEEDS_LOGIN.search(block.text):
        login_env = request.getfixturevalue("lg")
        srv = login_env.server()
        d = login_env.daemon(srv, name="ex", socket_path=sock)
        d.wait_valid(timeout=10)
        srv.control.fault("slow", seconds=SLOW_LOGIN, on="login")

        def token_now():
            return d.remember(d.rpc({"op": "get"}, timeout=10)).get("token")
        return env, token_now, d
    token = service_token(exp_in=3600)
    d = request.getfixturevalue("daemons")(token=token, name="ex", socket_path=sock)
    return env, lambda: token, d


def run_block(block, env, workdir):
    """Runs block as a user would; returns (rc, stdout, stderr, expected) where expected
    is the output a console block shows (None for other blocks)."""
    expected = None
    if block.kind == "python":
        path = os.path.join(workdir, "example.py")
        text, argv = block.text, [PYTHON, path]
    else:
        path = os.path.join(workdir, "example.sh")
        text = block.text
        if block.kind == "console":
            commands, expected = console_parts(block.text)
            text = "\n".join(commands) + "\n"
        if block.marker != "prelude":
            text = preludes(block) + text
        argv = ["bash" if block.kind == "bash" else "sh", "-e", path]
    with open(path, "w") as f:
        f.write(text)
    try:
        p = subprocess.run(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s ran over %d s; stdout:\n%s\nstderr:\n%s" % (
            block.name, BLOCK_TIMEOUT, (e.stdout or b"").decode("utf-8", "replace"),
            (e.stderr or b"").decode("utf-8", "replace")))
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"), expected)


# --- the tests ----------------------------------------------------------------------------


def test_examples_follow_the_convention():
    """Every fenced block has a known label, every marker a block, and both files have
    examples to run (so the extraction cannot silently find none)."""
    assert not PROBLEMS, "\n".join(PROBLEMS)
    assert RUN


@pytest.mark.parametrize("block", NOT_RUN, ids=[b.name for b in NOT_RUN])
def test_example_not_run(block, workdir):
    """A block that cannot run in a test still parses; it is reported with its reason."""
    check_syntax(block, workdir)
    pytest.skip("%s not run: %s" % (block.name, block.reason))


@pytest.mark.parametrize("env_kind", ENVS)
@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_example(request, block, env_kind, workdir):
    check_syntax(block, workdir)
    if block.needs and not shutil.which(block.needs):
        pytest.skip("%s needs %s, which is not installed" % (block.name, block.needs))
    env, token_now, daemon = world(request, block, env_kind, workdir)
    rc, out, err, expected = run_block(block, env, workdir)
    shown = "%s (%s) exited %d\n--- ran:\n%s--- stdout:\n%s--- stderr:\n%s" % (
        block.name, env_kind, rc, block.text, out, err)
    assert rc == 0, shown
    assert "Traceback (most recent call last)" not in err, shown
    if block.marker == "prelude":
        assert out == "", "a prelude must print nothing\n" + shown
        return
    if block.kind == "console":
        assert loose_match(expected, out), (
            "output differs from the one shown:\n%s\n%s" % ("\n".join(expected), shown))
    else:
        assert out.strip(), "the example printed nothing\n" + shown
        for ln in out.splitlines():
            if ln.startswith("{"):
                reply = json.loads(ln)
                assert reply.get("ok") is True, "an error reply\n" + shown
    token = token_now()
    for t in JWT.findall(out):
        if isinstance(daemon, LoginDaemon):
            daemon.secrets.add(t)  # the log check at teardown looks for it too
        assert t == token, "printed a token the daemon does not serve\n" + shown

