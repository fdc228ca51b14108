/* SPDX-License-Identifier: MIT */
/* Fuzzes reply_read_parse() (proto/reply_read.h), which reads every reply the client gets,
 * against what read them before it: proto_json_object_valid() and json-c (jsonc_parse() here, what
 * proto/reply.c did). Besides memory safety it checks that the reader accepts nothing those
 * refuse, and refuses nothing they accept unless its own rules say so (a name given twice,
 * more than PROTO_MAX_REPLY_FIELDS fields, an escaped name too long or holding \u0000; checked here
 * the slow way, every name unescaped in full); and that on a line both accept, every field
 * reads as json-c reads it, a string cut to a small buffer is a prefix of it that ends on a
 * character boundary, and reply_read_error() agrees with jsonc_error().
 *
 * json-c (0.16) unescapes some surrogate pairs wrongly, \ud837\ude00 into U+FFFD rather than
 * U+1DE00 (those whose high surrogate ends in 0x36 or 0x37 modulo 0x40): where json-c reads a
 * U+FFFD the reader does not, the two may differ on an escaped string or name. */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>

#include "common/utf8.h"
#include "fuzz.h"
#include "proto/json.h"
#include "proto/reply_read.h"

/* Unescaped names, one after another (unescaping never makes a string longer); a value; a
 * name as a C string. */
static char names[PROTO_MAX_LINE];
static char value[PROTO_MAX_LINE];
static char cname[PROTO_MAX_LINE + 1];

/* Returns how many U+FFFD s[0..len) holds: json-c's stand-in for what it could not read. */
static size_t replacements(const char *s, size_t len)
{
	size_t n = 0;

	for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), "\xef\xbf\xbd", 3)); p += 3)
		n++;
	return n;
}

struct name {
	const char *s;
	size_t len;
	bool escaped, nul;
};

/* Returns true if the valid JSON object line[0..len) obeys the reader's rules beyond JSON. */
static bool rules_kept(const char *line, size_t len)
{
	static struct name seen[PROTO_MAX_REPLY_FIELDS + 1];
	struct json_parser ps = {.p = line, .end = line + len};
	size_t n = 0, used = 0;

	FUZZ_CHECK(json_expect(&ps, '{') == 0);
	json_skip_ws(&ps);
	if (json_peek(&ps) == '}')
		return true;
	for (;;) {
		struct json_string o = {.buf = names + used, .cap = sizeof(names) - used};
		const char *raw;

		if (n > PROTO_MAX_REPLY_FIELDS)
			return false;
		json_skip_ws(&ps);
		raw = ps.p + 1;
		FUZZ_CHECK(json_parse_string(&ps, &o) == 0);
		FUZZ_CHECK(o.len < o.cap);
		seen[n] = (struct name){.s = names + used,
				.len = o.len,
				.nul = o.nul,
				.escaped = (size_t)(ps.p - 1 - raw) != o.len};
		if (seen[n].escaped && (seen[n].nul || seen[n].len > REPLY_MAX_ESCAPED_KEY))
			return false;
		for (size_t i = 0; i < n; i++)
			if (seen[i].len == o.len && memcmp(seen[i].s, seen[n].s, o.len) == 0)
				return false;
		used += o.len;
		n++;
		FUZZ_CHECK(json_expect(&ps, ':') == 0);
		FUZZ_CHECK(json_skip_value(&ps, 1) == 0);
		json_skip_ws(&ps);
		if (*ps.p++ == '}')
			return n <= PROTO_MAX_REPLY_FIELDS;
	}
}

/* The field f of r reads as json-c's v. */
static void check_field(const struct reply_read *r, const struct reply_field *f, const char *key,
		struct json_object *v)
{
	size_t len, cut_len;
	const char *span;
	char cut[8];
	int64_t i;
	bool b;

	switch (f->type) {
	case REPLY_NULL:
		FUZZ_CHECK(v == NULL);
		FUZZ_CHECK(reply_read_is_null(r, key));
		return;
	case REPLY_BOOL:
		FUZZ_CHECK(json_object_is_type(v, json_type_boolean));
		FUZZ_CHECK(reply_read_bool(r, key, &b) == 0);
		FUZZ_CHECK(b == (bool)json_object_get_boolean(v));
		return;
	case REPLY_NUMBER:
		if (!f->integer) {
			FUZZ_CHECK(json_object_is_type(v, json_type_double));
			FUZZ_CHECK(reply_read_int64(r, key, &i) == -EINVAL);
			return;
		}
		FUZZ_CHECK(json_object_is_type(v, json_type_int));
		if (f->overflow) {
			FUZZ_CHECK(reply_read_int64(r, key, &i) == -ERANGE);
			return;
		}
		FUZZ_CHECK(reply_read_int64(r, key, &i) == 0);
		FUZZ_CHECK(i == json_object_get_int64(v));
		return;
	case REPLY_STRING:
		FUZZ_CHECK(json_object_is_type(v, json_type_string));
		if (f->nul) {
			FUZZ_CHECK(reply_read_string(r, key, value, sizeof(value), &len) ==
					-EILSEQ);
			FUZZ_CHECK(reply_read_span(r, key, &span, &len) == -EILSEQ);
			return;
		}
		FUZZ_CHECK(reply_read_string(r, key, value, sizeof(value), &len) == 0);
		FUZZ_CHECK(value[len] == '\0');
		if (len != (size_t)json_object_get_string_len(v) ||
				memcmp(value, json_object_get_string(v), len) != 0)
			FUZZ_CHECK(!f->plain &&
					replacements(json_object_get_string(v),
							(size_t)json_object_get_string_len(v)) >
							replacements(value, len));
		if (reply_read_span(r, key, &span, &cut_len) == 0) {
			FUZZ_CHECK(f->plain && cut_len == len && memcmp(span, value, len) == 0);
		} else {
			FUZZ_CHECK(!f->plain);
		}
		/* Cut to fit: a prefix, whole characters only, at most 3 bytes short of the room.
		 */
		FUZZ_CHECK(reply_read_string(r, key, cut, sizeof(cut), &cut_len) == 0);
		FUZZ_CHECK(cut_len == len);
		FUZZ_CHECK(memcmp(cut, value, strlen(cut)) == 0);
		FUZZ_CHECK(utf8_valid(cut, strlen(cut)));
		if (len < sizeof(cut))
			FUZZ_CHECK(strlen(cut) == len);
		else
			FUZZ_CHECK(strlen(cut) + 3 >= sizeof(cut) - 1);
		return;
	case REPLY_OBJECT:
		FUZZ_CHECK(json_object_is_type(v, json_type_object));
		return;
	case REPLY_ARRAY:
		FUZZ_CHECK(json_object_is_type(v, json_type_array));
		return;
	}
	FUZZ_CHECK(!"a field of no type");
}

/* json-c reading a reply line, as the client did before reply_read.c (proto/reply.c). */
static int jsonc_parse(const char *line, size_t len, struct json_object **ret)
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

static enum proto_error jsonc_error(struct json_object *obj, const char **ret_message)
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

static void compare(const struct reply_read *r, struct json_object *obj)
{
	const struct reply_field *f_error = reply_read_field(r, PROTO_F_ERROR);
	const struct reply_field *f_message = reply_read_field(r, PROTO_F_MESSAGE);
	const char *message;
	enum proto_error err;
	bool escaped_names = false;
	char mine[64];

	for (size_t k = 0; k < r->n_fields; k++) {
		const struct reply_field *f = &r->fields[k];
		const char *name = f->key_escaped ? f->key_buf : f->key;
		struct json_object *v;

		/* json-c's names are C strings; the reader refuses a name holding \u0000. */
		FUZZ_CHECK(!memchr(name, '\0', f->key_len));
		memcpy(cname, name, f->key_len);
		cname[f->key_len] = '\0';
		FUZZ_CHECK(reply_read_field(r, cname) == f);
		escaped_names |= f->key_escaped;
		if (!json_object_object_get_ex(obj, cname, &v)) {
			FUZZ_CHECK(f->key_escaped); /* json-c read it as another name */
			continue;
		}
		check_field(r, f, cname, v);
	}
	/* json-c may read two names as one, see above. */
	FUZZ_CHECK((size_t)json_object_object_length(obj) == r->n_fields || escaped_names);

	err = jsonc_error(obj, &message);
	FUZZ_CHECK(reply_read_error(r, mine, sizeof(mine)) == err ||
			/* An "error" holding \u0000 is no code; json-c saw the one before it. */
			(err != PROTO_E_INTERNAL && f_error && f_error->nul));
	/* The message, cut to fit as reply_read_string() cuts. */
	if ((!f_message || !f_message->nul) && strncmp(mine, message, sizeof(mine) - 4) != 0)
		FUZZ_CHECK(replacements(message, strlen(message)) >
				replacements(mine, strlen(mine)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct json_object *obj = NULL;
	struct reply_read r;
	int q, j;

	q = reply_read_parse(&r, line, size);
	FUZZ_CHECK(q == 0 || q == -EBADMSG);
	j = jsonc_parse(line, size, &obj);
	FUZZ_CHECK(j == 0 || j == -EBADMSG || j == -ENOMEM);
	if (q == 0) {
		FUZZ_CHECK(proto_json_object_valid(line, size));
		FUZZ_CHECK(j == 0);
		FUZZ_CHECK(r.n_fields >= 1 && r.n_fields <= PROTO_MAX_REPLY_FIELDS);
	} else {
		FUZZ_CHECK(r.n_fields <= PROTO_MAX_REPLY_FIELDS);
	}
	if (j == 0) {
		FUZZ_CHECK((q == 0) == rules_kept(line, size));
		if (q == 0)
			compare(&r, obj);
	}
	json_object_put(obj);
	return 0;
}
