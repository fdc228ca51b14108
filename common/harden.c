/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "common/harden.h"

int harden_process(void)
{
	const struct rlimit no_core = {0, 0};
	int r = 0;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		r = -errno;
	if (setrlimit(RLIMIT_CORE, &no_core) < 0 && r == 0)
		r = -errno;
	return r;
}
