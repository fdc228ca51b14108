/* regscale-token-login: one HTTPS exchange with RegScale per run. regscale-tokend writes a
 * request (daemon/fields.h) on stdin, this program logs in (or validates a token), writes
 * the answer on stdout, logs one line on stderr and exits with the enum login_outcome. The
 * password and token stay in libsodium memory here; libcurl and OpenSSL keep copies in
 * their own buffers, which is why this runs in a short-lived, non-dumpable process. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "daemon/fields.h"
#include "daemon/jwt.h"
#include "daemon/login.h"
#include "daemon/login_response.h"
#include "proto/proto.h"
#include "proto/util.h"

#define REQUEST_MAX     (64 * 1024)
#define RESPONSE_MAX    (1024 * 1024)
#define ANSWER_MAX      (PROTO_MAX_TOKEN + 2048)
#define RETRY_AFTER_MAX 86400 /* a server asking for more is not believed beyond a day */
#define TIMEOUT_MAX     3600

struct secret_ref {
	const char *data; /* points into the request buffer, which is sodium memory */
	size_t len;
};

struct request {
	bool validate, v2;
	char mode[16], api[8], url[2048], ca_file[4096], proxy[2048], version[32], username[256];
	int64_t connect_timeout, total_timeout;
	struct secret_ref password, mfa, token;
};

struct answer {
	enum login_outcome outcome;
	long http_status;
	int64_t retry_after, expires_in;
	char user_id[LOGIN_RESPONSE_MAX_USER_ID + 1];
	char message[256];
	char *token; /* sodium memory */
	size_t token_len;
};

/* The response body, in sodium memory that is wiped when it grows and at exit. */
struct body {
	char *data;
	size_t len, size;
	bool too_large;
};

static const char *const outcome_names[] = {
		[LOGIN_OK] = "ok",
		[LOGIN_REJECTED] = "rejected",
		[LOGIN_TRANSIENT] = "transient",
		[LOGIN_PROTOCOL] = "protocol",
		[LOGIN_CONFIG] = "config",
};

static void sodium_freep(void *p)
{
	sodium_free(*(void **)p);
}

static void body_freep(struct body *b)
{
	sodium_free(b->data);
}

static void curl_freep(char **p)
{
	curl_free(*p);
}

static void curl_url_cleanupp(CURLU **u)
{
	curl_url_cleanup(*u);
}

static void curl_easy_cleanupp(CURL **c)
{
	curl_easy_cleanup(*c);
}

static void curl_slist_free_allp(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* Sets the outcome and a one-line message; every byte outside printable ASCII becomes '?'. */
__attribute__((format(printf, 3, 4))) static void set_answer(
		struct answer *a, enum login_outcome outcome, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	for (char *p = a->message; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	a->outcome = outcome;
}

static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		unsigned c = u[i], n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (len - i <= n)
			return false;
		for (unsigned k = 1; k <= n; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
				(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

enum field_kind { FIELD_STR, FIELD_INT, FIELD_SECRET };

#define STR(name, member)                                                                          \
	{                                                                                          \
		name, FIELD_STR, offsetof(struct request, member),                                 \
				sizeof(((struct request *)0)->member)                              \
	}
#define FIELD(name, kind, member)                                                                  \
	{                                                                                          \
		name, kind, offsetof(struct request, member), 0                                    \
	}

static const struct field_def {
	const char *name;
	enum field_kind kind;
	size_t offset, size;
} request_fields[] = {
		STR("mode", mode),
		STR("url", url),
		STR("login_api", api),
		STR("ca_file", ca_file),
		STR("proxy", proxy),
		FIELD("connect_timeout", FIELD_INT, connect_timeout),
		FIELD("total_timeout", FIELD_INT, total_timeout),
		STR("user_agent_version", version),
		STR("username", username),
		FIELD("password", FIELD_SECRET, password),
		FIELD("mfa", FIELD_SECRET, mfa),
		FIELD("token", FIELD_SECRET, token),
};

/* Stores one field's value in req; false if it is not valid. */
static bool set_field(struct request *req, const struct field_def *f, const char *v, size_t len)
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
		return fields_parse_int(v, len, num) >= 0 && *num >= 1 && *num <= TIMEOUT_MAX;
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

/* Fills req from the fields in msg[0..len). Returns 0, or -EINVAL with a message in a. */
static int parse_request(const char *msg, size_t len, struct request *req, struct answer *a)
{
	char name[FIELDS_MAX_NAME + 1];
	unsigned seen = 0;
	size_t pos = 0, vlen;
	const char *v;
	int r;

	*req = (struct request){.api = "v1",
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
			set_answer(a, LOGIN_CONFIG, "request has field %s twice", name);
			return -EINVAL;
		}
		seen |= 1u << i;
		if (!set_field(req, &request_fields[i], v, vlen)) {
			set_answer(a, LOGIN_CONFIG, "request field %s is not valid", name);
			return -EINVAL;
		}
	}
	if (r < 0) {
		set_answer(a, LOGIN_CONFIG, "request is malformed");
		return -EINVAL;
	}

	req->validate = strcmp(req->mode, "validate") == 0;
	req->v2 = strcmp(req->api, "v2") == 0;
	if (!req->validate && strcmp(req->mode, "login") != 0)
		set_answer(a, LOGIN_CONFIG, "request mode is not login or validate");
	else if (!req->v2 && strcmp(req->api, "v1") != 0)
		set_answer(a, LOGIN_CONFIG, "login_api is not v1 or v2");
	else if (!version_valid(req->version))
		set_answer(a, LOGIN_CONFIG, "user_agent_version is not valid");
	else if (!req->url[0])
		set_answer(a, LOGIN_CONFIG, "no url configured");
	else if (req->validate && !jwt_well_formed(req->token.data, req->token.len))
		set_answer(a, LOGIN_CONFIG, "no well-formed token to validate");
	else if (!req->validate &&
			(!req->username[0] || !utf8_valid(req->username, strlen(req->username))))
		set_answer(a, LOGIN_CONFIG, "no username, or it is not valid UTF-8");
	else if (!req->validate && (req->password.len == 0 || !utf8_valid(req->password.data,
									      req->password.len)))
		set_answer(a, LOGIN_CONFIG, "no password, or it is not valid UTF-8");
	else if (!req->validate && !utf8_valid(req->mfa.data, req->mfa.len))
		set_answer(a, LOGIN_CONFIG, "mfa code is not valid UTF-8");
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

/* Builds the request body in new sodium memory. Returns it (caller frees) or NULL. */
static char *build_body(const struct request *req, size_t *ret_len)
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

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char h[64];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n < 3 || n - 2 >= sizeof(h) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(h, host + 1, n - 2);
	h[n - 2] = '\0';
	return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Checks req->url and returns the endpoint in a new curl string (curl_free). */
static char *endpoint_url(const struct request *req, bool *ret_loopback, struct answer *a)
{
	_cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *extra = NULL, *out = NULL;
	char newpath[2560];
	bool https, loopback;
	size_t n;

	if (!u || curl_url_set(u, CURLUPART_URL, req->url, 0) != CURLUE_OK ||
			curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
			curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
			curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		set_answer(a, LOGIN_CONFIG, "url is not a valid absolute URL");
		goto out;
	}
	https = strcmp(scheme, "https") == 0;
	loopback = host_is_loopback(host);
	if (!https && !(strcmp(scheme, "http") == 0 && loopback)) {
		set_answer(a, LOGIN_CONFIG, "url must be https:// (http:// only to loopback)");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK ||
			curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
			curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
		set_answer(a, LOGIN_CONFIG, "url must not hold user, query or fragment");
		goto out;
	}
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	snprintf(newpath, sizeof(newpath), "%.*s/api/authentication/%s", (int)n, path,
			req->validate ? "validateToken" : "login");
	if (curl_url_set(u, CURLUPART_PATH, newpath, 0) != CURLUE_OK ||
			curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		set_answer(a, LOGIN_CONFIG, "url is not a valid absolute URL");
		goto out;
	}
	*ret_loopback = loopback;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(extra);
	return out;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;

	if (n > RESPONSE_MAX - b->len) {
		b->too_large = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (b->len + n > b->size) {
		size_t size2 = b->size ? b->size : 16384;
		char *d;

		while (size2 < b->len + n)
			size2 *= 2;
		d = sodium_malloc(size2);
		if (!d)
			return 0;
		if (b->len > 0)
			memcpy(d, b->data, b->len);
		sodium_free(b->data); /* wipes */
		b->data = d;
		b->size = size2;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return n;
}

/* Returns the Retry-After of the last response in seconds (delta or HTTP date), or -1. */
static int64_t retry_after(CURL *c)
{
	struct curl_header *h;
	const char *v;
	int64_t s = 0;
	time_t t;

	if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return -1;
	v = h->value + strspn(h->value, " \t");
	if (*v >= '0' && *v <= '9') {
		for (; *v >= '0' && *v <= '9'; v++)
			s = s >= RETRY_AFTER_MAX ? RETRY_AFTER_MAX : s * 10 + (*v - '0');
		return v[strspn(v, " \t")] == '\0' ? (s > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : s)
						   : -1;
	}
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	s = (int64_t)t - (int64_t)time(NULL);
	return s < 0 ? 0 : s > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : s;
}

static void classify_curl(CURLcode c, const char *errbuf, bool too_large, struct answer *a)
{
	const char *e = errbuf[0] ? errbuf : curl_easy_strerror(c);

	switch (c) {
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (c == CURLE_FILESIZE_EXCEEDED || too_large)
			set_answer(a, LOGIN_PROTOCOL, "response too large (over 1 MiB)");
		else
			set_answer(a, LOGIN_TRANSIENT, "out of memory reading the response");
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		set_answer(a, LOGIN_CONFIG, "cannot use the configuration: %s", e);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ISSUER_ERROR:
		set_answer(a, LOGIN_TRANSIENT, "server certificate not trusted: %s", e);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		set_answer(a, LOGIN_TRANSIENT, "timed out: %s", e);
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked: this is an HTTP/0.9 answer */
		set_answer(a, LOGIN_PROTOCOL, "not an HTTP answer: %s", e);
		break;
	default: /* connect, DNS, TLS handshake, send/receive, empty or cut-off answers */
		set_answer(a, LOGIN_TRANSIENT, "%s", e);
		break;
	}
}

/* Sorts the HTTP answer; on a 200 login reads the token into a->token. */
static void classify_http(
		CURL *c, const struct request *req, const struct body *b, struct answer *a)
{
	long s = a->http_status;

	if (s == 200 && req->validate) {
		set_answer(a, LOGIN_OK, "HTTP 200, token valid");
	} else if (s == 200) {
		struct login_response r;
		const char *why;

		if (login_response_parse(b->data, b->len, a->token, PROTO_MAX_TOKEN + 1, &r, &why) <
				0) {
			set_answer(a, LOGIN_PROTOCOL, "HTTP 200, unexpected answer: %s", why);
			return;
		}
		a->token_len = r.token_len;
		a->expires_in = r.expires_in;
		memcpy(a->user_id, r.user_id, sizeof(a->user_id));
		set_answer(a, LOGIN_OK, "HTTP 200");
	} else if (s == 400 || s == 401 || s == 403) {
		set_answer(a, LOGIN_REJECTED, "HTTP %ld, %s rejected", s,
				req->validate ? "token" : "credentials");
	} else if (s == 429 || (s >= 500 && s <= 599) || req->validate) {
		a->retry_after = retry_after(c);
		if (a->retry_after >= 0)
			set_answer(a, LOGIN_TRANSIENT,
					"HTTP %ld, transient, retry after %" PRId64 " s", s,
					a->retry_after);
		else
			set_answer(a, LOGIN_TRANSIENT, "HTTP %ld, transient", s);
	} else if (s >= 300 && s <= 399) {
		_cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
		char *loc = NULL, *scheme = NULL, *host = NULL;

		if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc && u &&
				curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
				curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
				curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
			set_answer(a, LOGIN_PROTOCOL,
					"HTTP %ld, redirect to %s://%s not followed; set url to "
					"the "
					"final address",
					s, scheme, host);
		else
			set_answer(a, LOGIN_PROTOCOL, "HTTP %ld, redirect not followed", s);
		curl_free(scheme);
		curl_free(host);
	} else {
		set_answer(a, LOGIN_PROTOCOL,
				"HTTP %ld, unexpected status; is url RegScale's address?", s);
	}
}

#define SETOPT(c, opt, val)                                                                        \
	do {                                                                                       \
		if (curl_easy_setopt(c, opt, val) != CURLE_OK) {                                   \
			set_answer(a, LOGIN_CONFIG, "libcurl does not support " #opt);             \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void run(const struct request *req, struct answer *a)
{
	_cleanup_(curl_easy_cleanupp) CURL *c = NULL;
	_cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
	_cleanup_(sodium_freep) char *post = NULL;
	_cleanup_(curl_freep) char *url = NULL;
	struct body b __attribute__((cleanup(body_freep))) = {0};
	char errbuf[CURL_ERROR_SIZE] = "", ua[64];
	bool loopback = false;
	size_t post_len = 0;
	CURLcode r;

	url = endpoint_url(req, &loopback, a);
	if (!url)
		return;
	if (req->ca_file[0]) {
		_cleanup_(closep) int fd = open(req->ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			set_answer(a, LOGIN_CONFIG, "cannot read ca_file %s: %s", req->ca_file,
					strerror(errno));
			return;
		}
	}
	post = build_body(req, &post_len);
	c = curl_easy_init();
	if (!post || !c) {
		set_answer(a, LOGIN_TRANSIENT, "out of memory");
		return;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = headers ? curl_slist_append(headers, "Accept: application/json") : NULL;
	headers = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (headers && req->v2 && !req->validate)
		headers = curl_slist_append(headers, "X-Api-Version: 2.0");
	if (!headers) {
		set_answer(a, LOGIN_TRANSIENT, "out of memory");
		return;
	}
	snprintf(ua, sizeof(ua), "regscale-token/%s", req->version);

	SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(c, CURLOPT_URL, url);
	/* The scheme was checked above; no other may be used, and redirects are not followed. */
	SETOPT(c, CURLOPT_PROTOCOLS_STR, strncmp(url, "https:", 6) == 0 ? "https" : "http");
	SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (req->ca_file[0])
		SETOPT(c, CURLOPT_CAINFO, req->ca_file);
	if (req->proxy[0])
		SETOPT(c, CURLOPT_PROXY, req->proxy);
	/* A loopback address names this machine, not the proxy's: never send it there. */
	if (loopback)
		SETOPT(c, CURLOPT_NOPROXY, "*");
	SETOPT(c, CURLOPT_CONNECTTIMEOUT, (long)req->connect_timeout);
	SETOPT(c, CURLOPT_TIMEOUT, (long)req->total_timeout);
	SETOPT(c, CURLOPT_NOSIGNAL, 1L);
	SETOPT(c, CURLOPT_USERAGENT, ua);
	SETOPT(c, CURLOPT_HTTPHEADER, headers);
	SETOPT(c, CURLOPT_POST, 1L);
	SETOPT(c, CURLOPT_POSTFIELDS, post);
	SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
	SETOPT(c, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(c, CURLOPT_WRITEDATA, &b);
	SETOPT(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RESPONSE_MAX);

	r = curl_easy_perform(c);
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->http_status) != CURLE_OK)
		a->http_status = 0;
	if (r != CURLE_OK)
		classify_curl(r, errbuf, b.too_large, a);
	else
		classify_http(c, req, &b, a);
}

/* Logs the one line for this run: the user is quoted, the password and token never appear. */
static void log_line(const struct request *req, const struct answer *a)
{
	static const int levels[] = {[LOGIN_OK] = 6,
			[LOGIN_REJECTED] = 4,
			[LOGIN_TRANSIENT] = 4,
			[LOGIN_PROTOCOL] = 3,
			[LOGIN_CONFIG] = 3};
	char user[4 * sizeof(req->username)], url[sizeof(req->url)], line[8192];
	size_t n = 0;
	int k;

	for (const char *p = req->username; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			user[n++] = (char)ch;
		else
			n += (size_t)snprintf(user + n, sizeof(user) - n, "\\x%02x", ch);
	}
	user[n] = '\0';
	/* The url may have been refused for holding a user and password: never log those, nor
	 * a query. */
	const char *host = strstr(req->url, "://"), *at;
	host = host ? host + 3 : req->url;
	size_t auth_len = strcspn(host, "/?#");
	at = memrchr(host, '@', auth_len);
	snprintf(url, sizeof(url), "%.*s%.*s", (int)(host - req->url), req->url,
			(int)strcspn(at ? at + 1 : host, "?#"), at ? at + 1 : host);
	for (char *p = url; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';

	if (!url[0]) /* the request itself was refused */
		k = snprintf(line, sizeof(line), "<%d>regscale-token-login: %s\n",
				levels[a->outcome], a->message);
	else if (req->validate)
		k = snprintf(line, sizeof(line),
				"<%d>regscale-token-login: token validation at %s: %s\n",
				levels[a->outcome], url, a->message);
	else
		k = snprintf(line, sizeof(line),
				"<%d>regscale-token-login: login to %s as \"%s\": %s\n",
				levels[a->outcome], url, user, a->message);
	if (k > 0)
		(void)!write(STDERR_FILENO, line,
				(size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
}

/* Writes the answer as fields on stdout, the token last. Returns 0 or -errno. */
static int write_answer(const struct request *req, const struct answer *a)
{
	_cleanup_(sodium_freep) char *buf = sodium_malloc(ANSWER_MAX);
	size_t pos = 0, done = 0;
	const char *outcome = outcome_names[a->outcome];

	if (!buf)
		return -ENOMEM;
	if (fields_put(buf, ANSWER_MAX, &pos, "outcome", outcome, strlen(outcome)) < 0 ||
			fields_put_int(buf, ANSWER_MAX, &pos, "http_status", a->http_status) < 0 ||
			fields_put_int(buf, ANSWER_MAX, &pos, "retry_after", a->retry_after) < 0 ||
			fields_put_int(buf, ANSWER_MAX, &pos, "expires_in", a->expires_in) < 0 ||
			fields_put(buf, ANSWER_MAX, &pos, "user_id", a->user_id,
					strlen(a->user_id)) < 0 ||
			fields_put(buf, ANSWER_MAX, &pos, "message", a->message,
					strlen(a->message)) < 0)
		return -ENOBUFS;
	if (a->outcome == LOGIN_OK && !req->validate &&
			fields_put(buf, ANSWER_MAX, &pos, "token", a->token, a->token_len) < 0)
		return -ENOBUFS;

	while (done < pos) {
		ssize_t k = write(STDOUT_FILENO, buf + done, pos - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		done += (size_t)k;
	}
	return 0;
}

/* Reads all of fd into buf[0..max). Returns the length, -EFBIG past max, or -errno. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
	size_t n = 0;

	for (;;) {
		/* One byte more than allowed, to see that the request is too large. */
		ssize_t k = read(fd, buf + n, max + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return (ssize_t)n;
		n += (size_t)k;
		if (n > max)
			return -EFBIG;
	}
}

static void harden(void)
{
	const struct rlimit no_core = {0, 0};

	/* No core dumps and no ptrace by other processes of the same user: memory holds secrets. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &no_core);
	/* libcurl would write the TLS session keys there, which decrypt the password. */
	(void)unsetenv("SSLKEYLOGFILE");
	/* A daemon that went away gives EPIPE, not a silent death. */
	(void)signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	_cleanup_(sodium_freep) char *input = NULL;
	struct answer a = {.outcome = LOGIN_TRANSIENT, .retry_after = -1, .expires_in = -1};
	struct request req = {0};
	ssize_t n;

	harden();
	if (argc > 1) {
		if (strcmp(argv[1], "--version") == 0) {
			printf("regscale-token-login %s\n", RT_VERSION);
			return 0;
		}
		fprintf(stderr, "regscale-token-login: takes no arguments; regscale-tokend runs it "
				"with a request on stdin\n");
		return LOGIN_CONFIG;
	}

	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
			!(input = sodium_malloc(REQUEST_MAX + 1)) ||
			!(a.token = sodium_malloc(PROTO_MAX_TOKEN + 1))) {
		set_answer(&a, LOGIN_TRANSIENT, "cannot initialise libsodium or libcurl");
	} else if ((n = read_all(STDIN_FILENO, input, REQUEST_MAX)) < 0) {
		if (n == -EFBIG)
			set_answer(&a, LOGIN_CONFIG, "request larger than %d bytes", REQUEST_MAX);
		else
			set_answer(&a, LOGIN_TRANSIENT, "cannot read the request: %s",
					strerror((int)-n));
	} else if (parse_request(input, (size_t)n, &req, &a) >= 0) {
		run(&req, &a);
	}

	log_line(&req, &a);
	if (write_answer(&req, &a) < 0 && a.outcome == LOGIN_OK)
		a.outcome = LOGIN_TRANSIENT; /* the daemon did not get the token */
	sodium_free(a.token);
	curl_global_cleanup();
	return (int)a.outcome;
}
