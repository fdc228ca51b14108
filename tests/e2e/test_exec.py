# SPDX-License-Identifier: MIT
"""regscale-token exec: a command run with the token in its environment, as regscale-cli and
scripts read it (token, domain, userId; REGSCALE_TOKEN, REGSCALE_DOMAIN, REGSCALE_USER_ID),
REGSCALE_CONFIG_FILE in a private directory removed afterwards, no password variables, its
exit status and signals passed through; and `get --format env`, the same variables for
eval in a shell. The curl and Python tests call the test server's protected endpoint
GET /api/accounts/find/{id} with what exec gave them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import CLIENT, URL, base_env, run_client
from loginenv import lg, lg_ca, lg_workdir  # noqa: F401 - pytest fixtures
from loginenv import needs_binaries
from procmem import describe_hits, scan_process
from test_client import FakeDaemon
from tokens import service_token

pytestmark = needs_binaries

PREFIX = "regscale-token-exec."
TOKEN_VARS = ("token", "domain", "userId", "REGSCALE_TOKEN", "REGSCALE_DOMAIN",
              "REGSCALE_USER_ID")
# What a caller may have set that must not reach the command.
CALLER = {"REGSCALE_PASSWORD": "caller-password", "REGSCALE_USERNAME": "caller-user",
          "REGSCALE_USER": "caller-user", "REGSCALE_CONFIG_FILE": "/nowhere/init.yaml",
          "token": "Bearer stale", "domain": "https://stale.example", "userId": "stale",
          "REGSCALE_TOKEN": "stale", "REGSCALE_DOMAIN": "https://stale.example",
          "REGSCALE_USER_ID": "stale"}


def parse_env0(out):
    """Returns the {name: value} of `env -0` output."""
    pairs = [e.split("=", 1) for e in out.split("\0") if e]
    return {k: v for k, v in pairs}


def leftovers(d):
    """The exec directories in d (XDG_RUNTIME_DIR of the tests)."""
    return sorted(n for n in os.listdir(d) if n.startswith(PREFIX))


def xdg(daemon):
    return daemon.environment()["XDG_RUNTIME_DIR"]


def get_json(daemon, env=None):
    rc, out, err = daemon.client("get", "--format", "json", env=env)
    assert rc == 0, err
    return json.loads(out)


def check_vars(env, reply):
    """env holds the variables of the get reply's token, user and URL."""
    assert env["token"] == "Bearer " + reply["token"]
    assert env["REGSCALE_TOKEN"] == reply["token"]
    assert env["domain"] == env["REGSCALE_DOMAIN"] == reply["url"]
    assert env["userId"] == env["REGSCALE_USER_ID"] == reply["user_id"]


# --- the environment -----------------------------------------------------------------------


def test_exec_env_has_every_variable_and_no_password(daemon):
    rc, out, err = daemon.client("exec", "--", "env", "-0", env=CALLER)
    assert (rc, err) == (0, "")
    env = parse_env0(out)
    check_vars(env, get_json(daemon))
    assert env["domain"] == URL and env["token"] == "Bearer " + daemon.token
    for name in ("REGSCALE_PASSWORD", "REGSCALE_USERNAME", "REGSCALE_USER"):
        assert name not in env, name
    config = env["REGSCALE_CONFIG_FILE"]
    assert os.path.basename(config) == "init.yaml"
    parent = os.path.dirname(os.path.dirname(config))
    assert parent == xdg(daemon), config  # under $XDG_RUNTIME_DIR
    assert os.path.basename(os.path.dirname(config)).startswith(PREFIX)
    assert not os.path.exists(os.path.dirname(config)), "config directory left behind"
    # The rest of the caller's environment is passed on.
    assert env["LC_ALL"] == "C" and env["PATH"] == os.environ["PATH"]


def test_exec_without_options_separator(daemon):
    """CMD may follow exec's options without "--"; its own options stay its own."""
    rc, out, err = daemon.client("exec", "--min-valid", "1m", "env", "-0")
    assert rc == 0, err
    assert parse_env0(out)["REGSCALE_TOKEN"] == daemon.token
    rc, out, err = daemon.client("exec", "sh", "-c", 'echo "$0 $1"', "--wait", "x")
    assert (rc, out) == (0, "--wait x\n"), err


def fake_get(workdir, token, **fields):
    """A scripted daemon answering one get with token and fields (url, user_id...)."""
    reply = {"ok": True, "v": 1, "kind": "pasted", "user_id": None, "username": None,
             "url": None, "expires_at": None, "expires": None, "expires_in": None}
    reply.update(fields)
    reply["token"] = token
    return FakeDaemon(os.path.join(workdir, "fake.sock"),
                      [json.dumps(reply).encode() + b"\n"])


def test_exec_without_url_or_user_removes_them(workdir):
    """A daemon without url, a token without user id: the caller's stale values go."""
    token = service_token()
    f = fake_get(workdir, token)
    try:
        rc, out, err = run_client(["--socket", f.path, "exec", "--", "env", "-0"],
                                  base_env(workdir, **CALLER))
    finally:
        f.close()
    assert rc == 0, err
    env = parse_env0(out)
    assert env["token"] == "Bearer " + token and env["REGSCALE_TOKEN"] == token
    for name in ("domain", "userId", "REGSCALE_DOMAIN", "REGSCALE_USER_ID"):
        assert name not in env, name
    assert json.loads(f.requests[0]) == {"op": "get", "v": 1, "min_valid": 900, "wait": 30}


def test_exec_config_dir_private_then_removed(daemon):
    script = r'''
        dir=$(dirname "$REGSCALE_CONFIG_FILE")
        stat -c '%a %u %F' "$dir"
        echo "$dir"
        echo "token: $token" > "$REGSCALE_CONFIG_FILE"
        mkdir "$dir/artifacts" "$dir/artifacts/deeper"
        echo x > "$dir/artifacts/deeper/out.json"
        ln -s / "$dir/root-link"
        ln -s "$HOME" "$dir/artifacts/home-link"
    '''
    rc, out, err = daemon.client("exec", "--", "sh", "-c", script)
    assert (rc, err) == (0, "")
    mode, dirname = out.splitlines()
    assert mode == "700 %d directory" % os.getuid()
    assert not os.path.lexists(dirname), "config directory left behind"
    assert os.path.isdir("/") and os.path.isdir(os.environ.get("HOME", "/"))
    assert leftovers(xdg(daemon)) == []


def test_exec_under_tmp_without_xdg_runtime_dir(daemon):
    rc, out, err = daemon.client("exec", "--", "sh", "-c", 'echo "$REGSCALE_CONFIG_FILE"',
                                 env={"XDG_RUNTIME_DIR": None})
    assert rc == 0, err
    path = out.strip()
    assert path.startswith("/tmp/" + PREFIX) and path.endswith("/init.yaml"), path
    assert not os.path.exists(os.path.dirname(path))


# --- exit status ---------------------------------------------------------------------------


@pytest.mark.parametrize("script,rc", [("exit 0", 0), ("exit 7", 7), ("exit 255", 255),
                                       ("kill -KILL $$", 128 + 9),
                                       ("kill -TERM $$", 128 + 15)])
def test_exec_passes_exit_status(daemon, script, rc):
    got, out, err = daemon.client("exec", "--", "sh", "-c", script)
    assert (got, out, err) == (rc, "", "")
    assert leftovers(xdg(daemon)) == []


def test_exec_command_not_found_127_not_executable_126(daemon):
    rc, out, err = daemon.client("exec", "--", "no-such-command-rt")
    assert (rc, out) == (127, "")
    assert err.startswith("regscale-token: ") and "no-such-command-rt" in err, err
    assert err.count("\n") == 1
    rc, out, err = daemon.client("exec", "--", os.path.join(daemon.workdir, "nothing"))
    assert (rc, out) == (127, ""), err
    rc, out, err = daemon.client("exec", "--", daemon.config)  # a file, not executable
    assert (rc, out) == (126, ""), err
    rc, out, err = daemon.client("exec", "--", daemon.workdir)  # a directory
    assert (rc, out) == (126, ""), err
    assert leftovers(xdg(daemon)) == []


def test_exec_errors_before_the_command_runs(daemon, workdir):
    marker = os.path.join(workdir, "ran")
    touch = ["--", "sh", "-c", 'touch "$1"', "sh", marker]
    # No daemon: 3. A service token valid for less than --min-valid: 4. No command: 2.
    rc, out, err = daemon.client("--socket", os.path.join(workdir, "none.sock"), "exec", *touch)
    assert rc == 3 and out == "", err
    rc, out, err = daemon.client("exec", "--min-valid", "2h", *touch)
    assert rc == 4 and out == "", err
    rc, out, err = daemon.client("exec")
    assert rc == 2 and "missing the command" in err, err
    rc, out, err = daemon.client("exec", "--min-valid", "soon", *touch)
    assert rc == 2, err
    assert not os.path.exists(marker)
    assert leftovers(xdg(daemon)) == []


def test_exec_default_min_valid_is_15_minutes(daemons):
    """The default asks for a token that outlasts a run: 10 minutes left is refused."""
    d = daemons(token=service_token(exp_in=600))
    rc, out, err = d.client("exec", "--", "true")
    assert rc == 4, (rc, out, err)
    assert d.client("exec", "--min-valid", "5m", "--", "true")[0] == 0
    d20 = daemons(token=service_token(exp_in=1200))
    assert d20.client("exec", "--", "true")[0] == 0


# --- signals -------------------------------------------------------------------------------


def default_signals():
    """Gives the client the default action for the signals it forwards, as a terminal's shell
    does. The suite may run under nohup (SIGHUP ignored) or as a background job (SIGINT
    ignored): an ignored signal is never delivered, so there is nothing to forward, and sh
    may not trap a signal that was ignored when it started."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def start_exec(daemon, script, env=None):
    """Starts `regscale-token exec -- sh -c script` with stdout piped; returns the Popen once
    the script printed its first line (returned too)."""
    p = subprocess.Popen([CLIENT, "--socket", daemon.socket, "exec", "--", "sh", "-c", script],
                         env=daemon.environment(env), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=default_signals)
    first = p.stdout.readline().decode()
    assert first, "the command printed nothing; stderr: %r" % p.stderr.read()
    return p, first.strip()


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 9), (signal.SIGINT, 10),
                                      (signal.SIGHUP, 11)])
def test_exec_forwards_signals(daemon, sig, code):
    name = signal.Signals(sig).name[3:]
    script = 'trap "exit %d" %s; echo "$REGSCALE_CONFIG_FILE"; while :; do sleep 0.05; done' % (
        code, name)
    p, config = start_exec(daemon, script)
    assert os.path.isdir(os.path.dirname(config))
    time.sleep(0.1)  # the trap is set before the echo; the loop runs
    p.send_signal(sig)
    try:
        rc = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == code, (rc, p.stderr.read())
    assert not os.path.exists(os.path.dirname(config))


def test_exec_client_holds_no_token_while_the_command_runs(daemon):
    """The client's copy is wiped before it waits: the command's environment holds the
    only ones. (Reading another process's memory needs root or the same uid.)"""
    p, _ = start_exec(daemon, 'echo ready; exec sleep 30')
    try:
        time.sleep(0.1)
        hits, _ = scan_process(p.pid, {"token": daemon.token.split(".", 1)[1]})
        assert hits == [], "the client still holds the token:\n" + describe_hits(hits)
        # ... while the command has it.
        with open("/proc/%d/environ" % p.pid, "rb") as f:
            assert daemon.token.encode() not in f.read()
        child = [int(x) for x in open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read()
                 .split()]
        with open("/proc/%d/environ" % child[0], "rb") as f:
            assert b"REGSCALE_TOKEN=" + daemon.token.encode() in f.read()
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 128 + signal.SIGTERM


def test_exec_killed_client_dir_removed_by_next_exec(daemon):
    """A client killed with SIGKILL cannot clean up: its directory stays until the next
    exec in the same place removes it, unless a live client still holds it."""
    live, live_config = start_exec(daemon, 'echo "$REGSCALE_CONFIG_FILE"; exec sleep 60')
    dead, dead_line = start_exec(daemon, 'echo "$$ $REGSCALE_CONFIG_FILE"; exec sleep 60')
    pid, dead_config = dead_line.split(" ", 1)
    try:
        dead.kill()
        dead.wait(5)
        os.kill(int(pid), signal.SIGKILL)  # the orphaned command
        dead_dir = os.path.dirname(dead_config)
        assert os.path.isdir(dead_dir), "a SIGKILL leaves the directory behind"
        # A directory younger than 10 s is never swept (its maker may lock it any moment).
        assert daemon.client("exec", "--", "true")[0] == 0
        assert os.path.isdir(dead_dir)
        time.sleep(10.5)
        assert daemon.client("exec", "--", "true")[0] == 0
        assert not os.path.exists(dead_dir), "the stale directory was not removed"
        assert os.path.isdir(os.path.dirname(live_config)), "a live client's was removed"
    finally:
        live.send_signal(signal.SIGTERM)
        assert live.wait(10) == 128 + signal.SIGTERM
    assert leftovers(xdg(daemon)) == []


# --- get --format env ----------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_get_format_env_eval_gives_the_same_values(daemon, shell):
    if not shutil.which(shell):
        pytest.skip(shell + " is not installed")
    script = 'eval "$("$0" --socket "$1" get --format env)" && env -0'
    rc, out, err = daemon.client("exec", "--", shell, "-c", script, CLIENT, daemon.socket,
                                 env=CALLER)
    assert (rc, err) == (0, "")
    evaluated = parse_env0(out)
    rc, out, err = daemon.client("exec", "--", "env", "-0")
    exec_env = parse_env0(out)
    for name in TOKEN_VARS:
        assert evaluated[name] == exec_env[name], name
    check_vars(evaluated, get_json(daemon))


def test_get_format_env_lines(daemon):
    rc, out, err = daemon.client("get", "--format", "env")
    assert (rc, err) == (0, "")
    reply = get_json(daemon)
    assert out.splitlines() == [
        "export token='Bearer %s'" % daemon.token,
        "export domain='%s'" % URL,
        "export userId='%s'" % reply["user_id"],
        "export REGSCALE_TOKEN='%s'" % daemon.token,
        "export REGSCALE_DOMAIN='%s'" % URL,
        "export REGSCALE_USER_ID='%s'" % reply["user_id"],
    ]


def test_get_format_env_quotes_anything(workdir):
    """Values from the daemon may hold quotes, $(...), backquotes, backslashes and newlines:
    they come back unchanged, and run nothing; unknown ones are unset."""
    token = service_token()
    url = "https://h.example/it's $(touch pwned) `touch pwned` \\ \" \n ;end"
    f = fake_get(workdir, token, url=url)
    try:
        script = 'eval "$("$0" --socket "$1" get --format env)" && env -0'
        env = base_env(workdir, userId="stale", REGSCALE_USER_ID="stale")
        p = subprocess.run(["sh", "-c", script, CLIENT, f.path], env=env, cwd=workdir,
                           capture_output=True, timeout=15)
    finally:
        f.close()
    assert p.returncode == 0, p.stderr
    got = parse_env0(p.stdout.decode())
    assert got["domain"] == got["REGSCALE_DOMAIN"] == url
    assert got["token"] == "Bearer " + token
    assert "userId" not in got and "REGSCALE_USER_ID" not in got
    assert not os.path.exists(os.path.join(workdir, "pwned"))


# --- against the test server: curl, and a script that reads the token like regscale-cli ----


CLI_LIKE = r'''
import os, ssl, sys, urllib.error, urllib.request
# regscale-cli takes any variable named exactly like one of its config keys, and sends
# "token" verbatim as the Authorization header.
token, domain, user_id = os.environ["token"], os.environ["domain"], os.environ["userId"]
ctx = ssl.create_default_context(cafile=sys.argv[1])
req = urllib.request.Request(domain.rstrip("/") + "/api/accounts/find/" + user_id,
                             headers={"Authorization": token})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
'''


def test_exec_curl_calls_the_api(lg):
    if not shutil.which("curl"):
        pytest.fail("curl is not installed (apt-get install -y curl)")
    d = lg.daemon()
    d.wait_valid()
    ca = lg.ca["ca_cert"]
    curl = ('curl -sS --cacert "$0" -o /dev/null -w "%{http_code}" '
            '-H "Authorization: $token" "$domain/api/accounts/find/$userId"')
    rc, out, err = d.client("exec", "--", "sh", "-c", curl, ca)
    assert (rc, out) == (0, "200"), err
    # The same request without the token is refused: the 200 is the token's doing.
    rc, out, err = d.client("exec", "--", "sh", "-c", curl.replace("$token", "Bearer x"), ca)
    assert (rc, out) == (0, "401"), err
    calls = d.server.control.stats()["api_calls"]
    assert [c["status"] for c in calls] == [200, 401], calls


def test_exec_python_reads_the_token_like_regscale_cli(lg):
    d = lg.daemon()
    st = d.wait_valid()
    script = os.path.join(d.workdir, "cli_like.py")
    with open(script, "w") as f:
        f.write(CLI_LIKE)
    rc, out, err = d.client("exec", "--", "/usr/bin/python3", script, lg.ca["ca_cert"])
    assert rc == 0, err
    status, _, body = out.strip().partition(" ")
    assert status == "200", out
    assert json.loads(body)["id"] == st["user_id"]
    # Run without exec, the script finds no token.
    p = subprocess.run(["/usr/bin/python3", script, lg.ca["ca_cert"]], capture_output=True,
                       env=d.environment(), timeout=15)
    assert p.returncode != 0 and b"KeyError" in p.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
