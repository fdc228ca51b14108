/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/format.h"
#include "client/hint.h"
#include "client/password.h"
#include "client/session.h"
#include "common/harden.h"
#include "common/util.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* The daemon closes a connection with no request after PROTO_DEFAULT_IDLE_TIMEOUT_SEC (its
 * idle_timeout): one kept waiting at a prompt longer than half of that is made afresh. */
#define KEEP_IDLE_MS (PROTO_DEFAULT_IDLE_TIMEOUT_SEC * 1000 / 2)

/* Room for a refresh request: {"op":"refresh","v":1,"mfa":"..."}\n. */
#define REFRESH_REQUEST_MAX 128

int session_open(struct session_conn *c, const struct globals *g, enum proto_op op,
		int64_t timeout_ms)
{
	int r;

	*c = (struct session_conn){.g = g, .op = op, .timeout_ms = timeout_ms, .fd = -EBADF};
	r = cli_socket_path(g, &c->path);
	if (r != 0)
		return r;
	r = cli_connect(g, c->path, timeout_ms, op, &c->fd);
	if (r != 0)
		return r;
	c->used_ms = connect_now_ms();
	return 0;
}

void session_close(struct session_conn *c)
{
	closep(&c->fd);
	c->path = mfree(c->path);
}

/* Whether the daemon gave up on the connection already: it then wrote idle_timeout, or
 * closed it. */
static bool given_up(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) != 0;
}

int session_exchange(struct session_conn *c, char *req, size_t len, struct connect_reply *rep)
{
	int r;

	if (c->fd < 0 || connect_now_ms() - c->used_ms > KEEP_IDLE_MS || given_up(c->fd)) {
		closep(&c->fd);
		r = cli_connect(c->g, c->path, c->timeout_ms, c->op, &c->fd);
		if (r != 0) {
			explicit_bzero(req, len);
			return r;
		}
	}
	r = connect_exchange(c->fd, req, len, true, c->timeout_ms, rep);
	if (r < 0) {
		closep(&c->fd);
		return cli_fail_transport(c->path, c->timeout_ms, r);
	}
	c->used_ms = connect_now_ms();
	return 0;
}

static void copy_field(const struct reply_read *r, const char *key, char *buf, size_t size)
{
	char raw[FORMAT_FIELD_MAX];

	if (format_reply_str(r, key, raw, sizeof(raw)))
		format_sanitize(raw, buf, size);
	else
		buf[0] = '\0';
}

int session_ask_info(struct session_conn *c, struct session_info *info)
{
	char buf[64];
	struct connect_reply rep;
	struct jsonw w;
	size_t len;
	int r;

	*info = (struct session_info){.url = ""};
	cli_request_begin(&w, PROTO_OP_STATUS, buf, sizeof(buf));
	if (jsonw_end(&w, &len) < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot build the request; this is a bug, please report it");
	r = session_exchange(c, buf, len, &rep);
	if (r != 0)
		return r;
	if (!rep.r.ok && reply_read_error(&rep.r, NULL, 0) == PROTO_E_PERMISSION_DENIED) {
		/* Nobody types a password for a daemon that will not take it. */
		r = cli_fail_reply(&(struct hint_request){.op = c->op}, &rep.r);
		connect_reply_done(&rep);
		return r;
	}
	if (rep.r.ok) {
		copy_field(&rep.r, PROTO_F_URL, info->url, sizeof(info->url));
		copy_field(&rep.r, PROTO_F_USERNAME, info->username, sizeof(info->username));
		copy_field(&rep.r, PROTO_F_USER_ID, info->user_id, sizeof(info->user_id));
		copy_field(&rep.r, PROTO_F_KIND, info->kind, sizeof(info->kind));
		copy_field(&rep.r, PROTO_F_CONFIGURED_USER, info->configured,
				sizeof(info->configured));
	}
	connect_reply_done(&rep);
	return 0;
}

bool session_code_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PROTO_MAX_MFA)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

int session_read_code(const struct session_info *info, const char *username, struct locked *code,
		size_t *ret_len)
{
	const char *user = username ? username : info->username;
	char prompt[PROTO_MAX_USERNAME + 320], clean[PROTO_MAX_USERNAME + 8];
	size_t len = 0, o = 0;
	bool tty = password_have_tty();
	int r;

	if (!tty && isatty(STDIN_FILENO))
		return -ENODATA;
	snprintf(prompt, sizeof(prompt), "One-time code%s%s%s%s: ", *user ? " for " : "",
			format_sanitize(user, clean, sizeof(clean)), *info->url ? " at " : "",
			info->url);
	if (tty)
		r = password_read_tty(prompt, code->data, SESSION_CODE_MAX, &len);
	else
		r = password_read_fd(STDIN_FILENO, code->data, SESSION_CODE_MAX, &len);
	if (r == -ENXIO || (!tty && r == -ENODATA))
		return -ENODATA;
	if (r == -EINTR)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"interrupted while reading the one-time code; run the command "
				"again");
	if (r == -EIO)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"cannot ask for the one-time code from a background job; run the "
				"command in the foreground");
	if (r < 0 && r != -ENODATA && r != -EMSGSIZE)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"cannot read the one-time code from %s: %s; run the command again",
				tty ? "the terminal" : "standard input", strerror(-r));
	/* The code as an authenticator app shows it, "123 456", is the code. */
	for (size_t i = 0; r == 0 && i < len; i++)
		if (code->data[i] != ' ' && code->data[i] != '\t')
			code->data[o++] = code->data[i];
	if (r == 0)
		explicit_bzero(code->data + o, len - o);
	code->data[o] = '\0';
	if (r < 0 || !session_code_valid(code->data)) {
		explicit_bzero(code->data, code->size);
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"that is no one-time code (1 to %d characters, no spaces); run the "
				"command again and type the code your authenticator shows",
				PROTO_MAX_MFA);
	}
	*ret_len = o;
	return 0;
}

/* "jdoe (user id 6f1c...)", "jdoe", or "6f1c...", from the reply r. */
static const char *whose(const struct reply_read *r, char *buf, size_t size)
{
	char user[PROTO_MAX_USERNAME + 1], id[128];

	copy_field(r, PROTO_F_USERNAME, user, sizeof(user));
	copy_field(r, PROTO_F_USER_ID, id, sizeof(id));
	if (*user && *id && strcmp(user, id) != 0)
		snprintf(buf, size, "%s (user id %s)", user, id);
	else
		snprintf(buf, size, "%s", *user ? user : id);
	return buf;
}

int session_print_outcome(const struct connect_reply *rep, enum session_outcome what)
{
	char state_buf[64], message_buf[FORMAT_FIELD_MAX], kind[16];
	char who[PROTO_MAX_USERNAME + 160], clean_msg[512], validity[128];
	const struct reply_read *r = &rep->r;
	const char *state_name = format_reply_str(r, PROTO_F_STATE, state_buf, sizeof(state_buf));
	int state = proto_state_from_name(state_name);
	const char *message =
			format_reply_str(r, PROTO_F_MESSAGE, message_buf, sizeof(message_buf));
	bool person;

	if (state == PROTO_STATE_EXPIRED || state == PROTO_STATE_NO_TOKEN)
		return cli_fail(EXIT_NO_TOKEN,
				proto_error_name(state == PROTO_STATE_EXPIRED
								 ? PROTO_E_TOKEN_EXPIRED
								 : PROTO_E_NO_TOKEN),
				"the daemon holds %s after the %s (%s); see 'regscale-token "
				"status'",
				state == PROTO_STATE_EXPIRED ? "an expired token" : "no token",
				what == SESSION_REFRESHED ? "refresh" : "login",
				format_sanitize(message && *message ? message : state_name,
						clean_msg, sizeof(clean_msg)));
	if (cli_json()) {
		cli_print_reply(rep);
		return EXIT_SUCCESS;
	}

	copy_field(r, PROTO_F_KIND, kind, sizeof(kind));
	whose(r, who, sizeof(who));
	format_validity(r, (long long)time(NULL), validity, sizeof(validity));
	/* Nothing renews it but a person: say what to do, and by when. */
	person = state == PROTO_STATE_LOGIN_REQUIRED;
	if (what == SESSION_PASTED || strcmp(kind, PROTO_KIND_PASTED) == 0)
		printf("%s the pasted token%s%s, %s; it cannot be refreshed: paste a new one with "
		       "'regscale-token login --token' before then\n",
				what == SESSION_REFRESHED ? "the daemon holds" : "stored",
				*who ? " of " : "", who, validity);
	else if (what == SESSION_LOGGED_IN)
		printf("logged in%s%s, token %s%s\n", *who ? " as " : "", who, validity,
				person ? "; an MFA login is not refreshed unattended: run "
					 "'regscale-token refresh --mfa' before then"
				       : "");
	else
		printf("refreshed the token%s%s, %s%s\n", *who ? " for " : "", who, validity,
				person ? "; an MFA login is not refreshed unattended: run "
					 "'regscale-token refresh --mfa' before then"
				       : "");
	return EXIT_SUCCESS;
}

/* clang-format off */
static const char logout_usage[] =
	"Usage: regscale-token [OPTIONS] logout [--json]\n"
	"\n"
	"Make the daemon forget the token and stored credentials. --json prints the daemon's\n"
	"reply line, and any error as a JSON object on stdout.\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";

static const char refresh_usage[] =
	"Usage: regscale-token [OPTIONS] refresh [--mfa[=CODE]] [--json]\n"
	"\n"
	"Have the daemon log in again now with the stored credentials (or reload a service\n"
	"token's file) and print the outcome. An account that logs in with a one-time code\n"
	"needs a fresh one: --mfa asks for it on the terminal without echo (or reads it as\n"
	"one line of standard input when there is no terminal), and without --mfa the code\n"
	"is asked for when the daemon says it needs one. --mfa=CODE gives it on the command\n"
	"line, where other users can see it (ps). A pasted token cannot be refreshed: paste\n"
	"a new one with 'regscale-token login --token'.\n"
	"  --json  print the daemon's reply line, and any error as a JSON object on stdout\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";
/* clang-format on */

int session_run_logout(const struct globals *g, int argc, char **argv)
{
	struct connect_reply rep;
	int ex, r;

	if (cli_simple_options(argc, argv, logout_usage, &ex) < 0)
		return ex;
	r = cli_call_simple(g, PROTO_OP_LOGOUT, CLI_TIMEOUT_MS, &rep);
	if (r != 0)
		return r;
	if (cli_json())
		cli_print_reply(&rep);
	else
		puts("logged out");
	connect_reply_done(&rep);
	return EXIT_SUCCESS;
}

/* Sends a refresh, with code[0..code_len) when code is not NULL. */
static int send_refresh(struct session_conn *c, const char *code, size_t code_len,
		struct connect_reply *rep)
{
	_cleanup_(locked_free) struct locked req = {.data = NULL};
	struct jsonw w;
	size_t len;
	int r;

	r = locked_alloc(REFRESH_REQUEST_MAX, &req);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL, "cannot allocate memory: %s",
				strerror(-r));
	cli_request_begin(&w, PROTO_OP_REFRESH, req.data, req.size);
	if (code)
		jsonw_string(&w, PROTO_F_MFA, code, code_len);
	if (jsonw_end(&w, &len) < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot build the request; this is a bug, please report it");
	return session_exchange(c, req.data, len, rep);
}

/* Whether reply r asks a person for a one-time code: login_required of a login token. */
static bool wants_code(const struct reply_read *r)
{
	char kind[16];

	return reply_read_error(r, NULL, 0) == PROTO_E_LOGIN_REQUIRED &&
	       format_reply_str(r, PROTO_F_KIND, kind, sizeof(kind)) &&
	       strcmp(kind, PROTO_KIND_LOGIN) == 0;
}

static void refresh_progress(const struct session_info *info)
{
	if (strcmp(info->kind, PROTO_KIND_PASTED) == 0)
		return; /* nothing to wait for: the daemon cannot refresh it, and says so */
	if (strcmp(info->kind, PROTO_KIND_SERVICE) == 0)
		cli_progress("reloading the service token...");
	else
		cli_progress("refreshing the token%s%s%s%s...", *info->username ? " for " : "",
				info->username, *info->url ? " at " : "", info->url);
}

int session_run_refresh(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"mfa", optional_argument, NULL, 'm'},
			CLI_JSON_OPTION,
			{"help", no_argument, NULL, 'h'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	_cleanup_(session_close) struct session_conn c = {.fd = -EBADF};
	_cleanup_(locked_free) struct locked code = {.data = NULL};
	struct session_info info = {.url = ""};
	const char *mfa_arg = NULL;
	bool ask_code = false, have_code = false;
	struct connect_reply rep;
	size_t code_len = 0;
	char clean[64];
	int c_opt, r, ex = 0;

	while ((c_opt = cli_getopt(argc, argv, opts, refresh_usage, &ex)) > 0) {
		if (c_opt != 'm')
			continue;
		if (!optarg && optind < argc && argv[optind][0] != '-')
			optarg = argv[optind++]; /* "--mfa CODE", as two words */
		if (optarg && !session_code_valid(optarg))
			return cli_usage_error("invalid --mfa '%s' (the one-time code, 1 to %d "
					       "characters)",
					format_sanitize(optarg, clean, sizeof(clean)),
					PROTO_MAX_MFA);
		mfa_arg = optarg;
		ask_code = !optarg;
	}
	if (c_opt < 0)
		return ex;

	(void)harden_process();
	r = locked_alloc(SESSION_CODE_MAX, &code);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL, "cannot allocate memory: %s",
				strerror(-r));
	r = session_open(&c, g, PROTO_OP_REFRESH, cli_timeout(g, CLI_LOGIN_TIMEOUT_MS));
	if (r == 0 && (ask_code || (isatty(STDERR_FILENO) && !cli_json())))
		r = session_ask_info(&c, &info);
	if (r != 0)
		return r;
	if (mfa_arg) {
		code_len = strlen(mfa_arg);
		memcpy(code.data, mfa_arg, code_len + 1);
		have_code = true;
	} else if (ask_code) {
		r = session_read_code(&info, NULL, &code, &code_len);
		if (r == -ENODATA)
			return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
					"no terminal to ask for the one-time code on, and no line "
					"on standard input; give it with --mfa=CODE or as one line "
					"on "
					"standard input");
		if (r != 0)
			return r;
		have_code = true;
	}

	for (;;) {
		refresh_progress(&info);
		r = send_refresh(&c, have_code ? code.data : NULL, code_len, &rep);
		if (r != 0)
			return r;
		if (rep.r.ok)
			break;
		if (have_code || !wants_code(&rep.r) || !password_have_tty())
			goto fail;
		/* An MFA identity: its code was good once. Ask for a fresh one. */
		connect_reply_done(&rep);
		if (!*info.url)
			(void)session_ask_info(&c, &info);
		r = session_read_code(&info, NULL, &code, &code_len);
		if (r != 0)
			return r == -ENODATA ? cli_fail(EXIT_NO_TOKEN, CLI_E_INPUT,
							       "no terminal to ask for the "
							       "one-time "
							       "code on; run 'regscale-token "
							       "refresh "
							       "--mfa'")
					     : r;
		have_code = true;
	}
	r = session_print_outcome(&rep, SESSION_REFRESHED);
	connect_reply_done(&rep);
	return r;

fail:
	r = cli_fail_reply(
			&(struct hint_request){.op = PROTO_OP_REFRESH, .mfa = have_code}, &rep.r);
	connect_reply_done(&rep);
	return r;
}
