/* SPDX-License-Identifier: MIT */
/* Fuzzes fields_next() (common/fields.h), which reads the messages on the pipes between the
 * daemon and its login helper, in both directions. Besides memory safety it checks that every
 * field read lies inside the message and that the reader moves forward, and, because the
 * format has one spelling per message, that fields_put() writes back exactly the bytes read.
 * Each value that fields_parse_int() accepts must likewise come back from fields_put_int(). */
#include <errno.h>
#include <string.h>

#include "common/fields.h"
#include "fuzz.h"

static void check_int(const char *value, size_t len)
{
	char buf[64], name[FIELDS_MAX_NAME + 1];
	const char *v;
	size_t pos = 0, vlen;
	int64_t i;

	if (fields_parse_int(value, len, &i) < 0)
		return;
	/* Canonical decimal only: writing the number back gives the same text. */
	FUZZ_CHECK(fields_put_int(buf, sizeof(buf), &pos, "n", i) == 0);
	FUZZ_CHECK(fields_next(buf, pos, &(size_t){0}, name, &v, &vlen) == 1);
	FUZZ_CHECK(vlen == len && memcmp(v, value, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	char name[FIELDS_MAX_NAME + 1];
	char *copy;
	size_t pos = 0, cpos = 0;
	int r;

	/* Room for the message as read so far, written again field by field. */
	copy = malloc(size ? size : 1);
	FUZZ_CHECK(copy);

	for (;;) {
		const char *v = NULL;
		size_t vlen = 0, before = pos, name_len;

		r = fields_next(msg, size, &pos, name, &v, &vlen);
		if (r <= 0) {
			FUZZ_CHECK(r == 0 || r == -EBADMSG);
			FUZZ_CHECK(pos == before);
			FUZZ_CHECK(r < 0 || pos == size);
			break;
		}
		FUZZ_CHECK(r == 1);
		FUZZ_CHECK(pos > before && pos <= size);
		FUZZ_CHECK(v >= msg + before && vlen <= size && v + vlen < msg + pos);
		name_len = strnlen(name, sizeof(name));
		FUZZ_CHECK(name_len > 0 && name_len <= FIELDS_MAX_NAME);
		for (size_t i = 0; i < name_len; i++)
			FUZZ_CHECK((name[i] >= 'a' && name[i] <= 'z') || name[i] == '_');

		FUZZ_CHECK(fields_put(copy, size, &cpos, name, v, vlen) == 0);
		FUZZ_CHECK(cpos == pos && memcmp(copy + before, msg + before, pos - before) == 0);
		check_int(v, vlen);
	}
	free(copy);
	return 0;
}
