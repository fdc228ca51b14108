/* SPDX-License-Identifier: MIT */
/* What clients see of the lifecycle: its state, the decision for a get, the status line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "daemon/lifecycle-internal.h"
#include "proto/proto.h"

const char *lc_kind(const struct token *t)
{
	return t->service ? PROTO_KIND_SERVICE : t->pasted ? PROTO_KIND_PASTED : PROTO_KIND_LOGIN;
}

enum proto_state lifecycle_state(const struct lifecycle *lc, const struct lc_time *now)
{
	bool valid = lc_token_valid(&lc->tok, now);

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
						    "'regscale-token login --mfa'"
				: lc->tok.pasted  ? "a pasted token cannot be renewed: paste a new "
						    "one "
						    "with 'regscale-token login --token'"
						  : "");
	} else if (lc_login_running(lc)) {
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
	valid = lc_token_valid(&lc->tok, now);
	remaining = lc_token_remaining(&lc->tok, now);
	if (valid && (min_valid <= 0 || remaining >= min_valid))
		return LC_GET_SERVE;

	if (min_valid <= 0) {
		/* First use: wait for the login of a start or reload, never start one. */
		if (may_wait && lc_login_running(lc))
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
	if (valid && lc->tok.pasted) {
		char iso[32];
		*ret_err = PROTO_E_TOKEN_EXPIRED;
		snprintf(msg, size,
				"the pasted token is valid for %llds only (until %s), less than "
				"min_valid, and the daemon cannot renew it: paste a new one with "
				"'regscale-token login --token'",
				(long long)remaining,
				proto_format_time(lc->tok.expires_wall, iso, sizeof(iso)));
		return LC_GET_FAIL;
	}
	if (valid && lc->id.mfa && !lc_login_running(lc)) {
		char iso[32];
		*ret_err = PROTO_E_LOGIN_REQUIRED;
		snprintf(msg, size,
				"the token is valid for %llds only (until %s), less than "
				"min_valid, and an MFA login is not renewed unattended",
				(long long)remaining,
				proto_format_time(lc->tok.expires_wall, iso, sizeof(iso)));
		return LC_GET_FAIL;
	}
	if (may_wait) {
		const char *reason;
		uint64_t ticket;

		if (lc_login_running(lc) ||
				(may_start && lifecycle_refresh(lc,
							      "a client needs a fresher token",
							      NULL, now, &ticket, &reason) >= 0)) {
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

ssize_t lifecycle_open_token_into(const struct lifecycle *lc, char *buf, size_t size)
{
	if (!lc->tok.sealed)
		return -ENOENT;
	return vault_open_into(lc->vault, lc->tok.sealed, buf, size);
}

void lifecycle_info(const struct lifecycle *lc, const struct lc_time *now, struct lc_info *ret)
{
	*ret = (struct lc_info){
			.state = lifecycle_state(lc, now),
			.origin = lc->id.origin,
			.has_token = lc->tok.sealed != NULL,
			.service = lc->tok.service,
			.kind = lc->tok.sealed ? lc_kind(&lc->tok) : NULL,
			.user_id = lc->tok.sealed ? lc->tok.claims.user_id : "",
			.username = lc->id.username ? lc->id.username
				    : lc->tok.sealed && lc->tok.claims.username[0]
						    ? lc->tok.claims.username
						    : NULL,
			.expires_at = lc->tok.sealed ? lc->tok.expires_wall : 0,
			.next_refresh = lc->sched != SCHED_NONE ? lc->sched_wall : 0,
			.last_refresh = lc->last_refresh,
			.last_error = lc->last_error,
			.retries = lc->retries,
			.login_in_flight = lc_login_running(lc),
			.needs_person = lc->id.mfa || lc->tok.pasted,
			.refresh_late = lc_refresh_late(lc, now),
	};
}

char *lc_user_label(const struct lifecycle *lc, char *buf, size_t size)
{
	/* A name means more to a person than a GUID: both when both are known. */
	const char *name = lc->id.username              ? lc->id.username
			   : lc->tok.claims.username[0] ? lc->tok.claims.username
							: NULL;
	const char *id = lc->tok.claims.user_id;

	if (name && id[0] && strcmp(name, id) != 0)
		snprintf(buf, size, "%s (%s)", name, id);
	else
		snprintf(buf, size, "%s", name ? name : id[0] ? id : "unknown user");
	return buf;
}

/* Every time in it is absolute (UTC), so the line stays true until the next event changes it:
 * a state change, or a warning point (lifecycle_warn()), which the wiring both sends. */
char *lifecycle_status_line(
		const struct lifecycle *lc, const struct lc_time *now, char *buf, size_t size)
{
	const char *kind = lc_kind(&lc->tok);
	char user[2 * JWT_MAX_USERNAME + JWT_MAX_USER_ID + 8];
	char when[32], at[32], left[32], action[512];
	bool valid = lc_token_valid(&lc->tok, now);
	int passed = -1;
	size_t n;

	lc_user_label(lc, user, sizeof(user));
	proto_format_time(lc->tok.expires_wall, when, sizeof(when));
	if (valid && lc->tok.expires_wall && lc_not_renewable(lc))
		passed = expiry_passed(&lc->warn, lc->tok.expires_wall, now->wall);
	if (!lc->tok.sealed)
		snprintf(buf, size, "no token");
	else if (!valid)
		snprintf(buf, size, "%s token for %s expired at %s", kind, user, when);
	else if (!lc->tok.expires_wall)
		snprintf(buf, size, "%s token for %s valid, no known expiry", kind, user);
	else if (passed >= 0)
		snprintf(buf, size, "%s token for %s valid until %s (under %s left)", kind, user,
				when,
				duration_format((int64_t)lc->warn.sec[passed], left, sizeof(left)));
	else
		snprintf(buf, size, "%s token for %s valid until %s", kind, user, when);
	n = strlen(buf);
	if (lc->slot[LC_SLOT_CANDIDATE].running && lc->candidate.origin == LC_ORIGIN_PASTED)
		snprintf(buf + n, size - n, "; RegScale is checking a pasted token");
	else if (lc_login_running(lc))
		snprintf(buf + n, size - n, "; logging in as %s",
				lc->slot[LC_SLOT_CANDIDATE].running && lc->candidate.username
						? lc->candidate.username
				: lc->id.username ? lc->id.username
						  : "?");
	else if (lc_refresh_late(lc, now))
		snprintf(buf + n, size - n, "; refresh late: %s",
				lc->last_error[0] ? lc->last_error : "the last login failed");
	else if (lc->last_error[0])
		snprintf(buf + n, size - n, "; %s", lc->last_error);
	else if (valid && (lc->id.mfa || lc->tok.pasted || passed >= 0))
		snprintf(buf + n, size - n, "; not renewed unattended: %s before then",
				lc_renew_action(lc, action, sizeof(action)));
	else if (lc->sched != SCHED_NONE)
		snprintf(buf + n, size - n, ", refresh at %s",
				proto_format_time(lc->sched_wall, at, sizeof(at)));
	return buf;
}
