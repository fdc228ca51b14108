/* SPDX-License-Identifier: MIT */
/* Durations as people write them, for the config file and the client's options: digits and
 * one optional unit, "30", "30s", "5m", "24h", "7d". */
#pragma once

#include <stdint.h>

/* Parses s as a whole number of seconds (no unit), s, m, h or d. Returns 0 and *ret_seconds
 * (at most max_seconds), -ERANGE when it is larger, or -EINVAL when s is not a duration
 * (empty, a sign, a fraction, a space, another unit); the caller words the message. */
int duration_parse(const char *s, uint64_t max_seconds, uint64_t *ret_seconds);
