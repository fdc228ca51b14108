/* SPDX-License-Identifier: MIT */
/* The value parsers of config_load() (daemon/config.h), internal to the daemon. Each checks
 * one value as read from the file (non-empty, no control characters) and returns 0 on
 * success, or -EINVAL (-ENOMEM when allocation failed) with a static reason in *ret_reason;
 * *ret is written only on success. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/expiry.h"

/* The login_api key: which form of RegScale's login the helper posts. */
enum login_api {
	LOGIN_API_V1,
	LOGIN_API_V2,
};

/* Parses "30", "30s", "5m", "24h", "7d" (at most one year) into seconds in *ret. Returns 0 or
 * -errno with a reason. */
int config_value_duration(const char *v, uint64_t *ret, const char **ret_reason);

/* Parses a number of connections: a whole number from 1 to PROTO_MAX_CLIENTS, in decimal, into
 * *ret. Returns 0 or -errno with a reason. */
int config_value_connections(const char *v, uint64_t *ret, const char **ret_reason);

/* Checks a RegScale base URL (https://, or http:// for a loopback host only). Returns 0 and
 * a malloc'd copy without trailing slashes in *ret, which the caller frees, or -errno with a
 * reason. */
int config_value_url(const char *v, char **ret, const char **ret_reason);

/* Returns the length of url's base when its path ends in /api (any case; url as
 * config_value_url() stores it, without trailing slashes): "https://x.example/api" -> 17, the
 * length of "https://x.example". Returns 0 for any other url. */
size_t config_value_url_api_base(const char *url);

/* Resolves v against dir (absolute, the configuration file's directory; borrowed). Returns 0
 * and a malloc'd absolute path in *ret, which the caller frees, or -errno with a reason. */
int config_value_path(const char *dir, const char *v, char **ret, const char **ret_reason);

/* Splits v on commas and whitespace. Returns 0 and a malloc'd NULL-terminated array of
 * malloc'd strings in *ret, which the caller frees with config_value_list_free(), or -errno with a
 * reason. */
int config_value_list(const char *v, char ***ret, const char **ret_reason);

/* Parses "v1" or "v2" into *ret. Returns 0 or -errno with a reason. */
int config_value_login_api(const char *v, enum login_api *ret, const char **ret_reason);

/* Frees a list from config_value_list() and its strings (NULL is fine). Returns NULL. */
char **config_value_list_free(char **l);

/* Parses a list of durations split on commas and whitespace ("30d, 7d, 1d, 1h", each as
 * config_value_duration() takes it) into *ret. Returns 0 or -errno with a reason. */
int config_value_warn_points(const char *v, struct expiry_points *ret, const char **ret_reason);
