/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the admin layer's pure parts: AOR canonicalisation
 * (src/admin/commands.c), the listen-address parser the metrics endpoint
 * and the config loader share (config_parse_listen), and the display of a
 * Contact without its push parameters. The socket side is covered by
 * tests/integration/test_admin.py against the real daemon.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/commands.c"
#include "check.h"


static void test_aor(void)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"alice@example.com", "sip:alice@example.com"},
		{"sip:alice@EXAMPLE.com", "sip:alice@example.com"},
		{"SIPS:Alice@Example.COM", "sip:Alice@example.com"},
		{"example.com", "sip:example.com"},
	};
	static const char *const bad[] = {"", "sip:", "alice@", "@example.com",
					  "alice@example.com;transport=tcp", "a b@c", "<sip:a@b>"};
	char buf[64];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int rc = admin_canonical_aor(ok[i].in, buf, sizeof(buf));
		CHECK_MSG(rc == 0 && !strcmp(buf, ok[i].out), "%s -> %s (rc %d)", ok[i].in,
		      rc == 0 ? buf : "-", rc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(admin_canonical_aor(bad[i], buf, sizeof(buf)) < 0, "\"%s\" refused", bad[i]);
	CHECK_MSG(admin_canonical_aor("averyveryverylongusername@example.com", buf, 16) < 0,
	      "too long for the buffer");
}

static void test_listen(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[64];

	CHECK_MSG(config_parse_listen("127.0.0.1:9090", &ss, &len) == 0 && ss.ss_family == AF_INET &&
		      ntohs(((struct sockaddr_in *)&ss)->sin_port) == 9090,
	      "IPv4");
	CHECK_MSG(config_parse_listen("[::1]:0", &ss, &len) == 0 && ss.ss_family == AF_INET6 &&
		      len == sizeof(struct sockaddr_in6),
	      "IPv6, port 0");
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
	CHECK_MSG(!strcmp(ip, "::1"), "IPv6 address %s", ip);
	CHECK_MSG(config_parse_listen("0.0.0.0:65535", &ss, &len) == 0, "any, top port");
	static const char *const bad[] = {"",	   "9090",	   "localhost:9090", "127.0.0.1",
					  "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:90x",
					  "::1:9090",  "[::1]9090",       "[::1]:",
					  "1.2.3.4:-1", "[127.0.0.1]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(config_parse_listen(bad[i], &ss, &len) < 0, "\"%s\" refused", bad[i]);
}

static void test_contact(void)
{
	char *c = display_contact("sip:bob@10.0.0.1:5060;transport=tcp;pn-provider=fcm;"
				  "pn-prid=SECRETTOKEN;pn-param=proj");
	CHECK_MSG(c && !strcmp(c, "sip:bob@10.0.0.1:5060;transport=tcp"), "%s", c ? c : "NULL");
	free(c);
	c = display_contact("sip:bob@10.0.0.1;pn-type=apple;pn-tok=SECRET;app-id=x");
	CHECK_MSG(c && !strcmp(c, "sip:bob@10.0.0.1"), "%s", c ? c : "NULL");
	free(c);
	c = display_contact("sip:bob@10.0.0.1");
	CHECK_MSG(c && !strcmp(c, "sip:bob@10.0.0.1"), "%s", c ? c : "NULL");
	free(c);
}

int main(void)
{
	test_aor();
	test_listen();
	test_contact();
	if (failures) {
		printf("test_admin: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_admin: all checks passed\n");
	return 0;
}
