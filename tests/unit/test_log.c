/* SPDX-License-Identifier: MIT */
/*
 * Unit test of src/core/log.c's token masking: pn-prid and pn-tok values in
 * SIP text are shortened like log_token() (each part of a Linphone
 * two-token value on its own), everything else is left as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "sipwake/log.h"

#include "check.h"

static void expect(const char *in, const char *want)
{
	char *buf = strdup(in);

	log_mask_tokens(buf);
	CHECK_MSG(strcmp(buf, want) == 0, "\n  in:   %s\n  got:  %s\n  want: %s", in, buf, want);
	free(buf);
}

int main(void)
{
	expect("Contact: <sip:a@h;pn-provider=fcm;pn-prid=abcdef0123456789xyz;pn-param=p>",
	       "Contact: <sip:a@h;pn-provider=fcm;pn-prid=abcd...9xyz;pn-param=p>");
	expect("pn-prid=11112222333344445555:remote&aaaabbbbccccddddeeee:voip;pn-param=T.b.remote&voip",
	       "pn-prid=1111...5555:remote&aaaa...eeee:voip;pn-param=T.b.remote&voip");
	expect("<sip:x@h;PN-TOK=0123456789abcdef0123>", "<sip:x@h;PN-TOK=0123...0123>");
	expect("pn-prid=short;", "pn-prid=****;");
	expect("pn-prid=;x", "pn-prid=;x");
	expect("no tokens here: pn-provider=apns", "no tokens here: pn-provider=apns");
	expect("a pn-prid=0123456789abcdefgh and pn-prid=ZYXWVUTSRQPONMLK end",
	       "a pn-prid=0123...efgh and pn-prid=ZYXW...NMLK end");
	return CHECK_RESULT();
}
