/* SPDX-License-Identifier: MIT */
/* The requests, see ops.h and proto/PROTOCOL.md. What a request does to the token is the
 * lifecycle's business (daemon/lifecycle.h); this file checks who asks, turns requests into
 * lifecycle events and lifecycle state into replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bearer.h"
#include "common/util.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/ops.h"
#include "daemon/source.h"
#include "proto/reply_write.h"

/* Room for a login's secret: a password (PIPE_MAX_PASSWORD) or a pasted token, with
 * "Bearer " and blanks around it. */
#define OPS_MAX_SECRET (PROTO_MAX_TOKEN + 64)

/* One answering of one request. */
struct call {
	struct ops_env *env;
	const struct peer *peer;
	struct secret *reply;
	struct lc_time now;
	bool first;      /* first time this request is answered: it may start a login */
	bool final;      /* its wait ran out: it must be answered now */
	bool wait;       /* out: the request waits for a login */
	uint64_t ticket; /* in/out: the login a login or refresh waits for */
	char msg[512];   /* out: the message of an error reply */
};

typedef enum proto_error (*answer_fn)(const struct request *req, struct call *call);

/* Seconds the held token has left (0 once expired): "expires_in". */
static int64_t expires_in(const struct call *call, const struct lc_info *info)
{
	return info->expires_at > call->now.wall ? info->expires_at - call->now.wall : 0;
}

/* The fields describing the held token, shared by get, status, login and refresh: kind,
 * user_id, username, url, expires_at, expires, and expires_in (relative to now, absent
 * with_in false: the get reply adds it itself). */
static void put_token_fields(
		struct jsonw *w, const struct call *call, const struct lc_info *info, bool with_in)
{
	char iso[32];

	if (!info->has_token) {
		jsonw_null(w, PROTO_F_KIND);
		jsonw_null(w, PROTO_F_USER_ID);
		jsonw_null(w, PROTO_F_USERNAME);
	} else {
		jsonw_string_or_null(w, PROTO_F_KIND, info->kind);
		jsonw_string_or_null(w, PROTO_F_USER_ID, info->user_id);
		jsonw_string_or_null(w, PROTO_F_USERNAME, info->username);
	}
	jsonw_string_or_null(w, PROTO_F_URL, call->env->config->url);
	if (!info->has_token || !info->expires_at) {
		jsonw_null(w, PROTO_F_EXPIRES_AT);
		jsonw_null(w, PROTO_F_EXPIRES);
		jsonw_null(w, PROTO_F_EXPIRES_IN);
		return;
	}
	jsonw_int(w, PROTO_F_EXPIRES_AT, info->expires_at);
	jsonw_string_or_null(
			w, PROTO_F_EXPIRES, proto_format_time(info->expires_at, iso, sizeof(iso)));
	if (with_in)
		jsonw_int(w, PROTO_F_EXPIRES_IN, expires_in(call, info));
}

static void put_time(struct jsonw *w, const char *key, int64_t t)
{
	if (t <= 0)
		jsonw_null(w, key);
	else
		jsonw_int(w, key, t);
}

/* Ends the reply being written in the reply buffer. */
static enum proto_error finish(struct call *call, struct jsonw *w)
{
	if (jsonw_end(w, &call->reply->len) < 0) {
		call->reply->len = w->len; /* all that was written, a token too, is wiped */
		secret_clear(call->reply);
		return PROTO_E_INTERNAL;
	}
	return PROTO_OK;
}

static void begin_ok(struct jsonw *w, const struct request *req, struct call *call)
{
	reply_begin(w, call->reply->data, call->reply->size, true, req->id);
}

void ops_error(struct secret *reply, enum proto_error err, const char *message, const char *id,
		const char *kind)
{
	static const char fallback[] =
			"{\"ok\":false,\"v\":1,\"error\":\"internal\","
			"\"message\":\"the reply did not fit, see the daemon log\"}\n";
	int n = reply_write_error(reply->data, reply->size, err, message, id, kind);

	if (n < 0) {
		memcpy(reply->data, fallback, sizeof(fallback));
		n = (int)sizeof(fallback) - 1;
	}
	reply->len = (size_t)n;
}

/* Changing what the daemon holds is for admins only (see access.h). */
static enum proto_error require_admin(struct call *call, const char *what)
{
	if (call->peer->level == ACCESS_ADMIN)
		return PROTO_OK;
	snprintf(call->msg, sizeof(call->msg),
			"only the daemon's user, root and admin_users/admin_groups may %s", what);
	return PROTO_E_PERMISSION_DENIED;
}

/* Returns s, or fallback when s is NULL or empty. */
static const char *nonempty_or(const char *s, const char *fallback)
{
	return s && s[0] ? s : fallback;
}

static enum proto_error answer_ping(const struct request *req, struct call *call)
{
	struct jsonw w;

	begin_ok(&w, req, call);
	jsonw_bool(&w, PROTO_F_PONG, true);
	return finish(call, &w);
}

static enum proto_error answer_status(const struct request *req, struct call *call)
{
	struct lc_info info;
	struct jsonw w;
	char line[512], checking[560] = "";

	lifecycle_info(call->env->lifecycle, &call->now, &info);
	begin_ok(&w, req, call);
	jsonw_string_or_null(&w, PROTO_F_STATE, proto_state_name(info.state));
	lifecycle_status_line(call->env->lifecycle, &call->now, line, sizeof(line));
	/* The check starts after READY=1 and runs in the background: say so while it does. */
	if (call->env->source && source_checking(call->env->source) && info.has_token)
		snprintf(checking, sizeof(checking), "%s; RegScale is checking the token", line);
	jsonw_string_or_null(&w, PROTO_F_MESSAGE, checking[0] ? checking : line);
	put_token_fields(&w, call, &info, true);
	put_time(&w, PROTO_F_LAST_REFRESH, info.last_refresh);
	put_time(&w, PROTO_F_NEXT_REFRESH, info.next_refresh);
	jsonw_string_or_null(&w, PROTO_F_LAST_ERROR, info.last_error);
	jsonw_int(&w, PROTO_F_RETRIES, info.retries);
	jsonw_bool(&w, PROTO_F_LOGIN_IN_FLIGHT, info.login_in_flight);
	jsonw_bool(&w, PROTO_F_REFRESH_LATE, info.refresh_late);
	jsonw_string_or_null(&w, PROTO_F_CONFIGURED_USER, call->env->config->username);
	jsonw_string_or_null(&w, PROTO_F_VERSION, RT_VERSION);
	jsonw_int(&w, PROTO_F_PID, call->env->pid);
	jsonw_int(&w, PROTO_F_UPTIME,
			(int64_t)((now_monotonic_usec() - call->env->started_usec) / 1000000ULL));
	return finish(call, &w);
}

/* Rebuilds the token's part of the get reply when it no longer describes what is held:
 * everything from "kind" to "expires", once per token (and per clock jump or reload, which
 * may change expires_at or url), not per request. None of it is secret. */
static int token_fields_update(struct call *call, const struct lc_info *info)
{
	struct ops_token_fields *f = &call->env->token_fields;
	const char *url = call->env->config->url ? call->env->config->url : "";
	const char *username = info->username ? info->username : "";
	struct jsonw w;
	char *text;
	size_t len;

	if (f->text && f->kind == info->kind && f->expires_at == info->expires_at &&
			strcmp(f->user_id, info->user_id) == 0 &&
			strcmp(f->username, username) == 0 && strcmp(f->url, url) == 0)
		return 0;
	ops_token_fields_done(f);
	len = 256 + jsonw_string_max(strlen(info->user_id)) + jsonw_string_max(strlen(url)) +
	      jsonw_string_max(strlen(username));
	text = malloc(len);
	f->url = strdup(url);
	f->user_id = strdup(info->user_id);
	f->username = strdup(username);
	if (!text || !f->url || !f->user_id || !f->username) {
		free(text);
		ops_token_fields_done(f);
		return -ENOMEM;
	}
	jsonw_fragment(&w, text, len);
	put_token_fields(&w, call, info, false);
	if (w.err < 0) {
		free(text);
		ops_token_fields_done(f);
		return w.err;
	}
	f->text = text;
	f->len = w.len;
	f->kind = info->kind;
	f->expires_at = info->expires_at;
	return 0;
}

/* The get reply: {"ok":true,"v":1[,"id":..]<token fields>,"expires_in":N,"token":"<jwt>"}.
 * Copied from the fields built once per token, the token decrypted straight into its place
 * in the (guarded) reply buffer: a JWT needs no JSON escaping. */
static enum proto_error reply_token(const struct request *req, struct call *call)
{
	static const char token_key[] = ",\"" PROTO_F_TOKEN "\":\"";
	const struct ops_token_fields *f = &call->env->token_fields;
	struct lc_info info;
	struct jsonw w;
	ssize_t n;
	int r;

	lifecycle_info(call->env->lifecycle, &call->now, &info);
	r = token_fields_update(call, &info);
	if (r < 0) {
		log_error_errno(r, "cannot build the reply");
		return PROTO_E_INTERNAL;
	}
	begin_ok(&w, req, call);
	jsonw_raw(&w, f->text, f->len);
	if (info.expires_at)
		jsonw_int(&w, PROTO_F_EXPIRES_IN, expires_in(call, &info));
	jsonw_raw(&w, token_key, sizeof(token_key) - 1);
	if (w.err < 0 || w.size - w.len < 4) {
		log_error("the reply to get does not fit %zu bytes", w.size);
		return PROTO_E_INTERNAL; /* nothing secret written yet */
	}
	/* Room is left for the closing quote, "}\n" and the NUL after them. */
	n = lifecycle_open_token_into(call->env->lifecycle, w.buf + w.len, w.size - w.len - 3);
	if (n < 0) {
		/* vault_open_into() leaves no plaintext behind when it fails. */
		log_error_errno((int)n, "cannot decrypt the held token");
		return PROTO_E_INTERNAL;
	}
	w.len += (size_t)n;
	jsonw_raw(&w, "\"", 1);
	return finish(call, &w);
}

static enum proto_error answer_get(const struct request *req, struct call *call)
{
	/* A wait is what the client allows; a get with min_valid but no wait gets the default. */
	bool may_wait = !call->final && (req->wait > 0 || (req->min_valid > 0 && req->wait < 0));
	enum proto_error err = PROTO_E_INTERNAL;

	switch (lifecycle_get(call->env->lifecycle, req->min_valid, may_wait, call->first,
			&call->now, &err, call->msg, sizeof(call->msg))) {
	case LC_GET_SERVE:
		return reply_token(req, call);
	case LC_GET_WAIT:
		call->wait = true;
		return PROTO_OK;
	case LC_GET_FAIL:
		break;
	}
	return err;
}

/* The reply to login and refresh once the login they started or joined is over. */
static enum proto_error login_outcome_reply(const struct request *req, struct call *call)
{
	enum proto_error err;
	struct lc_info info;
	struct jsonw w;

	if (lifecycle_ticket(call->env->lifecycle, call->ticket, &err, call->msg,
			    sizeof(call->msg)) == 0) {
		if (!call->final) {
			call->wait = true;
			return PROTO_OK;
		}
		snprintf(call->msg, sizeof(call->msg), "the login is still in progress");
		return PROTO_E_TIMEOUT;
	}
	if (err != PROTO_OK)
		return err;
	lifecycle_info(call->env->lifecycle, &call->now, &info);
	begin_ok(&w, req, call);
	jsonw_string_or_null(&w, PROTO_F_STATE, proto_state_name(info.state));
	put_token_fields(&w, call, &info, true);
	put_time(&w, PROTO_F_NEXT_REFRESH, info.next_refresh);
	return finish(call, &w);
}

/* login with "token": a token a person pasted, checked with RegScale when a url is set. */
static enum proto_error answer_paste(const struct request *req, struct call *call)
{
	const char *reason = NULL, *token;
	size_t off, len;
	int r;

	if (req->username[0] || req->mfa[0]) {
		snprintf(call->msg, sizeof(call->msg),
				"a pasted \"token\" goes alone: no \"username\" or \"mfa\" with "
				"it");
		return PROTO_E_BAD_REQUEST;
	}
	bearer_strip(req->secret, req->secret_len, &off, &len);
	token = req->secret + off;
	r = lifecycle_paste(call->env->lifecycle, token, len, call->env->config->url != NULL,
			&call->now, &call->ticket, &reason);
	if (r < 0) {
		snprintf(call->msg, sizeof(call->msg), "%s%s",
				r == -EINVAL ? "the pasted token is not usable: " : "",
				nonempty_or(reason, strerror(-r)));
		return r == -EINVAL || r == -EOPNOTSUPP ? PROTO_E_BAD_REQUEST
							: PROTO_E_LOGIN_FAILED;
	}
	return login_outcome_reply(req, call);
}

static enum proto_error answer_login(const struct request *req, struct call *call)
{
	const char *username = nonempty_or(req->username, call->env->config->username);
	const char *reason = NULL;
	enum proto_error err;
	int r;

	if (!call->first)
		return login_outcome_reply(req, call);
	if ((err = require_admin(call, "log it in")) != PROTO_OK)
		return err;
	if (call->env->source) {
		snprintf(call->msg, sizeof(call->msg),
				"this daemon serves a service token (token_file); remove "
				"token_file to log in or paste a token");
		return PROTO_E_BAD_REQUEST;
	}
	if (!req->has_secret || req->secret_len == 0) {
		snprintf(call->msg, sizeof(call->msg),
				"login needs a \"password\" (or a pasted \"token\")");
		return PROTO_E_BAD_REQUEST;
	}
	if (req->secret_is_token)
		return answer_paste(req, call);
	if (req->secret_len > PIPE_MAX_PASSWORD) {
		snprintf(call->msg, sizeof(call->msg), "the password is longer than %d bytes",
				PIPE_MAX_PASSWORD);
		return PROTO_E_BAD_REQUEST;
	}
	if (!username) {
		snprintf(call->msg, sizeof(call->msg),
				"login needs a \"username\" (none configured)");
		return PROTO_E_BAD_REQUEST;
	}
	for (const char *p = username; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(call->msg, sizeof(call->msg),
					"\"username\" has control characters");
			return PROTO_E_BAD_REQUEST;
		}
	r = lifecycle_login(call->env->lifecycle, username, req->secret, req->secret_len, req->mfa,
			&call->now, &call->ticket, &reason);
	if (r < 0) {
		snprintf(call->msg, sizeof(call->msg), "%s", nonempty_or(reason, strerror(-r)));
		return r == -EOPNOTSUPP ? PROTO_E_BAD_REQUEST : PROTO_E_LOGIN_FAILED;
	}
	return login_outcome_reply(req, call);
}

static enum proto_error answer_refresh(const struct request *req, struct call *call)
{
	const char *reason = NULL;
	enum proto_error err;
	int r;

	if (!call->first)
		return login_outcome_reply(req, call);
	if ((err = require_admin(call, "refresh it")) != PROTO_OK)
		return err;
	if (call->env->source) {
		/* A service token is not refreshed by logging in; re-reading it is the refresh. */
		if (source_load(call->env->source) < 0) {
			struct lc_info info;
			lifecycle_info(call->env->lifecycle, &call->now, &info);
			snprintf(call->msg, sizeof(call->msg), "%s", info.last_error);
			return PROTO_E_LOGIN_FAILED;
		}
		return answer_status(req, call);
	}
	r = lifecycle_refresh(call->env->lifecycle, "requested by a client",
			req->mfa[0] ? req->mfa : NULL, &call->now, &call->ticket, &reason);
	if (r < 0) {
		snprintf(call->msg, sizeof(call->msg), "%s", nonempty_or(reason, "cannot log in"));
		return r == -EKEYREJECTED ? PROTO_E_CREDENTIALS_REJECTED
		       : r == -EPERM      ? PROTO_E_LOGIN_REQUIRED
					  : PROTO_E_LOGIN_FAILED;
	}
	return login_outcome_reply(req, call);
}

static enum proto_error answer_logout(const struct request *req, struct call *call)
{
	enum proto_error err;
	struct jsonw w;

	if ((err = require_admin(call, "log it out")) != PROTO_OK)
		return err;
	lifecycle_logout(call->env->lifecycle);
	begin_ok(&w, req, call);
	jsonw_string_or_null(&w, PROTO_F_STATE,
			proto_state_name(lifecycle_state(call->env->lifecycle, &call->now)));
	return finish(call, &w);
}

/* The counters as Prometheus text (PROTOCOL.md "metrics"), for the same readers as status:
 * nothing in it is secret, and less than status says (no user id, no username). */
static enum proto_error answer_metrics(const struct request *req, struct call *call)
{
	_cleanup_(freep) char *text = NULL;
	struct lc_info info;
	struct jsonw w;
	size_t len;

	lifecycle_info(call->env->lifecycle, &call->now, &info);
	if (!call->env->metrics || metrics_take(call->env->metrics, &info, &text, &len) < 0) {
		snprintf(call->msg, sizeof(call->msg), "cannot write the metrics: out of memory");
		return PROTO_E_INTERNAL;
	}
	begin_ok(&w, req, call);
	jsonw_string_or_null(&w, PROTO_F_FORMAT, PROTO_METRICS_FORMAT);
	jsonw_string(&w, PROTO_F_METRICS, text, len);
	return finish(call, &w);
}

static const answer_fn answers[_PROTO_OP_MAX] = {
		[PROTO_OP_PING] = answer_ping,
		[PROTO_OP_GET] = answer_get,
		[PROTO_OP_STATUS] = answer_status,
		[PROTO_OP_LOGIN] = answer_login,
		[PROTO_OP_LOGOUT] = answer_logout,
		[PROTO_OP_REFRESH] = answer_refresh,
		[PROTO_OP_METRICS] = answer_metrics,
};

static enum ops_result run(const struct request *req, struct call *call)
{
	enum proto_error err;

	lc_time_now(&call->now);
	err = answers[req->op](req, call);
	/* Counted when answered: a request that waits counts once, when its reply goes. */
	if (err != PROTO_OK || !call->wait)
		metrics_count_request(call->env->metrics, req->op, err);
	if (err != PROTO_OK) {
		const char *kind = NULL;
		struct lc_info info;

		/* What renews the token is what a client tells a person (PROTOCOL.md). */
		if (req->op == PROTO_OP_GET || req->op == PROTO_OP_LOGIN ||
				req->op == PROTO_OP_REFRESH) {
			lifecycle_info(call->env->lifecycle, &call->now, &info);
			kind = info.kind;
		}
		log_notice("client pid %d uid %u: %s refused: %s: %s", (int)call->peer->ucred.pid,
				(unsigned)call->peer->ucred.uid, proto_op_name(req->op),
				proto_error_name(err), nonempty_or(call->msg, "internal error"));
		ops_error(call->reply, err,
				nonempty_or(call->msg, "internal error, see the daemon log"),
				req->id, kind);
		return OPS_REPLY;
	}
	return call->wait ? OPS_WAIT : OPS_REPLY;
}

/* How long a request may wait for a login, in microseconds. */
static uint64_t wait_usec(const struct ops_env *env, const struct request *req)
{
	int64_t sec;

	if (req->op == PROTO_OP_GET)
		sec = req->wait >= 0 ? req->wait : PROTO_DEFAULT_WAIT_SEC;
	else
		sec = (int64_t)(env->config->connect_timeout_sec + env->config->total_timeout_sec) +
		      10;
	if (sec > PROTO_MAX_WAIT_SEC)
		sec = PROTO_MAX_WAIT_SEC;
	return (uint64_t)sec * 1000000ULL;
}

enum ops_result ops_answer(struct ops_env *env, const struct peer *peer, const char *line,
		size_t len, struct secret *reply, struct ops_pending *pending,
		uint64_t *ret_wait_usec, enum proto_op *ret_op)
{
	struct call call = {.env = env, .peer = peer, .reply = reply, .first = true};
	_cleanup_(secret_freep) struct secret *password = NULL;
	struct request req = {.secret = NULL};
	const char *why = NULL;
	enum proto_error err;
	enum ops_result res;

	err = request_parse(line, len, &req, &why);
	if (err != PROTO_OK && req.wants_secret) {
		/* Memory for a password only when one comes (a login): guarded, wiped and freed
		 * once it is sealed or refused, at the end of this function. */
		password = secret_new(OPS_MAX_SECRET + 1);
		if (!password) {
			ops_error(reply, PROTO_E_INTERNAL, "out of memory", NULL, NULL);
			*ret_op = _PROTO_OP_MAX;
			return OPS_REPLY;
		}
		req.secret = password->data;
		req.secret_size = password->size;
		err = request_parse(line, len, &req, &why);
	}
	*ret_op = err == PROTO_OK ? req.op : _PROTO_OP_MAX;
	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s: %s", (int)peer->ucred.pid,
				(unsigned)peer->ucred.uid, proto_error_name(err),
				nonempty_or(why, "invalid request"));
		metrics_count_request(env->metrics, METRICS_OP_INVALID, err);
		ops_error(reply, err, nonempty_or(why, "invalid request"),
				req.has_id ? req.id : NULL, NULL);
		return OPS_REPLY;
	}
	log_debug("client pid %d uid %u: %s", (int)peer->ucred.pid, (unsigned)peer->ucred.uid,
			proto_op_name(req.op));
	res = run(&req, &call);
	/* The password was sealed (or refused) by now; secret_freep() wipes it. */
	req.secret = NULL;
	req.secret_len = 0;
	req.has_secret = false;
	if (res == OPS_WAIT) {
		pending->req = req;
		pending->ticket = call.ticket;
		*ret_wait_usec = wait_usec(env, &req);
	}
	return res;
}

enum ops_result ops_resume(struct ops_env *env, const struct peer *peer,
		const struct ops_pending *pending, bool final, struct secret *reply)
{
	struct call call = {.env = env,
			.peer = peer,
			.reply = reply,
			.final = final,
			.ticket = pending->ticket};

	return run(&pending->req, &call);
}

void ops_token_fields_done(struct ops_token_fields *f)
{
	free(f->text);
	free(f->url);
	free(f->user_id);
	free(f->username);
	*f = (struct ops_token_fields){0};
}
