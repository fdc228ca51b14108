/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/fields.h"

/* Longest decimal length we accept: 20 digits hold any size_t; longer is malformed anyway. */
#define FIELDS_MAX_LEN_DIGITS 20

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_valid(const char *name, size_t *ret_len)
{
	size_t n = 0;

	if (!name)
		return false;
	while (name[n] != '\0') {
		if (n >= FIELDS_MAX_NAME || !is_name_char(name[n]))
			return false;
		n++;
	}
	if (n == 0)
		return false;
	*ret_len = n;
	return true;
}

int fields_put(char *buf, size_t size, size_t *pos, const char *name, const char *value, size_t len)
{
	char digits[FIELDS_MAX_LEN_DIGITS + 1];
	size_t name_len, digits_len, need;
	int k;

	if (!name_valid(name, &name_len))
		return -EINVAL;
	if (!value && len > 0)
		return -EINVAL;
	if (*pos > size)
		return -ENOBUFS;

	k = snprintf(digits, sizeof(digits), "%zu", len);
	if (k < 0 || (size_t)k >= sizeof(digits))
		return -ENOBUFS;
	digits_len = (size_t)k;

	/* "NAME LEN\n" + value + "\n", checked against overflow piece by piece. */
	need = name_len + 1 + digits_len + 1;
	if (len > SIZE_MAX - need - 1)
		return -ENOBUFS;
	need += len + 1;
	if (need > size - *pos)
		return -ENOBUFS;

	char *p = buf + *pos;
	memcpy(p, name, name_len);
	p += name_len;
	*p++ = ' ';
	memcpy(p, digits, digits_len);
	p += digits_len;
	*p++ = '\n';
	if (len > 0)
		memcpy(p, value, len);
	p += len;
	*p++ = '\n';
	*pos += need;
	return 0;
}

int fields_put_int(char *buf, size_t size, size_t *pos, const char *name, int64_t value)
{
	char s[32];
	int k;

	k = snprintf(s, sizeof(s), "%" PRId64, value);
	if (k < 0 || (size_t)k >= sizeof(s))
		return -EINVAL;
	return fields_put(buf, size, pos, name, s, (size_t)k);
}

int fields_next(const char *msg, size_t len, size_t *pos, char *name_buf, const char **ret_value,
		size_t *ret_len)
{
	size_t p = *pos, name_len = 0, value_len = 0, digits = 0;

	if (p == len)
		return 0;
	if (p > len)
		return -EBADMSG;

	/* NAME */
	while (p < len && is_name_char(msg[p])) {
		if (name_len == FIELDS_MAX_NAME)
			return -EBADMSG;
		name_buf[name_len++] = msg[p++];
	}
	if (name_len == 0 || p == len || msg[p] != ' ')
		return -EBADMSG;
	p++;

	/* LEN: decimal, no sign, no leading zero unless it is "0", at most what is left. */
	while (p < len && msg[p] >= '0' && msg[p] <= '9') {
		if (digits > 0 && value_len == 0)
			return -EBADMSG; /* leading zero */
		if (digits == FIELDS_MAX_LEN_DIGITS)
			return -EBADMSG;
		value_len = value_len * 10 + (size_t)(msg[p] - '0');
		if (value_len > len)
			return -EBADMSG; /* can never fit; also keeps the sum below from overflowing
					  */
		digits++;
		p++;
	}
	if (digits == 0 || p == len || msg[p] != '\n')
		return -EBADMSG;
	p++;

	/* BYTES "\n" */
	if (value_len > len - p || len - p - value_len < 1 || msg[p + value_len] != '\n')
		return -EBADMSG;

	name_buf[name_len] = '\0';
	*ret_value = msg + p;
	*ret_len = value_len;
	*pos = p + value_len + 1;
	return 1;
}

int fields_parse_int(const char *value, size_t len, int64_t *ret)
{
	bool negative = false;
	uint64_t v = 0, limit;
	size_t i = 0;

	if (!value || len == 0)
		return -EINVAL;
	if (value[0] == '-') {
		negative = true;
		i = 1;
	}
	if (i == len)
		return -EINVAL;
	/* Canonical form only, as fields_put_int() writes it: no leading zeros, no "-0". */
	if (value[i] == '0' && (len - i > 1 || negative))
		return -EINVAL;

	limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d;

		if (value[i] < '0' || value[i] > '9')
			return -EINVAL;
		d = (unsigned)(value[i] - '0');
		if (v > (limit - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}

	if (negative)
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*ret = (int64_t)v;
	return 0;
}
