/* Password login and keeping its token fresh: one login at a time (single flight), a
 * refresh scheduled at about 2/3 of the token's lifetime, exponential backoff on transient
 * failures, and no automatic retry after the server rejected the credentials. Timers run
 * on CLOCK_BOOTTIME so they fire correctly after a suspend. */
#pragma once

#include <stdbool.h>

#include "daemon/tokend.h"
#include "proto/proto.h"

/* Loads the password from password_file or the systemd credential "password" (if any)
 * and, when a username and password are known and nothing rejected them, starts a login.
 * Called at start and on SIGHUP. Returns 0 or -errno (logged). */
int refresh_setup(struct tokend *d);

/* Replaces the credentials with username and password[0..len) (mfa may be NULL) and
 * logs in now, cancelling a login in flight. Returns 0 or -errno. */
int refresh_set_credentials(struct tokend *d, const char *username, const char *password,
		size_t len, const char *mfa);

/* Starts a login with the stored credentials unless one is in flight (single flight).
 * Returns 1 if a login is in flight now, 0 if none could start (no credentials, or they
 * were rejected: d->last_error says why), or -errno. */
int refresh_now(struct tokend *d, const char *why);

/* Wipes the token and the credentials and cancels any login or scheduled refresh. */
void refresh_logout(struct tokend *d);

/* Starts a refresh when the token is due (a timer may have been late, e.g. after a
 * suspend). Called on every get. */
void refresh_check_due(struct tokend *d);

/* Checks a service token with RegScale's validateToken in the background; a rejection
 * drops the token, an unreachable server changes nothing. */
void refresh_validate_service_token(struct tokend *d);

/* Returns the daemon's overall state as clients see it (the "state" reply field). */
enum proto_state refresh_state(const struct tokend *d);
