/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the auth layer's files: auth.c (checking requests)
 * and client.c (answering upstream's challenges). Not an interface.
 */
#ifndef SIPWAKE_AUTH_INT_H
#define SIPWAKE_AUTH_INT_H

#include "sipwake/auth.h"

/* The account of an AOR as both sides use it, copied out of the store's row. */
struct auth_account {
	bool found;
	char username[256];
	char realm[256];
	char ha1[AUTH_ALGO_COUNT][AUTH_HEX_MAX + 1]; /* "" = not stored (or malformed) */
};

/* Read the account of aor into acc (found false when there is none): 0, or -1 (store error). */
int auth_account_load(struct store *st, const char *aor, struct auth_account *acc);

#endif
