/* Answering requests: the only place that knows what each op does. A request that needs a
 * login to finish first (login, refresh, get with min_valid) waits without blocking
 * anybody: its connection parks it and asks again when the login is done. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/secret.h"
#include "daemon/access.h"
#include "daemon/tokend.h"
#include "proto/request.h"

enum ops_result {
	OPS_REPLY, /* the reply line is in d->reply_buf */
	OPS_WAIT,  /* the request waits for a login; ask again with ops_resume() */
};

/* Answers the request line[0..len) from peer. On OPS_REPLY the reply line (newline-
 * terminated) is in d->reply_buf. On OPS_WAIT *pending holds the parsed request (secrets
 * wiped) and *ret_wait_usec the longest it may wait. Every problem becomes an error reply. */
enum ops_result ops_answer(struct tokend *d, const struct peer *peer, const char *line, size_t len,
		struct request *pending, uint64_t *ret_wait_usec);

/* Answers a waiting request again, after a login finished (final = false), or because its
 * wait ran out (final = true: always OPS_REPLY). */
enum ops_result ops_resume(
		struct tokend *d, const struct peer *peer, const struct request *req, bool final);

/* Writes the error reply err/message (with the optional request id) into d->reply_buf. */
void ops_error(struct tokend *d, enum proto_error err, const char *message, const char *id);
