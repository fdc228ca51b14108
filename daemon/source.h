/* Where a service-account token comes from: the configured token_file, else the systemd
 * credential "token" ($CREDENTIALS_DIRECTORY/token). Watches the file with inotify so a
 * rotated token is picked up without a signal. */
#pragma once

#include "daemon/tokend.h"

struct source;

/* Picks the token path from d's config and environment. Returns 0 and *ret (owned by the
 * caller, source_free), -ENOENT when neither token_file nor a credential "token" exists
 * (the daemon then does password login), or -ENOMEM. */
int source_new(struct tokend *d, struct source **ret);

/* Stops watching and frees s. Accepts NULL, returns NULL. */
struct source *source_free(struct source *s);

/* Returns the path the token is read from (owned by s). */
const char *source_path(const struct source *s);

/* Reads and parses the token file and hands it to the daemon, which then checks it with
 * RegScale in the background. An unreadable or invalid file is logged with its path and
 * keeps the token held so far. Returns 0 when a new token was installed, or the
 * -errno/-EINVAL of the failure. */
int source_load(struct source *s);

/* Watches the token file's directory (so atomic renames are seen) and reloads when the
 * file is written, created or renamed into place. Returns 0 or -errno. */
int source_watch(struct source *s);
