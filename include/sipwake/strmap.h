/* SPDX-License-Identifier: MIT */
/*
 * A string-keyed hash map (open addressing, grows by doubling, moving its
 * entries over a few per change rather than all at once) for the
 * in-memory indexes: AOR, binding id, push identity, contact, source.
 * Values are borrowed pointers. O(1) lookups, no table scans.
 */
#ifndef SIPWAKE_STRMAP_H
#define SIPWAKE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap;

/* A map that copies each key. */
struct strmap *strmap_new(void);
/*
 * A map whose keys are the values' own: key_of(value) gives the key a
 * value is stored under. strmap_put(m, key, v) requires key_of(v) to equal
 * key, and that string must stay valid and unchanged while v is in the
 * map. No allocation per entry. With end non-zero, a key (the values' and
 * those looked up alike) ends at its first end character: "sip:a:1;x"
 * and "sip:a:1" are one key with end ';'.
 */
typedef const char *strmap_key_fn(const void *value);
struct strmap *strmap_new_keyed(strmap_key_fn *key_of, char end);
/* Free the map and its keys (not the values). Safe with NULL. */
void strmap_free(struct strmap *m);
/* Insert or replace. Returns 0, or -1 on ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Insert or replace, with one lookup: *old gets the value replaced (NULL if none). */
int strmap_swap(struct strmap *m, const char *key, void *value, void **old);
/* Make room for n entries in all, so that filling it grows nothing. 0 or -1. */
int strmap_reserve(struct strmap *m, size_t n);
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
