/* SPDX-License-Identifier: MIT */
/* The message format on the pipes between regscale-tokend and its login helper: a sequence
 * of fields "NAME LEN\nBYTES\n", NAME in [a-z_], LEN decimal bytes. Binary-safe, so a
 * password may hold any byte, and parsed in place without allocating, so the daemon can
 * parse messages that hold secrets inside guarded memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIELDS_MAX_NAME 32

/* Appends field name=value[0..len) to buf[*pos..size). Returns 0, or -ENOBUFS (nothing
 * written) when it does not fit. */
int fields_put(char *buf, size_t size, size_t *pos, const char *name, const char *value,
		size_t len);

/* Appends an integer field. Returns 0 or -ENOBUFS. */
int fields_put_int(char *buf, size_t size, size_t *pos, const char *name, int64_t value);

/* Reads the field at msg[*pos..len): points *ret_name (NUL-terminated copy in name_buf of
 * FIELDS_MAX_NAME + 1 bytes) and *ret_value, *ret_len into msg, and advances *pos. Returns
 * 1 for a field, 0 at the end of msg, or -EBADMSG when msg is malformed. */
int fields_next(const char *msg, size_t len, size_t *pos, char *name_buf, const char **ret_value,
		size_t *ret_len);

/* Parses value[0..len) as a decimal int64. Returns 0 and *ret, or -EINVAL. */
int fields_parse_int(const char *value, size_t len, int64_t *ret);
