/* SPDX-License-Identifier: MIT */
/* The token lifecycle, see lifecycle.h and LIFECYCLE.md (the transition table). */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/escape.h"
#include "common/jwt.h"
#include "common/util.h"
#include "daemon/lifecycle-internal.h"
#include "daemon/log.h"
#include "proto/proto.h"

void lc_time_now(struct lc_time *ret)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ret->wall = (int64_t)ts.tv_sec;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	ret->boot = (uint64_t)ts.tv_sec * USEC + (uint64_t)ts.tv_nsec / 1000ULL;
}

static double jitter(double x, double frac)
{
	double u = (double)randombytes_uniform(100001) / 100000.0; /* [0, 1] */

	return x * (1.0 + frac * (2.0 * u - 1.0));
}

void lc_changed(struct lifecycle *lc)
{
	if (lc->hooks.changed)
		lc->hooks.changed(lc->hooks.userdata);
}

void lc_identity_clear(struct identity *id)
{
	free(id->username);
	free(id->url);
	sealed_free(id->password);
	*id = (struct identity){.origin = LC_ORIGIN_NONE};
}

void lc_token_clear(struct token *t)
{
	sealed_free(t->sealed);
	*t = (struct token){0};
}

int lifecycle_new(struct vault *v, const struct lc_hooks *hooks, struct lifecycle **ret)
{
	struct lifecycle *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return -ENOMEM;
	lc->vault = v;
	lc->hooks = *hooks;
	lc->default_lifetime_sec = 86400;
	expiry_points_default(&lc->warn);
	*ret = lc;
	return 0;
}

struct lifecycle *lifecycle_free(struct lifecycle *lc)
{
	if (!lc)
		return NULL;
	lc_identity_clear(&lc->id);
	lc_identity_clear(&lc->candidate);
	lc_token_clear(&lc->tok);
	lc_token_clear(&lc->pasted);
	free(lc->service_action);
	free(lc);
	return NULL;
}

void lifecycle_set_default_lifetime(struct lifecycle *lc, uint64_t seconds)
{
	lc->default_lifetime_sec = seconds;
}

void lifecycle_set_error(struct lifecycle *lc, const char *fmt, ...)
{
	va_list ap;

	lc->last_error[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(lc->last_error, sizeof(lc->last_error), fmt, ap);
		va_end(ap);
	}
	lc_changed(lc);
}

/* ---- deadlines ---- */

uint64_t lc_boot_at_wall(int64_t wall, const struct lc_time *now)
{
	return wall <= now->wall ? now->boot : now->boot + (uint64_t)(wall - now->wall) * USEC;
}

int64_t lc_wall_at_boot(uint64_t boot, const struct lc_time *now)
{
	return now->wall + (int64_t)((boot > now->boot ? boot - now->boot + USEC - 1 : 0) / USEC);
}

/* Returns the boottime at which the token stops being valid, the earlier of its own end
 * and its exp as the wall clock now reads. */
uint64_t lc_effective_end(const struct token *t, const struct lc_time *now)
{
	uint64_t end = t->end_boot;

	if (t->has_end_wall && lc_boot_at_wall(t->end_wall, now) < end)
		end = lc_boot_at_wall(t->end_wall, now);
	return end;
}

bool lc_token_valid(const struct token *t, const struct lc_time *now)
{
	return t->sealed && now->boot < lc_effective_end(t, now);
}

/* Remaining whole seconds of validity (0 when none), INT64_MAX for a token without end. */
int64_t lc_token_remaining(const struct token *t, const struct lc_time *now)
{
	uint64_t end = lc_effective_end(t, now);

	if (end == NEVER)
		return INT64_MAX;
	return end > now->boot ? (int64_t)((end - now->boot) / USEC) : 0;
}

/* Measures what clients are told about the end on the wall clock. */
void lc_measure_expiry(struct token *t, const struct lc_time *now)
{
	uint64_t end = lc_effective_end(t, now);

	if (end == NEVER)
		t->expires_wall = 0;
	else if (end > now->boot)
		t->expires_wall = now->wall + (int64_t)((end - now->boot + USEC / 2) / USEC);
	else if (t->has_end_wall && t->end_wall < now->wall)
		t->expires_wall = t->end_wall;
	else
		t->expires_wall = now->wall - (int64_t)((now->boot - end) / USEC);
}

/* ---- schedule ---- */

void lc_unschedule(struct lifecycle *lc)
{
	lc->sched = SCHED_NONE;
	lc->sched_boot = 0;
	lc->sched_wall = 0;
}

static void schedule_at(
		struct lifecycle *lc, enum schedule kind, uint64_t boot, const struct lc_time *now)
{
	if (boot < now->boot + BACKOFF_MIN_SEC * USEC)
		boot = now->boot + BACKOFF_MIN_SEC * USEC;
	lc->sched = kind;
	lc->sched_boot = boot;
	/* For people, rounded up: the timer works on the exact boottime. */
	lc->sched_wall = lc_wall_at_boot(boot, now);
}

/* Whether the identity can log in again without a person (a service token has no
 * credentials). */
static bool can_refresh(const struct lifecycle *lc)
{
	return lc->id.username && lc->id.password && !lc->id.mfa && !lc->rejected &&
	       !lc->impossible;
}

void lc_reset_failures(struct lifecycle *lc)
{
	lc->rejected = lc->impossible = lc->failed = lc->mfa_asked = false;
	lc->retries = 0;
	lc->probe_lifetime = 0;
	lc_unschedule(lc);
}

int lc_identity_set(struct lifecycle *lc, struct identity *id, const char *username,
		const char *password, size_t len, const char *url)
{
	id->username = strdup(username);
	id->url = url ? strdup(url) : NULL;
	if (!id->username || (url && !id->url) ||
			vault_seal(lc->vault, password, len, &id->password) < 0) {
		lc_identity_clear(id);
		return -ENOMEM;
	}
	return 0;
}

/* Returns the boottime at which the token is due for its refresh: when a third of its life
 * (1 - refresh_frac) is left, on the clock that never jumps or on the wall clock against
 * its exp, whichever comes first. */
static uint64_t refresh_due(const struct lifecycle *lc, const struct lc_time *now)
{
	const struct token *t = &lc->tok;
	uint64_t life = t->end_boot - t->start_boot;
	uint64_t at = t->start_boot + (uint64_t)((double)life * lc->refresh_frac);

	if (t->has_end_wall) {
		int64_t wall_at = t->end_wall -
				  (int64_t)((double)life / 1e6 * (1.0 - lc->refresh_frac));
		uint64_t by_wall = lc_boot_at_wall(wall_at, now);

		if (by_wall < at)
			at = by_wall;
	}
	return at;
}

/* Plans the refresh of a fresh token. */
static void schedule_refresh(struct lifecycle *lc, const struct lc_time *now)
{
	lc_unschedule(lc);
	if (!can_refresh(lc) || !lc->tok.sealed || lc->tok.end_boot == NEVER)
		return;
	schedule_at(lc, SCHED_REFRESH, refresh_due(lc, now), now);
}

static void schedule_retry(struct lifecycle *lc, int64_t retry_after, const struct lc_time *now)
{
	unsigned shift = lc->retries - 1 < 16 ? lc->retries - 1 : 16;
	double delay = BACKOFF_MIN_SEC * (double)(1ULL << shift);

	delay = jitter(delay < BACKOFF_MAX_SEC ? delay : BACKOFF_MAX_SEC, 0.2);
	if (retry_after > 0 && (double)retry_after > delay)
		delay = (double)(retry_after < BACKOFF_MAX_SEC ? retry_after : BACKOFF_MAX_SEC);
	/* Never sleep past the end of the token still being served. */
	if (lc_token_valid(&lc->tok, now) && (double)lc_token_remaining(&lc->tok, now) < delay)
		delay = (double)lc_token_remaining(&lc->tok, now);
	schedule_at(lc, SCHED_RETRY, now->boot + (uint64_t)(delay * 1e6), now);
}

/* ---- logins ---- */

uint64_t lc_ticket_of(enum lc_slot s, uint64_t gen)
{
	return gen * _LC_SLOT_MAX + (uint64_t)s;
}

void lc_slot_finish(struct slot *s, enum proto_error err, const char *fmt, ...)
{
	va_list ap;

	s->running = false;
	s->done = true;
	s->err = err;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
}

void lc_cancel(struct lifecycle *lc, enum lc_slot which, const char *why)
{
	struct slot *s = &lc->slot[which];

	if (!s->running)
		return;
	if (lc->hooks.cancel_login)
		lc->hooks.cancel_login(lc->hooks.userdata, which);
	lc_slot_finish(s, PROTO_E_LOGIN_FAILED, "%s", why);
	if (which == LC_SLOT_CANDIDATE) {
		lc_identity_clear(&lc->candidate);
		lc_token_clear(&lc->pasted);
	}
}

/* Starts a login in slot for id. Returns 0, or -errno with a reason. */
int lc_start(struct lifecycle *lc, enum lc_slot which, const struct identity *id, const char *mfa,
		const struct lc_time *now, const char **ret_reason)
{
	_cleanup_(secret_freep) struct secret *password = NULL;
	struct slot *s = &lc->slot[which];
	int r;

	r = vault_open(lc->vault, id->password, &password);
	if (r < 0) {
		*ret_reason = "cannot decrypt the stored password";
		return r;
	}
	*ret_reason = NULL;
	r = lc->hooks.start_login(
			lc->hooks.userdata, which, id->username, password, mfa, ret_reason);
	if (r < 0) {
		if (!*ret_reason)
			*ret_reason = "cannot start the login helper";
		return r;
	}
	lc_slot_started(s, mfa != NULL, now);
	return 0;
}

void lc_slot_started(struct slot *s, bool with_mfa, const struct lc_time *now)
{
	s->running = true;
	s->done = false;
	s->probe_want = 0;
	s->with_mfa = with_mfa;
	s->gen++;
	s->started_boot = now->boot;
	s->started_wall = now->wall;
}

int lc_start_identity_login(
		struct lifecycle *lc, const char *why, const char *mfa, const struct lc_time *now)
{
	const char *reason = NULL;
	char user[128];
	int r;

	if (lc->slot[LC_SLOT_IDENTITY].running)
		return 0;
	lc_unschedule(lc);
	r = lc_start(lc, LC_SLOT_IDENTITY, &lc->id, mfa, now, &reason);
	if (r < 0) {
		/* A passing failure like any other: back off and try again. */
		lc->retries++;
		lc->failed = true;
		snprintf(lc->last_error, sizeof(lc->last_error), "%s: %s", reason, strerror(-r));
		log_error("%s", lc->last_error);
		schedule_retry(lc, -1, now);
		return r;
	}
	log_info("logging in to %s as \"%s\" (%s)", lc->id.url ? lc->id.url : "?",
			escape_log(lc->id.username, user, sizeof(user)), why);
	return 0;
}

/* Returns the seconds a login token lasts from the start of its login: exp - iat protects
 * against a server clock that differs from ours. */
static int64_t login_lifetime(const struct lifecycle *lc, const struct jwt_claims *c,
		int64_t expires_in, int64_t started_wall)
{
	if (c->has_exp && c->has_iat)
		return c->exp - c->iat;
	if (c->has_exp)
		return c->exp - started_wall;
	if (expires_in > 0)
		return expires_in;
	return (int64_t)lc->default_lifetime_sec;
}

/* Takes the token of a successful login as the one served. Returns 0, or -EBADMSG/-ENOMEM
 * with a reason in msg (a token we cannot use is a failure of the login). */
static int adopt_login_token(struct lifecycle *lc, const struct slot *s,
		const struct lc_login_result *res, const struct lc_time *now, char *msg,
		size_t size)
{
	struct jwt_claims claims;
	struct sealed *sealed = NULL;
	const char *why = NULL;
	int64_t lifetime;

	if (!res->token) {
		snprintf(msg, size, "login helper sent no token");
		return -EBADMSG;
	}
	if (jwt_parse(res->token, res->token_len, &claims, &why) < 0) {
		snprintf(msg, size, "server sent a token that is not a valid JWT: %s", why);
		return -EBADMSG;
	}
	/* A token whose exp has passed by our clock too would need the clocks to differ by
	 * more than its whole lifetime: it is a stale token, not skew. */
	if (claims.has_exp && claims.exp <= now->wall) {
		snprintf(msg, size, "server sent an already expired token (exp %llds ago)",
				(long long)(now->wall - claims.exp));
		return -EBADMSG;
	}
	lifetime = login_lifetime(lc, &claims, res->expires_in, s->started_wall);
	if (lifetime <= 0) {
		snprintf(msg, size, "server sent an already expired token");
		return -EBADMSG;
	}
	if (vault_seal(lc->vault, res->token, res->token_len, &sealed) < 0) {
		snprintf(msg, size, "cannot store the token: out of memory");
		return -ENOMEM;
	}
	if (!claims.user_id[0] && res->user_id)
		snprintf(claims.user_id, sizeof(claims.user_id), "%s", res->user_id);
	lc_token_clear(&lc->tok);
	lc->tok = (struct token){
			.sealed = sealed,
			.claims = claims,
			.start_boot = s->started_boot,
			.end_boot = s->started_boot + (uint64_t)lifetime * USEC,
			.has_end_wall = claims.has_exp,
			.end_wall = claims.exp,
	};
	lc_measure_expiry(&lc->tok, now);
	lc->refresh_frac = jitter(REFRESH_AT, REFRESH_JITTER);
	lc->last_refresh = now->wall;
	return 0;
}

static enum proto_error error_of(enum helper_outcome o)
{
	return o == HELPER_OK             ? PROTO_OK
	       : o == HELPER_REJECTED     ? PROTO_E_CREDENTIALS_REJECTED
	       : o == HELPER_MFA_REQUIRED ? PROTO_E_MFA_REQUIRED
					  : PROTO_E_LOGIN_FAILED;
}

/* The identity's login failed: back off, or stop until a person acts. Records the outcome
 * in slot s. */
static void identity_failed(struct lifecycle *lc, struct slot *s, enum helper_outcome outcome,
		const char *msg, int64_t retry_after, const struct lc_time *now)
{
	char user[128];

	escape_log(lc->id.username, user, sizeof(user));
	lc->failed = true;
	lc_unschedule(lc);
	if (outcome == HELPER_MFA_REQUIRED) {
		/* Nothing unattended can give a code: like a rejection, until a person logs in. */
		lc->rejected = true;
		lc->mfa_asked = true;
		snprintf(lc->last_error, sizeof(lc->last_error),
				"RegScale asks for a one-time MFA code (%s); run 'regscale-token "
				"login --mfa'",
				msg);
		log_error("login as \"%s\" needs an MFA code: %s; not retrying until a person "
			  "logs in",
				user, msg);
	} else if (outcome == HELPER_REJECTED) {
		lc->rejected = true;
		snprintf(lc->last_error, sizeof(lc->last_error),
				"credentials rejected by RegScale (%s); run 'regscale-token login' "
				"or "
				"fix the password and reload",
				msg);
		log_error("login as \"%s\" rejected: %s; not retrying until new credentials "
			  "arrive",
				user, msg);
	} else if (outcome == HELPER_CONFIG) {
		lc->impossible = true;
		snprintf(lc->last_error, sizeof(lc->last_error),
				"login impossible: %s; fix the configuration and reload", msg);
		log_error("login impossible: %s; not retrying until reloaded", msg);
	} else if (lc->id.mfa) {
		/* Its one-time code is spent: a retry without it would be a certain rejection. */
		snprintf(lc->last_error, sizeof(lc->last_error),
				"login failed: %s; an MFA login is not retried: run "
				"'regscale-token "
				"login --mfa' again",
				msg);
		log_warning("%s", lc->last_error);
	} else {
		char iso[32];

		lc->retries++;
		schedule_retry(lc, retry_after, now);
		snprintf(lc->last_error, sizeof(lc->last_error), "login failed: %s; retry %u at %s",
				msg, lc->retries,
				proto_format_time(lc->sched_wall, iso, sizeof(iso)));
		log_warning("%s", lc->last_error);
	}
	lc_slot_finish(s, error_of(outcome), "%s", lc->last_error);
}

static void identity_login_done(
		struct lifecycle *lc, const struct lc_login_result *res, const struct lc_time *now)
{
	struct slot *s = &lc->slot[LC_SLOT_IDENTITY];
	enum helper_outcome outcome = res->outcome;
	char msg[PIPE_MAX_MESSAGE + 64], user[128];

	snprintf(msg, sizeof(msg), "%s", res->message ? res->message : "login failed");
	if (outcome == HELPER_OK && adopt_login_token(lc, s, res, now, msg, sizeof(msg)) < 0)
		outcome = HELPER_PROTOCOL;
	if (outcome != HELPER_OK) {
		identity_failed(lc, s, outcome, msg, res->retry_after, now);
		return;
	}
	/* A login for a client's min_valid that brought less: the server gives no more. */
	if (s->probe_want)
		lc->probe_lifetime = lc->tok.end_boot - lc->tok.start_boot < s->probe_want
						     ? lc->tok.end_boot - lc->tok.start_boot
						     : 0;
	lc->retries = 0;
	lc->failed = false;
	lc->last_error[0] = '\0';
	if (s->with_mfa)
		lc->id.mfa = true; /* a refresh with a code: the next needs a person again */
	schedule_refresh(lc, now);
	lc_slot_finish(s, PROTO_OK, "logged in");
	log_info("logged in as \"%s\": token valid for %llds",
			escape_log(lc->id.username, user, sizeof(user)),
			(long long)lc_token_remaining(&lc->tok, now));
}

/* Whether the current identity has anything that works: a valid token, or credentials a
 * login may still succeed with. */
static bool identity_works(const struct lifecycle *lc, const struct lc_time *now)
{
	return lc_token_valid(&lc->tok, now) || can_refresh(lc);
}

/* Makes the candidate the identity (its token, if any, is already adopted). */
static void adopt_candidate(struct lifecycle *lc)
{
	lc_cancel(lc, LC_SLOT_IDENTITY, "superseded by a client login");
	lc_identity_clear(&lc->id);
	lc->id = lc->candidate;
	lc->candidate = (struct identity){0};
	lc_reset_failures(lc);
	lc->last_error[0] = '\0';
}

static void candidate_login_done(
		struct lifecycle *lc, const struct lc_login_result *res, const struct lc_time *now)
{
	struct slot *s = &lc->slot[LC_SLOT_CANDIDATE];
	struct token old = lc->tok;
	enum helper_outcome outcome = res->outcome;
	char msg[PIPE_MAX_MESSAGE + 64], user[128];

	if (lc->candidate.origin == LC_ORIGIN_PASTED) {
		lc_paste_done(lc, res, now);
		return;
	}
	escape_log(lc->candidate.username, user, sizeof(user));
	snprintf(msg, sizeof(msg), "%s", res->message ? res->message : "login failed");
	if (outcome == HELPER_OK) {
		/* adopt_login_token() replaces lc->tok only on success; keep the old one to
		 * wipe then. */
		lc->tok.sealed = NULL;
		if (adopt_login_token(lc, s, res, now, msg, sizeof(msg)) < 0) {
			lc->tok = old;
			outcome = HELPER_PROTOCOL;
		} else
			sealed_free(old.sealed);
	}
	if (outcome != HELPER_OK && identity_works(lc, now)) {
		/* A failed login changes nothing: identity, token and schedule stay. */
		log_warning("login as \"%s\" failed: %s; keeping the current credentials and "
			    "token",
				user, msg);
		if (outcome == HELPER_REJECTED)
			lc_slot_finish(s, error_of(outcome),
					"RegScale rejected the credentials (%s)", msg);
		else if (outcome == HELPER_MFA_REQUIRED)
			lc_slot_finish(s, error_of(outcome),
					"RegScale asks for a one-time MFA code (%s)", msg);
		else
			lc_slot_finish(s, error_of(outcome), "%s", msg);
		lc_identity_clear(&lc->candidate);
		return;
	}
	if (outcome != HELPER_OK) {
		/* Nothing works that it could spoil: the new credentials are the identity now,
		 * so the state says why they fail (and a passing failure is retried). */
		lc_token_clear(&lc->tok);
		adopt_candidate(lc);
		identity_failed(lc, s, outcome, msg, res->retry_after, now);
		return;
	}
	adopt_candidate(lc);
	schedule_refresh(lc, now);
	lc_slot_finish(s, PROTO_OK, "logged in");
	log_info("logged in as \"%s\" (client login): token valid for %llds%s", user,
			(long long)lc_token_remaining(&lc->tok, now),
			lc->id.mfa ? "; an MFA login: no unattended refresh, a person must log in "
				     "again before it expires"
				   : "");
}

void lifecycle_login_done(struct lifecycle *lc, enum lc_slot slot,
		const struct lc_login_result *res, const struct lc_time *now)
{
	if (slot >= _LC_SLOT_MAX || !lc->slot[slot].running)
		return; /* cancelled meanwhile */
	if (slot == LC_SLOT_IDENTITY)
		identity_login_done(lc, res, now);
	else
		candidate_login_done(lc, res, now);
	lc_changed(lc);
}

/* ---- time ---- */

/* The one log line of a token that ran out: whose, when, and what brings a new one. */
static void note_expiry(struct lifecycle *lc)
{
	char label[2 * JWT_MAX_USERNAME + JWT_MAX_USER_ID + 8], user[4 * sizeof(label)];
	char action[512], iso[32];

	lc->tok.expiry_noted = true;
	log_warning("%s token for %s expired at %s; get answers token_expired until a new one "
		    "arrives: %s",
			lc_kind(&lc->tok),
			escape_log(lc_user_label(lc, label, sizeof(label)), user, sizeof(user)),
			proto_format_time(lc->tok.expires_wall, iso, sizeof(iso)),
			lc_renew_action(lc, action, sizeof(action)));
}

void lifecycle_tick(struct lifecycle *lc, const struct lc_time *now)
{
	bool was_noted = lc->tok.expiry_noted;

	if (lc->tok.sealed && !lc->tok.expiry_noted && !lc_token_valid(&lc->tok, now))
		note_expiry(lc);
	if (lc->sched != SCHED_NONE && now->boot >= lc->sched_boot &&
			!lc->slot[LC_SLOT_IDENTITY].running)
		(void)lc_start_identity_login(lc,
				lc->sched == SCHED_RETRY ? "retry" : "scheduled refresh", NULL,
				now);
	else if (was_noted == lc->tok.expiry_noted)
		return;
	lc_changed(lc);
}

void lifecycle_clock_jumped(struct lifecycle *lc, const struct lc_time *now)
{
	if (lc->tok.sealed) {
		lc_measure_expiry(&lc->tok, now);
		/* Set back, a token that ran out on the wall clock may be valid again. */
		if (lc_token_valid(&lc->tok, now))
			lc->tok.expiry_noted = false;
	}
	/* The refresh point moves with the wall clock; a jump past it starts it at once. */
	if (lc->sched == SCHED_REFRESH && lc->tok.sealed)
		lc->sched_boot = refresh_due(lc, now);
	if (lc->sched != SCHED_NONE)
		lc->sched_wall = lc_wall_at_boot(lc->sched_boot, now);
	lifecycle_tick(lc, now);
	lc_changed(lc);
}

uint64_t lifecycle_next_wakeup(const struct lifecycle *lc, const struct lc_time *now)
{
	uint64_t next = NEVER;

	if (lc->sched != SCHED_NONE && !lc->slot[LC_SLOT_IDENTITY].running)
		next = lc->sched_boot;
	if (lc->tok.sealed && !lc->tok.expiry_noted) {
		uint64_t end = lc_effective_end(&lc->tok, now);
		if (end < next)
			next = end;
	}
	return next;
}

bool lc_login_running(const struct lifecycle *lc)
{
	return lc->slot[LC_SLOT_IDENTITY].running || lc->slot[LC_SLOT_CANDIDATE].running;
}
