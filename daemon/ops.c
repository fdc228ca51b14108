#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/jwt.h"
#include "daemon/log.h"
#include "daemon/ops.h"
#include "proto/reply.h"
#include "proto/util.h"

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

/* The fields describing the held token, shared by get and status. */
static void put_token_fields(struct json_object *o, const struct tokend *d, int64_t now)
{
	const struct token_info *info = &d->info;
	char iso[32];

	if (!d->token) {
		put_null(o, "kind");
		put_null(o, "user_id");
	} else {
		put_string(o, "kind", token_kind_name(info->kind));
		put_string(o, "user_id", info->claims.user_id);
	}
	put_string(o, "url", d->config.url);
	if (!d->token || !info->claims.has_exp) {
		put_null(o, "expires_at");
		put_null(o, "expires");
		put_null(o, "expires_in");
		return;
	}
	put_int(o, "expires_at", info->claims.exp);
	put_string(o, "expires", proto_format_time(info->claims.exp, iso, sizeof(iso)));
	put_int(o, "expires_in", info->claims.exp > now ? info->claims.exp - now : 0);
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

static enum proto_error answer_ping(struct tokend *d, const struct request *req, char *msg,
		size_t msg_size)
{
	struct json_object *obj = reply_new_ok(req->id);

	if (!obj)
		return PROTO_E_INTERNAL;
	json_object_object_add(obj, "pong", json_object_new_boolean(1));
	return finish(d, obj);
}

static enum proto_error answer_status(struct tokend *d, const struct request *req, char *msg,
		size_t msg_size)
{
	struct json_object *obj = reply_new_ok(req->id);
	int64_t now = now_unix();
	char line[256];

	if (!obj)
		return PROTO_E_INTERNAL;
	put_string(obj, "state", token_state_name(tokend_token_state(d, now)));
	put_string(obj, "message", tokend_status_line(d, line, sizeof(line)));
	put_token_fields(obj, d, now);
	put_time(obj, "last_refresh", d->last_refresh);
	/* A service token is never refreshed by the daemon, only reloaded. */
	put_null(obj, "next_refresh");
	put_string(obj, "last_error", d->last_error);
	put_int(obj, "retries", 0);
	put_string(obj, "version", RT_VERSION);
	put_int(obj, "pid", getpid());
	put_int(obj, "uptime", (int64_t)((now_monotonic_usec() - d->started_usec) / 1000000ULL));
	return finish(d, obj);
}

static enum proto_error answer_get(struct tokend *d, const struct request *req, char *msg,
		size_t msg_size)
{
	_cleanup_(secret_freep) struct secret *token = NULL;
	struct secret *buf = d->reply_buf;
	int64_t now = now_unix();
	struct json_object *obj;
	char iso[32];
	int n, r;

	switch (tokend_token_state(d, now)) {
	case TOKEN_STATE_NONE:
		snprintf(msg, msg_size, "%s",
			d->last_error[0] ? d->last_error : "the daemon holds no token");
		return PROTO_E_NO_TOKEN;
	case TOKEN_STATE_EXPIRED:
		snprintf(msg, msg_size, "the token expired at %s; the daemon needs a new one",
			proto_format_time(d->info.claims.exp, iso, sizeof(iso)));
		return PROTO_E_TOKEN_EXPIRED;
	case TOKEN_STATE_VALID:
		break;
	}
	if (req->min_valid > 0 && d->info.claims.has_exp && d->info.claims.exp - now < req->min_valid) {
		snprintf(msg, msg_size, "the token is valid for %lld s only, less than min_valid",
			(long long)(d->info.claims.exp - now));
		return PROTO_E_TOKEN_EXPIRED;
	}

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
	if (n < 2 || (size_t)n + token->len + 14 > buf->size || buf->data[n - 2] != '}') {
		secret_clear(buf);
		return PROTO_E_INTERNAL;
	}
	n -= 2;
	memcpy(buf->data + n, ",\"token\":\"", 10);
	n += 10;
	memcpy(buf->data + n, token->data, token->len);
	n += (int)token->len;
	memcpy(buf->data + n, "\"}\n", 4);
	buf->len = (size_t)n + 3;
	return PROTO_OK;
}

typedef enum proto_error (*answer_fn)(struct tokend *d, const struct request *req, char *msg,
	size_t msg_size);

static const answer_fn answers[_PROTO_OP_MAX] = {
	[PROTO_OP_PING] = answer_ping,
	[PROTO_OP_GET] = answer_get,
	[PROTO_OP_STATUS] = answer_status,
};

void ops_answer(struct tokend *d, const struct ucred *peer, const char *line, size_t len)
{
	struct request req;
	const char *why = NULL;
	enum proto_error err;
	char msg[256] = "";

	memset(&req, 0, sizeof(req));
	err = request_parse(line, len, &req, &why);
	if (err != PROTO_OK) {
		log_notice("client pid %d uid %u: %s: %s", (int)peer->pid, (unsigned)peer->uid,
			proto_error_name(err), why ? why : "invalid request");
		ops_error(d, err, why ? why : "invalid request", req.has_id ? req.id : NULL);
		return;
	}
	log_debug("client pid %d uid %u: %s", (int)peer->pid, (unsigned)peer->uid,
		proto_op_name(req.op));

	if (!answers[req.op]) {
		log_notice("client pid %d uid %u: \"%s\" is not supported by this daemon",
			(int)peer->pid, (unsigned)peer->uid, proto_op_name(req.op));
		ops_error(d, PROTO_E_UNKNOWN_OP, "this daemon version serves service tokens only "
			  "and does not support this request", req.id);
		return;
	}
	err = answers[req.op](d, &req, msg, sizeof(msg));
	if (err != PROTO_OK)
		ops_error(d, err, msg[0] ? msg : "internal error, see the daemon log", req.id);
}
