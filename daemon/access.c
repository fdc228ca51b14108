/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/access.h"

struct idset {
	unsigned *ids;
	size_t n;
};

struct access {
	struct idset read_users, read_groups, admin_users, admin_groups;
};

static bool idset_has(const struct idset *s, unsigned id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return true;
	return false;
}

/* Parses a decimal uid/gid. Returns true and *ret, or false if name is not a number. */
static bool parse_id(const char *name, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (name[0] < '0' || name[0] > '9')
		return false;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (errno || *end || v >= (unsigned long)(unsigned)-1)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* Returns true and the id of user or group name (a number is taken as is). */
static bool lookup(const char *name, bool group, unsigned *ret)
{
	if (parse_id(name, ret))
		return true;
	/* getpwnam/getgrnam are fine here: config load, not the serving path. */
	if (group) {
		struct group *g = getgrnam(name);
		if (g)
			*ret = (unsigned)g->gr_gid;
		return g != NULL;
	}
	struct passwd *pw = getpwnam(name);
	if (pw)
		*ret = (unsigned)pw->pw_uid;
	return pw != NULL;
}

static int resolve(char **names, bool group, const char *key, struct idset *ret, char *errbuf,
		size_t errlen)
{
	size_t n = 0;

	for (char **i = names; i && *i; i++)
		n++;
	ret->ids = calloc(n ? n : 1, sizeof(unsigned));
	if (!ret->ids)
		return -ENOMEM;
	for (char **i = names; i && *i; i++) {
		if (!lookup(*i, group, &ret->ids[ret->n])) {
			snprintf(errbuf, errlen, "[daemon] %s: no %s named \"%s\"", key,
					group ? "group" : "user", *i);
			return -EINVAL;
		}
		ret->n++;
	}
	return 0;
}

int access_new(const struct config *c, struct access **ret, char *errbuf, size_t errlen)
{
	struct access *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	if ((r = resolve(c->allow_users, false, "allow_users", &a->read_users, errbuf, errlen)) <
					0 ||
			(r = resolve(c->allow_groups, true, "allow_groups", &a->read_groups, errbuf,
					 errlen)) < 0 ||
			(r = resolve(c->admin_users, false, "admin_users", &a->admin_users, errbuf,
					 errlen)) < 0 ||
			(r = resolve(c->admin_groups, true, "admin_groups", &a->admin_groups,
					 errbuf, errlen)) < 0) {
		access_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

struct access *access_free(struct access *a)
{
	if (!a)
		return NULL;
	free(a->read_users.ids);
	free(a->read_groups.ids);
	free(a->admin_users.ids);
	free(a->admin_groups.ids);
	free(a);
	return NULL;
}

bool access_is_shared(const struct access *a)
{
	return a && (a->read_users.n || a->read_groups.n || a->admin_users.n || a->admin_groups.n);
}

/* Returns true if the peer's primary or any supplementary group is in s. */
static bool peer_in_groups(const struct idset *s, int fd, const struct ucred *peer)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (s->n == 0)
		return false;
	if (idset_has(s, (unsigned)peer->gid))
		return true;
	/* SO_PEERGROUPS: the groups the peer had when it connected, from the kernel. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false; /* more than 256 groups or no support: primary group only */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (idset_has(s, (unsigned)groups[i]))
			return true;
	return false;
}

enum access_level access_check(const struct access *a, uid_t self, int fd, const struct ucred *peer)
{
	if (peer->uid == self || peer->uid == 0)
		return ACCESS_ADMIN;
	if (!a)
		return ACCESS_NONE;
	if (idset_has(&a->admin_users, (unsigned)peer->uid) ||
			peer_in_groups(&a->admin_groups, fd, peer))
		return ACCESS_ADMIN;
	if (idset_has(&a->read_users, (unsigned)peer->uid) ||
			peer_in_groups(&a->read_groups, fd, peer))
		return ACCESS_READ;
	return ACCESS_NONE;
}
