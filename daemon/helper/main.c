/* SPDX-License-Identifier: MIT */
/* regscale-token-login: one HTTPS exchange with RegScale per run. regscale-tokend writes a
 * request (daemon/helper/pipe.h) on stdin, this program logs in (or validates a token), writes
 * the answer on stdout, logs one line on stderr and exits with the enum helper_outcome. The
 * password and token stay in libsodium memory here; libcurl and OpenSSL keep copies in
 * their own buffers, which is why this runs in a short-lived, non-dumpable process.
 *
 * It takes no secret before it is hardened: it makes itself non-dumpable, checks that no
 * tracer is attached and only then writes PIPE_READY, the daemon's cue to send the request.
 *
 * request.c reads the request and builds the body, http.c talks to RegScale;
 * this file runs them in order and speaks on stdin, stdout and stderr. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/escape.h"
#include "common/fields.h"
#include "common/harden.h"
#include "common/util.h"
#include "daemon/helper/http.h"
#include "daemon/helper/request.h"

/* Logs the one line for this run: the user is quoted, the password and token never appear. */
static void log_line(const struct helper_request *req, const struct helper_answer *a)
{
	static const int levels[] = {[HELPER_OK] = 6,
			[HELPER_REJECTED] = 4,
			[HELPER_TRANSIENT] = 4,
			[HELPER_PROTOCOL] = 3,
			[HELPER_CONFIG] = 3,
			[HELPER_MFA_REQUIRED] = 5};
	char user[4 * sizeof(req->username)], url[sizeof(req->url)], line[8192];
	int k;

	escape_log(req->username, user, sizeof(user));
	/* The url may have been refused for holding a user and password: never log those, nor
	 * a query. */
	const char *host = strstr(req->url, "://"), *at;
	host = host ? host + 3 : req->url;
	size_t auth_len = strcspn(host, "/?#");
	at = memrchr(host, '@', auth_len);
	snprintf(url, sizeof(url), "%.*s%.*s", (int)(host - req->url), req->url,
			(int)strcspn(at ? at + 1 : host, "?#"), at ? at + 1 : host);
	escape_ascii(url);

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
static int write_answer(const struct helper_request *req, const struct helper_answer *a)
{
	_cleanup_(sodium_freep) char *buf = sodium_malloc(PIPE_MAX_ANSWER);
	size_t pos = 0;
	const char *outcome = helper_outcome_name(a->outcome);

	if (!buf)
		return -ENOMEM;
	if (fields_put(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_OUTCOME, outcome, strlen(outcome)) < 0 ||
			fields_put_int(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_HTTP_STATUS,
					a->http_status) < 0 ||
			fields_put_int(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_RETRY_AFTER,
					a->retry_after) < 0 ||
			fields_put_int(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_EXPIRES_IN,
					a->expires_in) < 0 ||
			fields_put(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_USER_ID, a->user_id,
					strlen(a->user_id)) < 0 ||
			fields_put(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_MESSAGE, a->message,
					strlen(a->message)) < 0)
		return -ENOBUFS;
	if (a->outcome == HELPER_OK && !req->validate &&
			fields_put(buf, PIPE_MAX_ANSWER, &pos, PIPE_F_TOKEN, a->token,
					a->token_len) < 0)
		return -ENOBUFS;

	return loop_write(STDOUT_FILENO, buf, pos);
}

/* Returns 0, or the -errno of harden_process(). */
static int harden(void)
{
	/* No core dumps, no ptrace and no /proc/PID/{mem,fd} by other processes of the same
	 * user: memory will hold secrets. First thing, before the request is even asked for. */
	int r = harden_process();
	/* libcurl would write the TLS session keys there, which decrypt the password. */
	(void)unsetenv("SSLKEYLOGFILE");
	/* A daemon that went away gives EPIPE, not a silent death. */
	(void)signal(SIGPIPE, SIG_IGN);
	return r;
}

/* Reads the TracerPid of a process from its status file (/proc/PID/status) into *ret: 0
 * when untraced. Returns 0, or -errno (-EBADMSG: no TracerPid there). */
static int read_tracer(const char *status_path, long *ret)
{
	static const char key[] = "\nTracerPid:\t";
	_cleanup_(closep) int fd = open(status_path, O_RDONLY | O_CLOEXEC);
	char buf[8192], *p, *end;
	ssize_t n = fd < 0 ? -errno : loop_read(fd, buf, sizeof(buf) - 1);

	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p)
		return -EBADMSG;
	p += sizeof(key) - 1;
	errno = 0;
	*ret = strtol(p, &end, 10);
	return end == p || errno != 0 || *ret < 0 ? -EBADMSG : 0;
}

/* Checks that no process traces this one: a tracer attached before harden() keeps reading
 * our memory, non-dumpable or not (none can attach after it). The one exception is a
 * tracer of the daemon itself (strace -f of the whole service): it holds the daemon's
 * secrets already, and no process of the daemon's user can attach to the non-dumpable
 * daemon. Returns 0, or -EPERM with the answer set. */
static int check_untraced(struct helper_answer *a)
{
	char parent[64];
	long mine, theirs;
	int r = read_tracer("/proc/self/status", &mine);

	if (r < 0) {
		helper_answer_set(a, HELPER_CONFIG,
				"cannot read TracerPid from /proc/self/status: %s", strerror(-r));
		return -EPERM;
	}
	if (mine == 0)
		return 0;
	snprintf(parent, sizeof(parent), "/proc/%d/status", (int)getppid());
	if (read_tracer(parent, &theirs) == 0 && theirs == mine)
		return 0;
	helper_answer_set(a, HELPER_CONFIG,
			"traced by process %ld, which does not trace the daemon: refusing to take "
			"the request",
			mine);
	return -EPERM;
}

/* Tells the daemon it may send the request now (PIPE_READY). Returns 0 or -errno. */
static int say_ready(void)
{
	static const char ready[] = PIPE_READY;

	return loop_write(STDOUT_FILENO, ready, sizeof(ready) - 1);
}

int main(int argc, char **argv)
{
	_cleanup_(sodium_freep) char *input = NULL;
	struct helper_answer a = {.outcome = HELPER_TRANSIENT, .retry_after = -1, .expires_in = -1};
	struct helper_request req = {0};
	ssize_t n;
	int hardened = harden(), r;

	if (argc > 1) {
		if (strcmp(argv[1], "--version") == 0) {
			printf("regscale-token-login %s\n", RT_VERSION);
			return 0;
		}
		fprintf(stderr, "regscale-token-login: takes no arguments; regscale-tokend runs it "
				"with a request on stdin\n");
		return HELPER_CONFIG;
	}

	/* A failure before say_ready() is answered at once, and the daemon sends no request. */
	if (sodium_init() < 0 || helper_http_init() < 0 ||
			!(input = sodium_malloc(PIPE_MAX_REQUEST + 1)) ||
			!(a.token = sodium_malloc(PIPE_MAX_TOKEN + 1))) {
		helper_answer_set(&a, HELPER_TRANSIENT, "cannot initialise libsodium or libcurl");
	} else if (hardened < 0) {
		helper_answer_set(&a, HELPER_CONFIG,
				"cannot make the process non-dumpable: %s; not taking the request",
				strerror(-hardened));
	} else if (check_untraced(&a) < 0) {
		/* a says why */
	} else if ((r = say_ready()) < 0) {
		helper_answer_set(&a, HELPER_TRANSIENT, "cannot ask for the request: %s",
				strerror(-r));
	} else if ((n = loop_read(STDIN_FILENO, input, PIPE_MAX_REQUEST + 1)) < 0 ||
			n > PIPE_MAX_REQUEST) {
		/* One byte more than allowed was asked for, to see that the request is too large.
		 */
		if (n > 0)
			helper_answer_set(&a, HELPER_CONFIG, "request larger than %d bytes",
					PIPE_MAX_REQUEST);
		else
			helper_answer_set(&a, HELPER_TRANSIENT, "cannot read the request: %s",
					strerror((int)-n));
	} else if (helper_request_parse(input, (size_t)n, &req, &a) >= 0) {
		helper_http_run(&req, &a);
	}

	log_line(&req, &a);
	if (write_answer(&req, &a) < 0 && a.outcome == HELPER_OK)
		a.outcome = HELPER_TRANSIENT; /* the daemon did not get the token */
	sodium_free(a.token);
	helper_http_cleanup();
	return (int)a.outcome;
}
