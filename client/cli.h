/* SPDX-License-Identifier: MIT */
/* What every regscale-token command shares: exit codes, the global options, one-line error
 * messages, option parsing, and running one request against the daemon. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/connect.h"
#include "client/hint.h"
#include "proto/jsonw.h"
#include "proto/proto.h"
#include "proto/request.h"

/* Exit codes, part of the interface scripts rely on (see --help). */
enum {
	EXIT_USAGE = 2,       /* bad command line */
	EXIT_UNREACHABLE = 3, /* daemon not running or not answering in time */
	EXIT_NO_TOKEN = 4,    /* no token, or the token has expired */
	EXIT_DENIED = 5,      /* permission denied */
	EXIT_LOGIN = 6,       /* login failed or credentials rejected */
};

/* Default budgets for one exchange; --timeout overrides them all. */
#define CLI_TIMEOUT_MS       5000  /* get, status, ping, logout */
#define CLI_LOGIN_TIMEOUT_MS 60000 /* login, refresh: the daemon answers once RegScale has */
#define CLI_WAIT_SLACK_MS    5000  /* get --min-valid: the daemon's wait plus this */
#define CLI_MAX_TIMEOUT_S    86400
/* Longest DURATION accepted for --min-valid, and for --wait. */
#define CLI_MAX_MIN_VALID_S (366LL * 86400)

/* The account the system service runs as (systemd/regscale-token.conf, sysusers.d): its
 * sockets are trusted like root's. */
#define CLI_SERVICE_USER "regscale-token"

/* Names one more user trusted to serve the socket when --daemon-user is not given. */
#define CLI_DAEMON_USER_ENV "REGSCALE_TOKEN_DAEMON_USER"

struct globals {
	const char *socket;      /* --socket, or NULL */
	const char *profile;     /* --profile, or NULL */
	const char *daemon_user; /* --daemon-user, or NULL */
	int64_t timeout_ms;      /* --timeout, or 0: the command's own default applies */
};

/* One request as cli_call() sends it. */
struct cli_request {
	enum proto_op op; /* what is asked; picks the hints in error messages */
	char *line;       /* the request line, '\n' included; owned by the caller */
	size_t len;       /* its length */
	bool wipe;        /* the line holds a secret: wipe it as soon as it is sent */
	/* When not NULL: the progress line (cli_progress()) printed once the reply is slow,
	 * i.e. the daemon waits for RegScale. */
	const char *slow_note;
	int64_t timeout_ms; /* the command's default budget; --timeout overrides it */
};

/* The --help text's first part: the commands. */
extern const char cli_usage_text[];

/* Prints the whole --help text on stdout. */
void cli_print_usage(void);

/* Stable codes of the failures the client finds by itself, the "error" of a --json error
 * object (the daemon's codes, from an error reply, are passed on as they came). Part of the
 * interface scripts rely on (see --help). */
#define CLI_E_USAGE         "usage"       /* bad command line (exit 2) */
#define CLI_E_UNREACHABLE   "unreachable" /* no daemon at the socket, or it hung up (exit 3) */
#define CLI_E_NO_ANSWER     "no_answer"   /* no answer within --timeout (exit 3) */
#define CLI_E_DENIED        "denied"      /* socket not ours to use, or served by a stranger (5) */
#define CLI_E_BAD_REPLY     "bad_reply"   /* a reply we cannot read, another version (exit 1) */
#define CLI_E_INPUT         "input"       /* cannot read the password, token or code (exit 1) */
#define CLI_E_INVALID_TOKEN "invalid_token" /* a pasted token that is no JWT, or expired (6) */
#define CLI_E_LOCAL         "local"         /* out of memory, cannot write the output (exit 1) */

/* Says why the command fails and returns exit_code: "regscale-token: <text>" as one line on
 * stderr, or with --json {"ok":false,"error":code,"message":text,"exit":exit_code} as one
 * line on stdout and nothing on stderr. code is one of CLI_E_* or a daemon's error code. */
int cli_fail(int exit_code, const char *code, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

/* Prints "regscale-token: <text>" as one line on stderr, whatever --json says: for what is
 * not the command's failure. Prefer cli_fail(). */
void cli_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one line, text as it is, on stderr while the command waits, when stderr is a
 * terminal and --json was not given: a person sees what is going on, a script nothing. */
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns true if cli_progress() prints: stderr is a terminal and --json was not given. */
bool cli_progress_wanted(void);

/* Says a usage error as cli_fail() does, with the action "try 'regscale-token CMD --help'"
 * for the command being run (or the global help), and returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a getopt failure (c is '?' or ':') for argv[optind - 1] and returns EXIT_USAGE. */
int cli_option_error(int c, char **argv);

/* --json, which every command takes: its output, and any error, as one JSON object on stdout
 * (cli_json() tells whether it was given). End a command's option table with it. */
#define CLI_JSON_OPTION                                                                            \
	{                                                                                          \
		"json", no_argument, NULL, 'j'                                                     \
	}

/* Returns true once --json was given to the command: cli_getopt() looks for it among all of
 * the command's options before it returns the first, so that any error comes out as JSON. */
bool cli_json(void);

/* Before the command is known: takes --json anywhere in argv[1..argc) (up to a "--") as given,
 * so that a usage error of the global options is JSON too. */
void cli_json_scan(int argc, char **argv);

/* Prints the reply line of rep and a newline on stdout: a command's --json output. */
void cli_print_reply(const struct connect_reply *rep);

/* Global options given after the command are refused with a hint where they go: end a
 * command's option table with these. */
/* clang-format off */
#define CLI_GLOBAL_OPTIONS_MISPLACED \
	{"socket", optional_argument, NULL, 'G'}, \
	{"profile", optional_argument, NULL, 'G'}, \
	{"timeout", optional_argument, NULL, 'G'}, \
	{"daemon-user", optional_argument, NULL, 'G'}, \
	{"version", no_argument, NULL, 'G'}
/* clang-format on */

/* Parses a command's options with getopt_long; usage is the command's --help text, argv[0]
 * the command's name, which usage errors name in their hint. --json (CLI_JSON_OPTION) is
 * handled here. Returns the next of its own options (the val of its
 * entry, > 0), or 0 when they are done and no argument is left. Returns -ECANCELED with the
 * exit code in *ret_exit once --help was printed (EXIT_SUCCESS), or a usage error, a
 * misplaced global option or an argument left over was said (EXIT_USAGE). */
int cli_getopt(int argc, char **argv, const struct option *opts, const char *usage, int *ret_exit);

/* cli_getopt() for a command that takes arguments after its options (exec CMD ARG...): 0 comes
 * back with the first of them at argv[optind] (or optind == argc when there is none), past a
 * "--" that ends the options. */
int cli_getopt_operands(
		int argc, char **argv, const struct option *opts, const char *usage, int *ret_exit);

/* Parses the options of a command that has none but --help and --json; usage is its --help
 * text. Returns 0 to go on, or -ECANCELED with the exit code in *ret_exit (--help was
 * printed, or a usage error said). */
int cli_simple_options(int argc, char **argv, const char *usage, int *ret_exit);

/* Parses the argument of --min-valid (c 'm', into *min_valid) or --wait (c 'w', into *wait),
 * a DURATION, as get and exec take them. Returns 0, or -EINVAL once the usage error was
 * said. */
int cli_wait_option(int c, const char *arg, long long *min_valid, long long *wait);

/* Returns the budget for an exchange: --timeout when given, else default_ms. */
int64_t cli_timeout(const struct globals *g, int64_t default_ms);

/* Resolves the daemon's socket from --socket, --profile and the environment. Returns 0 and a
 * new string in *ret_path (caller frees), or an exit code after saying what went wrong. */
int cli_socket_path(const struct globals *g, char **ret_path);

/* Checks who serves the socket fd, connected to path, before anything is sent on it for
 * request op: the kernel's SO_PEERCRED uid must be root, the client's own uid, the system
 * service's user (CLI_SERVICE_USER, if that account exists) or the user --daemon-user, else
 * $REGSCALE_TOKEN_DAEMON_USER names (a name or a number; looked up only when needed).
 * Returns 0, or the exit code after saying what went wrong: EXIT_DENIED for another peer,
 * EXIT_USAGE when the named user does not exist. */
int cli_check_peer(const struct globals *g, const char *path, int fd, enum proto_op op);

/* Connects to path within timeout_ms and checks who serves it (cli_check_peer()) for op.
 * Returns 0 and the connected fd in *ret_fd (the caller's), or the exit code after saying
 * what went wrong. */
int cli_connect(const struct globals *g, const char *path, int64_t timeout_ms, enum proto_op op,
		int *ret_fd);

/* Explains transport error r (from connect_*()) on path after timeout_ms and returns the exit
 * code for it. */
int cli_fail_transport(const char *path, int64_t timeout_ms, int r);

/* Explains the error reply r ("ok":false) to req in one line (hint_error_line()), as
 * cli_fail() does with the daemon's error code, and returns the exit code for it. */
int cli_fail_reply(const struct hint_request *req, const struct reply_read *r);

/* Returns the exit code for daemon error err. */
int cli_exit_for_error(enum proto_error err);

/* Starts the request line for op (one of enum proto_op) in buf[0..size): {"op":<op>,"v":1,
 * to be completed with jsonw_*() and jsonw_end(). */
void cli_request_begin(struct jsonw *w, enum proto_op op, char *buf, size_t size);

/* Resolves the socket, connects, checks who serves it (cli_check_peer()) and runs req.
 * Returns 0 with *rep filled (an "ok":true reply; release with connect_reply_done()), or the
 * exit code after saying what went wrong. With req->wipe the request line is wiped on every
 * path. */
int cli_call(const struct globals *g, struct cli_request *req, struct connect_reply *rep);

/* cli_call() for a request without fields, {"op":<op>,"v":1}, with the default budget
 * timeout_ms. Returns what cli_call() returns. */
int cli_call_simple(const struct globals *g, enum proto_op op, int64_t timeout_ms,
		struct connect_reply *rep);
