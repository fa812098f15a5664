/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation and cutting for text that came from the network
 * (User-Agent, display names, message bodies): cut on a character
 * boundary, never inside one, with invalid bytes replaced, so that what is
 * stored, logged, pushed or shown as JSON is always valid UTF-8.
 */
#include "sipwake/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most avail bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			n = 1; /* an invalid byte stands alone */
		if (i + n > max)
			break;
		i += n;
	}
	return i;
}

char *utf8_clip(const char *s, size_t max, bool *cut)
{
	size_t len = strlen(s), i = 0, o = 0;
	char *out = malloc((len < max ? len : max) + 1);

	if (cut)
		*cut = false;
	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (o + (n ? n : 1) > max) {
			if (cut)
				*cut = true;
			break;
		}
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

bool utf8_valid(const char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}
