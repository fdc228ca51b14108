/* SPDX-License-Identifier: MIT */
/* The token lifecycle: the one owner of the identity (where credentials came from), the
 * credentials (sealed), the token (sealed) and its deadlines on two clocks, the refresh
 * schedule, backoff and the outcome of the last login. Events go in through the functions
 * below, with the time passed in; state comes out through lifecycle_state() and
 * lifecycle_info(). It starts no process and arms no timer itself: it asks its hooks to
 * start or cancel a login, and tells them when anything changed, after which the wiring
 * re-arms its timer for lifecycle_next_wakeup(). The transition table is in
 * daemon/LIFECYCLE.md; tests/unit/test_lifecycle.c checks every cell of it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/secret.h"
#include "daemon/expiry.h"
#include "daemon/helper/pipe.h"
#include "daemon/vault.h"
#include "proto/proto.h"

struct lifecycle;

/* A moment on both clocks. */
struct lc_time {
	int64_t wall;  /* CLOCK_REALTIME, unix seconds */
	uint64_t boot; /* CLOCK_BOOTTIME, microseconds: runs on through suspend, never jumps */
};

/* Reads both clocks into *ret: the one place the daemon asks what time it is. */
void lc_time_now(struct lc_time *ret);

/* Where the identity came from. */
enum lc_origin {
	LC_ORIGIN_NONE,
	LC_ORIGIN_CONFIG,  /* username and password_file (or credential) of the configuration */
	LC_ORIGIN_LOGIN,   /* a client's login request */
	LC_ORIGIN_SERVICE, /* a service-account token: token_file or the credential */
	LC_ORIGIN_PASTED,  /* a token a person pasted: a client's login with "token" */
};

/* The two logins that may run at once. */
enum lc_slot {
	LC_SLOT_IDENTITY,  /* for the current identity: first login, refresh, retry */
	LC_SLOT_CANDIDATE, /* a client's login with new credentials: adopted only on success */
	_LC_SLOT_MAX,
};

struct lc_hooks {
	/* Starts a login for slot as username with password (valid for the call only) and
	 * mfa (NULL when none). Returns 0, or -errno with a reason in *ret_reason. Its result
	 * comes back through lifecycle_login_done(); never from within this call. */
	int (*start_login)(void *userdata, enum lc_slot slot, const char *username,
			const struct secret *password, const char *mfa, const char **ret_reason);
	/* Starts asking RegScale whether token (valid for the call only) is good, for slot
	 * (always LC_SLOT_CANDIDATE: a pasted token). Returns 0, or -errno with a reason in
	 * *ret_reason. Its result comes back through lifecycle_login_done() (HELPER_OK: it is
	 * good), never from within this call. */
	int (*start_check)(void *userdata, enum lc_slot slot, const struct secret *token,
			const char **ret_reason);
	/* Cancels the login (or check) running in slot: no result will come. */
	void (*cancel_login)(void *userdata, enum lc_slot slot);
	/* State, token or schedule changed: re-arm the timer, update STATUS=, wake waiters. */
	void (*changed)(void *userdata);
	void *userdata;
};

/* What a finished login says (the helper's answer, see daemon/helper/pipe.h). */
struct lc_login_result {
	enum helper_outcome outcome;
	int64_t retry_after; /* seconds, -1 when none */
	int64_t expires_in;  /* seconds, -1 when none */
	const char *user_id; /* from the answer, may be empty */
	const char *message; /* one line, no secret bytes */
	const char *token;   /* the JWT on HELPER_OK, else NULL; borrowed for the call */
	size_t token_len;
};

/* What clients and the service manager are shown. */
struct lc_info {
	enum proto_state state;
	enum lc_origin origin;
	bool has_token;      /* a token is held, valid or not */
	bool service;        /* it is a service token (else a login token) */
	const char *kind;    /* PROTO_KIND_SERVICE, _LOGIN or _PASTED; NULL without a token */
	const char *user_id; /* the token's user id, "" when none */
	/* The account: the identity's username, else the token's (claims), else NULL. */
	const char *username;
	int64_t expires_at;     /* unix seconds the token stops being served, 0 = none known */
	int64_t next_refresh;   /* unix seconds of the planned login, 0 = none */
	int64_t last_refresh;   /* unix seconds the token last changed, 0 = never */
	const char *last_error; /* "" when the last load or login succeeded */
	unsigned retries;       /* failed logins since the last success */
	bool login_in_flight;   /* a login (either slot) is running */
	bool needs_person;      /* no background refresh can renew the token (MFA) */
	bool refresh_late; /* a login token with under a third of its life left; refreshes fail */
};

/* What lifecycle_get() decided. */
enum lc_get {
	LC_GET_SERVE, /* the token satisfies the request: lifecycle_open_token() */
	LC_GET_WAIT,  /* a login runs that may satisfy it: ask again when changed */
	LC_GET_FAIL,  /* *ret_err and the message say why */
};

/* Creates a lifecycle with no identity, sealing with v (borrowed, must outlive it) and
 * calling hooks (copied). Returns 0 and *ret (owned by the caller), or -ENOMEM. */
int lifecycle_new(struct vault *v, const struct lc_hooks *hooks, struct lifecycle **ret);

/* Wipes every secret and frees lc without calling any hook (the wiring frees its helpers
 * itself). Accepts NULL, returns NULL. */
struct lifecycle *lifecycle_free(struct lifecycle *lc);

/* Sets the lifetime assumed for a login token that has neither exp nor expires_in. */
void lifecycle_set_default_lifetime(struct lifecycle *lc, uint64_t seconds);

/* The configured password identity, at start and at every reload (username or password
 * NULL: none configured; url may be NULL). Nothing happens when username, password and url
 * are what the last call gave: a reload with an unchanged configuration keeps a runtime
 * identity and logs in not at all. Otherwise the configured identity replaces the current
 * one and one login starts (the old token is dropped when the account or URL differ).
 * Returns 1 when a login was started, 0 when none was needed, or -errno. */
int lifecycle_configure(struct lifecycle *lc, const char *username, const struct secret *password,
		const char *url, const struct lc_time *now);

/* A reload was accepted: last_error is cleared unless a failure still stands (rejected
 * credentials, a retry pending), and a login that was impossible is tried again once. */
void lifecycle_reloaded(struct lifecycle *lc, const struct lc_time *now);

/* Forgets any configured identity, so the next lifecycle_configure() counts as a change
 * (used when the daemon switches to a service token). */
void lifecycle_forget_config(struct lifecycle *lc);

/* A service token (from a file or credential) replaces the identity and token. Returns 0,
 * or -EINVAL with a static reason in *ret_why when token[0..len) is no valid JWT, in which
 * case nothing changes. An already expired token is held but never served. */
int lifecycle_set_service_token(struct lifecycle *lc, const char *token, size_t len,
		const struct lc_time *now, const char **ret_why);

/* RegScale refused the service token: it is dropped. */
void lifecycle_service_rejected(struct lifecycle *lc, const char *message);

/* Records a problem that changes no state (e.g. an unreadable token file while the old
 * token stays); NULL clears it. */
void lifecycle_set_error(struct lifecycle *lc, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

/* A client's login with new credentials: runs beside the current identity, which stays
 * (token, schedule and all) unless it succeeds. Returns 0 and a ticket for
 * lifecycle_ticket(), -EBUSY when another client login runs, -EOPNOTSUPP for a service
 * identity, or -errno with a reason in *ret_reason. */
int lifecycle_login(struct lifecycle *lc, const char *username, const char *password, size_t len,
		const char *mfa, const struct lc_time *now, uint64_t *ret_ticket,
		const char **ret_reason);

/* A token a person pasted (token[0..len), "Bearer " already stripped): checked with RegScale
 * first when check (hooks.start_check), in the candidate slot beside the current identity,
 * which it replaces only once accepted (a refused token changes nothing). Without check it
 * is adopted at once. Returns 0 and a ticket for lifecycle_ticket() (finished already
 * without check), -EINVAL when it is no JWT or has expired, -EOPNOTSUPP for a service
 * identity, -EBUSY when another client login runs, or -errno; each with a reason. */
int lifecycle_paste(struct lifecycle *lc, const char *token, size_t len, bool check,
		const struct lc_time *now, uint64_t *ret_ticket, const char **ret_reason);

/* A login for the current identity now (or the one already running), with mfa a fresh
 * one-time code (NULL: none). Returns 0 and a ticket, or a negative code with a reason:
 * -ENOKEY no credentials, -EKEYREJECTED rejected credentials, -EPERM an MFA identity without
 * mfa or a pasted token (a person must log in), -EOPNOTSUPP a service token, -errno when the
 * login cannot start. */
int lifecycle_refresh(struct lifecycle *lc, const char *why, const char *mfa,
		const struct lc_time *now, uint64_t *ret_ticket, const char **ret_reason);

/* Returns 0 while the login behind ticket runs, or 1 once it finished with *ret_err
 * (PROTO_OK on success) and a message in msg. */
int lifecycle_ticket(const struct lifecycle *lc, uint64_t ticket, enum proto_error *ret_err,
		char *msg, size_t size);

/* A login started through the hooks finished (its slot is free again). */
void lifecycle_login_done(struct lifecycle *lc, enum lc_slot slot,
		const struct lc_login_result *res, const struct lc_time *now);

/* Wipes token and credentials and stops every login and schedule. */
void lifecycle_logout(struct lifecycle *lc);

/* The timer for lifecycle_next_wakeup() fired (or it is any moment): starts a login that is
 * due and notices a token that ran out. */
void lifecycle_tick(struct lifecycle *lc, const struct lc_time *now);

/* The wall clock was set: deadlines and the schedule are measured again at once. */
void lifecycle_clock_jumped(struct lifecycle *lc, const struct lc_time *now);

/* Sets the points before the end of a token no background login renews (a service or
 * pasted token, an MFA identity's) at which lifecycle_warn() warns (p, copied; the default
 * is 30d, 7d, 1d, 1h), and the one action that renews a service token, for people (copied;
 * NULL: a generic one). Returns 0, or -ENOMEM with nothing changed. */
int lifecycle_set_warnings(
		struct lifecycle *lc, const struct expiry_points *p, const char *service_action);

/* Logs the expiry warning due at now, if any: the nearest warn_before point a token nothing
 * renews has passed (each point once per token; the points a new token arrives past give
 * one line), or, once per token, a login token's refresh gone late (under a third of its
 * life left while its logins fail). Returns the unix second of the next such point, for a
 * CLOCK_REALTIME timer, or 0 when none is ahead. The status line names the point passed. */
int64_t lifecycle_warn(struct lifecycle *lc, const struct lc_time *now);

/* Returns the CLOCK_BOOTTIME microseconds of the next moment something is due (a refresh,
 * a retry, the token's end), or UINT64_MAX when nothing is. */
uint64_t lifecycle_next_wakeup(const struct lifecycle *lc, const struct lc_time *now);

/* Decides a get with min_valid seconds (<= 0: none). may_wait: the client allows a wait;
 * a get without min_valid waits only for a login running while no valid token is held,
 * one with min_valid may start a refresh when may_start (the request's first answering,
 * not a resumption). On LC_GET_FAIL writes *ret_err and msg. */
enum lc_get lifecycle_get(struct lifecycle *lc, int64_t min_valid, bool may_wait, bool may_start,
		const struct lc_time *now, enum proto_error *ret_err, char *msg, size_t size);

/* Decrypts the token into a new secret (the caller's, secret_free). Returns 0, -ENOENT
 * when none is held, or -errno. */
int lifecycle_open_token(const struct lifecycle *lc, struct secret **ret);

/* Decrypts the token into buf[0..size), guarded memory of the caller's (vault_open_into()).
 * Returns its length, -ENOENT when none is held, -ENOBUFS, or -EBADMSG. */
ssize_t lifecycle_open_token_into(const struct lifecycle *lc, char *buf, size_t size);

/* Returns the state clients see at now. */
enum proto_state lifecycle_state(const struct lifecycle *lc, const struct lc_time *now);

/* Fills *ret (pointers valid until the next event). */
void lifecycle_info(const struct lifecycle *lc, const struct lc_time *now, struct lc_info *ret);

/* Writes the one-line status for people and STATUS= into buf. Returns buf. */
char *lifecycle_status_line(
		const struct lifecycle *lc, const struct lc_time *now, char *buf, size_t size);
