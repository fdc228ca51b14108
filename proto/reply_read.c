/* SPDX-License-Identifier: MIT */
/* Reply lines read in one pass of the strict reader; see reply_read.h. */
#include <errno.h>
#include <string.h>

#include "proto/json.h"
#include "proto/reply_read.h"

/* Longer than any error code; a longer "error" is no code we know. */
#define CODE_MAX 32

/* Returns the unescaped name of f. */
static const char *key_of(const struct reply_field *f)
{
	return f->key_escaped ? f->key_buf : f->key;
}

/* Returns the field named key[0..len), or NULL. */
static const struct reply_field *find(const struct reply_read *r, const char *key, size_t len)
{
	for (size_t i = 0; i < r->n_fields; i++) {
		const struct reply_field *f = &r->fields[i];

		if (f->key_len == len && memcmp(key_of(f), key, len) == 0)
			return f;
	}
	return NULL;
}

/* Reads a member name and the colon after it into f. */
static int parse_key(struct json_parser *ps, struct reply_field *f)
{
	struct json_string o = {.buf = f->key_buf, .cap = sizeof(f->key_buf)};
	int r;

	json_skip_ws(ps);
	if (json_peek(ps) != '"')
		return -EBADMSG;
	f->key = ps->p + 1;
	r = json_parse_string(ps, &o);
	if (r < 0)
		return r;
	/* Every escape is longer than what it stands for: the same length means none. */
	f->key_escaped = o.len != (size_t)(ps->p - 1 - f->key);
	f->key_len = o.len;
	if (f->key_escaped && (o.nul || o.len >= sizeof(f->key_buf)))
		return -EBADMSG;
	return json_expect(ps, ':');
}

/* Reads the string value at ps->p (its opening quote) into f. A run of printable ASCII but
 * '"' and '\\' is valid JSON text that stands for itself, so such a string (nearly every one
 * the daemon sends; the token of a get is hundreds of bytes of base64url) is only scanned; any
 * other byte sends the whole string to the strict reader. */
static int parse_string_value(struct json_parser *ps, struct reply_field *f)
{
	struct json_string o = {0};
	const char *p = ps->p + 1;
	int r;

	f->type = REPLY_STRING;
	f->text = p;
	while (p < ps->end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' &&
			*p != '\\')
		p++;
	if (p < ps->end && *p == '"') {
		f->text_len = (size_t)(p - f->text);
		f->plain = true;
		ps->p = p + 1;
		return 0;
	}

	r = json_parse_string(ps, &o);
	if (r < 0)
		return r;
	f->text_len = (size_t)(ps->p - 1 - f->text);
	/* Every escape is longer than what it stands for: the same length means none. */
	f->plain = o.len == f->text_len;
	f->nul = o.nul;
	return 0;
}

/* Reads the value after a member name into f. */
static int parse_value(struct json_parser *ps, struct reply_field *f)
{
	struct json_number n;
	int r, c;

	json_skip_ws(ps);
	c = json_peek(ps);
	f->text = ps->p;
	if (c == '"')
		return parse_string_value(ps, f);
	if (c == '-' || json_is_digit(c)) {
		f->type = REPLY_NUMBER;
		r = json_parse_number(ps, &n);
		if (r < 0)
			return r;
		f->text_len = n.len;
		f->integer = n.integer;
		f->overflow = n.overflow;
		/* Without overflow mag is at most INT64_MAX, so negating it cannot overflow. */
		if (!n.overflow)
			f->value = n.negative ? -(int64_t)n.mag : (int64_t)n.mag;
		return 0;
	}

	switch (c) {
	case 't':
	case 'f':
		f->type = REPLY_BOOL;
		f->boolean = c == 't';
		break;
	case 'n':
		f->type = REPLY_NULL;
		break;
	case '{':
		f->type = REPLY_OBJECT;
		break;
	case '[':
		f->type = REPLY_ARRAY;
		break;
	default:
		return -EBADMSG;
	}
	/* Inside the reply object: nested containers count from there, as in requests. */
	r = json_skip_value(ps, 1);
	if (r < 0)
		return r;
	f->text_len = (size_t)(ps->p - f->text);
	return 0;
}

int reply_read_parse(struct reply_read *r, const char *line, size_t len)
{
	struct json_parser ps;
	const struct reply_field *ok;
	int q, c;

	r->n_fields = 0;
	r->ok = false;
	/* A NUL byte needs no search of its own: the reader refuses it inside strings and out. */
	if (!line || len > PROTO_MAX_LINE)
		return -EBADMSG;
	ps = (struct json_parser){.p = line, .end = line + len};

	if (json_expect(&ps, '{') < 0)
		return -EBADMSG;
	json_skip_ws(&ps);
	if (json_peek(&ps) == '}')
		ps.p++;
	else
		for (;;) {
			struct reply_field *f;

			if (r->n_fields == PROTO_MAX_REPLY_FIELDS)
				return -EBADMSG;
			f = &r->fields[r->n_fields];
			*f = (struct reply_field){.type = REPLY_NULL};
			q = parse_key(&ps, f);
			if (q < 0)
				return -EBADMSG;
			if (find(r, key_of(f), f->key_len))
				return -EBADMSG;
			q = parse_value(&ps, f);
			if (q < 0)
				return -EBADMSG;
			r->n_fields++;

			json_skip_ws(&ps);
			c = json_peek(&ps);
			if (c != ',' && c != '}')
				return -EBADMSG;
			ps.p++;
			if (c == '}')
				break;
		}
	json_skip_ws(&ps);
	if (ps.p != ps.end)
		return -EBADMSG;

	ok = find(r, PROTO_F_OK, strlen(PROTO_F_OK));
	if (!ok || ok->type != REPLY_BOOL)
		return -EBADMSG;
	r->ok = ok->boolean;
	return 0;
}

const struct reply_field *reply_read_field(const struct reply_read *r, const char *key)
{
	return find(r, key, strlen(key));
}

bool reply_read_is_null(const struct reply_read *r, const char *key)
{
	const struct reply_field *f = reply_read_field(r, key);

	return f && f->type == REPLY_NULL;
}

int reply_read_bool(const struct reply_read *r, const char *key, bool *ret)
{
	const struct reply_field *f = reply_read_field(r, key);

	if (!f)
		return -ENOENT;
	if (f->type != REPLY_BOOL)
		return -EINVAL;
	*ret = f->boolean;
	return 0;
}

int reply_read_int64(const struct reply_read *r, const char *key, int64_t *ret)
{
	const struct reply_field *f = reply_read_field(r, key);

	if (!f)
		return -ENOENT;
	if (f->type != REPLY_NUMBER || !f->integer)
		return -EINVAL;
	if (f->overflow)
		return -ERANGE;
	*ret = f->value;
	return 0;
}

/* Returns the longest prefix of the valid UTF-8 s[0..len) that ends on a character
 * boundary. */
static size_t utf8_boundary(const char *s, size_t len)
{
	size_t lead = len, need;
	unsigned char c;

	while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
		lead--;
	if (lead == 0)
		return 0;
	c = (unsigned char)s[--lead];
	need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
	return len - lead >= need ? len : lead;
}

int reply_read_string(const struct reply_read *r, const char *key, char *buf, size_t size,
		size_t *ret_len)
{
	const struct reply_field *f = reply_read_field(r, key);
	struct json_string o = {.buf = size > 0 ? buf : NULL, .cap = size};
	struct json_parser ps;

	if (!f)
		return -ENOENT;
	if (f->type != REPLY_STRING)
		return -EINVAL;
	if (f->nul) {
		if (size > 0)
			buf[0] = '\0';
		return -EILSEQ;
	}
	/* The string was read once already: this cannot fail. */
	ps = (struct json_parser){.p = f->text - 1, .end = f->text + f->text_len + 1};
	if (json_parse_string(&ps, &o) < 0)
		return -EBADMSG;
	if (size > 0 && o.len >= size)
		buf[utf8_boundary(buf, size - 1)] = '\0';
	if (ret_len)
		*ret_len = o.len;
	return 0;
}

int reply_read_span(const struct reply_read *r, const char *key, const char **ret, size_t *ret_len)
{
	const struct reply_field *f = reply_read_field(r, key);

	if (!f)
		return -ENOENT;
	if (f->type != REPLY_STRING)
		return -EINVAL;
	if (!f->plain)
		return -EILSEQ;
	*ret = f->text;
	*ret_len = f->text_len;
	return 0;
}

enum proto_error reply_read_error(const struct reply_read *r, char *message, size_t size)
{
	char code[CODE_MAX];
	size_t len;
	int e;

	if (size > 0 && reply_read_string(r, PROTO_F_MESSAGE, message, size, NULL) < 0)
		message[0] = '\0';
	if (r->ok)
		return PROTO_OK;
	if (reply_read_string(r, PROTO_F_ERROR, code, sizeof(code), &len) < 0 ||
			len >= sizeof(code))
		return PROTO_E_INTERNAL;
	e = proto_error_from_name(code);
	return e > 0 ? (enum proto_error)e : PROTO_E_INTERNAL;
}
