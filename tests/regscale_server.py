#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A RegScale-compatible login server for tests (Python standard library only).

Serves HTTPS (or plain HTTP when no --cert is given) on 127.0.0.1 and implements

  POST /api/authentication/login           v1 and v2 (header X-Api-Version: 2.0, "appId":1);
                                           the body's field names are matched case-
                                           insensitively, as ASP.NET does (regscale-cli
                                           sends "userName", the docs "username")
  POST /api/authentication/validateToken   {"accessToken": "[Bearer ]<jwt>"} -> 200 | 401

issuing real HS256 JWTs (claims id: the user's GUID, sub: the username, iat, exp, jti,
iss), and two API endpoints that, like RegScale's, answer only a request with the header
"Authorization: Bearer <jwt>" holding an unexpired token signed by this server (the scheme
case-insensitive); anything else (no header, another scheme, a bad signature, an expired
token) gets 401 {"message": "Unauthorized"} with a WWW-Authenticate: Bearer header:

  GET  /api/accounts/find/{id}             200 {"id", "userName", "email", "firstName",
                                           "lastName", "isActive"} for the token's user's
                                           id or a configured user's; 404 for another id
  GET  /api/securityplans/getList          200 [{"id", "systemName", "status",
                                           "systemOwnerId"}, ...] (two plans)

plus a control API on the same port under /_test/ to read counters, change the token
lifetime and inject faults:

  POST /_test/fault   {"fault": NAME, "count": N, "on": WHERE, ...}
                      replaces the fault queue with this fault ("append": true queues it
                      after the current ones; {"fault": null} or "none" clears the queue).
                      WHERE: "login", "validate", "api" (the two endpoints above), "both"
                      (login and validate: the default) or "all"
  POST /_test/reset   clears faults, counters and run-time config
  GET  /_test/stats   {"login", "login_ok", "validate", "validate_ok", "api", "api_ok",
                       "requests", "tls_errors", "logins": [...], "validates": [...],
                       "api_calls": [...], "faults": [...], "lifetime"}
  POST /_test/config  {"lifetime": s, "require_v2": bool, "user": "NAME:PW[:MFA]"}
  POST /_test/token   {"username", "lifetime", "exp", "no_exp", "claims"} -> {"token": jwt}
                      mints a token with the server's key (for validateToken and API tests)

Faults (see FAULTS below for parameters): down, status, rate_limit, hang, slow,
malformed_json, missing_fields, double_encoded, wrong_password, no_exp, expired,
huge_body, redirect, bad_token_chars, skew, raw. A fault's count (default: until cleared)
goes down by one for each request it is applied to; at 0 it leaves the queue. The API
endpoints take the transport and status faults (down, status, rate_limit, hang, slow,
huge_body, redirect, raw), before the token is checked, as a proxy in front would.

Run:  regscale_server.py --cert server.pem --key server.key --port-file PORTFILE
Prints "listening on https://127.0.0.1:PORT" on stdout; logs one line per request on
stderr (method, path, status; never a body). SIGTERM or SIGINT: clean exit, status 0.

For tests, RegScaleServer (below) starts this file as a subprocess and ControlClient
drives the control API.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

LOGIN_PATH = "/api/authentication/login"
VALIDATE_PATH = "/api/authentication/validateToken"
ACCOUNT_PATH = "/api/accounts/find/"  # + the user's id
PLANS_PATH = "/api/securityplans/getList"
CONTROL_PREFIX = "/_test/"
DEFAULT_SECRET = "regscale-token-e2e-not-a-secret"  # same key as tests/e2e/tokens.py
MAX_REQUEST_BODY = 1 << 20
ISSUER = "regscale-test-server"

# Fault name -> the endpoints it can apply to ("api": the protected API endpoints).
# Token-shaping faults only make sense for a login; transport and status faults apply to
# validateToken and the API too.
ANY = {"login", "validate", "api"}
FAULTS = {
    "down": ANY,                              # close the connection, no HTTP answer
    "status": ANY,                            # {"status": 500, "retry_after": opt, "body": opt}
    "rate_limit": ANY,                        # 429, {"retry_after": s | "text", "http_date": bool}
    "hang": ANY,                              # {"seconds": 120} then answer normally
    "slow": ANY,                              # {"seconds": 5} then answer normally
    "huge_body": ANY,                         # {"bytes": 2 MiB, "no_length": bool}
    "redirect": ANY,                          # {"location": url, "status": 302}
    "raw": ANY,                               # {"status": 200, "body": text, "content_type"}
    "malformed_json": {"login"},              # 200, truncated JSON
    "missing_fields": {"login"},              # 200 {"id": ..} (v2: {"accessToken":{"id":..}})
    "double_encoded": {"login"},              # 200, the JSON document as a JSON string
    "wrong_password": {"login"},              # {"status": 400} whatever the password
    "no_exp": {"login"},                      # token without exp; {"expires_in": n} adds field
    "expired": {"login"},                     # token with exp {"ago": 60} seconds in the past
    "bad_token_chars": {"login"},             # {"token": verbatim} else JWT with "+/=!" chars
    "skew": {"login"},                        # iat/exp shifted by {"seconds": s} (server clock)
}


# --- JWT -------------------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(claims, secret=DEFAULT_SECRET):
    """Returns a compact HS256 JWT for claims (dict) signed with secret (str or bytes)."""
    if isinstance(secret, str):
        secret = secret.encode()
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = "{}.{}".format(
        b64url(json.dumps(header, separators=(",", ":")).encode()),
        b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def verify_jwt(token, secret=DEFAULT_SECRET, now=None):
    """Returns (claims, None) for a correctly signed, unexpired HS256 token, else
    (None, reason)."""
    if isinstance(secret, str):
        secret = secret.encode()
    parts = token.split(".")
    if len(parts) != 3:
        return None, "not a JWT"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        return None, "not a JWT"
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return None, "unsupported algorithm"
    want = hmac.new(secret, (parts[0] + "." + parts[1]).encode("ascii"),
                    hashlib.sha256).digest()
    if not hmac.compare_digest(sig, want):
        return None, "bad signature"
    if not isinstance(claims, dict):
        return None, "bad claims"
    exp = claims.get("exp")
    if exp is not None:
        if not isinstance(exp, (int, float)) or exp <= (time.time() if now is None else now):
            return None, "expired"
    return claims, None


def user_guid(username):
    """The stable RegScale-like user id of username."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "regscale-test-server:" + username))


def bearer_claims(header, secret, now=None):
    """Returns (claims, None) when header (an Authorization header's value, or None) is
    "Bearer <jwt>" (any case) with a token verify_jwt() accepts, else (None, reason)."""
    if header is None:
        return None, "no Authorization header"
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None, "not a bearer token"
    token = token.strip()
    if not token:
        return None, "no token"
    return verify_jwt(token, secret, now)


def fold_keys(obj):
    """Returns the JSON object obj with its keys lower-cased (the last of the keys that
    differ only in case wins, as in ASP.NET's model binding), or {} for a non-object."""
    if not isinstance(obj, dict):
        return {}
    return {k.lower(): v for k, v in obj.items()}


def account_doc(user_id, username):
    """The account RegScale's /api/accounts/find/{id} returns, in a few of its fields."""
    email = username if "@" in username else username + "@regscale.test"
    return {"id": user_id, "userName": username, "email": email,
            "firstName": username.split("@")[0], "lastName": "Test", "isActive": True}


def plans_doc(owner_id):
    """A small list like RegScale's /api/securityplans/getList."""
    return [{"id": 1, "systemName": "Demo System", "status": "Operational",
             "systemOwnerId": owner_id},
            {"id": 2, "systemName": "Test Enclave", "status": "Under Development",
             "systemOwnerId": owner_id}]


# --- server state ----------------------------------------------------------------------


class Fault:
    def __init__(self, spec):
        name = spec.get("fault")
        if name not in FAULTS:
            raise ValueError("unknown fault {!r}".format(name))
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                                  or count < 1):
            raise ValueError("count must be a positive integer")
        on = spec.get("on", "both")
        where = {"both": {"login", "validate"}, "all": ANY, "login": {"login"},
                 "validate": {"validate"}, "api": {"api"}}
        if on not in where:
            raise ValueError("on must be login, validate, api, both or all")
        self.name = name
        self.count = count
        self.endpoints = FAULTS[name] & where[on]
        if not self.endpoints:
            raise ValueError("fault {} does not apply to {}".format(name, on))
        self.params = {k: v for k, v in spec.items()
                       if k not in ("fault", "count", "on", "append")}

    def describe(self):
        return {"fault": self.name, "count": self.count, "on": sorted(self.endpoints),
                **self.params}


class State:
    def __init__(self, users, lifetime, secret, require_v2):
        self.lock = threading.Lock()
        self.initial = (dict(users), lifetime, require_v2)
        self.secret = secret
        self.wake = threading.Event()  # set on reset/shutdown: releases hanging requests
        self.generation = 0  # counts resets: requests from before a reset are not counted
        self.reset()

    def reset(self):
        with self.lock:
            users, lifetime, require_v2 = self.initial
            self.users = dict(users)
            self.lifetime = lifetime
            self.require_v2 = require_v2
            self.faults = []
            self.stats = {"login": 0, "login_ok": 0, "validate": 0, "validate_ok": 0,
                          "api": 0, "api_ok": 0, "requests": 0, "control": 0,
                          "tls_errors": 0}
            self.logins = []
            self.validates = []
            self.api_calls = []
            self.generation += 1
            old, self.wake = self.wake, threading.Event()
        old.set()

    def take_fault(self, endpoint):
        """Returns the fault at the head of the queue if it applies to endpoint, consuming
        one of its count."""
        with self.lock:
            if not self.faults or endpoint not in self.faults[0].endpoints:
                return None
            f = self.faults[0]
            if f.count is not None:
                f.count -= 1
                if f.count <= 0:
                    self.faults.pop(0)
            return f

    def snapshot(self):
        with self.lock:
            out = dict(self.stats)
            out["logins"] = [dict(e) for e in self.logins]
            out["validates"] = [dict(e) for e in self.validates]
            out["api_calls"] = [dict(e) for e in self.api_calls]
            out["faults"] = [f.describe() for f in self.faults]
            out["lifetime"] = self.lifetime
            out["require_v2"] = self.require_v2
            return out


def parse_user(text):
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError("user must be NAME:PASSWORD[:MFA]")
    return parts[0], (parts[1], parts[2] if len(parts) == 3 and parts[2] else None)


# --- HTTP ------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # per-socket timeout of a connection (handshake, request reading)

    def version_string(self):
        return "RegScaleTest/1.0"
    # -- plumbing --

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                with self.server.state.lock:
                    self.server.state.stats["tls_errors"] += 1
                self.server.log("TLS handshake failed: {}".format(
                    getattr(e, "reason", None) or e))
                raise _Quiet()

    def log_message(self, fmt, *args):  # http.server's own messages (errors)
        self.server.log("{} {}".format(self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        extra = " fault={}".format(self._fault.name) if getattr(self, "_fault", None) else ""
        self.server.log("{} {} {}{}".format(self.command, self.path.split("?")[0], code,
                                            extra))

    def send_json(self, status, obj, headers=()):
        self.send_body(status, json.dumps(obj).encode(), headers=headers)

    def send_body(self, status, body, content_type="application/json; charset=utf-8",
                  headers=(), length=True):
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, str(v))
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout) as e:
            self.server.log("  client went away while sending the body: {}".format(
                type(e).__name__))

    def drop_connection(self):
        """Closes the connection without an HTTP answer."""
        self._status = 0
        self.close_connection = True
        self.server.log("{} {} closed without answer fault=down".format(
            self.command, self.path.split("?")[0]))
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_body(self):
        """Returns the request body (bytes), or None after answering an error."""
        if self.headers.get("Transfer-Encoding"):
            self.send_json(411, {"message": "Content-Length required"})
            return None
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_REQUEST_BODY:
            self.send_json(413, {"message": "bad request body length"})
            return None
        return self.rfile.read(n) if n else b""

    def read_json(self):
        """Returns (ok, obj): obj the parsed JSON body; ok False after answering an error."""
        body = self.read_body()
        if body is None:
            return False, None
        if not body:
            return True, {}
        try:
            return True, json.loads(body)
        except (ValueError, UnicodeDecodeError):
            self.send_json(400, {"message": "request body is not JSON"})
            return False, None

    # -- dispatch --

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        self._fault = None
        self._status = None
        path = self.path.split("?")[0]
        st = self.server.state
        if path.startswith(CONTROL_PREFIX):
            with st.lock:
                st.stats["control"] += 1
            return self.control(method, path[len(CONTROL_PREFIX):])
        with st.lock:
            st.stats["requests"] += 1
        if path == LOGIN_PATH and method == "POST":
            return self.login()
        if path == VALIDATE_PATH and method == "POST":
            return self.validate()
        if path in (LOGIN_PATH, VALIDATE_PATH):
            self.read_body()
            return self.send_json(405, {"message": "method not allowed"},
                                  headers=[("Allow", "POST")])
        if path == PLANS_PATH or (path.startswith(ACCOUNT_PATH) and
                                  "/" not in path[len(ACCOUNT_PATH):]):
            if method != "GET":
                self.read_body()
                return self.send_json(405, {"message": "method not allowed"},
                                      headers=[("Allow", "GET")])
            return self.api(path)
        self.read_body()
        self.send_json(404, {"message": "not found"})

    # -- fault helpers shared by login and validate --

    def apply_transport_fault(self, f, normal):
        """Handles the faults that do not depend on the endpoint; returns True when the
        request was answered (or dropped). normal() answers the request normally."""
        p = f.params
        name = f.name
        if name == "down":
            self.drop_connection()
            return True
        if name in ("hang", "slow"):
            seconds = float(p.get("seconds", 120 if name == "hang" else 5))
            if self._wake.wait(seconds):  # reset or shutdown: abandon this request
                self.drop_connection()
                return True
            normal()
            return True
        if name == "status":
            status = int(p.get("status", 500))
            headers = []
            if "retry_after" in p:
                headers.append(("Retry-After", retry_after_value(p)))
            body = p.get("body")
            if body is None:
                self.send_json(status, {"message": "injected status {}".format(status)},
                               headers=headers)
            else:
                self.send_body(status, str(body).encode(), headers=headers)
            return True
        if name == "rate_limit":
            p = dict(p)
            p.setdefault("retry_after", 1)
            headers = [("Retry-After", retry_after_value(p))] if p["retry_after"] is not None \
                else []
            self.send_json(429, {"message": "Too Many Requests"}, headers=headers)
            return True
        if name == "redirect":
            status = int(p.get("status", 302))
            location = p.get("location", "http://127.0.0.1:1" + LOGIN_PATH)
            self.send_json(status, {"message": "moved"}, headers=[("Location", location)])
            return True
        if name == "raw":
            self.send_body(int(p.get("status", 200)), str(p.get("body", "")).encode(),
                           content_type=p.get("content_type", "application/json"))
            return True
        if name == "huge_body":
            n = int(p.get("bytes", 2 << 20))
            self.send_body(200, huge_json(n, self._login_doc_for_huge()),
                           length=not p.get("no_length", False))
            return True
        return False

    def _login_doc_for_huge(self):
        return getattr(self, "_huge_doc", {"valid": True})

    # -- login --

    def login(self):
        st = self.server.state
        now = time.time()
        api = "v2" if self.headers.get("X-Api-Version", "").strip() == "2.0" else "v1"
        entry = {"time": now, "username": None, "api": api, "status": None,
                 "fault": None, "mfa": False,
                 "user_agent": self.headers.get("User-Agent"),
                 "content_type": self.headers.get("Content-Type")}
        with st.lock:
            st.stats["login"] += 1
            st.logins.append(entry)
            self._wake, gen = st.wake, st.generation
        try:
            self._login(entry, api, now)
        finally:
            with st.lock:
                entry["status"] = self._status
                entry["fault"] = self._fault.name if self._fault else None
                entry["done"] = time.time()
                if self._status == 200 and self._login_ok and gen == st.generation:
                    st.stats["login_ok"] += 1

    def _login(self, entry, api, now):
        st = self.server.state
        self._login_ok = False
        ok, body = self.read_json()
        if not ok:
            return
        if not isinstance(body, dict):
            return self.send_json(400, {"message": "body must be a JSON object"})
        entry["keys"] = sorted(body.keys())
        body = fold_keys(body)
        username = body.get("username")
        entry["username"] = username if isinstance(username, str) else None
        entry["mfa"] = "mfatoken" in body
        entry["app_id"] = body.get("appid")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        with st.lock:
            require_v2 = st.require_v2
            lifetime = st.lifetime
            user = st.users.get(username) if isinstance(username, str) else None
        if require_v2 and api != "v2":
            return self.send_json(404, {"message": "not found"})
        if ctype != "application/json":
            return self.send_json(415, {"message": "Content-Type must be application/json"})
        if api == "v2" and body.get("appid") != 1:
            return self.send_json(400, {"message": "appId is required"})

        f = self._fault = st.take_fault("login")

        def normal():
            self._login_normal(api, body, user, username, lifetime, None)

        if f is None:
            return normal()
        if f.name == "huge_body":
            self._huge_doc = self._success_doc(api, username or "", self._token_for(
                username or "", lifetime, None))
        if self.apply_transport_fault(f, normal):
            return
        if f.name == "wrong_password":
            return self.send_json(int(f.params.get("status", 400)),
                                  {"message": "The username or password is incorrect"})
        self._login_normal(api, body, user, username, lifetime, f)

    def _login_normal(self, api, body, user, username, lifetime, f):
        password = body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return self.send_json(400, {"message": "username and password are required"})
        if user is None or not hmac.compare_digest(user[0].encode(), password.encode()):
            return self.send_json(400, {"message": "The username or password is incorrect"})
        if user[1] is not None:
            mfa = body.get("mfatoken")
            if not isinstance(mfa, str) or not mfa:
                return self.send_json(400, {"message": "MFA token required"})
            if not hmac.compare_digest(mfa.encode(), user[1].encode()):
                return self.send_json(400, {"message": "Invalid MFA token"})
        token = self._token_for(username, lifetime, f)
        doc = self._success_doc(api, username, token)
        name = f.name if f else None
        if name == "malformed_json":
            text = json.dumps(doc)
            return self.send_body(200, text[:len(text) // 2].encode())
        if name == "missing_fields":
            doc = {"id": user_guid(username)}
            if api == "v2":
                doc = {"accessToken": doc}
            return self.send_json(200, doc)
        if name == "no_exp" and "expires_in" in f.params:
            doc["expires_in"] = f.params["expires_in"]
        if name == "double_encoded":
            self._login_ok = True
            return self.send_body(200, json.dumps(json.dumps(doc)).encode())
        self._login_ok = True
        self.send_json(200, doc)

    def _token_for(self, username, lifetime, f):
        st = self.server.state
        now = int(time.time())
        name = f.name if f else None
        p = f.params if f else {}
        iat = now
        if name == "skew":
            iat = now + int(p.get("seconds", 0))
        claims = {"id": user_guid(username), "sub": username, "iat": iat,
                  "exp": iat + int(lifetime), "jti": str(uuid.uuid4()), "iss": ISSUER}
        if name == "no_exp":
            del claims["exp"]
        if name == "expired":
            claims["exp"] = now - int(p.get("ago", 60))
            claims["iat"] = claims["exp"] - int(lifetime)
        token = make_jwt(claims, st.secret)
        if name == "bad_token_chars":
            if "token" in p:
                return str(p["token"])
            h, c, s = token.split(".")
            token = "{}.{}.{}+/={}!".format(h, c, s[:10], s[10:])
        return token

    @staticmethod
    def _success_doc(api, username, token):
        if api == "v2":
            return {"accessToken": {"id": user_guid(username), "authToken": token}}
        return {"id": user_guid(username), "auth_token": token}

    # -- validateToken --

    def validate(self):
        st = self.server.state
        entry = {"time": time.time(), "status": None, "fault": None,
                 "user_agent": self.headers.get("User-Agent")}
        with st.lock:
            st.stats["validate"] += 1
            st.validates.append(entry)
            self._wake, gen = st.wake, st.generation
        try:
            self._validate(entry)
        finally:
            with st.lock:
                entry["status"] = self._status
                entry["fault"] = self._fault.name if self._fault else None
                if self._status == 200 and gen == st.generation:
                    st.stats["validate_ok"] += 1

    def _validate(self, entry):
        st = self.server.state
        ok, body = self.read_json()
        if not ok:
            return
        f = self._fault = st.take_fault("validate")

        def normal():
            tok = fold_keys(body).get("accesstoken")
            if not isinstance(tok, str) or not tok.strip():
                entry["reason"] = "no token"
                return self.send_json(401, {"message": "Unauthorized"})
            tok = tok.strip()
            scheme, _, rest = tok.partition(" ")
            if scheme.lower() == "bearer":  # the header's form, or the bare token
                tok = rest.strip()
            claims, reason = verify_jwt(tok, st.secret)
            if claims is None:
                entry["reason"] = reason
                return self.send_json(401, {"message": "Unauthorized"})
            entry["sub"] = claims.get("sub")
            self.send_json(200, {"valid": True, "id": claims.get("id"),
                                 "sub": claims.get("sub")})

        if f is not None and self.apply_transport_fault(f, normal):
            return
        normal()

    # -- the protected API --

    def api(self, path):
        st = self.server.state
        entry = {"time": time.time(), "path": path, "status": None, "fault": None,
                 "user_agent": self.headers.get("User-Agent")}
        with st.lock:
            st.stats["api"] += 1
            st.api_calls.append(entry)
            self._wake, gen = st.wake, st.generation
        try:
            self._api(entry, path)
        finally:
            with st.lock:
                entry["status"] = self._status
                entry["fault"] = self._fault.name if self._fault else None
                if self._status == 200 and gen == st.generation:
                    st.stats["api_ok"] += 1

    def _api(self, entry, path):
        st = self.server.state
        if self.read_body() is None:
            return
        f = self._fault = st.take_fault("api")

        def normal():
            claims, reason = bearer_claims(self.headers.get("Authorization"), st.secret)
            if claims is None:
                entry["reason"] = reason
                # ASP.NET's JwtBearer: a bare challenge without credentials, else the error
                challenge = "Bearer" if reason == "no Authorization header" else \
                    'Bearer error="invalid_token", error_description="{}"'.format(reason)
                return self.send_json(401, {"message": "Unauthorized"},
                                      headers=[("WWW-Authenticate", challenge)])
            entry["sub"] = claims.get("sub")
            own_id, own_name = claims.get("id"), claims.get("sub")
            if path == PLANS_PATH:
                return self.send_json(200, plans_doc(own_id))
            want = path[len(ACCOUNT_PATH):]
            with st.lock:
                known = {user_guid(u): u for u in st.users}
            if isinstance(own_id, str) and isinstance(own_name, str):
                known[own_id] = own_name
            if want not in known:
                return self.send_json(404, {"message": "account not found"})
            self.send_json(200, account_doc(want, known[want]))

        if f is not None and self.apply_transport_fault(f, normal):
            return
        normal()

    # -- control --

    def control(self, method, name):
        st = self.server.state
        if method == "GET" and name == "stats":
            self.read_body()
            return self.send_json(200, st.snapshot())
        if method != "POST":
            self.read_body()
            return self.send_json(405, {"message": "method not allowed"})
        ok, body = self.read_json()
        if not ok:
            return
        if not isinstance(body, dict):
            return self.send_json(400, {"message": "body must be a JSON object"})
        try:
            if name == "reset":
                st.reset()
                return self.send_json(200, {"ok": True})
            if name == "fault":
                if body.get("fault") in (None, "none"):
                    with st.lock:
                        st.faults = []
                    return self.send_json(200, {"ok": True, "faults": []})
                f = Fault(body)
                with st.lock:
                    if body.get("append"):
                        st.faults.append(f)
                    else:
                        st.faults = [f]
                    queue = [x.describe() for x in st.faults]
                return self.send_json(200, {"ok": True, "faults": queue})
            if name == "config":
                with st.lock:
                    if "lifetime" in body:
                        lt = body["lifetime"]
                        if not isinstance(lt, (int, float)) or isinstance(lt, bool) or lt < 0:
                            raise ValueError("lifetime must be a number of seconds")
                        st.lifetime = lt
                    if "require_v2" in body:
                        st.require_v2 = bool(body["require_v2"])
                    if "user" in body:
                        uname, cred = parse_user(str(body["user"]))
                        st.users[uname] = cred
                    if "remove_user" in body:
                        st.users.pop(str(body["remove_user"]), None)
                    cfg = {"lifetime": st.lifetime, "require_v2": st.require_v2,
                           "users": sorted(st.users)}
                return self.send_json(200, {"ok": True, **cfg})
            if name == "token":
                username = str(body.get("username", "admin"))
                with st.lock:
                    lifetime = body.get("lifetime", st.lifetime)
                now = int(time.time())
                claims = {"id": user_guid(username), "sub": username, "iat": now,
                          "exp": now + int(lifetime), "jti": str(uuid.uuid4()), "iss": ISSUER}
                if "exp" in body:
                    claims["exp"] = int(body["exp"])
                if body.get("no_exp"):
                    del claims["exp"]
                claims.update(body.get("claims") or {})
                return self.send_json(200, {"token": make_jwt(claims, st.secret),
                                            "claims": claims})
        except (ValueError, TypeError) as e:
            return self.send_json(400, {"message": str(e)})
        self.send_json(404, {"message": "unknown control endpoint"})


class _Quiet(Exception):
    """Raised to end a connection whose failure was already logged."""


def retry_after_value(p):
    v = p.get("retry_after")
    if isinstance(v, str):
        return v
    if p.get("http_date"):
        return email.utils.formatdate(time.time() + float(v), usegmt=True)
    return str(int(v))


def huge_json(n, doc):
    """Returns a valid JSON object of at least n bytes carrying doc's fields first."""
    head = json.dumps(doc)[:-1]
    head = head + (", " if len(head) > 1 else "") + '"padding": "'
    pad = max(0, n - len(head) - 2)
    return (head + "x" * pad + '"}').encode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, state, ssl_context):
        self.state = state
        self.stopping = False
        self.log_lock = threading.Lock()
        super().__init__(addr, Handler)
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True,
                                                  do_handshake_on_connect=False)

    def log(self, msg):
        line = "{} regscale_server: {}\n".format(time.strftime("%H:%M:%S"), msg)
        with self.log_lock:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, _Quiet):
            return
        self.log("connection error: {}: {}".format(type(exc).__name__, exc))


def main(argv=None):
    ap = argparse.ArgumentParser(description="RegScale-compatible test login server")
    ap.add_argument("--cert", help="server certificate (PEM); without it: plain HTTP")
    ap.add_argument("--key", help="server private key (PEM)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the chosen port here (atomically)")
    ap.add_argument("--user", action="append", default=[],
                    help="NAME:PASSWORD[:MFA] (repeatable; default admin:secret)")
    ap.add_argument("--lifetime", type=float, default=86400,
                    help="token lifetime in seconds (default 86400)")
    ap.add_argument("--jwt-secret", default=DEFAULT_SECRET)
    ap.add_argument("--require-v2", action="store_true",
                    help="answer 404 to v1 logins (no X-Api-Version: 2.0)")
    args = ap.parse_args(argv)

    try:
        users = dict(parse_user(u) for u in (args.user or ["admin:secret"]))
    except ValueError as e:
        ap.error(str(e))
    if args.key and not args.cert:
        ap.error("--key needs --cert")
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key or args.cert)

    lifetime = int(args.lifetime) if args.lifetime == int(args.lifetime) else args.lifetime
    state = State(users, lifetime, args.jwt_secret, args.require_v2)
    server = Server(("127.0.0.1", args.port), state, ctx)
    port = server.server_address[1]

    def stop(signum, frame):
        if not server.stopping:
            server.stopping = True
            state.wake.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        tmp = "{}.tmp{}".format(args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("{}\n".format(port))
        os.rename(tmp, args.port_file)
    scheme = "https" if ctx else "http"
    print("listening on {}://127.0.0.1:{}".format(scheme, port), flush=True)
    server.log("listening on {}://127.0.0.1:{} users={} lifetime={}".format(
        scheme, port, ",".join(sorted(users)), lifetime))
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        state.wake.set()
        server.log("stopped")
    return 0


# --- helpers for tests (import this module) --------------------------------------------


class ControlClient:
    """Calls the control API of a running server: ControlClient(port, cafile)."""

    def __init__(self, port, cafile=None, host="127.0.0.1", timeout=10.0):
        self.port, self.host, self.timeout = port, host, timeout
        self.ctx = ssl.create_default_context(cafile=cafile) if cafile else None

    def request(self, method, path, body=None, headers=None, timeout=None):
        """Returns (status, headers dict, body bytes) of one request to the server."""
        if self.ctx is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                               timeout=timeout or self.timeout)
        else:
            conn = http.client.HTTPConnection(self.host, self.port,
                                              timeout=timeout or self.timeout)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def _call(self, method, name, body=None):
        status, _, data = self.request(method, CONTROL_PREFIX + name, body)
        obj = json.loads(data)
        if status != 200:
            raise RuntimeError("control {} failed: {} {}".format(name, status, obj))
        return obj

    def fault(self, name, count=None, **params):
        """Sets the fault queue to this one fault (append=True queues it)."""
        spec = {"fault": name, **params}
        if count is not None:
            spec["count"] = count
        return self._call("POST", "fault", spec)

    def clear_faults(self):
        return self._call("POST", "fault", {"fault": None})

    def reset(self):
        return self._call("POST", "reset", {})

    def stats(self):
        return self._call("GET", "stats")

    def config(self, **kw):
        return self._call("POST", "config", kw)

    def token(self, **kw):
        return self._call("POST", "token", kw)["token"]

    def login(self, username="admin", password="secret", api="v1", mfa=None, timeout=None):
        """Performs a login like the helper does; returns (status, headers, body bytes)."""
        body = {"username": username, "password": password, "oldPassword": ""}
        headers = {}
        if api == "v2":
            body["appId"] = 1
            headers["X-Api-Version"] = "2.0"
        if mfa is not None:
            body["mfaToken"] = mfa
        return self.request("POST", LOGIN_PATH, body, headers, timeout=timeout)

    def validate(self, token, timeout=None, prefix="Bearer "):
        return self.request("POST", VALIDATE_PATH, {"accessToken": prefix + token},
                            timeout=timeout)

    def api(self, path, token=None, scheme="Bearer", timeout=None):
        """GETs an API path with "Authorization: SCHEME TOKEN" (no header when token is
        None); returns (status, headers, body bytes)."""
        headers = {} if token is None else {"Authorization": "{} {}".format(scheme, token)}
        return self.request("GET", path, None, headers, timeout=timeout)

    def account(self, user_id, token=None, **kw):
        return self.api(ACCOUNT_PATH + user_id, token, **kw)


class RegScaleServer:
    """Runs regscale_server.py as a subprocess.

        srv = RegScaleServer(cert, key, cafile=ca, users=["admin:secret"], lifetime=6)
        srv.start(); srv.url -> "https://127.0.0.1:PORT"; srv.control.stats(); srv.stop()

    Also a context manager (which also removes the work directory it made). The server's
    stderr goes to workdir/server.log; log_text() reads it. workdir defaults to a new
    /tmp/rs-srv-* directory."""

    def __init__(self, cert=None, key=None, cafile=None, workdir=None, users=None,
                 lifetime=None, port=0, jwt_secret=None, require_v2=False, extra_args=(),
                 python="/usr/bin/python3"):
        import tempfile
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="rs-srv-", dir="/tmp")
        self.port_file = os.path.join(self.workdir, "server.port")
        self.log_path = os.path.join(self.workdir, "server.log")
        self.cafile = cafile
        args = [python if os.access(python, os.X_OK) else sys.executable,
                os.path.abspath(__file__), "--port", str(port), "--port-file",
                self.port_file]
        if cert:
            args += ["--cert", cert, "--key", key or cert]
        for u in users or []:
            args += ["--user", u]
        if lifetime is not None:
            args += ["--lifetime", str(lifetime)]
        if jwt_secret is not None:
            args += ["--jwt-secret", jwt_secret]
        if require_v2:
            args.append("--require-v2")
        self.args = args + list(extra_args)
        self.scheme = "https" if cert else "http"
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        try:
            os.unlink(self.port_file)
        except FileNotFoundError:
            pass
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
                break
            except (FileNotFoundError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("regscale_server exited ({}): {}".format(
                    self.proc.returncode, self.log_text()[-2000:]))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("regscale_server did not start")
            time.sleep(0.02)
        self.control = ControlClient(self.port, self.cafile if self.scheme == "https"
                                     else None)
        return self

    @property
    def url(self):
        return "{}://127.0.0.1:{}".format(self.scheme, self.port)

    def stop(self, timeout=5.0):
        """SIGTERM, wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        self._log.close()
        self.proc = None
        return rc

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    def cleanup(self):
        """Removes the work directory if this object made it (after stop())."""
        if self._own_workdir:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
