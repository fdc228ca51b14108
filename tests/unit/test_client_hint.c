/* SPDX-License-Identifier: MIT */
/* Unit tests for the client's error lines (client/hint.c) and pasted-token checks
 * (client/paste.c): the action chosen for every error code and request, the daemon's
 * messages split into cause and action, and what a pasted token may look like. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "client/hint.h"
#include "client/paste.h"
#include "common/bearer.h"
#include "common/util.h"
#include "proto/proto.h"

#define VERSION_HINT "install matching versions"

static const struct hint_request GET = {.op = PROTO_OP_GET};
static const struct hint_request STATUS = {.op = PROTO_OP_STATUS};
static const struct hint_request PING = {.op = PROTO_OP_PING};
static const struct hint_request LOGIN = {.op = PROTO_OP_LOGIN};
static const struct hint_request LOGIN_MFA = {.op = PROTO_OP_LOGIN, .mfa = true};
static const struct hint_request PASTE = {.op = PROTO_OP_LOGIN, .pasted = true};
static const struct hint_request LOGOUT = {.op = PROTO_OP_LOGOUT};
static const struct hint_request REFRESH = {.op = PROTO_OP_REFRESH};
static const struct hint_request REFRESH_MFA = {.op = PROTO_OP_REFRESH, .mfa = true};

/* One row: the action for err to req with kind holds want, or is NULL (the daemon's). */
struct action_case {
	const struct hint_request *req;
	enum proto_error err;
	const char *kind;
	const char *want;  /* a substring of the action, or NULL for none */
	const char * not ; /* a substring it must not hold, or NULL */
};

static const struct action_case action_cases[] = {
		/* A login's bad_request is about what was given, never a version problem. */
		{&LOGIN, PROTO_E_BAD_REQUEST, NULL, NULL, NULL},
		{&PASTE, PROTO_E_BAD_REQUEST, NULL, NULL, NULL},
		{&REFRESH_MFA, PROTO_E_BAD_REQUEST, NULL, NULL, NULL},
		/* Requests the client builds alone: only a version mismatch makes them bad. */
		{&GET, PROTO_E_BAD_REQUEST, NULL, VERSION_HINT, NULL},
		{&STATUS, PROTO_E_BAD_REQUEST, NULL, VERSION_HINT, NULL},
		{&PING, PROTO_E_BAD_REQUEST, NULL, VERSION_HINT, NULL},
		{&LOGOUT, PROTO_E_BAD_REQUEST, NULL, VERSION_HINT, NULL},
		{&REFRESH, PROTO_E_BAD_REQUEST, NULL, VERSION_HINT, NULL},
		{&LOGIN, PROTO_E_UNSUPPORTED_VERSION, NULL, VERSION_HINT, NULL},
		{&GET, PROTO_E_UNKNOWN_OP, NULL, VERSION_HINT, NULL},
		{&REFRESH_MFA, PROTO_E_UNKNOWN_OP, NULL, VERSION_HINT, NULL},
		{&LOGIN, PROTO_E_TOO_LARGE, NULL, VERSION_HINT, NULL},
		{&GET, PROTO_E_TOO_MANY_CLIENTS, NULL, "retry in a moment", NULL},
		{&LOGIN, PROTO_E_IDLE_TIMEOUT, NULL, "again", NULL},
		{&GET, PROTO_E_TIMEOUT, NULL, "--wait", NULL},
		{&LOGIN, PROTO_E_TIMEOUT, NULL, "'regscale-token status'", "--wait"},
		{&REFRESH, PROTO_E_TIMEOUT, NULL, "'regscale-token status'", "--wait"},
		{&STATUS, PROTO_E_TIMEOUT, NULL, "retry", "--wait"},
		{&LOGIN, PROTO_E_PERMISSION_DENIED, NULL, "daemon's own user or root", NULL},
		{&LOGOUT, PROTO_E_PERMISSION_DENIED, NULL, "admin_users", NULL},
		{&REFRESH, PROTO_E_PERMISSION_DENIED, NULL, "admin_users", NULL},
		{&GET, PROTO_E_PERMISSION_DENIED, NULL, "allow_users", "admin_users"},
		{&STATUS, PROTO_E_PERMISSION_DENIED, NULL, "allow_users", NULL},
		{&GET, PROTO_E_NO_TOKEN, NULL, "'regscale-token login'", NULL},
		{&REFRESH, PROTO_E_NO_TOKEN, NULL, "'regscale-token login' first", NULL},
		{&GET, PROTO_E_TOKEN_EXPIRED, PROTO_KIND_PASTED, "login --token", NULL},
		{&GET, PROTO_E_TOKEN_EXPIRED, PROTO_KIND_SERVICE, "token_file", "login"},
		{&GET, PROTO_E_TOKEN_EXPIRED, PROTO_KIND_LOGIN, "'regscale-token refresh'", NULL},
		{&GET, PROTO_E_TOKEN_EXPIRED, NULL, "'regscale-token status'", NULL},
		/* The daemon knows why a login failed; the code alone does not. */
		{&LOGIN, PROTO_E_LOGIN_FAILED, NULL, NULL, NULL},
		{&REFRESH, PROTO_E_LOGIN_FAILED, NULL, NULL, NULL},
		{&GET, PROTO_E_LOGIN_FAILED, NULL, NULL, NULL},
		{&LOGIN, PROTO_E_CREDENTIALS_REJECTED, NULL, "username and password",
				"password_file"},
		{&LOGIN_MFA, PROTO_E_CREDENTIALS_REJECTED, NULL, "one-time code", "password_file"},
		{&PASTE, PROTO_E_CREDENTIALS_REJECTED, NULL, "login --token", "password"},
		{&REFRESH, PROTO_E_CREDENTIALS_REJECTED, NULL, "password_file", NULL},
		{&REFRESH_MFA, PROTO_E_CREDENTIALS_REJECTED, NULL, "refresh --mfa", NULL},
		{&GET, PROTO_E_CREDENTIALS_REJECTED, NULL, "'regscale-token login'", NULL},
		{&GET, PROTO_E_LOGIN_REQUIRED, PROTO_KIND_PASTED, "login --token", "--mfa"},
		{&REFRESH, PROTO_E_LOGIN_REQUIRED, PROTO_KIND_PASTED, "login --token", "--mfa"},
		{&GET, PROTO_E_LOGIN_REQUIRED, PROTO_KIND_LOGIN, "refresh --mfa", "--token"},
		{&REFRESH, PROTO_E_LOGIN_REQUIRED, PROTO_KIND_LOGIN, "refresh --mfa", "--token"},
		{&REFRESH_MFA, PROTO_E_LOGIN_REQUIRED, PROTO_KIND_LOGIN, "fresh code", NULL},
		{&GET, PROTO_E_LOGIN_REQUIRED, NULL, "--mfa", NULL},
		{&LOGIN, PROTO_E_MFA_REQUIRED, NULL, "'regscale-token login --mfa'", "CODE"},
		{&REFRESH, PROTO_E_MFA_REQUIRED, NULL, "'regscale-token refresh --mfa'", "CODE"},
		{&GET, PROTO_E_INTERNAL, NULL, NULL, NULL},
};

static void test_action_table(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(action_cases); i++) {
		const struct action_case *t = &action_cases[i];
		const char *a = hint_action(t->req, t->err, t->kind);

		print_message("case %zu: %s %s -> %s\n", i, proto_op_name(t->req->op),
				proto_error_name(t->err), a ? a : "(the daemon's)");
		if (!t->want) {
			assert_null(a);
			continue;
		}
		assert_non_null(a);
		assert_non_null(strstr(a, t->want));
		if (t->not )
			assert_null(strstr(a, t->not ));
	}
}

/* Every code has an action for every request, one way or another, and no line from the
 * client's own table ends in a second sentence. */
static void test_every_code_has_one_action(void **state)
{
	for (int op = 0; op < _PROTO_OP_MAX; op++)
		for (int err = PROTO_E_BAD_REQUEST; err < _PROTO_E_MAX; err++)
			for (int v = 0; v < 3; v++) {
				struct hint_request req = {
						.op = op, .pasted = v == 1, .mfa = v == 2};
				char line[1024];
				const char *a = hint_action(&req, err, NULL);

				hint_error_line(&req, err, NULL, "something broke", line,
						sizeof(line));
				assert_string_not_equal(line, "");
				/* "<cause>; <action>": the cause once, one action. */
				assert_int_equal(strncmp(line, "something broke; ", 17), 0);
				assert_null(strstr(line + 17, "; "));
				if (a)
					assert_null(strstr(a, "; "));
			}
}

/* One message the daemon sends, and what the line makes of it. */
struct split_case {
	const char *message;
	const char *cause;
	const char *action; /* the daemon's, "" for none */
};

static const struct split_case split_cases[] = {
		{"credentials rejected by RegScale (HTTP 400, credentials rejected); run "
		 "'regscale-token login' or fix the password and reload",
				"credentials rejected by RegScale (HTTP 400, credentials rejected)",
				"run 'regscale-token login' or fix the password and reload"},
		{"no credentials: run 'regscale-token login'", "no credentials",
				"run 'regscale-token login'"},
		{"another login is in progress; try again when it is done",
				"another login is in progress", "try again when it is done"},
		{"login failed: HTTP 503, transient; retry 2 in 4s",
				"login failed: HTTP 503, transient; retry 2 in 4s", ""},
		{"login failed: cannot connect; an MFA login is not retried: run 'regscale-token "
		 "login --mfa CODE' again",
				"login failed: cannot connect; an MFA login is not retried",
				"run 'regscale-token login --mfa CODE' again"},
		{"the token expired at 2026-11-29T14:00:00Z; credentials rejected by RegScale "
		 "(HTTP 401); run 'regscale-token login' or fix the password and reload",
				"the token expired at 2026-11-29T14:00:00Z; credentials rejected "
				"by "
				"RegScale (HTTP 401)",
				"run 'regscale-token login' or fix the password and reload"},
		{"this daemon serves a service token; remove token_file to use password login",
				"this daemon serves a service token",
				"remove token_file to use password login"},
		{"the daemon holds no token", "the daemon holds no token", ""},
		{"login needs a \"username\" (none configured)",
				"login needs a \"username\" (none configured)", ""},
		{"this account logs in with an MFA code, which the daemon does not keep: refresh "
		 "with a fresh code",
				"this account logs in with an MFA code, which the daemon does not "
				"keep",
				"refresh with a fresh code"},
		{"the token has expired: copy a fresh one from RegScale", "the token has expired",
				"copy a fresh one from RegScale"},
		{"RegScale rejected the token (HTTP 401); nothing changed",
				"RegScale rejected the token (HTTP 401); nothing changed", ""},
		{"a pasted token cannot be renewed by the daemon: paste a new one 'regscale-token "
		 "login --token'",
				"a pasted token cannot be renewed by the daemon",
				"paste a new one 'regscale-token login --token'"},
		{"", "", ""},
};

static void test_split_daemon_messages(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(split_cases); i++) {
		char cause[512], action[512];

		hint_split(split_cases[i].message, cause, sizeof(cause), action, sizeof(action));
		assert_string_equal(cause, split_cases[i].cause);
		assert_string_equal(action, split_cases[i].action);
	}
}

/* The wrong password of a login: the daemon's cause once, the client's action only. */
static void test_wrong_password_line(void **state)
{
	char line[1024];

	hint_error_line(&LOGIN, PROTO_E_CREDENTIALS_REJECTED, NULL,
			"credentials rejected by RegScale (HTTP 400, credentials rejected); run "
			"'regscale-token login' or fix the password and reload",
			line, sizeof(line));
	assert_string_equal(line, "credentials rejected by RegScale (HTTP 400, credentials "
				  "rejected); check the username and password, and run "
				  "'regscale-token login' again");
}

/* Where the code says too little, the daemon's action is the one shown; without one, a
 * fallback that fits the request. */
static void test_daemon_action_when_code_says_little(void **state)
{
	char line[1024];

	hint_error_line(&REFRESH, PROTO_E_LOGIN_FAILED, NULL,
			"no credentials: run 'regscale-token login'", line, sizeof(line));
	assert_string_equal(line, "no credentials; run 'regscale-token login'");
	hint_error_line(&LOGIN, PROTO_E_LOGIN_FAILED, NULL,
			"another login is in progress; try again when it is done", line,
			sizeof(line));
	assert_string_equal(line, "another login is in progress; try again when it is done");
	hint_error_line(&LOGIN, PROTO_E_LOGIN_FAILED, NULL, "cannot connect to RegScale", line,
			sizeof(line));
	assert_non_null(strstr(line, "cannot connect to RegScale; check the daemon's url"));
	hint_error_line(&PASTE, PROTO_E_BAD_REQUEST, NULL, "the token has expired", line,
			sizeof(line));
	assert_null(strstr(line, VERSION_HINT));
	assert_non_null(strstr(line, "the token has expired; check that it is the current"));
	hint_error_line(&LOGIN, PROTO_E_BAD_REQUEST, NULL,
			"this daemon serves a service token; remove token_file to use password "
			"login",
			line, sizeof(line));
	assert_string_equal(line, "this daemon serves a service token; remove token_file to use "
				  "password login");
	hint_error_line(&GET, PROTO_E_INTERNAL, NULL, "", line, sizeof(line));
	assert_string_equal(line, "the daemon refused the request (internal); check the "
				  "daemon's log");
}

/* A message with control characters cannot move the terminal's cursor, and a long one
 * never hides the action. */
static void test_line_sanitized_and_action_kept(void **state)
{
	char msg[3000], line[1024];

	hint_error_line(&GET, PROTO_E_NO_TOKEN, NULL, "bad\033[2Jthing\nmore", line, sizeof(line));
	assert_null(strchr(line, '\033'));
	assert_null(strchr(line, '\n'));
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	hint_error_line(&GET, PROTO_E_NO_TOKEN, NULL, msg, line, sizeof(line));
	assert_non_null(strstr(line, "...; run 'regscale-token login'"));
}

#define HDR          "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define P_EXP_2100   "eyJzdWIiOiJqZG9lIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
#define P_EXP_1000   "eyJzdWIiOiJqZG9lIiwiZXhwIjoxMDAwfQ"
#define P_NO_EXP     "eyJzdWIiOiJqZG9lIn0"
#define P_NESTED_EXP "eyJhIjp7ImV4cCI6NX0sImV4cCI6NDEwMjQ0NDgwMCwieCI6WzEsMl19"
#define P_ARRAY      "WzFd"
#define P_NOT_JSON   "bm90IGpzb24"
#define SIG          "c2lnbmF0dXJlLWJ5dGVz"
#define NOW          1795960800LL

static void test_paste_strip(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
			{"abc", "abc"},
			{"  abc \r\n", "abc"},
			{"Bearer abc", "abc"},
			{"bearer\tabc", "abc"},
			{" BEARER    abc  ", "abc"},
			{"BeArEr \t abc", "abc"},
			{"Bearerabc", "Bearerabc"}, /* no space: not the word */
			{"Bearer", "Bearer"},
			{"   ", ""},
			{"", ""},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		size_t off, len;

		bearer_strip(cases[i].in, strlen(cases[i].in), &off, &len);
		assert_int_equal(len, strlen(cases[i].out));
		assert_memory_equal(cases[i].in + off, cases[i].out, len);
	}
}

static void test_paste_check(void **state)
{
	static const struct {
		const char *token;
		int r;
		const char *why; /* substring */
	} cases[] = {
			{HDR "." P_EXP_2100 "." SIG, 0, NULL},
			{HDR "." P_NO_EXP "." SIG, 0, NULL},
			{HDR "." P_NESTED_EXP "." SIG, 0, NULL},
			{HDR "." P_EXP_1000 "." SIG, -ESTALE, "expired at 1970-01-01T00:16:40Z"},
			{"", -EINVAL, "empty"},
			{"just-some-text", -EINVAL, "1 part separated by dots, a JWT has 3"},
			{HDR "." P_NO_EXP, -EINVAL, "2 parts"},
			{HDR "." P_NO_EXP "." SIG ".x", -EINVAL, "4 parts"},
			{HDR ".." SIG, -EINVAL, "payload (part 2 of 3) is empty"},
			{HDR "." P_NO_EXP ".", -EINVAL, "signature (part 3 of 3) is empty"},
			{HDR "." P_NO_EXP "." SIG "=", -EINVAL, "not in a JWT"},
			{HDR "." P_NO_EXP " ." SIG, -EINVAL, "at byte 57 of"},
			{HDR "." P_ARRAY "." SIG, -EINVAL, "payload (part 2 of 3) is not"},
			{HDR "." P_NOT_JSON "." SIG, -EINVAL, "payload (part 2 of 3) is not"},
			{P_NOT_JSON "." P_NO_EXP "." SIG, -EINVAL, "header (part 1 of 3) is not"},
			{"a." P_NO_EXP "." SIG, -EINVAL, "header (part 1 of 3) is not"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char why[256] = "";
		int64_t exp = 7;
		int r = paste_check(cases[i].token, strlen(cases[i].token), NOW, &exp, why,
				sizeof(why));

		print_message("case %zu: %d %s\n", i, r, why);
		assert_int_equal(r, cases[i].r);
		if (cases[i].why)
			assert_non_null(strstr(why, cases[i].why));
		/* The reason never quotes the token. */
		assert_null(strstr(why, SIG));
		assert_null(strstr(why, HDR));
	}
}

static void test_paste_exp_and_length(void **state)
{
	static char big[PROTO_MAX_TOKEN + 2];
	char why[256];
	int64_t exp;
	const char *t = HDR "." P_NESTED_EXP "." SIG;

	assert_int_equal(paste_check(t, strlen(t), NOW, &exp, why, sizeof(why)), 0);
	assert_int_equal(exp, 4102444800LL); /* the top-level one, not the nested "exp":5 */
	t = HDR "." P_NO_EXP "." SIG;
	assert_int_equal(paste_check(t, strlen(t), NOW, &exp, why, sizeof(why)), 0);
	assert_int_equal(exp, -1);

	memset(big, 'a', sizeof(big) - 1);
	assert_int_equal(paste_check(big, PROTO_MAX_TOKEN + 1, NOW, &exp, why, sizeof(why)),
			-EINVAL);
	assert_non_null(strstr(why, "more than the 16384"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_action_table),
			cmocka_unit_test(test_every_code_has_one_action),
			cmocka_unit_test(test_split_daemon_messages),
			cmocka_unit_test(test_wrong_password_line),
			cmocka_unit_test(test_daemon_action_when_code_says_little),
			cmocka_unit_test(test_line_sanitized_and_action_kept),
			cmocka_unit_test(test_paste_strip),
			cmocka_unit_test(test_paste_check),
			cmocka_unit_test(test_paste_exp_and_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
