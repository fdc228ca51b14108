/* SPDX-License-Identifier: MIT */
/* The arithmetic of expiry warnings, see expiry.h. */
#include <errno.h>
#include <string.h>

#include "daemon/expiry.h"

void expiry_points_default(struct expiry_points *ret)
{
	*ret = (struct expiry_points){
			.sec = {30 * 86400, 7 * 86400, 86400, 3600},
			.n = 4,
	};
}

int expiry_points_add(struct expiry_points *p, uint64_t sec)
{
	size_t i = 0;

	while (i < p->n && p->sec[i] > sec)
		i++;
	if (i < p->n && p->sec[i] == sec)
		return 0;
	if (p->n == EXPIRY_MAX_POINTS)
		return -E2BIG;
	memmove(&p->sec[i + 1], &p->sec[i], (p->n - i) * sizeof(p->sec[0]));
	p->sec[i] = sec;
	p->n++;
	return 0;
}

/* Whether point i of a token ending at end has come at now. */
static bool point_passed(const struct expiry_points *p, size_t i, int64_t end, int64_t now)
{
	return now >= end - (int64_t)p->sec[i];
}

int expiry_due(const struct expiry_points *p, int64_t end, int64_t now, size_t *done)
{
	size_t was = *done;

	if (now >= end) {
		*done = p->n;
		return -1;
	}
	while (*done < p->n && point_passed(p, *done, end, now))
		(*done)++;
	return *done > was ? (int)*done - 1 : -1;
}

int64_t expiry_next(const struct expiry_points *p, int64_t end, size_t done)
{
	return done < p->n ? end - (int64_t)p->sec[done] : 0;
}

int expiry_passed(const struct expiry_points *p, int64_t end, int64_t now)
{
	int last = -1;

	if (now >= end)
		return -1;
	for (size_t i = 0; i < p->n && point_passed(p, i, end, now); i++)
		last = (int)i;
	return last;
}

int64_t expiry_late_at(int64_t start, int64_t end)
{
	/* From that second on, at most a third of its life is left. */
	int64_t life = end > start ? end - start : 0;

	return end - life / 3;
}
