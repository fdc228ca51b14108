/* SPDX-License-Identifier: MIT */
/* Process hardening every program that holds a secret applies first thing. */
#pragma once

/* Makes the process non-dumpable (no core dump, no ptrace attach or /proc/PID/mem read by
 * other processes of the same user) and sets RLIMIT_CORE to 0. Returns 0, or the -errno of
 * the first step that failed (the others are still applied). */
int harden_process(void);
