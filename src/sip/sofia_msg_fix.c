/* SPDX-License-Identifier: MIT */
/*
 * Fix for sofia-sip 1.12.11's stream parser (msg_parser.c): nta sets the
 * agent's size limit (NTATAG_MAXSIZE) only on the first message it creates
 * for a read; every further message parsed from the same TCP/TLS read comes
 * from msg_next(), which creates it with no limit at all. A write holding a
 * small request followed by one with "Content-Length: 4294967295" and a few
 * body bytes then reaches msg_extract_payload() unbounded: a wild write
 * (SIGSEGV), su_alloc's size assertion (SIGABRT) or, with a merely huge
 * length, that much memory per message.
 *
 * This file is linked into sipwaked itself (not the layer library) and
 * interposes msg_next(): libsofia's own call from tport_parse() goes
 * through its PLT, so it reaches this function, which calls the real one
 * and gives the new message the size limit of the one it follows. Nothing
 * else changes: the next message is parsed exactly as before, and one over
 * the limit is refused the way the first one of a read already was (sofia
 * stops reading from that connection).
 */
#include <dlfcn.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>

typedef msg_t *msg_next_fn(msg_t *msg);

msg_t *msg_next(msg_t *msg)
{
	static msg_next_fn *real;
	msg_t *next;

	if (!real)
		real = (msg_next_fn *)dlsym(RTLD_NEXT, "msg_next");
	if (!real)
		return NULL;
	next = real(msg);
	if (next && msg)
		msg_maxsize(next, msg_maxsize(msg, 0)); /* msg_maxsize(m, 0) only reads */
	return next;
}
