# SPDX-License-Identifier: MIT
"""The example configurations of docs/examples/ (installed to share/doc/regscale-token/examples):
the real daemon starts with each file as it is, with the systemd credential its comments name
(--name=NAME for systemd-creds, LoadCredential=NAME: and LoadCredentialEncrypted=NAME:) in
$CREDENTIALS_DIRECTORY as systemd would put it, and uses that credential: a password login
tries to log in with it, a service token is served.

Nothing goes to the network: the login helper is /bin/false, so a login fails at once (a
passing failure: the daemon keeps its credentials and retries later), and a service token's
check with RegScale cannot happen (which changes nothing: the token is served).
"""

import glob
import os
import re

import pytest

from conftest import TokenDaemon, stop_all, wait_until, write_file
from tokens import service_token

EXAMPLES = os.path.join(os.environ.get("RT_SOURCE_ROOT", ""), "docs", "examples")

# example -> the mode it is for: what its credential holds and what the daemon then does.
MODES = {
    "password.conf": "password",
    "service-token.conf": "token",
}


class ExampleDaemon(TokenDaemon):
    """regscale-tokend --config EXAMPLE (the file itself), on a socket in workdir."""

    def __init__(self, workdir, example, credentials):
        super().__init__(workdir, "example", args=["--login-helper", "/bin/false"])
        self.config = example
        self.args = ["--socket", self.socket] + self.args
        self.env = self.environment({"CREDENTIALS_DIRECTORY": credentials})


def credential_names(text):
    """The credential names the comments of an example use, in every form they take."""
    names = re.findall(r"systemd-creds encrypt --name=([\w.-]+)", text)
    names += re.findall(r"LoadCredential(?:Encrypted)?=([\w.-]+):", text)
    return names


def test_every_example_is_checked():
    found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.conf")))
    assert found == sorted(MODES), "docs/examples has %s; MODES here names %s" % (found,
                                                                                  sorted(MODES))


@pytest.mark.parametrize("name", sorted(MODES))
def test_example_comments_name_one_credential(name):
    """LoadCredential=, LoadCredentialEncrypted= and systemd-creds --name= agree."""
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        names = credential_names(f.read())
    assert len(names) >= 3, "want systemd-creds --name=, LoadCredential= and " \
        "LoadCredentialEncrypted= in the comments: %s" % names
    assert set(names) == {MODES[name]}, names


@pytest.mark.parametrize("name", sorted(MODES))
def test_daemon_accepts_example(workdir, name):
    path = os.path.join(EXAMPLES, name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cred = credential_names(text)[0]
    creds = os.path.join(workdir, "credentials")
    os.mkdir(creds, 0o700)
    token = service_token(exp_in=3600)
    secret = "correct horse battery staple" if MODES[name] == "password" else token
    write_file(os.path.join(creds, cred), secret + "\n", 0o400)

    d = ExampleDaemon(workdir, path, creds)
    try:
        d.start()
        status = d.rpc({"op": "status"})
        assert status["ok"] is True, status
        url = re.search(r"^url = (\S+)", text, re.M).group(1)
        assert status["url"] == url, status
        if MODES[name] == "password":
            user = re.search(r"^username = (\S+)", text, re.M).group(1)
            assert status["configured_username"] == user, status
            # With the password it found, the daemon tries to log in (and /bin/false fails):
            # without one it would wait in no_token and never start the helper.
            def retried():
                s = d.rpc({"op": "status"})
                return s if s["retries"] > 0 else None

            after = wait_until(retried, 5)
            assert after, d.rpc({"op": "status"})
            assert after["state"] == "retrying", after
        else:
            assert status["kind"] == "service", status
            assert d.get_token() == token
    finally:
        problems = stop_all([d])
    assert not problems, "\n".join(problems)
    assert "<3>" not in d.log_text(), d.log_text()
