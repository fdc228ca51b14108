#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "daemon/access.h"
#include "daemon/helper_proc.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/source.h"
#include "daemon/tokend.h"
#include "proto/proto.h"

int64_t now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t now_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

const char *token_kind_name(enum token_kind k)
{
	return k == TOKEN_KIND_LOGIN ? PROTO_KIND_LOGIN : PROTO_KIND_SERVICE;
}

int tokend_new(sd_event *e, struct tokend **ret)
{
	struct tokend *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->event = sd_event_ref(e);
	config_init(&d->config);
	d->started_usec = now_monotonic_usec();

	r = vault_new(&d->vault);
	if (r < 0)
		goto fail;
	d->reply_buf = secret_new(PROTO_MAX_LINE + PROTO_MAX_TOKEN + 1);
	d->request_secret = secret_new(PROTO_MAX_LINE);
	if (!d->reply_buf || !d->request_secret) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	tokend_free(d);
	return r;
}

struct tokend *tokend_free(struct tokend *d)
{
	if (!d)
		return NULL;
	d->server = server_free(d->server);
	d->source = source_free(d->source);
	d->access = access_free(d->access);
	d->login = helper_free(d->login);
	d->validation = helper_free(d->validation);
	d->refresh_timer = sd_event_source_disable_unref(d->refresh_timer);
	tokend_clear_token(d);
	d->password = sealed_free(d->password);
	free(d->username);
	explicit_bzero(d->mfa, sizeof(d->mfa));
	d->request_secret = secret_free(d->request_secret);
	d->reply_buf = secret_free(d->reply_buf);
	d->vault = vault_free(d->vault);
	config_done(&d->config);
	sd_event_unref(d->event);
	free(d);
	return NULL;
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct tokend *d = userdata;
	char user[JWT_MAX_USER_ID * 2];

	log_warning("token for user \"%s\" expired; get answers token_expired until a new one "
		    "arrives",
			escape_log(d->info.claims.user_id, user, sizeof(user)));
	tokend_update_status(d);
	return 0;
}

static int arm_expiry_timer(struct tokend *d)
{
	uint64_t usec;

	d->expiry_timer = sd_event_source_disable_unref(d->expiry_timer);
	if (!d->token || !d->info.expires_at || d->info.expires_at <= now_unix())
		return 0;
	usec = (uint64_t)d->info.expires_at * 1000000ULL;
	/* CLOCK_REALTIME: exp is wall-clock time, and the timer follows clock changes. */
	return sd_event_add_time(d->event, &d->expiry_timer, CLOCK_REALTIME, usec, 0, on_expiry, d);
}

int tokend_set_token(struct tokend *d, const char *token, size_t len,
		const struct jwt_claims *claims, enum token_kind kind, int64_t expires_at)
{
	struct sealed *sealed = NULL;
	int r;

	r = vault_seal(d->vault, token, len, &sealed);
	if (r < 0)
		return r;
	sealed_free(d->token);
	d->token = sealed;
	d->info = (struct token_info){
			.kind = kind,
			.claims = *claims,
			.received_at = now_unix(),
			.expires_at = expires_at,
	};
	d->last_refresh = d->info.received_at;
	d->last_error[0] = '\0';
	r = arm_expiry_timer(d);
	if (r < 0)
		log_warning_errno(r, "cannot arm the expiry timer");
	tokend_update_status(d);
	return 0;
}

void tokend_clear_token(struct tokend *d)
{
	d->expiry_timer = sd_event_source_disable_unref(d->expiry_timer);
	d->token = sealed_free(d->token);
	memset(&d->info, 0, sizeof(d->info));
}

enum token_state tokend_token_state(const struct tokend *d, int64_t now)
{
	if (!d->token)
		return TOKEN_STATE_NONE;
	if (d->info.expires_at && d->info.expires_at <= now)
		return TOKEN_STATE_EXPIRED;
	return TOKEN_STATE_VALID;
}

void tokend_set_error(struct tokend *d, const char *fmt, ...)
{
	va_list ap;

	d->last_error[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
		va_end(ap);
	}
	tokend_update_status(d);
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

char *tokend_status_line(const struct tokend *d, char *buf, size_t size)
{
	char when[64], in[32];
	const char *user = d->info.claims.user_id[0] ? d->info.claims.user_id : "unknown user";
	int64_t now = now_unix();
	size_t n;

	switch (tokend_token_state(d, now)) {
	case TOKEN_STATE_VALID:
		if (!d->info.expires_at)
			snprintf(buf, size, "%s token for %s valid, no known expiry",
					token_kind_name(d->info.kind), user);
		else {
			format_utc(d->info.expires_at, when, sizeof(when));
			snprintf(buf, size, "%s token for %s valid until %s",
					token_kind_name(d->info.kind), user, when);
		}
		break;
	case TOKEN_STATE_EXPIRED:
		format_utc(d->info.expires_at, when, sizeof(when));
		snprintf(buf, size, "%s token for %s expired at %s", token_kind_name(d->info.kind),
				user, when);
		break;
	case TOKEN_STATE_NONE:
		snprintf(buf, size, "no token");
		break;
	}
	n = strlen(buf);
	if (d->login)
		snprintf(buf + n, size - n, "; logging in as %s", d->username ? d->username : "?");
	else if (d->last_error[0])
		snprintf(buf + n, size - n, "; %s", d->last_error);
	else if (d->next_refresh) {
		format_in(d->next_refresh - now, in, sizeof(in));
		snprintf(buf + n, size - n, ", refresh in %s", in);
	}
	return buf;
}

void tokend_update_status(struct tokend *d)
{
	char line[sizeof(d->status)];

	tokend_status_line(d, line, sizeof(line));
	/* One line: a newline would let a name smuggle other assignments into sd_notify. */
	escape_controls(line);
	if (strcmp(line, d->status) == 0)
		return;
	memcpy(d->status, line, sizeof(line));
	(void)sd_notifyf(0, "STATUS=%s", line);
}
