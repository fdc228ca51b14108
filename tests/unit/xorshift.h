/* SPDX-License-Identifier: MIT */
/* A small deterministic generator for the unit tests' random mutations, so that a failure
 * can be replayed: xorshift32 (Marsaglia). */
#pragma once

#include <stdint.h>

/* Returns the next number of the sequence kept in *state (never 0 for a state not 0). */
static inline uint32_t xorshift32(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}
