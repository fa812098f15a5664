/* SPDX-License-Identifier: MIT */
/*
 * Minimal assertions for the unit tests: CHECK() records a failure with
 * its location and goes on; CHECK_DONE() is the exit status of main().
 */
#ifndef SIPWAKE_TEST_CHECK_H
#define SIPWAKE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__,   \
				__LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_DONE() (check_failures ? (fprintf(stderr, "%d failure(s)\n", check_failures), 1) : 0)

#endif
