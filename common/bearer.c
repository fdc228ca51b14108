/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <strings.h>

#include "common/bearer.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

void bearer_strip(const char *s, size_t len, size_t *ret_off, size_t *ret_len)
{
	size_t a = 0, b = len;

	while (a < b && is_space(s[a]))
		a++;
	while (b > a && is_space(s[b - 1]))
		b--;
	if (b - a > 6 && strncasecmp(s + a, "bearer", 6) == 0 &&
			(s[a + 6] == ' ' || s[a + 6] == '\t')) {
		a += 6;
		while (a < b && (s[a] == ' ' || s[a] == '\t'))
			a++;
	}
	*ret_off = a;
	*ret_len = b - a;
}
