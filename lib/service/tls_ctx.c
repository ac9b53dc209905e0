/*
 * TLS contexts (tls_ctx.c): what many sessions share, loaded once (certificate, key, CAs,
 * ALPN, protocol range), and the client's sessions kept for resumption, one per server name,
 * shared by every worker under one lock. Sessions (tls.c) hold a reference each.
 */
#include <rotor.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ktls.h"
#include "tls_ctx.h"

__thread char rotor__tls_reason[ROTOR__TLS_REASON];

/* ---- Client sessions for resumption ---------------------------------------------------- */

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct rotor_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *name = rotor__tls_session_name(ssl);
	if (!ctx || !name || !ctx->nslots || !SSL_SESSION_is_resumable(sess))
		return 0;
	pthread_mutex_lock(&ctx->lock);
	struct rotor__tls_slot *victim = &ctx->slots[0];
	for (unsigned i = 0; i < ctx->nslots; i++) {
		struct rotor__tls_slot *s = &ctx->slots[i];
		if (s->name && !strcmp(s->name, name)) {
			victim = s;
			break;
		}
		if (!s->name || s->used < victim->used)
			victim = s;
		if (!s->name)
			break;
	}
	if (!victim->name || strcmp(victim->name, name)) {
		free(victim->name);
		victim->name = strdup(name);
	}
	if (victim->sess)
		SSL_SESSION_free(victim->sess);
	victim->sess = victim->name ? sess : NULL;
	victim->used = ++ctx->tick;
	pthread_mutex_unlock(&ctx->lock);
	return victim->sess != NULL; /* 1: the reference is the slot's now */
}

void rotor__tls_ctx_offer(struct rotor_tls_ctx *ctx, SSL *ssl, const char *name)
{
	SSL_SESSION *s = NULL;
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < ctx->nslots; i++)
		if (ctx->slots[i].name && !strcmp(ctx->slots[i].name, name)) {
			s = ctx->slots[i].sess;
			ctx->slots[i].used = ++ctx->tick;
			if (s)
				SSL_SESSION_up_ref(s);
			break;
		}
	pthread_mutex_unlock(&ctx->lock);
	if (s) {
		SSL_set_session(ssl, s);
		SSL_SESSION_free(s);
	}
}

/* ---- Contexts ------------------------------------------------------------------------ */

static int ctx_fail(SSL_CTX *ssl, int err, const char *what)
{
	unsigned long code = ERR_get_error();
	char why[ROTOR__TLS_REASON / 2] = "";
	if (code)
		ERR_error_string_n(code, why, sizeof(why));
	ERR_clear_error();
	snprintf(rotor__tls_reason, ROTOR__TLS_REASON, "%s%s%s", what, *why ? ": " : "", why);
	SSL_CTX_free(ssl);
	return err;
}

/* A file that is missing or unreadable is said by errno, not by OpenSSL's parse error. */
static int file_error(const char *path)
{
	return access(path, F_OK) < 0 ? -ENOENT : access(path, R_OK) < 0 ? -EACCES : 0;
}

static int load_pem_chain(SSL_CTX *ssl, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int ok = x && SSL_CTX_use_certificate(ssl, x) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		if (SSL_CTX_add0_chain_cert(ssl, x) != 1) {
			X509_free(x);
			ok = 0;
		}
	ERR_clear_error(); /* the end of the chain reads as "no start line" */
	BIO_free(b);
	return ok;
}

static int load_pem_key(SSL_CTX *ssl, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	int ok = k && SSL_CTX_use_PrivateKey(ssl, k) == 1;
	EVP_PKEY_free(k);
	BIO_free(b);
	return ok;
}

static int alpn_wire(const char *list, unsigned char *out, size_t *len)
{
	size_t n = 0;
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l == 0 || l > 255 || n + 1 + l > 256)
			return -EINVAL;
		out[n++] = (unsigned char)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == ',')
			p++;
	}
	*len = n;
	return n ? 0 : -EINVAL;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
	struct rotor_tls_ctx *ctx = arg;
	unsigned char *o;
	(void)ssl;
	/* The server's order of preference, the first it shares with the client. */
	if (SSL_select_next_proto(&o, outlen, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static int proto_version(int v, int dflt)
{
	return v == 0               ? dflt
	       : v == ROTOR_TLS_1_2 ? TLS1_2_VERSION
	       : v == ROTOR_TLS_1_3 ? TLS1_3_VERSION
	                            : -1;
}

int rotor_tls_ctx_create(const struct rotor_tls_config *cfg, struct rotor_tls_ctx **out)
{
	const unsigned all =
	    ROTOR_TLS_NO_VERIFY | ROTOR_TLS_VERIFY_PEER | ROTOR_TLS_NO_RESUME | ROTOR_TLS_NO_KTLS;
	if (!cfg || !out || (cfg->role != ROTOR_TLS_CLIENT && cfg->role != ROTOR_TLS_SERVER) ||
	    (cfg->flags & ~all))
		return -EINVAL;
	bool server = cfg->role == ROTOR_TLS_SERVER;
	int minv = proto_version(cfg->min_version, TLS1_2_VERSION);
	int maxv = proto_version(cfg->max_version, TLS1_3_VERSION);
	if (minv < 0 || maxv < 0 || minv > maxv)
		return -EINVAL;
	const char *cert = cfg->cert_file, *key = cfg->key_file;
	if ((cert && cfg->cert_pem) || (key && cfg->key_pem) ||
	    (!cert && !cfg->cert_pem) != (!key && !cfg->key_pem)) {
		snprintf(rotor__tls_reason, ROTOR__TLS_REASON, "a certificate needs its key, once");
		return -EINVAL;
	}
	if (server && !cert && !cfg->cert_pem) {
		snprintf(rotor__tls_reason, ROTOR__TLS_REASON,
		         "a server needs a certificate and a key");
		return -EINVAL;
	}
	int fe = cert ? file_error(cert) : 0;
	fe = fe ? fe : key ? file_error(key) : 0;
	fe = fe ? fe : cfg->ca_file ? file_error(cfg->ca_file) : 0;
	if (fe) {
		snprintf(rotor__tls_reason, ROTOR__TLS_REASON, "%s", strerror(-fe));
		return fe;
	}
	SSL_CTX *ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ssl)
		return ctx_fail(NULL, -ENOMEM, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ssl, minv);
	SSL_CTX_set_max_proto_version(ssl, maxv);
	SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION |
	                             (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	if (cfg->ciphers && SSL_CTX_set_cipher_list(ssl, cfg->ciphers) != 1)
		return ctx_fail(ssl, -EINVAL, "ciphers");
	if (cfg->ciphersuites && SSL_CTX_set_ciphersuites(ssl, cfg->ciphersuites) != 1)
		return ctx_fail(ssl, -EINVAL, "ciphersuites");
	if (cert && SSL_CTX_use_certificate_chain_file(ssl, cert) != 1)
		return ctx_fail(ssl, -EINVAL, cert);
	if (cfg->cert_pem && !load_pem_chain(ssl, cfg->cert_pem))
		return ctx_fail(ssl, -EINVAL, "cert_pem");
	if (key && SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ssl, -EINVAL, key);
	if (cfg->key_pem && !load_pem_key(ssl, cfg->key_pem))
		return ctx_fail(ssl, -EINVAL, "key_pem");
	if ((cert || cfg->cert_pem) && SSL_CTX_check_private_key(ssl) != 1)
		return ctx_fail(ssl, -EINVAL, "the key does not match the certificate");
	bool verify = server ? (cfg->flags & ROTOR_TLS_VERIFY_PEER) != 0
	                     : !(cfg->flags & ROTOR_TLS_NO_VERIFY);
	if (cfg->ca_file && SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL) != 1)
		return ctx_fail(ssl, -EINVAL, cfg->ca_file);
	if (!cfg->ca_file && verify && SSL_CTX_set_default_verify_paths(ssl) != 1)
		return ctx_fail(ssl, -EINVAL, "the system's certificate store");
	if (server && verify && cfg->ca_file) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ssl, names);
	}
	SSL_CTX_set_verify(ssl,
	                   !verify  ? SSL_VERIFY_NONE
	                   : server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
	                            : SSL_VERIFY_PEER,
	                   NULL);

	struct rotor_tls_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return ctx_fail(ssl, -ENOMEM, "out of memory");
	ctx->ssl = ssl;
	SSL_CTX_set_app_data(ssl, ctx);
	ctx->role = cfg->role;
	ctx->flags = cfg->flags;
	atomic_init(&ctx->refs, 1);
	pthread_mutex_init(&ctx->lock, NULL);
	if (cfg->alpn && alpn_wire(cfg->alpn, ctx->alpn, &ctx->alpn_len) < 0) {
		rotor_tls_ctx_destroy(ctx);
		snprintf(rotor__tls_reason, ROTOR__TLS_REASON, "a bad ALPN list: %s", cfg->alpn);
		return -EINVAL;
	}
	if (ctx->alpn_len && server)
		SSL_CTX_set_alpn_select_cb(ssl, select_alpn, ctx);
	else if (ctx->alpn_len && SSL_CTX_set_alpn_protos(ssl, ctx->alpn, (unsigned)ctx->alpn_len))
		return rotor_tls_ctx_destroy(ctx), -ENOMEM;
	if (server) {
		SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"rotor", 5);
		/* Resumption by tickets only, as nginx does by default: the server keeps no
		 * session (OpenSSL's internal cache costs a locked hash insert per handshake and
		 * a sweep of it), and sends one TLS 1.3 ticket, not OpenSSL's default two (each
		 * is a new session encrypted and sent). bench_https: handshakes per server
		 * CPU-second, architecture section 16. */
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ssl, 1);
		if (cfg->flags & ROTOR_TLS_NO_RESUME) {
			SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
			SSL_CTX_set_num_tickets(ssl, 0);
		}
	} else if (!(cfg->flags & ROTOR_TLS_NO_RESUME)) {
		ctx->nslots = cfg->sessions ? cfg->sessions : 64;
		ctx->slots = calloc(ctx->nslots, sizeof(*ctx->slots));
		if (!ctx->slots)
			return rotor_tls_ctx_destroy(ctx), -ENOMEM;
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_CLIENT |
		                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ssl, on_new_session);
	}
	ctx->ktls = !(cfg->flags & ROTOR_TLS_NO_KTLS) && rotor__ktls_probe();
	if (ctx->ktls)
		rotor__tls_ctx_keep_keys(ctx);
	*out = ctx;
	return 0;
}

void rotor__tls_ctx_keep_keys(struct rotor_tls_ctx *ctx)
{
	ctx->keep_keys = true;
	SSL_CTX_set_keylog_callback(ctx->ssl, rotor__tls_on_keylog);
}

void rotor__tls_ctx_unref(struct rotor_tls_ctx *ctx)
{
	if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < ctx->nslots; i++) {
		free(ctx->slots[i].name);
		SSL_SESSION_free(ctx->slots[i].sess);
	}
	free(ctx->slots);
	pthread_mutex_destroy(&ctx->lock);
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

int rotor_tls_ctx_destroy(struct rotor_tls_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	rotor__tls_ctx_unref(ctx);
	return 0;
}

int rotor_tls_ktls_available(void)
{
	return rotor__ktls_probe();
}

int rotor__tls_ktls_probe(void)
{
	return rotor__ktls_probe();
}
