/* SPDX-License-Identifier: MIT */
/* regscale-token: asks the local regscale-tokend for the RegScale token. One run_<cmd>() per
 * command (login, logout and refresh live in session.c); global options come before the
 * command, the command's own options after it. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/check.h"
#include "client/cli.h"
#include "client/exec.h"
#include "client/format.h"
#include "client/identity.h"
#include "client/metrics.h"
#include "client/session.h"
#include "common/util.h"

#ifndef RT_VERSION
#error "RT_VERSION must be defined by the build (meson passes -DRT_VERSION)"
#endif

/* clang-format off */
static const char get_usage[] =
	"Usage: regscale-token [OPTIONS] get [--format FORMAT] [--min-valid DURATION]\n"
	"                                    [--wait DURATION]\n"
	"\n"
	"Print the token on stdout, nothing else. FORMAT is one of\n"
	"  raw     <jwt> (default)\n"
	"  bearer  Bearer <jwt>\n"
	"  header  Authorization: Bearer <jwt>\n"
	"  json    the daemon's reply line, with \"socket\" (the path used) and \"profile\"\n"
	"          (its name, or null when --socket or REGSCALE_TOKEN_SOCKET named it) added\n"
	"  env     export lines for a POSIX shell: eval \"$(regscale-token get --format env)\"\n"
	"          sets token ('Bearer <jwt>'), domain and userId for regscale-cli, and\n"
	"          REGSCALE_TOKEN (the JWT), REGSCALE_DOMAIN and REGSCALE_USER_ID for\n"
	"          scripts, as 'regscale-token exec' does (\"unset NAME\" for a value the\n"
	"          daemon does not know). It sets no REGSCALE_CONFIG_FILE: regscale-cli then\n"
	"          writes the token into ./init.yaml, so run it under 'regscale-token exec'\n"
	"With --min-valid the token must stay valid that long: if it would not, the daemon\n"
	"refreshes it and waits up to --wait (default 30s, at most 5m) for a fresh one, else\n"
	"the exit is 4. Without a token yet (the daemon just started or reloaded and is\n"
	"logging in) get waits for that login, up to --wait too.\n"
	"DURATION is a whole number of seconds, alone or followed by s, m, h or d.\n"
	"  --json  the same as --format json; any error as a JSON object on stdout\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";

static const char status_usage[] =
	"Usage: regscale-token [OPTIONS] status [--json]\n"
	"\n"
	"Show the token's state, whose it is (username when known, user id, URL, kind: login,\n"
	"pasted or service), its expiry and refresh times, the last error, the daemon's\n"
	"version, pid and uptime, and the socket and profile used; --json prints the daemon's\n"
	"reply line with \"socket\" and \"profile\" added. Exits 0 whenever the\n"
	"daemon reported a state, including \"expired\", \"no_token\" and\n"
	"\"credentials_rejected\". With --json any error is a JSON object on stdout too.\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";

static const char ping_usage[] =
	"Usage: regscale-token [OPTIONS] ping [--json]\n"
	"\n"
	"Check that the daemon answers; prints \"pong\". --json prints the daemon's reply line,\n"
	"and any error as a JSON object on stdout.\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";
/* clang-format on */

static int run_get(const struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
			{"format", required_argument, NULL, 'f'},
			{"min-valid", required_argument, NULL, 'm'},
			{"wait", required_argument, NULL, 'w'},
			CLI_JSON_OPTION,
			{"help", no_argument, NULL, 'h'},
			CLI_GLOBAL_OPTIONS_MISPLACED,
			{0},
	};
	char clean[64];
	long long min_valid = -1, wait = -1;
	struct identity id = {.socket = NULL};
	struct globals here = *g;
	struct connect_reply rep;
	struct format_env env;
	enum format_token fmt = FORMAT_RAW;
	const char *token;
	size_t len;
	int c, r, ex = 0;

	while ((c = cli_getopt(argc, argv, opts, get_usage, &ex)) > 0) {
		switch (c) {
		case 'f':
			r = format_token_from_name(optarg);
			if (r < 0)
				return cli_usage_error(
						"unknown format '%s' (raw, bearer, header, json or "
						"env)",
						format_sanitize(optarg, clean, sizeof(clean)));
			fmt = (enum format_token)r;
			break;
		case 'm':
		case 'w':
			if (cli_wait_option(c, optarg, &min_valid, &wait) < 0)
				return EXIT_USAGE;
			break;
		}
	}
	if (c < 0)
		return ex;
	if (cli_json())
		fmt = FORMAT_JSON;
	/* The JSON names the socket used: resolved once, and that one used. */
	if (fmt == FORMAT_JSON) {
		r = identity_resolve(g, &id);
		if (r != 0)
			return r;
		here = identity_globals(g, &id);
	}

	r = exec_get_token(&here, min_valid, wait, NULL, &rep, &token, &len);
	if (r != 0) {
		identity_done(&id);
		return r;
	}
	/* The token is written from the reply line, its only copy, which connect_reply_done()
	 * wipes. */
	if (fmt == FORMAT_JSON) {
		r = identity_write_json(STDOUT_FILENO, rep.line, rep.len, &id);
	} else if (fmt == FORMAT_ENV) {
		r = format_env_read(&rep.r, token, len, &env);
		if (r == 0)
			r = format_env_write(STDOUT_FILENO, &env);
		explicit_bzero(&env, sizeof(env));
	} else {
		r = format_token_write(STDOUT_FILENO, fmt, token, len, rep.line, rep.len);
	}
	connect_reply_done(&rep);
	identity_done(&id);
	if (r == -EBADMSG)
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's reply cannot be printed in that format; check that "
				"regscale-token and regscale-tokend are the same version");
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot write the token to standard output: %s; check where it "
				"goes",
				strerror(-r));
	return EXIT_SUCCESS;
}

static int run_status(const struct globals *g, int argc, char **argv)
{
	struct identity id;
	struct connect_reply rep;
	int ex, r;

	if (cli_simple_options(argc, argv, status_usage, &ex) < 0)
		return ex;
	r = identity_status(g, &id, &rep);
	if (r != 0)
		return r;
	if (cli_json()) {
		r = identity_write_json(STDOUT_FILENO, rep.line, rep.len, &id);
		if (r < 0 && r != -EBADMSG) {
			connect_reply_done(&rep);
			identity_done(&id);
			return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
					"cannot write to standard output: %s; check where it goes",
					strerror(-r));
		}
	} else {
		r = format_status(stdout, &rep.r, (long long)time(NULL));
		if (r == 0)
			identity_print(stdout, &id);
	}
	connect_reply_done(&rep);
	identity_done(&id);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's status reply has no \"state\"; check that "
				"regscale-token and regscale-tokend are the same version");
	return EXIT_SUCCESS;
}

static int run_ping(const struct globals *g, int argc, char **argv)
{
	struct connect_reply rep;
	bool pong, ok;
	int ex, r;

	if (cli_simple_options(argc, argv, ping_usage, &ex) < 0)
		return ex;
	r = cli_call_simple(g, PROTO_OP_PING, CLI_TIMEOUT_MS, &rep);
	if (r != 0)
		return r;
	ok = reply_read_bool(&rep.r, PROTO_F_PONG, &pong) == 0 && pong;
	if (ok && cli_json())
		cli_print_reply(&rep);
	connect_reply_done(&rep);
	if (!ok)
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's ping reply has no \"pong\"; check that "
				"regscale-token and regscale-tokend are the same version");
	if (!cli_json())
		puts("pong");
	return EXIT_SUCCESS;
}

static int run_help(const struct globals *g, int argc, char **argv);

static const struct command {
	const char *name;
	int (*run)(const struct globals *g, int argc, char **argv);
} commands[] = {
		{"get", run_get},
		{"exec", exec_run},
		{"status", run_status},
		{"whoami", identity_run_whoami},
		{"login", session_run_login},
		{"logout", session_run_logout},
		{"refresh", session_run_refresh},
		{"ping", run_ping},
		{"check", run_check},
		{"metrics", metrics_run},
		{"help", run_help},
};

#define COMMAND_LIST                                                                               \
	"get, exec, status, whoami, login, logout, refresh, ping, check, metrics or help"

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* "help [COMMAND]": the global help, or what "COMMAND --help" prints. */
static int run_help(const struct globals *g, int argc, char **argv)
{
	char *help_argv[] = {NULL, (char *)"--help", NULL};
	const struct command *cmd;
	char clean[128];

	if (argc > 2)
		return cli_usage_error("'help' takes one command");
	cmd = argc == 2 ? find_command(argv[1]) : NULL;
	if (argc == 2 && !cmd)
		return cli_usage_error("no command '%s' (" COMMAND_LIST ")",
				format_sanitize(argv[1], clean, sizeof(clean)));
	if (!cmd || cmd->run == run_help) {
		cli_print_usage();
		return EXIT_SUCCESS;
	}
	help_argv[0] = (char *)cmd->name;
	optind = 0;
	/* "check --help" exits 3 (UNKNOWN) as monitoring plugins do; asking for help is no
	 * failure here. */
	(void)cmd->run(g, 2, help_argv);
	return EXIT_SUCCESS;
}

/* Parses --timeout SECONDS (fractions allowed) into milliseconds, rounding up. */
static int parse_timeout(const char *s, int64_t *ret_ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* The negated range test also refuses NaN. */
	if (errno != 0 || end == s || *end != '\0' || !(v > 0 && v <= CLI_MAX_TIMEOUT_S))
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
			{"daemon-user", required_argument, NULL, 'u'},
			{"help", no_argument, NULL, 'h'},
			{"version", no_argument, NULL, 'V'},
			/* Before the command too: "regscale-token --json status" is what people
			   type. */
			CLI_JSON_OPTION,
			{0},
	};
	struct globals g = {.timeout_ms = 0};
	const struct command *cmd;
	char clean[128];
	int c;

	cli_json_scan(argc, argv);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				return cli_usage_error("the socket path is empty");
			g.socket = optarg;
			break;
		case 'p':
			if (!connect_profile_valid(optarg))
				return cli_usage_error(
						"invalid profile name '%s' (up to %d letters, "
						"digits, '.', '_' or '-', not starting "
						"with '.')",
						format_sanitize(optarg, clean, sizeof(clean)),
						CONNECT_MAX_PROFILE);
			g.profile = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &g.timeout_ms) < 0)
				return cli_usage_error(
						"invalid timeout '%s' (seconds, more than 0 and at "
						"most %d)",
						format_sanitize(optarg, clean, sizeof(clean)),
						CLI_MAX_TIMEOUT_S);
			break;
		case 'j':
			break; /* cli_json_scan() saw it */
		case 'u':
			if (!*optarg)
				return cli_usage_error("the --daemon-user name is empty");
			g.daemon_user = optarg;
			break;
		case 'h':
			cli_print_usage();
			return EXIT_SUCCESS;
		case 'V':
			puts("regscale-token " RT_VERSION);
			return EXIT_SUCCESS;
		default:
			return cli_option_error(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing command (" COMMAND_LIST ")");

	cmd = find_command(argv[optind]);
	if (cmd) {
		argc -= optind;
		argv += optind;
		optind = 0; /* start over on the command's own arguments */
		return cmd->run(&g, argc, argv);
	}
	return cli_usage_error("unknown command '%s' (" COMMAND_LIST ")",
			format_sanitize(argv[optind], clean, sizeof(clean)));
}

int main(int argc, char **argv)
{
	int r;

	/* A closed stdout or socket shows up as EPIPE where we can report it. */
	signal(SIGPIPE, SIG_IGN);

	r = run(argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_say("cannot write to standard output: %s", strerror(errno));
		if (r == EXIT_SUCCESS)
			r = EXIT_FAILURE;
	}
	return r;
}
