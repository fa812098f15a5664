/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the control-socket protocol (src/admin/commands.c
 * admin_command()) on arbitrary request lines, as control.c hands them
 * over: one line, NUL-terminated, without its newline, at most
 * ADMIN_MAX_LINE bytes. Behind it are the real objects: the admin (its
 * socket in a private directory), a registrar and store holding bindings
 * whose Contact, User-Agent and push parameters carry non-ASCII and
 * invalid UTF-8 bytes as the network may send them, and a stored MESSAGE
 * with such a From. Bindings an "unregister" removed are put back before
 * the next input, so that every input sees the same state.
 * Invariants: every answer is an object (no push layer, so nothing is
 * pending), json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) succeeds, gives
 * ASCII and parses back. Anything else aborts.
 */
#include "admin/admin_int.h"

#include <jansson.h>
#include <stdint.h>

#include "fuzz_stack.h"
#include "sipwake/utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_stack stack;
static struct admin *admin;

static const struct {
	const char *id, *aor, *contact, *received, *user_agent;
} bindings[] = {
	{"00000000000000c1", "sip:alice@example.com",
	 "sip:alice@10.0.0.1:5070;transport=tcp;pn-provider=apns;pn-prid="
	 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90;pn-param="
	 "ABCDE12345.com.example.app.voip",
	 "sip:127.0.0.3:5070;transport=tcp", "Linphone/5.2 (\xc3\xa9t\xc3\xa9)"},
	{"00000000000000c2", "sip:bob@example.com",
	 "sip:b\xffob@10.0.0.2:5080;x=\xe2\x82;pn-provider=fcm;pn-prid=dGVzdA:APA91bH-abc_DEF.123",
	 "sip:127.0.0.4:5080;transport=udp", "Bad\xc0\xafUA\xed\xa0\x80"},
	{"00000000000000c3", "sip:carol@example.com", "sip:carol@10.0.0.3",
	 "sip:127.0.0.5:5060;transport=udp", NULL},
};

static void rebind(void)
{
	for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++)
		if (!registrar_find_id(stack.reg, bindings[i].id) &&
		    !fuzz_stack_bind(&stack, bindings[i].id, bindings[i].aor, bindings[i].contact,
				     bindings[i].received, bindings[i].user_agent))
			abort();
}

static void cleanup(void)
{
	admin_free(admin);
	fuzz_stack_close(&stack);
	su_deinit();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char body[] = "hello \xff";
	struct store_message m = {
		.aor = "sip:alice@example.com",
		.from = "\"J\xf6rg\" <sip:joerg@example.org>;tag=1",
		.to = "<sip:alice@example.com>",
		.call_id = "msg1@example.org",
		.content_type = "text/plain",
		.body = body,
		.body_len = sizeof(body) - 1,
		.received = 1700000000,
		.expires = 4000000000,
	};
	int64_t id;

	log_set_level(SW_LOG_ERROR);
	if (su_init() != 0)
		abort();
	atexit(cleanup);
	if (fuzz_stack_open(&stack, "", NULL) < 0 ||
	    admin_new(&admin, stack.root, &stack.cfg, stack.reg, stack.st) < 0 ||
	    store_message_add(stack.st, &m, &id) < 0)
		abort();
	rebind();
	return 0;
}

static void check_answer(json_t *answer)
{
	char *text;
	json_t *back;

	if (!answer || !json_is_object(answer))
		abort();
	text = json_dumps(answer, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!text)
		abort(); /* the socket would send nothing */
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			abort();
	back = json_loads(text, 0, NULL);
	if (!back)
		abort();
	json_decref(back);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - data) : size;
	uint64_t pending = 0;
	json_t *answer;
	char *line;

	if (len >= ADMIN_MAX_LINE)
		return 0; /* control.c refuses it before admin_command */
	line = malloc(len + 1);
	if (!line)
		return 0;
	memcpy(line, data, len);
	line[len] = '\0';
	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	rebind();
	answer = admin_command(admin, line, &pending);
	if (pending)
		abort(); /* no push layer: no push test can be under way */
	check_answer(answer);
	json_decref(answer);
	free(line);
	return 0;
}
