/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "common/utf8.h"
#include "proto/jsonw.h"

size_t jsonw_string_max(size_t len)
{
	/* Every byte at worst a \u00XX escape, plus the quotes. */
	return len * 6 + 2;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (w->err < 0)
		return;
	if (w->size == 0 || n > w->size - 1 - w->len) {
		w->err = -ENOBUFS;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
	put(w, s, n);
}

static void put_str(struct jsonw *w, const char *s)
{
	put(w, s, strlen(s));
}

void jsonw_begin(struct jsonw *w, char *buf, size_t size)
{
	*w = (struct jsonw){.buf = buf, .size = size};
	if (size > 0)
		buf[0] = '\0';
	put(w, "{", 1);
}

void jsonw_fragment(struct jsonw *w, char *buf, size_t size)
{
	*w = (struct jsonw){.buf = buf, .size = size, .fields = true};
	if (size > 0)
		buf[0] = '\0';
}

static void key(struct jsonw *w, const char *k)
{
	if (w->fields)
		put(w, ",", 1);
	put(w, "\"", 1);
	put_str(w, k);
	put(w, "\":", 2);
	w->fields = true;
}

void jsonw_string(struct jsonw *w, const char *k, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	key(w, k);
	if (w->err == 0 && (!utf8_valid(s, len) || memchr(s, '\0', len)))
		w->err = -EILSEQ;
	put(w, "\"", 1);
	for (size_t i = 0; i < len && w->err == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 0};
		size_t n = 2;

		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			if (c >= 0x20) {
				run++;
				continue;
			}
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			n = 6;
			break;
		}
		/* Copy the plain bytes before this one in one go, then the escape. */
		put(w, s + i - run, run);
		run = 0;
		put(w, esc, n);
		/* esc may hold a quoted byte of the secret: leave nothing on the stack. */
		explicit_bzero(esc, sizeof(esc));
	}
	put(w, s + len - run, run);
	put(w, "\"", 1);
}

size_t jsonw_format_u64(uint64_t v, char *buf)
{
	char tmp[20];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (len = 0; len < n; len++)
		buf[len] = tmp[n - 1 - len];
	buf[len] = '\0';
	return len;
}

void jsonw_int(struct jsonw *w, const char *k, int64_t v)
{
	char num[24];
	size_t n = 0;

	key(w, k);
	if (v < 0)
		num[n++] = '-';
	/* The magnitude of INT64_MIN does not fit an int64_t, but fits a uint64_t. */
	n += jsonw_format_u64(v < 0 ? -(uint64_t)v : (uint64_t)v, num + n);
	put(w, num, n);
}

void jsonw_bool(struct jsonw *w, const char *k, bool v)
{
	key(w, k);
	put_str(w, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w, const char *k)
{
	key(w, k);
	put(w, "null", 4);
}

void jsonw_string_or_null(struct jsonw *w, const char *k, const char *s)
{
	if (s && s[0])
		jsonw_string(w, k, s, strlen(s));
	else
		jsonw_null(w, k);
}

int jsonw_end(struct jsonw *w, size_t *ret_len)
{
	put(w, "}\n", 2);
	if (w->err < 0)
		return w->err;
	*ret_len = w->len;
	return 0;
}
