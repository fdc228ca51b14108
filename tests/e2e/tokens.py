# SPDX-License-Identifier: MIT
"""HS256 JWTs for the end-to-end tests (standard library only).

The daemon never verifies signatures (it is not the audience), so the key is arbitrary; the
tokens only need the shape of a RegScale JWT: header.payload.signature, base64url, with
"id" (RegScale's user id), "sub", "iat" and usually "exp" claims.
"""

import base64
import hashlib
import hmac
import json
import time

KEY = b"regscale-token-e2e-not-a-secret"


def b64url(data):
    """Returns data (bytes) as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    """Returns the bytes of unpadded base64url text."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(claims, key=KEY, header=None):
    """Returns a compact HS256 JWT carrying claims (a dict)."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = "{}.{}".format(
        b64url(json.dumps(header, separators=(",", ":")).encode()),
        b64url(json.dumps(claims, separators=(",", ":")).encode()),
    )
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return "{}.{}".format(signing_input, b64url(signature))


def service_token(user_id="4f3c2b1a-e2e0-4d1e-9a00-000000000001", exp_in=3600, exp=None,
                  sub="svc-e2e", **extra):
    """Returns a RegScale-like service token for user_id.

    exp_in: seconds from now until exp (None: no exp claim); exp: absolute unix time
    overriding exp_in. extra claims are added as given."""
    now = int(time.time())
    claims = {"sub": sub, "id": user_id, "iat": now - 10}
    if exp is not None:
        claims["exp"] = int(exp)
    elif exp_in is not None:
        claims["exp"] = now + int(exp_in)
    claims.update(extra)
    return make_jwt(claims)


def claims_of(token):
    """Returns the decoded payload of token (a dict)."""
    return json.loads(b64url_decode(token.split(".")[1]))


def iso8601(unix):
    """Returns unix seconds as the protocol's "expires" text: 2026-11-29T14:00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))
