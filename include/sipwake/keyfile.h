/* SPDX-License-Identifier: MIT */
/*
 * The one rule for secret files (private keys, the FCM service account):
 * nobody but the owner and its group may read or write them (SPEC 8). The
 * config check (--check and start-up) and the push layer, which opens the
 * keys again on every reload, apply the same rule through this header.
 */
#ifndef SIPWAKE_KEYFILE_H
#define SIPWAKE_KEYFILE_H

#include <stdbool.h>
#include <sys/stat.h>

/* Permission bits that make a secret file unacceptable. */
#define KEYFILE_FORBIDDEN_BITS (S_IROTH | S_IWOTH)

/* True when a secret file with this st_mode may be used. */
static inline bool keyfile_mode_ok(mode_t mode)
{
	return (mode & KEYFILE_FORBIDDEN_BITS) == 0;
}

#endif
