/* SPDX-License-Identifier: MIT */
/* Finding a token in what a person or a file gives: RegScale's pages and regscale-cli show it
 * as "Bearer <jwt>". Used by the client (a pasted token) and the daemon (a pasted token, a
 * token file) alike. */
#pragma once

#include <stddef.h>

/* Finds the token in s[0..len): without the whitespace around it and a leading "Bearer"
 * (any case) with the spaces or tabs after it. Sets *ret_off and *ret_len to where it is in s
 * (*ret_len is 0 when nothing is left). */
void bearer_strip(const char *s, size_t len, size_t *ret_off, size_t *ret_len);
