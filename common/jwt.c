/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "common/jwt.h"
#include "common/utf8.h"

/* Header and payload are small JSON objects; anything nested deeper is not a JWT we know. */
#define JWT_MAX_DEPTH 16

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Splits token into its three parts; returns false unless it is well formed. */
static bool split(const char *token, size_t len, size_t ret_start[3], size_t ret_len[3])
{
	size_t part = 0, start = 0;

	if (!token || len == 0 || len > JWT_MAX_LEN)
		return false;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || token[i] == '.') {
			if (part > 2 || i == start)
				return false; /* a third dot, or an empty part */
			ret_start[part] = start;
			ret_len[part] = i - start;
			part++;
			start = i + 1;
		} else if (!is_b64url(token[i])) {
			return false;
		}
	}
	return part == 3;
}

bool jwt_well_formed(const char *token, size_t len)
{
	size_t start[3], plen[3];

	return split(token, len, start, plen);
}

/* Decodes one base64url part (no padding) into a new NUL-terminated heap buffer of
 * *ret_size bytes, which the caller wipes and frees. Returns 0, -EINVAL on bad base64url
 * (a character outside the alphabet, '=', a length of 1 mod 4, non-zero trailing bits) or
 * -ENOMEM. */
static int b64url_decode(const char *b64, size_t len, char **ret, size_t *ret_len, size_t *ret_size)
{
	size_t size = len / 4 * 3 + 3, n = 0;
	char *buf;

	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	/* With b64_end == NULL, sodium refuses the input unless all of it is valid. */
	if (sodium_base642bin((unsigned char *)buf, size - 1, b64, len, NULL, &n, NULL,
			    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
		explicit_bzero(buf, size);
		free(buf);
		return -EINVAL;
	}
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	*ret_size = size;
	return 0;
}

static void wipe_free(char *buf, size_t size)
{
	if (buf) {
		explicit_bzero(buf, size);
		free(buf);
	}
}

/* Parses buf[0..len) as exactly one JSON object (surrounding whitespace allowed). Returns
 * the object (caller puts it) or NULL. */
static json_object *parse_object(const char *buf, size_t len)
{
	struct json_tokener *tok;
	json_object *o;

	if (memchr(buf, '\0', len))
		return NULL;
	tok = json_tokener_new_ex(JWT_MAX_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
				 json_tokener_get_parse_end(tok) != len ||
				 !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Reads a NumericDate claim. Returns 1 and the value if present, 0 if absent, -EINVAL if
 * it is not a number, -ERANGE if it does not fit in int64_t. */
static int get_time(json_object *payload, const char *key, int64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(payload, key, &v))
		return 0;

	switch (json_object_get_type(v)) {
	case json_type_int: {
		/* json-c clamps integers beyond int64 to INT64_MIN/INT64_MAX (and keeps larger
		 * positive ones as uint64), so both limits mean "out of range". */
		int64_t i = json_object_get_int64(v);
		if (i == INT64_MAX || i == INT64_MIN)
			return -ERANGE;
		*ret = i;
		return 1;
	}
	case json_type_double: {
		double d = json_object_get_double(v);
		if (!isfinite(d) || d <= -9223372036854775808.0 || d >= 9223372036854775808.0)
			return -ERANGE;
		*ret = (int64_t)d; /* truncates toward zero */
		return 1;
	}
	default:
		return -EINVAL;
	}
}

static bool printable_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* Copies the "id" claim, else "sub", into ret (JWT_MAX_USER_ID + 1 bytes). Returns 0 or
 * -EINVAL with a reason. */
static int get_user_id(json_object *payload, char *ret, const char **ret_message)
{
	static const char *const keys[] = {"id", "sub"};
	json_object *v = NULL;
	const char *key = NULL;
	char num[32];
	const char *s;
	size_t len;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_object_get_ex(payload, keys[i], &v)) {
			key = keys[i];
			break;
		}
	if (!key) {
		ret[0] = '\0';
		return 0;
	}

	switch (json_object_get_type(v)) {
	case json_type_string:
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		break;
	case json_type_int: {
		/* json-c clamps out-of-range integers; refuse rather than invent an id. */
		int64_t i = json_object_get_int64(v);
		if (i == INT64_MAX || i == INT64_MIN) {
			*ret_message = "user id out of range";
			return -EINVAL;
		}
		snprintf(num, sizeof(num), "%" PRId64, i);
		s = num;
		len = strlen(num);
		break;
	}
	default:
		*ret_message = strcmp(key, "id") == 0 ? "id is not a string or integer"
						      : "sub is not a string or integer";
		return -EINVAL;
	}

	if (len > JWT_MAX_USER_ID) {
		*ret_message = "user id too long";
		return -EINVAL;
	}
	if (!printable_ascii(s, len)) {
		*ret_message = "user id is not printable ASCII";
		return -EINVAL;
	}
	memcpy(ret, s, len);
	ret[len] = '\0';
	return 0;
}

/* Copies the account's name into ret (JWT_MAX_USERNAME + 1 bytes), see struct jwt_claims. */
static void get_username(json_object *payload, char *ret)
{
	json_object *v = NULL;
	const char *s;
	size_t len;

	ret[0] = '\0';
	if (!json_object_object_get_ex(payload, "unique_name", &v) &&
			!(json_object_object_get_ex(payload, "id", NULL) &&
					json_object_object_get_ex(payload, "sub", &v)))
		return;
	if (!json_object_is_type(v, json_type_string))
		return;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > JWT_MAX_USERNAME || !utf8_valid(s, len))
		return;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return;
	memcpy(ret, s, len);
	ret[len] = '\0';
}

int jwt_parse(const char *token, size_t len, struct jwt_claims *ret, const char **ret_message)
{
	struct jwt_claims claims = {.has_exp = false};
	const char *message = NULL;
	size_t start[3], plen[3];
	char *header = NULL, *payload = NULL;
	size_t header_len = 0, header_size = 0, payload_len = 0, payload_size = 0;
	json_object *h = NULL, *p = NULL, *alg;
	int r = -EINVAL;

	if (!token || len == 0) {
		message = "token is empty";
		goto finish;
	}
	if (len > JWT_MAX_LEN) {
		message = "token is too long";
		goto finish;
	}
	if (!split(token, len, start, plen)) {
		message = "not a JWT (expected three base64url parts separated by dots)";
		goto finish;
	}
	/* The signature is never decoded, but a length of 1 mod 4 cannot be base64url. */
	if (plen[2] % 4 == 1) {
		message = "signature is not valid base64url";
		goto finish;
	}

	r = b64url_decode(token + start[0], plen[0], &header, &header_len, &header_size);
	if (r < 0) {
		message = r == -ENOMEM ? "out of memory" : "header is not valid base64url";
		goto finish;
	}
	r = b64url_decode(token + start[1], plen[1], &payload, &payload_len, &payload_size);
	if (r < 0) {
		message = r == -ENOMEM ? "out of memory" : "payload is not valid base64url";
		goto finish;
	}

	r = -EINVAL;
	h = parse_object(header, header_len);
	if (!h) {
		message = "header is not a JSON object";
		goto finish;
	}
	if (!json_object_object_get_ex(h, "alg", &alg) ||
			!json_object_is_type(alg, json_type_string)) {
		message = "header has no \"alg\"";
		goto finish;
	}

	p = parse_object(payload, payload_len);
	if (!p) {
		message = "payload is not a JSON object";
		goto finish;
	}

	r = get_time(p, "exp", &claims.exp);
	if (r < 0) {
		message = r == -ERANGE ? "exp is out of range" : "exp is not a number";
		r = -EINVAL;
		goto finish;
	}
	claims.has_exp = r > 0;
	r = get_time(p, "iat", &claims.iat);
	if (r < 0) {
		message = r == -ERANGE ? "iat is out of range" : "iat is not a number";
		r = -EINVAL;
		goto finish;
	}
	claims.has_iat = r > 0;

	r = get_user_id(p, claims.user_id, &message);
	if (r < 0)
		goto finish;
	get_username(p, claims.username);

	*ret = claims;
	r = 0;
finish:
	json_object_put(h);
	json_object_put(p);
	wipe_free(header, header_size);
	wipe_free(payload, payload_size);
	explicit_bzero(&claims, sizeof(claims));
	if (r < 0 && ret_message)
		*ret_message = message ? message : "invalid token";
	return r;
}
