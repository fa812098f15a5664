/* SPDX-License-Identifier: MIT */
/*
 * Memory for long-lived objects of many sizes (the registrar's bindings),
 * kept apart from the heap that messages and transactions churn through.
 *
 * Objects come from 2 MiB blocks (huge pages where the kernel gives them),
 * one free list per 32-byte size class.
 * On the common heap, bindings made during a re-registration storm ended
 * up scattered among the storm's transactions, each pinning its page once
 * those were freed (after malloc_trim, 30,000 bindings still held 162 MB
 * there, 46 MB in blocks of their own). Here they pack densely, reuse
 * each other's slots, and carry no malloc header.
 *
 * Single-threaded, like the rest of sipwaked, but for the prefault helper
 * below, which only faults pages in. Under AddressSanitizer every object is
 * a plain malloc, so that overflows are still caught.
 */
#ifndef SIPWAKE_SLAB_H
#define SIPWAKE_SLAB_H

#include <stddef.h>

/* n zeroed bytes, or NULL. */
void *slab_alloc(size_t n);
/* Give back p, which slab_alloc(n) returned (the same n). NULL is ignored. */
void slab_free(void *p, size_t n);
/*
 * A zeroed table of n elements of size bytes (strmap's slot arrays): from
 * 2 MiB on, mapped on its own and asked for huge pages, since lookups in a
 * table of a million entries land on random slots; below that, or under
 * ASan (LeakSanitizer does not look into memory mapped behind its back),
 * calloc. Free it with slab_table_free(p, n, size).
 */
void *slab_table_alloc(size_t n, size_t size);
void slab_table_free(void *p, size_t n, size_t size);
/*
 * Loading a million bindings at start-up touches a gigabyte for the first
 * time, and the kernel zeroing those pages took a third of the load. Between
 * slab_prefault_begin(bytes) and slab_prefault_end(), new blocks come from
 * one region of up to bytes (an upper bound: it is only reserved), and a
 * helper thread faults its pages in (MADV_POPULATE_WRITE) a little ahead
 * of the blocks handed out, on another core. end stops and joins the
 * helper and gives back the part of the region not handed out. Returns 1
 * when the helper runs, 0 when there is nothing to gain (too small, ASan,
 * vm.overcommit_memory = 2, which would charge the whole reservation) or
 * no thread could be started, or -1 when even the reservation failed;
 * on a kernel without MADV_POPULATE_WRITE the helper stops at once and
 * the loader faults pages in as without it. Not nested.
 */
int slab_prefault_begin(size_t bytes);
void slab_prefault_end(void);
/* Bytes held in blocks, in use or free (for the memory figures). */
size_t slab_bytes(void);

#endif
