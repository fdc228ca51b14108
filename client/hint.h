/* SPDX-License-Identifier: MIT */
/* The one line a failed request prints: the daemon's cause, once, and one action that fits
 * the error code, the request and the token's kind. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

/* What was asked, as far as the action for its failure depends on it. */
struct hint_request {
	enum proto_op op;
	bool pasted; /* a login with a pasted token */
	bool mfa;    /* the request carried a one-time code */
};

/* Splits an error reply's message into its cause, written to cause[0..size), and the action
 * the daemon appended, if any, written to action[0..action_size) ("" when there is none).
 * The daemon writes "<cause>; <action>", sometimes "<cause>: run '...'" or several causes
 * and actions joined by "; ": a part that starts with a verb telling the reader what to do
 * (run, fix, check, try, ...) is an action. Either buffer may be cut to fit. */
void hint_split(const char *message, char *cause, size_t size, char *action, size_t action_size);

/* Returns the action (a static string) for error err answered to req, kind being the error
 * reply's "kind" (NULL when it has none), or NULL when the code says too little and the
 * daemon's own action, if it gave one, fits better (login_failed, internal, a login's
 * bad_request). */
const char *hint_action(const struct hint_request *req, enum proto_error err, const char *kind);

/* Writes "<cause>; <action>" for the error reply err with message (may be NULL or "") to
 * req into buf[0..size), sanitized for a terminal: the cause from hint_split() (or a default
 * for err when nothing is left of it), the action from hint_action(), else the daemon's,
 * else a default. Returns buf. */
char *hint_error_line(const struct hint_request *req, enum proto_error err, const char *kind,
		const char *message, char *buf, size_t size);
