/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/escape.h"
#include "common/fields.h"
#include "common/util.h"
#include "daemon/helper_proc.h"
#include "daemon/log.h"

/* The helper enforces the total timeout itself; this is the backstop for a helper that
 * hangs anyway. */
#define LOGIN_KILL_GRACE_USEC (5 * 1000000ULL)

extern char **environ;

struct helper_proc {
	sd_event *event;
	pid_t pid;  /* also its process group */
	int in_fd;  /* helper's stdin, -EBADF once all was written or none will be */
	int out_fd; /* helper's stdout, -EBADF after EOF */
	sd_event_source *in_io, *out_io, *child, *kill_timer, *ready_timer;
	struct secret *request;
	size_t request_off;
	struct secret *answer;
	bool exited, killed;
	bool ready;       /* PIPE_READY came: the request may go (in_io writes it) */
	bool no_request;  /* something else came first, or nothing in time: never sent */
	const char *fail; /* why the run failed although the helper exited normally */
	siginfo_t status;
	helper_done_t done;
	void *userdata;
	struct helper_proc **owner; /* the caller's pointer to us, cleared when we go */
};

struct helper_proc *helper_free(struct helper_proc *l)
{
	if (!l)
		return NULL;
	if (l->owner)
		*l->owner = NULL;
	sd_event_source_disable_unref(l->in_io);
	sd_event_source_disable_unref(l->out_io);
	sd_event_source_disable_unref(l->kill_timer);
	sd_event_source_disable_unref(l->ready_timer);
	sd_event_source_disable_unref(l->child);
	if (l->pid > 0 && !l->exited) {
		/* Cancelled: the helper (and whatever it started) must not outlive the request, nor
		 * stay a zombie. Not yet reaped, its pid still names its group. */
		(void)kill(-l->pid, SIGKILL);
		(void)waitpid(l->pid, NULL, 0);
	}
	closep(&l->in_fd);
	closep(&l->out_fd);
	secret_free(l->request);
	secret_free(l->answer);
	sd_event_unref(l->event);
	free(l);
	return NULL;
}

static void copy_text(char *dst, size_t size, const char *v, size_t len)
{
	snprintf(dst, size, "%.*s", (int)(len < size ? len : size - 1), v);
	escape_ascii(dst);
}

/* Reads the helper's answer into *r. Returns 0, or -EBADMSG with r->message set. */
static int parse_answer(struct helper_proc *l, struct helper_result *r)
{
	char name[FIELDS_MAX_NAME + 1];
	const char *v;
	size_t pos = 0, len;
	int64_t n;
	int k, outcome = -1;

	while ((k = fields_next(l->answer->data, l->answer->len, &pos, name, &v, &len)) > 0) {
		if (strcmp(name, PIPE_F_OUTCOME) == 0)
			outcome = helper_outcome_from_name(v, len);
		else if (strcmp(name, PIPE_F_HTTP_STATUS) == 0 && fields_parse_int(v, len, &n) == 0)
			r->http_status = (int)n;
		else if (strcmp(name, PIPE_F_RETRY_AFTER) == 0 && fields_parse_int(v, len, &n) == 0)
			r->retry_after = n;
		else if (strcmp(name, PIPE_F_EXPIRES_IN) == 0 && fields_parse_int(v, len, &n) == 0)
			r->expires_in = n;
		else if (strcmp(name, PIPE_F_USER_ID) == 0)
			copy_text(r->user_id, sizeof(r->user_id), v, len);
		else if (strcmp(name, PIPE_F_MESSAGE) == 0)
			copy_text(r->message, sizeof(r->message), v, len);
		else if (strcmp(name, PIPE_F_TOKEN) == 0 && !r->token) {
			r->token = secret_new_from(v, len);
			if (!r->token)
				return -ENOMEM;
		}
	}
	if (k < 0 || outcome < 0) {
		snprintf(r->message, sizeof(r->message), "login helper sent a malformed answer");
		return -EBADMSG;
	}
	r->outcome = (enum helper_outcome)outcome;
	return 0;
}

static void finish(struct helper_proc *l)
{
	struct helper_result r = {.outcome = HELPER_TRANSIENT, .retry_after = -1, .expires_in = -1};
	const siginfo_t *si = &l->status;

	if (l->killed)
		snprintf(r.message, sizeof(r.message),
				"login helper did not finish in time; killed");
	else if (si->si_code != CLD_EXITED)
		snprintf(r.message, sizeof(r.message), "login helper crashed (signal %d)",
				si->si_status);
	else if (l->fail)
		snprintf(r.message, sizeof(r.message), "%s", l->fail);
	else if (parse_answer(l, &r) < 0)
		r.outcome = HELPER_TRANSIENT;
	else if (l->no_request && r.outcome == HELPER_OK) {
		/* Only a refusal can come before the request: an "ok" is not an answer to it. */
		snprintf(r.message, sizeof(r.message),
				"login helper answered \"ok\" without asking for the request");
		r.outcome = HELPER_TRANSIENT;
	} else if ((int)r.outcome != si->si_status) {
		snprintf(r.message, sizeof(r.message),
				"login helper exited with status %d but "
				"answered \"%s\"",
				si->si_status, helper_outcome_name(r.outcome));
		r.outcome = HELPER_TRANSIENT;
	}
	if (!r.message[0])
		snprintf(r.message, sizeof(r.message), "login %s", helper_outcome_name(r.outcome));
	if (r.outcome != HELPER_OK)
		r.token = secret_free(r.token);
	l->answer = secret_free(l->answer);

	/* Detached first: the callback may start the next helper into the same slot. */
	*l->owner = NULL;
	l->owner = NULL;
	l->done(&r, l->userdata);
	secret_free(r.token);
	helper_free(l);
}

/* Done when the helper has exited and its stdout is closed: then the whole answer is in. */
static void maybe_finish(struct helper_proc *l)
{
	if (l->exited && l->out_fd < 0)
		finish(l);
}

static int on_in(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* The request will not be sent: the helper's stdin is closed (an empty request) and the
 * request wiped. */
static void forgo_request(struct helper_proc *l)
{
	l->no_request = true;
	l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
	l->in_io = sd_event_source_disable_unref(l->in_io);
	closep(&l->in_fd);
	l->request = secret_free(l->request);
}

/* Looks at what the helper sent so far for PIPE_READY, which says it is non-dumpable and
 * untraced. Once it is there it is dropped from the answer and the request goes out; until
 * then no byte of it leaves the daemon. Anything else first is an answer given without the
 * request (the helper refused): none is sent. Returns 0, or -errno when the request cannot
 * be sent. */
static int take_ready(struct helper_proc *l)
{
	const size_t n = sizeof(PIPE_READY) - 1;
	size_t have = l->answer->len;

	if (l->ready || l->no_request)
		return 0;
	if (memcmp(l->answer->data, PIPE_READY, have < n ? have : n) != 0 ||
			(have < n && l->out_fd < 0)) {
		forgo_request(l);
		return 0;
	}
	if (have < n)
		return 0;
	memmove(l->answer->data, l->answer->data + n, have - n);
	l->answer->len = have - n;
	l->ready = true;
	l->ready_timer = sd_event_source_disable_unref(l->ready_timer);
	if (l->exited) { /* too late to ask */
		forgo_request(l);
		return 0;
	}
	return sd_event_add_io(l->event, &l->in_io, l->in_fd, EPOLLOUT, on_in, l);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
	struct helper_proc *l = userdata;

	l->status = *si;
	l->exited = true;
	l->kill_timer = sd_event_source_disable_unref(l->kill_timer);
	/* Nothing of its group survives it. sd-event reaps the helper only after this returns,
	 * so its pid still names its group (and cannot have been reused). */
	(void)kill(-l->pid, SIGKILL);
	/* A helper that exited may leave its stdout open in a grandchild; don't wait for it. */
	if (l->out_fd >= 0) {
		ssize_t n;
		do {
			n = read(l->out_fd, l->answer->data + l->answer->len,
					l->answer->size - 1 - l->answer->len);
			if (n > 0)
				l->answer->len += (size_t)n;
		} while (n > 0 && l->answer->len < l->answer->size - 1);
		l->out_io = sd_event_source_disable_unref(l->out_io);
		closep(&l->out_fd);
	}
	(void)take_ready(l);
	maybe_finish(l);
	return 0;
}

static int on_out(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct helper_proc *l = userdata;
	size_t room = l->answer->size - 1 - l->answer->len;
	ssize_t n;

	if (room == 0) {
		log_warning("login helper answer is larger than %d bytes; killing it",
				PIPE_MAX_ANSWER);
		(void)kill(-l->pid, SIGKILL);
		l->killed = true;
		n = 0;
	} else
		n = read(fd, l->answer->data + l->answer->len, room);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n > 0) {
		l->answer->len += (size_t)n;
		if (take_ready(l) < 0) {
			log_warning("cannot send the request to login helper pid %d; killing it",
					(int)l->pid);
			(void)kill(-l->pid, SIGKILL);
		}
		return 0;
	}
	l->out_io = sd_event_source_disable_unref(l->out_io);
	closep(&l->out_fd);
	(void)take_ready(l);
	maybe_finish(l);
	return 0;
}

static int on_in(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct helper_proc *l = userdata;
	ssize_t n = send(fd, l->request->data + l->request_off, l->request->len - l->request_off,
			MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n > 0)
		l->request_off += (size_t)n;
	if (n < 0 || l->request_off == l->request->len) {
		/* EOF tells the helper the request is complete; an error means it died, which
		 * on_child reports. */
		l->in_io = sd_event_source_disable_unref(l->in_io);
		closep(&l->in_fd);
		l->request = secret_free(l->request);
	}
	return 0;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct helper_proc *l = userdata;

	log_warning("login helper pid %d did not finish in time; killing it", (int)l->pid);
	l->killed = true;
	(void)kill(-l->pid, SIGKILL);
	return 0;
}

static int on_ready_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct helper_proc *l = userdata;

	if (!l->ready && !l->no_request) {
		log_warning("login helper pid %d was not ready within %d ms; not sending it the "
			    "request",
				(int)l->pid, PIPE_READY_TIMEOUT_MSEC);
		l->fail = "login helper was not ready in time";
		forgo_request(l);
	}
	return 0;
}

static int build_request(const struct helper_input *req, struct secret *buf)
{
	const struct config *c = req->config;
	size_t pos = 0;
	int r = 0;

#define PUT(name, v, n)  (r = r < 0 ? r : fields_put(buf->data, buf->size, &pos, name, v, n))
#define PUT_STR(name, s) PUT(name, s, strlen(s))
#define PUT_INT(name, i) (r = r < 0 ? r : fields_put_int(buf->data, buf->size, &pos, name, i))
	PUT_STR(PIPE_F_MODE, req->mode == HELPER_MODE_LOGIN ? PIPE_MODE_LOGIN : PIPE_MODE_VALIDATE);
	PUT_STR(PIPE_F_URL, c->url ? c->url : "");
	PUT_STR(PIPE_F_LOGIN_API, c->login_api == LOGIN_API_V2 ? PIPE_API_V2 : PIPE_API_V1);
	if (c->ca_file)
		PUT_STR(PIPE_F_CA_FILE, c->ca_file);
	if (c->proxy)
		PUT_STR(PIPE_F_PROXY, c->proxy);
	PUT_INT(PIPE_F_CONNECT_TIMEOUT, (int64_t)c->connect_timeout_sec);
	PUT_INT(PIPE_F_TOTAL_TIMEOUT, (int64_t)c->total_timeout_sec);
	PUT_STR(PIPE_F_VERSION, RT_VERSION);
	if (req->mode == HELPER_MODE_LOGIN) {
		PUT_STR(PIPE_F_USERNAME, req->username ? req->username : "");
		PUT(PIPE_F_PASSWORD, req->password->data, req->password->len);
		if (req->mfa && req->mfa[0])
			PUT_STR(PIPE_F_MFA, req->mfa);
	} else
		PUT(PIPE_F_TOKEN, req->token->data, req->token->len);
#undef PUT
#undef PUT_STR
#undef PUT_INT
	if (r < 0)
		return r;
	buf->len = pos;
	return 0;
}

static int spawn_helper(const char *path, int in_fd, int out_fd, pid_t *ret_pid)
{
	char *const argv[] = {(char *)"regscale-token-login", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int r;

	/* The daemon blocks the signals sd-event handles; the helper gets a clean slate. */
	sigemptyset(&none);
	sigfillset(&defaults);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	/* A group of its own, so that a kill reaches whatever it started too. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr,
			POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	r = -posix_spawn(ret_pid, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return r;
}

int helper_start(sd_event *e, const char *helper_path, const struct helper_input *req,
		helper_done_t done, void *userdata, struct helper_proc **ret)
{
	int to_helper[2] = {-EBADF, -EBADF}, from_helper[2] = {-EBADF, -EBADF};
	const uint64_t ready = PIPE_READY_TIMEOUT_MSEC * 1000ULL;
	struct helper_proc *l;
	uint64_t limit;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->event = sd_event_ref(e);
	l->in_fd = l->out_fd = -EBADF;
	l->done = done;
	l->userdata = userdata;
	l->request = secret_new(PIPE_MAX_REQUEST);
	l->answer = secret_new(PIPE_MAX_ANSWER + 1);
	if (!l->request || !l->answer) {
		r = -ENOMEM;
		goto fail;
	}
	r = build_request(req, l->request);
	if (r < 0)
		goto fail;

	/* Sockets, not pipes: another process of our user could open a pipe through
	 * /proc/PID/fd/N of the helper (until it is non-dumpable) and keep it to read the request
	 * or the answer later; a socket cannot be opened that way. One direction each. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to_helper) < 0 ||
			socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, from_helper) < 0) {
		r = -errno;
		goto fail;
	}
	(void)shutdown(to_helper[1], SHUT_RD);
	(void)shutdown(from_helper[0], SHUT_WR);
	r = spawn_helper(helper_path, to_helper[0], from_helper[1], &l->pid);
	closep(&to_helper[0]);
	closep(&from_helper[1]);
	l->in_fd = take_fd(&to_helper[1]);
	l->out_fd = take_fd(&from_helper[0]);
	if (r < 0) {
		log_error_errno(r, "cannot start the login helper %s", helper_path);
		goto fail;
	}
	if (fcntl(l->in_fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(l->out_fd, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	limit = (req->config->total_timeout_sec + req->config->connect_timeout_sec) * 1000000ULL +
		LOGIN_KILL_GRACE_USEC;
	/* The writer of the request (in_io) is added by take_ready(), once PIPE_READY came. */
	if ((r = sd_event_add_child(e, &l->child, l->pid, WEXITED, on_child, l)) < 0 ||
			(r = sd_event_add_io(e, &l->out_io, l->out_fd, EPOLLIN, on_out, l)) < 0 ||
			(r = sd_event_add_time_relative(e, &l->ready_timer, CLOCK_MONOTONIC, ready,
					 0, on_ready_timer, l)) < 0 ||
			(r = sd_event_add_time_relative(e, &l->kill_timer, CLOCK_MONOTONIC, limit,
					 0, on_kill_timer, l)) < 0)
		goto fail;
	*ret = l;
	l->owner = ret;
	return 0;
fail:
	closep(&to_helper[0]);
	closep(&to_helper[1]);
	closep(&from_helper[0]);
	closep(&from_helper[1]);
	helper_free(l);
	return r;
}
