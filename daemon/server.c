/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/access.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/ops.h"
#include "daemon/server.h"
#include "proto/linebuf.h"
#include "proto/proto.h"

/* Replies a client has not read yet are kept up to this many bytes; a client that lets
 * more pile up (it pipelines requests but never reads) is disconnected. */
#define CONN_MAX_PENDING (4 * PROTO_MAX_LINE)

/* Connection sockets are edge-triggered: epoll reports a socket when bytes arrive, not at
 * every turn of the loop while it stays readable. sd-event dispatches one source per turn
 * and calls epoll_wait() before each, so with level-triggered sockets every turn returned
 * every busy connection: the cost of a request grew with the number of clients. */
#define CONN_IN  (EPOLLIN | EPOLLRDHUP | EPOLLET)
#define CONN_OUT (EPOLLOUT | EPOLLET)

/* How long the daemon waits for pending replies to drain on shutdown. */
#define SHUTDOWN_GRACE_USEC (2 * 1000000ULL)

/* How long a refused client has to read its error reply before it is dropped. */
#define CLOSE_GRACE_USEC (5 * 1000000ULL)

/* Pause before accepting again after running out of file descriptors. */
#define ACCEPT_RETRY_USEC (100 * 1000ULL)

struct conn {
	struct server *server;
	struct conn *prev, *next;
	int fd;
	struct peer peer;
	bool privileged;   /* the daemon's own uid or root: not capped, never made room from */
	uint64_t last_use; /* CLOCK_MONOTONIC usec: connected, or last request other than ping */
	/* CLOCK_MONOTONIC usec at which the connection is closed: idle_timeout after its last
	 * reply, or CLOSE_GRACE_USEC after a refusal; 0 while it waits for a login. The server's
	 * one sweep timer acts on it, so a request costs no timer system call. */
	uint64_t deadline;
	sd_event_source *io;
	struct linebuf in;
	struct secret *out; /* reply bytes not sent yet (may hold a token), NULL when none */
	size_t out_off;
	bool closing; /* close as soon as out is drained */
	bool waiting; /* pending waits for a login; later lines wait behind it */
	bool unread;  /* bytes may be left in the socket: read once lines are answered */
	bool hup;     /* the client shut down its side: read on to the end of stream */
	bool wake;    /* server_wake_waiters() has yet to resume it */
	struct ops_pending *pending; /* the request waiting for a login, NULL when none */
	sd_event_source *wait_timer;
};

struct server {
	sd_event *event;
	struct ops_env *env;
	const struct access *access; /* NULL: only the daemon's uid and root */
	/* Reply lines are built here, in guarded memory, because a reply may carry the token.
	 * Allocated once, reused for every reply and wiped after each. */
	struct secret *reply;
	uid_t uid; /* the daemon's */
	/* Every connection reads into this first (linebuf_lend()), and keeps only what is left
	 * unanswered after its read: a connection between requests holds no buffer. */
	char recv[4096];
	/* ops_answer() parks a request here; a connection that waits gets a copy of its own. */
	struct ops_pending pending;
	/* Closes connections whose deadline passed. Armed for the earliest deadline when it
	 * fires or a new deadline is earlier than the one it is armed for (sweep_at); off (0)
	 * when there is no connection. */
	sd_event_source *sweep;
	uint64_t sweep_at;
	int listen_fd;
	sd_event_source *listen;
	sd_event_source *accept_retry;
	sd_event_source *grace;
	char *path;     /* socket file we created and must unlink, or NULL */
	ino_t path_ino; /* ... as long as it is still the one we created */
	struct conn *conns;
	unsigned n_conns;
	bool shutting_down;
	uint64_t last_accept_warning;
	struct ratelimit {
		uint64_t last; /* CLOCK_MONOTONIC usec of the last line logged, 0: none yet */
		unsigned unlogged;
	} refusal_log, eviction_log;
};

static void conn_process(struct conn *c);

static struct conn *conn_free(struct conn *c);

/* Frees c once it is closing and has nothing left to send or wait for. Returns NULL if
 * it was freed, else c. */
static struct conn *conn_maybe_free(struct conn *c)
{
	if (c->closing && !c->out && !c->waiting)
		return conn_free(c);
	return c;
}

static struct conn *conn_free(struct conn *c)
{
	struct server *s;

	if (!c)
		return NULL;
	s = c->server;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	metrics_set_connections(s->env->metrics, s->n_conns);

	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->wait_timer);
	free(c->pending);
	if (c->fd >= 0)
		close(c->fd);
	linebuf_done(&c->in);
	secret_free(c->out);
	free(c);

	if (s->shutting_down && s->n_conns == 0)
		sd_event_exit(s->event, 0);
	return NULL;
}

/* Sends what is pending. Returns 1 when everything went out, 0 when the socket is full,
 * or -errno when the client is gone. */
static int conn_flush(struct conn *c)
{
	while (c->out && c->out_off < c->out->len) {
		ssize_t n = send(c->fd, c->out->data + c->out_off, c->out->len - c->out_off,
				MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		c->out_off += (size_t)n;
	}
	c->out = secret_free(c->out);
	c->out_off = 0;
	return 1;
}

/* Queues data[0..len) after what is pending and tries to send. Returns 0 or -errno when
 * the connection must be dropped. */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	size_t pending = c->out ? c->out->len - c->out_off : 0;
	struct secret *out;
	int r;

	if (pending == 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n == (ssize_t)len)
			return 0;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (pending + len > CONN_MAX_PENDING)
		return -ENOBUFS;
	/* Pending bytes may carry a token: they wait in guarded memory too. */
	out = secret_new(pending + len + 1);
	if (!out)
		return -ENOMEM;
	if (pending)
		memcpy(out->data, c->out->data + c->out_off, pending);
	memcpy(out->data + pending, data, len);
	out->len = pending + len;
	secret_free(c->out);
	c->out = out;
	c->out_off = 0;
	r = sd_event_source_set_io_events(c->io, CONN_OUT);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->io, SD_EVENT_ON);
	return r < 0 ? r : 0;
}

/* Sends the reply the ops module left in the server's reply buffer, then wipes it. */
static int conn_send_reply(struct conn *c)
{
	struct secret *buf = c->server->reply;
	int r;

	r = conn_send(c, buf->data, buf->len);
	secret_clear(buf);
	return r;
}

static int on_sweep(sd_event_source *es, uint64_t usec, void *userdata);

/* Arms the sweep timer for usec (CLOCK_MONOTONIC) if it is not armed for an earlier time. */
static void sweep_arm(struct server *s, uint64_t usec)
{
	int r;

	if (s->sweep_at && s->sweep_at <= usec)
		return;
	if (!s->sweep)
		r = sd_event_add_time(s->event, &s->sweep, CLOCK_MONOTONIC, usec, 0, on_sweep, s);
	else if ((r = sd_event_source_set_time(s->sweep, usec)) >= 0)
		r = sd_event_source_set_enabled(s->sweep, SD_EVENT_ONESHOT);
	if (r < 0) {
		log_warning_errno(r, "cannot arm the idle timer; idle clients stay connected");
		return;
	}
	s->sweep_at = usec;
}

/* Closes c at now + usec at the latest, unless its deadline moves again. */
static void conn_set_deadline(struct conn *c, uint64_t usec)
{
	c->deadline = now_monotonic_usec() + usec;
	sweep_arm(c->server, c->deadline);
}

/* Refuses c, counted as why. */
static void conn_refuse(
		struct conn *c, enum metrics_refusal why, enum proto_error err, const char *message)
{
	metrics_count_refusal(c->server->env->metrics, why);
	ops_error(c->server->reply, err, message, NULL, NULL);
	(void)conn_send_reply(c);
	c->closing = true;
	/* A client that does not read even this reply is dropped soon after. */
	conn_set_deadline(c, CLOSE_GRACE_USEC);
}

/* c's deadline passed. */
static void conn_expired(struct conn *c)
{
	if (c->closing) {
		conn_free(c);
		return;
	}
	log_info("client pid %d uid %u: closing after %d s without a request",
			(int)c->peer.ucred.pid, (unsigned)c->peer.ucred.uid,
			(int)c->server->env->config->idle_timeout_sec);
	conn_refuse(c, METRICS_REFUSED_IDLE_TIMEOUT, PROTO_E_IDLE_TIMEOUT,
			"no complete request within the idle timeout");
	conn_maybe_free(c);
}

static int on_sweep(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct server *s = userdata;
	uint64_t now = now_monotonic_usec(), next = 0;
	struct conn *c, *n;

	s->sweep_at = 0;
	for (c = s->conns; c; c = n) {
		n = c->next;
		if (c->deadline && c->deadline <= now)
			conn_expired(c); /* frees or refuses c only, never another connection */
	}
	for (c = s->conns; c; c = c->next)
		if (c->deadline && (!next || c->deadline < next))
			next = c->deadline;
	if (next)
		sweep_arm(s, next);
	return 0;
}

/* Reads what the socket holds and answers it. Returns NULL if c was freed. */
static struct conn *conn_read(struct conn *c)
{
	ssize_t n;

	do {
		n = linebuf_fill(&c->in, c->fd);
		if (n == -EAGAIN)
			break;
		/* -ENOBUFS: a line over the limit, answered below. -EBUSY: the buffer is full
		 * of complete lines, answered now. */
		if (n < 0 && n != -ENOBUFS && n != -EBUSY)
			return conn_free(c);
		conn_process(c);
		if (!c->closing && linebuf_overflowed(&c->in)) {
			log_notice("client pid %d uid %u: request longer than %d bytes, closing",
					(int)c->peer.ucred.pid, (unsigned)c->peer.ucred.uid,
					PROTO_MAX_LINE);
			conn_refuse(c, METRICS_REFUSED_TOO_LARGE, PROTO_E_TOO_LARGE,
					"request line longer than the limit");
		}
		if (n == 0) {
			/* End of stream: answer what came, then close. */
			c->closing = true;
			(void)sd_event_source_set_enabled(
					c->io, c->out ? SD_EVENT_ON : SD_EVENT_OFF);
		}
		/* A read that filled the buffer may have left bytes behind: the socket is
		 * edge-triggered, so read on (while blocked too: up to the line limit). */
	} while (!c->closing && n > 0 && (c->in.more || c->hup));
	/* Bytes left in the socket behind a buffer full of lines not answered yet: read
	 * once they are (conn_unblocked()), as no new edge will come for them. */
	c->unread = !c->closing && (n == -EBUSY || (n > 0 && (c->in.more || c->hup)));
	/* Lines not answered yet (the client does not read, or a login is awaited) or a partial
	 * one move out of the shared receive buffer; usually there are none. */
	if (linebuf_keep(&c->in) < 0)
		return conn_free(c);
	return conn_maybe_free(c);
}

/* c may answer lines again (its replies drained, its wait is over): answers what it holds
 * and reads what it left in the socket. Returns NULL if c was freed. */
static struct conn *conn_unblocked(struct conn *c)
{
	conn_process(c);
	if (c->unread && !c->closing && !c->out && !c->waiting)
		return conn_read(c);
	return conn_maybe_free(c);
}

static int on_conn_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct conn *c = userdata;
	int r;

	if (revents & EPOLLOUT) {
		r = conn_flush(c);
		if (r < 0) {
			conn_free(c);
			return 0;
		}
		if (r == 0)
			return 0;
		if (sd_event_source_set_io_events(c->io, CONN_IN) < 0) {
			conn_free(c);
			return 0;
		}
		conn_unblocked(c); /* lines that waited while the client was not reading */
		return 0;
	}
	/* The end of stream may come with the last request in one edge: a short read of that
	 * request must not be the last read. */
	if (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hup = true;
	if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(c);
	return 0;
}

static int on_conn_wait_timeout(sd_event_source *es, uint64_t usec, void *userdata);

/* Sends the reply just built and restarts the idle clock. */
static void conn_replied(struct conn *c)
{
	if (conn_send_reply(c) < 0)
		c->closing = true;
	conn_set_deadline(c, c->server->env->config->idle_timeout_sec * 1000000ULL);
}

static void conn_start_wait(struct conn *c, uint64_t usec)
{
	int r = -ENOMEM;

	c->pending = malloc(sizeof(*c->pending));
	if (!c->pending) {
		log_warning_errno(r, "cannot park a request; answering at once");
		(void)ops_resume(c->server->env, &c->peer, &c->server->pending, true,
				c->server->reply);
		conn_replied(c);
		return;
	}
	*c->pending = c->server->pending;
	c->waiting = true;
	c->deadline = 0; /* the wait timer decides now */
	if (!c->wait_timer)
		r = sd_event_add_time_relative(c->server->event, &c->wait_timer, CLOCK_MONOTONIC,
				usec, 0, on_conn_wait_timeout, c);
	else if ((r = sd_event_source_set_time_relative(c->wait_timer, usec)) >= 0)
		r = sd_event_source_set_enabled(c->wait_timer, SD_EVENT_ONESHOT);
	if (r < 0) {
		log_warning_errno(r, "cannot arm a wait timer; answering at once");
		c->waiting = false;
		(void)ops_resume(c->server->env, &c->peer, c->pending, true, c->server->reply);
		c->pending = mfree(c->pending);
		conn_replied(c);
	}
}

/* Answers every complete line held, unless replies are waiting for the client to read or
 * a request waits for a login. */
static void conn_process(struct conn *c)
{
	struct server *s = c->server;
	uint64_t wait = 0;
	char *line;
	size_t len;

	while (!c->closing && !c->out && !c->waiting && linebuf_peek(&c->in, &line, &len) > 0) {
		enum proto_op op;
		enum ops_result res = ops_answer(
				s->env, &c->peer, line, len, s->reply, &s->pending, &wait, &op);

		/* A valid request other than ping is use; keeping a connection open is not. */
		if (res == OPS_WAIT || (op != _PROTO_OP_MAX && op != PROTO_OP_PING))
			c->last_use = now_monotonic_usec();
		linebuf_pop(&c->in);
		if (res == OPS_WAIT)
			conn_start_wait(c, wait);
		else
			conn_replied(c);
	}
}

/* Answers c's waiting request again; final when its wait is over. Returns NULL if c was
 * freed. */
static struct conn *conn_resume(struct conn *c, bool final)
{
	if (ops_resume(c->server->env, &c->peer, c->pending, final, c->server->reply) == OPS_WAIT)
		return c;
	c->waiting = false;
	c->pending = mfree(c->pending);
	if (c->wait_timer)
		(void)sd_event_source_set_enabled(c->wait_timer, SD_EVENT_OFF);
	conn_replied(c);
	return conn_unblocked(c);
}

static int on_conn_wait_timeout(sd_event_source *es, uint64_t usec, void *userdata)
{
	conn_resume(userdata, true);
	return 0;
}

/* Answers again every connection marked to wake; stopping: answer now whatever the state,
 * then close. Resuming one connection may answer more of its lines, which may free or wake
 * others: so resume one marked connection at a time, searching from the head each time. */
static void resume_marked(struct server *s, bool stopping)
{
	struct conn *c;

	for (;;) {
		for (c = s->conns; c && !c->wake; c = c->next)
			;
		if (!c)
			break;
		c->wake = false;
		if (stopping)
			c->closing = true;
		conn_resume(c, stopping);
	}
}

void server_wake_waiters(struct server *s)
{
	struct conn *c;

	for (c = s->conns; c; c = c->next)
		c->wake = c->waiting;
	resume_marked(s, false);
}

/* At most one line a second: returns -1 if this one is not to be logged (and counts it),
 * else how many were not logged since the last one (that line should say so). */
static int ratelimit(struct ratelimit *rl, uint64_t now)
{
	unsigned unlogged = rl->unlogged;

	if (rl->last && now - rl->last < 1000000ULL) {
		rl->unlogged++;
		return -1;
	}
	rl->unlogged = 0;
	rl->last = now;
	return unlogged > INT32_MAX ? INT32_MAX : (int)unlogged;
}

/* One log line per refused client, but at most one a second: a local user hammering the
 * socket must not flood the journal. */
static void log_refusal(struct server *s, const struct ucred *peer, const char *why)
{
	char path[64], comm[32] = "?", quoted[sizeof(comm) * 4 + 8];
	int fd, unlogged = ratelimit(&s->refusal_log, now_monotonic_usec());
	ssize_t n;

	if (unlogged < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)peer->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, sizeof(comm) - 1);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		close(fd);
	}
	/* The process name is the refused user's to choose: quote it. */
	log_warning("client pid %d uid %u (\"%s\") refused: %s%s", (int)peer->pid,
			(unsigned)peer->uid, escape_log(comm, quoted, sizeof(quoted)), why,
			unlogged ? " (more refusals in the last second not logged)" : "");
}

/* Whether a connection may be closed to make room for a newcomer, and how much it is
 * worth keeping: 0 never (the newcomer must wait); else the higher, the sooner it goes. Only
 * a connection between requests is closed (nothing to send, no login to wait for). */
static int victim_rank(const struct conn *x, bool for_privileged, uint64_t now)
{
	bool stale = now - x->last_use >= x->server->env->config->idle_timeout_sec * 1000000ULL;

	if (x->closing || x->waiting || x->out)
		return 0;
	if (!x->privileged && stale)
		return 3; /* only pings (or nothing) for an idle timeout: closed for anybody */
	if (!for_privileged)
		return 0;
	if (!x->privileged)
		return 2; /* another uid's, between requests: the daemon's uid and root first */
	return stale ? 1 : 0;
}

/* Closes the connection most worth closing to make room for c, if there is one. Returns
 * true if it did. */
static bool make_room(struct server *s, struct conn *c, uint64_t now)
{
	struct conn *victim = NULL;
	int best = 0, unlogged;

	for (struct conn *x = s->conns; x; x = x->next) {
		int rank = x == c ? 0 : victim_rank(x, c->privileged, now);

		if (rank > best || (rank == best && rank > 0 && x->last_use < victim->last_use)) {
			victim = x;
			best = rank;
		}
	}
	if (!victim)
		return false;
	/* At most one line a second here too: a reader may make room for itself often. */
	unlogged = ratelimit(&s->eviction_log, now);
	if (unlogged >= 0)
		log_info("client pid %d uid %u: closing a connection %s for %llu s to make room "
			 "for uid %u%s",
				(int)victim->peer.ucred.pid, (unsigned)victim->peer.ucred.uid,
				best == 2 ? "between requests" : "that sent nothing but ping",
				(unsigned long long)((now - victim->last_use) / 1000000ULL),
				(unsigned)c->peer.ucred.uid,
				unlogged ? " (more in the last second not logged)" : "");
	conn_refuse(victim, METRICS_REFUSED_EVICTED, PROTO_E_IDLE_TIMEOUT,
			"closed to make room for another client");
	conn_maybe_free(victim);
	return true;
}

/* Frees the connections between requests whose client has hung up without the daemon having
 * read the end of stream yet (a client that connects per request closes and connects again
 * faster than the loop gets to its EOF). Only called when no slot is left. Returns how many
 * went. */
static unsigned reap_hung_up(struct server *s, struct conn *c)
{
	struct conn *x, *next;
	unsigned n = 0;

	for (x = s->conns; x; x = next) {
		char byte;
		ssize_t r;

		next = x->next;
		if (x == c || x->out || x->waiting || x->in.len > 0)
			continue;
		r = recv(x->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_free(x);
			n++;
		}
	}
	return n;
}

/* Decides whether c, just connected, gets a slot: the daemon's uid and root may take any of
 * PROTO_MAX_CLIENTS; every other uid at most max_connections_per_user, and together no
 * more than PROTO_MAX_CLIENTS - SERVER_RESERVED_CLIENTS. When there is no slot, one is made
 * (make_room()) if possible. Returns NULL, or why c is refused in buf and *ret_why. */
static const char *admit(struct server *s, struct conn *c, char *buf, size_t size,
		enum metrics_refusal *ret_why)
{
	uint64_t cap = s->env->config->max_connections_per_user, now = now_monotonic_usec();
	unsigned total, others, same;
	bool full, reaped = false;

again:
	total = others = same = 0;
	for (struct conn *x = s->conns; x; x = x->next) {
		if (x == c || x->closing)
			continue;
		total++;
		others += x->privileged ? 0 : 1;
		same += x->peer.ucred.uid == c->peer.ucred.uid ? 1 : 0;
	}
	full = (!c->privileged && same >= cap) || total >= PROTO_MAX_CLIENTS ||
	       (!c->privileged && others >= PROTO_MAX_CLIENTS - SERVER_RESERVED_CLIENTS);
	if (full && !reaped) {
		/* Connections already gone do not count: look once. */
		reaped = true;
		if (reap_hung_up(s, c) > 0)
			goto again;
	}
	if (!c->privileged && same >= cap) {
		snprintf(buf, size,
				"uid %u has %u connections open already "
				"(max_connections_per_user)",
				(unsigned)c->peer.ucred.uid, same);
		*ret_why = METRICS_REFUSED_PER_USER;
		return buf;
	}
	if (total < PROTO_MAX_CLIENTS &&
			(c->privileged || others < PROTO_MAX_CLIENTS - SERVER_RESERVED_CLIENTS))
		return NULL;
	if (make_room(s, c, now))
		return NULL;
	*ret_why = METRICS_REFUSED_TOO_MANY_CLIENTS;
	return "too many clients connected already";
}

int server_add_connection(struct server *s, int fd)
{
	socklen_t len = sizeof(struct ucred);
	enum metrics_refusal refusal = METRICS_REFUSED_TOO_MANY_CLIENTS;
	const char *why;
	char buf[128];
	struct conn *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->server = s;
	c->fd = fd;
	c->last_use = now_monotonic_usec();
	linebuf_init(&c->in, PROTO_MAX_LINE);
	linebuf_lend(&c->in, s->recv, sizeof(s->recv));
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	metrics_set_connections(s->env->metrics, s->n_conns);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer.ucred, &len) < 0) {
		r = log_warning_errno(-errno, "cannot read the credentials of a new client");
		goto fail;
	}
	r = sd_event_add_io(s->event, &c->io, fd, CONN_IN, on_conn_io, c);
	if (r < 0)
		goto fail;
	conn_set_deadline(c, s->env->config->idle_timeout_sec * 1000000ULL);

	c->privileged = c->peer.ucred.uid == 0 || c->peer.ucred.uid == s->uid;

	if ((c->peer.level = access_check(s->access, s->uid, fd, &c->peer.ucred)) == ACCESS_NONE) {
		log_refusal(s, &c->peer.ucred,
				"not the daemon's user, root, nor in allow_users/allow_groups");
		conn_refuse(c, METRICS_REFUSED_PERMISSION_DENIED, PROTO_E_PERMISSION_DENIED,
				"this user may not use the daemon");
	} else if ((why = admit(s, c, buf, sizeof(buf), &refusal))) {
		log_refusal(s, &c->peer.ucred, why);
		conn_refuse(c, refusal, PROTO_E_TOO_MANY_CLIENTS,
				"too many clients connected, try again");
	}
	conn_maybe_free(c);
	return 0;
fail:
	conn_free(c);
	return r;
}

static int on_accept_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct server *s = userdata;

	if (!s->shutting_down)
		(void)sd_event_source_set_enabled(s->listen, SD_EVENT_ON);
	return 0;
}

/* One connection per wakeup: the listening socket is level-triggered, so the loop reports it
 * again at once while more wait. Accepting until EAGAIN cost every client that connects per
 * request an accept4() that fails. */
static int on_listen(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct server *s = userdata;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd >= 0) {
		(void)server_add_connection(s, cfd);
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
		return 0;
	/* Out of descriptors or memory: the pending connection stays in the backlog and epoll
	 * would report it again at once. Pause accepting instead of spinning. */
	if (now_monotonic_usec() - s->last_accept_warning > 10 * 1000000ULL) {
		log_warning_errno(-errno, "cannot accept clients for now");
		s->last_accept_warning = now_monotonic_usec();
	}
	(void)sd_event_source_set_enabled(s->listen, SD_EVENT_OFF);
	if (!s->accept_retry)
		(void)sd_event_add_time_relative(s->event, &s->accept_retry, CLOCK_MONOTONIC,
				ACCEPT_RETRY_USEC, 0, on_accept_retry, s);
	else {
		(void)sd_event_source_set_time_relative(s->accept_retry, ACCEPT_RETRY_USEC);
		(void)sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT);
	}
	return 0;
}

int server_new(sd_event *e, struct ops_env *env, struct server **ret)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->reply = secret_new(OPS_REPLY_MAX);
	if (!s->reply) {
		free(s);
		return -ENOMEM;
	}
	s->uid = getuid();
	s->event = sd_event_ref(e);
	s->env = env;
	s->listen_fd = -EBADF;
	*ret = s;
	return 0;
}

void server_set_access(struct server *s, const struct access *a)
{
	s->access = a;
}

static void server_stop_listening(struct server *s)
{
	struct stat st;

	s->listen = sd_event_source_disable_unref(s->listen);
	s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
	closep(&s->listen_fd);
	/* Unlink only the file we bound: a successor may have replaced it already. */
	if (s->path && lstat(s->path, &st) == 0 && st.st_ino == s->path_ino)
		(void)unlink(s->path);
	free(s->path);
	s->path = NULL;
}

struct server *server_free(struct server *s)
{
	if (!s)
		return NULL;
	s->shutting_down = false; /* freeing, not draining: don't exit the loop from here */
	while (s->conns)
		conn_free(s->conns);
	server_stop_listening(s);
	sd_event_source_disable_unref(s->grace);
	sd_event_source_disable_unref(s->sweep);
	secret_free(s->reply);
	sd_event_unref(s->event);
	free(s);
	return NULL;
}

int server_listen_fd(struct server *s, int fd)
{
	int r;

	s->listen_fd = fd;
	/* A socket from systemd comes without O_CLOEXEC; the login helper must not get it. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
			fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	r = sd_event_add_io(s->event, &s->listen, fd, EPOLLIN, on_listen, s);
	return r < 0 ? r : 0;
}

int server_listen_path(struct server *s, const char *path, bool shared)
{
	_cleanup_(closep) int fd = -EBADF;
	int r;

	r = listen_unix_path(path, shared, &fd, &s->path_ino);
	if (r < 0)
		return r;
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	return server_listen_fd(s, take_fd(&fd));
}

static int on_grace(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct server *s = userdata;

	log_warning("%u client(s) did not read their replies in time; exiting anyway", s->n_conns);
	return sd_event_exit(s->event, 0);
}

void server_shutdown(struct server *s)
{
	struct conn *c, *next;

	server_stop_listening(s);
	s->shutting_down = true;
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->waiting)
			c->wake = true;
		else {
			c->closing = true;
			conn_maybe_free(c); /* may exit the loop when it was the last */
		}
	}
	/* Requests waiting for a login get their answer ("still in progress") now. */
	resume_marked(s, true);
	if (s->n_conns == 0) {
		sd_event_exit(s->event, 0);
		return;
	}
	(void)sd_event_add_time_relative(
			s->event, &s->grace, CLOCK_MONOTONIC, SHUTDOWN_GRACE_USEC, 0, on_grace, s);
}

unsigned server_n_connections(const struct server *s)
{
	return s->n_conns;
}
