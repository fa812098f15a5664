/* SPDX-License-Identifier: MIT */
/*
 * The gate every message passes before sipwake copies, forks or relays it:
 * is it something sofia can serialize again? sofia-sip 1.12.11's parser
 * keeps a repeated single-instance header that is not critical (Subject,
 * Max-Forwards, Priority, User-Agent, Expires, ...) chained behind the
 * first one, and its serializer asserts (abort) when such a message, or a
 * copy of it, is sent. Critical ones (Call-ID, CSeq, From, To,
 * Content-Length) nta already answers with 400 itself. The agent runs this
 * check on every request before the handler sees it, and the forwarding
 * engine on every response before it is relayed, so no forwarding path
 * can miss it.
 */
#include "sipwake/sip.h"

#include <stdio.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_protos.h>

const char *sip_msg_unsendable(msg_t *msg, char *why, size_t len)
{
	msg_header_t **head = msg ? msg_chain_head(msg) : NULL;
	sip_t const *sip = sip_object(msg);

	if (!sip)
		return NULL;
	if (sip->sip_flags & MSG_FLG_ERROR) {
		snprintf(why, len, "Malformed Message");
		return why;
	}
	/*
	 * A header of a single-instance class that is not the one its slot in
	 * sip_t points to is a repeat: sofia leaves it in the fragment chain,
	 * where copies and the serializer trip over it. One pass, O(headers).
	 */
	for (msg_header_t *h = head ? *head : NULL; h; h = h->sh_succ) {
		msg_hclass_t *hc = h->sh_class;
		msg_header_t **slot;

		if (!hc || hc->hc_kind != msg_kind_single)
			continue;
		slot = msg_hclass_offset(msg_mclass(msg), (msg_pub_t const *)sip, hc);
		if (h->sh_next || (slot && *slot != h)) {
			snprintf(why, len, "Repeated %s Header", hc->hc_name ? hc->hc_name : "Single");
			return why;
		}
	}
	return NULL;
}
