/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/push/payload.c: fitting a JSON payload to a size limit
 * by cutting its text (escaped characters included).
 */
#include "push/payload.c"

#include "check.h"

struct fit_arg {
	int calls;
};

static json_t *build_msg(void *arg, const char *text)
{
	((struct fit_arg *)arg)->calls++;
	return json_pack("{s:s, s:s?}", "from", "Alice", "text", text);
}

static void test_fit(void)
{
	struct fit_arg a = {0};
	char text[20000];
	size_t len = 0;
	char *j;
	json_t *o;

	/* Characters that JSON escapes cost more than one byte each. */
	for (size_t i = 0; i + 4 < sizeof(text); i += 4)
		memcpy(text + i, i % 8 ? "\"\xc3\xa9\n" : "\xe2\x82\xac\x01", 4);
	text[sizeof(text) - 4] = '\0';
	j = push_fit_payload(build_msg, &a, text, 4096, &len);
	CHECK(j && len <= 4096 && len == strlen(j));
	CHECK(len > 3900); /* close to the limit, not far below */
	CHECK(a.calls <= 20); /* bounded bisection */
	o = j ? json_loads(j, 0, NULL) : NULL; /* still valid JSON and UTF-8 */
	CHECK(o != NULL);
	if (o) {
		const char *t = json_string_value(json_object_get(o, "text"));
		size_t tl = strlen(t);
		CHECK(tl > 3 && strcmp(t + tl - 3, "\xe2\x80\xa6") == 0);
		CHECK(strncmp(t, text, tl - 3) == 0);
	}
	json_decref(o);
	free(j);

	a.calls = 0;
	j = push_fit_payload(build_msg, &a, "short", 4096, &len);
	CHECK_STR(j, "{\"from\":\"Alice\",\"text\":\"short\"}");
	CHECK(a.calls == 1);
	free(j);
	j = push_fit_payload(build_msg, &a, NULL, 10, &len); /* cannot fit without text */
	CHECK(j == NULL);
}

int main(void)
{
	test_fit();
	return CHECK_RESULT();
}
