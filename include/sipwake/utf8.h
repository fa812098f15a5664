/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 helpers for text from the network: what sipwake stores, pushes or
 * shows (JSON needs valid UTF-8) goes through utf8_clip() first.
 */
#ifndef SIPWAKE_UTF8_H
#define SIPWAKE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Copy at most max bytes of s as valid UTF-8: invalid bytes become '?',
 * the cut never falls inside a character. *cut (may be NULL) tells whether
 * text was dropped. Returns a malloc'd string (caller frees), NULL on OOM.
 */
char *utf8_clip(const char *s, size_t max, bool *cut);
/* Length of the longest prefix of s[0..len) not ending inside a UTF-8 sequence, <= max. */
size_t utf8_prefix(const char *s, size_t len, size_t max);
/* True when s is valid UTF-8 throughout. */
bool utf8_valid(const char *s);

#endif
