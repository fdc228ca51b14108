/* SPDX-License-Identifier: MIT */
/* The commands that change what the daemon holds: login (login.c), logout and refresh, and
 * what they share: a connection that carries several requests, what the daemon says of its
 * URL and user, the one-time code prompt, and the outcome line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/cli.h"
#include "client/password.h"

/* "login [--username USER] [--mfa[=CODE]] | --token | --token-file FILE": reads the password
 * (and a one-time code when asked for one) or a pasted token (see password.h), sends it to
 * the daemon in locked memory that is wiped once sent, prints the outcome. Returns the exit
 * code. */
int session_run_login(const struct globals *g, int argc, char **argv);

/* "logout": the daemon forgets the token and the credentials. Returns the exit code. */
int session_run_logout(const struct globals *g, int argc, char **argv);

/* "refresh [--mfa[=CODE]]": the daemon logs in again now (with a one-time code for an MFA
 * identity, asked for on the terminal when the daemon needs one); prints the outcome. Returns
 * the exit code. */
int session_run_refresh(const struct globals *g, int argc, char **argv);

/* One connection for a command that may send several requests (status, then a login, then
 * the login again with a code), reconnecting when a prompt kept it idle. */
struct session_conn {
	const struct globals *g;
	enum proto_op op;   /* the command's request, for the peer check's wording */
	int64_t timeout_ms; /* the budget of each exchange */
	char *path;         /* the socket; owned */
	int fd;             /* connected, or -EBADF */
	int64_t used_ms;    /* when fd was connected or last answered (connect_now_ms()) */
};

/* Resolves the socket and connects c for op. Returns 0, or the exit code after saying what
 * went wrong. */
int session_open(struct session_conn *c, const struct globals *g, enum proto_op op,
		int64_t timeout_ms);

/* Closes c's connection and frees its path; accepts a zeroed or closed c. */
void session_close(struct session_conn *c);

/* Sends req[0..len) on c, connecting afresh when the daemon may have given up on the idle
 * connection, and reads the reply into *rep, "ok" or not (release with
 * connect_reply_done()). req is wiped once sent, and on every failure. Returns 0, or the exit
 * code after saying what went wrong. */
int session_exchange(struct session_conn *c, char *req, size_t len, struct connect_reply *rep);

/* What the daemon's status says of whom a login is for, sanitized for a terminal; "" when
 * unknown. */
struct session_info {
	char url[256];
	char username[PROTO_MAX_USERNAME + 1];
	char user_id[128];
	char kind[16];
	char configured[PROTO_MAX_USERNAME + 1]; /* whom a login without --username is for */
};

/* Asks the daemon's status on c to fill *info. Returns 0 (an error reply leaves *info
 * empty), or the exit code after saying what went wrong: a transport failure, or
 * permission_denied (the daemon refuses this user altogether). */
int session_ask_info(struct session_conn *c, struct session_info *info);

/* Room for a one-time code in locked memory. */
#define SESSION_CODE_MAX 64

/* Returns true if s is a usable one-time code: 1..PROTO_MAX_MFA printable ASCII characters,
 * no spaces. */
bool session_code_valid(const char *s);

/* Reads a one-time code into code (locked_alloc()ed by the caller, SESSION_CODE_MAX bytes)
 * from the terminal, without echo, with the prompt "One-time code for USER at URL: " (whom
 * from info, username overriding it when not NULL), or when there is no terminal, as the
 * next line of standard input if that is no terminal. Spaces in it are dropped ("123 456").
 * Returns 0 and the length in *ret_len; -ENODATA with nothing said when there is nothing to
 * read it from (no terminal, standard input at its end); or the exit code after saying what
 * went wrong. */
int session_read_code(const struct session_info *info, const char *username, struct locked *code,
		size_t *ret_len);

/* What a successful reply was the answer to, for its outcome line. */
enum session_outcome {
	SESSION_LOGGED_IN, /* a login with a password */
	SESSION_PASTED,    /* a login with a pasted token */
	SESSION_REFRESHED, /* a refresh */
};

/* Prints the outcome of the "ok" reply rep: with --json the reply line, else one line saying
 * whose token the daemon holds now and until when (and, for a token no background login
 * renews, what a person must do before then). Returns the exit code: EXIT_NO_TOKEN, after
 * saying so, when the reply leaves no usable token. */
int session_print_outcome(const struct connect_reply *rep, enum session_outcome what);
