#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/format.h"
#include "client/password.h"
#include "client/session.h"
#include "common/harden.h"
#include "common/utf8.h"
#include "common/util.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* The daemon closes a connection with no request after PROTO_DEFAULT_IDLE_TIMEOUT_SEC: a prompt
 * answered later than this reconnects before sending. */
#define PROMPT_KEEP_CONNECTION_S (PROTO_DEFAULT_IDLE_TIMEOUT_SEC / 2)

/* Room for the fixed parts of a login request: {"op":"login","v":1,...}\n. */
#define LOGIN_REQUEST_OVERHEAD 128

static long long now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

/* Prints the outcome of a login or refresh reply: "<done> <user_word> <user><tail> valid
 * until ...", or explains why the reply leaves no usable token. Returns the exit code. */
static int print_outcome(const struct reply_read *r, const char *what, const char *done,
		const char *user_word, const char *tail)
{
	char state_buf[FORMAT_FIELD_MAX], user_buf[FORMAT_FIELD_MAX], message_buf[FORMAT_FIELD_MAX];
	const char *state_name = format_reply_str(r, PROTO_F_STATE, state_buf, sizeof(state_buf));
	int state = proto_state_from_name(state_name);
	const char *user = format_reply_str(r, PROTO_F_USER_ID, user_buf, sizeof(user_buf));
	const char *message =
			format_reply_str(r, PROTO_F_MESSAGE, message_buf, sizeof(message_buf));
	char clean_user[256], clean_msg[512], validity[128];

	if (state == PROTO_STATE_EXPIRED || state == PROTO_STATE_NO_TOKEN) {
		cli_say("after the %s the daemon holds %s (%s); see 'regscale-token status'", what,
				state == PROTO_STATE_EXPIRED ? "an expired token" : "no token",
				format_sanitize(message && *message ? message : state_name,
						clean_msg, sizeof(clean_msg)));
		return EXIT_NO_TOKEN;
	}

	format_validity(r, (long long)time(NULL), validity, sizeof(validity));
	if (user && *user)
		printf("%s %s %s%s %s\n", done, user_word,
				format_sanitize(user, clean_user, sizeof(clean_user)), tail,
				validity);
	else
		printf("%s%s %s\n", done, tail, validity);
	return EXIT_SUCCESS;
}

/* Reads the password into pw as password.h describes, from the terminal when stdin is one.
 * Returns 0 and the length in *ret_len, or the exit code after saying what went wrong. */
static int read_password(const char *username, struct locked *pw, size_t *ret_len)
{
	bool tty = isatty(STDIN_FILENO);
	char prompt[PROTO_MAX_USERNAME + 64], clean[PROTO_MAX_USERNAME + 8];
	int r;

	if (tty) {
		if (username)
			snprintf(prompt, sizeof(prompt), "RegScale password for %s: ",
					format_sanitize(username, clean, sizeof(clean)));
		else
			snprintf(prompt, sizeof(prompt), "RegScale password: ");
		r = password_read_tty(prompt, pw->data, PASSWORD_MAX, ret_len);
	} else {
		r = password_read_fd(STDIN_FILENO, pw->data, PASSWORD_MAX, ret_len);
	}
	switch (r) {
	case 0:
		return 0;
	case -ENODATA:
		cli_say("the password is empty; type it at the prompt, or give it as one line on "
			"standard input");
		break;
	case -EMSGSIZE:
		cli_say("the password is longer than %d bytes; check what is given to "
			"'regscale-token login'",
				PASSWORD_MAX - 2);
		break;
	case -ENXIO:
		cli_say("cannot open the terminal to ask for the password; give it as one line on "
			"standard input instead");
		break;
	case -EIO:
		cli_say("cannot ask for the password from a background job; run 'regscale-token "
			"login' in the foreground");
		break;
	case -EINTR:
		cli_say("interrupted while reading the password; run 'regscale-token login' again");
		break;
	default:
		cli_say("cannot read the password from %s: %s; give it as one line on standard "
			"input",
				tty ? "the terminal" : "standard input", strerror(-r));
		break;
	}
	return EXIT_FAILURE;
}

/* Builds the login request into req, which must hold LOGIN_REQUEST_OVERHEAD plus the escaped
 * sizes of its strings. Returns 0 and the length in *ret_len, or -ENOBUFS / -EILSEQ. */
static int build_login(char *req, size_t size, const char *username, const char *password,
		size_t password_len, const char *mfa, size_t *ret_len)
{
	struct jsonw w;

	cli_request_begin(&w, PROTO_OP_LOGIN, req, size);
	if (username)
		jsonw_string(&w, PROTO_F_USERNAME, username, strlen(username));
	jsonw_string(&w, PROTO_F_PASSWORD, password, password_len);
	if (mfa)
		jsonw_string(&w, PROTO_F_MFA, mfa, strlen(mfa));
	return jsonw_end(&w, ret_len);
}

/* A --mfa CODE is 1..PROTO_MAX_MFA printable ASCII characters without spaces. */
static bool mfa_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PROTO_MAX_MFA)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* clang-format off */
static const char login_usage[] =
	"Usage: regscale-token [OPTIONS] login [--username USER] [--mfa CODE]\n"
	"\n"
	"Log the daemon in to RegScale with a password; it keeps the credentials (sealed) to\n"
	"refresh the token. The password is read without echo from the terminal, or as one\n"
	"line from standard input when that is not a terminal; never from the command line or\n"
	"the environment. USER defaults to the daemon's configured username; CODE is a\n"
	"one-time MFA code. Only the daemon's own user and root may log in.\n";

static const char logout_usage[] =
	"Usage: regscale-token [OPTIONS] logout\n"
	"\n"
	"Make the daemon forget the token and stored credentials.\n";

static const char refresh_usage[] =
	"Usage: regscale-token [OPTIONS] refresh\n"
	"\n"
	"Have the daemon log in again now with the stored credentials (or reload a service\n"
	"token's file) and print the outcome.\n";
/* clang-format on */

int session_run_login(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"username", required_argument, NULL, 'u'},
			{"mfa", required_argument, NULL, 'm'},
			CLI_JSON_OPTION,
			{"help", no_argument, NULL, 'h'},
			/* Refused with an explanation, and without echoing the value. */
			{"password", optional_argument, NULL, 'P'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	_cleanup_(locked_free) struct locked pw = {.data = NULL}, req = {.data = NULL};
	_cleanup_(freep) char *path = NULL;
	_cleanup_(closep) int fd = -EBADF;
	int64_t timeout_ms = cli_timeout(g, CLI_LOGIN_TIMEOUT_MS);
	const char *username = NULL, *mfa = NULL;
	struct connect_reply rep;
	size_t pw_len = 0, req_len = 0;
	long long asked;
	char clean[64];
	int c, r, ex = 0;

	while ((c = cli_getopt(argc, argv, opts, login_usage, &ex)) > 0) {
		switch (c) {
		case 'u':
			if (!*optarg || strlen(optarg) > PROTO_MAX_USERNAME ||
					!utf8_valid(optarg, strlen(optarg)))
				return cli_usage_error("invalid --username (1 to %d bytes of UTF-8 "
						       "text)",
						PROTO_MAX_USERNAME);
			username = optarg;
			break;
		case 'm':
			if (!mfa_valid(optarg))
				return cli_usage_error(
						"invalid --mfa '%s' (the one-time code, 1 to "
						"%d characters)",
						format_sanitize(optarg, clean, sizeof(clean)),
						PROTO_MAX_MFA);
			mfa = optarg;
			break;
		case 'P':
			return cli_usage_error("the password is never taken from the command line, "
					       "where other users see it; it is read from the "
					       "terminal, or as one line from standard input");
		}
	}
	if (c < 0)
		return ex;

	/* No core dump and no ptrace attach by our own user while we hold the password. */
	(void)harden_process();

	r = cli_socket_path(g, &path);
	if (r != 0)
		return r;
	/* Connect first, as ssh-add does, so nobody types a password for a daemon that is not
	 * there, nor for a process that we would not trust with it. */
	r = cli_connect(g, path, timeout_ms, PROTO_OP_LOGIN, &fd);
	if (r != 0)
		return r;

	r = locked_alloc(PASSWORD_MAX, &pw);
	if (r < 0) {
		cli_say("cannot allocate memory for the password: %s", strerror(-r));
		return EXIT_FAILURE;
	}
	asked = now_s();
	r = read_password(username, &pw, &pw_len);
	if (r != 0)
		return r;

	r = locked_alloc(LOGIN_REQUEST_OVERHEAD + jsonw_string_max(pw_len) +
					 jsonw_string_max(username ? strlen(username) : 0) +
					 jsonw_string_max(mfa ? strlen(mfa) : 0),
			&req);
	if (r < 0) {
		cli_say("cannot allocate memory for the request: %s", strerror(-r));
		return EXIT_FAILURE;
	}
	r = build_login(req.data, req.size, username, pw.data, pw_len, mfa, &req_len);
	locked_free(&pw);
	if (r == -EILSEQ) {
		cli_say("the password is not valid UTF-8 text or holds a NUL byte; RegScale "
			"passwords are text");
		return EXIT_FAILURE;
	}
	if (r < 0) {
		cli_say("cannot build the login request; this is a bug, please report it");
		return EXIT_FAILURE;
	}

	if (now_s() - asked > PROMPT_KEEP_CONNECTION_S) {
		/* The daemon may have given up on the idle connection: start afresh. */
		closep(&fd);
		r = cli_connect(g, path, timeout_ms, PROTO_OP_LOGIN, &fd);
		if (r != 0)
			return r;
	}
	r = connect_exchange(fd, req.data, req_len, true, timeout_ms, &rep);
	locked_free(&req);
	if (r < 0)
		return cli_fail_transport(path, timeout_ms, r);
	if (reply_read_error(&rep.r, NULL, 0) != PROTO_OK)
		r = cli_fail_reply(PROTO_OP_LOGIN, &rep.r);
	else
		r = print_outcome(&rep.r, "login", "logged in", "as", ", token");
	connect_reply_done(&rep);
	return r;
}

/* Runs logout or refresh: a request without fields. */
static int run_plain(const struct globals *g, int argc, char **argv, enum proto_op op,
		const char *usage, int64_t timeout_ms)
{
	struct connect_reply rep;
	int ex, r;

	if (cli_simple_options(argc, argv, usage, &ex) < 0)
		return ex;
	r = cli_call_simple(g, op, timeout_ms, &rep);
	if (r != 0)
		return r;
	if (op == PROTO_OP_LOGOUT) {
		puts("logged out");
		r = EXIT_SUCCESS;
	} else {
		r = print_outcome(&rep.r, "refresh", "refreshed the token", "for", ",");
	}
	connect_reply_done(&rep);
	return r;
}

int session_run_logout(const struct globals *g, int argc, char **argv)
{
	return run_plain(g, argc, argv, PROTO_OP_LOGOUT, logout_usage, CLI_TIMEOUT_MS);
}

int session_run_refresh(const struct globals *g, int argc, char **argv)
{
	return run_plain(g, argc, argv, PROTO_OP_REFRESH, refresh_usage, CLI_LOGIN_TIMEOUT_MS);
}
