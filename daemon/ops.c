/* The requests, see ops.h and proto/PROTOCOL.md. What a request does to the token is the
 * lifecycle's business (daemon/lifecycle.h); this file checks who asks, turns requests into
 * lifecycle events and lifecycle state into replies. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/jwt.h"
#include "common/util.h"
#include "daemon/log.h"
#include "daemon/ops.h"
#include "daemon/source.h"
#include "proto/reply.h"

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

static void put_null(struct json_object *o, const char *key)
{
	json_object_object_add(o, key, NULL);
}

static void put_string(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value && value[0] ? json_object_new_string(value) : NULL);
}

static void put_int(struct json_object *o, const char *key, int64_t value)
{
	json_object_object_add(o, key, json_object_new_int64(value));
}

static void put_time(struct json_object *o, const char *key, int64_t t)
{
	if (t <= 0)
		put_null(o, key);
	else
		put_int(o, key, t);
}

/* The fields describing the held token, shared by get, status, login and refresh. */
static void put_token_fields(
		struct json_object *o, const struct call *call, const struct lc_info *info)
{
	char iso[32];

	if (!info->has_token) {
		put_null(o, PROTO_F_KIND);
		put_null(o, PROTO_F_USER_ID);
	} else {
		put_string(o, PROTO_F_KIND, info->service ? PROTO_KIND_SERVICE : PROTO_KIND_LOGIN);
		put_string(o, PROTO_F_USER_ID, info->user_id);
	}
	put_string(o, PROTO_F_URL, call->env->config->url);
	if (!info->has_token || !info->expires_at) {
		put_null(o, PROTO_F_EXPIRES_AT);
		put_null(o, PROTO_F_EXPIRES);
		put_null(o, PROTO_F_EXPIRES_IN);
		return;
	}
	put_int(o, PROTO_F_EXPIRES_AT, info->expires_at);
	put_string(o, PROTO_F_EXPIRES, proto_format_time(info->expires_at, iso, sizeof(iso)));
	put_int(o, PROTO_F_EXPIRES_IN,
			info->expires_at > call->now.wall ? info->expires_at - call->now.wall : 0);
}

/* Serialises obj into the reply buffer and drops it. */
static enum proto_error finish(struct call *call, struct json_object *obj)
{
	int n = reply_format(obj, call->reply->data, call->reply->size);

	json_object_put(obj);
	if (n < 0)
		return PROTO_E_INTERNAL;
	call->reply->len = (size_t)n;
	return PROTO_OK;
}

void ops_error(struct secret *reply, enum proto_error err, const char *message, const char *id)
{
	static const char fallback[] = "{\"ok\":false,\"v\":1,\"error\":\"internal\","
				       "\"message\":\"out of memory\"}\n";
	struct json_object *obj = reply_new_error(err, message, id);
	int n = obj ? reply_format(obj, reply->data, reply->size) : -ENOMEM;

	json_object_put(obj);
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
	struct json_object *obj = reply_new_ok(req->id);

	if (!obj)
		return PROTO_E_INTERNAL;
	json_object_object_add(obj, PROTO_F_PONG, json_object_new_boolean(1));
	return finish(call, obj);
}

static enum proto_error answer_status(const struct request *req, struct call *call)
{
	struct json_object *obj = reply_new_ok(req->id);
	struct lc_info info;
	char line[256];

	if (!obj)
		return PROTO_E_INTERNAL;
	lifecycle_info(call->env->lifecycle, &call->now, &info);
	put_string(obj, PROTO_F_STATE, proto_state_name(info.state));
	put_string(obj, PROTO_F_MESSAGE,
			lifecycle_status_line(
					call->env->lifecycle, &call->now, line, sizeof(line)));
	put_token_fields(obj, call, &info);
	put_time(obj, PROTO_F_LAST_REFRESH, info.last_refresh);
	put_time(obj, PROTO_F_NEXT_REFRESH, info.next_refresh);
	put_string(obj, PROTO_F_LAST_ERROR, info.last_error);
	put_int(obj, PROTO_F_RETRIES, info.retries);
	json_object_object_add(obj, PROTO_F_LOGIN_IN_FLIGHT,
			json_object_new_boolean(info.login_in_flight));
	put_string(obj, PROTO_F_VERSION, RT_VERSION);
	put_int(obj, PROTO_F_PID, getpid());
	put_int(obj, PROTO_F_UPTIME,
			(int64_t)((now_monotonic_usec() - call->env->started_usec) / 1000000ULL));
	return finish(call, obj);
}

static enum proto_error reply_token(const struct request *req, struct call *call)
{
	static const char key[] = ",\"" PROTO_F_TOKEN "\":\"";
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct secret *buf = call->reply;
	struct json_object *obj;
	struct lc_info info;
	int n, r;

	r = lifecycle_open_token(call->env->lifecycle, &token);
	if (r < 0) {
		log_error_errno(r, "cannot decrypt the held token");
		return PROTO_E_INTERNAL;
	}
	/* Checked when stored; checked again because the splice below relies on it. */
	if (!jwt_well_formed(token->data, token->len))
		return PROTO_E_INTERNAL;

	obj = reply_new_ok(req->id);
	if (!obj)
		return PROTO_E_INTERNAL;
	lifecycle_info(call->env->lifecycle, &call->now, &info);
	put_token_fields(obj, call, &info);
	n = reply_format(obj, buf->data, buf->size);
	json_object_put(obj);
	/* json-c would copy the token onto the heap, so it is spliced in here instead, in
	 * guarded memory: {...} -> {...,"token":"<jwt>"}. A JWT needs no JSON escaping. */
	if (n < 2 || (size_t)n + token->len + sizeof(key) + 3 > buf->size ||
			buf->data[n - 2] != '}') {
		secret_clear(buf);
		return PROTO_E_INTERNAL;
	}
	n -= 2;
	memcpy(buf->data + n, key, sizeof(key) - 1);
	n += (int)sizeof(key) - 1;
	memcpy(buf->data + n, token->data, token->len);
	n += (int)token->len;
	memcpy(buf->data + n, "\"}\n", 4);
	buf->len = (size_t)n + 3;
	return PROTO_OK;
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
	struct json_object *obj;
	enum proto_error err;
	struct lc_info info;

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
	obj = reply_new_ok(req->id);
	if (!obj)
		return PROTO_E_INTERNAL;
	lifecycle_info(call->env->lifecycle, &call->now, &info);
	put_string(obj, PROTO_F_STATE, proto_state_name(info.state));
	put_token_fields(obj, call, &info);
	put_time(obj, PROTO_F_NEXT_REFRESH, info.next_refresh);
	return finish(call, obj);
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
				"this daemon serves a service token; remove "
				"token_file to use password login");
		return PROTO_E_BAD_REQUEST;
	}
	if (!req->has_secret || req->secret_len == 0) {
		snprintf(call->msg, sizeof(call->msg), "login needs a \"password\"");
		return PROTO_E_BAD_REQUEST;
	}
	/* It would not fit the helper's request: refuse it here, not in a retry loop. */
	if (req->secret_len > PIPE_MAX_PASSWORD) {
		snprintf(call->msg, sizeof(call->msg),
				"the password is longer than %d bytes, more than a login can carry",
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
	r = lifecycle_refresh(call->env->lifecycle, "requested by a client", &call->now,
			&call->ticket, &reason);
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
	struct json_object *obj;
	enum proto_error err;

	if ((err = require_admin(call, "log it out")) != PROTO_OK)
		return err;
	lifecycle_logout(call->env->lifecycle);
	obj = reply_new_ok(req->id);
	if (!obj)
		return PROTO_E_INTERNAL;
	put_string(obj, PROTO_F_STATE,
			proto_state_name(lifecycle_state(call->env->lifecycle, &call->now)));
	return finish(call, obj);
}

static const answer_fn answers[_PROTO_OP_MAX] = {
		[PROTO_OP_PING] = answer_ping,
		[PROTO_OP_GET] = answer_get,
		[PROTO_OP_STATUS] = answer_status,
		[PROTO_OP_LOGIN] = answer_login,
		[PROTO_OP_LOGOUT] = answer_logout,
		[PROTO_OP_REFRESH] = answer_refresh,
};

static enum ops_result run(const struct request *req, struct call *call)
{
	enum proto_error err;

	lc_time_now(&call->now);
	err = answers[req->op](req, call);
	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s refused: %s: %s", (int)call->peer->ucred.pid,
				(unsigned)call->peer->ucred.uid, proto_op_name(req->op),
				proto_error_name(err), nonempty_or(call->msg, "internal error"));
		ops_error(call->reply, err,
				nonempty_or(call->msg, "internal error, see the daemon log"),
				req->id);
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
	struct request req;
	const char *why = NULL;
	enum proto_error err;
	enum ops_result res;

	memset(&req, 0, sizeof(req));
	req.secret = env->request_secret->data;
	req.secret_size = env->request_secret->size;
	err = request_parse(line, len, &req, &why);
	*ret_op = err == PROTO_OK ? req.op : _PROTO_OP_MAX;
	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s: %s", (int)peer->ucred.pid,
				(unsigned)peer->ucred.uid, proto_error_name(err),
				nonempty_or(why, "invalid request"));
		ops_error(reply, err, nonempty_or(why, "invalid request"),
				req.has_id ? req.id : NULL);
		return OPS_REPLY;
	}
	log_debug("client pid %d uid %u: %s", (int)peer->ucred.pid, (unsigned)peer->ucred.uid,
			proto_op_name(req.op));
	res = run(&req, &call);
	/* The password was sealed (or refused) by now. */
	explicit_bzero(env->request_secret->data, req.secret_len + 1);
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
