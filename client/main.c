/* regscale-token: asks the local regscale-tokend for the RegScale token. One run_<cmd>() per
 * command; global options come before the command, the command's own options after it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/connect.h"
#include "client/format.h"
#include "proto/reply.h"
#include "proto/util.h"

#ifndef RT_VERSION
#error "RT_VERSION must be defined by the build (meson passes -DRT_VERSION)"
#endif

/* Exit codes, part of the interface scripts rely on (see --help). */
enum {
	EXIT_USAGE = 2,       /* bad command line */
	EXIT_UNREACHABLE = 3, /* daemon not running or not answering in time */
	EXIT_NO_TOKEN = 4,    /* no token, or the token has expired */
	EXIT_DENIED = 5,      /* permission denied */
	EXIT_LOGIN = 6,       /* login failed or credentials rejected */
};

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_S      86400

struct globals {
	const char *socket;  /* --socket, or NULL */
	const char *profile; /* --profile, or NULL */
	int64_t timeout_ms;  /* --timeout: budget for the whole exchange */
};

static const char usage_text[] =
		"Usage: regscale-token [OPTIONS] COMMAND [COMMAND OPTIONS]\n"
		"\n"
		"Print the RegScale token held by the local regscale-tokend daemon.\n"
		"\n"
		"Commands:\n"
		"  get [--format FORMAT]  Print the token on stdout, nothing else. FORMAT is one "
		"of\n"
		"                         raw     <jwt> (default)\n"
		"                         bearer  Bearer <jwt>\n"
		"                         header  Authorization: Bearer <jwt>\n"
		"                         json    the daemon's reply line as received\n"
		"  status [--json]        Show the token's state, expiry and refresh times and "
		"the\n"
		"                         daemon's version, pid and uptime; --json prints the "
		"daemon's\n"
		"                         reply line. Exits 0 whenever the daemon reported a "
		"state,\n"
		"                         including \"expired\" and \"no_token\".\n"
		"  ping                   Check that the daemon answers; prints \"pong\".\n"
		"\n"
		"Options (before COMMAND):\n"
		"      --socket PATH      Daemon socket to use; overrides the profile.\n"
		"  -p, --profile NAME     Daemon profile (default \"default\").\n"
		"      --timeout SECONDS  Give up after SECONDS in total, fractions allowed "
		"(default 5).\n"
		"  -h, --help             Show this help and exit.\n"
		"  -V, --version          Show the version and exit.\n"
		"\n"
		"Environment:\n"
		"  REGSCALE_TOKEN_SOCKET   Socket path when --socket is not given.\n"
		"  REGSCALE_TOKEN_PROFILE  Profile name when --profile is not given.\n"
		"  XDG_RUNTIME_DIR         Where a per-user daemon's socket lives.\n"
		"\n"
		"The socket is --socket, else $REGSCALE_TOKEN_SOCKET, else for profile NAME\n"
		"/run/regscale-token/NAME.sock if it exists, else\n"
		"$XDG_RUNTIME_DIR/regscale-token/NAME.sock (/run/user/UID/... without "
		"XDG_RUNTIME_DIR).\n"
		"\n"
		"Exit status:\n"
		"  0  success\n"
		"  1  other failure (internal error, bad reply)\n"
		"  2  usage error\n"
		"  3  daemon not running, not reachable or not answering in time\n"
		"  4  no token, or the token has expired\n"
		"  5  permission denied\n"
		"  6  login failed, or the credentials were rejected\n"
		"Errors are one line on stderr; stdout carries only the requested output.\n";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "regscale-token: <text>" as one line on stderr. */
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "regscale-token: %s\n", line);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	say("%s; try 'regscale-token --help'", line);
	return EXIT_USAGE;
}

/* Reports a getopt failure (c is '?' or ':') as a usage error. */
static int option_error(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char clean[128], opt[3] = {'-', (char)optopt, '\0'};

	if (strncmp(arg, "--", 2) != 0 && optopt != 0)
		arg = opt;
	format_sanitize(arg, clean, sizeof(clean));
	if (c == ':')
		return usage_error("option '%s' needs an argument", clean);
	return usage_error("invalid option '%s'", clean);
}

/* Global options given after the command are refused with a hint where they go. */
/* clang-format off */
#define GLOBAL_OPTIONS_MISPLACED \
	{"socket", optional_argument, NULL, 'G'}, \
	{"profile", optional_argument, NULL, 'G'}, \
	{"timeout", optional_argument, NULL, 'G'}, \
	{"version", no_argument, NULL, 'G'}
/* clang-format on */

/* Parses a command's options with getopt_long: returns the option, or -1 at the end. For an
 * error or a misplaced global option, prints why and sets *ret_exit. */
static int command_getopt(int argc, char **argv, const struct option *opts, int *ret_exit)
{
	int idx = -1;
	int c = getopt_long(argc, argv, "+:hp::", opts, &idx);

	if (c == '?' || c == ':') {
		*ret_exit = option_error(c, argv);
	} else if (c == 'G' || c == 'p') {
		const char *name = c == 'p' ? "profile" : opts[idx].name;
		if (c == 'G' && opts[idx].has_arg == no_argument)
			*ret_exit = usage_error("'--%s' goes before the command", name);
		else
			*ret_exit = usage_error("'--%s' goes before the command, as in "
						"'regscale-token --%s ... %s'",
					name, name, argv[0]);
	} else {
		return c;
	}
	return '?';
}

/* Refuses arguments left after a command's options. */
static int check_no_args(int argc, char **argv)
{
	char clean[128];

	if (optind < argc)
		return usage_error("unexpected argument '%s' for '%s'",
				format_sanitize(argv[optind], clean, sizeof(clean)), argv[0]);
	return 0;
}

static int exit_code_for_error(enum proto_error err)
{
	switch (err) {
	case PROTO_E_NO_TOKEN:
	case PROTO_E_TOKEN_EXPIRED:
		return EXIT_NO_TOKEN;
	case PROTO_E_PERMISSION_DENIED:
		return EXIT_DENIED;
	case PROTO_E_LOGIN_FAILED:
	case PROTO_E_CREDENTIALS_REJECTED:
		return EXIT_LOGIN;
	/* The daemon is there but could not serve us in time: "not answering in time". */
	case PROTO_E_TOO_MANY_CLIENTS:
	case PROTO_E_IDLE_TIMEOUT:
	case PROTO_E_TIMEOUT:
		return EXIT_UNREACHABLE;
	default:
		return EXIT_FAILURE;
	}
}

/* Explains an error from connect_call() and returns the exit code for it. */
static int fail_transport(const struct globals *g, const char *path, int r)
{
	char p[256];

	format_sanitize(path, p, sizeof(p));
	switch (r) {
	case -ENOENT:
	case -ENOTDIR:
	case -ECONNREFUSED:
		say("the daemon is not running at %s (%s); start regscale-tokend, or point "
		    "--socket "
		    "or REGSCALE_TOKEN_SOCKET at its socket",
				p, strerror(-r));
		return EXIT_UNREACHABLE;
	case -EACCES:
	case -EPERM:
		say("permission denied on %s; run as a user the daemon's socket admits, or ask the "
		    "daemon's administrator",
				p);
		return EXIT_DENIED;
	case -ETIMEDOUT:
		say("no answer from the daemon at %s within %.3g s; check the daemon's log, or "
		    "raise "
		    "--timeout",
				p, (double)g->timeout_ms / 1000.0);
		return EXIT_UNREACHABLE;
	case -ECONNRESET:
	case -EPIPE:
		say("the daemon at %s closed the connection without answering; check the daemon's "
		    "log",
				p);
		return EXIT_UNREACHABLE;
	case -EMSGSIZE:
		say("the reply from %s is longer than %d bytes; check that it is a regscale-tokend "
		    "socket and that regscale-token and regscale-tokend are the same version",
				p, PROTO_MAX_LINE);
		return EXIT_FAILURE;
	case -EBADMSG:
		say("malformed reply from %s; check that it is a regscale-tokend socket and that "
		    "regscale-token and regscale-tokend are the same version",
				p);
		return EXIT_FAILURE;
	case -EPROTO:
		say("the daemon at %s speaks another protocol version; install matching "
		    "regscale-token and regscale-tokend",
				p);
		return EXIT_FAILURE;
	case -ENAMETOOLONG:
		say("socket path %s is too long for a Unix socket; use a shorter --socket path", p);
		return EXIT_USAGE;
	default:
		say("cannot talk to the daemon at %s: %s; check the daemon's log", p, strerror(-r));
		return EXIT_FAILURE;
	}
}

/* Explains an error reply ("ok":false) and returns the exit code for it. */
static int fail_reply(struct json_object *obj)
{
	const char *message = NULL, *code = "unknown";
	enum proto_error err = reply_error(obj, &message);
	char m[512], c[64];
	struct json_object *v;

	if (json_object_object_get_ex(obj, "error", &v) && json_object_is_type(v, json_type_string))
		code = json_object_get_string(v);
	say("%s (%s); %s",
			format_sanitize(message && *message ? message
							    : "the daemon reported an error",
					m, sizeof(m)),
			format_sanitize(code, c, sizeof(c)), format_error_hint(err));
	return exit_code_for_error(err);
}

/* Resolves the socket and runs one request. Returns 0 with *rep filled (an "ok":true reply;
 * release with connect_reply_done()), or the exit code after saying what went wrong. */
static int call(const struct globals *g, const char *op, struct connect_reply *rep)
{
	_cleanup_(freep) char *path = NULL;
	const char *bad = NULL, *message;
	char clean[128];
	int r;

	r = connect_socket_path(g->socket, g->profile, &path, &bad);
	if (r == -EINVAL && bad && !*bad)
		return usage_error("the socket path is empty");
	if (r == -EINVAL)
		return usage_error(
				"invalid profile name '%s' (up to %d letters, digits, '.', '_' or "
				"'-', not starting with '.')",
				format_sanitize(bad, clean, sizeof(clean)), CONNECT_MAX_PROFILE);
	if (r == -ENAMETOOLONG)
		return usage_error("the socket path is too long for a Unix socket");
	if (r < 0) {
		say("cannot find the daemon's socket: %s", strerror(-r));
		return EXIT_FAILURE;
	}

	r = connect_call(path, op, g->timeout_ms, rep);
	if (r < 0)
		return fail_transport(g, path, r);
	if (reply_error(rep->obj, &message) != PROTO_OK) {
		r = fail_reply(rep->obj);
		connect_reply_done(rep);
		return r;
	}
	return 0;
}

static int run_get(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"format", required_argument, NULL, 'f'},
			{"help", no_argument, NULL, 'h'},
			GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	struct connect_reply rep;
	enum format_token fmt = FORMAT_RAW;
	struct json_object *tok;
	const char *token = NULL;
	size_t len = 0;
	int c, r, ex = 0;

	while ((c = command_getopt(argc, argv, opts, &ex)) != -1) {
		switch (c) {
		case 'f':
			r = format_token_from_name(optarg);
			if (r < 0) {
				char clean[64];
				return usage_error(
						"unknown format '%s' (raw, bearer, header or json)",
						format_sanitize(optarg, clean, sizeof(clean)));
			}
			fmt = (enum format_token)r;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		default:
			return ex ? ex : EXIT_USAGE;
		}
	}
	r = check_no_args(argc, argv);
	if (r != 0)
		return r;

	r = call(g, "get", &rep);
	if (r != 0)
		return r;
	if (json_object_object_get_ex(rep.obj, "token", &tok) &&
			json_object_is_type(tok, json_type_string)) {
		token = json_object_get_string(tok);
		len = (size_t)json_object_get_string_len(tok);
	}
	if (!format_token_valid(token, len)) {
		say("the daemon's reply holds no usable token; check that regscale-token and "
		    "regscale-tokend are the same version");
		connect_reply_done(&rep);
		return EXIT_FAILURE;
	}
	r = format_token_write(STDOUT_FILENO, fmt, token, len, rep.line, rep.len);
	connect_reply_done(&rep);
	if (r < 0) {
		say("cannot write the token to standard output: %s", strerror(-r));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

static int run_status(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"json", no_argument, NULL, 'j'},
			{"help", no_argument, NULL, 'h'},
			GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	struct connect_reply rep;
	bool json = false;
	int c, r, ex = 0;

	while ((c = command_getopt(argc, argv, opts, &ex)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		default:
			return ex ? ex : EXIT_USAGE;
		}
	}
	r = check_no_args(argc, argv);
	if (r != 0)
		return r;

	r = call(g, "status", &rep);
	if (r != 0)
		return r;
	if (json) {
		fwrite(rep.line, 1, rep.len, stdout);
		fputc('\n', stdout);
		r = 0;
	} else {
		r = format_status(stdout, rep.obj, (long long)time(NULL));
	}
	connect_reply_done(&rep);
	if (r < 0) {
		say("the daemon's status reply has no \"state\"; check that regscale-token and "
		    "regscale-tokend are the same version");
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

static int run_ping(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"help", no_argument, NULL, 'h'},
			GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	struct connect_reply rep;
	struct json_object *pong;
	bool ok;
	int c, r, ex = 0;

	while ((c = command_getopt(argc, argv, opts, &ex)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		default:
			return ex ? ex : EXIT_USAGE;
		}
	}
	r = check_no_args(argc, argv);
	if (r != 0)
		return r;

	r = call(g, "ping", &rep);
	if (r != 0)
		return r;
	ok = json_object_object_get_ex(rep.obj, "pong", &pong) &&
	     json_object_is_type(pong, json_type_boolean) && json_object_get_boolean(pong);
	connect_reply_done(&rep);
	if (!ok) {
		say("the daemon's ping reply has no \"pong\"; check that regscale-token and "
		    "regscale-tokend are the same version");
		return EXIT_FAILURE;
	}
	puts("pong");
	return EXIT_SUCCESS;
}

static const struct command {
	const char *name;
	int (*run)(const struct globals *g, int argc, char **argv);
} commands[] = {
		{"get", run_get},
		{"status", run_status},
		{"ping", run_ping},
};

/* Parses --timeout SECONDS (fractions allowed) into milliseconds, rounding up. */
static int parse_timeout(const char *s, int64_t *ret_ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* The negated range test also refuses NaN. */
	if (errno != 0 || end == s || *end != '\0' || !(v > 0 && v <= MAX_TIMEOUT_S))
		return -EINVAL;
	*ret_ms = (int64_t)(v * 1000.0);
	if ((double)*ret_ms < v * 1000.0)
		(*ret_ms)++;
	return 0;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
			{"socket", required_argument, NULL, 's'},
			{"profile", required_argument, NULL, 'p'},
			{"timeout", required_argument, NULL, 't'},
			{"help", no_argument, NULL, 'h'},
			{"version", no_argument, NULL, 'V'},
			{0},
	};
	struct globals g = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	char clean[128];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				return usage_error("the socket path is empty");
			g.socket = optarg;
			break;
		case 'p':
			if (!connect_profile_valid(optarg))
				return usage_error("invalid profile name '%s' (up to %d letters, "
						   "digits, "
						   "'.', '_' or '-', not starting with '.')",
						format_sanitize(optarg, clean, sizeof(clean)),
						CONNECT_MAX_PROFILE);
			g.profile = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &g.timeout_ms) < 0)
				return usage_error(
						"invalid timeout '%s' (seconds, more than 0 and at "
						"most %d)",
						format_sanitize(optarg, clean, sizeof(clean)),
						MAX_TIMEOUT_S);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		case 'V':
			puts("regscale-token " RT_VERSION);
			return EXIT_SUCCESS;
		default:
			return option_error(c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("missing command (get, status or ping)");

	for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		argc -= optind;
		argv += optind;
		optind = 0; /* start over on the command's own arguments */
		return commands[i].run(&g, argc, argv);
	}
	return usage_error("unknown command '%s' (get, status or ping)",
			format_sanitize(argv[optind], clean, sizeof(clean)));
}

int main(int argc, char **argv)
{
	int r;

	/* A closed stdout or socket shows up as EPIPE where we can report it. */
	signal(SIGPIPE, SIG_IGN);

	r = run(argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		say("cannot write to standard output: %s", strerror(errno));
		if (r == EXIT_SUCCESS)
			r = EXIT_FAILURE;
	}
	return r;
}
