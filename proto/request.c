/* A strict JSON reader (RFC 8259) for one request object, see request.h. It never allocates,
 * never recurses (containers are tracked in a small bit stack bounded by PROTO_MAX_DEPTH) and
 * never reads past len, so any byte string may be thrown at it. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/request.h"

#define STR(x)  #x
#define XSTR(x) STR(x)

static const char *const op_names[_PROTO_OP_MAX] = {
		[PROTO_OP_PING] = "ping",
		[PROTO_OP_GET] = "get",
		[PROTO_OP_STATUS] = "status",
		[PROTO_OP_LOGIN] = "login",
		[PROTO_OP_LOGOUT] = "logout",
		[PROTO_OP_REFRESH] = "refresh",
};

const char *proto_op_name(enum proto_op op)
{
	if ((unsigned)op >= _PROTO_OP_MAX)
		return NULL;
	return op_names[op];
}

#define MSG_EMPTY      "request is empty"
#define MSG_JSON       "request is not valid JSON"
#define MSG_NOT_OBJECT "request is not a JSON object"
#define MSG_TRAILING   "request has data after the JSON object"
#define MSG_NUL_BYTE   "request contains a NUL byte"
#define MSG_DEPTH      "request is nested more than " XSTR(PROTO_MAX_DEPTH) " levels deep"
#define MSG_CONTROL    "string contains a raw control character"
#define MSG_ESCAPE     "string contains an invalid escape"
#define MSG_SURROGATE  "string contains an unpaired \\u surrogate"
#define MSG_UTF8       "string is not valid UTF-8"
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
		.name = n,                                                                         \
		.msg_type = "\"" n "\" " type,                                                     \
		.msg_large = "\"" n "\" " large,                                                   \
		.msg_nul = "\"" n "\" must not contain \\u0000",                                   \
		.msg_twice = "\"" n "\" appears twice",                                            \
	}

#define MSG_SECONDS "must be a whole number of seconds, 0 or more"

static const struct field_info fields[_F_MAX] = {
	[F_OP] = FIELD("op", "must be a string", "is too long"),
	[F_V] = FIELD("v", "must be an integer", "is out of range"),
	[F_ID] = FIELD("id", "must be a string or an integer",
			"is longer than " XSTR(REQUEST_MAX_ID) " bytes"),
	[F_MIN_VALID] = FIELD("min_valid", MSG_SECONDS, "is too large"),
	[F_WAIT] = FIELD("wait", MSG_SECONDS, "is too large"),
	[F_USERNAME] = FIELD("username", "must be a string",
			"is longer than " XSTR(REQUEST_MAX_USERNAME) " bytes"),
	[F_MFA] = FIELD("mfa", "must be a string", "is longer than " XSTR(REQUEST_MAX_MFA) " bytes"),
	[F_PASSWORD] = FIELD("password", "must be a string", "is too long"),
};

#define MSG_PASSWORD_REFUSED "\"password\" is not accepted here"

/* Longer than any known field name; longer keys are unknown by definition. */
#define KEY_MAX 15

_Static_assert(PROTO_MAX_DEPTH < 32, "the container stack is a uint32_t");

struct parser {
	const char *p;   /* next byte to read */
	const char *end; /* one past the last byte */
	const char *msg; /* why parsing failed */
};

/* Where a decoded string goes: buf[0..cap) or nowhere (buf == NULL, only validated). */
struct strout {
	char *buf;
	size_t cap; /* bytes in buf, the terminating NUL included */
	size_t len; /* decoded length; larger than cap - 1 when the string did not fit */
	bool nul;   /* a \u0000 was decoded */
};

/* What one number looked like. */
struct number {
	const char *text;
	size_t len;
	bool negative;
	bool integer;  /* no fraction, no exponent */
	bool overflow; /* magnitude above INT64_MAX */
	uint64_t mag;
};

static int fail(struct parser *ps, const char *msg)
{
	ps->msg = msg;
	return -EBADMSG;
}

static int peek(const struct parser *ps)
{
	return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
			(*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int expect(struct parser *ps, char c)
{
	skip_ws(ps);
	if (peek(ps) != (unsigned char)c)
		return fail(ps, MSG_JSON);
	ps->p++;
	return 0;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Returns the length of the well-formed UTF-8 sequence at s[0..n) (Unicode 15 table 3-7: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 if there is none. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		if (s[0] == 0xE0)
			lo = 0xA0;
		else if (s[0] == 0xED)
			hi = 0x9F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		if (s[0] == 0xF0)
			lo = 0x90;
		else if (s[0] == 0xF4)
			hi = 0x8F;
	} else
		return 0;

	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

static void put(struct strout *o, unsigned char c)
{
	if (o->buf && o->len + 1 < o->cap)
		o->buf[o->len] = (char)c;
	o->len++;
}

static void put_utf8(struct strout *o, uint32_t cp)
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

static int parse_hex4(struct parser *ps, uint32_t *ret)
{
	uint32_t v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, MSG_ESCAPE);
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
			return fail(ps, MSG_ESCAPE);
	}
	ps->p += 4;
	*ret = v;
	return 0;
}

/* Reads a \uXXXX escape (the "\u" already consumed), joining a surrogate pair. */
static int parse_unicode_escape(struct parser *ps, uint32_t *ret)
{
	uint32_t cp, low;
	int r;

	r = parse_hex4(ps, &cp);
	if (r < 0)
		return r;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(ps, MSG_SURROGATE);
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
			return fail(ps, MSG_SURROGATE);
		ps->p += 2;
		r = parse_hex4(ps, &low);
		if (r < 0)
			return r;
		if (low < 0xDC00 || low > 0xDFFF)
			return fail(ps, MSG_SURROGATE);
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
	}
	*ret = cp;
	return 0;
}

/* Reads the string starting at the opening quote, decoding it into o. */
static int parse_string(struct parser *ps, struct strout *o)
{
	int r;

	o->len = 0;
	o->nul = false;
	if (peek(ps) != '"')
		return fail(ps, MSG_JSON);
	ps->p++;

	for (;;) {
		unsigned char c;
		uint32_t cp;
		size_t n;

		if (ps->p >= ps->end)
			return fail(ps, MSG_JSON);
		c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return fail(ps, MSG_CONTROL);
		if (c != '\\') {
			n = utf8_valid((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
			if (n == 0)
				return fail(ps, MSG_UTF8);
			for (size_t i = 0; i < n; i++)
				put(o, (unsigned char)ps->p[i]);
			ps->p += n;
			continue;
		}

		ps->p++;
		if (ps->p >= ps->end)
			return fail(ps, MSG_JSON);
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
			return fail(ps, MSG_ESCAPE);
		}
	}

	if (o->buf && o->cap > 0)
		o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
	return 0;
}

static int parse_digits(struct parser *ps)
{
	if (!is_digit(peek(ps)))
		return fail(ps, MSG_JSON);
	while (is_digit(peek(ps)))
		ps->p++;
	return 0;
}

static int parse_number(struct parser *ps, struct number *n)
{
	int r;

	*n = (struct number){.text = ps->p, .integer = true};
	if (peek(ps) == '-') {
		n->negative = true;
		ps->p++;
	}
	if (peek(ps) == '0')
		ps->p++;
	else if (is_digit(peek(ps)))
		while (is_digit(peek(ps))) {
			unsigned d = (unsigned)(*ps->p++ - '0');
			if (n->overflow || n->mag > ((uint64_t)INT64_MAX - d) / 10)
				n->overflow = true;
			else
				n->mag = n->mag * 10 + d;
		}
	else
		return fail(ps, MSG_JSON);

	if (peek(ps) == '.') {
		n->integer = false;
		ps->p++;
		r = parse_digits(ps);
		if (r < 0)
			return r;
	}
	if (peek(ps) == 'e' || peek(ps) == 'E') {
		n->integer = false;
		ps->p++;
		if (peek(ps) == '+' || peek(ps) == '-')
			ps->p++;
		r = parse_digits(ps);
		if (r < 0)
			return r;
	}
	n->len = (size_t)(ps->p - n->text);
	return 0;
}

static int parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, MSG_JSON);
	ps->p += n;
	return 0;
}

/* Reads any value but an object or an array. */
static int skip_scalar(struct parser *ps)
{
	struct strout o = {0};
	struct number n;
	int c = peek(ps);

	if (c == '"')
		return parse_string(ps, &o);
	if (c == '-' || is_digit(c))
		return parse_number(ps, &n);
	if (c == 't')
		return parse_literal(ps, "true");
	if (c == 'f')
		return parse_literal(ps, "false");
	if (c == 'n')
		return parse_literal(ps, "null");
	return fail(ps, MSG_JSON);
}

/* Reads an object member name and the colon after it. */
static int skip_key(struct parser *ps)
{
	struct strout o = {0};
	int r;

	skip_ws(ps);
	r = parse_string(ps, &o);
	if (r < 0)
		return r;
	return expect(ps, ':');
}

/* Validates and skips one value of any type inside depth open containers, without recursion:
 * bit i of is_array tells whether the container opened at level i is an array. */
static int skip_value(struct parser *ps, unsigned depth)
{
	uint32_t is_array = 0;
	unsigned level = 0;
	int r, c;

	for (;;) {
		/* Here a value starts. */
		skip_ws(ps);
		c = peek(ps);
		if (c == '{' || c == '[') {
			if (depth + level >= PROTO_MAX_DEPTH)
				return fail(ps, MSG_DEPTH);
			ps->p++;
			level++;
			if (c == '[')
				is_array |= UINT32_C(1) << level;
			else
				is_array &= ~(UINT32_C(1) << level);

			skip_ws(ps);
			if (peek(ps) != (c == '[' ? ']' : '}')) {
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
			skip_ws(ps);
			c = peek(ps);
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
				return fail(ps, MSG_JSON);
			ps->p++;
			level--;
		}
	}
}

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
		struct parser *ps, enum field f, char *buf, size_t cap, size_t *ret_len)
{
	struct strout o = {.buf = buf, .cap = cap};
	int r;

	if (peek(ps) != '"') {
		r = skip_value(ps, 1);
		return r < 0 ? r : fail(ps, fields[f].msg_type);
	}
	r = parse_string(ps, &o);
	if (r < 0)
		return r;
	if (o.nul)
		return fail(ps, fields[f].msg_nul);
	if (o.len >= cap)
		return fail(ps, fields[f].msg_large);
	if (ret_len)
		*ret_len = o.len;
	return 0;
}

/* Reads a number-valued known field; anything else is validated, then refused. */
static int parse_number_field(struct parser *ps, enum field f, struct number *n)
{
	int r, c = peek(ps);

	if (c != '-' && !is_digit(c)) {
		r = skip_value(ps, 1);
		return r < 0 ? r : fail(ps, fields[f].msg_type);
	}
	r = parse_number(ps, n);
	if (r < 0)
		return r;
	if (!n->integer)
		return fail(ps, fields[f].msg_type);
	return 0;
}

static int parse_seconds(struct parser *ps, enum field f, int64_t *ret)
{
	struct number n;
	int r;

	r = parse_number_field(ps, f, &n);
	if (r < 0)
		return r;
	if (n.negative && (n.mag != 0 || n.overflow))
		return fail(ps, fields[f].msg_type);
	if (n.overflow)
		return fail(ps, fields[f].msg_large);
	*ret = (int64_t)n.mag;
	return 0;
}

static int parse_field(struct parser *ps, enum field f, struct request *req, struct state *st)
{
	struct strout o;
	struct number n;
	int r;

	switch (f) {
	case F_OP:
		if (peek(ps) == '"') {
			/* Too long to be known is an unknown op, not a malformed request. */
			o = (struct strout){.buf = st->op, .cap = sizeof(st->op)};
			r = parse_string(ps, &o);
			if (r < 0)
				return r;
			if (o.nul)
				return fail(ps, fields[f].msg_nul);
			st->op_too_long = o.len >= sizeof(st->op);
			return 0;
		}
		return parse_string_field(ps, f, NULL, 0, NULL);

	case F_V:
		r = parse_number_field(ps, f, &n);
		if (r < 0)
			return r;
		if (n.overflow)
			return fail(ps, fields[f].msg_large);
		st->version_ok = !n.negative && n.mag == PROTO_VERSION;
		return 0;

	case F_ID:
		if (peek(ps) == '-' || is_digit(peek(ps))) {
			r = parse_number_field(ps, f, &n);
			if (r < 0)
				return r;
			if (n.len > REQUEST_MAX_ID)
				return fail(ps, fields[f].msg_large);
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
		if (!req->secret || req->secret_size == 0)
			return fail(ps, MSG_PASSWORD_REFUSED);
		r = parse_string_field(ps, f, req->secret, req->secret_size, &req->secret_len);
		if (r < 0)
			return r;
		req->has_secret = true;
		return 0;

	case _F_MAX:
		break;
	}
	return fail(ps, MSG_JSON);
}

static int lookup_field(const struct strout *key)
{
	if (key->len > KEY_MAX || key->nul)
		return -1;
	for (int i = 0; i < _F_MAX; i++)
		if (strcmp(key->buf, fields[i].name) == 0)
			return i;
	return -1;
}

static int parse_object(struct parser *ps, struct request *req, struct state *st)
{
	char keybuf[KEY_MAX + 1];
	int r, c;

	skip_ws(ps);
	c = peek(ps);
	if (c < 0)
		return fail(ps, MSG_EMPTY);
	if (c != '{') {
		/* Say "not an object" only to what is JSON, such as an array or a string. */
		r = skip_value(ps, 0);
		return r < 0 ? r : fail(ps, MSG_NOT_OBJECT);
	}
	ps->p++;

	skip_ws(ps);
	if (peek(ps) == '}')
		ps->p++;
	else
		for (;;) {
			struct strout key = {.buf = keybuf, .cap = sizeof(keybuf)};
			int f;

			skip_ws(ps);
			r = parse_string(ps, &key);
			if (r < 0)
				return r;
			r = expect(ps, ':');
			if (r < 0)
				return r;
			skip_ws(ps);

			f = lookup_field(&key);
			if (f < 0)
				r = skip_value(ps, 1);
			else if (st->seen[f])
				r = fail(ps, fields[f].msg_twice);
			else {
				st->seen[f] = true;
				r = parse_field(ps, (enum field)f, req, st);
			}
			if (r < 0)
				return r;

			skip_ws(ps);
			c = peek(ps);
			if (c != ',' && c != '}')
				return fail(ps, MSG_JSON);
			ps->p++;
			if (c == '}')
				break;
		}

	skip_ws(ps);
	if (ps->p != ps->end)
		return fail(ps, MSG_TRAILING);
	return 0;
}

bool proto_json_object_valid(const char *s, size_t len)
{
	struct parser ps;

	if (!s || memchr(s, '\0', len))
		return false;
	ps = (struct parser){.p = s, .end = s + len};
	skip_ws(&ps);
	if (peek(&ps) != '{' || skip_value(&ps, 0) < 0)
		return false;
	skip_ws(&ps);
	return ps.p == ps.end;
}

enum proto_error request_parse(const char *line, size_t len, struct request *req,
		const char **ret_message)
{
	struct parser ps;
	struct state st = {0};
	enum proto_error err = PROTO_E_BAD_REQUEST;
	const char *msg;
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
	ps = (struct parser){.p = line, .end = line + len};

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
	for (int i = 0; i < _PROTO_OP_MAX; i++)
		if (strcmp(st.op, op_names[i]) == 0)
			req->op = (enum proto_op)i;
	if (req->op == _PROTO_OP_MAX)
		goto fail;

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
	explicit_bzero(req->mfa, sizeof(req->mfa));
	if (ret_message)
		*ret_message = msg;
	return err;
}
