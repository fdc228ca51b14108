/* The stable wire names of the error codes in proto.h. */
#include <errno.h>
#include <string.h>

#include "proto/proto.h"

static const char *const error_names[_PROTO_E_MAX] = {
	[PROTO_OK] = "ok",
	[PROTO_E_BAD_REQUEST] = "bad_request",
	[PROTO_E_UNSUPPORTED_VERSION] = "unsupported_version",
	[PROTO_E_UNKNOWN_OP] = "unknown_op",
	[PROTO_E_TOO_LARGE] = "too_large",
	[PROTO_E_TOO_MANY_CLIENTS] = "too_many_clients",
	[PROTO_E_IDLE_TIMEOUT] = "idle_timeout",
	[PROTO_E_PERMISSION_DENIED] = "permission_denied",
	[PROTO_E_NO_TOKEN] = "no_token",
	[PROTO_E_TOKEN_EXPIRED] = "token_expired",
	[PROTO_E_LOGIN_FAILED] = "login_failed",
	[PROTO_E_CREDENTIALS_REJECTED] = "credentials_rejected",
	[PROTO_E_TIMEOUT] = "timeout",
	[PROTO_E_INTERNAL] = "internal",
};

const char *proto_error_name(enum proto_error err)
{
	/* Compare as unsigned so that a negative value cast to the enum is out of range too. */
	if ((unsigned)err >= _PROTO_E_MAX)
		return error_names[PROTO_E_INTERNAL];
	return error_names[err];
}

int proto_error_from_name(const char *name)
{
	if (!name)
		return -EINVAL;

	/* "ok" is not an error code on the wire, so PROTO_OK is never the answer. */
	for (int i = PROTO_OK + 1; i < _PROTO_E_MAX; i++)
		if (strcmp(error_names[i], name) == 0)
			return i;

	return -EINVAL;
}
