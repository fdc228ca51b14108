/* The commands that change what the daemon holds: login, logout and refresh. */
#pragma once

#include "client/cli.h"

/* "login [--username USER] [--mfa CODE]": reads the password (see password.h), sends it to
 * the daemon in locked memory that is wiped once sent, prints the outcome. Returns the exit
 * code. */
int session_run_login(const struct globals *g, int argc, char **argv);

/* "logout": the daemon forgets the token and the credentials. Returns the exit code. */
int session_run_logout(const struct globals *g, int argc, char **argv);

/* "refresh": the daemon logs in again now; prints the outcome. Returns the exit code. */
int session_run_refresh(const struct globals *g, int argc, char **argv);
