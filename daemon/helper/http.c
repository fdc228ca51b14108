/* SPDX-License-Identifier: MIT */
/* The HTTPS exchange, see http.h. libcurl and OpenSSL keep their own copies of the
 * password and token, which is why this runs in a short-lived, non-dumpable process; the
 * body and the answer stay in sodium memory on our side. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/util.h"
#include "daemon/helper/http.h"
#include "daemon/helper/response.h"

#define RESPONSE_MAX    (1024 * 1024)
#define RETRY_AFTER_MAX 86400 /* a server asking for more is not believed beyond a day */

/* The response body, in sodium memory that is wiped when it grows and at exit. */
struct body {
	char *data;
	size_t len, size;
	bool too_large;
};

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
static char *endpoint_url(
		const struct helper_request *req, bool *ret_loopback, struct helper_answer *a)
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
		helper_answer_set(a, HELPER_CONFIG, "url is not a valid absolute URL");
		goto out;
	}
	https = strcmp(scheme, "https") == 0;
	loopback = host_is_loopback(host);
	if (!https && !(strcmp(scheme, "http") == 0 && loopback)) {
		helper_answer_set(a, HELPER_CONFIG,
				"url must be https:// (http:// only to loopback)");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK ||
			curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
			curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
		helper_answer_set(a, HELPER_CONFIG, "url must not hold user, query or fragment");
		goto out;
	}
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	snprintf(newpath, sizeof(newpath), "%.*s/api/authentication/%s", (int)n, path,
			req->validate ? "validateToken" : "login");
	if (curl_url_set(u, CURLUPART_PATH, newpath, 0) != CURLUE_OK ||
			curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
		helper_answer_set(a, HELPER_CONFIG, "url is not a valid absolute URL");
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

static void classify_curl(CURLcode c, const char *errbuf, bool too_large, struct helper_answer *a)
{
	const char *e = errbuf[0] ? errbuf : curl_easy_strerror(c);

	switch (c) {
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (c == CURLE_FILESIZE_EXCEEDED || too_large)
			helper_answer_set(a, HELPER_PROTOCOL, "response too large (over 1 MiB)");
		else
			helper_answer_set(
					a, HELPER_TRANSIENT, "out of memory reading the response");
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		helper_answer_set(a, HELPER_CONFIG, "cannot use the configuration: %s", e);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ISSUER_ERROR:
		helper_answer_set(a, HELPER_TRANSIENT, "server certificate not trusted: %s", e);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		helper_answer_set(a, HELPER_TRANSIENT, "timed out: %s", e);
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked: this is an HTTP/0.9 answer */
		helper_answer_set(a, HELPER_PROTOCOL, "not an HTTP answer: %s", e);
		break;
	default: /* connect, DNS, TLS handshake, send/receive, empty or cut-off answers */
		helper_answer_set(a, HELPER_TRANSIENT, "%s", e);
		break;
	}
}

/* Sorts the HTTP answer; on a 200 login reads the token into a->token. */
static void classify_http(CURL *c, const struct helper_request *req, const struct body *b,
		struct helper_answer *a)
{
	long s = a->http_status;

	if (s == 200 && req->validate) {
		helper_answer_set(a, HELPER_OK, "HTTP 200, token valid");
	} else if (s == 200) {
		struct helper_response r;
		const char *why;

		if (helper_response_parse(b->data, b->len, a->token, PIPE_MAX_TOKEN + 1, &r, &why) <
				0) {
			helper_answer_set(
					a, HELPER_PROTOCOL, "HTTP 200, unexpected answer: %s", why);
			return;
		}
		a->token_len = r.token_len;
		a->expires_in = r.expires_in;
		memcpy(a->user_id, r.user_id, sizeof(a->user_id));
		helper_answer_set(a, HELPER_OK, "HTTP 200");
	} else if (s == 400 || s == 401 || s == 403) {
		char why[128];

		helper_response_error_message(b->data, b->len, why, sizeof(why));
		/* The daemon says what was refused; the server's own words say why. */
		if (!req->validate && req->mfa.len == 0 && helper_response_wants_mfa(why))
			helper_answer_set(a, HELPER_MFA_REQUIRED, "HTTP %ld: %s", s, why);
		else if (why[0])
			helper_answer_set(a, HELPER_REJECTED, "HTTP %ld: %s", s, why);
		else
			helper_answer_set(a, HELPER_REJECTED, "HTTP %ld, %s rejected", s,
					req->validate ? "token" : "credentials");
	} else if (s == 429 || (s >= 500 && s <= 599) || req->validate) {
		a->retry_after = retry_after(c);
		if (a->retry_after >= 0)
			helper_answer_set(a, HELPER_TRANSIENT,
					"HTTP %ld, transient, retry after %" PRId64 " s", s,
					a->retry_after);
		else
			helper_answer_set(a, HELPER_TRANSIENT, "HTTP %ld, transient", s);
	} else if (s >= 300 && s <= 399) {
		_cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
		char *loc = NULL, *scheme = NULL, *host = NULL;

		if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc && u &&
				curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
				curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
				curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
			helper_answer_set(a, HELPER_PROTOCOL,
					"HTTP %ld, redirect to %s://%s not followed; set url to "
					"the "
					"final address",
					s, scheme, host);
		else
			helper_answer_set(a, HELPER_PROTOCOL, "HTTP %ld, redirect not followed", s);
		curl_free(scheme);
		curl_free(host);
	} else {
		helper_answer_set(a, HELPER_PROTOCOL,
				"HTTP %ld, unexpected status; is url RegScale's address?", s);
	}
}

#define SETOPT(c, opt, val)                                                                        \
	do {                                                                                       \
		if (curl_easy_setopt(c, opt, val) != CURLE_OK) {                                   \
			helper_answer_set(a, HELPER_CONFIG, "libcurl does not support " #opt);     \
			return;                                                                    \
		}                                                                                  \
	} while (0)

void helper_http_run(const struct helper_request *req, struct helper_answer *a)
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
			helper_answer_set(a, HELPER_CONFIG, "cannot read ca_file %s: %s",
					req->ca_file, strerror(errno));
			return;
		}
	}
	post = helper_request_body(req, &post_len);
	c = curl_easy_init();
	if (!post || !c) {
		helper_answer_set(a, HELPER_TRANSIENT, "out of memory");
		return;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = headers ? curl_slist_append(headers, "Accept: application/json") : NULL;
	headers = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (headers && req->v2 && !req->validate)
		headers = curl_slist_append(headers, "X-Api-Version: 2.0");
	if (!headers) {
		helper_answer_set(a, HELPER_TRANSIENT, "out of memory");
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

int helper_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void helper_http_cleanup(void)
{
	curl_global_cleanup();
}
