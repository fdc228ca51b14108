/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/jwt.h"
#include "daemon/helper/response.h"

/* A login answer is a small object; anything deeper is not one. */
#define LOGIN_RESPONSE_MAX_DEPTH 16
/* The helper never reads more than this from the server either. */
#define LOGIN_RESPONSE_MAX_BODY (1024 * 1024)

/* Overwrites a string json-c holds. json-c hands out const pointers, but the bytes belong to
 * the object (inline or malloc'ed by it) and are freed unwiped by json_object_put(). */
static void wipe_string(struct json_object *o)
{
	char *s = (char *)json_object_get_string(o);
	int n = json_object_get_string_len(o);

	if (s && n > 0)
		explicit_bzero(s, (size_t)n);
}

/* Wipes every string (keys are names, not secrets) in o and below. */
static void wipe_tree(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		wipe_string(o);
		break;
	case json_type_object: {
		json_object_object_foreach(o, key, child)
		{
			(void)key;
			wipe_tree(child);
		}
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			wipe_tree(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
}

static void json_object_putp(struct json_object **o)
{
	if (*o) {
		wipe_tree(*o);
		json_object_put(*o);
	}
	*o = NULL;
}

static void tokener_freep(struct json_tokener **tok)
{
	struct json_tokener *t = *tok;

	if (!t)
		return;
	/* The tokener assembles every string (the token too) in its print buffer, and a parse
	 * that failed half-way leaves objects on its stack that json_tokener_free() drops
	 * unwiped. These fields are documented as private, but there is no other way to reach
	 * those bytes before they are freed. */
	if (t->pb && t->pb->buf && t->pb->size > 0)
		explicit_bzero(t->pb->buf, (size_t)t->pb->size);
	for (int i = 0; t->stack && i <= t->depth && i < t->max_depth; i++) {
		wipe_tree(t->stack[i].current);
		wipe_tree(t->stack[i].obj);
	}
	json_tokener_free(t);
	*tok = NULL;
}

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses text[0..len) as exactly one JSON value (whitespace around it is fine). Returns true
 * and the value in *ret (NULL for a JSON null), or false. */
static bool parse_one(const char *text, size_t len, struct json_object **ret)
{
	struct json_tokener *tok __attribute__((cleanup(tokener_freep))) = NULL;
	struct json_object *o;
	size_t end;

	if (len == 0 || len > LOGIN_RESPONSE_MAX_BODY || memchr(text, '\0', len))
		return false;
	tok = json_tokener_new_ex(LOGIN_RESPONSE_MAX_DEPTH);
	if (!tok)
		return false;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
						    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o && json_tokener_get_error(tok) == json_tokener_continue) {
		/* A bare number or literal only ends at the end of the input: say it has ended. */
		o = json_tokener_parse_ex(tok, "", 1);
		end = len;
	} else {
		end = json_tokener_get_parse_end(tok);
	}
	if (json_tokener_get_error(tok) != json_tokener_success)
		return false; /* an error, or a truncated document */
	for (; end < len; end++)
		if (!is_json_space(text[end])) {
			json_object_putp(&o);
			return false;
		}
	*ret = o;
	return true;
}

/* Reads "id" from o into user_id: a string of printable ASCII or an integer; absent or null
 * leaves it empty. Returns false for anything else. */
static bool get_user_id(struct json_object *o, char user_id[PIPE_MAX_USER_ID + 1])
{
	struct json_object *id;

	user_id[0] = '\0';
	if (!json_object_object_get_ex(o, "id", &id) || !id)
		return true;

	if (json_object_is_type(id, json_type_int)) {
		/* json-c keeps large positive integers as uint64. */
		if (json_object_get_int64(id) == INT64_MAX)
			snprintf(user_id, PIPE_MAX_USER_ID + 1, "%" PRIu64,
					json_object_get_uint64(id));
		else
			snprintf(user_id, PIPE_MAX_USER_ID + 1, "%" PRId64,
					json_object_get_int64(id));
		return true;
	}
	if (!json_object_is_type(id, json_type_string))
		return false;

	const char *s = json_object_get_string(id);
	size_t n = (size_t)json_object_get_string_len(id);
	if (n > PIPE_MAX_USER_ID)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	memcpy(user_id, s, n);
	user_id[n] = '\0';
	return true;
}

/* Reads an optional non-negative integer "expires_in" from o into *ret (unchanged when
 * absent or null). Returns false for anything else. */
static bool get_expires_in(struct json_object *o, int64_t *ret)
{
	struct json_object *e;

	if (!o || !json_object_object_get_ex(o, "expires_in", &e) || !e)
		return true;
	if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0)
		return false;
	*ret = json_object_get_int64(e);
	return true;
}

/* Finds the token string and the object holding "id" in a v1 or v2 answer. */
static int find_token(struct json_object *root, struct json_object **ret_token,
		struct json_object **ret_holder, struct json_object **ret_inner,
		const char **ret_message)
{
	struct json_object *t, *inner;

	if (json_object_object_get_ex(root, "auth_token", &t)) {
		*ret_holder = root;
		*ret_inner = NULL;
	} else if (json_object_object_get_ex(root, "accessToken", &inner) &&
			json_object_is_type(inner, json_type_object) &&
			json_object_object_get_ex(inner, "authToken", &t)) {
		*ret_holder = inner;
		*ret_inner = inner;
	} else {
		*ret_message = "no auth_token in response";
		return -EBADMSG;
	}
	if (!json_object_is_type(t, json_type_string)) {
		*ret_message = "auth_token is not a string";
		return -EBADMSG;
	}
	*ret_token = t;
	return 0;
}

int helper_response_parse(const char *body, size_t len, char *token_buf, size_t token_size,
		struct helper_response *ret, const char **ret_message)
{
	struct json_object *outer __attribute__((cleanup(json_object_putp))) = NULL;
	struct json_object *decoded __attribute__((cleanup(json_object_putp))) = NULL;
	struct json_object *root, *t, *holder, *inner;
	struct helper_response r = {.expires_in = -1};
	const char *token;
	size_t token_len;
	int k;

	if (!body || len == 0) {
		*ret_message = "response is empty";
		return -EBADMSG;
	}
	if (len > LOGIN_RESPONSE_MAX_BODY) {
		*ret_message = "response too large";
		return -EBADMSG;
	}

	if (!parse_one(body, len, &outer)) {
		*ret_message = "response is not JSON";
		return -EBADMSG;
	}
	root = outer;

	/* Some servers send the document encoded once more, as a JSON string: unwrap it once. */
	if (json_object_is_type(outer, json_type_string)) {
		if (!parse_one(json_object_get_string(outer),
				    (size_t)json_object_get_string_len(outer), &decoded)) {
			*ret_message = "response is a string that does not hold JSON";
			return -EBADMSG;
		}
		if (json_object_is_type(decoded, json_type_string)) {
			*ret_message = "response is encoded as a JSON string more than once";
			return -EBADMSG;
		}
		root = decoded;
	}
	if (!root || !json_object_is_type(root, json_type_object)) {
		*ret_message = "response is not a JSON object";
		return -EBADMSG;
	}

	k = find_token(root, &t, &holder, &inner, ret_message);
	if (k < 0)
		return k;

	token = json_object_get_string(t);
	token_len = (size_t)json_object_get_string_len(t);
	if (!jwt_well_formed(token, token_len)) {
		*ret_message = "token is not a well-formed JWT";
		return -EBADMSG;
	}
	if (token_len >= token_size) {
		*ret_message = "token too long";
		return -EBADMSG;
	}
	if (!get_user_id(holder, r.user_id)) {
		*ret_message = "id in response is not a printable string or an integer";
		return -EBADMSG;
	}
	/* v2 may carry expires_in next to the token or at the top; the inner one wins. */
	if (!get_expires_in(root, &r.expires_in) || !get_expires_in(inner, &r.expires_in)) {
		*ret_message = "expires_in in response is not a non-negative integer";
		return -EBADMSG;
	}

	memcpy(token_buf, token, token_len);
	token_buf[token_len] = '\0';
	r.token = token_buf;
	r.token_len = token_len;
	*ret = r;
	return 0;
}

size_t helper_response_error_message(const char *body, size_t len, char *buf, size_t size)
{
	static const char *const keys[] = {"message", "title", "error"};
	struct json_object *root __attribute__((cleanup(json_object_putp))) = NULL;
	struct json_object *v;
	const char *s = NULL;
	size_t n = 0;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	if (!body || len == 0 || len > LOGIN_RESPONSE_MAX_BODY || !parse_one(body, len, &root) ||
			!root || !json_object_is_type(root, json_type_object))
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !s; i++)
		if (json_object_object_get_ex(root, keys[i], &v) &&
				json_object_is_type(v, json_type_string))
			s = json_object_get_string(v);
	for (; s && *s && n + 1 < size; s++)
		buf[n++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
	buf[n] = '\0';
	return n;
}

/* Returns true if haystack contains needle, ASCII case-insensitively. */
static bool contains(const char *haystack, const char *needle)
{
	return strcasestr(haystack, needle) != NULL;
}

bool helper_response_wants_mfa(const char *message)
{
	static const char *const names[] = {
			"mfa", "two-factor", "two factor", "2fa", "otp", "one-time", "one time"};
	static const char *const asks[] = {"required", "missing", "needed", "expected", "enter"};
	bool named = false, asked = false;

	if (!message)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		named = named || contains(message, names[i]);
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++)
		asked = asked || contains(message, asks[i]);
	return named && asked;
}
