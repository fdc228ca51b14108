/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client/format.h"
#include "client/identity.h"
#include "common/util.h"
#include "proto/jsonw.h"
#include "proto/reply_read.h"

/* The JSON names of what identity adds to a reply, and whoami prints. */
#define IDENTITY_F_SOCKET  "socket"
#define IDENTITY_F_PROFILE "profile"

/* Room for the "socket" and "profile" fields: a socket path fits a sockaddr_un (108 bytes), a
 * profile name is at most CONNECT_MAX_PROFILE; each escaped takes at most six times that. */
#define IDENTITY_FIELDS_MAX (6 * (108 + CONNECT_MAX_PROFILE) + 64)

/* clang-format off */
static const char whoami_usage[] =
	"Usage: regscale-token [OPTIONS] whoami [--json]\n"
	"\n"
	"Show whose token the daemon holds: \"USERNAME (USER_ID) at URL\", or \"USER_ID at URL\"\n"
	"when the daemon does not know the username, with \"(pasted token)\" or\n"
	"\"(service-account token)\" for those kinds and \"expired\" for an expired token.\n"
	"--json prints {\"username\",\"user_id\",\"url\",\"kind\",\"state\",\"socket\",\"profile\"}\n"
	"instead (null for what is unknown). The exit is 4 when the daemon holds no token.\n";
/* clang-format on */

int identity_resolve(const struct globals *g, struct identity *ret)
{
	const char *bad = NULL, *profile = NULL;
	char *path = NULL;
	int r, q;

	r = connect_socket_path(g->socket, g->profile, &path, &bad, &profile);
	if (r < 0) {
		/* cli_socket_path() meets the same error, and words it. */
		q = cli_socket_path(g, &path);
		if (q != 0)
			return q;
		free(path);
		return cli_fail(EXIT_FAILURE, CLI_E_LOCAL,
				"cannot find the daemon's socket: %s; try again", strerror(-r));
	}
	*ret = (struct identity){.socket = path, .profile = profile};
	return 0;
}

void identity_done(struct identity *id)
{
	id->socket = mfree(id->socket);
	id->profile = NULL;
}

struct globals identity_globals(const struct globals *g, const struct identity *id)
{
	struct globals copy = *g;

	copy.socket = id->socket;
	return copy;
}

/* Writes ,"socket":"...","profile":... and the object's end into buf. Returns 0 and the
 * length in *ret_len, or -errno. */
static int identity_fields(const struct identity *id, char *buf, size_t size, size_t *ret_len)
{
	struct jsonw w;

	jsonw_fragment(&w, buf, size);
	jsonw_string(&w, IDENTITY_F_SOCKET, id->socket, strlen(id->socket));
	jsonw_string_or_null(&w, IDENTITY_F_PROFILE, id->profile);
	return jsonw_end(&w, ret_len);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int identity_write_json(int fd, const char *line, size_t len, const struct identity *id)
{
	char fields[IDENTITY_FIELDS_MAX];
	struct iovec iov[2];
	size_t end = len, flen, left;
	int r;

	/* The object's last '}', after which only white space may follow; some field before it
	 * (every reply has "ok"), so that a comma may follow that field. */
	while (end > 0 && is_space(line[end - 1]))
		end--;
	if (end < 2 || line[end - 1] != '}')
		return -EBADMSG;
	end--;
	left = end;
	while (left > 0 && is_space(line[left - 1]))
		left--;
	if (left == 0 || line[left - 1] == '{')
		return -EBADMSG;
	r = identity_fields(id, fields, sizeof(fields), &flen);
	if (r < 0)
		return r;
	iov[0] = (struct iovec){.iov_base = (void *)line, .iov_len = end};
	iov[1] = (struct iovec){.iov_base = fields, .iov_len = flen};
	for (int i = 0; i < 2;) {
		ssize_t n = writev(fd, iov + i, 2 - i);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (i < 2 && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

void identity_print(FILE *f, const struct identity *id)
{
	format_line(f, "socket:", id->socket);
	format_line(f, "profile:", id->profile ? id->profile : "- (the socket was named by path)");
}

struct whoami {
	char username[FORMAT_FIELD_MAX], user_id[FORMAT_FIELD_MAX], url[FORMAT_FIELD_MAX];
	char kind[FORMAT_FIELD_MAX], state[FORMAT_FIELD_MAX];
	const char *username_p, *user_id_p, *url_p, *kind_p, *state_p; /* NULL: none */
};

static void whoami_read(const struct reply_read *r, struct whoami *w)
{
	w->username_p = format_reply_str(r, PROTO_F_USERNAME, w->username, sizeof(w->username));
	w->user_id_p = format_reply_str(r, PROTO_F_USER_ID, w->user_id, sizeof(w->user_id));
	w->url_p = format_reply_str(r, PROTO_F_URL, w->url, sizeof(w->url));
	w->kind_p = format_reply_str(r, PROTO_F_KIND, w->kind, sizeof(w->kind));
	w->state_p = format_reply_str(r, PROTO_F_STATE, w->state, sizeof(w->state));
	/* An empty string tells nothing either. */
	if (w->username_p && !*w->username_p)
		w->username_p = NULL;
	if (w->user_id_p && !*w->user_id_p)
		w->user_id_p = NULL;
	if (w->url_p && !*w->url_p)
		w->url_p = NULL;
}

static int whoami_json(const struct whoami *w, const struct identity *id)
{
	char buf[6 * (6 * FORMAT_FIELD_MAX + 16) + IDENTITY_FIELDS_MAX];
	struct jsonw j;
	size_t len;

	jsonw_begin(&j, buf, sizeof(buf));
	jsonw_string_or_null(&j, PROTO_F_USERNAME, w->username_p);
	jsonw_string_or_null(&j, PROTO_F_USER_ID, w->user_id_p);
	jsonw_string_or_null(&j, PROTO_F_URL, w->url_p);
	jsonw_string_or_null(&j, PROTO_F_KIND, w->kind_p);
	jsonw_string_or_null(&j, PROTO_F_STATE, w->state_p);
	jsonw_string(&j, IDENTITY_F_SOCKET, id->socket, strlen(id->socket));
	jsonw_string_or_null(&j, IDENTITY_F_PROFILE, id->profile);
	if (jsonw_end(&j, &len) < 0)
		return -EBADMSG;
	fwrite(buf, 1, len, stdout);
	return 0;
}

static void whoami_text(const struct whoami *w)
{
	char who[2 * FORMAT_FIELD_MAX + 8], notes[128] = "", a[512], b[512];
	const char *words = NULL;

	if (w->username_p && w->user_id_p)
		snprintf(who, sizeof(who), "%s (%s)", format_sanitize(w->username_p, a, sizeof(a)),
				format_sanitize(w->user_id_p, b, sizeof(b)));
	else if (w->username_p || w->user_id_p)
		format_sanitize(w->username_p ? w->username_p : w->user_id_p, who, sizeof(who));
	else
		snprintf(who, sizeof(who), "an unknown user");
	/* A login token is the common case: only the others are named. */
	if (w->kind_p && strcmp(w->kind_p, PROTO_KIND_LOGIN) != 0)
		words = format_kind_words(w->kind_p);
	if (w->state_p && strcmp(w->state_p, proto_state_name(PROTO_STATE_EXPIRED)) == 0)
		snprintf(notes, sizeof(notes), " (%s%sexpired)", words ? words : "",
				words ? ", " : "");
	else if (words)
		snprintf(notes, sizeof(notes), " (%s)", words);
	if (w->url_p)
		printf("%s at %s%s\n", who, format_sanitize(w->url_p, a, sizeof(a)), notes);
	else
		printf("%s%s\n", who, notes);
}

int identity_status(const struct globals *g, struct identity *ret_id, struct connect_reply *rep)
{
	struct globals here;
	int r;

	r = identity_resolve(g, ret_id);
	if (r != 0)
		return r;
	here = identity_globals(g, ret_id);
	r = cli_call_simple(&here, PROTO_OP_STATUS, CLI_TIMEOUT_MS, rep);
	if (r != 0)
		identity_done(ret_id);
	return r;
}

int identity_run_whoami(const struct globals *g, int argc, char **argv)
{
	struct identity id;
	struct connect_reply rep;
	struct whoami w;
	char clean[256], state[64];
	bool none;
	int ex, r;

	if (cli_simple_options(argc, argv, whoami_usage, &ex) < 0)
		return ex;
	r = identity_status(g, &id, &rep);
	if (r != 0)
		return r;
	whoami_read(&rep.r, &w);
	connect_reply_done(&rep);
	/* No kind and no user: the daemon holds no token, expired or not. */
	none = !w.kind_p && !w.user_id_p && !w.username_p;
	if (cli_json())
		r = whoami_json(&w, &id);
	else if (!none)
		whoami_text(&w);
	if (none && !cli_json())
		cli_say("the daemon at %s holds no token (%s); run 'regscale-token login', or see "
			"'regscale-token status'",
				format_sanitize(id.socket, clean, sizeof(clean)),
				format_sanitize(w.state_p ? w.state_p : "no state", state,
						sizeof(state)));
	identity_done(&id);
	if (r < 0)
		return cli_fail(EXIT_FAILURE, CLI_E_BAD_REPLY,
				"cannot write the daemon's answer as JSON; check that "
				"regscale-token and regscale-tokend are the same version");
	return none ? EXIT_NO_TOKEN : EXIT_SUCCESS;
}
