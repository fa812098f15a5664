/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map used by the registrar's indexes. FNV-1a hashing,
 * chains, and a table that doubles when the load factor passes 1.
 */
#include "sipwake/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof(*m));

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
