/* SPDX-License-Identifier: MIT */
/* The private directory "exec" gives its command for the files that hold the token
 * (regscale-cli's init.yaml): made 0700 under $XDG_RUNTIME_DIR, else /tmp, locked while in use,
 * and removed with everything in it afterwards. One that a client killed with SIGKILL left
 * behind is removed by the next privdir_make() in the same place. */
#pragma once

#include <limits.h>

/* Name of every such directory, before mkdtemp(3)'s six random characters. */
#define PRIVDIR_PREFIX "regscale-token-exec."

struct privdir {
	char path[PATH_MAX]; /* the directory's absolute path */
	int fd;              /* the directory, open and locked (flock(2)) by us; close-on-exec */
};

/* Removes what killed clients left (directories named PRIVDIR_PREFIX* of ours that nobody
 * holds locked), then makes a new directory, 0700, and locks it. Returns 0 and fills *ret
 * (release with privdir_remove()), or -errno. */
int privdir_make(struct privdir *ret);

/* Removes d's directory and everything in it, never following a symbolic link out of it, and
 * closes its fd. Returns 0, or the first -errno met (what could be removed is removed). */
int privdir_remove(struct privdir *d);
