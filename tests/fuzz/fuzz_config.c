/* SPDX-License-Identifier: MIT */
/* Fuzzes config_load() (daemon/config.h) with libinih underneath. The input is written to a
 * memfd and loaded through /proc/self/fd/N; a file that loads is loaded a second time into the
 * same struct config (replacing what the first load set, so a value it forgets to free shows as
 * a leak), then the struct is freed: LeakSanitizer reports anything left. Besides memory
 * safety it checks that a failure writes one printable line naming the file and leaves the
 * struct alone, and that what a success stores is within the documented bounds. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"
#include "fuzz.h"

static bool list_ok(char **l)
{
	if (!l)
		return true;
	if (!l[0])
		return false;
	for (; *l; l++)
		if (!**l || strpbrk(*l, ", \t"))
			return false;
	return true;
}

static void check_loaded(const struct config *c, const char *path)
{
	FUZZ_CHECK(c->path && strcmp(c->path, path) == 0);
	if (c->url) {
		size_t n = strlen(c->url);
		FUZZ_CHECK(n > 0 && c->url[n - 1] != '/');
		FUZZ_CHECK(strncasecmp(c->url, "https://", 8) == 0 ||
				strncasecmp(c->url, "http://", 7) == 0);
	}
	FUZZ_CHECK(!c->password_file || c->password_file[0] == '/');
	FUZZ_CHECK(!c->token_file || c->token_file[0] == '/');
	FUZZ_CHECK(!c->ca_file || c->ca_file[0] == '/');
	FUZZ_CHECK(!c->socket || c->socket[0] == '/');
	FUZZ_CHECK(c->login_api == LOGIN_API_V1 || c->login_api == LOGIN_API_V2);
	FUZZ_CHECK(c->connect_timeout_sec > 0 && c->connect_timeout_sec <= 365 * 24 * 3600);
	FUZZ_CHECK(c->total_timeout_sec > 0 && c->total_timeout_sec <= 365 * 24 * 3600);
	FUZZ_CHECK(c->default_lifetime_sec > 0 && c->default_lifetime_sec <= 365 * 24 * 3600);
	FUZZ_CHECK(c->idle_timeout_sec > 0 && c->idle_timeout_sec <= 365 * 24 * 3600);
	FUZZ_CHECK(list_ok(c->allow_users) && list_ok(c->allow_groups));
	FUZZ_CHECK(list_ok(c->admin_users) && list_ok(c->admin_groups));
	/* the keys that go together (README "Configuration") */
	FUZZ_CHECK(!c->url || config_value_url_api_base(c->url) == 0);
	FUZZ_CHECK(!c->token_file || (!c->username && !c->password_file));
	if (!c->token_file && !getenv("CREDENTIALS_DIRECTORY"))
		FUZZ_CHECK(c->url || (!c->username && !c->password_file));
	FUZZ_CHECK(c->token_file || !c->password_file || c->username ||
			getenv("CREDENTIALS_DIRECTORY"));
}

static void check_error(const char *errbuf, const char *path)
{
	FUZZ_CHECK(strncmp(errbuf, path, strlen(path)) == 0);
	for (const char *s = errbuf; *s; s++)
		FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static bool config_equal(const struct config *a, const struct config *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	char errbuf[512];
	struct config c, before;
	int r1, r2;

	if (fd < 0) {
		fd = memfd_create("fuzz-config", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

	config_init(&c);
	before = c;
	r1 = config_load(&c, path, errbuf, sizeof(errbuf));
	if (r1 < 0) {
		FUZZ_CHECK(r1 == -EINVAL || r1 == -ENOMEM);
		FUZZ_CHECK(config_equal(&c, &before));
		check_error(errbuf, path);
	} else {
		FUZZ_CHECK(r1 == 0);
		check_loaded(&c, path);
	}

	/* The same file again, over what the first load set: the same outcome, and every value
	 * it replaces must be freed. (After a failure *c is untouched: nothing new to see.) */
	if (r1 == 0) {
		r2 = config_load(&c, path, errbuf, sizeof(errbuf));
		FUZZ_CHECK(r2 == 0);
		check_loaded(&c, path);
	}

	config_done(&c);
	return 0;
}
