/* SPDX-License-Identifier: MIT */
/* Request lines, see request.h: one JSON object read with the strict reader of json.h, its
 * known fields checked and stored, everything else validated and skipped. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/json.h"
#include "proto/request.h"

#define STR(x)  #x
#define XSTR(x) STR(x)

#define MSG_EMPTY      "request is empty"
#define MSG_NOT_OBJECT "request is not a JSON object"
#define MSG_TRAILING   "request has data after the JSON object"
#define MSG_NUL_BYTE   "request contains a NUL byte"
#define MSG_OP_MISSING "\"op\" is missing"
#define MSG_OP_UNKNOWN "\"op\" names no known request"
#define MSG_VERSION    "only \"v\":" XSTR(PROTO_VERSION) " is supported"

/* The fields the parser knows; everything else is validated and skipped. */
enum field {
	F_OP,
	F_V,
	F_ID,
	F_MIN_VALID,
	F_WAIT,
	F_USERNAME,
	F_MFA,
	F_PASSWORD,
	F_TOKEN,
	_F_MAX,
};

struct field_info {
	const char *name;
	const char *msg_type;  /* wrong JSON type (or a fraction, or negative) */
	const char *msg_large; /* too long or out of range */
	const char *msg_nul;   /* a string holding \u0000 */
	const char *msg_twice;
};

#define FIELD(n, type, large)                                                                      \
	{                                                                                          \
		.name = n, .msg_type = "\"" n "\" " type, .msg_large = "\"" n "\" " large,         \
		.msg_nul = "\"" n "\" must not contain \\u0000",                                   \
		.msg_twice = "\"" n "\" appears twice",                                            \
	}

#define MSG_SECONDS "must be a whole number of seconds, 0 or more"

static const struct field_info fields[_F_MAX] = {
		[F_OP] = FIELD(PROTO_F_OP, "must be a string", "is too long"),
		[F_V] = FIELD(PROTO_F_V, "must be an integer", "is out of range"),
		[F_ID] = FIELD(PROTO_F_ID, "must be a string or an integer",
				"is longer than " XSTR(PROTO_MAX_ID) " bytes"),
		[F_MIN_VALID] = FIELD(PROTO_F_MIN_VALID, MSG_SECONDS, "is too large"),
		[F_WAIT] = FIELD(PROTO_F_WAIT, MSG_SECONDS, "is too large"),
		[F_USERNAME] = FIELD(PROTO_F_USERNAME, "must be a string",
				"is longer than " XSTR(PROTO_MAX_USERNAME) " bytes"),
		[F_MFA] = FIELD(PROTO_F_MFA, "must be a string",
				"is longer than " XSTR(PROTO_MAX_MFA) " bytes"),
		[F_PASSWORD] = FIELD(PROTO_F_PASSWORD, "must be a string", "is too long"),
		[F_TOKEN] = FIELD(
				PROTO_F_TOKEN, "must be a string", "is longer than a token can be"),
};

#define MSG_SECRET_REFUSED "a \"password\" or \"token\" is not accepted here"
#define MSG_SECRET_TWICE   "give a \"password\" or a \"token\", not both"

/* Longer than any known field name; longer keys are unknown by definition. */
#define KEY_MAX 15

/* What was seen while reading the object; judged once the whole line proved to be JSON. */
struct state {
	bool seen[_F_MAX];
	char op[PROTO_MAX_OP + 1];
	bool op_too_long;
	bool version_ok;
};

/* Reads a string-valued known field into buf[0..cap); a value of another type is validated
 * first so that broken JSON is reported as such. */
static int parse_string_field(
		struct json_parser *ps, enum field f, char *buf, size_t cap, size_t *ret_len)
{
	struct json_string o = {.buf = buf, .cap = cap};
	int r;

	if (json_peek(ps) != '"') {
		r = json_skip_value(ps, 1);
		return r < 0 ? r : json_fail(ps, fields[f].msg_type);
	}
	r = json_parse_string(ps, &o);
	if (r < 0)
		return r;
	if (o.nul)
		return json_fail(ps, fields[f].msg_nul);
	if (o.len >= cap)
		return json_fail(ps, fields[f].msg_large);
	if (ret_len)
		*ret_len = o.len;
	return 0;
}

/* Reads a number-valued known field; anything else is validated, then refused. */
static int parse_number_field(struct json_parser *ps, enum field f, struct json_number *n)
{
	int r, c = json_peek(ps);

	if (c != '-' && !json_is_digit(c)) {
		r = json_skip_value(ps, 1);
		return r < 0 ? r : json_fail(ps, fields[f].msg_type);
	}
	r = json_parse_number(ps, n);
	if (r < 0)
		return r;
	if (!n->integer)
		return json_fail(ps, fields[f].msg_type);
	return 0;
}

static int parse_seconds(struct json_parser *ps, enum field f, int64_t *ret)
{
	struct json_number n;
	int r;

	r = parse_number_field(ps, f, &n);
	if (r < 0)
		return r;
	if (n.negative && (n.mag != 0 || n.overflow))
		return json_fail(ps, fields[f].msg_type);
	if (n.overflow)
		return json_fail(ps, fields[f].msg_large);
	*ret = (int64_t)n.mag;
	return 0;
}

static int parse_field(struct json_parser *ps, enum field f, struct request *req, struct state *st)
{
	struct json_string o;
	struct json_number n;
	int r;

	switch (f) {
	case F_OP:
		if (json_peek(ps) == '"') {
			/* Too long to be known is an unknown op, not a malformed request. */
			o = (struct json_string){.buf = st->op, .cap = sizeof(st->op)};
			r = json_parse_string(ps, &o);
			if (r < 0)
				return r;
			if (o.nul)
				return json_fail(ps, fields[f].msg_nul);
			st->op_too_long = o.len >= sizeof(st->op);
			return 0;
		}
		return parse_string_field(ps, f, NULL, 0, NULL);

	case F_V:
		r = parse_number_field(ps, f, &n);
		if (r < 0)
			return r;
		if (n.overflow)
			return json_fail(ps, fields[f].msg_large);
		st->version_ok = !n.negative && n.mag == PROTO_VERSION;
		return 0;

	case F_ID:
		if (json_peek(ps) == '-' || json_is_digit(json_peek(ps))) {
			r = parse_number_field(ps, f, &n);
			if (r < 0)
				return r;
			if (n.len > PROTO_MAX_ID)
				return json_fail(ps, fields[f].msg_large);
			memcpy(req->id, n.text, n.len);
			req->id[n.len] = '\0';
		} else {
			r = parse_string_field(ps, f, req->id, sizeof(req->id), NULL);
			if (r < 0)
				return r;
		}
		req->has_id = true;
		return 0;

	case F_MIN_VALID:
		return parse_seconds(ps, f, &req->min_valid);

	case F_WAIT:
		return parse_seconds(ps, f, &req->wait);

	case F_USERNAME:
		return parse_string_field(ps, f, req->username, sizeof(req->username), NULL);

	case F_MFA:
		return parse_string_field(ps, f, req->mfa, sizeof(req->mfa), NULL);

	case F_PASSWORD:
	case F_TOKEN:
		if (!req->secret || req->secret_size == 0) {
			req->wants_secret = true;
			return json_fail(ps, MSG_SECRET_REFUSED);
		}
		if (req->has_secret)
			return json_fail(ps, MSG_SECRET_TWICE);
		r = parse_string_field(ps, f, req->secret, req->secret_size, &req->secret_len);
		if (r < 0)
			return r;
		req->has_secret = true;
		req->secret_is_token = f == F_TOKEN;
		return 0;

	case _F_MAX:
		break;
	}
	return json_fail(ps, JSON_MSG_SYNTAX);
}

static int lookup_field(const struct json_string *key)
{
	if (key->len > KEY_MAX || key->nul)
		return -1;
	for (int i = 0; i < _F_MAX; i++)
		if (strcmp(key->buf, fields[i].name) == 0)
			return i;
	return -1;
}

static int parse_object(struct json_parser *ps, struct request *req, struct state *st)
{
	char keybuf[KEY_MAX + 1];
	int r, c;

	json_skip_ws(ps);
	c = json_peek(ps);
	if (c < 0)
		return json_fail(ps, MSG_EMPTY);
	if (c != '{') {
		/* Say "not an object" only to what is JSON, such as an array or a string. */
		r = json_skip_value(ps, 0);
		return r < 0 ? r : json_fail(ps, MSG_NOT_OBJECT);
	}
	ps->p++;

	json_skip_ws(ps);
	if (json_peek(ps) == '}')
		ps->p++;
	else
		for (;;) {
			struct json_string key = {.buf = keybuf, .cap = sizeof(keybuf)};
			int f;

			json_skip_ws(ps);
			r = json_parse_string(ps, &key);
			if (r < 0)
				return r;
			r = json_expect(ps, ':');
			if (r < 0)
				return r;
			json_skip_ws(ps);

			f = lookup_field(&key);
			if (f < 0)
				r = json_skip_value(ps, 1);
			else if (st->seen[f])
				r = json_fail(ps, fields[f].msg_twice);
			else {
				st->seen[f] = true;
				r = parse_field(ps, (enum field)f, req, st);
			}
			if (r < 0)
				return r;

			json_skip_ws(ps);
			c = json_peek(ps);
			if (c != ',' && c != '}')
				return json_fail(ps, JSON_MSG_SYNTAX);
			ps->p++;
			if (c == '}')
				break;
		}

	json_skip_ws(ps);
	if (ps->p != ps->end)
		return json_fail(ps, MSG_TRAILING);
	return 0;
}

enum proto_error request_parse(
		const char *line, size_t len, struct request *req, const char **ret_message)
{
	struct json_parser ps;
	struct state st = {0};
	enum proto_error err = PROTO_E_BAD_REQUEST;
	const char *msg;
	int r;
	char *secret = req->secret;
	size_t secret_size = req->secret_size;

	*req = (struct request){
			.op = _PROTO_OP_MAX,
			.min_valid = -1,
			.wait = -1,
			.secret = secret,
			.secret_size = secret_size,
	};

	if (!line)
		line = "";
	ps = (struct json_parser){.p = line, .end = line + len};

	/* A NUL byte can only be an attack or a broken client; say so plainly. */
	if (memchr(line, '\0', len)) {
		msg = MSG_NUL_BYTE;
		goto fail;
	}
	if (parse_object(&ps, req, &st) < 0) {
		msg = ps.msg;
		goto fail;
	}

	/* The version decides what the rest means, so it is judged first. */
	if (st.seen[F_V] && !st.version_ok) {
		err = PROTO_E_UNSUPPORTED_VERSION;
		msg = MSG_VERSION;
		goto fail;
	}
	if (!st.seen[F_OP]) {
		msg = MSG_OP_MISSING;
		goto fail;
	}
	err = PROTO_E_UNKNOWN_OP;
	msg = MSG_OP_UNKNOWN;
	if (st.op_too_long)
		goto fail;
	r = proto_op_from_name(st.op);
	if (r < 0)
		goto fail;
	req->op = (enum proto_op)r;

	if (req->secret && req->secret_size > 0 && !req->has_secret)
		req->secret[0] = '\0';
	if (ret_message)
		*ret_message = NULL;
	return PROTO_OK;

fail:
	if (req->secret)
		explicit_bzero(req->secret, req->secret_size);
	req->secret_len = 0;
	req->has_secret = false;
	req->secret_is_token = false;
	explicit_bzero(req->mfa, sizeof(req->mfa));
	if (ret_message)
		*ret_message = msg;
	return err;
}
