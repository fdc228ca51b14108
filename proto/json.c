/* SPDX-License-Identifier: MIT */
/* The strict JSON reader, see json.h. The messages name a request because requests are what
 * it reads on the wire; a reply that fails proto_json_object_valid() gets no message. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/utf8.h"
#include "proto/json.h"
#include "proto/proto.h"

#define STR(x)  #x
#define XSTR(x) STR(x)

#define MSG_DEPTH     "request is nested more than " XSTR(PROTO_MAX_DEPTH) " levels deep"
#define MSG_CONTROL   "string contains a raw control character"
#define MSG_ESCAPE    "string contains an invalid escape"
#define MSG_SURROGATE "string contains an unpaired \\u surrogate"
#define MSG_UTF8      "string is not valid UTF-8"

_Static_assert(PROTO_MAX_DEPTH < 32, "the container stack is a uint32_t");

void json_skip_ws(struct json_parser *ps)
{
	while (ps->p < ps->end &&
			(*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

int json_expect(struct json_parser *ps, char c)
{
	json_skip_ws(ps);
	if (json_peek(ps) != (unsigned char)c)
		return json_fail(ps, JSON_MSG_SYNTAX);
	ps->p++;
	return 0;
}

static void put(struct json_string *o, unsigned char c)
{
	if (o->buf && o->len + 1 < o->cap)
		o->buf[o->len] = (char)c;
	o->len++;
}

static void put_utf8(struct json_string *o, uint32_t cp)
{
	if (cp < 0x80)
		put(o, (unsigned char)cp);
	else if (cp < 0x800) {
		put(o, (unsigned char)(0xC0 | (cp >> 6)));
		put(o, (unsigned char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		put(o, (unsigned char)(0xE0 | (cp >> 12)));
		put(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
		put(o, (unsigned char)(0x80 | (cp & 0x3F)));
	} else {
		put(o, (unsigned char)(0xF0 | (cp >> 18)));
		put(o, (unsigned char)(0x80 | ((cp >> 12) & 0x3F)));
		put(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
		put(o, (unsigned char)(0x80 | (cp & 0x3F)));
	}
}

static int parse_hex4(struct json_parser *ps, uint32_t *ret)
{
	uint32_t v = 0;

	if (ps->end - ps->p < 4)
		return json_fail(ps, MSG_ESCAPE);
	for (int i = 0; i < 4; i++) {
		char c = ps->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return json_fail(ps, MSG_ESCAPE);
	}
	ps->p += 4;
	*ret = v;
	return 0;
}

/* Reads a \uXXXX escape (the "\u" already consumed), joining a surrogate pair. */
static int parse_unicode_escape(struct json_parser *ps, uint32_t *ret)
{
	uint32_t cp, low;
	int r;

	r = parse_hex4(ps, &cp);
	if (r < 0)
		return r;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return json_fail(ps, MSG_SURROGATE);
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
			return json_fail(ps, MSG_SURROGATE);
		ps->p += 2;
		r = parse_hex4(ps, &low);
		if (r < 0)
			return r;
		if (low < 0xDC00 || low > 0xDFFF)
			return json_fail(ps, MSG_SURROGATE);
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
	}
	*ret = cp;
	return 0;
}

/* Reads the string starting at the opening quote, decoding it into o. */
int json_parse_string(struct json_parser *ps, struct json_string *o)
{
	int r;

	o->len = 0;
	o->nul = false;
	if (json_peek(ps) != '"')
		return json_fail(ps, JSON_MSG_SYNTAX);
	ps->p++;

	for (;;) {
		unsigned char c;
		uint32_t cp;
		size_t n;

		if (ps->p >= ps->end)
			return json_fail(ps, JSON_MSG_SYNTAX);
		c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return json_fail(ps, MSG_CONTROL);
		if (c != '\\') {
			n = utf8_sequence_len(ps->p, (size_t)(ps->end - ps->p));
			if (n == 0)
				return json_fail(ps, MSG_UTF8);
			for (size_t i = 0; i < n; i++)
				put(o, (unsigned char)ps->p[i]);
			ps->p += n;
			continue;
		}

		ps->p++;
		if (ps->p >= ps->end)
			return json_fail(ps, JSON_MSG_SYNTAX);
		c = (unsigned char)*ps->p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			put(o, c);
			break;
		case 'b':
			put(o, '\b');
			break;
		case 'f':
			put(o, '\f');
			break;
		case 'n':
			put(o, '\n');
			break;
		case 'r':
			put(o, '\r');
			break;
		case 't':
			put(o, '\t');
			break;
		case 'u':
			r = parse_unicode_escape(ps, &cp);
			if (r < 0)
				return r;
			if (cp == 0)
				o->nul = true;
			put_utf8(o, cp);
			break;
		default:
			return json_fail(ps, MSG_ESCAPE);
		}
	}

	if (o->buf && o->cap > 0)
		o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
	return 0;
}

static int parse_digits(struct json_parser *ps)
{
	if (!json_is_digit(json_peek(ps)))
		return json_fail(ps, JSON_MSG_SYNTAX);
	while (json_is_digit(json_peek(ps)))
		ps->p++;
	return 0;
}

int json_parse_number(struct json_parser *ps, struct json_number *n)
{
	int r;

	*n = (struct json_number){.text = ps->p, .integer = true};
	if (json_peek(ps) == '-') {
		n->negative = true;
		ps->p++;
	}
	if (json_peek(ps) == '0')
		ps->p++;
	else if (json_is_digit(json_peek(ps)))
		while (json_is_digit(json_peek(ps))) {
			unsigned d = (unsigned)(*ps->p++ - '0');
			if (n->overflow || n->mag > ((uint64_t)INT64_MAX - d) / 10)
				n->overflow = true;
			else
				n->mag = n->mag * 10 + d;
		}
	else
		return json_fail(ps, JSON_MSG_SYNTAX);

	if (json_peek(ps) == '.') {
		n->integer = false;
		ps->p++;
		r = parse_digits(ps);
		if (r < 0)
			return r;
	}
	if (json_peek(ps) == 'e' || json_peek(ps) == 'E') {
		n->integer = false;
		ps->p++;
		if (json_peek(ps) == '+' || json_peek(ps) == '-')
			ps->p++;
		r = parse_digits(ps);
		if (r < 0)
			return r;
	}
	n->len = (size_t)(ps->p - n->text);
	return 0;
}

static int parse_literal(struct json_parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return json_fail(ps, JSON_MSG_SYNTAX);
	ps->p += n;
	return 0;
}

/* Reads any value but an object or an array. */
static int skip_scalar(struct json_parser *ps)
{
	struct json_string o = {0};
	struct json_number n;
	int c = json_peek(ps);

	if (c == '"')
		return json_parse_string(ps, &o);
	if (c == '-' || json_is_digit(c))
		return json_parse_number(ps, &n);
	if (c == 't')
		return parse_literal(ps, "true");
	if (c == 'f')
		return parse_literal(ps, "false");
	if (c == 'n')
		return parse_literal(ps, "null");
	return json_fail(ps, JSON_MSG_SYNTAX);
}

/* Reads an object member name and the colon after it. */
static int skip_key(struct json_parser *ps)
{
	struct json_string o = {0};
	int r;

	json_skip_ws(ps);
	r = json_parse_string(ps, &o);
	if (r < 0)
		return r;
	return json_expect(ps, ':');
}

/* Validates and skips one value of any type inside depth open containers, without recursion:
 * bit i of is_array tells whether the container opened at level i is an array. */
int json_skip_value(struct json_parser *ps, unsigned depth)
{
	uint32_t is_array = 0;
	unsigned level = 0;
	int r, c;

	for (;;) {
		/* Here a value starts. */
		json_skip_ws(ps);
		c = json_peek(ps);
		if (c == '{' || c == '[') {
			if (depth + level >= PROTO_MAX_DEPTH)
				return json_fail(ps, MSG_DEPTH);
			ps->p++;
			level++;
			if (c == '[')
				is_array |= UINT32_C(1) << level;
			else
				is_array &= ~(UINT32_C(1) << level);

			json_skip_ws(ps);
			if (json_peek(ps) != (c == '[' ? ']' : '}')) {
				if (c == '{') {
					r = skip_key(ps);
					if (r < 0)
						return r;
				}
				continue;
			}
			ps->p++;
			level--;
		} else {
			r = skip_scalar(ps);
			if (r < 0)
				return r;
		}

		/* Here a value ended: close containers until one has a next element. */
		for (;;) {
			bool array;

			if (level == 0)
				return 0;
			array = is_array & (UINT32_C(1) << level);
			json_skip_ws(ps);
			c = json_peek(ps);
			if (c == ',') {
				ps->p++;
				if (!array) {
					r = skip_key(ps);
					if (r < 0)
						return r;
				}
				break;
			}
			if (c != (array ? ']' : '}'))
				return json_fail(ps, JSON_MSG_SYNTAX);
			ps->p++;
			level--;
		}
	}
}

bool proto_json_object_valid(const char *s, size_t len)
{
	struct json_parser ps;

	if (!s || memchr(s, '\0', len))
		return false;
	ps = (struct json_parser){.p = s, .end = s + len};
	json_skip_ws(&ps);
	if (json_peek(&ps) != '{' || json_skip_value(&ps, 0) < 0)
		return false;
	json_skip_ws(&ps);
	return ps.p == ps.end;
}
