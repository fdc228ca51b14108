/* Where the lifecycle's identity comes from and goes: the configuration, a service token, a
 * client's login, a refresh, a logout. See lifecycle.h and LIFECYCLE.md. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/lifecycle-internal.h"
#include "daemon/log.h"

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
	lc_cancel(lc, LC_SLOT_IDENTITY, "the identity changed");
	lc_cancel(lc, LC_SLOT_CANDIDATE, "the identity changed");
	lc_identity_clear(&lc->id);
	lc_token_clear(&lc->tok);
	lc_reset_failures(lc);
	lc->last_error[0] = '\0';
}

void lifecycle_reloaded(struct lifecycle *lc, const struct lc_time *now)
{
	if (lc->impossible) {
		lc->impossible = false;
		(void)lc_start_identity_login(lc, "reload", now);
	} else if (!lc->rejected && lc->sched != SCHED_RETRY && lc->id.origin != LC_ORIGIN_NONE)
		lc->last_error[0] = '\0'; /* the problem it described (a file, a login) is gone */
	lc_changed(lc);
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
		if (lc->id.origin == LC_ORIGIN_CONFIG || lc->id.origin == LC_ORIGIN_SERVICE)
			forget_all(lc);
		if (lc->id.origin == LC_ORIGIN_NONE && !lc->last_error[0]) {
			snprintf(lc->last_error, sizeof(lc->last_error),
					"no credentials: run 'regscale-token login'");
			lc_changed(lc);
		}
		return 0;
	}

	r = lc_identity_set(lc, &id, username, password->data, password->len, url);
	if (r < 0)
		return r;
	same_account = lc->id.origin != LC_ORIGIN_SERVICE && same_str(lc->id.username, username) &&
		       same_str(lc->id.url, url);
	if (same_account) {
		/* A new password for the account: the token stays until the login replaces it. */
		lc_cancel(lc, LC_SLOT_IDENTITY, "the credentials changed");
		lc_identity_clear(&lc->id);
		lc_reset_failures(lc);
	} else
		forget_all(lc); /* another account or server: its token must not be served */
	lc->id = id;
	r = lc_start_identity_login(lc, "credentials loaded", now);
	lc_changed(lc);
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
			.end_boot = claims.has_exp ? lc_boot_at_wall(claims.exp, now) : NEVER,
			.has_end_wall = claims.has_exp,
			.end_wall = claims.exp,
	};
	lc_measure_expiry(&lc->tok, now);
	lc->tok.expiry_noted = !lc_token_valid(&lc->tok, now);
	lc->last_refresh = now->wall;
	lc_changed(lc);
	return 0;
}

void lifecycle_service_rejected(struct lifecycle *lc, const char *message)
{
	if (lc->id.origin != LC_ORIGIN_SERVICE)
		return;
	lc_token_clear(&lc->tok);
	lc->rejected = true;
	snprintf(lc->last_error, sizeof(lc->last_error), "RegScale rejected the service token (%s)",
			message);
	lc_changed(lc);
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
	id.mfa = mfa && mfa[0];
	r = lc_identity_set(lc, &id, username, password, len, lc->id.url);
	if (r < 0) {
		*ret_reason = "out of memory";
		return r;
	}
	lc_identity_clear(&lc->candidate);
	lc->candidate = id;
	r = lc_start(lc, LC_SLOT_CANDIDATE, &lc->candidate, id.mfa ? mfa : NULL, now, ret_reason);
	if (r < 0) {
		lc_identity_clear(&lc->candidate);
		return r;
	}
	*ret_ticket = lc_ticket_of(LC_SLOT_CANDIDATE, lc->slot[LC_SLOT_CANDIDATE].gen);
	lc_changed(lc);
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
			*ret_reason = "this account logs in with an MFA code, which the daemon "
				      "does "
				      "not keep: it cannot renew the token itself";
			return -EPERM;
		}
		lc->impossible = false;
		r = lc_start_identity_login(lc, why, now);
		lc_changed(lc);
		if (r < 0) {
			*ret_reason = lc->last_error;
			return r;
		}
	}
	*ret_ticket = lc_ticket_of(LC_SLOT_IDENTITY, lc->slot[LC_SLOT_IDENTITY].gen);
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
	lc_changed(lc);
}
