/* SPDX-License-Identifier: MIT */
/* regscale-token check, see check.h and README.md "Monitoring". One status request; the
 * verdict is one line on stdout, which is all a monitoring system reads. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/check.h"
#include "client/format.h"
#include "common/duration.h"
#include "common/util.h"
#include "proto/reply_read.h"

#define CHECK_DEFAULT_WARN_SEC (7 * 86400)
#define CHECK_DEFAULT_CRIT_SEC 86400

/* clang-format off */
static const char check_usage[] =
	"Usage: regscale-token [OPTIONS] check [--warn DURATION] [--crit DURATION]\n"
	"\n"
	"A Monitoring Plugins check (Nagios, Icinga, Naemon, Zabbix' nagios agent): one line on\n"
	"stdout, \"REGSCALE-TOKEN STATE - what | expires_in=Ns;WARN;CRIT;0\", and the exit\n"
	"status of STATE:\n"
	"  0 OK        a valid token, nothing to do\n"
	"  1 WARNING   a token no refresh renews (service, pasted, MFA) expires within\n"
	"              --warn (default 7d); a refresh is failing (retrying), or is late (less\n"
	"              than a third of the token's life left); the daemon is logging in\n"
	"  2 CRITICAL  no token, the token expired, the credentials were rejected, a login\n"
	"              is impossible, a token no refresh renews expires within --crit\n"
	"              (default 1d), or the daemon is not running or not answering\n"
	"  3 UNKNOWN   the check itself failed: a bad option, --help, a socket it may not\n"
	"              use, a reply it cannot read\n"
	"A login token the daemon refreshes in the background is judged by its refreshes, not\n"
	"by --warn and --crit: its perfdata carries no thresholds.\n"
	"Only the status request is sent: any user the daemon's allow_users admits may run it.\n"
	"DURATION is a whole number of seconds, alone or followed by s, m, h or d.\n"
	"See 'regscale-token --help' for the options before the command.\n";
/* clang-format on */

static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

/* What the check found. */
struct verdict {
	enum check_state state;
	char text[1024];
	bool has_expiry;
	long long expires_in;
	bool thresholds; /* --warn and --crit apply to this token */
};

/* Prints the one line for v with warn and crit (seconds), and returns v's exit code. */
static int report(const struct verdict *v, long long warn, long long crit)
{
	char text[sizeof(v->text)];

	/* '|' starts the perfdata: none in the text. */
	snprintf(text, sizeof(text), "%s", v->text);
	for (char *p = text; *p; p++)
		if (*p == '|' || *p == '\n')
			*p = '/';
	printf("REGSCALE-TOKEN %s - %s", state_names[v->state], text);
	/* The guidelines' ranges: "N:" alerts below N. */
	if (v->has_expiry && v->thresholds)
		printf(" | expires_in=%llds;%lld:;%lld:;0", v->expires_in, warn, crit);
	else if (v->has_expiry)
		printf(" | expires_in=%llds;;;0", v->expires_in);
	putchar('\n');
	return (int)v->state;
}

static int unknown(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "REGSCALE-TOKEN UNKNOWN - text" and returns CHECK_UNKNOWN. */
static int unknown(const char *fmt, ...)
{
	struct verdict v = {.state = CHECK_UNKNOWN};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v.text, sizeof(v.text), fmt, ap);
	va_end(ap);
	return report(&v, 0, 0);
}

static void say(struct verdict *v, enum check_state state, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

/* Sets v's state and text. */
static void say(struct verdict *v, enum check_state state, const char *fmt, ...)
{
	va_list ap;

	v->state = state;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

/* Parses a --warn or --crit DURATION into *ret. Returns 0, or CHECK_UNKNOWN said. */
static int parse_threshold(const char *name, const char *arg, long long *ret)
{
	char clean[64];
	uint64_t s;

	if (duration_parse(arg, CLI_MAX_MIN_VALID_S, &s) < 0)
		return unknown("invalid %s '%s' (a DURATION such as 7d, 12h or 3600); see "
			       "'regscale-token help check'",
				name, format_sanitize(arg, clean, sizeof(clean)));
	*ret = (long long)s;
	return 0;
}

/* Judges the status reply r at now, with the thresholds warn and crit (seconds). */
static void judge(const struct reply_read *r, long long warn, long long crit, struct verdict *v)
{
	char state[32], message[600], kind[16], left[32];
	int64_t expires_in = 0;
	bool late = false, valid, renewed;
	int st; /* enum proto_state, or < 0 for a state this client does not know */

	if (!format_reply_str(r, PROTO_F_STATE, state, sizeof(state)))
		state[0] = '\0';
	if (!format_reply_str(r, PROTO_F_MESSAGE, message, sizeof(message)))
		snprintf(message, sizeof(message), "%s", state);
	if (!format_reply_str(r, PROTO_F_KIND, kind, sizeof(kind)))
		kind[0] = '\0';
	(void)reply_read_bool(r, PROTO_F_REFRESH_LATE, &late);
	v->has_expiry = reply_read_int64(r, PROTO_F_EXPIRES_IN, &expires_in) == 0;
	v->expires_in = (long long)expires_in;
	valid = v->has_expiry ? expires_in > 0 : kind[0] != '\0';
	st = proto_state_from_name(state);
	/* Only a login token of an identity that logs in unattended is renewed by the daemon. */
	renewed = strcmp(kind, PROTO_KIND_LOGIN) == 0 && st != PROTO_STATE_LOGIN_REQUIRED;
	v->thresholds = !renewed;
	duration_format(v->expires_in, left, sizeof(left));

	if (st < 0)
		say(v, CHECK_UNKNOWN,
				"the daemon reports state '%s', which this check does not "
				"know; install matching versions of regscale-token and "
				"regscale-tokend",
				state);
	else if (st == PROTO_STATE_CREDENTIALS_REJECTED)
		say(v, CHECK_CRITICAL, "credentials rejected: %s", message);
	else if (st == PROTO_STATE_NO_TOKEN)
		say(v, CHECK_CRITICAL, "no token: %s", message);
	else if (st == PROTO_STATE_EXPIRED || (kind[0] && !valid))
		say(v, CHECK_CRITICAL, "token expired: %s", message);
	else if (st == PROTO_STATE_LOGGING_IN)
		say(v, CHECK_WARNING, "no token yet, logging in: %s", message);
	else if (v->thresholds && v->has_expiry && v->expires_in <= crit)
		say(v, CHECK_CRITICAL, "expires in %s (within --crit): %s", left, message);
	else if (late)
		say(v, CHECK_WARNING, "refresh late, expires in %s: %s", left, message);
	else if (st == PROTO_STATE_RETRYING)
		say(v, CHECK_WARNING, "refresh failing: %s", message);
	else if (v->thresholds && v->has_expiry && v->expires_in <= warn)
		say(v, CHECK_WARNING, "expires in %s (within --warn): %s", left, message);
	else
		say(v, CHECK_OK, "%s", message);
}

int run_check(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"warn", required_argument, NULL, 'w'},
			{"crit", required_argument, NULL, 'c'},
			{"help", no_argument, NULL, 'h'},
			{0},
	};
	_cleanup_(freep) char *path = NULL;
	_cleanup_(closep) int fd = -EBADF;
	long long warn = CHECK_DEFAULT_WARN_SEC, crit = CHECK_DEFAULT_CRIT_SEC;
	int64_t timeout_ms = cli_timeout(g, CLI_TIMEOUT_MS), start = connect_now_ms();
	struct connect_reply rep;
	struct verdict v = {.state = CHECK_UNKNOWN};
	char req[64], clean[256], msg[512];
	const char *bad = NULL;
	enum proto_error err;
	struct jsonw w;
	size_t len;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
		case 'c':
			if (parse_threshold(c == 'w' ? "--warn" : "--crit", optarg,
					    c == 'w' ? &warn : &crit) != 0)
				return CHECK_UNKNOWN;
			break;
		case 'h':
			fputs(check_usage, stdout);
			return CHECK_UNKNOWN;
		case ':':
			return unknown("%s needs a DURATION; see 'regscale-token help check'",
					format_sanitize(argv[optind - 1], clean, sizeof(clean)));
		default:
			return unknown("unknown option '%s'; see 'regscale-token help check'",
					format_sanitize(argv[optind - 1], clean, sizeof(clean)));
		}
	}
	if (optind < argc)
		return unknown("unexpected argument '%s'; see 'regscale-token help check'",
				format_sanitize(argv[optind], clean, sizeof(clean)));
	if (crit > warn)
		return unknown("--crit (%llds) is longer than --warn (%llds): the warning would "
			       "never come first; give a longer --warn",
				crit, warn);

	r = connect_socket_path(g->socket, g->profile, &path, &bad, NULL);
	if (r < 0)
		return unknown("cannot find the daemon's socket (%s); check --socket, --profile "
			       "and REGSCALE_TOKEN_SOCKET",
				r == -EINVAL ? "a bad path or profile name" : strerror(-r));
	format_sanitize(path, clean, sizeof(clean));
	r = connect_open(path, timeout_ms, &fd);
	if (r == -EACCES || r == -EPERM)
		return unknown("permission denied on %s; run the check as a user the daemon's "
			       "socket admits",
				clean);
	if (r < 0) {
		say(&v, CHECK_CRITICAL,
				"the daemon is not running or not answering at %s (%s); "
				"start regscale-tokend",
				clean, strerror(-r));
		return report(&v, warn, crit);
	}
	/* A socket served by a stranger: its answers mean nothing (why, on stderr). */
	if (cli_check_peer(g, path, fd, PROTO_OP_STATUS) != 0)
		return unknown("%s is not served by a trusted user (see stderr); not trusting "
			       "its answers",
				clean);
	cli_request_begin(&w, PROTO_OP_STATUS, req, sizeof(req));
	if (jsonw_end(&w, &len) < 0)
		return unknown("cannot build the request; this is a bug, please report it");
	r = connect_exchange(fd, req, len, false, timeout_ms - (connect_now_ms() - start), &rep);
	if (r == -EBADMSG || r == -EPROTO || r == -EMSGSIZE)
		return unknown("the daemon's reply cannot be read (%s); install matching versions "
			       "of regscale-token and regscale-tokend",
				strerror(-r));
	if (r < 0) {
		say(&v, CHECK_CRITICAL, "the daemon at %s does not answer (%s); check its log",
				clean, strerror(-r));
		return report(&v, warn, crit);
	}
	err = reply_read_error(&rep.r, msg, sizeof(msg));
	if (err != PROTO_OK) {
		connect_reply_done(&rep);
		if (err == PROTO_E_PERMISSION_DENIED)
			return unknown("the daemon refuses this user (%s); add it to allow_users",
					format_sanitize(msg, clean, sizeof(clean)));
		return unknown("the daemon answered %s: %s", proto_error_name(err),
				format_sanitize(msg, clean, sizeof(clean)));
	}
	judge(&rep.r, warn, crit, &v);
	connect_reply_done(&rep);
	return report(&v, warn, crit);
}
