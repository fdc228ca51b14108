#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/jwt.h"
#include "common/util.h"
#include "daemon/log.h"
#include "daemon/refresh.h"
#include "daemon/source.h"
#include "proto/proto.h"

struct source {
	struct tokend *d;
	char *path;
	char *dir;  /* directory watched */
	char *name; /* file name inside dir */
	sd_event_source *inotify;
};

int source_new(struct tokend *d, struct source **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_(freep) char *cred_path = NULL;
	struct source *s;
	char *slash;

	if (!d->config.token_file) {
		if (!creds || creds[0] != '/' || asprintf(&cred_path, "%s/token", creds) < 0)
			return -ENOENT;
		if (access(cred_path, F_OK) < 0)
			return -ENOENT;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->d = d;
	s->path = strdup(d->config.token_file ? d->config.token_file : cred_path);
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

int source_load(struct source *s)
{
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct jwt_claims claims;
	const char *why = NULL;
	char user[JWT_MAX_USER_ID * 2];
	int r;

	r = secret_read_file(s->path, PROTO_MAX_TOKEN + 64, &token);
	if (r < 0) {
		tokend_set_error(s->d, "cannot read token file %s: %s", s->path,
				r == -EFBIG     ? "larger than a JWT can be"
				: r == -ENODATA ? "file is empty"
						: strerror(-r));
		log_error("%s%s", s->d->last_error,
				s->d->token ? "; keeping the current token" : "");
		return r;
	}
	r = jwt_parse(token->data, token->len, &claims, &why);
	if (r < 0) {
		tokend_set_error(s->d, "token file %s does not hold a valid JWT: %s", s->path, why);
		log_error("%s%s", s->d->last_error,
				s->d->token ? "; keeping the current token" : "");
		return r;
	}
	r = tokend_set_token(s->d, token->data, token->len, &claims, TOKEN_KIND_SERVICE,
			claims.has_exp ? claims.exp : 0);
	if (r < 0)
		return log_error_errno(r, "cannot store the token from %s", s->path);

	if (!claims.has_exp)
		log_notice("loaded service token for user \"%s\" from %s; it has no exp claim, so "
			   "no known expiry",
				escape_log(claims.user_id, user, sizeof(user)), s->path);
	else if (claims.exp <= now_unix())
		log_warning("loaded service token for user \"%s\" from %s, but it expired %lld s "
			    "ago",
				escape_log(claims.user_id, user, sizeof(user)), s->path,
				(long long)(now_unix() - claims.exp));
	else
		log_info("loaded service token for user \"%s\" from %s, valid for %lld s",
				escape_log(claims.user_id, user, sizeof(user)), s->path,
				(long long)(claims.exp - now_unix()));
	refresh_validate_service_token(s->d);
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
	r = sd_event_add_inotify(s->d->event, &s->inotify, s->dir,
			IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR,
			on_inotify, s);
	if (r < 0)
		return log_warning_errno(r,
				"cannot watch %s for token changes; SIGHUP still reloads", s->dir);
	return 0;
}
