/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

static bool debug_enabled;

void log_set_debug(bool on)
{
	debug_enabled = on;
}

int log_full_errno(const char *prefix, int err, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, saved = errno;

	if (!debug_enabled && strcmp(prefix, SD_DEBUG) == 0)
		goto out;

	/* One write(2) per line so lines from concurrent writers never interleave, and no
	 * stdio buffer ever holds the text. */
	n = snprintf(line, sizeof(line), "%s", prefix);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (err != 0 && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s",
				strerror(err < 0 ? -err : err));
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
out:
	errno = saved;
	return err < 0 ? err : -err;
}
