/* SPDX-License-Identifier: MIT */
/* "exec": runs a command with the token in its environment, as regscale-cli and scripts read
 * it, and in nothing of ours; and the get request that it and "get" send. */
#pragma once

#include <stddef.h>

#include "client/cli.h"
#include "client/connect.h"

/* Sends get with min_valid (seconds, or -1 for none) and wait (seconds, or -1 for the default:
 * 30 s, or what --timeout leaves); slow_note, when not NULL, is the progress line for a reply
 * that takes long (the daemon refreshes first). Returns 0 with *rep (release with
 * connect_reply_done(), which wipes the token) and the token in *ret_token, *ret_len (in the reply
 * line, checked by format_token_valid()), or the exit code after saying what went wrong. */
int exec_get_token(const struct globals *g, long long min_valid, long long wait,
		const char *slow_note, struct connect_reply *rep, const char **ret_token,
		size_t *ret_len);

/* "exec [--min-valid DURATION] [--wait DURATION] [--] CMD [ARG...]": gets a token, runs CMD
 * with it in the variables of enum format_env_var and REGSCALE_CONFIG_FILE in a private
 * directory (privdir.h) removed afterwards, and forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * to it. Returns CMD's exit status (128+N for death by signal N; 127 when CMD is not found,
 * 126 when it cannot be run), or the client's exit code for what failed before it ran. */
int exec_run(const struct globals *g, int argc, char **argv);
