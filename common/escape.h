/* SPDX-License-Identifier: MIT */
/* Making strings safe to put in a log line, a status line or an error message: strings a
 * client, another user or a server controls (names, paths, process names, answers) go
 * through one of these before they are printed. */
#pragma once

#include <stddef.h>

/* Writes s into buf[0..size) made safe to quote inside "" in a log line: printable ASCII
 * is kept, '"' and '\\' are escaped, any other byte becomes \xNN, and an s too long for buf
 * is cut with "...". size must be at least 9. Returns buf. */
const char *escape_log(const char *s, char *buf, size_t size);

/* Replaces, in place, every byte of s outside printable ASCII with '?', for text that must
 * be one line of ASCII (the helper's messages). Returns s. */
char *escape_ascii(char *s);

/* Replaces, in place, every control character of s (C0 and DEL) with '?', keeping UTF-8
 * text readable, for one-line messages that may quote a user's names. Returns s. */
char *escape_controls(char *s);
