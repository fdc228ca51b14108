/* SPDX-License-Identifier: MIT */
/* Durations as people write them, for the config file and the client's options: digits and
 * one optional unit, "30", "30s", "5m", "24h", "7d"; and as the programs show them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Parses s as a whole number of seconds (no unit), s, m, h or d. Returns 0 and *ret_seconds
 * (at most max_seconds), -ERANGE when it is larger, or -EINVAL when s is not a duration
 * (empty, a sign, a fraction, a space, another unit); the caller words the message. */
int duration_parse(const char *s, uint64_t max_seconds, uint64_t *ret_seconds);

/* Writes seconds (negative counts as 0) as a short duration with at most two units, for
 * people ("42s", "5m 12s", "15h 58m", "3d 2h", "7d") into buf. Returns buf. */
char *duration_format(long long seconds, char *buf, size_t size);
