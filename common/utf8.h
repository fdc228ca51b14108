/* SPDX-License-Identifier: MIT */
/* UTF-8 validation, written once for the JSON reader, the client's JSON writer and the login
 * helper's request checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Returns the length (1-4) of the well-formed UTF-8 sequence at s[0..n), n >= 1, or 0 if
 * there is none (Unicode 15 table 3-7: no overlong forms, no UTF-16 surrogates, nothing above
 * U+10FFFF). NUL is a well-formed one-byte sequence. */
size_t utf8_sequence_len(const char *s, size_t n);

/* Returns true if all of s[0..len) is well-formed UTF-8 (NUL bytes included, as above). */
bool utf8_valid(const char *s, size_t len);
