/* SPDX-License-Identifier: MIT */
/* Warnings before a token runs out, see lifecycle.h (lifecycle_warn()) and LIFECYCLE.md
 * "Expiry warnings"; the arithmetic is daemon/expiry.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/escape.h"
#include "daemon/lifecycle-internal.h"
#include "daemon/log.h"
#include "proto/proto.h"

int lifecycle_set_warnings(
		struct lifecycle *lc, const struct expiry_points *p, const char *service_action)
{
	char *action = NULL;

	if (service_action && !(action = strdup(service_action)))
		return -ENOMEM;
	free(lc->service_action);
	lc->service_action = action;
	/* Other points: the count of those handled means nothing for them. */
	if (lc->warn.n != p->n || memcmp(lc->warn.sec, p->sec, p->n * sizeof(p->sec[0])) != 0)
		lc->tok.warned = 0;
	lc->warn = *p;
	return 0;
}

bool lc_not_renewable(const struct lifecycle *lc)
{
	return lc->tok.service || lc->tok.pasted || lc->id.mfa;
}

/* The unix second from which the login token held has at most a third of its life left. */
static int64_t late_at(const struct lifecycle *lc)
{
	const struct token *t = &lc->tok;
	int64_t life = (int64_t)((t->end_boot - t->start_boot) / USEC);

	return expiry_late_at(t->expires_wall - life, t->expires_wall);
}

/* Whether a late refresh of the token held is possible at all: a login token with a known
 * end whose last login failed. */
static bool may_be_late(const struct lifecycle *lc, const struct lc_time *now)
{
	return !lc_not_renewable(lc) && lc->failed && lc->tok.end_boot != NEVER &&
	       lc->tok.expires_wall > 0 && lc_token_valid(&lc->tok, now);
}

bool lc_refresh_late(const struct lifecycle *lc, const struct lc_time *now)
{
	return may_be_late(lc, now) && now->wall >= late_at(lc);
}

char *lc_renew_action(const struct lifecycle *lc, char *buf, size_t size)
{
	if (lc->tok.service)
		snprintf(buf, size, "%s",
				lc->service_action ? lc->service_action
						   : "put a new service token in place");
	else if (lc->tok.pasted)
		snprintf(buf, size, "paste a new one with 'regscale-token login --token'");
	else if (lc->id.mfa)
		snprintf(buf, size, "run 'regscale-token refresh' (it asks for an MFA code)");
	else
		snprintf(buf, size,
				"check that RegScale is reachable, or run 'regscale-token "
				"login'");
	return buf;
}

int64_t lifecycle_warn(struct lifecycle *lc, const struct lc_time *now)
{
	struct token *t = &lc->tok;
	char label[2 * JWT_MAX_USERNAME + JWT_MAX_USER_ID + 8], user[4 * sizeof(label)];
	char action[512], left[32], iso[32];
	const char *kind = lc_kind(t);
	int i;

	if (!t->sealed || t->expires_wall <= 0)
		return 0;
	escape_log(lc_user_label(lc, label, sizeof(label)), user, sizeof(user));
	if (lc_not_renewable(lc)) {
		i = expiry_due(&lc->warn, t->expires_wall, now->wall, &t->warned);
		if (i >= 0)
			log_warning("%s token for %s expires in %s (at %s): %s", kind, user,
					duration_format(t->expires_wall - now->wall, left,
							sizeof(left)),
					proto_format_time(t->expires_wall, iso, sizeof(iso)),
					lc_renew_action(lc, action, sizeof(action)));
		return expiry_next(&lc->warn, t->expires_wall, t->warned);
	}
	if (t->late_noted || !may_be_late(lc, now))
		return 0;
	if (now->wall < late_at(lc))
		return late_at(lc);
	t->late_noted = true;
	log_warning("%s token for %s expires in %s (at %s) and its refresh is late (%s): %s", kind,
			user, duration_format(t->expires_wall - now->wall, left, sizeof(left)),
			proto_format_time(t->expires_wall, iso, sizeof(iso)),
			lc->last_error[0] ? lc->last_error : "the last login failed",
			lc_renew_action(lc, action, sizeof(action)));
	return 0;
}
