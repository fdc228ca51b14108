/* SPDX-License-Identifier: MIT */
/* The daemon's counters (requests, logins, refused clients, open connections) and their
 * exposition in the Prometheus text format, version 0.0.4 (PROTOCOL.md "metrics"). The
 * counters are owned here; the serving path only increments them, and the first change after
 * the exposition was taken calls one hook, so that a metrics_file (metrics-file.c) is written
 * a few seconds later, not at every request. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "daemon/lifecycle.h"
#include "proto/proto.h"

struct metrics;

/* The op counted for a line that was no valid request: label op="invalid". */
#define METRICS_OP_INVALID _PROTO_OP_MAX

/* The result label of regscale_token_logins_total. */
enum metrics_login {
	METRICS_LOGIN_OK,       /* a token, or a pasted token confirmed */
	METRICS_LOGIN_REJECTED, /* RegScale answered no: credentials, token or a code wanted */
	METRICS_LOGIN_FAILED,   /* no usable answer: network, TLS, 5xx, protocol, config */
	_METRICS_LOGIN_MAX,
};

/* The reason label of regscale_token_clients_refused_total: every way server.c closes a
 * connection on its own. */
enum metrics_refusal {
	METRICS_REFUSED_PERMISSION_DENIED, /* not the daemon's uid, root, nor allowed (access.c) */
	METRICS_REFUSED_PER_USER,          /* the uid holds max_connections_per_user already */
	METRICS_REFUSED_TOO_MANY_CLIENTS,  /* no slot left for it */
	METRICS_REFUSED_IDLE_TIMEOUT,      /* no complete request within idle_timeout */
	METRICS_REFUSED_EVICTED,           /* closed to make room for another client */
	METRICS_REFUSED_TOO_LARGE,         /* a request line longer than PROTO_MAX_LINE */
	_METRICS_REFUSED_MAX,
};

/* Creates the counters, all 0, with the start time now. Returns 0 and *ret (the caller's,
 * metrics_free), or -ENOMEM. */
int metrics_new(struct metrics **ret);

/* Frees m. Accepts NULL, returns NULL. */
struct metrics *metrics_free(struct metrics *m);

/* Names the daemon in every series by the socket it serves on: label profile="NAME", NAME
 * the file name of socket_path less ".sock" (what the client calls the profile: -p NAME is
 * .../NAME.sock), the whole file name when it does not end in ".sock"; bytes that are no
 * UTF-8 become '?'. Until it is called, profile="". Returns 0, or -ENOMEM (m unchanged). */
int metrics_set_socket(struct metrics *m, const char *socket_path);

/* Sets the hook called on the first change after metrics_take() (NULL: none). */
void metrics_set_hook(struct metrics *m, void (*changed)(void *userdata), void *userdata);

/* Counts a request answered with result (PROTO_OK or its error code); op is
 * METRICS_OP_INVALID for a line that was no valid request. m may be NULL (not counted). */
void metrics_count_request(struct metrics *m, enum proto_op op, enum proto_error result);

/* Counts a finished login (or check of a pasted token) ending at wall (unix seconds). */
void metrics_count_login(struct metrics *m, enum metrics_login result, int64_t wall);

/* Counts a connection the server closed on its own. m may be NULL. */
void metrics_count_refusal(struct metrics *m, enum metrics_refusal why);

/* Sets the number of open client connections. m may be NULL. */
void metrics_set_connections(struct metrics *m, unsigned n);

/* Writes the exposition of m and of the token described by info (lifecycle_info()) into a
 * new string: 0 and *ret (the caller frees) of *ret_len bytes, or -ENOMEM. From now on the
 * next change calls the hook again. */
int metrics_take(struct metrics *m, const struct lc_info *info, char **ret, size_t *ret_len);

/* Writes value as a label value of the text format (backslash, double quote and line feed
 * escaped), without the quotes around it. Returns 0 or -EIO. */
int metrics_write_label_value(FILE *f, const char *value);

struct metrics_file;

/* Keeps the exposition of m and lc in the file path (absolute; copied), replaced atomically
 * (a temporary file in the same directory, renamed over it), mode 0644: written at once by
 * metrics_file_write(), and METRICS_FILE_DELAY_USEC after the first counter change since,
 * on e. Returns 0 and *ret (the caller's, metrics_file_free; m and lc borrowed, must
 * outlive it), or -ENOMEM. Nothing is written yet. */
int metrics_file_new(sd_event *e, struct metrics *m, const struct lifecycle *lc, const char *path,
		struct metrics_file **ret);

/* At most one write per this long for counter changes; state changes write at once. */
#define METRICS_FILE_DELAY_USEC (3 * 1000000ULL)

/* Stops keeping the file, and removes it if it is still the one last written: a daemon that
 * stopped has no metrics. Accepts NULL, returns NULL. */
struct metrics_file *metrics_file_free(struct metrics_file *f);

/* Returns the path kept. */
const char *metrics_file_path(const struct metrics_file *f);

/* Writes the file now. Returns 0 or -errno (logged once until a write succeeds again). */
int metrics_file_write(struct metrics_file *f);
