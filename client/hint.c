/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "client/format.h"
#include "client/hint.h"
#include "common/util.h"

#define HINT_VERSION "install matching versions of regscale-token and regscale-tokend"

/* Words a part of a message starts with when it tells the reader what to do. "retry" only
 * counts when no number follows: "retry 2 in 4s" reports the daemon's plan. */
static bool is_action(const char *s)
{
	static const char *const verbs[] = {
			"run ",
			"fix ",
			"check ",
			"try ",
			"remove ",
			"see ",
			"set ",
			"give ",
			"paste ",
			"ask ",
			"use ",
			"log in",
			"restart ",
			"reload ",
			"install ",
			"copy ",
			"wait ",
			"start ",
			"point ",
			"raise ",
			"put ",
			"refresh ",
	};

	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (strncmp(s, verbs[i], strlen(verbs[i])) == 0)
			return true;
	return strncmp(s, "retry ", 6) == 0 && !(s[6] >= '0' && s[6] <= '9');
}

/* Appends s[0..n) to buf[0..size) at *len, after sep when buf is not empty; cut to fit. */
static void append(char *buf, size_t size, size_t *len, const char *sep, const char *s, size_t n)
{
	size_t sep_len = *len > 0 ? strlen(sep) : 0;

	if (size == 0 || *len + 1 >= size)
		return;
	if (sep_len > size - 1 - *len)
		sep_len = size - 1 - *len;
	memcpy(buf + *len, sep, sep_len);
	*len += sep_len;
	if (n > size - 1 - *len)
		n = size - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

void hint_split(const char *message, char *cause, size_t size, char *action, size_t action_size)
{
	const char *p = message ? message : "";
	size_t cause_len = 0, action_len = 0;

	if (size > 0)
		cause[0] = '\0';
	if (action_size > 0)
		action[0] = '\0';
	while (*p) {
		const char *end = strstr(p, "; ");
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *colon = NULL;

		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		if (n > 0 && is_action(p)) {
			if (action_len == 0)
				append(action, action_size, &action_len, "", p, n);
		} else if (n > 0) {
			/* "no credentials: run 'regscale-token login'": the cause, then the action.
			 */
			for (const char *q = p; q + 2 < p + n; q++)
				if (q[0] == ':' && q[1] == ' ' && is_action(q + 2)) {
					colon = q;
					break;
				}
			if (colon && action_len == 0)
				append(action, action_size, &action_len, "", colon + 2,
						(size_t)(p + n - colon - 2));
			append(cause, size, &cause_len, "; ", p, colon ? (size_t)(colon - p) : n);
		}
		p += n;
		if (*p)
			p += 2; /* the "; " */
	}
}

/* The action for an error that leaves no token to serve, by the kind of the token held. */
static const char *renew_action(const char *kind)
{
	if (kind && strcmp(kind, PROTO_KIND_PASTED) == 0)
		return "paste a new token with 'regscale-token login --token'";
	if (kind && strcmp(kind, PROTO_KIND_SERVICE) == 0)
		return "put a fresh token in the daemon's token_file";
	if (kind && strcmp(kind, PROTO_KIND_LOGIN) == 0)
		return "run 'regscale-token refresh', or 'regscale-token login'";
	return "see 'regscale-token status'";
}

static const char *bad_request_action(const struct hint_request *req)
{
	if (req->op == PROTO_OP_LOGIN)
		return NULL; /* the daemon's message says what is wrong with what was given */
	if (req->op == PROTO_OP_REFRESH && req->mfa)
		return NULL; /* the code, perhaps */
	return HINT_VERSION;
}

static const char *credentials_action(const struct hint_request *req)
{
	if (req->op == PROTO_OP_LOGIN && req->pasted)
		return "copy the current token from RegScale and run 'regscale-token login "
		       "--token' "
		       "again";
	if (req->op == PROTO_OP_LOGIN && req->mfa)
		return "check the username, password and one-time code, and run 'regscale-token "
		       "login --mfa' again";
	if (req->op == PROTO_OP_LOGIN)
		return "check the username and password, and run 'regscale-token login' again";
	if (req->op == PROTO_OP_REFRESH && req->mfa)
		return "check the one-time code, and run 'regscale-token refresh --mfa' again";
	return "give new credentials with 'regscale-token login', or fix the daemon's "
	       "password_file or token_file and reload it";
}

/* login_required: only a person can renew the token, and how depends on where it came from. */
static const char *person_action(const struct hint_request *req, const char *kind)
{
	if (kind && strcmp(kind, PROTO_KIND_PASTED) == 0)
		return "paste a new token with 'regscale-token login --token'";
	if (req->op == PROTO_OP_REFRESH && req->mfa)
		return "run 'regscale-token refresh --mfa' again with a fresh code";
	if (kind && strcmp(kind, PROTO_KIND_LOGIN) == 0)
		return "give a fresh one-time code with 'regscale-token refresh --mfa'";
	return "log in with a fresh one-time code: 'regscale-token login --mfa'";
}

const char *hint_action(const struct hint_request *req, enum proto_error err, const char *kind)
{
	bool session = req->op == PROTO_OP_LOGIN || req->op == PROTO_OP_LOGOUT ||
		       req->op == PROTO_OP_REFRESH;

	switch (err) {
	case PROTO_E_BAD_REQUEST:
		return bad_request_action(req);
	case PROTO_E_UNSUPPORTED_VERSION:
	case PROTO_E_UNKNOWN_OP:
	case PROTO_E_TOO_LARGE:
		return HINT_VERSION;
	case PROTO_E_TOO_MANY_CLIENTS:
		return "retry in a moment";
	case PROTO_E_IDLE_TIMEOUT:
		return "run the command again";
	case PROTO_E_TIMEOUT:
		if (req->op == PROTO_OP_GET)
			return "retry with a longer --wait, or see 'regscale-token status' for why "
			       "it takes so long";
		if (req->op == PROTO_OP_LOGIN || req->op == PROTO_OP_REFRESH)
			return "see 'regscale-token status' for how the login ends";
		return "retry, and check the daemon's log if it persists";
	case PROTO_E_PERMISSION_DENIED:
		if (session)
			return "run it as the daemon's own user or root, or have your user added "
			       "to "
			       "admin_users / admin_groups";
		return "ask the daemon's administrator to add your user or group to allow_users / "
		       "allow_groups";
	case PROTO_E_NO_TOKEN:
		if (req->op == PROTO_OP_REFRESH)
			return "run 'regscale-token login' first";
		return "run 'regscale-token login', or see 'regscale-token status' for why there "
		       "is none";
	case PROTO_E_TOKEN_EXPIRED:
		return renew_action(kind);
	case PROTO_E_LOGIN_FAILED:
		return NULL; /* the daemon knows why: another login running, no credentials... */
	case PROTO_E_CREDENTIALS_REJECTED:
		return credentials_action(req);
	case PROTO_E_LOGIN_REQUIRED:
		return person_action(req, kind);
	case PROTO_E_MFA_REQUIRED:
		if (req->op == PROTO_OP_REFRESH)
			return "run 'regscale-token refresh --mfa' to give the one-time code";
		return "run 'regscale-token login --mfa' to give the one-time code";
	case PROTO_E_INTERNAL:
	case PROTO_OK:
	case _PROTO_E_MAX:
		break;
	}
	return NULL;
}

/* The action when neither the code nor the daemon says one. */
static const char *fallback_action(const struct hint_request *req, enum proto_error err)
{
	switch (err) {
	case PROTO_E_BAD_REQUEST:
		if (req->op == PROTO_OP_LOGIN && req->pasted)
			return "check that it is the current token from RegScale, and that "
			       "regscale-tokend is as new as regscale-token";
		if (req->op == PROTO_OP_LOGIN)
			return "see 'regscale-token login --help'";
		return HINT_VERSION;
	case PROTO_E_LOGIN_FAILED:
		if (req->op == PROTO_OP_LOGIN || req->op == PROTO_OP_REFRESH)
			return "check the daemon's url and the network, and see 'regscale-token "
			       "status'";
		return "see 'regscale-token status' (the daemon tries again by itself)";
	default:
		return "check the daemon's log";
	}
}

char *hint_error_line(const struct hint_request *req, enum proto_error err, const char *kind,
		const char *message, char *buf, size_t size)
{
	char cause[FORMAT_FIELD_MAX], daemon_action[FORMAT_FIELD_MAX];
	char clean_cause[512], clean_action[256];
	const char *action = hint_action(req, err, kind);

	hint_split(message, cause, sizeof(cause), daemon_action, sizeof(daemon_action));
	if (!*cause)
		snprintf(cause, sizeof(cause), "the daemon refused the request (%s)",
				proto_error_name(err));
	if (!action)
		action = *daemon_action ? daemon_action : fallback_action(req, err);
	/* Each part is cut on its own, so that a long cause never hides the action. */
	snprintf(buf, size, "%s; %s", format_sanitize(cause, clean_cause, sizeof(clean_cause)),
			format_sanitize(action, clean_action, sizeof(clean_action)));
	return buf;
}
