/* SPDX-License-Identifier: MIT */
/* floor: the bare-library floor of regscale-tokend in tests/bench/run.
 *
 * It links what the daemon links (libsystemd, libsodium, json-c, inih), makes one call into
 * each so that the loader really maps and relocates them (the build links --as-needed: a
 * library nothing calls would be dropped), reports READY=1 through sd_notify() as the daemon
 * does, and sleeps in poll() until killed. What the daemon's idle VmRSS and its time from
 * spawn to READY=1 can be compared with: the cost of its libraries and of being a process,
 * with nothing of its own. sodium_init() is the one call with work in it; any user of
 * libsodium must make it before anything else. */
#include <errno.h>
#include <ini.h>
#include <json-c/json_c_version.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	return 1;
}

int main(void)
{
	if (sodium_init() < 0 || json_c_version_num() <= 0 ||
			ini_parse_string("", on_ini, NULL) != 0) {
		fprintf(stderr, "floor: a library failed to initialise\n");
		return 1;
	}
	(void)sd_notify(0, "READY=1");
	for (;;)
		if (poll(NULL, 0, -1) < 0 && errno != EINTR)
			return 1;
}
