/* SPDX-License-Identifier: MIT */
/* "metrics": the daemon's counters and state in the Prometheus text format, as it sent them. */
#pragma once

#include "client/cli.h"

/* "metrics [--json]": prints the exposition text of the daemon's metrics reply exactly, or
 * with --json the reply line. Returns 0, or the exit code after saying what went wrong. */
int metrics_run(const struct globals *g, int argc, char **argv);
