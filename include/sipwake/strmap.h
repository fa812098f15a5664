/* SPDX-License-Identifier: MIT */
/*
 * A string-keyed hash map (separate chaining, grows by doubling) for the
 * in-memory indexes: AOR, binding id, push identity, contact. Keys are
 * copied; values are borrowed pointers. O(1) lookups, no table scans.
 */
#ifndef SIPWAKE_STRMAP_H
#define SIPWAKE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
/* Free the map and its keys (not the values). Safe with NULL. */
void strmap_free(struct strmap *m);
/* Insert or replace. Returns 0, or -1 on ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* The value, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Remove; returns the old value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Call fn for each entry (do not modify the map from fn). */
void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
		 void *ctx);
/*
 * Remove every entry pred says true for (it may free the value, which the
 * map forgets); no other change to the map from pred. Returns how many.
 */
size_t strmap_remove_if(struct strmap *m, bool (*pred)(void *ctx, const char *key, void *value),
			void *ctx);

#endif
