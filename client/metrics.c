/* SPDX-License-Identifier: MIT */
/* "metrics": see metrics.h and PROTOCOL.md "metrics". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/metrics.h"
#include "common/util.h"
#include "proto/reply_read.h"

/* clang-format off */
static const char metrics_usage[] =
	"Usage: regscale-token [OPTIONS] metrics [--json]\n"
	"\n"
	"Print the daemon's metrics in the Prometheus text format (version 0.0.4) exactly as\n"
	"it sent them: the token's state and expiry, logins, requests, refused clients and\n"
	"open connections. For node_exporter's textfile collector, the daemon's [daemon]\n"
	"metrics_file keeps the same text in a file. --json prints the daemon's reply line,\n"
	"and any error as a JSON object on stdout.\n"
	"See 'regscale-token --help' for the options before the command and exit codes.\n";
/* clang-format on */

int metrics_run(const struct globals *g, int argc, char **argv)
{
	_cleanup_(freep) char *text = NULL;
	struct connect_reply rep;
	char format[64] = "";
	size_t len = 0, room;
	int ex, r;

	if (cli_simple_options(argc, argv, metrics_usage, &ex) < 0)
		return ex;
	r = cli_call_simple(g, PROTO_OP_METRICS, CLI_TIMEOUT_MS, &rep);
	if (r != 0)
		return r;
	if (cli_json()) {
		cli_print_reply(&rep);
		connect_reply_done(&rep);
		return EXIT_SUCCESS;
	}
	/* The unescaped text is never longer than its escaped form in the line. */
	room = rep.len + 1;
	text = malloc(room);
	if (!text) {
		connect_reply_done(&rep);
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL, "out of memory; try again");
	}
	r = reply_read_string(&rep.r, PROTO_F_FORMAT, format, sizeof(format), NULL);
	if (r == 0 && strcmp(format, PROTO_METRICS_FORMAT) == 0)
		r = reply_read_string(&rep.r, PROTO_F_METRICS, text, room, &len);
	else
		r = -EPROTO;
	connect_reply_done(&rep);
	if (r < 0 || len >= room)
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon's metrics reply has no \"metrics\" in the format "
				"\"" PROTO_METRICS_FORMAT "\"; check that regscale-token and "
				"regscale-tokend are the same version");
	if (fwrite(text, 1, len, stdout) != len)
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot write to standard output: %s; check where it goes",
				strerror(errno));
	return EXIT_SUCCESS;
}
