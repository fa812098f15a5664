/* SPDX-License-Identifier: MIT */
/*
 * Workaround for a leak in sofia-sip 1.12.11 (tport_tls.c): tls_free()
 * calls SSL_shutdown() on a closed TLS connection but never SSL_free(), so
 * every TLS connection a phone closes leaks its SSL object (~65 KiB), and
 * iOS phones reconnect over TLS after every wake-up.
 *
 * This file is linked into sipwaked itself (not the layer library) and
 * interposes SSL_shutdown(). When the caller is sofia's tls_free() (the
 * return address lies inside that function of libsofia-sip: dladdr1 gives
 * its symbol and size), tls_free then does BIO_free(bio) and, for
 * connections, SSL_CTX_free(ctx) on the shared context. So: take one more
 * reference on the BIO and on the context (those two calls release them),
 * then SSL_free() the connection. Any other caller passes through
 * untouched: libcurl (it frees its own) and sofia's other caller,
 * stun_process_error_response(), whose SSL is not ours to free. This
 * relies on 1.12.11's tls_free() never freeing the SSL itself; a sofia that
 * does needs this file removed (the TLS test under LeakSanitizer and
 * AddressSanitizer tells either way).
 */
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include <openssl/ssl.h>

typedef int ssl_shutdown_fn(SSL *s);

/* True when ret is inside libsofia-sip's tls_free() (not merely near it). */
static int called_from_tls_free(const void *ret)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;

	if (!dladdr1(ret, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_fname ||
	    !strstr(info.dli_fname, "libsofia-sip") || !info.dli_sname || !sym ||
	    strcmp(info.dli_sname, "tls_free") != 0)
		return 0;
	return (const char *)ret - (const char *)info.dli_saddr < (ptrdiff_t)sym->st_size;
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
	if (s && called_from_tls_free(__builtin_return_address(0))) {
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
