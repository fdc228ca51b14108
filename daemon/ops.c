#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/jwt.h"
#include "common/util.h"
#include "daemon/helper_proc.h"
#include "daemon/log.h"
#include "daemon/ops.h"
#include "daemon/refresh.h"
#include "daemon/source.h"
#include "proto/reply.h"

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
static void put_token_fields(struct json_object *o, const struct tokend *d, int64_t now)
{
	const struct token_info *info = &d->info;
	char iso[32];

	if (!d->token) {
		put_null(o, PROTO_F_KIND);
		put_null(o, PROTO_F_USER_ID);
	} else {
		put_string(o, PROTO_F_KIND, token_kind_name(info->kind));
		put_string(o, PROTO_F_USER_ID, info->claims.user_id);
	}
	put_string(o, PROTO_F_URL, d->config.url);
	if (!d->token || !info->expires_at) {
		put_null(o, PROTO_F_EXPIRES_AT);
		put_null(o, PROTO_F_EXPIRES);
		put_null(o, PROTO_F_EXPIRES_IN);
		return;
	}
	put_int(o, PROTO_F_EXPIRES_AT, info->expires_at);
	put_string(o, PROTO_F_EXPIRES, proto_format_time(info->expires_at, iso, sizeof(iso)));
	put_int(o, PROTO_F_EXPIRES_IN, info->expires_at > now ? info->expires_at - now : 0);
}

/* Serialises obj into the reply buffer and drops it. */
static enum proto_error finish(struct tokend *d, struct json_object *obj)
{
	int n = reply_format(obj, d->reply_buf->data, d->reply_buf->size);

	json_object_put(obj);
	if (n < 0)
		return PROTO_E_INTERNAL;
	d->reply_buf->len = (size_t)n;
	return PROTO_OK;
}

void ops_error(struct tokend *d, enum proto_error err, const char *message, const char *id)
{
	static const char fallback[] = "{\"ok\":false,\"v\":1,\"error\":\"internal\","
				       "\"message\":\"out of memory\"}\n";
	struct json_object *obj = reply_new_error(err, message, id);
	int n = obj ? reply_format(obj, d->reply_buf->data, d->reply_buf->size) : -ENOMEM;

	json_object_put(obj);
	if (n < 0) {
		memcpy(d->reply_buf->data, fallback, sizeof(fallback));
		n = (int)sizeof(fallback) - 1;
	}
	d->reply_buf->len = (size_t)n;
}

/* One answering of one request. */
struct call {
	const struct peer *peer;
	bool first;    /* first time this request is answered: it may start a login */
	bool final;    /* its wait ran out: it must be answered now */
	bool wait;     /* out: the request waits for the login in flight */
	char msg[512]; /* out: the message of an error reply */
};

typedef enum proto_error (*answer_fn)(
		struct tokend *d, const struct request *req, struct call *call);

/* Changing what the daemon holds is for admins only (see access.h). */
static bool peer_is_admin(const struct peer *peer)
{
	return peer->level == ACCESS_ADMIN;
}

/* Returns s, or fallback when s is NULL or empty. */
static const char *nonempty_or(const char *s, const char *fallback)
{
	return s && s[0] ? s : fallback;
}

static enum proto_error answer_ping(struct tokend *d, const struct request *req, struct call *call)
{
	struct json_object *obj = reply_new_ok(req->id);

	if (!obj)
		return PROTO_E_INTERNAL;
	json_object_object_add(obj, PROTO_F_PONG, json_object_new_boolean(1));
	return finish(d, obj);
}

static enum proto_error answer_status(
		struct tokend *d, const struct request *req, struct call *call)
{
	struct json_object *obj = reply_new_ok(req->id);
	int64_t now = now_unix();
	char line[256];

	if (!obj)
		return PROTO_E_INTERNAL;
	put_string(obj, PROTO_F_STATE, proto_state_name(refresh_state(d)));
	put_string(obj, PROTO_F_MESSAGE, tokend_status_line(d, line, sizeof(line)));
	put_token_fields(obj, d, now);
	put_time(obj, PROTO_F_LAST_REFRESH, d->last_refresh);
	put_time(obj, PROTO_F_NEXT_REFRESH, d->next_refresh);
	put_string(obj, PROTO_F_LAST_ERROR, d->last_error);
	put_int(obj, PROTO_F_RETRIES, d->retries);
	json_object_object_add(
			obj, PROTO_F_LOGIN_IN_FLIGHT, json_object_new_boolean(d->login != NULL));
	put_string(obj, PROTO_F_VERSION, RT_VERSION);
	put_int(obj, PROTO_F_PID, getpid());
	put_int(obj, PROTO_F_UPTIME,
			(int64_t)((now_monotonic_usec() - d->started_usec) / 1000000ULL));
	return finish(d, obj);
}

static enum proto_error reply_token(struct tokend *d, const struct request *req, int64_t now)
{
	static const char key[] = ",\"" PROTO_F_TOKEN "\":\"";
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct secret *buf = d->reply_buf;
	struct json_object *obj;
	int n, r;

	r = vault_open(d->vault, d->token, &token);
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
	put_token_fields(obj, d, now);
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

/* Why no token can be served, as an error code and message. */
static enum proto_error no_token_error(
		struct tokend *d, enum token_state state, int64_t now, struct call *call)
{
	char iso[32];

	if (d->credentials_rejected) {
		snprintf(call->msg, sizeof(call->msg), "%s", d->last_error);
		return PROTO_E_CREDENTIALS_REJECTED;
	}
	if (state == TOKEN_STATE_EXPIRED) {
		snprintf(call->msg, sizeof(call->msg), "the token expired at %s%s%s",
				proto_format_time(d->info.expires_at, iso, sizeof(iso)),
				d->last_error[0] ? "; " : "", d->last_error);
		return PROTO_E_TOKEN_EXPIRED;
	}
	if (d->login) {
		snprintf(call->msg, sizeof(call->msg), "no token yet: a login is in progress");
		return PROTO_E_NO_TOKEN;
	}
	if (d->login_done && d->last_outcome != HELPER_OK) {
		snprintf(call->msg, sizeof(call->msg), "%s", d->last_error);
		return PROTO_E_LOGIN_FAILED;
	}
	snprintf(call->msg, sizeof(call->msg), "%s",
			nonempty_or(d->last_error, "the daemon holds no token"));
	return PROTO_E_NO_TOKEN;
}

static enum proto_error answer_get(struct tokend *d, const struct request *req, struct call *call)
{
	int64_t now = now_unix();
	enum token_state state;
	bool may_wait = req->wait > 0 || (req->min_valid > 0 && req->wait < 0);

	if (call->first)
		refresh_check_due(d);
	state = tokend_token_state(d, now);
	if (state == TOKEN_STATE_VALID &&
			(req->min_valid <= 0 || !d->info.expires_at ||
					d->info.expires_at - now >= req->min_valid))
		return reply_token(d, req, now);

	if (may_wait && !call->final &&
			(d->login || (call->first && refresh_now(d, "a client needs a fresher "
								    "token") > 0))) {
		call->wait = true;
		return PROTO_OK;
	}
	if (state == TOKEN_STATE_VALID) {
		snprintf(call->msg, sizeof(call->msg),
				"the token is valid for %llds only, less "
				"than min_valid%s%s",
				(long long)(d->info.expires_at - now), d->last_error[0] ? "; " : "",
				d->last_error);
		return PROTO_E_TOKEN_EXPIRED;
	}
	return no_token_error(d, state, now, call);
}

/* The reply to login and refresh once the login they started or joined is over. */
static enum proto_error login_outcome_reply(
		struct tokend *d, const struct request *req, struct call *call)
{
	struct json_object *obj;

	if (d->login) {
		if (!call->final) {
			call->wait = true;
			return PROTO_OK;
		}
		snprintf(call->msg, sizeof(call->msg), "the login is still in progress");
		return PROTO_E_TIMEOUT;
	}
	if (!d->login_done || d->last_outcome != HELPER_OK ||
			tokend_token_state(d, now_unix()) != TOKEN_STATE_VALID) {
		snprintf(call->msg, sizeof(call->msg), "%s",
				nonempty_or(d->last_error, "login failed"));
		return d->credentials_rejected ? PROTO_E_CREDENTIALS_REJECTED
					       : PROTO_E_LOGIN_FAILED;
	}
	obj = reply_new_ok(req->id);
	if (!obj)
		return PROTO_E_INTERNAL;
	put_string(obj, PROTO_F_STATE, proto_state_name(refresh_state(d)));
	put_token_fields(obj, d, now_unix());
	put_time(obj, PROTO_F_NEXT_REFRESH, d->next_refresh);
	return finish(d, obj);
}

static enum proto_error answer_login(struct tokend *d, const struct request *req, struct call *call)
{
	const char *username = nonempty_or(req->username, d->config.username);
	int r;

	if (!call->first)
		return login_outcome_reply(d, req, call);
	if (!peer_is_admin(call->peer)) {
		snprintf(call->msg, sizeof(call->msg),
				"only the daemon's user, root and admin_users/admin_groups may log "
				"it in");
		return PROTO_E_PERMISSION_DENIED;
	}
	if (d->source) {
		snprintf(call->msg, sizeof(call->msg),
				"this daemon serves a service token; remove "
				"token_file to use password login");
		return PROTO_E_BAD_REQUEST;
	}
	if (!req->has_secret || req->secret_len == 0) {
		snprintf(call->msg, sizeof(call->msg), "login needs a \"password\"");
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
	r = refresh_set_credentials(d, username, req->secret, req->secret_len, req->mfa);
	if (r < 0 && !d->login_done) {
		snprintf(call->msg, sizeof(call->msg), "%s",
				nonempty_or(d->last_error, strerror(-r)));
		return PROTO_E_LOGIN_FAILED;
	}
	return login_outcome_reply(d, req, call);
}

static enum proto_error answer_refresh(
		struct tokend *d, const struct request *req, struct call *call)
{
	if (!call->first)
		return login_outcome_reply(d, req, call);
	if (!peer_is_admin(call->peer)) {
		snprintf(call->msg, sizeof(call->msg),
				"only the daemon's user, root and admin_users/admin_groups may "
				"refresh it");
		return PROTO_E_PERMISSION_DENIED;
	}
	if (d->source) {
		/* A service token is not refreshed by logging in; re-reading it is the refresh. */
		if (source_load(d->source) < 0) {
			snprintf(call->msg, sizeof(call->msg), "%s", d->last_error);
			return PROTO_E_LOGIN_FAILED;
		}
		return answer_status(d, req, call);
	}
	if (refresh_now(d, "requested by a client") <= 0) {
		snprintf(call->msg, sizeof(call->msg), "%s",
				nonempty_or(d->last_error, "cannot log in"));
		return d->credentials_rejected ? PROTO_E_CREDENTIALS_REJECTED
					       : PROTO_E_LOGIN_FAILED;
	}
	return login_outcome_reply(d, req, call);
}

static enum proto_error answer_logout(
		struct tokend *d, const struct request *req, struct call *call)
{
	struct json_object *obj;

	if (!peer_is_admin(call->peer)) {
		snprintf(call->msg, sizeof(call->msg),
				"only the daemon's user, root and admin_users/admin_groups may log "
				"it out");
		return PROTO_E_PERMISSION_DENIED;
	}
	refresh_logout(d);
	obj = reply_new_ok(req->id);
	if (!obj)
		return PROTO_E_INTERNAL;
	put_string(obj, PROTO_F_STATE, proto_state_name(refresh_state(d)));
	return finish(d, obj);
}

static const answer_fn answers[_PROTO_OP_MAX] = {
		[PROTO_OP_PING] = answer_ping,
		[PROTO_OP_GET] = answer_get,
		[PROTO_OP_STATUS] = answer_status,
		[PROTO_OP_LOGIN] = answer_login,
		[PROTO_OP_LOGOUT] = answer_logout,
		[PROTO_OP_REFRESH] = answer_refresh,
};

static enum ops_result run(struct tokend *d, const struct request *req, struct call *call)
{
	enum proto_error err = answers[req->op](d, req, call);

	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s refused: %s: %s", (int)call->peer->ucred.pid,
				(unsigned)call->peer->ucred.uid, proto_op_name(req->op),
				proto_error_name(err), nonempty_or(call->msg, "internal error"));
		ops_error(d, err, nonempty_or(call->msg, "internal error, see the daemon log"),
				req->id);
		return OPS_REPLY;
	}
	return call->wait ? OPS_WAIT : OPS_REPLY;
}

/* How long a request may wait for a login, in microseconds. */
static uint64_t wait_usec(const struct tokend *d, const struct request *req)
{
	int64_t sec;

	if (req->op == PROTO_OP_GET)
		sec = req->wait >= 0 ? req->wait : PROTO_DEFAULT_WAIT_SEC;
	else
		sec = (int64_t)(d->config.connect_timeout_sec + d->config.total_timeout_sec) + 10;
	if (sec > PROTO_MAX_WAIT_SEC)
		sec = PROTO_MAX_WAIT_SEC;
	return (uint64_t)sec * 1000000ULL;
}

enum ops_result ops_answer(struct tokend *d, const struct peer *peer, const char *line, size_t len,
		struct request *pending, uint64_t *ret_wait_usec)
{
	struct call call = {.peer = peer, .first = true};
	struct request req;
	const char *why = NULL;
	enum proto_error err;
	enum ops_result res;

	memset(&req, 0, sizeof(req));
	req.secret = d->request_secret->data;
	req.secret_size = d->request_secret->size;
	err = request_parse(line, len, &req, &why);
	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s: %s", (int)peer->ucred.pid,
				(unsigned)peer->ucred.uid, proto_error_name(err),
				nonempty_or(why, "invalid request"));
		ops_error(d, err, nonempty_or(why, "invalid request"), req.has_id ? req.id : NULL);
		return OPS_REPLY;
	}
	log_debug("client pid %d uid %u: %s", (int)peer->ucred.pid, (unsigned)peer->ucred.uid,
			proto_op_name(req.op));
	res = run(d, &req, &call);
	/* The password was sealed (or refused) by now. */
	explicit_bzero(d->request_secret->data, req.secret_len + 1);
	req.secret = NULL;
	req.secret_len = 0;
	req.has_secret = false;
	if (res == OPS_WAIT) {
		*pending = req;
		*ret_wait_usec = wait_usec(d, &req);
	}
	return res;
}

enum ops_result ops_resume(
		struct tokend *d, const struct peer *peer, const struct request *req, bool final)
{
	struct call call = {.peer = peer, .final = final};

	return run(d, req, &call);
}
