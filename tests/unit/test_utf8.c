/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/core/utf8.c: cutting on character boundaries, invalid
 * input replaced, validation.
 */
#include <stdlib.h>
#include <string.h>

#include "sipwake/utf8.h"

#include "check.h"

static void test_clip(void)
{
	const char *s = "a\xc3\xa9" "b\xf0\x9f\x98\x80"; /* a é b 😀: 1+2+1+4 bytes */
	bool cut;
	char *c;

	CHECK(utf8_prefix(s, strlen(s), 100) == 8);
	CHECK(utf8_prefix(s, strlen(s), 2) == 1); /* never half of é */
	CHECK(utf8_prefix(s, strlen(s), 3) == 3);
	CHECK(utf8_prefix(s, strlen(s), 7) == 4); /* never part of the emoji */
	c = utf8_clip(s, 7, &cut);
	CHECK_STR(c, "a\xc3\xa9" "b");
	CHECK(cut);
	free(c);
	c = utf8_clip(s, 8, &cut);
	CHECK_STR(c, s);
	CHECK(!cut);
	free(c);
	/* Invalid input: lone continuation, overlong, surrogate, truncated sequence. */
	c = utf8_clip("x\x80y\xc0\xafz\xed\xa0\x80w\xe2\x82", 100, NULL);
	CHECK_STR(c, "x?y??z???w??");
	free(c);
}

static void test_valid(void)
{
	CHECK(utf8_valid(""));
	CHECK(utf8_valid("plain ascii"));
	CHECK(utf8_valid("a\xc3\xa9" "b\xf0\x9f\x98\x80"));
	CHECK(!utf8_valid("\xff"));
	CHECK(!utf8_valid("cut \xc3"));           /* truncated sequence */
	CHECK(!utf8_valid("\xc0\xaf"));           /* overlong */
	CHECK(!utf8_valid("\xed\xa0\x80"));       /* surrogate */
	CHECK(!utf8_valid("\xf4\x90\x80\x80"));   /* beyond U+10FFFF */
}

int main(void)
{
	test_clip();
	test_valid();
	return CHECK_RESULT();
}
