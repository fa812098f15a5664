/* SPDX-License-Identifier: MIT */
/*
 * The string map: puts, gets, deletes across growth (also while a growth
 * is under way), strmap_remove_if, keyed maps.
 */
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

/* Keyed map values: the key lives in the value. */
struct item {
	char key[16];
	int n;
};

static const char *item_key(const void *value)
{
	return ((const struct item *)value)->key;
}

static bool seventh(void *ctx, const char *key, void *value)
{
	return ((const struct item *)value)->n % 7 == 0;
}

static void count_one(void *ctx, const char *key, void *value)
{
	(*(size_t *)ctx)++;
}

/*
 * Random changes over keys keys, checked against a plain array every
 * check_every changes (each key, the count, strmap_each), for either kind
 * of map. put_mask sets the share of puts: 1, one in two, so that the map
 * stays small with long runs of occupied slots and many backward shifts;
 * 3, three in four, so that it doubles many times over and changes land
 * while entries are still being moved to the bigger table. With part_way,
 * one strmap_remove_if runs a third of the way through. Returns the count
 * at the end.
 */
static size_t model(bool keyed, int keys, int ops, unsigned put_mask, int check_every,
		    bool part_way)
{
	static struct item items[60000];
	static bool in[60000];
	struct strmap *m = keyed ? strmap_new_keyed(item_key, 0) : strmap_new();
	unsigned rnd = 12345;
	size_t count = 0;
	int bad = 0;

	CHECK(m != NULL && keys <= 60000);
	if (!m || keys > 60000)
		return 0;
	for (int i = 0; i < keys; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "key-%d", i);
		items[i].n = i;
		in[i] = false;
	}
	for (int op = 0; op < ops; op++) {
		int k;
		rnd = rnd * 1103515245u + 12345u;
		k = (int)((rnd >> 8) % (unsigned)keys);
		if ((rnd >> 4) & put_mask) {
			void *old = NULL;
			if (strmap_swap(m, items[k].key, &items[k], &old) != 0 ||
			    old != (in[k] ? &items[k] : NULL))
				bad++;
			count += !in[k];
			in[k] = true;
		} else {
			if (strmap_del(m, items[k].key) != (in[k] ? &items[k] : NULL))
				bad++;
			count -= in[k];
			in[k] = false;
		}
		if (part_way && op == ops / 3) {
			size_t gone = 0;
			for (int i = 0; i < keys; i++)
				if (in[i] && i % 7 == 0) {
					in[i] = false;
					gone++;
				}
			if (strmap_remove_if(m, seventh, NULL) != gone)
				bad++;
			count -= gone;
		}
		if (op % check_every == check_every - 1) {
			size_t seen = 0;
			for (int i = 0; i < keys; i++)
				if (strmap_get(m, items[i].key) != (in[i] ? &items[i] : NULL))
					bad++;
			strmap_each(m, count_one, &seen);
			if (strmap_count(m) != count || seen != count)
				bad++;
		}
	}
	CHECK(bad == 0);
	strmap_free(m);
	return count;
}

/*
 * Right after a growth starts (the 49th entry of 64 slots, the 154th of
 * the 204 reserved), most entries are still in the old table: lookups,
 * strmap_each, strmap_reserve and strmap_remove_if must see them all.
 */
static void mid_growth(void)
{
	static struct item items[200];
	struct strmap *m = strmap_new_keyed(item_key, 0);
	size_t seen = 0;
	int bad = 0;

	CHECK(m != NULL);
	if (!m)
		return;
	for (int i = 0; i < 200; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "mid-%d", i);
		items[i].n = i;
	}
	for (int i = 0; i < 49; i++)
		bad += strmap_put(m, items[i].key, &items[i]) != 0;
	for (int i = 0; i < 49; i++)
		bad += strmap_get(m, items[i].key) != &items[i];
	strmap_each(m, count_one, &seen);
	CHECK(bad == 0 && seen == 49 && strmap_count(m) == 49);
	CHECK(strmap_reserve(m, 150) == 0); /* finishes the move, then one table of room */
	for (int i = 49; i < 97; i++)
		bad += strmap_put(m, items[i].key, &items[i]) != 0;
	for (int i = 0; i < 97; i++)
		bad += strmap_get(m, items[i].key) != &items[i];
	CHECK(bad == 0 && strmap_count(m) == 97);
	for (int i = 97; i < 154; i++) /* the 154th is past 3/4 of the 204 reserved: growing */
		bad += strmap_put(m, items[i].key, &items[i]) != 0;
	CHECK(strmap_remove_if(m, seventh, NULL) == 22); /* 0, 7, ..., 147 */
	for (int i = 154; i < 200; i++)
		bad += strmap_put(m, items[i].key, &items[i]) != 0;
	for (int i = 0; i < 200; i++)
		bad += strmap_get(m, items[i].key) != (i % 7 || i >= 154 ? &items[i] : NULL);
	CHECK(bad == 0 && strmap_count(m) == 178);
	strmap_free(m);
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
	mid_growth();
	for (int keyed = 0; keyed < 2; keyed++) {
		model(keyed, 3000, 60000, 1, 10000, false);
		/* 60,000 keys, 240,000 changes: ten doublings, most keys in at the end */
		CHECK(model(keyed, 60000, 240000, 3, 3000, true) > 30000);
	}
	/* A keyed map whose keys end at ';' too. */
	{
		struct item a = {"sip:h:1;t=udp", 1}, b = {"sip:h:12", 2};
		m = strmap_new_keyed(item_key, ';');
		CHECK(m && strmap_put(m, a.key, &a) == 0 && strmap_put(m, b.key, &b) == 0);
		CHECK(m && strmap_get(m, "sip:h:1") == &a && strmap_get(m, "sip:h:1;t=tcp") == &a);
		CHECK(m && strmap_get(m, "sip:h:12;x") == &b && strmap_get(m, "sip:h:") == NULL);
		CHECK(m && strmap_get(m, "sip:h:123") == NULL && strmap_count(m) == 2);
		strmap_free(m);
	}
	return CHECK_RESULT();
}
