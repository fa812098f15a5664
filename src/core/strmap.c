/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map used by the registrar's indexes and a few tables:
 * open addressing with linear probing, deletions by backward shift (no
 * tombstones), grown by doubling past a load of 3/4, and sized exactly by
 * strmap_reserve (a hash is scaled to the table, which needs no power of
 * two).
 *
 * Growing moves the entries over a few slots per change, not all at once:
 * rehashing a million entries stopped the loop for about 100 ms per index,
 * and five indexes of bindings grow together. Meanwhile the map is two
 * tables, the new one taking every insert and the old one only emptied;
 * lookups try both.
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
struct table {
	uint32_t *hashes; /* 0: the slot is empty */
	void **items;     /* struct node * (copied keys) or the value (keyed) */
	size_t n;         /* slots: any number, so that a reserved table is no bigger than needed */
	size_t count;
};

struct strmap {
	struct table t;   /* where entries are added */
	struct table old; /* being emptied into t while growing (n = 0: not growing) */
	size_t cursor;    /* old's slots below it are empty */
	strmap_key_fn *key_of; /* NULL: keys are copied into nodes */
	char end;              /* keyed: a key also ends at this character (0: none) */
};

#define MIN_SLOTS 64
#define MOVE_STEPS 16 /* old slots looked at per change while growing */

/* Both arrays of n slots, or -1 (then neither). */
static int table_alloc(struct table *t, size_t n)
{
	t->hashes = slab_table_alloc(n, sizeof(*t->hashes));
	t->items = slab_table_alloc(n, sizeof(*t->items));
	t->n = n;
	t->count = 0;
	if (t->hashes && t->items)
		return 0;
	slab_table_free(t->hashes, n, sizeof(*t->hashes));
	slab_table_free(t->items, n, sizeof(*t->items));
	memset(t, 0, sizeof(*t)); /* the caller may free the map: not these again */
	return -1;
}

static void table_free(struct table *t)
{
	slab_table_free(t->hashes, t->n, sizeof(*t->hashes));
	slab_table_free(t->items, t->n, sizeof(*t->items));
	memset(t, 0, sizeof(*t));
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

static const char *key_at(const struct strmap *m, const struct table *t, size_t i)
{
	return m->key_of ? m->key_of(t->items[i]) : ((struct node *)t->items[i])->key;
}

static void *value_at(const struct strmap *m, const struct table *t, size_t i)
{
	return m->key_of ? t->items[i] : ((struct node *)t->items[i])->value;
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
	if (table_alloc(&m->t, MIN_SLOTS) < 0) {
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

static void free_nodes(const struct strmap *m, const struct table *t)
{
	if (!m->key_of && t->hashes)
		for (size_t i = 0; i < t->n; i++)
			if (t->hashes[i])
				free(t->items[i]);
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	free_nodes(m, &m->t);
	free_nodes(m, &m->old);
	table_free(&m->t);
	table_free(&m->old);
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

/* Whether the key in slot i of t is key (of len bytes). */
static bool same_key(const struct strmap *m, const struct table *t, size_t i, const char *key,
		     size_t len)
{
	const char *k = key_at(m, t, i);

	return strncmp(k, key, len) == 0 && key_len(m, k) == len;
}

/* The slot of key (len bytes, hash h) in t, or of the empty slot where it would go. */
static size_t find(const struct strmap *m, const struct table *t, const char *key, size_t len,
		   uint32_t h)
{
	size_t i = home_of(h, t->n);

	while (t->hashes[i] && (t->hashes[i] != h || !same_key(m, t, i, key, len)))
		i = next_of(i, t->n);
	return i;
}

/* Put an entry known to be absent into t's first free slot of its run. */
static void place(struct table *t, uint32_t h, void *item)
{
	size_t j = home_of(h, t->n);

	while (t->hashes[j])
		j = next_of(j, t->n);
	t->hashes[j] = h;
	t->items[j] = item;
	t->count++;
}

/*
 * Empty slot i of t and pull later entries of its run back into the hole,
 * so that every entry stays reachable from its home slot without
 * tombstones. The item is the caller's (freed, or moved elsewhere).
 */
static void vacate(struct table *t, size_t i)
{
	size_t j = i;

	t->hashes[i] = 0;
	t->items[i] = NULL;
	t->count--;
	for (;;) {
		size_t home;
		j = next_of(j, t->n);
		if (!t->hashes[j])
			return;
		home = home_of(t->hashes[j], t->n);
		/* j's entry may move to i unless its home lies in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->hashes[i] = t->hashes[j];
		t->items[i] = t->items[j];
		t->hashes[j] = 0;
		t->items[j] = NULL;
		i = j;
	}
}

/*
 * Move entries from old into t, looking at up to steps of old's slots
 * (SIZE_MAX: all), and free old once it is empty. Slots below the cursor
 * are empty, so no run of old wraps into them, and what vacate() pulls
 * back stays at or past the cursor, to be seen again.
 */
static void move_some(struct strmap *m, size_t steps)
{
	struct table *o = &m->old;

	while (o->n && steps-- > 0) {
		if (o->count == 0 || m->cursor >= o->n) {
			table_free(o);
			m->cursor = 0;
			return;
		}
		if (!o->hashes[m->cursor]) {
			m->cursor++;
			continue;
		}
		place(&m->t, o->hashes[m->cursor], o->items[m->cursor]);
		vacate(o, m->cursor);
	}
}

/*
 * Where key is: *tab and the slot, or NULL when it is in neither table
 * (then the slot is where it would go in t).
 */
static const struct table *locate(const struct strmap *m, const char *key, size_t len,
				  uint32_t h, size_t *slot)
{
	size_t i = find(m, &m->t, key, len, h);

	if (m->t.hashes[i]) {
		*slot = i;
		return &m->t;
	}
	if (m->old.n) {
		size_t j = find(m, &m->old, key, len, h);
		if (m->old.hashes[j]) {
			*slot = j;
			return &m->old;
		}
	}
	*slot = i;
	return NULL;
}

/* Rehash every entry of both tables into one of n slots (more than the count), at once. */
static int resize(struct strmap *m, size_t n)
{
	struct table nt, *tabs[] = {&m->t, &m->old};

	if (table_alloc(&nt, n) < 0)
		return -1;
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < tabs[k]->n; i++)
			if (tabs[k]->hashes[i])
				place(&nt, tabs[k]->hashes[i], tabs[k]->items[i]);
		table_free(tabs[k]);
	}
	m->t = nt;
	m->cursor = 0;
	return 0;
}

/* Start moving into a table twice the size; -1 if it cannot be had. */
static int grow(struct strmap *m)
{
	struct table nt;

	move_some(m, SIZE_MAX); /* a growth still under way ends first */
	if (table_alloc(&nt, m->t.n * 2) < 0)
		return -1;
	m->old = m->t;
	m->t = nt;
	m->cursor = 0;
	return 0;
}

int strmap_reserve(struct strmap *m, size_t n)
{
	size_t slots = n / 3 * 4 + 4; /* a load of 3/4 when full */

	return slots > m->t.n ? resize(m, slots) : 0;
}

int strmap_swap(struct strmap *m, const char *key, void *value, void **old)
{
	size_t len = key_len(m, key), i;
	uint32_t h = hash_str(key, len);
	const struct table *at;
	struct node *nd;

	*old = NULL;
	move_some(m, MOVE_STEPS);
	if ((at = locate(m, key, len, h, &i))) {
		if (m->key_of) {
			*old = at->items[i];
			at->items[i] = value;
		} else {
			*old = ((struct node *)at->items[i])->value;
			((struct node *)at->items[i])->value = value;
		}
		return 0;
	}
	/* Keep a load of at most 3/4 (an empty slot always ends a search). */
	if ((m->t.count + 1) * 4 > m->t.n * 3) {
		if (grow(m) < 0 && m->t.count + 2 > m->t.n)
			return -1;
		i = find(m, &m->t, key, len, h);
	}
	if (m->key_of) {
		nd = value;
	} else {
		if (!(nd = malloc(sizeof(*nd) + len + 1)))
			return -1;
		memcpy(nd->key, key, len + 1);
		nd->value = value;
	}
	m->t.items[i] = nd;
	m->t.hashes[i] = h;
	m->t.count++;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	void *old;

	return strmap_swap(m, key, value, &old);
}

void *strmap_get(const struct strmap *m, const char *key)
{
	size_t len = key_len(m, key), i;
	const struct table *at = locate(m, key, len, hash_str(key, len), &i);

	return at ? value_at(m, at, i) : NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	size_t len = key_len(m, key), i;
	const struct table *at;
	void *v;

	move_some(m, MOVE_STEPS);
	if (!(at = locate(m, key, len, hash_str(key, len), &i)))
		return NULL;
	v = value_at(m, at, i);
	if (!m->key_of)
		free(at->items[i]);
	vacate(at == &m->t ? &m->t : &m->old, i);
	return v;
}

size_t strmap_count(const struct strmap *m)
{
	return m->t.count + m->old.count;
}

void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
		 void *ctx)
{
	const struct table *tabs[] = {&m->t, &m->old};

	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < tabs[k]->n; i++)
			if (tabs[k]->hashes[i])
				fn(ctx, key_at(m, tabs[k], i), value_at(m, tabs[k], i));
}

size_t strmap_remove_if(struct strmap *m, bool (*pred)(void *ctx, const char *key, void *value),
			void *ctx)
{
	struct table *t = &m->t;
	size_t start = 0, n = 0;

	move_some(m, SIZE_MAX); /* a walk of every entry anyway: one table */
	/*
	 * Walk once round from just after an empty slot: a run of entries then
	 * never wraps past the start, so the entries vacate() pulls back are
	 * ones not yet seen, and each entry is asked exactly once.
	 */
	while (t->hashes[start])
		start++; /* the load is below 1: there is an empty slot */
	for (size_t k = 1; k <= t->n; k++) {
		size_t i = (start + k) % t->n;
		while (t->hashes[i] && pred(ctx, key_at(m, t, i), value_at(m, t, i))) {
			if (!m->key_of)
				free(t->items[i]);
			vacate(t, i);
			n++;
		}
	}
	return n;
}
