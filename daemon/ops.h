/* Answering one request: the only place that knows what each op does. */
#pragma once

#include <sys/socket.h>

#include "daemon/secret.h"
#include "daemon/tokend.h"
#include "proto/request.h"

/* Answers the request line[0..len) from peer: writes one reply line (newline-terminated)
 * into d->reply_buf, setting its len. Never fails: every problem becomes an error reply. */
void ops_answer(struct tokend *d, const struct ucred *peer, const char *line, size_t len);

/* Writes the error reply err/message (with the optional request id) into d->reply_buf. */
void ops_error(struct tokend *d, enum proto_error err, const char *message, const char *id);
