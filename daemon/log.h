/* SPDX-License-Identifier: MIT */
/* Logging to stderr with sd-daemon level prefixes, which journald turns into priorities.
 * Never pass secret bytes: quote user-supplied strings with %s inside "" and name peers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-daemon.h>

#include "common/escape.h" /* escape_log() for every client- or user-chosen string */

/* Log a printf-style line at the given sd-daemon prefix (SD_ERR...). Returns -err when
 * err != 0 so callers can write: return log_error_errno(r, "..."); */
int log_full_errno(const char *prefix, int err, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

#define log_error(...)              log_full_errno(SD_ERR, 0, __VA_ARGS__)
#define log_warning(...)            log_full_errno(SD_WARNING, 0, __VA_ARGS__)
#define log_notice(...)             log_full_errno(SD_NOTICE, 0, __VA_ARGS__)
#define log_info(...)               log_full_errno(SD_INFO, 0, __VA_ARGS__)
#define log_debug(...)              log_full_errno(SD_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(err, ...)   log_full_errno(SD_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(SD_WARNING, (err), __VA_ARGS__)

/* Enables or disables debug lines (off by default). */
void log_set_debug(bool on);
