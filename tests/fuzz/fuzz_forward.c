/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: sofia-parsed messages through sipwake's forwarding
 * gate (sip_msg_unsendable) and, when the gate lets them pass, through
 * what every forwarding path then does to them: a request is copied,
 * its Max-Forwards decremented, a Route popped, a Record-Route and a Path
 * inserted, and the copy serialized as nta does before sending; a response
 * loses its top Via and is serialized in place and as a duplicate (the
 * stateless relay of a later 2xx). sofia asserts (abort) on a message it
 * cannot serialize, so any input the gate lets through that aborts here
 * is a remote crash of sipwaked.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_util.h>

#include "sipwake/sip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void send_like_nta(msg_t *msg)
{
	sip_t *sip = sip_object(msg);

	if (msg_serialize(msg, (msg_pub_t *)sip) == 0)
		msg_prepare(msg);
}

static void forward_request(msg_t *in)
{
	msg_t *fwd = msg_copy(in);
	sip_t *sip;
	sip_record_route_t *rr;
	sip_path_t *path;

	if (!fwd)
		return;
	sip = sip_object(fwd);
	if (sip_decrement_max_forwards(fwd, sip) == 0) {
		if (sip->sip_route)
			sip_route_remove(fwd, sip);
		rr = sip_record_route_make(msg_home(fwd), "<sip:127.0.0.1:5060;transport=udp;lr;swb=1>");
		if (rr)
			msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)rr);
		path = sip_path_make(msg_home(fwd), "<sip:127.0.0.1:5060;lr>");
		if (path)
			msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)path);
		send_like_nta(fwd);
	}
	msg_destroy(fwd);
}

static void relay_response(msg_t *in)
{
	sip_t *sip = sip_object(in);
	msg_t *dup;

	sip_via_remove(in, sip);
	dup = msg_dup(in);
	send_like_nta(in);
	if (dup) {
		send_like_nta(dup);
		msg_destroy(dup);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msg_t *msg = msg_make(sip_default_mclass(), 0, data, size);
	sip_t *sip;
	char why[64];

	if (!msg)
		return 0;
	sip = sip_object(msg);
	/* What nta refuses (or drops) before sipwake sees it. */
	if (!sip || sip_sanity_check(sip) < 0 || (sip->sip_flags & MSG_FLG_ERROR))
		goto out;
	if (sip_msg_unsendable(msg, why, sizeof(why)))
		goto out;
	if (sip->sip_request)
		forward_request(msg);
	else
		relay_response(msg);
out:
	msg_destroy(msg);
	return 0;
}
