/* SPDX-License-Identifier: MIT */
/* When to warn that a token runs out: the configured points before its end (warn_before) for
 * a token nothing renews unattended, and the "late" point of a token whose refresh fails.
 * Pure arithmetic on unix seconds passed in: no clock, no log, no state of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPIRY_MAX_POINTS 16

/* The warning points, as seconds before the end: distinct, longest first. */
struct expiry_points {
	uint64_t sec[EXPIRY_MAX_POINTS];
	size_t n;
};

/* Fills *ret with the default points: 30d, 7d, 1d, 1h. */
void expiry_points_default(struct expiry_points *ret);

/* Adds a point of sec seconds to p, keeping it sorted (a point already there is kept once).
 * Returns 0, or -E2BIG when p holds EXPIRY_MAX_POINTS already. */
int expiry_points_add(struct expiry_points *p, uint64_t sec);

/* For a token ending at end, of which points [0, *done) were handled already: advances *done
 * past every point passed at now and returns the index of the nearest of those newly passed
 * (the one to warn of: one line, never a burst), or -1 when none is due. A token that has
 * ended (now >= end) gets no warning: every point counts as handled. */
int expiry_due(const struct expiry_points *p, int64_t end, int64_t now, size_t *done);

/* Returns the unix second of the first point after done of a token ending at end, or 0 when
 * none is left. */
int64_t expiry_next(const struct expiry_points *p, int64_t end, size_t done);

/* Returns the index of the shortest point a token ending at end has passed at now (it has at
 * most that many seconds left), or -1 when it has passed none or ended. */
int expiry_passed(const struct expiry_points *p, int64_t end, int64_t now);

/* Returns the unix second from which a token lasting from start to end has less than a third
 * of its life left: past it, a failing refresh is late. */
int64_t expiry_late_at(int64_t start, int64_t end);
