/* SPDX-License-Identifier: MIT */
/* Protocol tests: the real server and ops code on one end of a socketpair(), a test
 * client on the other, one sd_event loop driven by hand. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/jwt.h"
#include "daemon/lifecycle.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/tokend.h"
#include "proto/proto.h"
#include "testjwt.h"

struct fixture {
	sd_event *e;
	struct tokend *d;
	int fd; /* the client's end */
};

static char *make_token(int64_t exp, const char *user)
{
	char payload[256];

	snprintf(payload, sizeof(payload), "{\"id\":\"%s\",\"iat\":%lld,\"exp\":%lld}", user,
			(long long)time(NULL), (long long)exp);
	return test_jwt(payload);
}

static void hold_token(struct tokend *d, const char *token)
{
	struct lc_time now;
	const char *why;

	lc_time_now(&now);
	assert_int_equal(
			lifecycle_set_service_token(d->lifecycle, token, strlen(token), &now, &why),
			0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	assert_int_equal(sd_event_new(&f->e), 0);
	assert_int_equal(tokend_new(f->e, "/nonexistent/regscale-token-login", &f->d), 0);
	f->d->config.url = strdup("https://regscale.example.test");
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(server_add_connection(f->d->server, sv[0]), 0);
	f->fd = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fd >= 0)
		close(f->fd);
	tokend_free(f->d);
	sd_event_unref(f->e);
	free(f);
	return 0;
}

static void send_all(struct fixture *f, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(f->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			assert_true(sd_event_run(f->e, 1000) >= 0);
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return; /* the daemon closed on us; the reply says why */
		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

/* Runs the loop until the client end has a whole line (returned, caller frees) or EOF
 * (returns NULL). Fails the test after 3 s. */
static char *read_line(struct fixture *f)
{
	static char buf[2 * PROTO_MAX_LINE];
	static size_t held;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char *nl = memchr(buf, '\n', held);
		ssize_t n;

		if (nl) {
			char *line = strndup(buf, (size_t)(nl - buf));
			held -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, held);
			return line;
		}
		n = recv(f->fd, buf + held, sizeof(buf) - held, MSG_DONTWAIT);
		/* Linux reports ECONNRESET instead of EOF when the daemon closed with our
		 * unread bytes still queued. */
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			held = 0;
			return NULL;
		}
		if (n > 0) {
			held += (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_true(sd_event_run(f->e, 10 * 1000) >= 0);
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - start.tv_sec < 3);
	}
}

static struct json_object *request(struct fixture *f, const char *line)
{
	struct json_object *o;
	char *reply;

	send_all(f, line, strlen(line));
	reply = read_line(f);
	assert_non_null(reply);
	o = json_tokener_parse(reply);
	assert_non_null(o);
	free(reply);
	return o;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void assert_error(struct json_object *o, const char *code)
{
	struct json_object *ok;

	assert_true(json_object_object_get_ex(o, "ok", &ok));
	assert_false(json_object_get_boolean(ok));
	assert_string_equal(str(o, "error"), code);
	assert_non_null(str(o, "message"));
	assert_null(str(o, "token"));
}

static void test_ping(void **state)
{
	struct json_object *o = request(*state, "{\"op\":\"ping\"}\n");

	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			"{\"ok\":true,\"v\":1,\"pong\":true}");
	json_object_put(o);
}

static void test_get_without_token(void **state)
{
	struct json_object *o = request(*state, "{\"op\":\"get\",\"v\":1}\n");

	assert_error(o, "no_token");
	json_object_put(o);
}

static void test_get_token(void **state)
{
	struct fixture *f = *state;
	int64_t exp = time(NULL) + 3600;
	char *token = make_token(exp, "user-42");
	struct json_object *o, *v;

	hold_token(f->d, token);
	o = request(f, "{\"op\":\"get\"}\n");
	assert_string_equal(str(o, "token"), token);
	assert_string_equal(str(o, "kind"), "service");
	assert_string_equal(str(o, "user_id"), "user-42");
	assert_string_equal(str(o, "url"), "https://regscale.example.test");
	assert_true(json_object_object_get_ex(o, "expires_at", &v));
	assert_int_equal(json_object_get_int64(v), exp);
	assert_non_null(str(o, "expires"));
	json_object_put(o);
	free(token);
}

/* The get reply is copied from fields built once per token: every change of what they describe
 * (another token, another url after a reload) must show in the next reply, and an id, which
 * differs per request, must be escaped into it. */
static void test_get_reply_follows_the_token(void **state)
{
	struct fixture *f = *state;
	int64_t now = time(NULL);
	char *a = make_token(now + 3600, "user-a"), *b = make_token(now + 7200, "user-b");
	char expect[4096];
	struct json_object *o, *v;
	char *line;

	hold_token(f->d, a);
	o = request(f, "{\"op\":\"get\"}\n");
	assert_string_equal(str(o, "user_id"), "user-a");
	json_object_put(o);

	hold_token(f->d, b);
	o = request(f, "{\"op\":\"get\",\"id\":\"q\\\"1\\u0001\"}\n");
	assert_string_equal(str(o, "token"), b);
	assert_string_equal(str(o, "user_id"), "user-b");
	assert_string_equal(str(o, "id"), "q\"1\x01");
	assert_true(json_object_object_get_ex(o, "expires_at", &v));
	assert_int_equal(json_object_get_int64(v), now + 7200);
	assert_true(json_object_object_get_ex(o, "expires_in", &v));
	assert_in_range(json_object_get_int64(v), 7200 - 5, 7200);
	json_object_put(o);

	free(f->d->config.url);
	f->d->config.url = strdup("https://other.example.test/a\"b");
	o = request(f, "{\"op\":\"get\"}\n");
	assert_string_equal(str(o, "url"), "https://other.example.test/a\"b");
	assert_string_equal(str(o, "user_id"), "user-b");
	json_object_put(o);

	/* Byte for byte: the fields in the documented order, nothing after the token. */
	send_all(f, "{\"op\":\"get\"}\n", 13);
	line = read_line(f);
	assert_non_null(line);
	snprintf(expect, sizeof(expect),
			"{\"ok\":true,\"v\":1,\"kind\":\"service\",\"user_id\":\"user-b\","
			"\"username\":null,\"url\":\"https://other.example.test/"
			"a\\\"b\",\"expires_at\":%lld,"
			"\"expires\":\"",
			(long long)(now + 7200));
	assert_memory_equal(line, expect, strlen(expect));
	snprintf(expect, sizeof(expect), ",\"token\":\"%s\"}", b);
	assert_true(strlen(line) > strlen(expect));
	assert_string_equal(line + strlen(line) - strlen(expect), expect);
	free(line);
	free(a);
	free(b);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* Files a test points the daemon at: a secret (password or token) and a login helper that
 * sleeps, so that a helper process started stays there to be seen. */
struct scratch {
	char dir[32];
	char secret[64];
	char helper[64];
};

/* Makes s in a new directory, with secret_text in the file secret_name, and blocks SIGCHLD as
 * regscale-tokend's main() does (sd-event watches helpers with it blocked). */
static void scratch_make(struct scratch *s, const char *secret_name, const char *secret_text)
{
	sigset_t mask;

	snprintf(s->dir, sizeof(s->dir), "/tmp/rt-proto-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->secret, sizeof(s->secret), "%s/%s", s->dir, secret_name);
	snprintf(s->helper, sizeof(s->helper), "%s/helper", s->dir);
	write_file(s->secret, secret_text, 0600);
	write_file(s->helper, "#!/bin/sh\nexec sleep 10\n", 0700);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
}

static void scratch_remove(struct scratch *s)
{
	unlink(s->secret);
	unlink(s->helper);
	rmdir(s->dir);
}

/* A service token is served at once; the check with RegScale (a helper process) starts only
 * once the event loop runs, which is after READY=1: loading it starts no process. */
static void test_service_token_checked_after_start(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) + 3600, "user-s");
	struct json_object *o;
	struct scratch sc;

	scratch_make(&sc, "token", token);
	f->d->config.token_file = strdup(sc.secret);
	f->d->login_helper = sc.helper;

	assert_int_equal(tokend_load(f->d), 0);
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);

	o = request(f, "{\"op\":\"get\"}\n");
	assert_string_equal(str(o, "token"), token);
	json_object_put(o);
	/* The loop ran: the check is under way, and status says so. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), 0);
	o = request(f, "{\"op\":\"status\"}\n");
	assert_string_equal(str(o, "state"), "valid");
	assert_non_null(strstr(str(o, "message"), "RegScale is checking the token"));
	json_object_put(o);

	scratch_remove(&sc);
	free(token);
}

/* A password login configured at start is kept until READY=1 went out (main() releases it
 * right after): loading starts no helper process; releasing does, and a helper that cannot
 * be started is a failed login to retry, not a start-up failure. */
static void test_first_login_waits_for_ready(void **state)
{
	struct fixture *f = *state;
	struct json_object *o;
	struct scratch sc;

	scratch_make(&sc, "password", "hunter2\n");
	f->d->config.password_file = strdup(sc.secret);
	f->d->config.username = strdup("alice");
	f->d->login_helper = sc.helper;

	tokend_hold_logins(f->d, true);
	assert_int_equal(tokend_load(f->d), 0);
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	o = request(f, "{\"op\":\"status\"}\n");
	assert_string_equal(str(o, "state"), "logging_in");
	json_object_put(o);

	tokend_hold_logins(f->d, false);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), 0);

	/* Once more with a helper that is not there. */
	f->d->login_helper = "/nonexistent/regscale-token-login";
	tokend_hold_logins(f->d, true);
	assert_int_equal(tokend_reload(f->d), 0); /* no config file: the same credentials */
	o = request(f, "{\"op\":\"logout\"}\n");
	json_object_put(o);
	free(f->d->config.username);
	f->d->config.username = strdup("bob");
	assert_int_equal(tokend_reload(f->d), 0);
	tokend_hold_logins(f->d, false);
	o = request(f, "{\"op\":\"status\"}\n");
	assert_string_equal(str(o, "state"), "retrying");
	assert_non_null(strstr(str(o, "last_error"), "cannot start the login helper"));
	json_object_put(o);

	scratch_remove(&sc);
}

static double monotonic_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Idle connections are closed by one sweep timer: a connection's requests keep moving its
 * deadline, a newer connection with an earlier deadline than the one the timer is armed for
 * (the fixture's, 30 s) still goes at its own, and it goes with idle_timeout. */
static void test_idle_deadline_moves_with_use(void **state)
{
	struct fixture *f = *state;
	struct json_object *o, *pong;
	double start, closed;
	char *line;
	int sv[2];

	f->d->config.idle_timeout_sec = 1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(server_add_connection(f->d->server, sv[0]), 0);
	close(f->fd); /* the fixture's connection: armed the timer for 30 s */
	f->fd = sv[1];

	start = monotonic_sec();
	while (monotonic_sec() - start < 2.5) {
		o = request(f, "{\"op\":\"ping\"}\n");
		assert_true(json_object_object_get_ex(o, "pong", &pong));
		json_object_put(o);
		usleep(300 * 1000);
	}
	/* Quiet from here: the error line, then end of stream, about a second later. */
	start = monotonic_sec();
	line = read_line(f);
	assert_non_null(line);
	assert_non_null(strstr(line, "\"idle_timeout\""));
	free(line);
	assert_null(read_line(f));
	closed = monotonic_sec() - start;
	assert_true(closed > 0.7 && closed < 2.0);
}

/* Clients that connect per request hang up faster than the loop reads their end of stream:
 * with every slot held by such gone connections, a newcomer is served all the same. */
static void test_gone_connections_make_room(void **state)
{
	struct fixture *f = *state;
	struct json_object *o, *pong;
	int sv[2];

	close(f->fd); /* the fixture's connection, gone too */
	for (int i = 1; i < PROTO_MAX_CLIENTS; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
						 sv),
				0);
		assert_int_equal(server_add_connection(f->d->server, sv[0]), 0);
		close(sv[1]);
	}
	assert_int_equal(server_n_connections(f->d->server), PROTO_MAX_CLIENTS);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(server_add_connection(f->d->server, sv[0]), 0);
	f->fd = sv[1];
	o = request(f, "{\"op\":\"ping\"}\n");
	assert_true(json_object_object_get_ex(o, "pong", &pong));
	json_object_put(o);
	assert_int_equal(server_n_connections(f->d->server), 1);
}

static void test_get_expired_token_is_never_served(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) - 5, "user-1");
	struct json_object *o;

	hold_token(f->d, token);
	o = request(f, "{\"op\":\"get\"}\n");
	assert_error(o, "token_expired");
	json_object_put(o);
	o = request(f, "{\"op\":\"status\"}\n");
	assert_string_equal(str(o, "state"), "expired");
	json_object_put(o);
	free(token);
}

static void test_min_valid(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) + 60, "user-1");
	struct json_object *o;

	hold_token(f->d, token);
	o = request(f, "{\"op\":\"get\",\"min_valid\":600}\n");
	assert_error(o, "token_expired");
	json_object_put(o);
	o = request(f, "{\"op\":\"get\",\"min_valid\":30}\n");
	assert_string_equal(str(o, "token"), token);
	json_object_put(o);
	free(token);
}

static void test_status(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) + 3600, "user-7");
	struct json_object *o;

	hold_token(f->d, token);
	o = request(f, "{\"op\":\"status\",\"id\":\"s1\"}\n");
	assert_string_equal(str(o, "state"), "valid");
	assert_string_equal(str(o, "id"), "s1");
	assert_string_equal(str(o, "user_id"), "user-7");
	assert_string_equal(str(o, "version"), RT_VERSION);
	assert_non_null(strstr(str(o, "message"), "valid until"));
	assert_null(strstr(json_object_to_json_string(o), token));
	json_object_put(o);
	free(token);
}

static void test_bad_requests_keep_the_connection(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *line, *code;
	} cases[] = {
			{"garbage\n", "bad_request"},
			{"{\"op\":\"get\"\n", "bad_request"},
			{"[1,2,3]\n", "bad_request"},
			{"{\"op\":42}\n", "bad_request"},
			{"{\"op\":\"fly\"}\n", "unknown_op"},
			{"{\"op\":\"get\",\"v\":2}\n", "unsupported_version"},
			{"{\"op\":\"get\",\"x\":\"\xff\"}\n", "bad_request"},
			{"\n", "bad_request"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = request(f, cases[i].line);
		assert_error(o, cases[i].code);
		json_object_put(o);
	}
	struct json_object *o = request(f, "{\"op\":\"ping\"}\n");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			"{\"ok\":true,\"v\":1,\"pong\":true}");
	json_object_put(o);
}

static void test_too_large_closes(void **state)
{
	struct fixture *f = *state;
	size_t len = PROTO_MAX_LINE + 10;
	char *big = malloc(len), *line;
	struct json_object *o;

	memset(big, 'a', len);
	send_all(f, big, len);
	line = read_line(f);
	assert_non_null(line);
	o = json_tokener_parse(line);
	assert_error(o, "too_large");
	json_object_put(o);
	free(line);
	assert_null(read_line(f)); /* closed */
	assert_int_equal(server_n_connections(f->d->server), 0);
	free(big);
}

static void test_pipelined_requests_in_one_write(void **state)
{
	struct fixture *f = *state;
	char lines[4096] = "", one[64];

	for (int i = 0; i < 50; i++) {
		snprintf(one, sizeof(one), "{\"op\":\"ping\",\"id\":%d}\n", i);
		strcat(lines, one);
	}
	send_all(f, lines, strlen(lines));
	for (int i = 0; i < 50; i++) {
		char *line = read_line(f), want[16];
		struct json_object *o = json_tokener_parse(line);

		snprintf(want, sizeof(want), "%d", i);
		assert_string_equal(str(o, "id"), want);
		json_object_put(o);
		free(line);
	}
}

/* The sockets are edge-triggered: a pipelined stream far larger than the receive buffer and
 * the socket buffers is answered line by line all the same. First the client sends without
 * reading until nothing moves (the daemon's replies back up, its line buffer fills with
 * lines it cannot answer, bytes stay in the socket), then it reads while sending the rest:
 * no edge comes for the bytes left behind, so the daemon must remember to read them. */
/* The sockets are edge-triggered: a pipelined stream far larger than the receive buffer and
 * the socket buffers is answered line by line all the same. The client sends without reading
 * until nothing moves (the daemon's replies back up and it stops reading), then reads every
 * reply while sending the rest. */
static void test_pipelined_flood_is_answered_in_full(void **state)
{
	enum { N = 20000 };
	struct fixture *f = *state;
	static char lines[N * 40], in[64 * 1024];
	size_t len = 0, sent = 0, held = 0;
	int got = 0, stuck = 0;
	double start = monotonic_sec();

	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(lines + len, sizeof(lines) - len,
				"{\"op\":\"ping\",\"id\":%d}\n", i);
	while (stuck < 5) {
		ssize_t n = send(f->fd, lines + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		stuck = n > 0 ? 0 : stuck + 1;
		assert_true(sd_event_run(f->e, 0) >= 0);
	}
	assert_true(sent < len); /* it did back up */
	while (got < N) {
		ssize_t n;
		char *nl;

		if (sent < len) {
			n = send(f->fd, lines + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		n = recv(f->fd, in + held, sizeof(in) - held, MSG_DONTWAIT);
		assert_true(n != 0);
		if (n > 0)
			held += (size_t)n;
		while ((nl = memchr(in, '\n', held))) {
			char want[32];

			*nl = '\0';
			snprintf(want, sizeof(want), "\"id\":\"%d\"", got++);
			assert_non_null(strstr(in, want));
			held -= (size_t)(nl + 1 - in);
			memmove(in, nl + 1, held);
		}
		assert_true(sd_event_run(f->e, n > 0 ? 0 : 10 * 1000) >= 0);
		assert_true(monotonic_sec() - start < 20);
	}
}

/* Behind a get that waits for a login, large requests fill the daemon's line buffer with
 * lines it cannot answer yet, and the rest stays in the socket, for which no edge comes
 * again: once the wait is over and the lines answered, the daemon must read the rest. */
static void test_requests_behind_a_waiting_get(void **state)
{
	enum { BIG = 6, PAD = 16000 };
	struct fixture *f = *state;
	struct scratch sc;
	static char lines[BIG * (PAD + 64)];
	size_t len;

	scratch_make(&sc, "password", "hunter2\n");
	f->d->config.password_file = strdup(sc.secret);
	f->d->config.username = strdup("alice");
	tokend_hold_logins(f->d, true); /* a login in flight that never ends */
	assert_int_equal(tokend_load(f->d), 0);

	len = (size_t)snprintf(lines, sizeof(lines), "{\"op\":\"get\",\"wait\":1}\n");
	for (int i = 0; i < BIG; i++) {
		len += (size_t)snprintf(lines + len, sizeof(lines) - len,
				"{\"op\":\"ping\",\"id\":%d,\"pad\":\"", i);
		memset(lines + len, 'x', PAD);
		len += PAD;
		len += (size_t)snprintf(lines + len, sizeof(lines) - len, "\"}\n");
	}
	send_all(f, lines, len); /* fits the socket and the daemon's line buffer together */
	for (int i = -1; i < BIG; i++) {
		char *line = read_line(f), want[32];

		assert_non_null(line);
		snprintf(want, sizeof(want), "\"id\":\"%d\"", i);
		assert_non_null(strstr(line, i < 0 ? "\"ok\":false" : want));
		free(line);
	}
	scratch_remove(&sc);
}

static void test_request_split_byte_by_byte(void **state)
{
	struct fixture *f = *state;
	const char *req = "{\"op\":\"ping\",\"id\":\"slow\"}\r\n";
	struct json_object *o;
	char *line;

	for (const char *p = req; *p; p++) {
		send_all(f, p, 1);
		assert_true(sd_event_run(f->e, 0) >= 0);
	}
	line = read_line(f);
	o = json_tokener_parse(line);
	assert_string_equal(str(o, "id"), "slow");
	json_object_put(o);
	free(line);
}

static void test_client_vanishing_mid_reply(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) + 3600, "user-1");
	char lines[64 * 20] = "";

	hold_token(f->d, token);
	for (int i = 0; i < 60; i++)
		strcat(lines, "{\"op\":\"get\"}\n");
	send_all(f, lines, strlen(lines));
	close(f->fd); /* gone before reading anything: no SIGPIPE, connection freed */
	f->fd = -1;
	for (int i = 0; i < 20 && server_n_connections(f->d->server) > 0; i++)
		assert_true(sd_event_run(f->e, 10 * 1000) >= 0);
	assert_int_equal(server_n_connections(f->d->server), 0);
	free(token);
}

static void test_end_of_stream_answers_last_request(void **state)
{
	struct fixture *f = *state;
	struct json_object *o;
	char *line;

	send_all(f, "{\"op\":\"ping\"}\n", 14);
	shutdown(f->fd, SHUT_WR);
	line = read_line(f);
	assert_non_null(line);
	o = json_tokener_parse(line);
	assert_non_null(o);
	json_object_put(o);
	free(line);
	assert_null(read_line(f));
}

static void test_shutdown_exits_loop(void **state)
{
	struct fixture *f = *state;
	int code = -1;

	assert_int_equal(sd_event_get_exit_code(f->e, &code), -ENODATA);
	server_shutdown(f->d->server);
	assert_int_equal(server_n_connections(f->d->server), 0);
	assert_int_equal(sd_event_get_exit_code(f->e, &code), 0);
	assert_int_equal(code, 0);
}

/* The metrics op: its format, the profile the daemon is named by, and counts of the requests
 * answered before it on the wire, an invalid line, and the connection it came on. */
static void test_metrics(void **state)
{
	struct fixture *f = *state;
	char *token = make_token(time(NULL) + 3600, "user-42");
	struct json_object *o;
	const char *text;

	/* main.c names it after the socket it serves on. */
	assert_int_equal(metrics_set_socket(f->d->metrics, "/run/regscale-token/prod.sock"), 0);
	hold_token(f->d, token);
	json_object_put(request(f, "{\"op\":\"get\"}\n"));
	json_object_put(request(f, "{\"op\":\"get\"}\n"));
	assert_error(o = request(f, "{\"op\":\"nope\"}\n"), "unknown_op");
	json_object_put(o);
	o = request(f, "{\"op\":\"metrics\",\"id\":3}\n");
	assert_string_equal(str(o, "id"), "3");
	assert_string_equal(str(o, "format"), PROTO_METRICS_FORMAT);
	text = str(o, "metrics");
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE regscale_token_requests_total counter\n"));
	assert_non_null(strstr(text, "\nregscale_token_requests_total{profile=\"prod\",op=\"get\","
				     "result=\"ok\"} 2\n"));
	assert_non_null(strstr(text, "\nregscale_token_requests_total{profile=\"prod\",op="
				     "\"metrics\",result=\"ok\"} "
				     "0\n"));
	assert_non_null(strstr(text,
			"\nregscale_token_requests_total{profile=\"prod\",op=\"invalid\",result="
			"\"unknown_op\"} 1\n"));
	assert_non_null(strstr(
			text, "\nregscale_token_state{profile=\"prod\",state=\"valid\"} 1\n"));
	assert_non_null(strstr(text, "\nregscale_token_info{profile=\"prod\",version=\"" RT_VERSION
				     "\",kind=\"service\"} 1\n"));
	assert_non_null(strstr(text, "\nregscale_token_connections{profile=\"prod\"} 1\n"));
	json_object_put(o);
	o = request(f, "{\"op\":\"metrics\"}\n");
	assert_non_null(strstr(str(o, "metrics"), "\nregscale_token_requests_total{profile="
						  "\"prod\",op=\"metrics\",result=\"ok\"} 1\n"));
	json_object_put(o);
	free(token);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
			cmocka_unit_test_setup_teardown(test_get_without_token, setup, teardown),
			cmocka_unit_test_setup_teardown(test_get_token, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_get_reply_follows_the_token, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_service_token_checked_after_start, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_idle_deadline_moves_with_use, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_first_login_waits_for_ready, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_gone_connections_make_room, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_pipelined_flood_is_answered_in_full, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_requests_behind_a_waiting_get, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_get_expired_token_is_never_served, setup, teardown),
			cmocka_unit_test_setup_teardown(test_min_valid, setup, teardown),
			cmocka_unit_test_setup_teardown(test_status, setup, teardown),
			cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_bad_requests_keep_the_connection, setup, teardown),
			cmocka_unit_test_setup_teardown(test_too_large_closes, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_pipelined_requests_in_one_write, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_request_split_byte_by_byte, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_client_vanishing_mid_reply, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_end_of_stream_answers_last_request, setup, teardown),
			cmocka_unit_test_setup_teardown(test_shutdown_exits_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
