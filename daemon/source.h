/* SPDX-License-Identifier: MIT */
/* Where a service-account token comes from: the configured token_file, else the systemd
 * credential "token" ($CREDENTIALS_DIRECTORY/token). Watches the file with inotify so a
 * rotated token is picked up without a signal. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "daemon/config.h"
#include "daemon/lifecycle.h"

struct source;

/* Picks the token path from config c and the environment; tokens go to lc, checks with
 * RegScale run helper_path on e (all borrowed: they must outlive s). Returns 0 and *ret
 * (owned by the caller, source_free), -ENOENT when neither token_file nor a credential
 * "token" exists (the daemon then does password login), or -ENOMEM. */
int source_new(sd_event *e, const struct config *c, struct lifecycle *lc, const char *helper_path,
		struct source **ret);

/* Stops watching and frees s. Accepts NULL, returns NULL. */
struct source *source_free(struct source *s);

/* Returns the path the token is read from (owned by s). */
const char *source_path(const struct source *s);

/* Reads and parses the token file and hands it to the lifecycle, then checks it with
 * RegScale's validateToken in the background, from the event loop's next iteration on (unless
 * it has expired already or no url is set): a rejected token is dropped. An unreadable or invalid
 * file is logged with its path and keeps the token held so far. Returns 0 when a new token was
 * installed, or the -errno/-EINVAL of the failure. */
int source_load(struct source *s);

/* Returns true while the token loaded last is being checked with RegScale (or about to be). */
bool source_checking(const struct source *s);

/* Watches the token file's directory (so atomic renames are seen) and reloads when the
 * file is written, created or renamed into place. Returns 0 or -errno. */
int source_watch(struct source *s);
