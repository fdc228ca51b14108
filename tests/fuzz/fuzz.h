/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets in this folder: the entry point's prototype (libFuzzer
 * declares none, and -Wmissing-prototypes wants one) and an invariant check that aborts, so
 * that a broken promise of the code under test is reported as a crash with its input. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
					#cond);                                                    \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
