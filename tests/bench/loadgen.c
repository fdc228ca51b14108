/* SPDX-License-Identifier: MIT */
/* loadgen: the load generator of tests/bench/run.
 *
 *   loadgen --socket PATH [--clients N] [--mode persistent|connect]
 *           [--duration S [--warmup S] | --count N] [--request STR] [--framing F]
 *           [--expect STR] [--greeting] [--hold] [--cpu N] [--timeout S]
 *
 * One thread and one epoll set drive N clients against a Unix stream socket, each with one
 * request outstanding at a time:
 *
 *   persistent  one connection per client: request, reply, request, ...
 *   connect     a new connection per request: connect, request, reply, close
 *
 * and print one JSON line: the requests answered in the measured window, its seconds, req/s,
 * p50/p99/max latency in microseconds (from send(), or from socket() in connect mode, to the
 * reply's last byte), errors (by kind), connects retried because the server's listen backlog
 * was full, the good replies of the whole run (answered_all: warm-up and drain included, to
 * divide a server's CPU time by) and the CPU the generator used itself (cpu_percent of one
 * core).
 *
 * Why one thread. The bench runs on 2 cores: the server under test (single-threaded, as the
 * daemon and the references are) gets one, the generator the other (--cpu). More generator
 * threads could only take CPU from the server. A generator's work per request is about the
 * reference server's (a share of an epoll_wait(), one recv(), one send()), so against the
 * reference the generator may run out of CPU first: cpu_percent near 100 says so, and that
 * req/s is then a lower bound of the server's.
 *
 * Reply framing (--framing): line (the reply ends with '\n'), len32 (a 4-byte big-endian
 * length, then that many bytes: ssh-agent), eof (the server closes after the reply: git's
 * credential-cache--daemon; connect mode only), suffix:STR (the reply ends with STR:
 * gpg-agent's "\nOK\n"). STR, --request and --expect take C escapes (\n \r \t \\ \xHH).
 * --greeting reads one line the server sends first on every connection (Assuan's "OK ...").
 * --expect: a reply without STR in it counts as an error ("unexpected"), not as answered;
 * the first such reply is shown (first_unexpected).
 * --hold: every client makes one request on its own connection, then the JSON line is
 * printed and the connections stay open until stdin reaches end of file. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define REPLY_MAX   (256 * 1024)
#define MAX_EVENTS  256
#define RETRY_NSEC  1000000ULL /* pause before a retried connect, or after a failure */
#define DRAIN_NSEC  1000000000ULL
#define HIST_SUB    8 /* 2^(HIST_SUB-1) buckets per power of two: under 1 % error */
#define HIST_N      ((66 - HIST_SUB) << (HIST_SUB - 1))
#define NSEC_PER_S  1000000000ULL
#define NSEC_PER_US 1000.0

enum framing { FRAMING_LINE, FRAMING_LEN32, FRAMING_EOF, FRAMING_SUFFIX };

enum phase {
	PHASE_IDLE,     /* no request issued (done, or not started) */
	PHASE_CONNECT,  /* a request issued, its connect() to be retried */
	PHASE_PAUSE,    /* after a failure: the next request waits a moment */
	PHASE_GREETING, /* connected, reading the server's greeting */
	PHASE_REPLY,    /* request sent, reading the reply */
	PHASE_HELD,     /* --hold: answered, connection kept open */
};

enum error_kind {
	ERR_CONNECT,
	ERR_SEND,
	ERR_EOF,
	ERR_RESET,
	ERR_UNEXPECTED,
	ERR_TOO_LONG,
	ERR_TIMEOUT,
	_ERR_MAX
};

static const char *const error_names[_ERR_MAX] = {
		"connect", "send", "eof", "reset", "unexpected", "too_long", "timeout"};

struct client {
	int fd;
	enum phase phase;
	uint64_t t0;  /* when the request (connect mode: its connection) started */
	uint64_t due; /* PHASE_CONNECT, PHASE_PAUSE: when to go on */
	size_t got;   /* reply bytes in buf */
	char *buf;
};

struct gen {
	/* options */
	struct sockaddr_un sa;
	unsigned n_clients;
	bool connect_mode, greeting, hold;
	enum framing framing;
	char *request, *suffix, *expect;
	size_t request_len, suffix_len, expect_len;
	uint64_t count; /* 0: run for the duration */
	uint64_t duration, warmup, timeout;

	int ep;
	struct client *clients;
	uint64_t t_begin, t_measure, t_end, t_last, t_progress;
	uint64_t issued, answered, answered_all, errors[_ERR_MAX], retries;
	bool stopping;
	uint64_t hist[HIST_N];
	uint64_t lat_max;
	char unexpected[128]; /* the start of the first reply without --expect's string */
	size_t unexpected_len;
};

static uint64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_S + (uint64_t)ts.tv_nsec;
}

/* The histogram: values below 2^HIST_SUB exactly, above in 2^(HIST_SUB-1) steps per power of
 * two. */
static unsigned hist_bucket(uint64_t v)
{
	unsigned msb, shift;

	if (v < (1U << HIST_SUB))
		return (unsigned)v;
	msb = 63U - (unsigned)__builtin_clzll(v);
	shift = msb - (HIST_SUB - 1);
	return (shift << (HIST_SUB - 1)) + (unsigned)(v >> shift);
}

/* Returns the middle of bucket i. */
static double hist_value(unsigned i)
{
	unsigned shift, mant;

	if (i < (1U << HIST_SUB))
		return i;
	shift = (i >> (HIST_SUB - 1)) - 1;
	mant = i - (shift << (HIST_SUB - 1));
	return (double)((uint64_t)mant << shift) + (double)(1ULL << shift) / 2.0;
}

/* Returns the p-th percentile (nearest rank) of the latencies recorded, in nanoseconds. */
static double hist_percentile(const struct gen *g, double p)
{
	uint64_t rank, seen = 0;

	if (g->answered == 0)
		return 0;
	rank = (uint64_t)(p / 100.0 * (double)g->answered + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += g->hist[i];
		if (seen >= rank) /* a bucket's middle may lie above the largest value in it */
			return hist_value(i) < (double)g->lat_max ? hist_value(i)
								  : (double)g->lat_max;
	}
	return (double)g->lat_max;
}

/* Decodes the C escapes of s into a new buffer. Returns it (NUL-terminated, *ret_len bytes
 * without the NUL), or NULL on a bad escape or no memory. */
static char *unescape(const char *s, size_t *ret_len)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case 'x': {
			char hex[3] = {0};
			char *end;

			memcpy(hex, s + 1, s[1] ? 2 : 0);
			*o++ = (char)strtoul(hex, &end, 16);
			if (end != hex + 2) {
				free(out);
				return NULL;
			}
			s += 2;
			break;
		}
		default:
			free(out);
			return NULL;
		}
		s++;
	}
	*o = '\0';
	*ret_len = (size_t)(o - out);
	return out;
}

static bool may_issue(const struct gen *g, uint64_t now)
{
	if (g->stopping)
		return false;
	if (g->count)
		return g->issued < g->count;
	return now < g->t_end;
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also takes it out of the epoll set */
	c->fd = -EBADF;
}

static void client_fail(struct gen *g, struct client *c, enum error_kind kind, uint64_t now)
{
	/* Outside the window a failure is neither answered nor an error; it pauses all the same,
	 * so a server that refuses everything is not hammered. */
	if (g->count || (now >= g->t_measure && now <= g->t_end))
		g->errors[kind]++;
	client_close(c);
	c->phase = PHASE_PAUSE;
	c->due = now + RETRY_NSEC;
}

static void client_send(struct gen *g, struct client *c, uint64_t now)
{
	ssize_t n;

	/* A request fits into an empty socket buffer: a short send is an error, not a wait. */
	n = send(c->fd, g->request, g->request_len, MSG_NOSIGNAL);
	if (n != (ssize_t)g->request_len) {
		client_fail(g, c, ERR_SEND, now);
		return;
	}
	c->phase = PHASE_REPLY;
	c->got = 0;
}

/* Opens the connection of an issued request. On a full backlog (EAGAIN) it is retried. */
static void client_connect(struct gen *g, struct client *c, uint64_t now)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		client_fail(g, c, ERR_CONNECT, now);
		return;
	}
	/* AF_UNIX connects at once or fails: there is no connection in progress. */
	if (connect(c->fd, (struct sockaddr *)&g->sa, sizeof(g->sa)) < 0) {
		bool busy = errno == EAGAIN;

		client_close(c);
		if (!busy) {
			client_fail(g, c, ERR_CONNECT, now);
			return;
		}
		g->retries++;
		c->phase = PHASE_CONNECT;
		c->due = now + RETRY_NSEC;
		return;
	}
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		client_fail(g, c, ERR_CONNECT, now);
		return;
	}
	if (g->greeting) {
		c->phase = PHASE_GREETING;
		c->got = 0;
		return;
	}
	client_send(g, c, now);
}

/* Issues the next request of c if the run goes on. */
static void client_next(struct gen *g, struct client *c, uint64_t now)
{
	if (!may_issue(g, now)) {
		if (!g->hold)
			client_close(c);
		c->phase = g->hold && c->fd >= 0 ? PHASE_HELD : PHASE_IDLE;
		return;
	}
	g->issued++;
	c->t0 = now;
	if (c->fd < 0) {
		client_connect(g, c, now);
		return;
	}
	client_send(g, c, now);
}

static void client_answered(struct gen *g, struct client *c, uint64_t now)
{
	uint64_t lat = now - c->t0;

	g->t_progress = now;
	if (g->expect_len && !memmem(c->buf, c->got, g->expect, g->expect_len)) {
		if (!g->unexpected_len) {
			g->unexpected_len = c->got < sizeof(g->unexpected) ? c->got
									   : sizeof(g->unexpected);
			memcpy(g->unexpected, c->buf, g->unexpected_len);
		}
		client_fail(g, c, ERR_UNEXPECTED, now);
		return;
	}
	g->answered_all++;
	if (g->count || (now >= g->t_measure && now <= g->t_end)) {
		g->answered++;
		g->hist[hist_bucket(lat)]++;
		if (lat > g->lat_max)
			g->lat_max = lat;
		g->t_last = now;
	}
	if (g->hold) {
		c->phase = PHASE_HELD;
		return;
	}
	if (g->connect_mode)
		client_close(c);
	client_next(g, c, now);
}

/* Whether the reply in c->buf is complete (framings other than eof). */
static bool reply_complete(const struct gen *g, const struct client *c, size_t old)
{
	switch (g->framing) {
	case FRAMING_LINE:
		return memchr(c->buf + old, '\n', c->got - old) != NULL;
	case FRAMING_LEN32:
		if (c->got < 4)
			return false;
		return c->got >= 4 + (((size_t)(unsigned char)c->buf[0] << 24) |
						     ((size_t)(unsigned char)c->buf[1] << 16) |
						     ((size_t)(unsigned char)c->buf[2] << 8) |
						     (size_t)(unsigned char)c->buf[3]);
	case FRAMING_SUFFIX:
		return c->got >= g->suffix_len &&
		       memcmp(c->buf + c->got - g->suffix_len, g->suffix, g->suffix_len) == 0;
	case FRAMING_EOF:
		break;
	}
	return false;
}

static void client_readable(struct gen *g, struct client *c, uint64_t now)
{
	size_t old = c->got;
	ssize_t n;

	if (c->phase != PHASE_REPLY && c->phase != PHASE_GREETING) {
		/* Held or idle: the server closed, or said something unasked. */
		char sink[256];

		if (recv(c->fd, sink, sizeof(sink), 0) <= 0 && c->phase == PHASE_HELD)
			client_close(c);
		return;
	}
	if (c->got == REPLY_MAX) {
		client_fail(g, c, ERR_TOO_LONG, now);
		return;
	}
	n = recv(c->fd, c->buf + c->got, REPLY_MAX - c->got, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_fail(g, c, ERR_RESET, now);
		return;
	}
	if (n == 0) {
		if (c->phase == PHASE_REPLY && g->framing == FRAMING_EOF)
			client_answered(g, c, now);
		else
			client_fail(g, c, ERR_EOF, now);
		return;
	}
	c->got += (size_t)n;
	if (c->phase == PHASE_GREETING) {
		if (memchr(c->buf + old, '\n', c->got - old))
			client_send(g, c, now);
		return;
	}
	if (g->framing != FRAMING_EOF && reply_complete(g, c, old))
		client_answered(g, c, now);
}

static bool outstanding(const struct client *c)
{
	return c->phase == PHASE_CONNECT || c->phase == PHASE_GREETING || c->phase == PHASE_REPLY ||
	       c->phase == PHASE_PAUSE;
}

/* Runs the load. Returns 0, or -errno when the generator itself failed. */
static int run(struct gen *g)
{
	struct epoll_event events[MAX_EVENTS];

	g->ep = epoll_create1(EPOLL_CLOEXEC);
	if (g->ep < 0)
		return -errno;
	g->t_begin = g->t_progress = now_nsec();
	g->t_measure = g->t_begin + g->warmup;
	g->t_end = g->t_measure + g->duration;
	for (unsigned i = 0; i < g->n_clients; i++)
		client_next(g, &g->clients[i], g->t_begin);

	for (;;) {
		uint64_t now = now_nsec(), wake = UINT64_MAX;
		unsigned busy = 0;
		int n, timeout;

		if (!g->count && !g->stopping && now >= g->t_end)
			g->stopping = true;
		for (unsigned i = 0; i < g->n_clients; i++) {
			struct client *c = &g->clients[i];

			if ((c->phase == PHASE_CONNECT || c->phase == PHASE_PAUSE) &&
					now >= c->due) {
				if (c->phase == PHASE_CONNECT && !g->stopping) {
					client_connect(g, c, now);
				} else {
					c->phase = PHASE_IDLE;
					client_next(g, c, now);
				}
			}
			if (c->phase == PHASE_CONNECT || c->phase == PHASE_PAUSE)
				wake = c->due < wake ? c->due : wake;
			busy += outstanding(c) ? 1 : 0;
		}
		if (busy == 0 && (g->stopping || (g->count && g->issued >= g->count)))
			break;
		if (g->stopping && now >= g->t_end + DRAIN_NSEC)
			break; /* replies after the window were not counted anyway */
		if (now - g->t_progress >= g->timeout) {
			for (unsigned i = 0; i < g->n_clients; i++)
				if (outstanding(&g->clients[i]))
					g->errors[ERR_TIMEOUT]++;
			break;
		}
		if (!g->count && !g->stopping)
			wake = g->t_end < wake ? g->t_end : wake;
		if (g->stopping)
			wake = g->t_end + DRAIN_NSEC < wake ? g->t_end + DRAIN_NSEC : wake;
		wake = g->t_progress + g->timeout < wake ? g->t_progress + g->timeout : wake;
		timeout = wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);

		n = epoll_wait(g->ep, events, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		now = now_nsec();
		for (int i = 0; i < n; i++)
			client_readable(g, events[i].data.ptr, now);
	}
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void print_result(const struct gen *g, uint64_t t_done, double cpu)
{
	uint64_t window = g->duration, errors = 0;
	double secs, wall;

	if (g->count) /* from the start to the last reply */
		window = g->t_last > g->t_begin ? g->t_last - g->t_begin : 0;
	secs = (double)window / (double)NSEC_PER_S;

	for (int k = 0; k < _ERR_MAX; k++)
		errors += g->errors[k];
	wall = (double)(t_done - g->t_begin) / (double)NSEC_PER_S;
	printf("{\"mode\":\"%s\",\"clients\":%u,\"requests\":%llu,\"seconds\":%.6f,"
	       "\"rps\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,\"errors\":%llu,"
	       "\"error_kinds\":{",
			g->connect_mode ? "connect" : "persistent", g->n_clients,
			(unsigned long long)g->answered, secs,
			secs > 0 ? (double)g->answered / secs : 0.0,
			hist_percentile(g, 50) / NSEC_PER_US, hist_percentile(g, 99) / NSEC_PER_US,
			(double)g->lat_max / NSEC_PER_US, (unsigned long long)errors);
	for (int k = 0, first = 1; k < _ERR_MAX; k++) {
		if (!g->errors[k])
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", error_names[k],
				(unsigned long long)g->errors[k]);
		first = 0;
	}
	printf("}");
	if (g->unexpected_len) {
		/* As a JSON string: printable ASCII as it is, anything else escaped. */
		printf(",\"first_unexpected\":\"");
		for (size_t i = 0; i < g->unexpected_len; i++) {
			unsigned char ch = (unsigned char)g->unexpected[i];

			if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
				putchar(ch);
			else
				printf("\\u%04x", ch);
		}
		printf("\"");
	}
	printf(",\"connect_retries\":%llu,\"answered_all\":%llu,\"wall_seconds\":%.6f,"
	       "\"cpu_percent\":%.1f}\n",
			(unsigned long long)g->retries, (unsigned long long)g->answered_all, wall,
			wall > 0 ? 100.0 * cpu / wall : 0.0);
	fflush(stdout);
}

static int parse_framing(struct gen *g, const char *s)
{
	if (strcmp(s, "line") == 0)
		g->framing = FRAMING_LINE;
	else if (strcmp(s, "len32") == 0)
		g->framing = FRAMING_LEN32;
	else if (strcmp(s, "eof") == 0)
		g->framing = FRAMING_EOF;
	else if (strncmp(s, "suffix:", 7) == 0) {
		g->framing = FRAMING_SUFFIX;
		g->suffix = unescape(s + 7, &g->suffix_len);
		if (!g->suffix || g->suffix_len == 0)
			return -EINVAL;
	} else
		return -EINVAL;
	return 0;
}

static uint64_t seconds_nsec(const char *s)
{
	return (uint64_t)(strtod(s, NULL) * (double)NSEC_PER_S);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: loadgen --socket PATH [--clients N] [--mode persistent|connect]\n"
		   "               [--duration S [--warmup S] | --count N] [--request STR]\n"
		   "               [--framing line|len32|eof|suffix:STR] [--expect STR]\n"
		   "               [--greeting] [--hold] [--cpu N] [--timeout S]\n"
		   "Drives N clients with one request outstanding each; prints one JSON line.\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
			{"socket", required_argument, NULL, 's'},
			{"clients", required_argument, NULL, 'c'},
			{"mode", required_argument, NULL, 'm'},
			{"duration", required_argument, NULL, 'd'},
			{"warmup", required_argument, NULL, 'w'},
			{"count", required_argument, NULL, 'n'},
			{"request", required_argument, NULL, 'r'},
			{"framing", required_argument, NULL, 'f'},
			{"expect", required_argument, NULL, 'e'},
			{"greeting", no_argument, NULL, 'g'},
			{"hold", no_argument, NULL, 'H'},
			{"cpu", required_argument, NULL, 'C'},
			{"timeout", required_argument, NULL, 't'},
			{"help", no_argument, NULL, 'h'},
			{0},
	};
	static struct gen g = {
			.n_clients = 1,
			.duration = 2 * NSEC_PER_S,
			.warmup = NSEC_PER_S / 5,
			.timeout = 10 * NSEC_PER_S,
	};
	const char *path = NULL, *request = "{\"op\":\"get\"}\\n";
	char hold_sink[64];
	int c, cpu = -1, r;
	double cpu_used;

	while ((c = getopt_long(argc, argv, "s:c:m:d:w:n:r:f:e:gHC:t:h", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'c':
			g.n_clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			if (strcmp(optarg, "connect") != 0 && strcmp(optarg, "persistent") != 0) {
				usage(stderr);
				return 2;
			}
			g.connect_mode = strcmp(optarg, "connect") == 0;
			break;
		case 'd':
			g.duration = seconds_nsec(optarg);
			break;
		case 'w':
			g.warmup = seconds_nsec(optarg);
			break;
		case 'n':
			g.count = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			request = optarg;
			break;
		case 'f':
			if (parse_framing(&g, optarg) < 0) {
				fprintf(stderr, "loadgen: bad --framing %s\n", optarg);
				return 2;
			}
			break;
		case 'e':
			g.expect = unescape(optarg, &g.expect_len);
			if (!g.expect) {
				fprintf(stderr, "loadgen: bad escape in --expect\n");
				return 2;
			}
			break;
		case 'g':
			g.greeting = true;
			break;
		case 'H':
			g.hold = true;
			break;
		case 'C':
			cpu = (int)strtol(optarg, NULL, 10);
			break;
		case 't':
			g.timeout = seconds_nsec(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || strlen(path) >= sizeof(g.sa.sun_path) || g.n_clients < 1 ||
			g.n_clients > 100000 || g.timeout == 0 || (!g.count && g.duration == 0) ||
			(g.framing == FRAMING_EOF && !g.connect_mode) ||
			(g.hold && g.connect_mode)) {
		usage(stderr);
		return 2;
	}
	g.sa.sun_family = AF_UNIX;
	strcpy(g.sa.sun_path, path);
	g.request = unescape(request, &g.request_len);
	if (!g.request) {
		fprintf(stderr, "loadgen: bad escape in --request\n");
		return 2;
	}
	if (g.hold)
		g.count = g.n_clients;
	if (g.count)
		g.warmup = 0;
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			perror("loadgen: sched_setaffinity (running unpinned)");
	}
	g.clients = calloc(g.n_clients, sizeof(*g.clients));
	if (!g.clients)
		return 1;
	for (unsigned i = 0; i < g.n_clients; i++) {
		g.clients[i].fd = -EBADF;
		g.clients[i].buf = malloc(REPLY_MAX);
		if (!g.clients[i].buf)
			return 1;
	}

	r = run(&g);
	if (r < 0) {
		fprintf(stderr, "loadgen: %s\n", strerror(-r));
		return 1;
	}
	cpu_used = cpu_seconds();
	print_result(&g, now_nsec(), cpu_used);
	if (g.hold)
		while (read(STDIN_FILENO, hold_sink, sizeof(hold_sink)) > 0)
			;
	return 0;
}
