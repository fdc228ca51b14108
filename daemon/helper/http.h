/* SPDX-License-Identifier: MIT */
/* The login helper's one HTTPS exchange with RegScale, through libcurl: the URL checks, the
 * request, and the sorting of what came back (or did not) into an outcome. Only
 * regscale-token-login links this. */
#pragma once

#include "daemon/helper/request.h"

/* Initialises libcurl once per process. Returns 0, or -EIO when it cannot. */
int helper_http_init(void);

/* Releases what helper_http_init() set up; returns nothing. */
void helper_http_cleanup(void);

/* POSTs req's body to its endpoint and fills *a: outcome, message, HTTP status, Retry-After,
 * and for a successful login the token into a->token (caller-owned sodium memory of
 * PIPE_MAX_TOKEN + 1 bytes), its length, expires_in and user_id. Returns nothing: every
 * failure is an outcome in *a. */
void helper_http_run(const struct helper_request *req, struct helper_answer *a);
