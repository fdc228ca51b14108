/* SPDX-License-Identifier: MIT */
/* regscale-token check: a Monitoring Plugins (Nagios, Icinga) check of the daemon's token. */
#pragma once

#include "client/cli.h"

/* The check's exit codes, as the Monitoring Plugins guidelines define them. */
enum check_state {
	CHECK_OK = 0,
	CHECK_WARNING = 1,
	CHECK_CRITICAL = 2,
	CHECK_UNKNOWN = 3,
};

/* Runs "check [--warn D] [--crit D]": asks the daemon for its status and prints one line
 * "REGSCALE-TOKEN STATE - text | expires_in=...". Returns the check's exit code. */
int run_check(const struct globals *g, int argc, char **argv);
