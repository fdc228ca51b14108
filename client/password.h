/* SPDX-License-Identifier: MIT */
/* Reading a password, a pasted token or a one-time code for "login", and the memory that
 * holds them: never argv, never the environment, never stdio buffers or the ordinary heap. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Longest password the client reads, in bytes. */
#define PASSWORD_MAX 4096

/* Anonymous pages for secret bytes: locked in RAM when RLIMIT_MEMLOCK allows (mlock), kept
 * out of core dumps (MADV_DONTDUMP), wiped before they are unmapped. */
struct locked {
	char *data;
	size_t size;
	bool locked; /* mlock() succeeded */
};

/* Maps at least size bytes of zeroed memory into *ret. Returns 0 or -errno (-ENOMEM). A
 * failing mlock() is not an error: ret->locked says whether it worked. */
int locked_alloc(size_t size, struct locked *ret);

/* Wipes, unlocks and unmaps m; accepts a zeroed (never allocated or already freed) m. */
void locked_free(struct locked *m);

/* Prompts on /dev/tty and reads one line there with echo off, into buf[0..size) (NUL-
 * terminated, without the newline); returns 0 and the length in *ret_len. The terminal's
 * settings are restored on every exit path: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM,
 * SIGUSR1/2 restore them and then take their usual effect; SIGTSTP, SIGTTIN, SIGTTOU restore
 * them, stop, and prompt again once continued. A background job stops (SIGTTIN) before
 * touching the terminal. Returns -ENXIO when there is no terminal to open, -ENODATA for an
 * empty line or end of input, -EMSGSIZE for a line of size - 1 bytes or more, -EIO when
 * continued while still in the background, -EINTR when a signal was caught and did not end
 * the process, or another -errno. buf is wiped on failure. */
int password_read_tty(const char *prompt, char *buf, size_t size, size_t *ret_len);

/* Reads a line as password_read_tty() does, but in non-canonical mode, so that it may be
 * longer than the 4095 bytes a terminal line holds (a pasted token); there is no line editing.
 * Returns what password_read_tty() returns. */
int password_read_tty_long(const char *prompt, char *buf, size_t size, size_t *ret_len);

/* Returns true if the process has a terminal to prompt on (/dev/tty opens). */
bool password_have_tty(void);

/* Reads one line from fd without buffering past it, into buf[0..size) (NUL-terminated,
 * "\n" or "\r\n" removed; a last line without newline counts); returns 0 and the length in
 * *ret_len, -ENODATA for an empty line or no input, -EMSGSIZE for a line of size - 1 bytes
 * or more, or -errno. buf is wiped on failure. */
int password_read_fd(int fd, char *buf, size_t size, size_t *ret_len);
