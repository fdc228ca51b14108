/* SPDX-License-Identifier: MIT */
/* The daemon's INI configuration (libinih). See README.md "Configuration". Relative paths
 * (password_file, token_file, ca_file, socket) are resolved against the directory of the
 * configuration file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/config_value.h" /* enum login_api */
#include "daemon/expiry.h"       /* struct expiry_points */

struct config {
	char *path;         /* the file read, or NULL when none was given */
	unsigned keys_read; /* keys the last config_load() found: 0 for an empty file */

	/* [regscale] */
	char *url; /* RegScale base URL, without trailing slash */
	char *username;
	char *password_file;
	char *token_file; /* service-account token */
	char *ca_file;
	char *proxy;
	enum login_api login_api;      /* default v1 */
	uint64_t connect_timeout_sec;  /* default 10 */
	uint64_t total_timeout_sec;    /* default 30 */
	uint64_t default_lifetime_sec; /* used when a token has no exp; default 86400 */

	/* [daemon] */
	char *socket;
	uint64_t idle_timeout_sec;         /* close connections idle this long; default
					      PROTO_DEFAULT_IDLE_TIMEOUT_SEC */
	uint64_t max_connections_per_user; /* open connections of one uid other than the
					      daemon's and root; default PROTO_MAX_CLIENTS / 4 */
	char **allow_users;                /* NULL-terminated lists, NULL when unset */
	char **allow_groups;
	char **admin_users;
	char **admin_groups;
	struct expiry_points warn_before; /* before the end of a token nothing renews; default
					     30d, 7d, 1d, 1h */
	char *metrics_file; /* absolute path of the exposition for node_exporter, NULL: none */
};

/* Fills *ret with defaults (every string NULL, timeouts as documented). */
void config_init(struct config *ret);

/* Loads path into *c (which config_init() prepared), replacing the values it sets. On
 * error returns -EINVAL (or -errno if the file cannot be read) and writes one line naming
 * the file, line and key (e.g. "/etc/x.conf:7: [regscale] connect_timeout: not a number")
 * into errbuf. Unknown sections and keys are errors, and so are keys of the file that do not
 * work together: token_file with username or password_file; in password mode (no token_file,
 * no systemd credential "token" in $CREDENTIALS_DIRECTORY) username or password_file without
 * url, password_file without username. On error *c is left unchanged. */
int config_load(struct config *c, const char *path, char *errbuf, size_t errlen);

/* Frees everything c owns and re-initialises it. */
void config_done(struct config *c);
