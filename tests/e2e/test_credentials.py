# SPDX-License-Identifier: MIT
"""Encrypted systemd credentials: the system unit's LoadCredentialEncrypted=, run as far as
a machine whose PID 1 is not systemd allows.

* The unit loads one credential, encrypted, and documents the other mode's and the plain
  (LoadCredential=) drop-ins; every `systemd-creds encrypt --name=` in the unit and the
  README names a credential the unit loads.
* For the password and for a service token: the secret is encrypted with `systemd-creds
  encrypt --with-key=host --name=ID` into the file the unit names (ID and path parsed from
  the unit, so they cannot drift from it), decrypted with `systemd-creds decrypt --name=ID`
  into a CREDENTIALS_DIRECTORY the test makes (0700, the file 0400, named ID) as the
  service manager would at start, and the real daemon, started with the unit's ExecStart=
  under systemd-socket-activate, logs in to the bundled server with it (a `get` succeeds).
  A daemon that read another credential name than the unit passes would not log in.
* The name embedded in the ciphertext is what binds it to the unit: a file encrypted
  without `--name=` does not decrypt as the unit's ID (why the README says `--name=`).
* The documented plain-text drop-in passes `systemd-analyze verify` and keeps the exposure.

The host key: `systemd-creds encrypt --with-key=host` creates /var/lib/systemd/
credential.secret on first use. These tests never touch it: $SYSTEMD_CREDENTIAL_SECRET
points systemd-creds (encrypt and decrypt) at a key of the test's own in its scratch
directory, and each test checks that /var/lib/systemd/credential.secret is as it was. The
encryption is the same (AES-256-GCM with a key derived from the host key and
/etc/machine-id); only the key's path differs. No root needed for that either.

What cannot be tested here, since PID 1 is not systemd:
  * the service manager itself performing LoadCredentialEncrypted= at start: decrypting,
    checking the embedded name against the ID, mounting $CREDENTIALS_DIRECTORY (ramfs,
    owned by User=regscale-token) and failing the start with status=243/CREDENTIALS when the
    file is missing or does not decrypt. The test does the same steps with systemd-creds;
  * `systemd-run -p LoadCredentialEncrypted=...` (needs PID 1's D-Bus API), and
    `systemctl edit` drop-ins taking effect: that an empty LoadCredentialEncrypted= really
    empties the unit's list before the drop-in's own line is only known from
    systemd.exec(5), not observed (systemd 252's `systemd --test` dump does not show
    credentials; `systemd-analyze verify` only checks the drop-in's syntax);
  * TPM2 (--with-key=tpm2 or auto, host+tpm2): this machine has no TPM (no /dev/tpmrm0);
    nor the DeviceAllow=/dev/tpmrm0 rw that LoadCredentialEncrypted= adds to the unit
    (`systemd-analyze security` lists it; the exposure stays 1.2).
"""

import glob
import os
import re
import subprocess
import time

import pytest

from conftest import base_env, run_client, write_file
from loginenv import PASSWORD, USERNAME, lg_ca, start_server  # noqa: F401 - lg_ca: fixture
from sdenv import *  # noqa: F401,F403 - fixtures services, sd_tools and helpers
from sdenv import (HELPER, SOURCE_ROOT, expand, render_units, run_analyze, system_exec_start,
                   unit_text, values)

pytestmark = pytest.mark.needs_binaries

UNIT = "regscale-tokend@.service"
INSTANCE = "prod"
HOST_KEY = "/var/lib/systemd/credential.secret"


def unit_credentials():
    """Returns (active, documented) of the system unit: the (ID, path) pairs of its
    LoadCredentialEncrypted= settings, and of those its comments show for a drop-in."""
    text = unit_text(UNIT)
    active = [tuple(v.split(":", 1)) for v in values(text, "LoadCredentialEncrypted")]
    documented = re.findall(r"^#\s*LoadCredentialEncrypted=([^:\s]+):(\S+)$", text, re.M)
    return active, documented


def password_credential():
    """The unit's default credential: password login (README, "Run on a server")."""
    active, _ = unit_credentials()
    assert len(active) == 1, active
    return active[0]


def token_credential():
    """The credential the unit documents for a service-account token: the other ID."""
    active, documented = unit_credentials()
    others = {c for c in documented if c[0] not in {a[0] for a in active}}
    assert len(others) == 1, documented
    return others.pop()


@pytest.fixture
def creds_env(workdir):
    """The environment for systemd-creds: a host key of the test's own. Checks that the
    machine's host key is neither created nor removed."""
    had = os.path.exists(HOST_KEY)
    env = base_env(workdir, SYSTEMD_CREDENTIAL_SECRET=os.path.join(workdir, "host.secret"))
    yield env
    assert os.path.exists(HOST_KEY) == had, HOST_KEY + " changed"


def systemd_creds(env, args, input=None):
    p = subprocess.run(["systemd-creds"] + args, env=env, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def on_disk(workdir, path):
    """Where the unit's path (under /etc/regscale-token/, %i) lives in the test."""
    path = expand(path, {"i": INSTANCE})
    assert path.startswith("/etc/regscale-token/"), path
    return os.path.join(workdir, "etc", path[len("/etc/regscale-token/"):])


def encrypt(env, workdir, cred, secret):
    """Encrypts secret as the README does (on stdin, --name=ID) into the unit's file."""
    ident, path = cred
    out = on_disk(workdir, path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    rc, err = systemd_creds(env, ["encrypt", "--with-key=host", "--name=" + ident, "-", out],
                            input=secret.encode())
    assert rc == 0, err
    with open(out, "rb") as f:
        assert secret.encode() not in f.read()  # encrypted at rest
    return out


def load_credentials(env, workdir, creds):
    """What the service manager does for LoadCredentialEncrypted=ID:PATH at start: decrypts
    each PATH, checking the name ID embedded in it, to $CREDENTIALS_DIRECTORY/ID (0400 in a
    0700 directory). Returns the directory."""
    d = os.path.join(workdir, "credentials")
    os.mkdir(d, 0o700)
    for ident, path in creds:
        dest = os.path.join(d, ident)
        rc, err = systemd_creds(env, ["decrypt", "--name=" + ident, on_disk(workdir, path),
                                      dest])
        assert rc == 0, err
        os.chmod(dest, 0o400)
    return d


def start(services, workdir, creds_dir, config_text):
    """The daemon as the unit starts it (ExecStart=, socket passed, credentials)."""
    argv, config = system_exec_start(workdir, INSTANCE)
    write_file(config, config_text, 0o644)
    listen = os.path.join(workdir, INSTANCE + ".sock")
    svc = services(argv + ["--login-helper", HELPER], listen,
                   env={"CREDENTIALS_DIRECTORY": creds_dir})
    return svc, listen


# --- the unit --------------------------------------------------------------------------------


def test_unit_loads_one_encrypted_credential():
    text = unit_text(UNIT)
    active, documented = unit_credentials()
    assert len(active) == 1, active  # systemd 252: every listed credential must exist
    assert not values(text, "LoadCredential")  # nothing in plain text by default
    ident, path = active[0]
    assert path == "/etc/regscale-token/%i." + ident + ".cred"
    tok_ident, tok_path = token_credential()
    assert tok_path == "/etc/regscale-token/%i." + tok_ident + ".cred"
    # The plain-text alternative is documented under the same name.
    assert "LoadCredential=%s:/etc/regscale-token/%%i.%s" % (ident, ident) in text


def test_encrypt_commands_name_the_units_credentials():
    """`systemd-creds encrypt --name=ID`: ID must be one the unit loads, or the service
    manager refuses the file (the name is embedded and checked)."""
    active, documented = unit_credentials()
    known = {c[0] for c in active + documented}
    # "systemd-creds encrypt --name=ID" and Ansible's "argv: [systemd-creds, encrypt, ...".
    encrypt_re = r"systemd-creds,? encrypt,?[^\n]*?--name=([A-Za-z0-9_.-]+)"
    docs = {}
    examples = sorted(glob.glob(os.path.join(SOURCE_ROOT, "docs", "examples", "*.conf")))
    assert examples
    for rel in ["README.md", os.path.join("docs", "fleet.md")] + [
            os.path.relpath(e, SOURCE_ROOT) for e in examples]:
        with open(os.path.join(SOURCE_ROOT, rel)) as f:
            docs[rel] = f.read()
    docs[UNIT] = unit_text(UNIT)
    # Where the unit reads each credential from, with %i standing for any profile name.
    paths = {name: re.compile(re.escape(path).replace("%i", "(?:[A-Za-z0-9_-]+|%i|PROFILE)"))
             for name, path in active + documented}
    for where, text in docs.items():
        names = re.findall(encrypt_re, text)
        assert names, where
        assert set(names) <= known, (where, names, known)
        # A drop-in a document shows names the file the unit's comments and README use.
        dropins = r"LoadCredentialEncrypted=([^:\s`]+):([^\s`),]*[^\s`),.])"
        for name, path in re.findall(dropins, text):
            assert name in paths and paths[name].fullmatch(path), (where, name, path)
    assert {password_credential()[0], token_credential()[0]} <= set(
        re.findall(encrypt_re, docs["README.md"]))


# --- the daemon with decrypted credentials ---------------------------------------------------


def test_encrypted_password_logs_in(workdir, services, creds_env, lg_ca):
    cred = password_credential()
    encrypt(creds_env, workdir, cred, PASSWORD)
    creds_dir = load_credentials(creds_env, workdir, [cred])
    srv = start_server(lg_ca, lifetime=3600)
    try:
        svc, listen = start(services, workdir, creds_dir,
                            "[regscale]\nurl = %s\nusername = %s\nca_file = %s\n"
                            % (srv.url, USERNAME, lg_ca["ca_cert"]))
        rc, out, err = run_client(["--socket", listen, "get", "--min-valid", "1m"],
                                  base_env(workdir), timeout=30)
        assert rc == 0 and out.count(".") == 2, (err, svc.log_text())
        stats = srv.control.stats()
        assert stats["login_ok"] == 1 and stats["login"] == 1, stats
        rc, out, err = run_client(["--socket", listen, "status"], base_env(workdir))
        assert rc == 0 and USERNAME in out, out
        assert svc.stop() == 0
        assert PASSWORD not in svc.log_text()
    finally:
        srv.stop()
        srv.cleanup()


def test_encrypted_service_token_is_served(workdir, services, creds_env, lg_ca):
    srv = start_server(lg_ca, lifetime=3600)
    try:
        token = srv.control.token(username="svc-fleet", lifetime=7200)
        cred = token_credential()
        encrypt(creds_env, workdir, cred, "Bearer " + token + "\n")
        creds_dir = load_credentials(creds_env, workdir, [cred])
        # As the README's service-token profile: a url to check it with, no username.
        svc, listen = start(services, workdir, creds_dir,
                            "[regscale]\nurl = %s\nca_file = %s\n" % (srv.url, lg_ca["ca_cert"]))
        rc, out, err = run_client(["--socket", listen, "get"], base_env(workdir))
        assert (rc, out) == (0, token + "\n"), (err, svc.log_text())
        assert svc.wait_log("RegScale confirmed the service token is valid", 10), svc.log_text()
        stats = srv.control.stats()
        assert stats["validate_ok"] == 1 and stats["login"] == 0, stats
        rc, out, err = run_client(["--socket", listen, "status"], base_env(workdir))
        assert rc == 0 and "service" in out, out
        assert svc.stop() == 0
        assert token not in svc.log_text()
    finally:
        srv.stop()
        srv.cleanup()


def test_name_binds_the_file_to_the_credential(workdir, creds_env):
    """Without --name=, systemd-creds embeds the output file's name (prod.password.cred),
    which the service manager refuses for the ID password; with it, the file decrypts only
    under that ID."""
    ident, path = password_credential()
    out = on_disk(workdir, path)
    os.makedirs(os.path.dirname(out))
    rc, err = systemd_creds(creds_env, ["encrypt", "--with-key=host", "-", out],
                            input=b"pw")
    assert rc == 0, err
    rc, err = systemd_creds(creds_env, ["decrypt", "--name=" + ident, out,
                                        os.path.join(workdir, "plain")])
    assert rc != 0 and "does not match" in err, err
    encrypt(creds_env, workdir, (ident, path), "pw")
    other = token_credential()[0]
    rc, err = systemd_creds(creds_env, ["decrypt", "--name=" + other, out,
                                        os.path.join(workdir, "plain")])
    assert rc != 0 and "does not match" in err, err
    assert not os.path.exists(os.path.join(workdir, "plain"))


# --- without encryption ----------------------------------------------------------------------


def test_plain_dropin_verifies(workdir):
    """The drop-in the unit and the README give for a credential in plain text."""
    ident, _ = password_credential()
    service, sock = render_units(workdir, INSTANCE)
    dropin = service + ".d"
    os.mkdir(dropin)
    write_file(os.path.join(dropin, "plain.conf"),
               "[Service]\nLoadCredentialEncrypted=\nLoadCredential=%s:/etc/regscale-token/"
               "%%i.%s\n" % (ident, ident), 0o644)
    rc, out = run_analyze(["verify", service, sock], workdir)
    assert (rc, out) == (0, ""), out
    rc, out = run_analyze(["security", "--offline=yes", service], workdir)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", out)
    assert rc == 0 and m and float(m.group(1)) <= 1.5, out
    # The check sees the drop-in: a broken one is reported.
    write_file(os.path.join(dropin, "broken.conf"), "[Service]\nLoadCredentialz=x\n", 0o644)
    rc, out = run_analyze(["verify", service, sock], workdir)
    assert "LoadCredentialz" in out, out


@pytest.mark.parametrize("mode", ["password", "token"])
def test_ciphertext_in_plain_load_credential_is_refused(workdir, services, creds_env, lg_ca,
                                                        mode):
    """A .cred file named in LoadCredential= (not ...Encrypted=) reaches the daemon as the
    ciphertext, as README says: a password fails one login and is not retried, a token is
    refused as no JWT."""
    srv = start_server(lg_ca, lifetime=3600)
    try:
        cred = password_credential() if mode == "password" else token_credential()
        secret = PASSWORD if mode == "password" else srv.control.token(username="svc-fleet")
        with open(encrypt(creds_env, workdir, cred, secret)) as f:
            ciphertext = f.read()
        creds_dir = os.path.join(workdir, "credentials")
        os.mkdir(creds_dir, 0o700)
        write_file(os.path.join(creds_dir, cred[0]), ciphertext, 0o400)  # copied as it is
        config = "[regscale]\nurl = %s\nca_file = %s\n" % (srv.url, lg_ca["ca_cert"])
        if mode == "password":
            config += "username = %s\n" % USERNAME
        svc, listen = start(services, workdir, creds_dir, config)
        env = base_env(workdir)
        if mode == "password":
            assert svc.wait_log("rejected", 10), svc.log_text()
            rc, out, err = run_client(["--socket", listen, "status"], env)
            assert "credentials_rejected" in out, out
            time.sleep(1.5)  # a retry would come after 1 s (+-20 %)
            stats = srv.control.stats()
            assert stats["login"] == 1 and stats["login_ok"] == 0, stats
        else:
            assert svc.wait_log("does not hold a valid JWT", 5), svc.log_text()
            assert srv.control.stats()["validate"] == 0
        rc, out, err = run_client(["--socket", listen, "get"], env)
        assert rc != 0 and out == "", out
    finally:
        srv.stop()
        srv.cleanup()
