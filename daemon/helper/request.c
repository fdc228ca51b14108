/* SPDX-License-Identifier: MIT */
/* Reading the login helper's request and building the body it posts, see request.h.
 * The password and token are never copied out of sodium memory: they are referenced in the
 * request message and escaped straight into the body. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/escape.h"
#include "common/fields.h"
#include "common/jwt.h"
#include "common/utf8.h"
#include "common/util.h"
#include "daemon/helper/request.h"

void helper_answer_set(struct helper_answer *a, enum helper_outcome outcome, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	escape_ascii(a->message);
	a->outcome = outcome;
}

enum field_kind { FIELD_STR, FIELD_INT, FIELD_SECRET };

#define STR(name, member)                                                                          \
	{                                                                                          \
		name, FIELD_STR, offsetof(struct helper_request, member),                          \
				sizeof(((struct helper_request *)0)->member)                       \
	}
#define FIELD(name, kind, member)                                                                  \
	{                                                                                          \
		name, kind, offsetof(struct helper_request, member), 0                             \
	}

static const struct field_def {
	const char *name;
	enum field_kind kind;
	size_t offset, size;
} request_fields[] = {
		STR(PIPE_F_MODE, mode),
		STR(PIPE_F_URL, url),
		STR(PIPE_F_LOGIN_API, api),
		STR(PIPE_F_CA_FILE, ca_file),
		STR(PIPE_F_PROXY, proxy),
		FIELD(PIPE_F_CONNECT_TIMEOUT, FIELD_INT, connect_timeout),
		FIELD(PIPE_F_TOTAL_TIMEOUT, FIELD_INT, total_timeout),
		STR(PIPE_F_VERSION, version),
		STR(PIPE_F_USERNAME, username),
		FIELD(PIPE_F_PASSWORD, FIELD_SECRET, password),
		FIELD(PIPE_F_MFA, FIELD_SECRET, mfa),
		FIELD(PIPE_F_TOKEN, FIELD_SECRET, token),
};

/* Stores one field's value in req; false if it is not valid. */
static bool set_field(
		struct helper_request *req, const struct field_def *f, const char *v, size_t len)
{
	char *p = (char *)req + f->offset;
	int64_t *num = (int64_t *)(void *)p;
	struct secret_ref *ref = (struct secret_ref *)(void *)p;

	switch (f->kind) {
	case FIELD_STR:
		/* Non-secret values: copied, NUL-terminated, so no NUL inside. */
		if (len >= f->size || memchr(v, '\0', len))
			return false;
		memcpy(p, v, len);
		p[len] = '\0';
		return true;
	case FIELD_INT:
		return fields_parse_int(v, len, num) >= 0 && *num >= 1 && *num <= PIPE_MAX_TIMEOUT;
	case FIELD_SECRET:
		*ref = (struct secret_ref){v, len};
		return true;
	}
	return false;
}

static bool version_valid(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'z') || *v == '.' ||
				    *v == '-'))
			return false;
	return true;
}

int helper_request_parse(
		const char *msg, size_t len, struct helper_request *req, struct helper_answer *a)
{
	char name[FIELDS_MAX_NAME + 1];
	unsigned seen = 0;
	size_t pos = 0, vlen;
	const char *v;
	int r;

	*req = (struct helper_request){.api = PIPE_API_V1,
			.version = RT_VERSION,
			.connect_timeout = 10,
			.total_timeout = 30};
	while ((r = fields_next(msg, len, &pos, name, &v, &vlen)) > 0) {
		size_t i;

		for (i = 0; i < ELEMENTSOF(request_fields); i++)
			if (strcmp(name, request_fields[i].name) == 0)
				break;
		if (i == ELEMENTSOF(request_fields))
			continue; /* a field from a newer daemon */
		if (seen & (1u << i)) {
			helper_answer_set(a, HELPER_CONFIG, "request has field %s twice", name);
			return -EINVAL;
		}
		seen |= 1u << i;
		if (!set_field(req, &request_fields[i], v, vlen)) {
			helper_answer_set(a, HELPER_CONFIG, "request field %s is not valid", name);
			return -EINVAL;
		}
	}
	if (r < 0) {
		helper_answer_set(a, HELPER_CONFIG, "request is malformed");
		return -EINVAL;
	}

	req->validate = strcmp(req->mode, PIPE_MODE_VALIDATE) == 0;
	req->v2 = strcmp(req->api, PIPE_API_V2) == 0;
	if (!req->validate && strcmp(req->mode, PIPE_MODE_LOGIN) != 0)
		helper_answer_set(a, HELPER_CONFIG, "request mode is not login or validate");
	else if (!req->v2 && strcmp(req->api, PIPE_API_V1) != 0)
		helper_answer_set(a, HELPER_CONFIG, "login_api is not v1 or v2");
	else if (!version_valid(req->version))
		helper_answer_set(a, HELPER_CONFIG, "user_agent_version is not valid");
	else if (!req->url[0])
		helper_answer_set(a, HELPER_CONFIG, "no url configured");
	else if (req->validate && !jwt_well_formed(req->token.data, req->token.len))
		helper_answer_set(a, HELPER_CONFIG, "no well-formed token to validate");
	else if (!req->validate &&
			(!req->username[0] || !utf8_valid(req->username, strlen(req->username))))
		helper_answer_set(a, HELPER_CONFIG, "no username, or it is not valid UTF-8");
	else if (!req->validate && (req->password.len == 0 || !utf8_valid(req->password.data,
									      req->password.len)))
		helper_answer_set(a, HELPER_CONFIG, "no password, or it is not valid UTF-8");
	else if (!req->validate && !utf8_valid(req->mfa.data, req->mfa.len))
		helper_answer_set(a, HELPER_CONFIG, "mfa code is not valid UTF-8");
	else
		return 0;
	return -EINVAL;
}

/* Appends s[0..len) as a JSON string; buf must have room for 6 * len + 2 more bytes. */
static void json_put_string(char *buf, size_t *pos, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = buf + *pos;

	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			memcpy(p, "\\u00", 4);
			p[4] = hex[c >> 4];
			p[5] = hex[c & 15];
			p += 6;
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	*pos = (size_t)(p - buf);
}

static void put_raw(char *buf, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	memcpy(buf + *pos, s, n);
	*pos += n;
}

char *helper_request_body(const struct helper_request *req, size_t *ret_len)
{
	size_t size, pos = 0;
	char *b;

	size = 6 * (strlen(req->username) + req->password.len + req->mfa.len + req->token.len) +
	       256;
	b = sodium_malloc(size);
	if (!b)
		return NULL;
	if (req->validate) {
		put_raw(b, &pos, "{\"accessToken\":\"Bearer ");
		/* base64url and dots: nothing to escape */
		memcpy(b + pos, req->token.data, req->token.len);
		pos += req->token.len;
		put_raw(b, &pos, "\"}");
	} else {
		put_raw(b, &pos, "{\"username\":");
		json_put_string(b, &pos, req->username, strlen(req->username));
		put_raw(b, &pos, ",\"password\":");
		json_put_string(b, &pos, req->password.data, req->password.len);
		put_raw(b, &pos, ",\"oldPassword\":\"\"");
		if (req->mfa.len > 0) {
			put_raw(b, &pos, ",\"mfaToken\":");
			json_put_string(b, &pos, req->mfa.data, req->mfa.len);
		}
		if (req->v2)
			put_raw(b, &pos, ",\"appId\":1");
		put_raw(b, &pos, "}");
	}
	*ret_len = pos;
	return b;
}
