/* SPDX-License-Identifier: MIT */
/* Reply lines written with jsonw; see reply_write.h. */
#include <string.h>

#include "proto/reply_write.h"

void reply_begin(struct jsonw *w, char *buf, size_t size, bool ok, const char *id)
{
	jsonw_begin(w, buf, size);
	jsonw_bool(w, PROTO_F_OK, ok);
	jsonw_int(w, PROTO_F_V, PROTO_VERSION);
	if (id && id[0])
		jsonw_string(w, PROTO_F_ID, id, strlen(id));
}

int reply_write_error(char *buf, size_t size, enum proto_error err, const char *message,
		const char *id, const char *kind)
{
	const char *code = proto_error_name(err);
	struct jsonw w;
	size_t len;
	int r;

	reply_begin(&w, buf, size, false, id);
	jsonw_string(&w, PROTO_F_ERROR, code, strlen(code));
	message = message ? message : "";
	jsonw_string(&w, PROTO_F_MESSAGE, message, strlen(message));
	if (kind)
		jsonw_string(&w, PROTO_F_KIND, kind, strlen(kind));
	r = jsonw_end(&w, &len);
	return r < 0 ? r : (int)len;
}
