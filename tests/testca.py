#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Test certificate authorities for the HTTPS test server (standard library + openssl CLI).

make_ca(dir) creates, in dir (made if missing):

  ca.pem / ca.key                  the test CA (what the daemon's ca_file points at)
  server.pem / server.key          a server certificate for 127.0.0.1 and localhost,
                                   signed by the test CA
  other-ca.pem / other-ca.key      a second, unrelated CA
  other-server.pem / other-server.key
                                   a server certificate for the same names signed by the
                                   other CA (for the "certificate from another CA" test)

and returns a dict of absolute paths with the keys ca_cert, ca_key, server_cert,
server_key, other_ca_cert, other_ca_key, other_server_cert, other_server_key, dir.
Keys are EC P-256 (fast); certificates are valid from now for two days.

CLI: testca.py DIR   prints that dict as JSON.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys

VALID_DAYS = 2
SERVER_SAN = "IP:127.0.0.1,DNS:localhost"


def _openssl():
    for path in ("/usr/bin/openssl", shutil.which("openssl")):
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError("openssl not found")


def _run(args, cwd):
    res = subprocess.run([_openssl()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if res.returncode != 0:
        raise RuntimeError("openssl {} failed ({}): {}".format(
            args[0], res.returncode, res.stderr.decode("utf-8", "replace").strip()))


def _ec_args():
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _make_ca(d, name, cn):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    _run(["req", "-x509"] + _ec_args() + [
        "-keyout", key, "-out", cert, "-days", str(VALID_DAYS), "-sha256",
        "-subj", "/O=regscale-token tests/CN=" + cn,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    ], d)
    os.chmod(key, 0o600)
    return cert, key


def _make_server(d, name, ca_cert, ca_key, san=SERVER_SAN, cn="127.0.0.1"):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    csr = os.path.join(d, name + ".csr")
    ext = os.path.join(d, name + ".ext")
    _run(["req", "-new"] + _ec_args() + [
        "-keyout", key, "-out", csr, "-subj", "/O=regscale-token tests/CN=" + cn], d)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                "subjectAltName=" + san + "\n")
    _run(["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
          "-set_serial", "0x" + secrets.token_hex(16), "-days", str(VALID_DAYS),
          "-sha256", "-extfile", ext, "-out", cert], d)
    os.unlink(csr)
    os.unlink(ext)
    os.chmod(key, 0o600)
    return cert, key


def make_ca(directory):
    """Creates the test CAs and server certificates in directory; returns their paths."""
    d = os.path.abspath(directory)
    os.makedirs(d, exist_ok=True)
    ca_cert, ca_key = _make_ca(d, "ca", "regscale-token test CA")
    server_cert, server_key = _make_server(d, "server", ca_cert, ca_key)
    other_ca_cert, other_ca_key = _make_ca(d, "other-ca", "unrelated test CA")
    other_server_cert, other_server_key = _make_server(d, "other-server", other_ca_cert,
                                                       other_ca_key)
    return {
        "dir": d,
        "ca_cert": ca_cert,
        "ca_key": ca_key,
        "server_cert": server_cert,
        "server_key": server_key,
        "other_ca_cert": other_ca_cert,
        "other_ca_key": other_ca_key,
        "other_server_cert": other_server_cert,
        "other_server_key": other_server_key,
    }


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: {} DIR\n".format(os.path.basename(argv[0])))
        return 2
    try:
        paths = make_ca(argv[1])
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        sys.stderr.write("testca: {}\n".format(e))
        return 1
    print(json.dumps(paths, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
