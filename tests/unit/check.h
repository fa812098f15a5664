/* SPDX-License-Identifier: MIT */
/*
 * Check macros shared by the unit tests: a failed check prints file:line
 * and what failed, counts in `failures`, and the test goes on; main()
 * ends with CHECK_RESULT() (or tests `failures` itself) so that any
 * failure fails the test.
 */
#ifndef SIPWAKE_TEST_CHECK_H
#define SIPWAKE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int failures;

/* UNDER_ASAN: 1 in a build with AddressSanitizer (whose allocator replaces glibc's), else 0. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                          \
		}                                                                            \
	} while (0)

/* CHECK with a printf-style explanation. */
#define CHECK_MSG(cond, ...)                                                                 \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                        \
			fputc('\n', stderr);                                                 \
			failures++;                                                          \
		}                                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                                      \
	do {                                                                                 \
		const char *a_ = (a), *b_ = (b);                                             \
		if (!((a_ == NULL && b_ == NULL) || (a_ && b_ && strcmp(a_, b_) == 0))) {    \
			fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,  \
				__LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
			failures++;                                                          \
		}                                                                            \
	} while (0)

#define CHECK_RESULT()                                                                       \
	(failures ? (fprintf(stderr, "%d check(s) failed\n", failures), 1)                   \
		  : (printf("all checks passed\n"), 0))

#endif
