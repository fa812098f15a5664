/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map used by the registrar's indexes and a few tables:
 * open addressing with linear probing, deletions by backward shift (no
 * tombstones), grown by doubling past a load of 3/4, and sized exactly by
 * strmap_reserve (a hash is scaled to the table, which needs no power of
 * two).
 *
 * A slot is a 32-bit hash (0 = empty) and one pointer: a node holding the
 * value and a copy of the key (strmap_new), or the value itself, whose key
 * the map asks of it (strmap_new_keyed). The registrar's five indexes of a
 * million bindings are keyed maps: no allocation and no key copy per
 * entry, 12 bytes a slot.
 *
 * Keys are long (push tokens, contacts: 100-300 bytes) and many, so they
 * are hashed eight bytes at a time, with a seed drawn per process so that
 * chosen keys cannot be lined up on one run of slots ahead.
 */
#include "sipwake/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sipwake/slab.h"

struct node {
	void *value;
	char key[];
};

/*
 * Two arrays rather than one of packed 12-byte slots: a pointer at an
 * unaligned offset is invisible to LeakSanitizer, which then reports what
 * only the map points to as leaked.
 */
struct strmap {
	uint32_t *hashes; /* 0: the slot is empty */
	void **items;     /* struct node * (copied keys) or the value (keyed) */
	size_t n;         /* slots: any number, so that a reserved table is no bigger than needed */
	size_t count;
	strmap_key_fn *key_of; /* NULL: keys are copied into nodes */
	char end;              /* keyed: a key also ends at this character (0: none) */
};

#define MIN_SLOTS 64
/* Both arrays of n slots, or -1 (then neither). */
static int slots_alloc(uint32_t **hashes, void ***items, size_t n)
{
	*hashes = slab_table_alloc(n, sizeof(**hashes));
	*items = slab_table_alloc(n, sizeof(**items));
	if (*hashes && *items)
		return 0;
	slab_table_free(*hashes, n, sizeof(**hashes));
	slab_table_free(*items, n, sizeof(**items));
	*hashes = NULL; /* the caller may free the map: not these again */
	*items = NULL;
	return -1;
}

static void slots_free(struct strmap *m)
{
	slab_table_free(m->hashes, m->n, sizeof(*m->hashes));
	slab_table_free(m->items, m->n, sizeof(*m->items));
}

static uint64_t seed;

/* The length of key s in m: up to NUL, or to m's end character. */
static size_t key_len(const struct strmap *m, const char *s)
{
	const char stops[2] = {m->end, 0};

	return m->end ? strcspn(s, stops) : strlen(s);
}

static uint32_t hash_str(const char *s, size_t len)
{
	size_t n = len;
	const unsigned char *p = (const unsigned char *)s;
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ull, w;
	uint32_t r;

	while (n >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w ^ ((uint64_t)len << 56)) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdull;
	r = (uint32_t)(h ^ (h >> 32));
	return r ? r : 1; /* 0 marks an empty slot */
}

static const char *key_at(const struct strmap *m, size_t i)
{
	return m->key_of ? m->key_of(m->items[i]) : ((struct node *)m->items[i])->key;
}

static void *value_at(const struct strmap *m, size_t i)
{
	return m->key_of ? m->items[i] : ((struct node *)m->items[i])->value;
}

static struct strmap *map_new(strmap_key_fn *key_of, char end)
{
	struct strmap *m = calloc(1, sizeof(*m));

	while (!seed && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = 0x2545f4914f6cdd1dull; /* no entropy: a fixed seed still hashes well */
	if (!m)
		return NULL;
	m->key_of = key_of;
	m->end = key_of ? end : 0;
	m->n = MIN_SLOTS;
	if (slots_alloc(&m->hashes, &m->items, MIN_SLOTS) < 0) {
		strmap_free(m);
		return NULL;
	}
	return m;
}

struct strmap *strmap_new(void)
{
	return map_new(NULL, 0);
}

struct strmap *strmap_new_keyed(strmap_key_fn *key_of, char end)
{
	return map_new(key_of, end);
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	if (!m->key_of && m->hashes)
		for (size_t i = 0; i < m->n; i++)
			if (m->hashes[i])
				free(m->items[i]);
	slots_free(m);
	free(m);
}

/* The first slot for hash h among n: h scaled to [0, n), no division. */
static size_t home_of(uint32_t h, size_t n)
{
	return (size_t)(((uint64_t)h * n) >> 32);
}

static size_t next_of(size_t i, size_t n)
{
	return i + 1 < n ? i + 1 : 0;
}

/* Whether the key in slot i is key (of len bytes). */
static bool same_key(const struct strmap *m, size_t i, const char *key, size_t len)
{
	const char *k = key_at(m, i);

	return strncmp(k, key, len) == 0 && key_len(m, k) == len;
}

/* The slot of key (len bytes, hash h), or of the empty slot where it would go. */
static size_t find(const struct strmap *m, const char *key, size_t len, uint32_t h)
{
	size_t i = home_of(h, m->n);

	while (m->hashes[i] && (m->hashes[i] != h || !same_key(m, i, key, len)))
		i = next_of(i, m->n);
	return i;
}

/* Rehash into n slots (more than the count). */
static int resize(struct strmap *m, size_t n)
{
	uint32_t *hashes;
	void **items;

	if (slots_alloc(&hashes, &items, n) < 0)
		return -1;
	for (size_t i = 0; i < m->n; i++) {
		size_t j;
		if (!m->hashes[i])
			continue;
		for (j = home_of(m->hashes[i], n); hashes[j]; j = next_of(j, n))
			;
		hashes[j] = m->hashes[i];
		items[j] = m->items[i];
	}
	slots_free(m);
	m->hashes = hashes;
	m->items = items;
	m->n = n;
	return 0;
}

int strmap_reserve(struct strmap *m, size_t n)
{
	size_t slots = n / 3 * 4 + 4; /* a load of 3/4 when full */

	return slots > m->n ? resize(m, slots) : 0;
}

int strmap_swap(struct strmap *m, const char *key, void *value, void **old)
{
	size_t len = key_len(m, key);
	uint32_t h = hash_str(key, len);
	size_t i = find(m, key, len, h);
	struct node *nd;

	*old = NULL;
	if (m->hashes[i]) {
		if (m->key_of) {
			*old = m->items[i];
			m->items[i] = value;
		} else {
			*old = ((struct node *)m->items[i])->value;
			((struct node *)m->items[i])->value = value;
		}
		return 0;
	}
	/* Keep a load of at most 3/4 (an empty slot always ends a search). */
	if ((m->count + 1) * 4 > m->n * 3) {
		if (resize(m, m->n * 2) < 0 && m->count + 2 > m->n)
			return -1;
		i = find(m, key, len, h);
	}
	if (m->key_of) {
		m->items[i] = value;
	} else {
		if (!(nd = malloc(sizeof(*nd) + len + 1)))
			return -1;
		memcpy(nd->key, key, len + 1);
		nd->value = value;
		m->items[i] = nd;
	}
	m->hashes[i] = h;
	m->count++;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	void *old;

	return strmap_swap(m, key, value, &old);
}

void *strmap_get(const struct strmap *m, const char *key)
{
	size_t len = key_len(m, key);
	size_t i = find(m, key, len, hash_str(key, len));

	return m->hashes[i] ? value_at(m, i) : NULL;
}

/*
 * Empty slot i and pull later entries of its run back into the hole, so
 * that every entry stays reachable from its home slot without tombstones.
 */
static void vacate(struct strmap *m, size_t i)
{
	size_t j = i;

	if (!m->key_of)
		free(m->items[i]);
	m->hashes[i] = 0;
	m->items[i] = NULL;
	m->count--;
	for (;;) {
		size_t home;
		j = next_of(j, m->n);
		if (!m->hashes[j])
			return;
		home = home_of(m->hashes[j], m->n);
		/* j's entry may move to i unless its home lies in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->hashes[i] = m->hashes[j];
		m->items[i] = m->items[j];
		m->hashes[j] = 0;
		m->items[j] = NULL;
		i = j;
	}
}

void *strmap_del(struct strmap *m, const char *key)
{
	size_t len = key_len(m, key);
	size_t i = find(m, key, len, hash_str(key, len));
	void *v;

	if (!m->hashes[i])
		return NULL;
	v = value_at(m, i);
	vacate(m, i);
	return v;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
		 void *ctx)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->hashes[i])
			fn(ctx, key_at(m, i), value_at(m, i));
}

size_t strmap_remove_if(struct strmap *m, bool (*pred)(void *ctx, const char *key, void *value),
			void *ctx)
{
	size_t start = 0, n = 0;

	/*
	 * Walk once round from just after an empty slot: a run of entries then
	 * never wraps past the start, so the entries vacate() pulls back are
	 * ones not yet seen, and each entry is asked exactly once.
	 */
	while (m->hashes[start])
		start++; /* the load is below 1: there is an empty slot */
	for (size_t k = 1; k <= m->n; k++) {
		size_t i = (start + k) % m->n;
		while (m->hashes[i] && pred(ctx, key_at(m, i), value_at(m, i))) {
			vacate(m, i);
			n++;
		}
	}
	return n;
}
