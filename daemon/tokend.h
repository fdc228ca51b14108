/* SPDX-License-Identifier: MIT */
/* The daemon's wiring: which objects exist, how they are connected, and what happens on
 * start, reload and signals. It owns no state of its own beyond that: the token and the
 * identity are the lifecycle's (daemon/lifecycle.h). One instance per process. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "daemon/config.h"
#include "daemon/helper_proc.h"
#include "daemon/lifecycle.h"
#include "daemon/ops.h"
#include "daemon/vault.h"

struct access;
struct metrics;
struct metrics_file;
struct server;
struct source;

struct tokend {
	sd_event *event;
	struct config config;
	struct vault *vault;
	struct lifecycle *lifecycle;
	struct ops_env ops;
	struct server *server;
	struct source *source; /* NULL unless a service token is configured */
	struct access *access; /* NULL: only the daemon's uid and root */
	struct metrics *metrics;
	struct metrics_file *metrics_file; /* NULL unless [daemon] metrics_file is set */
	const char *login_helper;          /* path of regscale-token-login */
	struct helper_proc *helpers[_LC_SLOT_MAX];
	/* While starting (tokend_hold_logins()), a login the lifecycle starts waits here for
	 * READY=1 to go out first; then it is started for real. */
	bool holding;
	struct held_login {
		bool held;
		char *username;
		struct secret *password;
		char mfa[PROTO_MAX_MFA + 1];
		bool has_mfa;
	} held[_LC_SLOT_MAX];
	sd_event_source *wakeup;    /* CLOCK_BOOTTIME: the lifecycle's next due moment */
	sd_event_source *warning;   /* CLOCK_REALTIME: the next expiry warning point */
	sd_event_source *clock_set; /* the wall clock was set */
	sd_event_source *sync;      /* deferred: re-arm, STATUS=, wake waiters */
	int clock_fd;
	bool loaded;      /* tokend_load() ran once: later calls are reloads */
	char status[512]; /* last STATUS= sent */
};

/* Creates the daemon on event loop e (referenced), with the login helper at helper_path
 * (borrowed). Returns 0 and *ret (owned by the caller, tokend_free), or -errno. */
int tokend_new(sd_event *e, const char *helper_path, struct tokend **ret);

/* Wipes every secret, frees servers, sources and timers. Accepts NULL, returns NULL. */
struct tokend *tokend_free(struct tokend *d);

/* hold true: logins the lifecycle starts from now on (the first one, at tokend_load()) are
 * kept, not started. hold false: starts the ones kept, reporting a helper that cannot be
 * started as a failed login. The start-up sends READY=1 in between, so that no helper
 * process is spawned before the daemon is ready. */
void tokend_hold_logins(struct tokend *d, bool hold);

/* Sets up the token source of d->config, at start and on reload: a service token
 * (token_file or the credential "token"), else the configured password identity. A missing
 * or bad token or password is no failure: the daemon serves the reason instead and returns
 * 0. Returns -EPERM (logged) when the token_file or password_file was refused because
 * another user owns it or group or others may access it (or opening it gave EPERM): the
 * caller stops at start, and a reload runs on with what the daemon held. */
int tokend_load(struct tokend *d);

/* SIGHUP: reads the configuration again; an invalid one (empty, truncated, wrong) is
 * refused with one line naming file, line and key, and everything runs on unchanged.
 * Returns 0. */
int tokend_reload(struct tokend *d);

/* Recomputes the status line and sends it to systemd (STATUS=) when it changed; with ready,
 * always, with READY=1 in the same message (start-up, the end of a reload). */
void tokend_update_status(struct tokend *d, bool ready);
