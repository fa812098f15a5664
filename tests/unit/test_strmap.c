/* SPDX-License-Identifier: MIT */
/* The string map: puts, gets, deletes across growth, and strmap_remove_if. */
#include "check.h"

#include <stdint.h>
#include <stdlib.h>

#include "sipwake/strmap.h"

static bool odd(void *ctx, const char *key, void *value)
{
	(*(int *)ctx)++;
	return ((intptr_t)value & 1) != 0;
}

static bool none(void *ctx, const char *key, void *value)
{
	return false;
}

int main(void)
{
	struct strmap *m = strmap_new();
	char key[32];
	int calls = 0, found = 0;

	CHECK(m != NULL);
	if (!m)
		return 1;
	for (intptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%ld", (long)i);
		CHECK(strmap_put(m, key, (void *)i) == 0);
	}
	CHECK(strmap_count(m) == 5000);
	CHECK(strmap_get(m, "k4242") == (void *)(intptr_t)4242);
	CHECK(strmap_del(m, "k4242") == (void *)(intptr_t)4242);
	CHECK(strmap_get(m, "k4242") == NULL && strmap_count(m) == 4999);
	CHECK(strmap_remove_if(m, none, NULL) == 0 && strmap_count(m) == 4999);
	/* Every odd value goes (2500 of them), in one pass over every entry. */
	CHECK(strmap_remove_if(m, odd, &calls) == 2500);
	CHECK(calls == 4999 && strmap_count(m) == 2499);
	for (intptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%ld", (long)i);
		void *v = strmap_get(m, key);
		if (v) {
			found++;
			CHECK(v == (void *)i && (i & 1) == 0);
		}
	}
	CHECK(found == 2499);
	/* The map still works after removals: put, replace, get. */
	CHECK(strmap_put(m, "k1", (void *)(intptr_t)7) == 0 && strmap_put(m, "k1", (void *)(intptr_t)9) == 0);
	CHECK(strmap_get(m, "k1") == (void *)(intptr_t)9 && strmap_count(m) == 2500);
	strmap_free(m);
	return CHECK_RESULT();
}
