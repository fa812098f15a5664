/* SPDX-License-Identifier: MIT */
/* INVITEs answered 2xx, remembered for 64*T1 (accepted.c); proxy_absorb in proxy.h. */
#ifndef SIPWAKE_SIP_ACCEPTED_H
#define SIPWAKE_SIP_ACCEPTED_H

#include <sofia-sip/sip.h>
#include <sofia-sip/msg.h>

/* req's transaction has its 2xx, ok (taken; a reference is enough). */
void accepted_add(const sip_t *req, msg_t *ok);
/* Forget them all (at shutdown). */
void accepted_clear(void);

#endif
