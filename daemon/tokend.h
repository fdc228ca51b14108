/* The daemon's state: the token it holds (sealed in the vault), where it came from, and
 * the one-line status it reports to clients and to systemd. One instance per process. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/jwt.h"
#include "common/secret.h"
#include "daemon/config.h"
#include "daemon/vault.h"

enum token_kind {
	TOKEN_KIND_SERVICE, /* a service-account token loaded from a file or credential */
	TOKEN_KIND_LOGIN,   /* a token obtained by password login */
};

enum token_state {
	TOKEN_STATE_NONE,    /* no token held */
	TOKEN_STATE_VALID,   /* held and not expired (or without a known expiry) */
	TOKEN_STATE_EXPIRED, /* held but past its exp: never served */
};

struct token_info {
	enum token_kind kind;
	struct jwt_claims claims;
	int64_t received_at; /* unix seconds when the daemon got it */
	int64_t expires_at;  /* unix seconds the daemon stops serving it, 0 = no known expiry */
};

struct access;
struct helper_proc;
struct server;
struct source;

struct tokend {
	sd_event *event;
	struct config config;
	struct vault *vault;
	struct sealed *token; /* NULL when none */
	struct token_info info;
	struct server *server;
	struct source *source;
	struct access *access; /* NULL: only the daemon's uid and root */
	sd_event_source *expiry_timer;
	/* Reply lines are built here, in guarded memory, because a reply may carry the token.
	 * Reused for every reply and wiped after each. */
	struct secret *reply_buf;
	uint64_t started_usec; /* CLOCK_MONOTONIC */
	int64_t last_refresh;  /* unix seconds the token last changed, 0 = never */
	char last_error[256];  /* empty when the last attempt succeeded */
	char status[256];      /* last STATUS= sent */

	/* Password login (refresh.c). */
	const char *login_helper;       /* path of regscale-token-login */
	char *username;                 /* account to log in as; not a secret */
	struct sealed *password;        /* NULL when none */
	char mfa[17];                   /* one-time code, used by the next login only */
	struct helper_proc *login;      /* login helper in flight, NULL when none */
	struct helper_proc *validation; /* validateToken helper in flight, NULL when none */
	bool login_done;                /* a login finished since the credentials were set */
	int last_outcome;               /* enum helper_outcome of the last finished login */
	bool credentials_rejected;      /* the server refused them: no retry until new ones */
	unsigned retries;               /* failed attempts since the last success */
	int64_t next_refresh;           /* unix seconds of the scheduled login, 0 when none */
	sd_event_source *refresh_timer;
	struct secret *request_secret; /* a request's password is decoded here, then sealed */
};

/* Creates the daemon state on event loop e (referenced). Returns 0 and *ret (owned by the
 * caller, tokend_free), or -errno. */
int tokend_new(sd_event *e, struct tokend **ret);

/* Wipes every secret, frees servers, sources and timers. Accepts NULL, returns NULL. */
struct tokend *tokend_free(struct tokend *d);

/* Seals token[0..len) with its parsed claims as the token served from now on, replacing
 * (and wiping) any previous one; it is served until expires_at (unix seconds, 0 = no known
 * expiry). Returns 0 or -ENOMEM. */
int tokend_set_token(struct tokend *d, const char *token, size_t len,
		const struct jwt_claims *claims, enum token_kind kind, int64_t expires_at);

/* Wipes and forgets the held token. */
void tokend_clear_token(struct tokend *d);

/* Returns the state of the held token at unix time now. */
enum token_state tokend_token_state(const struct tokend *d, int64_t now);

/* Returns the wire name of a kind ("service", "login"). */
const char *token_kind_name(enum token_kind k);

/* Records the last error (empty string or NULL clears it) and refreshes the status. */
void tokend_set_error(struct tokend *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the one-line human status ("token valid until ...") into buf. Returns buf. */
char *tokend_status_line(const struct tokend *d, char *buf, size_t size);

/* Recomputes the status line and sends it to systemd (STATUS=) when it changed. */
void tokend_update_status(struct tokend *d);

/* Returns the current unix time in seconds. */
int64_t now_unix(void);

/* Returns the current CLOCK_MONOTONIC time in microseconds. */
uint64_t now_monotonic_usec(void);
