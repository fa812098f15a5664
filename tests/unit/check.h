/* SPDX-License-Identifier: MIT */
/*
 * Minimal check macros for the unit tests: a failed check prints file:line
 * and the expression, counts as a failure, and the test goes on; main()
 * returns CHECK_RESULT() so that any failure fails the test.
 */
#ifndef SIPWAKE_TEST_CHECK_H
#define SIPWAKE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                                    \
		}                                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                                      \
	do {                                                                                 \
		const char *a_ = (a), *b_ = (b);                                             \
		if (!((a_ == NULL && b_ == NULL) || (a_ && b_ && strcmp(a_, b_) == 0))) {    \
			fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,  \
				__LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
			check_failures++;                                                    \
		}                                                                            \
	} while (0)

#define CHECK_RESULT()                                                                       \
	(check_failures ? (fprintf(stderr, "%d check(s) failed\n", check_failures), 1)       \
			: (printf("all checks passed\n"), 0))

#endif
