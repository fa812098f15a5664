/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map used by the registrar's indexes: chains, and a
 * table that doubles when the load factor passes 1. Keys are long (push
 * tokens, contacts: 100-300 bytes) and many (five indexes of a million
 * bindings), so they are hashed eight bytes at a time, with a seed drawn
 * per process so that chosen keys cannot be lined up on one chain ahead.
 */
#include "sipwake/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct entry {
	struct entry *next;
	uint32_t hash;
	void *value;
	char key[];
};

struct strmap {
	struct entry **slots;
	size_t nslots;
	size_t count;
};

static uint64_t seed;

static uint32_t hash_str(const char *s)
{
	size_t len = strlen(s), n = len;
	const unsigned char *p = (const unsigned char *)s;
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ull, w;

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
	return (uint32_t)(h ^ (h >> 32));
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof(*m));

	while (!seed && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = 0x2545f4914f6cdd1dull; /* no entropy: a fixed seed still hashes well */
	if (!m)
		return NULL;
	m->nslots = 64;
	m->slots = calloc(m->nslots, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nslots; i++) {
		struct entry *e = m->slots[i];
		while (e) {
			struct entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m->slots);
	free(m);
}

static void grow(struct strmap *m)
{
	size_t n = m->nslots * 2;
	struct entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < m->nslots; i++) {
		struct entry *e = m->slots[i];
		while (e) {
			struct entry *next = e->next;
			e->next = slots[e->hash & (n - 1)];
			slots[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	uint32_t h = hash_str(key);
	struct entry *e;
	size_t len;

	for (e = m->slots[h & (m->nslots - 1)]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0) {
			e->value = value;
			return 0;
		}
	len = strlen(key);
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -1;
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	e->next = m->slots[h & (m->nslots - 1)];
	m->slots[h & (m->nslots - 1)] = e;
	if (++m->count > m->nslots)
		grow(m);
	return 0;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	uint32_t h = hash_str(key);

	for (struct entry *e = m->slots[h & (m->nslots - 1)]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	uint32_t h = hash_str(key);
	struct entry **pp = &m->slots[h & (m->nslots - 1)];

	for (; *pp; pp = &(*pp)->next) {
		struct entry *e = *pp;
		if (e->hash == h && strcmp(e->key, key) == 0) {
			void *v = e->value;
			*pp = e->next;
			free(e);
			m->count--;
			return v;
		}
	}
	return NULL;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
		 void *ctx)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct entry *e = m->slots[i]; e; e = e->next)
			fn(ctx, e->key, e->value);
}

size_t strmap_remove_if(struct strmap *m, bool (*pred)(void *ctx, const char *key, void *value),
			void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nslots; i++) {
		struct entry **pp = &m->slots[i];
		while (*pp) {
			struct entry *e = *pp;
			if (pred(ctx, e->key, e->value)) {
				*pp = e->next;
				free(e);
				m->count--;
				n++;
			} else {
				pp = &e->next;
			}
		}
	}
	return n;
}
