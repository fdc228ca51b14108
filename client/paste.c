/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "client/format.h"
#include "client/password.h"
#include "client/paste.h"
#include "common/duration.h"
#include "common/util.h"
#include "proto/json.h"

/* The value of base64url digit c, or -1. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes unpadded base64url s[0..len) into out (room for len * 3 / 4 bytes). Returns the
 * length, or -EINVAL for a length no encoding has (1 more than a multiple of 4). */
static ssize_t b64url_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 6) | (uint32_t)b64_value(s[i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)o;
}

/* Reads the integer "exp" at the top level of the JSON object s[0..len), which
 * proto_json_object_valid() accepted. Returns it, or -1 when there is none or it is no
 * non-negative integer. */
static int64_t find_exp(const char *s, size_t len)
{
	struct json_parser ps = {.p = s, .end = s + len};
	int64_t exp = -1;

	if (json_expect(&ps, '{') < 0)
		return -1;
	json_skip_ws(&ps);
	if (json_peek(&ps) == '}')
		return -1;
	for (;;) {
		char key[8];
		struct json_string k = {.buf = key, .cap = sizeof(key)};
		struct json_number n;

		json_skip_ws(&ps);
		if (json_parse_string(&ps, &k) < 0 || json_expect(&ps, ':') < 0)
			return -1;
		json_skip_ws(&ps);
		if (k.len == 3 && !k.nul && memcmp(key, "exp", 3) == 0 &&
				json_is_digit(json_peek(&ps))) {
			if (json_parse_number(&ps, &n) < 0)
				return -1;
			exp = n.integer && !n.negative && n.mag <= INT64_MAX ? (int64_t)n.mag : -1;
		} else if (json_skip_value(&ps, 1) < 0) {
			return -1;
		}
		json_skip_ws(&ps);
		if (json_peek(&ps) != ',')
			return exp;
		ps.p++;
	}
}

static const char *const part_names[] = {"header", "payload", "signature"};

int paste_check(const char *token, size_t len, long long now, int64_t *ret_exp, char *why,
		size_t size)
{
	_cleanup_(locked_free) struct locked buf = {.data = NULL};
	size_t start[3], end[3], parts = 0, at = 0;
	char iso[32], ago[32];
	int64_t exp = -1;
	int r;

	if (len == 0) {
		snprintf(why, size, "the token is empty");
		return -EINVAL;
	}
	if (len > PROTO_MAX_TOKEN) {
		snprintf(why, size, "the token is %zu bytes long, more than the %d a JWT may have",
				len, PROTO_MAX_TOKEN);
		return -EINVAL;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && token[i] != '.') {
			if (b64_value(token[i]) < 0) {
				snprintf(why, size,
						"the token has a character that is not in a JWT "
						"(base64url and dots) at byte %zu of %zu",
						i + 1, len);
				return -EINVAL;
			}
			continue;
		}
		if (parts < 3) {
			start[parts] = at;
			end[parts] = i;
		}
		parts++;
		at = i + 1;
	}
	if (parts != 3) {
		snprintf(why, size, "the token has %zu part%s separated by dots, a JWT has 3",
				parts, parts == 1 ? "" : "s");
		return -EINVAL;
	}
	for (size_t p = 0; p < 3; p++)
		if (start[p] == end[p]) {
			snprintf(why, size, "the token's %s (part %zu of 3) is empty",
					part_names[p], p + 1);
			return -EINVAL;
		}

	r = locked_alloc(len, &buf);
	if (r < 0) {
		snprintf(why, size, "cannot allocate memory to check the token: %s", strerror(-r));
		return r;
	}
	for (size_t p = 0; p < 2; p++) {
		ssize_t n = b64url_decode(token + start[p], end[p] - start[p], buf.data);

		if (n < 0 || !proto_json_object_valid(buf.data, (size_t)n)) {
			snprintf(why, size,
					"the token's %s (part %zu of 3) is not base64url-encoded "
					"JSON, as a JWT's is",
					part_names[p], p + 1);
			return -EINVAL;
		}
		if (p == 1) {
			exp = find_exp(buf.data, (size_t)n);
			if (exp >= 0 && exp <= now) {
				proto_format_time(exp, iso, sizeof(iso));
				snprintf(why, size, "the token expired at %s (%s ago)", iso,
						duration_format(now - exp, ago, sizeof(ago)));
				return -ESTALE;
			}
		}
	}
	*ret_exp = exp;
	return 0;
}
