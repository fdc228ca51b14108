/* SPDX-License-Identifier: MIT */
/* "regscale-token login": a password (and a one-time code when RegScale wants one), or a token
 * a person pasted. Every secret is read straight into locked memory, sent in a request line
 * that lives there too and is wiped once sent, and wiped itself on every path out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/format.h"
#include "client/hint.h"
#include "client/password.h"
#include "client/paste.h"
#include "client/session.h"
#include "common/bearer.h"
#include "common/harden.h"
#include "common/utf8.h"
#include "common/util.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* Room for the fixed parts of a login request: {"op":"login","v":1,...}\n. */
#define LOGIN_REQUEST_OVERHEAD 128

struct login {
	struct session_conn c;
	struct session_info info; /* whom the daemon logs in, for prompts and progress */
	const char *username;     /* --username, or NULL */
	const char *token_file;   /* --token-file, or NULL */
	bool pasted;              /* --token or --token-file */
	bool ask_code;            /* --mfa without a code */
	struct locked secret;     /* the password, or the token as read */
	size_t secret_len;
	size_t token_off, token_len; /* the token in secret, without "Bearer " and spaces */
	struct locked code;          /* the one-time code, NUL-terminated */
	size_t code_len;
	bool have_code;
};

static void login_done(struct login *l)
{
	session_close(&l->c);
	locked_free(&l->secret);
	locked_free(&l->code);
}

/* The user a login is for: --username, else the daemon's configured one (status says whom);
 * from an older daemon that does not, the user of a password login's token (a pasted
 * token's user may be another). */
static const char *user_of(const struct login *l)
{
	if (l->username)
		return l->username;
	if (l->info.configured[0])
		return l->info.configured;
	return strcmp(l->info.kind, PROTO_KIND_LOGIN) == 0 ? l->info.username : "";
}

/* Says why reading the password or token (what) from source failed with r, and returns the
 * exit code. */
static int fail_read(int r, const char *what, const char *source, size_t max)
{
	switch (r) {
	case -ENODATA:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the %s is empty; type or paste it at the prompt, or give it as "
				"one "
				"line on standard input",
				what);
	case -EMSGSIZE:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the %s from %s is longer than %zu bytes; check what is given to "
				"'regscale-token login'",
				what, source, max);
	case -ENXIO:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"cannot open the terminal to ask for the %s; give it as one line "
				"on "
				"standard input instead",
				what);
	case -EIO:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"cannot ask for the %s from a background job; run 'regscale-token "
				"login' in the foreground",
				what);
	case -EINTR:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"interrupted while reading the %s; run 'regscale-token login' "
				"again",
				what);
	default:
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"cannot read the %s from %s: %s; give it as one line on standard "
				"input",
				what, source, strerror(-r));
	}
}

/* Reads the password into l->secret, from the terminal when stdin is one. Returns 0, or the
 * exit code after saying what went wrong. */
static int read_password(struct login *l)
{
	const char *user = user_of(l);
	char prompt[PROTO_MAX_USERNAME + 320], clean[PROTO_MAX_USERNAME + 8];
	bool tty = isatty(STDIN_FILENO);
	int r;

	if (tty) {
		snprintf(prompt, sizeof(prompt),
				"RegScale password%s%s%s%s: ", *user ? " for " : "",
				format_sanitize(user, clean, sizeof(clean)),
				*l->info.url ? " at " : "", l->info.url);
		r = password_read_tty(prompt, l->secret.data, PASSWORD_MAX, &l->secret_len);
	} else {
		r = password_read_fd(STDIN_FILENO, l->secret.data, PASSWORD_MAX, &l->secret_len);
	}
	if (r < 0)
		return fail_read(r, "password", tty ? "the terminal" : "standard input",
				PASSWORD_MAX - 2);
	return 0;
}

/* Reads the token file l->token_file into l->secret: a regular file or a pipe of ours (or
 * root's) that nobody else may read or write, holding one line. Returns 0, or the exit code
 * after saying what went wrong. */
static int read_token_file(struct login *l)
{
	_cleanup_(closep) int fd = -EBADF;
	char p[256];
	struct stat st;
	ssize_t n;

	format_sanitize(l->token_file, p, sizeof(p));
	fd = open(l->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT, "cannot open the token file %s: %s; %s",
				p, strerror(errno), "check the path given to --token-file");
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the token file %s is not a regular file; give --token-file the "
				"file "
				"that holds the token",
				p);
	/* As the daemon's token_file: a token others can read is a token others have. */
	if (st.st_uid != getuid() && st.st_uid != 0)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the token file %s belongs to uid %u, not to you or root, so not "
				"using it; keep the token in a file of your own (chmod 600)",
				p, (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the token file %s is open to group or others (mode %04o), so not "
				"using it; run 'chmod 600 %s' (and get a new token if others read "
				"it)",
				p, (unsigned)(st.st_mode & 07777), p);
	n = loop_read(fd, l->secret.data, PASTE_MAX);
	if (n < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT, "cannot read the token file %s: %s; %s",
				p, strerror((int)-n), "check the path given to --token-file");
	if (n == PASTE_MAX)
		return fail_read(-EMSGSIZE, "token", p, PASTE_MAX - 1);
	l->secret_len = (size_t)n;
	return 0;
}

/* Reads the token into l->secret and finds it there (l->token_off, l->token_len). Returns
 * 0, or the exit code after saying what went wrong. */
static int read_token(struct login *l)
{
	char prompt[320], why[256];
	bool tty = isatty(STDIN_FILENO);
	int64_t exp;
	int r;

	if (l->token_file) {
		r = read_token_file(l);
		if (r != 0)
			return r;
	} else {
		snprintf(prompt, sizeof(prompt),
				"Paste the RegScale token%s%s: ", *l->info.url ? " for " : "",
				l->info.url);
		r = tty ? password_read_tty_long(prompt, l->secret.data, PASTE_MAX, &l->secret_len)
			: password_read_fd(STDIN_FILENO, l->secret.data, PASTE_MAX, &l->secret_len);
		if (r < 0)
			return fail_read(r, "token", tty ? "the terminal" : "standard input",
					PASTE_MAX - 2);
	}

	bearer_strip(l->secret.data, l->secret_len, &l->token_off, &l->token_len);
	if (memchr(l->secret.data + l->token_off, '\n', l->token_len))
		return cli_fail(EXIT_LOGIN, CLI_E_INVALID_TOKEN,
				"the token file holds more than one line; put the token alone in "
				"it");
	r = paste_check(l->secret.data + l->token_off, l->token_len, (long long)time(NULL), &exp,
			why, sizeof(why));
	if (r == -ESTALE)
		return cli_fail(EXIT_LOGIN, CLI_E_INVALID_TOKEN,
				"%s; copy a current token from RegScale and run 'regscale-token "
				"login --token' again",
				why);
	if (r < 0)
		return cli_fail(r == -ENOMEM ? EXIT_FAILURE : EXIT_LOGIN,
				r == -ENOMEM ? CLI_E_LOCAL : CLI_E_INVALID_TOKEN,
				"%s; copy the whole token from RegScale, and nothing else", why);
	return 0;
}

/* Builds the login request for l into req (locked). Returns 0 and its length in *ret_len, or
 * the exit code after saying what went wrong. */
static int build_request(const struct login *l, struct locked *req, size_t *ret_len)
{
	size_t need = LOGIN_REQUEST_OVERHEAD;
	struct jsonw w;
	int r;

	need += l->pasted ? jsonw_string_max(l->token_len)
			  : jsonw_string_max(l->secret_len) +
						jsonw_string_max(l->username ? strlen(l->username)
									     : 0) +
						jsonw_string_max(l->code_len);
	r = locked_alloc(need, req);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot allocate memory for the request: %s", strerror(-r));

	cli_request_begin(&w, PROTO_OP_LOGIN, req->data, req->size);
	if (l->pasted) {
		jsonw_string(&w, PROTO_F_TOKEN, l->secret.data + l->token_off, l->token_len);
	} else {
		if (l->username)
			jsonw_string(&w, PROTO_F_USERNAME, l->username, strlen(l->username));
		jsonw_string(&w, PROTO_F_PASSWORD, l->secret.data, l->secret_len);
		if (l->have_code)
			jsonw_string(&w, PROTO_F_MFA, l->code.data, l->code_len);
	}
	r = jsonw_end(&w, ret_len);
	if (r == -EILSEQ)
		return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
				"the password is not valid UTF-8 text or holds a NUL byte; "
				"RegScale "
				"passwords are text");
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot build the login request; this is a bug, please report it");
	return 0;
}

/* Sends the login and reads its reply into *rep. Returns 0, or the exit code after saying
 * what went wrong. */
static int send_login(struct login *l, struct connect_reply *rep)
{
	_cleanup_(locked_free) struct locked req = {.data = NULL};
	const char *user = user_of(l);
	size_t len;
	int r;

	r = build_request(l, &req, &len);
	if (r != 0)
		return r;
	if (l->pasted) {
		/* Nothing keeps the token but the request line now, wiped once sent. */
		locked_free(&l->secret);
		if (*l->info.url)
			cli_progress("checking the token with %s...", l->info.url);
	} else {
		cli_progress("logging in%s%s%s%s...", *l->info.url ? " to " : "", l->info.url,
				*user ? " as " : "", user);
	}
	return session_exchange(&l->c, req.data, len, rep);
}

/* clang-format off */
static const char login_usage[] =
	"Usage: regscale-token [OPTIONS] login [--username USER] [--mfa[=CODE]] [--json]\n"
	"       regscale-token [OPTIONS] login --token | --token-file FILE [--json]\n"
	"\n"
	"Log the daemon in to RegScale with a password; it keeps the credentials (sealed) to\n"
	"refresh the token. The password is read without echo from the terminal, or as one\n"
	"line from standard input when that is not a terminal; never from the command line or\n"
	"the environment. USER defaults to the daemon's configured username. Only the\n"
	"daemon's own user and root may log in.\n"
	"\n"
	"  --username USER   the RegScale account\n"
	"  --mfa             the account logs in with a one-time code: ask for it on the\n"
	"                    terminal without echo (without a terminal, it is the line after\n"
	"                    the password on standard input). Without --mfa the code is asked\n"
	"                    for when RegScale wants one. Such a login is not refreshed\n"
	"                    unattended: 'regscale-token refresh --mfa' before it expires\n"
	"  --mfa=CODE        the code on the command line, where other users can see it (ps)\n"
	"  --token           a token copied from RegScale instead of a password: pasted at\n"
	"                    the prompt without echo, or one line of standard input; a\n"
	"                    leading \"Bearer \" is fine. The daemon serves it until it\n"
	"                    expires and cannot refresh it: paste a new one before then\n"
	"  --token-file FILE the token from FILE, which must be yours (or root's) and closed\n"
	"                    to group and others (chmod 600)\n"
	"  --json            print the daemon's reply line, and any error as a JSON object\n"
	"                    on stdout\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";
/* clang-format on */

/* Parses login's options into l. Returns 0 to go on, or -ECANCELED with the exit code in
 * *ret_exit. */
static int parse_options(
		struct login *l, int argc, char **argv, const char **ret_mfa, int *ret_exit)
{
	static const struct option opts[] = {
			{"username", required_argument, NULL, 'u'},
			{"mfa", optional_argument, NULL, 'm'},
			{"token", no_argument, NULL, 't'},
			{"token-file", required_argument, NULL, 'T'},
			CLI_JSON_OPTION,
			{"help", no_argument, NULL, 'h'},
			/* Refused with an explanation, and without echoing the value. */
			{"password", optional_argument, NULL, 'P'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	bool mfa = false, token = false;
	char clean[64];
	int c;

	*ret_mfa = NULL;
	while ((c = cli_getopt(argc, argv, opts, login_usage, ret_exit)) > 0) {
		switch (c) {
		case 'u':
			if (!*optarg || strlen(optarg) > PROTO_MAX_USERNAME ||
					!utf8_valid(optarg, strlen(optarg)))
				goto usage_username;
			l->username = optarg;
			break;
		case 'm':
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++]; /* "--mfa CODE", as two words */
			if (optarg && !session_code_valid(optarg)) {
				*ret_exit = cli_usage_error(
						"invalid --mfa '%s' (the one-time code, 1 to %d "
						"characters)",
						format_sanitize(optarg, clean, sizeof(clean)),
						PROTO_MAX_MFA);
				return -ECANCELED;
			}
			mfa = true;
			*ret_mfa = optarg;
			l->ask_code = !optarg;
			break;
		case 't':
			token = true;
			break;
		case 'T':
			l->token_file = optarg;
			break;
		case 'P':
			*ret_exit = cli_usage_error(
					"the password is never taken from the command line, where "
					"other users see it; it is read from the terminal, or as "
					"one "
					"line from standard input");
			return -ECANCELED;
		}
	}
	if (c < 0)
		return -ECANCELED;
	if (token && l->token_file) {
		*ret_exit = cli_usage_error("give --token or --token-file, not both");
		return -ECANCELED;
	}
	l->pasted = token || l->token_file;
	if (l->pasted && (l->username || mfa)) {
		*ret_exit = cli_usage_error("a pasted token goes without --username and --mfa: it "
					    "names its user, and RegScale asks it for no code");
		return -ECANCELED;
	}
	return 0;

usage_username:
	*ret_exit = cli_usage_error(
			"invalid --username (1 to %d bytes of UTF-8 text)", PROTO_MAX_USERNAME);
	return -ECANCELED;
}

int session_run_login(const struct globals *g, int argc, char **argv)
{
	_cleanup_(login_done) struct login l = {.c = {.fd = -EBADF}};
	struct connect_reply rep;
	const char *mfa_arg;
	int r, ex = 0;

	if (parse_options(&l, argc, argv, &mfa_arg, &ex) < 0)
		return ex;

	/* No core dump and no ptrace attach by our own user while we hold the password. */
	(void)harden_process();

	/* Connect first, as ssh-add does, so nobody types a password for a daemon that is not
	 * there, nor for a process that we would not trust with it. Its status names the URL
	 * and user for the prompts. */
	r = session_open(&l.c, g, PROTO_OP_LOGIN, cli_timeout(g, CLI_LOGIN_TIMEOUT_MS));
	if (r == 0 && (isatty(STDIN_FILENO) || isatty(STDERR_FILENO) || password_have_tty()))
		r = session_ask_info(&l.c, &l.info);
	if (r != 0)
		return r;

	r = locked_alloc(l.pasted ? PASTE_MAX : PASSWORD_MAX, &l.secret);
	if (r == 0)
		r = locked_alloc(SESSION_CODE_MAX, &l.code);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot allocate memory for the password: %s", strerror(-r));
	r = l.pasted ? read_token(&l) : read_password(&l);
	if (r != 0)
		return r;
	if (mfa_arg) {
		l.code_len = strlen(mfa_arg);
		memcpy(l.code.data, mfa_arg, l.code_len + 1);
		l.have_code = true;
	} else if (l.ask_code) {
		r = session_read_code(&l.info, user_of(&l), &l.code, &l.code_len);
		if (r == -ENODATA)
			return cli_fail(EXIT_FAILURE, CLI_E_INPUT,
					"no terminal to ask for the one-time code on, and no line "
					"after the password on standard input; give the code as "
					"that "
					"line");
		if (r != 0)
			return r;
		l.have_code = true;
	}

	for (;;) {
		r = send_login(&l, &rep);
		if (r != 0)
			return r;
		if (rep.r.ok)
			break;
		if (l.pasted || l.have_code ||
				reply_read_error(&rep.r, NULL, 0) != PROTO_E_MFA_REQUIRED)
			goto fail;
		/* RegScale wants a one-time code: ask for it, and send the same password again. */
		r = session_read_code(&l.info, user_of(&l), &l.code, &l.code_len);
		if (r == -ENODATA)
			goto fail; /* its hint: run 'regscale-token login --mfa' */
		connect_reply_done(&rep);
		if (r != 0)
			return r;
		l.have_code = true;
	}
	r = session_print_outcome(&rep, l.pasted ? SESSION_PASTED : SESSION_LOGGED_IN);
	connect_reply_done(&rep);
	return r;

fail:
	r = cli_fail_reply(&(struct hint_request){.op = PROTO_OP_LOGIN,
					   .pasted = l.pasted,
					   .mfa = l.have_code},
			&rep.r);
	connect_reply_done(&rep);
	return r;
}
