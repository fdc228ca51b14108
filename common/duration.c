/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>

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
