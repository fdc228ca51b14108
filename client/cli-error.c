/* SPDX-License-Identifier: MIT */
/* How a command fails: the one line it prints (or the JSON object of --json), the progress
 * line while it waits, and what the exit code and words are for a transport error or an
 * error reply. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/format.h"
#include "client/hint.h"
#include "common/utf8.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* Writes text[0..len) as a JSON string value of key into w, with any byte that is not part
 * of well-formed UTF-8 (from argv, say) shown as '?'. */
static void json_text(struct jsonw *w, const char *key, const char *text)
{
	char clean[1024];
	size_t n = 0;

	for (const char *p = text; *p && n < sizeof(clean) - 4;) {
		size_t k = utf8_sequence_len(p, strlen(p));

		if (k == 0) {
			clean[n++] = '?';
			p++;
			continue;
		}
		memcpy(clean + n, p, k);
		n += k;
		p += k;
	}
	jsonw_string(w, key, clean, n);
}

__attribute__((format(printf, 3, 0))) static int fail(
		int exit_code, const char *code, const char *fmt, va_list ap)
{
	char line[1024], out[2048];
	struct jsonw w;
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (!cli_json()) {
		fprintf(stderr, "regscale-token: %s\n", line);
		return exit_code;
	}
	jsonw_begin(&w, out, sizeof(out));
	jsonw_bool(&w, PROTO_F_OK, false);
	json_text(&w, PROTO_F_ERROR, code);
	json_text(&w, PROTO_F_MESSAGE, line);
	jsonw_int(&w, "exit", exit_code);
	if (jsonw_end(&w, &len) == 0)
		fwrite(out, 1, len, stdout);
	return exit_code;
}

int cli_fail(int exit_code, const char *code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fail(exit_code, code, fmt, ap);
	va_end(ap);
	return r;
}

void cli_say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "regscale-token: %s\n", line);
}

bool cli_progress_wanted(void)
{
	return !cli_json() && isatty(STDERR_FILENO);
}

void cli_progress(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!cli_progress_wanted())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

int cli_exit_for_error(enum proto_error err)
{
	switch (err) {
	case PROTO_E_NO_TOKEN:
	case PROTO_E_TOKEN_EXPIRED:
	case PROTO_E_LOGIN_REQUIRED:
		return EXIT_NO_TOKEN;
	case PROTO_E_PERMISSION_DENIED:
		return EXIT_DENIED;
	case PROTO_E_LOGIN_FAILED:
	case PROTO_E_CREDENTIALS_REJECTED:
	case PROTO_E_MFA_REQUIRED:
		return EXIT_LOGIN;
	/* The daemon is there but could not serve us in time: "not answering in time". */
	case PROTO_E_TOO_MANY_CLIENTS:
	case PROTO_E_IDLE_TIMEOUT:
	case PROTO_E_TIMEOUT:
		return EXIT_UNREACHABLE;
	default:
		return EXIT_FAILURE;
	}
}

int cli_fail_transport(const char *path, int64_t timeout_ms, int r)
{
	char p[256];

	format_sanitize(path, p, sizeof(p));
	switch (r) {
	case -ENOENT:
	case -ENOTDIR:
	case -ECONNREFUSED:
		return cli_fail(EXIT_UNREACHABLE, CLI_E_UNREACHABLE,
				"the daemon is not running at %s (%s); start regscale-tokend, or "
				"point --socket or REGSCALE_TOKEN_SOCKET at its socket",
				p, strerror(-r));
	case -EACCES:
	case -EPERM:
		return cli_fail(EXIT_DENIED, CLI_E_DENIED,
				"permission denied on %s; run as a user the daemon's socket "
				"admits, or ask the daemon's administrator",
				p);
	case -ETIMEDOUT:
		return cli_fail(EXIT_UNREACHABLE, CLI_E_NO_ANSWER,
				"no answer from the daemon at %s within %.3g s; check the daemon's "
				"log, or raise --timeout",
				p, (double)timeout_ms / 1000.0);
	case -ECONNRESET:
	case -EPIPE:
		return cli_fail(EXIT_UNREACHABLE, CLI_E_UNREACHABLE,
				"the daemon at %s closed the connection without answering; check "
				"the daemon's log",
				p);
	case -EMSGSIZE:
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the reply from %s is longer than %d bytes; check that it is a "
				"regscale-tokend socket of the same version as regscale-token",
				p, PROTO_MAX_LINE);
	case -EBADMSG:
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"malformed reply from %s; check that it is a regscale-tokend "
				"socket "
				"of the same version as regscale-token",
				p);
	case -EPROTO:
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"the daemon at %s speaks another protocol version; install "
				"matching versions of regscale-token and regscale-tokend",
				p);
	case -ENAMETOOLONG:
		return cli_fail(EXIT_USAGE, CLI_E_USAGE,
				"socket path %s is too long for a Unix socket; use a shorter "
				"--socket path",
				p);
	default:
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot talk to the daemon at %s: %s; check the daemon's log", p,
				strerror(-r));
	}
}

/* The error code of reply r as it came, when it is a plausible code (a newer daemon's code
 * is passed on to --json, even though we treat it as "internal"), else err's name. */
static const char *reply_code(
		const struct reply_read *r, enum proto_error err, char *buf, size_t size)
{
	const char *code = format_reply_str(r, PROTO_F_ERROR, buf, size);
	size_t n = code ? strlen(code) : 0;

	if (n == 0 || n > 32)
		return proto_error_name(err);
	for (size_t i = 0; i < n; i++)
		if (!((code[i] >= 'a' && code[i] <= 'z') || code[i] == '_'))
			return proto_error_name(err);
	return code;
}

int cli_fail_reply(const struct hint_request *req, const struct reply_read *r)
{
	char message[FORMAT_FIELD_MAX], kind_buf[64], code_buf[64], line[1024];
	enum proto_error err = reply_read_error(r, message, sizeof(message));
	const char *kind = format_reply_str(r, PROTO_F_KIND, kind_buf, sizeof(kind_buf));

	hint_error_line(req, err, kind, message, line, sizeof(line));
	return cli_fail(cli_exit_for_error(err), reply_code(r, err, code_buf, sizeof(code_buf)),
			"%s", line);
}
