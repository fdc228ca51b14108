/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/format.h"
#include "common/duration.h"
#include "common/util.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* One literal, longer than the 4095 bytes C11 asks every compiler to take: GCC and clang take
 * any length. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
/* clang-format off */
const char cli_usage_text[] =
	"Usage: regscale-token [OPTIONS] COMMAND [COMMAND OPTIONS]\n"
	"\n"
	"Print the RegScale token held by the local regscale-tokend daemon, and log the\n"
	"daemon in to RegScale.\n"
	"\n"
	"Commands:\n"
	"  get [--format FORMAT] [--min-valid DURATION] [--wait DURATION]\n"
	"                         Print the token on stdout, nothing else. FORMAT is one of\n"
	"                         raw     <jwt> (default)\n"
	"                         bearer  Bearer <jwt>\n"
	"                         header  Authorization: Bearer <jwt>\n"
	"                         json    the daemon's reply line, with \"socket\" and\n"
	"                                 \"profile\" (null for a socket named by path)\n"
	"                         env     lines \"export NAME='value'\" of what exec sets\n"
	"                                 but REGSCALE_CONFIG_FILE, for a POSIX shell:\n"
	"                                 eval \"$(regscale-token get --format env)\"\n"
	"                         With --min-valid the token must stay valid that long: if\n"
	"                         it would not, the daemon refreshes it and waits up to\n"
	"                         --wait (default 30s, at most 5m) for a fresh one, else the\n"
	"                         exit is 4. Without a token yet (the daemon just started\n"
	"                         or reloaded and is logging in) get waits for that login,\n"
	"                         up to --wait too.\n"
	"  exec [--min-valid DURATION] [--wait DURATION] [--] CMD [ARG...]\n"
	"                         Run CMD with a token valid for --min-valid (default 15m)\n"
	"                         in its environment and exit with CMD's status: token\n"
	"                         ('Bearer <jwt>'), domain and userId for regscale-cli;\n"
	"                         REGSCALE_TOKEN (the JWT), REGSCALE_DOMAIN and\n"
	"                         REGSCALE_USER_ID for scripts; REGSCALE_CONFIG_FILE in a\n"
	"                         private directory removed when CMD ends; no\n"
	"                         REGSCALE_USERNAME, REGSCALE_USER or REGSCALE_PASSWORD.\n"
	"                         SIGINT, SIGTERM, SIGHUP and SIGQUIT go on to CMD; 128+N\n"
	"                         when signal N killed it, 127 when CMD is not found, 126\n"
	"                         when it cannot be run.\n"
	"  status [--json]        Show the token's state, whose it is (username, user id,\n"
	"                         URL, kind), its expiry and refresh times, the last error,\n"
	"                         the daemon's version, pid and uptime, and the socket and\n"
	"                         profile used; --json prints the daemon's reply line with\n"
	"                         \"socket\" and \"profile\". Exits 0 whenever the daemon\n"
	"                         reported a state, including \"expired\", \"no_token\" and\n"
	"                         \"credentials_rejected\".\n"
	"  whoami [--json]        Show whose token the daemon holds: \"USERNAME (USER_ID) at\n"
	"                         URL\" (the username when known); exit 4 without a token.\n"
	"  login [--username USER] [--mfa[=CODE]]\n"
	"                         Log the daemon in to RegScale with a password; it keeps\n"
	"                         the credentials (sealed) to refresh the token. The password\n"
	"                         is read without echo from the terminal, or as one line from\n"
	"                         standard input when that is not a terminal; never from the\n"
	"                         command line or the environment. USER defaults to the\n"
	"                         daemon's configured username. --mfa asks for a one-time\n"
	"                         code too (and the code is asked for anyway when RegScale\n"
	"                         wants one); --mfa=CODE puts it on the command line, where\n"
	"                         other users can see it (ps). Only the daemon's own user\n"
	"                         and root may log in.\n"
	"  login --token | --token-file FILE\n"
	"                         Give the daemon a token copied from RegScale instead (from\n"
	"                         the terminal without echo, one line of standard input, or\n"
	"                         FILE, which must be closed to others); \"Bearer \" before it\n"
	"                         is fine. It is served until it expires, never refreshed.\n"
	"  logout                 Make the daemon forget the token and stored credentials.\n"
	"  refresh [--mfa[=CODE]] Have the daemon log in again now with the stored\n"
	"                         credentials (or reload a service token's file) and print\n"
	"                         the outcome; an MFA account needs a fresh code, asked for\n"
	"                         on the terminal.\n"
	"  ping                   Check that the daemon answers; prints \"pong\".\n"
	"  check [--warn DURATION] [--crit DURATION]\n"
	"                         A Monitoring Plugins check of the token: one line, exit 0\n"
	"                         OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; see 'help check'.\n"
	"  metrics [--json]       Print the daemon's metrics in the Prometheus text format\n"
	"                         (0.0.4) as it sent them: state, expiry, logins, requests,\n"
	"                         refused clients, connections.\n"
	"  help [COMMAND]         Show this help, or the command's (as COMMAND --help).\n";

/* The rest of --help; apart, as one string may hold only 4095 bytes in ISO C. */
static const char usage_notes[] =
	"\n"
	"Every command takes --json: its output is then one JSON object on stdout (the\n"
	"daemon's reply line; for get the same as --format json), and so is any error:\n"
	"  {\"ok\":false,\"error\":CODE,\"message\":TEXT,\"exit\":N}\n"
	"with nothing on stderr. CODE is the daemon's error code (see PROTOCOL.md), or one\n"
	"of the client's own: usage (exit 2), unreachable (3: no daemon at the socket, or it\n"
	"hung up), no_answer (3: none within --timeout), denied (5: the socket is not yours\n"
	"to use, or not served by a trusted user), bad_reply (1: a reply that cannot be\n"
	"read, another version), input (1: the password, token or code cannot be read),\n"
	"invalid_token (6: a pasted token that is no JWT, or has expired), local (1: out of\n"
	"memory, output not writable).\n"
	"\n"
	"DURATION is a whole number of seconds, alone or followed by s, m, h or d:\n"
	"30, 30s, 10m, 1h, 2d.\n"
	"\n"
	"Options (before COMMAND):\n"
	"      --socket PATH      Daemon socket to use; overrides the profile.\n"
	"  -p, --profile NAME     Daemon profile (default \"default\"); overrides\n"
	"                         $REGSCALE_TOKEN_SOCKET.\n"
	"      --timeout SECONDS  Give up after SECONDS in total, fractions allowed. Default\n"
	"                         5; 60 for login and refresh; the --wait DURATION plus 5\n"
	"                         for get --min-valid and exec.\n"
	"      --daemon-user USER Also trust a socket served by USER (name or uid). Only\n"
	"                         root's, yours and " CLI_SERVICE_USER "'s are trusted\n"
	"                         by default: others get no request (exit 5).\n"
	"      --json             Output and errors as JSON, as each command's --json.\n"
	"  -h, --help             Show this help and exit.\n"
	"  -V, --version          Show the version and exit.\n"
	"\n"
	"Environment:\n"
	"  REGSCALE_TOKEN_SOCKET   Socket path when neither --socket nor --profile is given.\n"
	"  REGSCALE_TOKEN_PROFILE  Profile name when none of --socket, --profile and\n"
	"                          $REGSCALE_TOKEN_SOCKET is given.\n"
	"  " CLI_DAEMON_USER_ENV "  USER when --daemon-user is not given.\n"
	"  XDG_RUNTIME_DIR         Where a per-user daemon's socket lives.\n"
	"\n"
	"The socket is --socket, else the profile of --profile, else $REGSCALE_TOKEN_SOCKET,\n"
	"else the profile $REGSCALE_TOKEN_PROFILE, else the profile \"default\": the command\n"
	"line beats the environment. Profile NAME is /run/regscale-token/NAME.sock if it\n"
	"exists, else $XDG_RUNTIME_DIR/regscale-token/NAME.sock (/run/user/UID/... without\n"
	"XDG_RUNTIME_DIR). status and whoami show which socket and profile were used.\n"
	"\n"
	"Exit status:\n"
	"  0  success\n"
	"  1  other failure (internal error, bad reply)\n"
	"  2  usage error\n"
	"  3  daemon not running, not reachable or not answering in time\n"
	"  4  no token, or the token has expired\n"
	"  5  permission denied, or the socket is not served by a trusted user\n"
	"  6  login failed, or the credentials were rejected\n"
	"Errors are one line on stderr, \"regscale-token: <cause>; <what to do>\" (with\n"
	"--json, the object above on stdout); stdout carries only the requested output.\n"
	"While login or refresh waits for RegScale, one line on stderr says so when stderr\n"
	"is a terminal.\n";
/* clang-format on */
#pragma GCC diagnostic pop

static bool json_output;
static const char *command; /* the command being run, for the hint of a usage error */

void cli_print_usage(void)
{
	fputs(cli_usage_text, stdout);
	fputs(usage_notes, stdout);
}

int cli_usage_error(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return cli_fail(EXIT_USAGE, CLI_E_USAGE, "%s; try 'regscale-token%s%s --help'", text,
			command ? " " : "", command ? command : "");
}

int cli_option_error(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char clean[128], opt[3] = {'-', (char)optopt, '\0'};

	if (strncmp(arg, "--", 2) != 0 && optopt != 0)
		arg = opt;
	format_sanitize(arg, clean, sizeof(clean));
	if (c == ':')
		return cli_usage_error("option '%s' needs an argument", clean);
	return cli_usage_error("invalid option '%s'", clean);
}

static bool allow_operands;

bool cli_json(void)
{
	return json_output;
}

void cli_json_scan(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			json_output = true;
}

void cli_print_reply(const struct connect_reply *rep)
{
	fwrite(rep->line, 1, rep->len, stdout);
	fputc('\n', stdout);
}

/* Looks for --json among the command's options (the way cli_getopt() reads them, so that an
 * option's argument or the words after the options do not count), then rewinds getopt. */
static void scan_json(int argc, char **argv, const struct option *opts)
{
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+:hp::", opts, NULL)) != -1)
		if (c == 'j')
			json_output = true;
	optind = 0;
}

int cli_getopt(int argc, char **argv, const struct option *opts, const char *usage, int *ret_exit)
{
	static char **scanned;
	int idx = -1;
	int c;
	const char *name;
	char clean[128];

	if (scanned != argv) {
		scanned = argv;
		command = argv[0];
		scan_json(argc, argv, opts);
	}
	while ((c = getopt_long(argc, argv, "+:hp::", opts, &idx)) == 'j')
		json_output = true;
	switch (c) {
	case -1:
		if (optind >= argc || allow_operands)
			return 0;
		*ret_exit = cli_usage_error("unexpected argument '%s' for '%s'",
				format_sanitize(argv[optind], clean, sizeof(clean)), argv[0]);
		break;
	case 'h':
		fputs(usage, stdout);
		*ret_exit = EXIT_SUCCESS;
		break;
	case '?':
	case ':':
		*ret_exit = cli_option_error(c, argv);
		break;
	case 'G':
	case 'p':
		name = c == 'p' ? "profile" : opts[idx].name;
		if (c == 'G' && opts[idx].has_arg == no_argument)
			*ret_exit = cli_usage_error("'--%s' goes before the command", name);
		else
			*ret_exit = cli_usage_error("'--%s' goes before the command, as in "
						    "'regscale-token --%s ... %s'",
					name, name, argv[0]);
		break;
	default:
		return c;
	}
	return -ECANCELED;
}

int cli_getopt_operands(
		int argc, char **argv, const struct option *opts, const char *usage, int *ret_exit)
{
	int c;

	allow_operands = true;
	c = cli_getopt(argc, argv, opts, usage, ret_exit);
	allow_operands = false;
	return c;
}

int cli_simple_options(int argc, char **argv, const char *usage, int *ret_exit)
{
	static const struct option opts[] = {
			CLI_JSON_OPTION,
			{"help", no_argument, NULL, 'h'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};

	/* No option of its own comes back: only 0 or -ECANCELED. */
	return cli_getopt(argc, argv, opts, usage, ret_exit);
}

int cli_wait_option(int c, const char *arg, long long *min_valid, long long *wait)
{
	uint64_t seconds;
	char clean[64];

	format_sanitize(arg, clean, sizeof(clean));
	if (c == 'm') {
		if (duration_parse(arg, CLI_MAX_MIN_VALID_S, &seconds) < 0) {
			cli_usage_error("invalid --min-valid '%s' (a DURATION such as 30, 30s, "
					"10m, "
					"1h or 2d, at most 366d)",
					clean);
			return -EINVAL;
		}
		*min_valid = (long long)seconds;
		return 0;
	}
	if (duration_parse(arg, PROTO_MAX_WAIT_SEC, &seconds) < 0) {
		cli_usage_error("invalid --wait '%s' (a DURATION such as 30, 30s or 2m, at most "
				"5m)",
				clean);
		return -EINVAL;
	}
	*wait = (long long)seconds;
	return 0;
}

int64_t cli_timeout(const struct globals *g, int64_t default_ms)
{
	return g->timeout_ms > 0 ? g->timeout_ms : default_ms;
}

int cli_socket_path(const struct globals *g, char **ret_path)
{
	const char *bad = NULL;
	char clean[128];
	int r;

	r = connect_socket_path(g->socket, g->profile, ret_path, &bad, NULL);
	if (r == -EINVAL && bad && !*bad)
		return cli_usage_error("the socket path is empty");
	if (r == -EINVAL)
		return cli_usage_error(
				"invalid profile name '%s' (up to %d letters, digits, '.', '_' or "
				"'-', not starting with '.')",
				format_sanitize(bad, clean, sizeof(clean)), CONNECT_MAX_PROFILE);
	if (r == -ENAMETOOLONG)
		return cli_usage_error("the socket path is too long for a Unix socket");
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot find the daemon's socket: %s; %s", strerror(-r),
				"check --socket and REGSCALE_TOKEN_SOCKET");
	return 0;
}

/* Looks up the uid of name (a decimal number is taken as is). Returns 0, or -ENOENT. */
static int lookup_uid(const char *name, uid_t *ret)
{
	struct passwd *pw;
	char *end;
	unsigned long v;

	if (name[0] >= '0' && name[0] <= '9') {
		errno = 0;
		v = strtoul(name, &end, 10);
		if (errno == 0 && *end == '\0' && v < (unsigned long)(uid_t)-1) {
			*ret = (uid_t)v;
			return 0;
		}
	}
	pw = getpwnam(name);
	if (!pw)
		return -ENOENT;
	*ret = pw->pw_uid;
	return 0;
}

int cli_check_peer(const struct globals *g, const char *path, int fd, enum proto_op op)
{
	const char *named = g->daemon_user, *source = "--daemon-user", *who, *action;
	char p[256], clean[128], peer_name[64], trusted[256];
	bool service = false;
	struct passwd *pw;
	struct ucred peer;
	uid_t uid;
	int r;

	format_sanitize(path, p, sizeof(p));
	r = connect_peer(fd, &peer);
	if (r < 0)
		return cli_fail(EXIT_DENIED, CLI_E_DENIED,
				"cannot tell who serves %s (%s), so not using it; check that it is "
				"the daemon's socket",
				p, strerror(-r));
	/* The common case costs no user database lookup. */
	if (peer.uid == 0 || peer.uid == getuid() || peer.uid == geteuid())
		return 0;

	pw = getpwnam(CLI_SERVICE_USER);
	if (pw && pw->pw_uid == peer.uid)
		return 0;
	service = pw != NULL;

	if (!named) {
		named = getenv(CLI_DAEMON_USER_ENV);
		source = CLI_DAEMON_USER_ENV;
		if (named && !*named)
			named = NULL;
	}
	if (named) {
		if (lookup_uid(named, &uid) < 0)
			return cli_usage_error("%s '%s' names no user", source,
					format_sanitize(named, clean, sizeof(clean)));
		if (uid == peer.uid)
			return 0;
	}

	pw = getpwuid(peer.uid);
	who = pw ? format_sanitize(pw->pw_name, peer_name, sizeof(peer_name)) : "no such user";
	if (named)
		snprintf(trusted, sizeof(trusted), "root, you%s or %s (%s)",
				service ? ", the service's user " CLI_SERVICE_USER : "",
				format_sanitize(named, clean, sizeof(clean)), source);
	else
		snprintf(trusted, sizeof(trusted), "root%s or you",
				service ? ", the service's user " CLI_SERVICE_USER : "");
	switch (op) {
	case PROTO_OP_LOGIN:
		action = "not sending it the password";
		break;
	case PROTO_OP_GET:
		action = "not trusting a token from it";
		break;
	default:
		action = "not trusting its answers";
		break;
	}
	return cli_fail(EXIT_DENIED, CLI_E_DENIED,
			"%s is served by uid %u (%s), not by %s: %s; if that is the daemon you "
			"mean, name its user with --daemon-user USER or %s=USER, else find out "
			"who made that socket",
			p, (unsigned)peer.uid, who, trusted, action, CLI_DAEMON_USER_ENV);
}

void cli_request_begin(struct jsonw *w, enum proto_op op, char *buf, size_t size)
{
	const char *name = proto_op_name(op);

	jsonw_begin(w, buf, size);
	jsonw_string(w, PROTO_F_OP, name, strlen(name));
	jsonw_int(w, PROTO_F_V, PROTO_VERSION);
}

int cli_connect(const struct globals *g, const char *path, int64_t timeout_ms, enum proto_op op,
		int *ret_fd)
{
	_cleanup_(closep) int fd = -EBADF;
	int r;

	r = connect_open(path, timeout_ms, &fd);
	if (r < 0)
		return cli_fail_transport(path, timeout_ms, r);
	r = cli_check_peer(g, path, fd, op);
	if (r != 0)
		return r;
	*ret_fd = take_fd(&fd);
	return 0;
}

static void slow_note(void *userdata)
{
	cli_progress("%s", (const char *)userdata);
}

int cli_call(const struct globals *g, struct cli_request *req, struct connect_reply *rep)
{
	_cleanup_(freep) char *path = NULL;
	_cleanup_(closep) int fd = -EBADF;
	int64_t timeout_ms = cli_timeout(g, req->timeout_ms), start = connect_now_ms();
	struct connect_slow slow = {.note = slow_note, .userdata = (void *)req->slow_note};
	int r;

	r = cli_socket_path(g, &path);
	if (r == 0)
		r = cli_connect(g, path, timeout_ms, req->op, &fd);
	if (r != 0) {
		if (req->wipe)
			explicit_bzero(req->line, req->len);
		return r;
	}
	r = connect_exchange_slow(fd, req->line, req->len, req->wipe,
			timeout_ms - (connect_now_ms() - start),
			req->slow_note && cli_progress_wanted() ? &slow : NULL, rep);
	if (r < 0)
		return cli_fail_transport(path, timeout_ms, r);
	if (reply_read_error(&rep->r, NULL, 0) != PROTO_OK) {
		r = cli_fail_reply(&(struct hint_request){.op = req->op}, &rep->r);
		connect_reply_done(rep);
		return r;
	}
	return 0;
}

int cli_call_simple(const struct globals *g, enum proto_op op, int64_t timeout_ms,
		struct connect_reply *rep)
{
	char buf[64];
	struct cli_request req = {.op = op, .line = buf, .timeout_ms = timeout_ms};
	struct jsonw w;

	cli_request_begin(&w, op, buf, sizeof(buf));
	if (jsonw_end(&w, &req.len) < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot build the request; this is a bug, please report it");
	return cli_call(g, &req, rep);
}
