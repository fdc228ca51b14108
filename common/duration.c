/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/duration.h"
#include "common/util.h"

int duration_parse(const char *s, uint64_t max_seconds, uint64_t *ret_seconds)
{
	static const struct {
		char suffix;
		uint64_t seconds;
	} units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	bool too_large = false;
	uint64_t v = 0;
	const char *p = s;

	/* Digits only: strtoull() would also take signs, spaces and hex. */
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > max_seconds)
			too_large = true; /* stop before the digits can overflow; the unit still
					     counts */
		else
			v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (p[0] != units[i].suffix || (p[0] != '\0' && p[1] != '\0'))
			continue;
		if (too_large || v > max_seconds / units[i].seconds)
			return -ERANGE;
		*ret_seconds = v * units[i].seconds;
		return 0;
	}
	return -EINVAL;
}

char *duration_format(long long seconds, char *buf, size_t size)
{
	static const struct {
		long long secs;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};

	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		long long hi = seconds / units[i].secs;
		long long lo;

		if (hi == 0 && units[i].secs > 1)
			continue;
		if (i + 1 == ELEMENTSOF(units)) {
			snprintf(buf, size, "%llds", hi);
			break;
		}
		lo = (seconds % units[i].secs) / units[i + 1].secs;
		if (lo == 0)
			snprintf(buf, size, "%lld%c", hi, units[i].unit);
		else
			snprintf(buf, size, "%lld%c %lld%c", hi, units[i].unit, lo,
					units[i + 1].unit);
		break;
	}
	return buf;
}
