/* SPDX-License-Identifier: MIT */
/* The lifecycle's own state, shared by its two files (lifecycle.c: events; lifecycle-view.c:
 * what clients see). Nothing outside the lifecycle includes this. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#include "common/jwt.h"
#include "daemon/expiry.h"
#include "daemon/lifecycle.h"

#define USEC  1000000ULL
#define NEVER UINT64_MAX

#define BACKOFF_MIN_SEC 1
#define BACKOFF_MAX_SEC 300

/* Refresh at this share of the token's life, varied by REFRESH_JITTER either way so that a
 * fleet started together does not log in together. */
#define REFRESH_AT     (2.0 / 3.0)
#define REFRESH_JITTER 0.1

struct identity {
	enum lc_origin origin;
	char *username;          /* NULL for a service token */
	struct sealed *password; /* NULL for a service token */
	char *url;               /* where it logs in (part of what makes it the same identity) */
	bool mfa;                /* it logged in with a one-time code: no unattended refresh */
};

struct token {
	struct sealed *sealed; /* NULL when none */
	struct jwt_claims claims;
	bool service;
	bool pasted;          /* a person pasted it: nothing but a new paste renews it */
	uint64_t start_boot;  /* when the login that got it started, or when it was loaded */
	uint64_t end_boot;    /* start_boot + its lifetime; NEVER when none is known */
	bool has_end_wall;    /* it has an exp claim */
	int64_t end_wall;     /* exp */
	int64_t expires_wall; /* what clients are told, measured at adoption and clock jumps */
	bool expiry_noted;    /* its end was logged */
	size_t warned;        /* the warn_before points handled (logged or skipped) */
	bool late_noted;      /* its late refresh was logged */
};

enum schedule {
	SCHED_NONE,
	SCHED_REFRESH, /* the next login renews a valid token */
	SCHED_RETRY,   /* the last login failed for a passing reason */
};

struct slot {
	bool running;
	uint64_t gen; /* of the login running, or of the last one started */
	uint64_t started_boot;
	int64_t started_wall;
	/* The longest min_valid (usec) of the clients waiting for this login, 0 when none. */
	uint64_t probe_want;
	bool with_mfa; /* the login running carries a one-time code */
	/* The outcome of login gen once it finished. */
	bool done;
	enum proto_error err;
	char msg[4 * PIPE_MAX_MESSAGE + 64];
};

struct lifecycle {
	struct vault *vault;
	struct lc_hooks hooks;
	uint64_t default_lifetime_sec;

	struct identity id;
	struct identity candidate; /* the client login running in LC_SLOT_CANDIDATE */
	unsigned char config_fp[crypto_generichash_BYTES];
	bool has_config_fp;

	struct token tok;
	struct token pasted; /* a pasted token being checked in LC_SLOT_CANDIDATE */
	struct slot slot[_LC_SLOT_MAX];

	enum schedule sched;
	uint64_t sched_boot;
	int64_t sched_wall;
	double refresh_frac; /* REFRESH_AT with its jitter, chosen when the token arrived */
	/* Lifetime (usec) of the token a login for a client's min_valid brought: the server's
	 * lifetime as last seen, 0 when unknown. A min_valid beyond it fails at once. */
	uint64_t probe_lifetime;
	unsigned retries;
	bool rejected;   /* the server refused the credentials: no login until new ones */
	bool mfa_asked;  /* ... because it asks for an MFA code: a refresh with one may log in */
	bool impossible; /* the login cannot work (HELPER_CONFIG): none until a reload */
	bool failed;     /* the last identity login failed */
	int64_t last_refresh;
	char last_error[4 * PIPE_MAX_MESSAGE];

	struct expiry_points warn; /* warn_before */
	char *service_action;      /* what renews a service token, for people; NULL: generic */
};

/* Tells the hooks that something changed. */
void lc_changed(struct lifecycle *lc);

/* Wipes and forgets id; returns nothing. */
void lc_identity_clear(struct identity *id);

/* Wipes and forgets t; returns nothing. */
void lc_token_clear(struct token *t);

/* Measures t->expires_wall, what clients are told of its end, at now. */
void lc_measure_expiry(struct token *t, const struct lc_time *now);

/* Drops any planned refresh or retry. */
void lc_unschedule(struct lifecycle *lc);

/* Returns the ticket of login gen in slot s. */
uint64_t lc_ticket_of(enum lc_slot s, uint64_t gen);

/* Cancels the login running in slot which (its waiters get why); returns nothing. */
void lc_cancel(struct lifecycle *lc, enum lc_slot which, const char *why);

/* Marks a login (with_mfa: carrying a one-time code) started in slot s at now: a new
 * generation, running. */
void lc_slot_started(struct slot *s, bool with_mfa, const struct lc_time *now);

/* Marks the login in slot s finished with err and a message. */
void lc_slot_finish(struct slot *s, enum proto_error err, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

/* The check of a pasted token (LC_SLOT_CANDIDATE) finished with res. */
void lc_paste_done(
		struct lifecycle *lc, const struct lc_login_result *res, const struct lc_time *now);

/* Starts a login in slot which for id through the hooks. Returns 0, or -errno with a
 * static reason in *ret_reason. */
int lc_start(struct lifecycle *lc, enum lc_slot which, const struct identity *id, const char *mfa,
		const struct lc_time *now, const char **ret_reason);

/* Starts the identity's own login unless one runs. Returns 0, or -errno with the reason
 * in last_error and a retry scheduled. */
int lc_start_identity_login(
		struct lifecycle *lc, const char *why, const char *mfa, const struct lc_time *now);

/* Returns the boottime at which the wall clock, as it reads now, reaches wall (now's
 * boottime when it has already). */
uint64_t lc_boot_at_wall(int64_t wall, const struct lc_time *now);

/* Returns the wall clock second at which the boottime reaches boot, rounded up (now's wall
 * time when it has already). */
int64_t lc_wall_at_boot(uint64_t boot, const struct lc_time *now);

/* Clears what the last logins left: rejection, impossibility, failure, retries, the
 * lifetime probe, and the schedule (last_error stays). */
void lc_reset_failures(struct lifecycle *lc);

/* Fills id (origin already set) with copies: username, password sealed, url (may be
 * NULL). Returns 0, or -ENOMEM with id cleared. */
int lc_identity_set(struct lifecycle *lc, struct identity *id, const char *username,
		const char *password, size_t len, const char *url);

/* Returns the boottime at which t stops being valid: the earlier of its own end and its exp
 * as the wall clock now reads. */
uint64_t lc_effective_end(const struct token *t, const struct lc_time *now);

/* Returns whether t is held and valid at now. */
bool lc_token_valid(const struct token *t, const struct lc_time *now);

/* Returns the whole seconds of validity t has left (0 when none), INT64_MAX without end. */
int64_t lc_token_remaining(const struct token *t, const struct lc_time *now);

/* Returns whether a login runs in either slot. */
bool lc_login_running(const struct lifecycle *lc);

/* Returns whether no background login can renew the token held: a service or pasted token,
 * or an MFA identity's. */
bool lc_not_renewable(const struct lifecycle *lc);

/* Returns whether the token held is a login token whose refresh fails while less than a third
 * of its life is left. */
bool lc_refresh_late(const struct lifecycle *lc, const struct lc_time *now);

/* Returns the kind of token t: PROTO_KIND_SERVICE, _PASTED or _LOGIN (static strings). */
const char *lc_kind(const struct token *t);

/* Writes who the token is for, for people, into buf: "name (user id)", the name, the id, or
 * "unknown user". Returns buf. */
char *lc_user_label(const struct lifecycle *lc, char *buf, size_t size);

/* Writes what a person does to renew the token held (one action) into buf. Returns buf. */
char *lc_renew_action(const struct lifecycle *lc, char *buf, size_t size);
