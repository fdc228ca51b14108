/* SPDX-License-Identifier: MIT */
/* Where the lifecycle's identity comes from and goes: the configuration, a service token, a
 * client's login, a refresh, a logout. See lifecycle.h and LIFECYCLE.md. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/util.h"
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
		(void)lc_start_identity_login(lc, "reload", NULL, now);
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
	r = lc_start_identity_login(lc, "credentials loaded", NULL, now);
	lc_changed(lc);
	return r < 0 ? r : 1;
}

/* A token given to the daemon (a service token, a pasted one) rather than got by its own
 * login: it ends at its exp, counted from now on the clock that never jumps, too. */
static struct token given_token(
		struct sealed *sealed, const struct jwt_claims *claims, const struct lc_time *now)
{
	return (struct token){
			.sealed = sealed,
			.claims = *claims,
			.start_boot = now->boot,
			.end_boot = claims->has_exp ? lc_boot_at_wall(claims->exp, now) : NEVER,
			.has_end_wall = claims->has_exp,
			.end_wall = claims->exp,
	};
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
	lc->tok = given_token(sealed, &claims, now);
	lc->tok.service = true;
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

int lifecycle_refresh(struct lifecycle *lc, const char *why, const char *mfa,
		const struct lc_time *now, uint64_t *ret_ticket, const char **ret_reason)
{
	int r;

	if (lc->id.origin == LC_ORIGIN_SERVICE) {
		*ret_reason = "a service token is not renewed by a login";
		return -EOPNOTSUPP;
	}
	if (lc->id.origin == LC_ORIGIN_PASTED) {
		*ret_reason = "a pasted token cannot be renewed by the daemon: paste a new one "
			      "with "
			      "'regscale-token login --token'";
		return -EPERM;
	}
	if (!lc->slot[LC_SLOT_IDENTITY].running) {
		if (!lc->id.username || !lc->id.password) {
			*ret_reason = "no credentials: run 'regscale-token login'";
			return -ENOKEY;
		}
		if (lc->rejected && lc->mfa_asked && !mfa) {
			*ret_reason = lc->last_error;
			return -EPERM; /* a person with a code can: login_required */
		}
		if (lc->rejected && !lc->mfa_asked) {
			*ret_reason = lc->last_error;
			return -EKEYREJECTED;
		}
		if (lc->mfa_asked) {
			lc->rejected = lc->mfa_asked = false;
			lc->id.mfa = true;
		}
		if (lc->id.mfa && !mfa) {
			*ret_reason = "this account logs in with an MFA code, which the daemon "
				      "does not keep: refresh with a fresh code";
			return -EPERM;
		}
		lc->impossible = false;
		r = lc_start_identity_login(lc, why, lc->id.mfa ? mfa : NULL, now);
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

/* Makes the pasted token (lc->pasted) and its candidate identity the ones served. */
static void adopt_pasted(struct lifecycle *lc, const struct lc_time *now)
{
	char user[JWT_MAX_USER_ID * 2];

	lc_cancel(lc, LC_SLOT_IDENTITY, "superseded by a pasted token");
	lc_identity_clear(&lc->id);
	lc->id = lc->candidate;
	lc->candidate = (struct identity){0};
	lc_reset_failures(lc);
	lc->last_error[0] = '\0';
	lc_token_clear(&lc->tok);
	lc->tok = lc->pasted;
	lc->pasted = (struct token){0};
	lc_measure_expiry(&lc->tok, now);
	lc->last_refresh = now->wall;
	log_info("serving a pasted token for user \"%s\": valid for %llds, not renewable (a "
		 "person pastes the next one)",
			escape_log(lc->tok.claims.user_id, user, sizeof(user)),
			(long long)lc_token_remaining(&lc->tok, now));
}

int lifecycle_paste(struct lifecycle *lc, const char *token, size_t len, bool check,
		const struct lc_time *now, uint64_t *ret_ticket, const char **ret_reason)
{
	_cleanup_(secret_freep) struct secret *copy = NULL;
	struct slot *s = &lc->slot[LC_SLOT_CANDIDATE];
	struct jwt_claims claims;
	struct sealed *sealed = NULL;
	int r;

	if (lc->id.origin == LC_ORIGIN_SERVICE) {
		*ret_reason = "this daemon serves a service token; remove token_file to use "
			      "another token";
		return -EOPNOTSUPP;
	}
	if (s->running) {
		*ret_reason = "another login is in progress; try again when it is done";
		return -EBUSY;
	}
	if (jwt_parse(token, len, &claims, ret_reason) < 0)
		return -EINVAL;
	if (claims.has_exp && claims.exp <= now->wall) {
		*ret_reason = "the token has expired: copy a fresh one from RegScale";
		return -EINVAL;
	}
	r = vault_seal(lc->vault, token, len, &sealed);
	if (r < 0) {
		*ret_reason = "out of memory";
		return r;
	}
	lc_identity_clear(&lc->candidate);
	lc_token_clear(&lc->pasted);
	lc->candidate.origin = LC_ORIGIN_PASTED;
	lc->candidate.url = lc->id.url ? strdup(lc->id.url) : NULL;
	lc->pasted = given_token(sealed, &claims, now);
	lc->pasted.pasted = true;
	if (!check) {
		s->gen++;
		adopt_pasted(lc, now);
		lc_slot_finish(s, PROTO_OK, "token accepted");
		*ret_ticket = lc_ticket_of(LC_SLOT_CANDIDATE, s->gen);
		lc_changed(lc);
		return 0;
	}
	r = vault_open(lc->vault, sealed, &copy);
	if (r < 0) {
		*ret_reason = "cannot decrypt the token";
		goto fail;
	}
	*ret_reason = NULL;
	r = lc->hooks.start_check(lc->hooks.userdata, LC_SLOT_CANDIDATE, copy, ret_reason);
	if (r < 0) {
		if (!*ret_reason)
			*ret_reason = "cannot start the login helper";
		goto fail;
	}
	lc_slot_started(s, false, now);
	*ret_ticket = lc_ticket_of(LC_SLOT_CANDIDATE, s->gen);
	lc_changed(lc);
	return 0;
fail:
	lc_identity_clear(&lc->candidate);
	lc_token_clear(&lc->pasted);
	return r;
}

void lc_paste_done(
		struct lifecycle *lc, const struct lc_login_result *res, const struct lc_time *now)
{
	struct slot *s = &lc->slot[LC_SLOT_CANDIDATE];
	const char *msg = res->message && res->message[0] ? res->message : "no answer";

	if (res->outcome == HELPER_OK && !lc_token_valid(&lc->pasted, now)) {
		lc_slot_finish(s, PROTO_E_TOKEN_EXPIRED,
				"the token expired while RegScale checked it; nothing changed");
	} else if (res->outcome == HELPER_OK) {
		adopt_pasted(lc, now);
		lc_slot_finish(s, PROTO_OK, "token accepted");
		return;
	} else if (res->outcome == HELPER_REJECTED) {
		log_warning("RegScale rejected a pasted token (%s); keeping what was held", msg);
		lc_slot_finish(s, PROTO_E_CREDENTIALS_REJECTED,
				"RegScale rejected the token (%s); nothing changed", msg);
	} else {
		log_warning("could not check a pasted token with RegScale (%s); keeping what was "
			    "held",
				msg);
		lc_slot_finish(s, PROTO_E_LOGIN_FAILED,
				"could not check the token with RegScale (%s); nothing changed",
				msg);
	}
	lc_identity_clear(&lc->candidate);
	lc_token_clear(&lc->pasted);
}
