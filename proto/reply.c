/* Reply lines built and read with json-c; see reply.h. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "proto/json.h"
#include "proto/reply.h"
#include "proto/request.h"

/* Adds key: val to obj, taking ownership of val even on failure. Returns 0 or -ENOMEM. */
static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* Returns {"ok":ok,"v":1} plus "id" when id is non-empty, or NULL when out of memory. */
static struct json_object *reply_new(bool ok, const char *id)
{
	struct json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	if (add(obj, "ok", json_object_new_boolean(ok)) < 0 ||
			add(obj, "v", json_object_new_int(PROTO_VERSION)) < 0 ||
			(id && id[0] && add(obj, "id", json_object_new_string(id)) < 0)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

struct json_object *reply_new_ok(const char *id)
{
	return reply_new(true, id);
}

struct json_object *reply_new_error(enum proto_error err, const char *message, const char *id)
{
	struct json_object *obj = reply_new(false, id);

	if (!obj)
		return NULL;
	if (add(obj, "error", json_object_new_string(proto_error_name(err))) < 0 ||
			add(obj, "message", json_object_new_string(message ? message : "")) < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

int reply_format(struct json_object *obj, char *buf, size_t size)
{
	const char *s;
	size_t len;

	s = json_object_to_json_string_length(
			obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return -ENOMEM;
	if (len > (size_t)INT_MAX - 2 || len + 2 > size) {
		explicit_bzero((char *)s, len);
		return -ENOBUFS;
	}

	memcpy(buf, s, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';

	/* json-c keeps the serialised text in obj's print buffer on the ordinary heap until obj
	 * is freed; a reply may carry a token, so leave no copy there. json-c serialises anew on
	 * every call, so overwriting the buffer is safe. */
	explicit_bzero((char *)s, len);
	return (int)len + 1;
}

int reply_parse(const char *line, size_t len, struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *obj, *ok;

	/* json-c takes overlong UTF-8, encoded surrogates and raw control characters even in
	 * strict mode; hold replies to the same rules as requests. */
	if (!line || len > PROTO_MAX_LINE || !proto_json_object_valid(line, len))
		return -EBADMSG;

	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (!obj)
		return -EBADMSG;

	if (!json_object_is_type(obj, json_type_object) ||
			!json_object_object_get_ex(obj, "ok", &ok) ||
			!json_object_is_type(ok, json_type_boolean)) {
		json_object_put(obj);
		return -EBADMSG;
	}

	*ret = obj;
	return 0;
}

enum proto_error reply_error(struct json_object *obj, const char **ret_message)
{
	struct json_object *ok, *error, *message;
	int r;

	*ret_message = "";
	if (json_object_object_get_ex(obj, "message", &message) &&
			json_object_is_type(message, json_type_string))
		*ret_message = json_object_get_string(message);

	if (!json_object_object_get_ex(obj, "ok", &ok) ||
			!json_object_is_type(ok, json_type_boolean))
		return PROTO_E_INTERNAL;
	if (json_object_get_boolean(ok))
		return PROTO_OK;

	if (!json_object_object_get_ex(obj, "error", &error) ||
			!json_object_is_type(error, json_type_string))
		return PROTO_E_INTERNAL;
	r = proto_error_from_name(json_object_get_string(error));
	return r > 0 ? (enum proto_error)r : PROTO_E_INTERNAL;
}
