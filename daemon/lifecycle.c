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
#include "daemon/lifecycle.h"
#include "daemon/log.h"
#include "proto/reply.h"

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
	uint64_t start_boot;  /* when the login that got it started, or when it was loaded */
	uint64_t end_boot;    /* start_boot + its lifetime; NEVER when none is known */
	bool has_end_wall;    /* it has an exp claim */
	int64_t end_wall;     /* exp */
	int64_t expires_wall; /* what clients are told, measured at adoption and clock jumps */
	bool expiry_noted;    /* its end was logged */
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
	bool impossible; /* the login cannot work (HELPER_CONFIG): none until a reload */
	bool failed;     /* the last identity login failed */
	int64_t last_refresh;
	char last_error[4 * PIPE_MAX_MESSAGE];
};

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

static void changed(struct lifecycle *lc)
{
	if (lc->hooks.changed)
		lc->hooks.changed(lc->hooks.userdata);
}

static void identity_clear(struct identity *id)
{
	free(id->username);
	free(id->url);
	sealed_free(id->password);
	*id = (struct identity){.origin = LC_ORIGIN_NONE};
}

static void token_clear(struct token *t)
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
	*ret = lc;
	return 0;
}

struct lifecycle *lifecycle_free(struct lifecycle *lc)
{
	if (!lc)
		return NULL;
	identity_clear(&lc->id);
	identity_clear(&lc->candidate);
	token_clear(&lc->tok);
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
	changed(lc);
}

/* ---- deadlines ---- */

/* Returns the boottime at which the token stops being valid, the earlier of its own end
 * and its exp as the wall clock now reads. */
static uint64_t effective_end(const struct token *t, const struct lc_time *now)
{
	uint64_t end = t->end_boot;

	if (t->has_end_wall) {
		uint64_t by_wall =
				t->end_wall <= now->wall
						? now->boot
						: now->boot + (uint64_t)(t->end_wall - now->wall) *
										  USEC;
		if (by_wall < end)
			end = by_wall;
	}
	return end;
}

static bool token_valid(const struct token *t, const struct lc_time *now)
{
	return t->sealed && now->boot < effective_end(t, now);
}

/* Remaining whole seconds of validity (0 when none), INT64_MAX for a token without end. */
static int64_t token_remaining(const struct token *t, const struct lc_time *now)
{
	uint64_t end = effective_end(t, now);

	if (end == NEVER)
		return INT64_MAX;
	return end > now->boot ? (int64_t)((end - now->boot) / USEC) : 0;
}

/* Measures what clients are told about the end on the wall clock. */
static void measure_expiry(struct token *t, const struct lc_time *now)
{
	uint64_t end = effective_end(t, now);

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

static void unschedule(struct lifecycle *lc)
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
	lc->sched_wall = now->wall + (int64_t)((boot - now->boot + USEC - 1) / USEC);
}

/* Whether the identity can log in again without a person. */
static bool can_refresh(const struct lifecycle *lc)
{
	return (lc->id.origin == LC_ORIGIN_CONFIG || lc->id.origin == LC_ORIGIN_LOGIN) &&
	       lc->id.username && lc->id.password && !lc->id.mfa && !lc->rejected &&
	       !lc->impossible;
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
		uint64_t by_wall = wall_at <= now->wall
						   ? now->boot
						   : now->boot + (uint64_t)(wall_at - now->wall) *
										     USEC;
		if (by_wall < at)
			at = by_wall;
	}
	return at;
}

/* Plans the refresh of a fresh token. */
static void schedule_refresh(struct lifecycle *lc, const struct lc_time *now)
{
	unschedule(lc);
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
	if (token_valid(&lc->tok, now) && (double)token_remaining(&lc->tok, now) < delay)
		delay = (double)token_remaining(&lc->tok, now);
	schedule_at(lc, SCHED_RETRY, now->boot + (uint64_t)(delay * 1e6), now);
}

/* ---- logins ---- */

static uint64_t ticket_of(enum lc_slot s, uint64_t gen)
{
	return gen * _LC_SLOT_MAX + (uint64_t)s;
}

static void slot_finish(struct slot *s, enum proto_error err, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

static void slot_finish(struct slot *s, enum proto_error err, const char *fmt, ...)
{
	va_list ap;

	s->running = false;
	s->done = true;
	s->err = err;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
}

static void cancel(struct lifecycle *lc, enum lc_slot which, const char *why)
{
	struct slot *s = &lc->slot[which];

	if (!s->running)
		return;
	if (lc->hooks.cancel_login)
		lc->hooks.cancel_login(lc->hooks.userdata, which);
	slot_finish(s, PROTO_E_LOGIN_FAILED, "%s", why);
	if (which == LC_SLOT_CANDIDATE)
		identity_clear(&lc->candidate);
}

/* Starts a login in slot for id. Returns 0, or -errno with a reason. */
static int start(struct lifecycle *lc, enum lc_slot which, const struct identity *id,
		const char *mfa, const struct lc_time *now, const char **ret_reason)
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
	s->running = true;
	s->done = false;
	s->probe_want = 0;
	s->gen++;
	s->started_boot = now->boot;
	s->started_wall = now->wall;
	return 0;
}

/* Starts a login for the current identity. Returns 0, or -errno (and records why). */
static int start_identity_login(struct lifecycle *lc, const char *why, const struct lc_time *now)
{
	const char *reason = NULL;
	char user[128];
	int r;

	if (lc->slot[LC_SLOT_IDENTITY].running)
		return 0;
	unschedule(lc);
	r = start(lc, LC_SLOT_IDENTITY, &lc->id, NULL, now, &reason);
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
	token_clear(&lc->tok);
	lc->tok = (struct token){
			.sealed = sealed,
			.claims = claims,
			.start_boot = s->started_boot,
			.end_boot = s->started_boot + (uint64_t)lifetime * USEC,
			.has_end_wall = claims.has_exp,
			.end_wall = claims.exp,
	};
	measure_expiry(&lc->tok, now);
	lc->refresh_frac = jitter(REFRESH_AT, REFRESH_JITTER);
	lc->last_refresh = now->wall;
	return 0;
}

static enum proto_error error_of(enum helper_outcome o)
{
	return o == HELPER_OK         ? PROTO_OK
	       : o == HELPER_REJECTED ? PROTO_E_CREDENTIALS_REJECTED
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
	unschedule(lc);
	if (outcome == HELPER_REJECTED) {
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
				"login --mfa CODE' again",
				msg);
		log_warning("%s", lc->last_error);
	} else {
		lc->retries++;
		schedule_retry(lc, retry_after, now);
		snprintf(lc->last_error, sizeof(lc->last_error),
				"login failed: %s; retry %u in %llds", msg, lc->retries,
				(long long)(lc->sched_wall - now->wall));
		log_warning("%s", lc->last_error);
	}
	slot_finish(s, error_of(outcome), "%s", lc->last_error);
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
	schedule_refresh(lc, now);
	slot_finish(s, PROTO_OK, "logged in");
	log_info("logged in as \"%s\": token valid for %llds",
			escape_log(lc->id.username, user, sizeof(user)),
			(long long)token_remaining(&lc->tok, now));
}

/* Whether the current identity has anything that works: a valid token, or credentials a
 * login may still succeed with. */
static bool identity_works(const struct lifecycle *lc, const struct lc_time *now)
{
	return token_valid(&lc->tok, now) || (lc->id.username && lc->id.password && !lc->rejected &&
							     !lc->impossible && !lc->id.mfa);
}

/* Makes the candidate the identity (its token, if any, is already adopted). */
static void adopt_candidate(struct lifecycle *lc)
{
	cancel(lc, LC_SLOT_IDENTITY, "superseded by a client login");
	identity_clear(&lc->id);
	lc->id = lc->candidate;
	lc->candidate = (struct identity){0};
	lc->rejected = lc->impossible = lc->failed = false;
	lc->retries = 0;
	lc->probe_lifetime = 0;
	lc->last_error[0] = '\0';
	unschedule(lc);
}

static void candidate_login_done(
		struct lifecycle *lc, const struct lc_login_result *res, const struct lc_time *now)
{
	struct slot *s = &lc->slot[LC_SLOT_CANDIDATE];
	struct token old = lc->tok;
	enum helper_outcome outcome = res->outcome;
	char msg[PIPE_MAX_MESSAGE + 64], user[128];

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
		slot_finish(s, error_of(outcome), "%s", msg);
		identity_clear(&lc->candidate);
		return;
	}
	if (outcome != HELPER_OK) {
		/* Nothing works that it could spoil: the new credentials are the identity now,
		 * so the state says why they fail (and a passing failure is retried). */
		token_clear(&lc->tok);
		adopt_candidate(lc);
		identity_failed(lc, s, outcome, msg, res->retry_after, now);
		return;
	}
	adopt_candidate(lc);
	schedule_refresh(lc, now);
	slot_finish(s, PROTO_OK, "logged in");
	log_info("logged in as \"%s\" (client login): token valid for %llds%s", user,
			(long long)token_remaining(&lc->tok, now),
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
	changed(lc);
}

/* ---- identities ---- */

/* Fingerprint of a configured identity: username, password and url. */
static void fingerprint(const char *username, const struct secret *password, const char *url,
		unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash_state st;
	static const unsigned char sep = 0xff;

	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	if (username)
		crypto_generichash_update(&st, (const unsigned char *)username, strlen(username));
	crypto_generichash_update(&st, &sep, 1);
	if (password)
		crypto_generichash_update(
				&st, (const unsigned char *)password->data, password->len);
	crypto_generichash_update(&st, &sep, 1);
	if (url)
		crypto_generichash_update(&st, (const unsigned char *)url, strlen(url));
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Drops identity, token, logins and schedule: what logout and a change of account do. */
static void forget_all(struct lifecycle *lc)
{
	cancel(lc, LC_SLOT_IDENTITY, "the identity changed");
	cancel(lc, LC_SLOT_CANDIDATE, "the identity changed");
	identity_clear(&lc->id);
	token_clear(&lc->tok);
	unschedule(lc);
	lc->rejected = lc->impossible = lc->failed = false;
	lc->retries = 0;
	lc->probe_lifetime = 0;
	lc->last_error[0] = '\0';
}

void lifecycle_reloaded(struct lifecycle *lc, const struct lc_time *now)
{
	if (lc->impossible) {
		lc->impossible = false;
		(void)start_identity_login(lc, "reload", now);
	} else if (!lc->rejected && lc->sched != SCHED_RETRY && lc->id.origin != LC_ORIGIN_NONE)
		lc->last_error[0] = '\0'; /* the problem it described (a file, a login) is gone */
	changed(lc);
}

void lifecycle_forget_config(struct lifecycle *lc)
{
	lc->has_config_fp = false;
}

int lifecycle_configure(struct lifecycle *lc, const char *username, const struct secret *password,
		const char *url, const struct lc_time *now)
{
	unsigned char fp[crypto_generichash_BYTES];
	struct identity id = {.origin = LC_ORIGIN_CONFIG};
	bool same_account;
	int r;

	fingerprint(username, password, url, fp);
	if (lc->has_config_fp && sodium_memcmp(fp, lc->config_fp, sizeof(fp)) == 0)
		return 0; /* nothing changed: whatever identity runs, runs on */
	memcpy(lc->config_fp, fp, sizeof(fp));
	lc->has_config_fp = true;

	if (!username || !password) {
		/* Credentials left the configuration: forget them, but not a client's login. */
		if (lc->id.origin == LC_ORIGIN_CONFIG || lc->id.origin == LC_ORIGIN_SERVICE) {
			forget_all(lc);
			snprintf(lc->last_error, sizeof(lc->last_error),
					"no credentials: run 'regscale-token login'");
			changed(lc);
		} else if (lc->id.origin == LC_ORIGIN_NONE && !lc->last_error[0]) {
			snprintf(lc->last_error, sizeof(lc->last_error),
					"no credentials: run 'regscale-token login'");
			changed(lc);
		}
		return 0;
	}

	id.username = strdup(username);
	id.url = url ? strdup(url) : NULL;
	r = vault_seal(lc->vault, password->data, password->len, &id.password);
	if (!id.username || (url && !id.url) || r < 0) {
		identity_clear(&id);
		return -ENOMEM;
	}
	same_account = lc->id.origin != LC_ORIGIN_SERVICE && same_str(lc->id.username, username) &&
		       same_str(lc->id.url, url);
	if (same_account) {
		/* A new password for the account: the token stays until the login replaces it. */
		cancel(lc, LC_SLOT_IDENTITY, "the credentials changed");
		identity_clear(&lc->id);
		lc->rejected = lc->impossible = false;
		lc->retries = 0;
		unschedule(lc);
	} else
		forget_all(lc); /* another account or server: its token must not be served */
	lc->id = id;
	r = start_identity_login(lc, "credentials loaded", now);
	changed(lc);
	return r < 0 ? r : 1;
}

int lifecycle_set_service_token(struct lifecycle *lc, const char *token, size_t len,
		const struct lc_time *now, const char **ret_why)
{
	struct jwt_claims claims;
	struct sealed *sealed = NULL;
	int r;

	if (jwt_parse(token, len, &claims, ret_why) < 0)
		return -EINVAL;
	r = vault_seal(lc->vault, token, len, &sealed);
	if (r < 0) {
		*ret_why = "out of memory";
		return r;
	}
	forget_all(lc);
	lc->id.origin = LC_ORIGIN_SERVICE;
	lc->tok = (struct token){
			.sealed = sealed,
			.claims = claims,
			.service = true,
			.start_boot = now->boot,
			/* Counted from when we got it on the clock that never jumps, too. */
			.end_boot = !claims.has_exp ? NEVER
				    : claims.exp <= now->wall
						    ? now->boot
						    : now->boot + (uint64_t)(claims.exp -
										  now->wall) *
										      USEC,
			.has_end_wall = claims.has_exp,
			.end_wall = claims.exp,
	};
	measure_expiry(&lc->tok, now);
	lc->tok.expiry_noted = !token_valid(&lc->tok, now);
	lc->last_refresh = now->wall;
	changed(lc);
	return 0;
}

void lifecycle_service_rejected(struct lifecycle *lc, const char *message)
{
	if (lc->id.origin != LC_ORIGIN_SERVICE)
		return;
	token_clear(&lc->tok);
	lc->rejected = true;
	snprintf(lc->last_error, sizeof(lc->last_error), "RegScale rejected the service token (%s)",
			message);
	changed(lc);
}

int lifecycle_login(struct lifecycle *lc, const char *username, const char *password, size_t len,
		const char *mfa, const struct lc_time *now, uint64_t *ret_ticket,
		const char **ret_reason)
{
	struct identity id = {.origin = LC_ORIGIN_LOGIN};
	int r;

	if (lc->id.origin == LC_ORIGIN_SERVICE) {
		*ret_reason = "this daemon serves a service token; remove token_file to use "
			      "password login";
		return -EOPNOTSUPP;
	}
	if (lc->slot[LC_SLOT_CANDIDATE].running) {
		*ret_reason = "another login is in progress; try again when it is done";
		return -EBUSY;
	}
	id.username = strdup(username);
	id.url = lc->id.url ? strdup(lc->id.url) : NULL;
	id.mfa = mfa && mfa[0];
	r = vault_seal(lc->vault, password, len, &id.password);
	if (!id.username || (lc->id.url && !id.url) || r < 0) {
		identity_clear(&id);
		*ret_reason = "out of memory";
		return -ENOMEM;
	}
	identity_clear(&lc->candidate);
	lc->candidate = id;
	r = start(lc, LC_SLOT_CANDIDATE, &lc->candidate, id.mfa ? mfa : NULL, now, ret_reason);
	if (r < 0) {
		identity_clear(&lc->candidate);
		return r;
	}
	*ret_ticket = ticket_of(LC_SLOT_CANDIDATE, lc->slot[LC_SLOT_CANDIDATE].gen);
	changed(lc);
	return 0;
}

int lifecycle_refresh(struct lifecycle *lc, const char *why, const struct lc_time *now,
		uint64_t *ret_ticket, const char **ret_reason)
{
	int r;

	if (lc->id.origin == LC_ORIGIN_SERVICE) {
		*ret_reason = "a service token is not renewed by a login";
		return -EOPNOTSUPP;
	}
	if (!lc->slot[LC_SLOT_IDENTITY].running) {
		if (!lc->id.username || !lc->id.password) {
			*ret_reason = "no credentials: run 'regscale-token login'";
			return -ENOKEY;
		}
		if (lc->rejected) {
			*ret_reason = lc->last_error;
			return -EKEYREJECTED;
		}
		if (lc->id.mfa) {
			*ret_reason = "this account logs in with an MFA code, so the daemon cannot "
				      "renew its token: run 'regscale-token login --mfa CODE'";
			return -EPERM;
		}
		lc->impossible = false;
		r = start_identity_login(lc, why, now);
		changed(lc);
		if (r < 0) {
			*ret_reason = lc->last_error;
			return r;
		}
	}
	*ret_ticket = ticket_of(LC_SLOT_IDENTITY, lc->slot[LC_SLOT_IDENTITY].gen);
	return 0;
}

int lifecycle_ticket(const struct lifecycle *lc, uint64_t ticket, enum proto_error *ret_err,
		char *msg, size_t size)
{
	const struct slot *s = &lc->slot[ticket % _LC_SLOT_MAX];
	uint64_t gen = ticket / _LC_SLOT_MAX;

	if (s->gen == gen && s->running)
		return 0;
	if (s->gen != gen || !s->done) {
		*ret_err = PROTO_E_LOGIN_FAILED;
		snprintf(msg, size, "superseded by a newer login");
		return 1;
	}
	*ret_err = s->err;
	snprintf(msg, size, "%s", s->msg);
	return 1;
}

void lifecycle_logout(struct lifecycle *lc)
{
	forget_all(lc);
	log_info("logged out: token and credentials wiped");
	changed(lc);
}

/* ---- time ---- */

void lifecycle_tick(struct lifecycle *lc, const struct lc_time *now)
{
	bool was_noted = lc->tok.expiry_noted;
	char user[JWT_MAX_USER_ID * 2];

	if (lc->tok.sealed && !lc->tok.expiry_noted && !token_valid(&lc->tok, now)) {
		lc->tok.expiry_noted = true;
		log_warning("token for user \"%s\" expired; get answers token_expired until a new "
			    "one arrives",
				escape_log(lc->tok.claims.user_id, user, sizeof(user)));
	}
	if (lc->sched != SCHED_NONE && now->boot >= lc->sched_boot &&
			!lc->slot[LC_SLOT_IDENTITY].running)
		(void)start_identity_login(
				lc, lc->sched == SCHED_RETRY ? "retry" : "scheduled refresh", now);
	else if (was_noted == lc->tok.expiry_noted)
		return;
	changed(lc);
}

void lifecycle_clock_jumped(struct lifecycle *lc, const struct lc_time *now)
{
	if (lc->tok.sealed)
		measure_expiry(&lc->tok, now);
	/* The refresh point moves with the wall clock; a jump past it starts it at once. */
	if (lc->sched == SCHED_REFRESH && lc->tok.sealed)
		lc->sched_boot = refresh_due(lc, now);
	if (lc->sched != SCHED_NONE)
		lc->sched_wall =
				now->wall +
				(int64_t)((lc->sched_boot > now->boot ? lc->sched_boot - now->boot +
											  USEC - 1
								      : 0) /
						USEC);
	lifecycle_tick(lc, now);
	changed(lc);
}

uint64_t lifecycle_next_wakeup(const struct lifecycle *lc, const struct lc_time *now)
{
	uint64_t next = NEVER;

	if (lc->sched != SCHED_NONE && !lc->slot[LC_SLOT_IDENTITY].running)
		next = lc->sched_boot;
	if (lc->tok.sealed && !lc->tok.expiry_noted) {
		uint64_t end = effective_end(&lc->tok, now);
		if (end < next)
			next = end;
	}
	return next;
}

/* ---- what clients see ---- */

enum proto_state lifecycle_state(const struct lifecycle *lc, const struct lc_time *now)
{
	bool valid = token_valid(&lc->tok, now);

	if (lc->rejected)
		return PROTO_STATE_CREDENTIALS_REJECTED;
	if (lc->slot[LC_SLOT_IDENTITY].running)
		return valid ? PROTO_STATE_REFRESHING : PROTO_STATE_LOGGING_IN;
	if (!valid && lc->slot[LC_SLOT_CANDIDATE].running)
		return PROTO_STATE_LOGGING_IN;
	if (lc->sched == SCHED_RETRY)
		return PROTO_STATE_RETRYING;
	if (valid)
		return lc->id.mfa ? PROTO_STATE_LOGIN_REQUIRED : PROTO_STATE_VALID;
	return lc->tok.sealed ? PROTO_STATE_EXPIRED : PROTO_STATE_NO_TOKEN;
}

static bool login_running(const struct lifecycle *lc)
{
	return lc->slot[LC_SLOT_IDENTITY].running || lc->slot[LC_SLOT_CANDIDATE].running;
}

/* Why no token can be served. */
static enum lc_get fail_no_token(const struct lifecycle *lc, const struct lc_time *now,
		enum proto_error *ret_err, char *msg, size_t size)
{
	char iso[32];

	if (lc->rejected) {
		*ret_err = PROTO_E_CREDENTIALS_REJECTED;
		snprintf(msg, size, "%s", lc->last_error);
	} else if (lc->tok.sealed) {
		*ret_err = PROTO_E_TOKEN_EXPIRED;
		snprintf(msg, size, "the token expired at %s%s%s",
				proto_format_time(lc->tok.expires_wall, iso, sizeof(iso)),
				lc->last_error[0] ? "; " : "",
				lc->last_error[0] ? lc->last_error
				: lc->id.mfa      ? "an MFA login cannot be renewed: run "
						    "'regscale-token login --mfa CODE'"
						  : "");
	} else if (login_running(lc)) {
		*ret_err = PROTO_E_NO_TOKEN;
		snprintf(msg, size, "no token yet: a login is in progress");
	} else if (lc->failed) {
		*ret_err = PROTO_E_LOGIN_FAILED;
		snprintf(msg, size, "%s", lc->last_error);
	} else {
		*ret_err = PROTO_E_NO_TOKEN;
		snprintf(msg, size, "%s",
				lc->last_error[0] ? lc->last_error : "the daemon holds no token");
	}
	return LC_GET_FAIL;
}

static void format_duration(int64_t s, char *buf, size_t size)
{
	if (s >= 86400 && s % 86400 == 0)
		snprintf(buf, size, "%lldd", (long long)(s / 86400));
	else if (s >= 3600 && s % 3600 == 0)
		snprintf(buf, size, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

enum lc_get lifecycle_get(struct lifecycle *lc, int64_t min_valid, bool may_wait, bool may_start,
		const struct lc_time *now, enum proto_error *ret_err, char *msg, size_t size)
{
	bool valid;
	int64_t remaining;

	lifecycle_tick(lc, now); /* a refresh whose timer has not fired yet is due all the same */
	valid = token_valid(&lc->tok, now);
	remaining = token_remaining(&lc->tok, now);
	if (valid && (min_valid <= 0 || remaining >= min_valid))
		return LC_GET_SERVE;

	if (min_valid <= 0) {
		/* First use: wait for the login of a start or reload, never start one. */
		if (may_wait && login_running(lc))
			return LC_GET_WAIT;
		return fail_no_token(lc, now, ret_err, msg, size);
	}

	/* A login for such a request brought no longer token than this: asking for more
	 * again cannot be met, and is not worth another login. */
	if (lc->probe_lifetime && !lc->tok.service &&
			(uint64_t)min_valid * USEC > lc->probe_lifetime &&
			(!lc->tok.sealed ||
					(uint64_t)min_valid * USEC >
							lc->tok.end_boot - lc->tok.start_boot)) {
		char want[32], life[32];
		format_duration(min_valid, want, sizeof(want));
		format_duration((int64_t)(lc->probe_lifetime / USEC), life, sizeof(life));
		*ret_err = PROTO_E_TOKEN_EXPIRED;
		snprintf(msg, size,
				"min_valid %s is longer than a whole token lifetime (%s): no login "
				"can "
				"give such a token",
				want, life);
		return LC_GET_FAIL;
	}
	if (valid && lc->id.mfa && !login_running(lc)) {
		char iso[32];
		*ret_err = PROTO_E_LOGIN_REQUIRED;
		snprintf(msg, size,
				"the token is valid for %llds only, less than min_valid, and an "
				"MFA "
				"login cannot be renewed unattended: run 'regscale-token login "
				"--mfa "
				"CODE' before %s",
				(long long)remaining,
				proto_format_time(lc->tok.expires_wall, iso, sizeof(iso)));
		return LC_GET_FAIL;
	}
	if (may_wait) {
		const char *reason;
		uint64_t ticket;

		if (login_running(lc) ||
				(may_start && lifecycle_refresh(lc,
							      "a client needs a fresher token", now,
							      &ticket, &reason) >= 0)) {
			/* What it brings is the server's lifetime: remember it for the next ask. */
			struct slot *sl = &lc->slot[LC_SLOT_IDENTITY];
			if (sl->running && (uint64_t)min_valid * USEC > sl->probe_want)
				sl->probe_want = (uint64_t)min_valid * USEC;
			return LC_GET_WAIT;
		}
	}
	if (!valid)
		return fail_no_token(lc, now, ret_err, msg, size);
	*ret_err = PROTO_E_TOKEN_EXPIRED;
	snprintf(msg, size, "the token is valid for %llds only, less than min_valid%s%s",
			(long long)remaining, lc->last_error[0] ? "; " : "", lc->last_error);
	return LC_GET_FAIL;
}

int lifecycle_open_token(const struct lifecycle *lc, struct secret **ret)
{
	if (!lc->tok.sealed)
		return -ENOENT;
	return vault_open(lc->vault, lc->tok.sealed, ret);
}

void lifecycle_info(const struct lifecycle *lc, const struct lc_time *now, struct lc_info *ret)
{
	*ret = (struct lc_info){
			.state = lifecycle_state(lc, now),
			.origin = lc->id.origin,
			.has_token = lc->tok.sealed != NULL,
			.service = lc->tok.service,
			.user_id = lc->tok.sealed ? lc->tok.claims.user_id : "",
			.username = lc->id.username,
			.expires_at = lc->tok.sealed ? lc->tok.expires_wall : 0,
			.next_refresh = lc->sched != SCHED_NONE ? lc->sched_wall : 0,
			.last_refresh = lc->last_refresh,
			.last_error = lc->last_error,
			.retries = lc->retries,
			.login_in_flight = login_running(lc),
			.needs_person = lc->id.mfa,
	};
}

static void format_utc(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long)t);
}

static void format_in(int64_t secs, char *buf, size_t size)
{
	if (secs >= 3600)
		snprintf(buf, size, "%lldh %02lldm", (long long)(secs / 3600),
				(long long)(secs % 3600 / 60));
	else if (secs >= 60)
		snprintf(buf, size, "%lldm %02llds", (long long)(secs / 60),
				(long long)(secs % 60));
	else
		snprintf(buf, size, "%llds", (long long)(secs > 0 ? secs : 0));
}

char *lifecycle_status_line(
		const struct lifecycle *lc, const struct lc_time *now, char *buf, size_t size)
{
	const char *kind = lc->tok.service ? PROTO_KIND_SERVICE : PROTO_KIND_LOGIN;
	const char *user = lc->tok.claims.user_id[0] ? lc->tok.claims.user_id : "unknown user";
	char when[64], in[32];
	size_t n;

	format_utc(lc->tok.expires_wall, when, sizeof(when));
	if (!lc->tok.sealed)
		snprintf(buf, size, "no token");
	else if (!token_valid(&lc->tok, now))
		snprintf(buf, size, "%s token for %s expired at %s", kind, user, when);
	else if (!lc->tok.expires_wall)
		snprintf(buf, size, "%s token for %s valid, no known expiry", kind, user);
	else
		snprintf(buf, size, "%s token for %s valid until %s", kind, user, when);
	n = strlen(buf);
	if (login_running(lc))
		snprintf(buf + n, size - n, "; logging in as %s",
				lc->slot[LC_SLOT_CANDIDATE].running && lc->candidate.username
						? lc->candidate.username
				: lc->id.username ? lc->id.username
						  : "?");
	else if (lc->last_error[0])
		snprintf(buf + n, size - n, "; %s", lc->last_error);
	else if (lc->id.mfa && token_valid(&lc->tok, now))
		snprintf(buf + n, size - n,
				"; an MFA login: run 'regscale-token login --mfa CODE' before "
				"then");
	else if (lc->sched != SCHED_NONE) {
		format_in(lc->sched_wall - now->wall, in, sizeof(in));
		snprintf(buf + n, size - n, ", refresh in %s", in);
	}
	return buf;
}
