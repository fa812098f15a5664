/* SPDX-License-Identifier: MIT */
/*
 * Workaround for a leak in sofia-sip 1.12.11 (tport_tls.c): tls_free()
 * calls SSL_shutdown() on a closed TLS connection but never SSL_free(), so
 * every TLS connection a phone closes leaks its SSL object (~65 KiB), and
 * iOS phones reconnect over TLS after every wake-up.
 *
 * This file is linked into sipwaked itself (not the layer library) and
 * interposes SSL_shutdown(). When the caller is libsofia-sip, the only
 * place it calls it is tls_free(), which then does BIO_free(bio) and, for
 * connections, SSL_CTX_free(ctx) on the shared context. So: take one more
 * reference on the BIO and on the context (those two calls release them),
 * then SSL_free() the connection. SSL objects of anybody else (libcurl
 * closes its own with SSL_free) pass through untouched.
 */
#include <dlfcn.h>
#include <string.h>

#include <openssl/ssl.h>

typedef int ssl_shutdown_fn(SSL *s);

static int called_from_sofia(const void *ret)
{
	Dl_info info;

	return dladdr(ret, &info) && info.dli_fname && strstr(info.dli_fname, "libsofia-sip");
}

int SSL_shutdown(SSL *s)
{
	static ssl_shutdown_fn *real;
	int rc;

	if (!real)
		real = (ssl_shutdown_fn *)dlsym(RTLD_NEXT, "SSL_shutdown");
	if (!real)
		return -1;
	rc = real(s);
	if (s && called_from_sofia(__builtin_return_address(0))) {
		BIO *rbio = SSL_get_rbio(s);
		BIO *wbio = SSL_get_wbio(s);
		SSL_CTX *ctx = SSL_get_SSL_CTX(s);

		if (rbio)
			BIO_up_ref(rbio);
		if (wbio && wbio != rbio)
			BIO_up_ref(wbio);
		if (ctx)
			SSL_CTX_up_ref(ctx);
		SSL_free(s);
	}
	return rc;
}
