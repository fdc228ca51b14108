#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/helper_proc.h"
#include "daemon/log.h"
#include "daemon/refresh.h"
#include "daemon/server.h"

#define BACKOFF_MIN_SEC 1
#define BACKOFF_MAX_SEC 300

/* Returns x scaled by a random factor in [1 - frac, 1 + frac]. */
static double jitter(double x, double frac)
{
	double u = (double)randombytes_uniform(100001) / 100000.0; /* [0, 1] */

	return x * (1.0 + frac * (2.0 * u - 1.0));
}

static int on_refresh_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct tokend *d = userdata;

	d->next_refresh = 0;
	(void)refresh_now(d, d->retries ? "retry" : "scheduled refresh");
	return 0;
}

static void unschedule(struct tokend *d)
{
	d->next_refresh = 0;
	if (d->refresh_timer)
		(void)sd_event_source_set_enabled(d->refresh_timer, SD_EVENT_OFF);
}

static void schedule(struct tokend *d, double delay_sec)
{
	uint64_t usec;
	int r;

	if (delay_sec < BACKOFF_MIN_SEC)
		delay_sec = BACKOFF_MIN_SEC;
	usec = (uint64_t)(delay_sec * 1e6);
	/* For display only, rounded up: the timer itself holds the exact time. */
	d->next_refresh = now_unix() + (int64_t)delay_sec + 1;
	/* CLOCK_BOOTTIME counts time suspended too, so a refresh due during a suspend
	 * runs at resume instead of a suspend's length too late. */
	if (!d->refresh_timer)
		r = sd_event_add_time_relative(d->event, &d->refresh_timer, CLOCK_BOOTTIME, usec,
				100 * 1000, on_refresh_timer, d);
	else if ((r = sd_event_source_set_time_relative(d->refresh_timer, usec)) >= 0)
		r = sd_event_source_set_enabled(d->refresh_timer, SD_EVENT_ONESHOT);
	if (r < 0) {
		log_error_errno(r, "cannot schedule the next login");
		d->next_refresh = 0;
	}
}

/* Returns the seconds the token lasts from now, counted the skew-proof way: a token that
 * says it was issued at iat and expires at exp lasts exp - iat from the moment it arrived,
 * whatever the difference between our clock and the server's. */
static int64_t token_lifetime(
		const struct tokend *d, const struct jwt_claims *c, int64_t expires_in)
{
	if (c->has_exp && c->has_iat)
		return c->exp - c->iat;
	if (c->has_exp)
		return c->exp - now_unix();
	if (expires_in > 0)
		return expires_in;
	return (int64_t)d->config.default_lifetime_sec;
}

static void login_succeeded(struct tokend *d, struct helper_result *res)
{
	char user[128];
	struct jwt_claims claims;
	const char *why = NULL;
	int64_t lifetime, now = now_unix();
	int r;

	r = jwt_parse(res->token->data, res->token->len, &claims, &why);
	if (r < 0) {
		res->outcome = HELPER_PROTOCOL;
		snprintf(res->message, sizeof(res->message),
				"server sent a token that is not a "
				"valid JWT: %s",
				why);
		return;
	}
	/* exp - iat from the moment of receipt protects against a server clock that is off;
	 * but a token whose exp has passed by our clock too would need the clocks to differ by
	 * more than its whole lifetime: it is a stale token, not skew. */
	if (claims.has_exp && claims.exp <= now) {
		res->outcome = HELPER_PROTOCOL;
		snprintf(res->message, sizeof(res->message),
				"server sent an already expired token "
				"(exp %llds ago)",
				(long long)(now - claims.exp));
		return;
	}
	lifetime = token_lifetime(d, &claims, res->expires_in);
	if (lifetime <= 0) {
		res->outcome = HELPER_PROTOCOL;
		snprintf(res->message, sizeof(res->message),
				"server sent an already expired token");
		return;
	}
	if (!claims.user_id[0])
		memcpy(claims.user_id, res->user_id, sizeof(claims.user_id));
	r = tokend_set_token(d, res->token->data, res->token->len, &claims, TOKEN_KIND_LOGIN,
			now + lifetime);
	if (r < 0) {
		res->outcome = HELPER_TRANSIENT;
		snprintf(res->message, sizeof(res->message),
				"cannot store the token: out of memory");
		return;
	}
	d->retries = 0;
	schedule(d, jitter((double)lifetime * 2.0 / 3.0, 0.1));
	log_info("logged in as \"%s\": token valid for %llds, next refresh in %llds",
			escape_log(d->username, user, sizeof(user)), (long long)lifetime,
			(long long)(d->next_refresh - now));
}

static void login_failed(struct tokend *d, const struct helper_result *res)
{
	char user[128];
	int64_t now = now_unix();
	double delay;

	if (res->outcome == HELPER_REJECTED) {
		d->credentials_rejected = true;
		unschedule(d);
		tokend_set_error(d,
				"credentials rejected by RegScale (%s); run 'regscale-token "
				"login' or fix the password and reload",
				res->message);
		log_error("login as \"%s\" rejected: %s; not retrying until new credentials arrive",
				escape_log(d->username, user, sizeof(user)), res->message);
		return;
	}
	if (res->outcome == HELPER_CONFIG) {
		unschedule(d);
		tokend_set_error(d, "login impossible: %s; fix the configuration and reload",
				res->message);
		log_error("login impossible: %s; not retrying until reloaded", res->message);
		return;
	}
	d->retries++;
	delay = BACKOFF_MIN_SEC * (double)(1ULL << (d->retries - 1 < 16 ? d->retries - 1 : 16));
	delay = jitter(delay < BACKOFF_MAX_SEC ? delay : BACKOFF_MAX_SEC, 0.2);
	if (res->retry_after > 0 && (double)res->retry_after > delay)
		delay = (double)(res->retry_after < BACKOFF_MAX_SEC ? res->retry_after
								    : BACKOFF_MAX_SEC);
	/* Never sleep past the end of the token still being served. */
	if (d->token && d->info.expires_at > now && (double)(d->info.expires_at - now) < delay)
		delay = (double)(d->info.expires_at - now);
	schedule(d, delay);
	tokend_set_error(d, "login failed: %s; retry %u in %llds", res->message, d->retries,
			(long long)(d->next_refresh - now));
	log_warning("login failed: %s; retry %u in %llds", res->message, d->retries,
			(long long)(d->next_refresh - now));
}

static void on_login_done(struct helper_result *res, void *userdata)
{
	struct tokend *d = userdata;

	explicit_bzero(d->mfa, sizeof(d->mfa)); /* a one-time code is good for one try */
	if (res->outcome == HELPER_OK && !res->token) {
		res->outcome = HELPER_PROTOCOL;
		snprintf(res->message, sizeof(res->message), "login helper sent no token");
	}
	if (res->outcome == HELPER_OK)
		login_succeeded(d, res); /* may turn it into a failure */
	if (res->outcome != HELPER_OK)
		login_failed(d, res);
	d->last_outcome = (int)res->outcome;
	d->login_done = true;
	tokend_update_status(d);
	if (d->server)
		server_wake_waiters(d->server);
}

int refresh_now(struct tokend *d, const char *why)
{
	_cleanup_(secret_freep) struct secret *password = NULL;
	struct helper_input req;
	char user[128];
	int r;

	if (d->login)
		return 1;
	if (!d->password || !d->username) {
		tokend_set_error(d, "no credentials: run 'regscale-token login'");
		return 0;
	}
	if (d->credentials_rejected)
		return 0;
	r = vault_open(d->vault, d->password, &password);
	if (r < 0)
		return log_error_errno(r, "cannot decrypt the stored password");
	req = (struct helper_input){
			.mode = HELPER_MODE_LOGIN,
			.config = &d->config,
			.username = d->username,
			.password = password,
			.mfa = d->mfa,
	};
	unschedule(d);
	r = helper_start(d->event, d->login_helper, &req, on_login_done, d, &d->login);
	if (r < 0) {
		struct helper_result res = {.outcome = HELPER_TRANSIENT, .retry_after = -1};
		snprintf(res.message, sizeof(res.message), "cannot start the login helper: %s",
				strerror(-r));
		login_failed(d, &res);
		return r;
	}
	log_info("logging in to %s as \"%s\" (%s)", d->config.url ? d->config.url : "?",
			escape_log(d->username, user, sizeof(user)), why);
	tokend_update_status(d);
	return 1;
}

static int set_username(struct tokend *d, const char *username)
{
	char *u = strdup(username);

	if (!u)
		return -ENOMEM;
	free(d->username);
	d->username = u;
	return 0;
}

/* Seals password[0..len) as the one to log in with; new credentials deserve a fresh start:
 * no rejection, no backoff. Returns 0 or -ENOMEM. */
static int store_password(struct tokend *d, const char *password, size_t len)
{
	struct sealed *sealed = NULL;
	int r;

	r = vault_seal(d->vault, password, len, &sealed);
	if (r < 0)
		return r;
	sealed_free(d->password);
	d->password = sealed;
	d->credentials_rejected = false;
	d->retries = 0;
	return 0;
}

int refresh_set_credentials(struct tokend *d, const char *username, const char *password,
		size_t len, const char *mfa)
{
	int r;

	r = set_username(d, username);
	if (r < 0)
		return r;
	r = store_password(d, password, len);
	if (r < 0)
		return r;
	snprintf(d->mfa, sizeof(d->mfa), "%s", mfa ? mfa : "");
	d->login_done = false;
	d->login = helper_free(d->login); /* the new credentials win over a login in flight */
	r = refresh_now(d, "new credentials");
	return r < 0 ? r : 0;
}

void refresh_logout(struct tokend *d)
{
	d->login = helper_free(d->login);
	d->validation = helper_free(d->validation);
	unschedule(d);
	tokend_clear_token(d);
	d->password = sealed_free(d->password);
	explicit_bzero(d->mfa, sizeof(d->mfa));
	d->credentials_rejected = false;
	d->retries = 0;
	d->login_done = false;
	tokend_set_error(d, NULL);
	log_info("logged out: token and credentials wiped");
	if (d->server)
		server_wake_waiters(d->server);
}

void refresh_check_due(struct tokend *d)
{
	uint64_t due, now;
	int enabled = 0;

	if (d->login || !d->refresh_timer ||
			sd_event_source_get_enabled(d->refresh_timer, &enabled) < 0 || !enabled ||
			sd_event_source_get_time(d->refresh_timer, &due) < 0 ||
			sd_event_now(d->event, CLOCK_BOOTTIME, &now) < 0)
		return;
	/* Exact, on the timer's own clock: a client polling get must not pull a refresh or a
	 * retry earlier than scheduled (Retry-After, backoff). */
	if (now >= due)
		(void)refresh_now(d, "refresh overdue");
}

/* Returns 1 and the password from password_file or the credential "password", 0 when
 * neither is configured, or -errno (logged). */
static int read_password(struct tokend *d, struct secret **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_(freep) char *path = NULL;
	int r;

	if (d->config.password_file)
		path = strdup(d->config.password_file);
	else if (creds && creds[0] == '/') {
		if (asprintf(&path, "%s/password", creds) < 0)
			return -ENOMEM;
		if (access(path, F_OK) < 0)
			return 0;
	} else
		return 0;
	if (!path)
		return -ENOMEM;
	r = secret_read_file(path, 4096, ret);
	if (r < 0) {
		tokend_set_error(d, "cannot read the password from %s: %s", path,
				r == -ENODATA ? "file is empty" : strerror(-r));
		log_error("%s", d->last_error);
		return r;
	}
	return 1;
}

int refresh_setup(struct tokend *d)
{
	_cleanup_(secret_freep) struct secret *password = NULL, *old = NULL;
	bool changed = true;
	int r;

	if (d->config.username) {
		r = set_username(d, d->config.username);
		if (r < 0)
			return r;
	}
	r = read_password(d, &password);
	if (r < 0)
		return r;
	if (r > 0) {
		if (d->password && vault_open(d->vault, d->password, &old) >= 0)
			changed = old->len != password->len ||
				  sodium_memcmp(old->data, password->data, password->len) != 0;
		if (changed) {
			r = store_password(d, password->data, password->len);
			if (r < 0)
				return r;
		}
	}
	if (!d->username || !d->password) {
		if (!d->token)
			tokend_set_error(d, "no credentials: run 'regscale-token login'");
		return 0;
	}
	if (d->credentials_rejected) {
		log_notice("the password is unchanged and was rejected; not logging in again");
		return 0;
	}
	/* A reload with a good token and nothing changed keeps the schedule. */
	if (!changed && tokend_token_state(d, now_unix()) == TOKEN_STATE_VALID && d->next_refresh)
		return 0;
	return refresh_now(d, changed ? "credentials loaded" : "reload") < 0 ? -EIO : 0;
}

static void on_validate_done(struct helper_result *res, void *userdata)
{
	struct tokend *d = userdata;

	if (res->outcome == HELPER_OK) {
		log_info("RegScale confirmed the service token is valid");
		return;
	}
	if (res->outcome != HELPER_REJECTED) {
		log_notice("could not check the service token with RegScale (%s); serving it",
				res->message);
		return;
	}
	log_error("RegScale rejected the service token (%s); not serving it", res->message);
	tokend_clear_token(d);
	tokend_set_error(d, "RegScale rejected the service token (%s)", res->message);
}

void refresh_validate_service_token(struct tokend *d)
{
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct helper_input req;
	int r;

	d->validation = helper_free(d->validation);
	if (!d->token || !d->config.url)
		return;
	r = vault_open(d->vault, d->token, &token);
	if (r < 0)
		return;
	req = (struct helper_input){
			.mode = HELPER_MODE_VALIDATE,
			.config = &d->config,
			.token = token,
	};
	r = helper_start(d->event, d->login_helper, &req, on_validate_done, d, &d->validation);
	if (r < 0)
		log_notice("cannot check the service token with RegScale: %s", strerror(-r));
}

enum proto_state refresh_state(const struct tokend *d)
{
	enum token_state t = tokend_token_state(d, now_unix());

	if (d->credentials_rejected)
		return PROTO_STATE_CREDENTIALS_REJECTED;
	if (d->login)
		return t == TOKEN_STATE_VALID ? PROTO_STATE_REFRESHING : PROTO_STATE_LOGGING_IN;
	if (d->retries > 0 && d->next_refresh)
		return PROTO_STATE_RETRYING;
	switch (t) {
	case TOKEN_STATE_VALID:
		return PROTO_STATE_VALID;
	case TOKEN_STATE_EXPIRED:
		return PROTO_STATE_EXPIRED;
	case TOKEN_STATE_NONE:
		break;
	}
	return PROTO_STATE_NO_TOKEN;
}
