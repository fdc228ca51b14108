/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/bearer.h"
#include "common/jwt.h"
#include "common/util.h"
#include "daemon/helper_proc.h"
#include "daemon/log.h"
#include "daemon/source.h"
#include "proto/proto.h"

struct source {
	sd_event *event;
	const struct config *config;
	struct lifecycle *lc;
	const char *helper_path;
	struct helper_proc *validation; /* validateToken in flight, NULL when none */
	/* Starts the validation in the loop's next iteration: never before READY=1, and never
	 * inside source_load() (start-up, a reload, a file change all just mark it). */
	sd_event_source *validate_soon;
	char *path;
	bool private; /* token_file: must be the daemon's alone (not so a credential) */
	char *dir;    /* directory watched */
	char *name;   /* file name inside dir */
	sd_event_source *inotify;
};

int source_new(sd_event *e, const struct config *c, struct lifecycle *lc, const char *helper_path,
		struct source **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_(freep) char *cred_path = NULL;
	struct source *s;
	char *slash;

	if (!c->token_file) {
		if (!creds || creds[0] != '/' || asprintf(&cred_path, "%s/token", creds) < 0)
			return -ENOENT;
		if (access(cred_path, F_OK) < 0)
			return -ENOENT;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->config = c;
	s->lc = lc;
	s->helper_path = helper_path;
	s->path = strdup(c->token_file ? c->token_file : cred_path);
	s->private = c->token_file != NULL;
	if (!s->path)
		goto oom;
	slash = strrchr(s->path, '/');
	if (slash && slash != s->path)
		s->dir = strndup(s->path, (size_t)(slash - s->path));
	else
		s->dir = strdup(slash ? "/" : ".");
	s->name = strdup(slash ? slash + 1 : s->path);
	if (!s->dir || !s->name)
		goto oom;
	*ret = s;
	return 0;
oom:
	source_free(s);
	return -ENOMEM;
}

struct source *source_free(struct source *s)
{
	if (!s)
		return NULL;
	sd_event_source_disable_unref(s->inotify);
	sd_event_source_disable_unref(s->validate_soon);
	helper_free(s->validation);
	sd_event_unref(s->event);
	free(s->path);
	free(s->dir);
	free(s->name);
	free(s);
	return NULL;
}

const char *source_path(const struct source *s)
{
	return s->path;
}

static void on_validate_done(struct helper_result *res, void *userdata)
{
	struct source *s = userdata;

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
	lifecycle_service_rejected(s->lc, res->message);
}

/* Asks RegScale whether the token held now is good, in the background. */
static int on_validate_soon(sd_event_source *es, void *userdata)
{
	struct source *s = userdata;
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct helper_input req = {
			.mode = HELPER_MODE_VALIDATE,
			.config = s->config,
	};
	int r;

	(void)sd_event_source_set_enabled(es, SD_EVENT_OFF);
	r = lifecycle_open_token(s->lc, &token);
	if (r < 0)
		return 0; /* dropped since (logout, an expired successor): nothing to check */
	req.token = token;
	r = helper_start(s->event, s->helper_path, &req, on_validate_done, s, &s->validation);
	if (r < 0)
		log_notice("cannot check the service token with RegScale: %s", strerror(-r));
	return 0;
}

/* Marks the token just loaded for a check with RegScale, started by on_validate_soon(). */
static void validate(struct source *s)
{
	int r = 0;

	s->validation = helper_free(s->validation);
	if (!s->validate_soon)
		r = sd_event_add_defer(s->event, &s->validate_soon, on_validate_soon, s);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->validate_soon, SD_EVENT_ONESHOT);
	if (r < 0)
		log_notice("cannot check the service token with RegScale: %s", strerror(-r));
}

bool source_checking(const struct source *s)
{
	int enabled = SD_EVENT_OFF;

	if (s->validation)
		return true;
	return s->validate_soon && sd_event_source_get_enabled(s->validate_soon, &enabled) >= 0 &&
	       enabled != SD_EVENT_OFF;
}

int source_load(struct source *s)
{
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct jwt_claims claims;
	struct lc_time now;
	const char *why = NULL;
	char user[JWT_MAX_USER_ID * 2];
	char reason[2048];
	struct lc_info info;
	const char *jwt;
	size_t off, len;
	int r;

	lifecycle_info(s->lc, &(struct lc_time){0}, &info);
	if (s->private)
		r = secret_read_private_file(
				s->path, PROTO_MAX_TOKEN + 64, &token, reason, sizeof(reason));
	else
		r = secret_read_file(s->path, PROTO_MAX_TOKEN + 64, &token);
	if (r == -EPERM && s->private && reason[0]) {
		lifecycle_set_error(s->lc, "token file %s", reason);
		log_error("token file %s%s", reason,
				info.has_token ? "; keeping the current token" : "");
		return r;
	}
	if (r < 0) {
		lifecycle_set_error(s->lc, "cannot read token file %s: %s", s->path,
				r == -EFBIG     ? "larger than a JWT can be"
				: r == -ENODATA ? "file is empty"
						: strerror(-r));
		log_error("cannot read token file %s: %s%s", s->path,
				r == -EFBIG     ? "larger than a JWT can be"
				: r == -ENODATA ? "file is empty"
						: strerror(-r),
				info.has_token ? "; keeping the current token" : "");
		return r;
	}
	lc_time_now(&now);
	/* "Bearer <jwt>", as RegScale's pages and regscale-cli's init.yaml show it, is fine. */
	bearer_strip(token->data, token->len, &off, &len);
	jwt = token->data + off;
	r = lifecycle_set_service_token(s->lc, jwt, len, &now, &why);
	if (r < 0) {
		lifecycle_set_error(
				s->lc, "token file %s does not hold a valid JWT: %s", s->path, why);
		log_error("token file %s does not hold a valid JWT: %s%s", s->path, why,
				info.has_token ? "; keeping the current token" : "");
		return r;
	}
	(void)jwt_parse(jwt, len, &claims, &why);
	if (!claims.has_exp)
		log_notice("loaded service token for user \"%s\" from %s; it has no exp claim, so "
			   "no known expiry",
				escape_log(claims.user_id, user, sizeof(user)), s->path);
	else if (claims.exp <= now.wall) {
		/* Served never, so not worth a question to RegScale either. */
		log_warning("loaded service token for user \"%s\" from %s, but it expired %lld s "
			    "ago",
				escape_log(claims.user_id, user, sizeof(user)), s->path,
				(long long)(now.wall - claims.exp));
		return 0;
	} else
		log_info("loaded service token for user \"%s\" from %s, valid for %lld s",
				escape_log(claims.user_id, user, sizeof(user)), s->path,
				(long long)(claims.exp - now.wall));
	if (s->config->url)
		validate(s);
	return 0;
}

static int on_inotify(sd_event_source *es, const struct inotify_event *ev, void *userdata)
{
	struct source *s = userdata;

	if (ev->len == 0 || strcmp(ev->name, s->name) != 0)
		return 0;
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
		/* Keep serving what we hold: a rotation may remove before it renames. */
		log_notice("token file %s was removed; keeping the current token", s->path);
		return 0;
	}
	log_info("token file %s changed, reloading", s->path);
	(void)source_load(s);
	return 0;
}

int source_watch(struct source *s)
{
	int r;

	s->inotify = sd_event_source_disable_unref(s->inotify);
	/* IN_CLOSE_WRITE rather than IN_MODIFY: a writer's half-written file is never read.
	 * IN_MOVED_TO catches the atomic rename most rotation tools do. */
	r = sd_event_add_inotify(s->event, &s->inotify, s->dir,
			IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR,
			on_inotify, s);
	if (r < 0)
		return log_warning_errno(r,
				"cannot watch %s for token changes; SIGHUP still reloads", s->dir);
	return 0;
}
