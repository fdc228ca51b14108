/* SPDX-License-Identifier: MIT */
/* Answering requests: the only place that knows what each op does. A request that needs a
 * login to finish first (login, refresh, a get that may wait) waits without blocking
 * anybody: its connection parks it and asks again when the lifecycle changed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/secret.h"
#include "daemon/access.h"
#include "daemon/config.h"
#include "daemon/lifecycle.h"
#include "proto/request.h"

struct metrics;
struct source;

/* The longest reply: a get with the longest token and its fields, or a status with the longest
 * messages. The reply buffer is this big; a reply that would not fit is an "internal" error. */
#define OPS_REPLY_MAX (PROTO_MAX_TOKEN + 16 * 1024)

/* What of a get reply stays the same while the token does: built once per token, not per
 * request (ops.c). Nothing secret: ordinary heap. */
struct ops_token_fields {
	char *text; /* ,"kind":..,"user_id":..,"url":..,"expires_at":..,"expires":.. (or nulls) */
	size_t len;
	/* What text was built from. */
	const char *kind; /* static */
	int64_t expires_at;
	char *user_id;
	char *username; /* "" when none */
	char *url;
};

/* Frees what f holds; f is then empty (and rebuilt at the next get). */
void ops_token_fields_done(struct ops_token_fields *f);

/* What the ops need, wired by tokend.c; every pointer is borrowed. */
struct ops_env {
	struct lifecycle *lifecycle;
	struct source *source; /* NULL unless a service token is configured */
	const struct config *config;
	struct metrics *metrics;              /* counters; NULL: none kept */
	uint64_t started_usec;                /* CLOCK_MONOTONIC, for uptime */
	pid_t pid;                            /* the daemon's, for status */
	struct ops_token_fields token_fields; /* owned */
};

/* A request waiting for a login. */
struct ops_pending {
	struct request req; /* secrets wiped */
	uint64_t ticket;    /* login, refresh: the login it waits for */
};

enum ops_result {
	OPS_REPLY, /* the reply line is in the reply buffer */
	OPS_WAIT,  /* the request waits for a login; ask again with ops_resume() */
};

/* Answers the request line[0..len) from peer. On OPS_REPLY the reply line (newline-
 * terminated) is in reply. On OPS_WAIT *pending holds what to resume with and
 * *ret_wait_usec the longest it may wait. *ret_op is always set: the request's op, or
 * _PROTO_OP_MAX when the line was no valid request. Every problem becomes an error reply. */
enum ops_result ops_answer(struct ops_env *env, const struct peer *peer, const char *line,
		size_t len, struct secret *reply, struct ops_pending *pending,
		uint64_t *ret_wait_usec, enum proto_op *ret_op);

/* Answers a waiting request again, after the lifecycle changed (final = false), or because
 * its wait ran out (final = true: always OPS_REPLY). */
enum ops_result ops_resume(struct ops_env *env, const struct peer *peer,
		const struct ops_pending *pending, bool final, struct secret *reply);

/* Writes the error reply err/message (with the optional request id, and kind when not NULL)
 * into reply. */
void ops_error(struct secret *reply, enum proto_error err, const char *message, const char *id,
		const char *kind);
