/*
 * What tls.c (sessions) and tls_ctx.c (contexts) share: the context's fields, the calling
 * thread's last reason, and the few calls each makes of the other.
 */
#ifndef ROTOR__TLS_CTX_H
#define ROTOR__TLS_CTX_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROTOR__TLS_REASON 256

struct rotor__tls_slot {
	char *name; /* server name; NULL: free */
	SSL_SESSION *sess;
	uint64_t used;
};

struct rotor_tls_ctx {
	SSL_CTX *ssl;
	int role;
	unsigned flags;
	atomic_int refs; /* the creator's and one per session */
	bool ktls;       /* the kernel takes keys, and the flags allow it */
	bool keep_keys;  /* sessions keep their secrets (kTLS, or tests) */
	unsigned char alpn[256];
	size_t alpn_len;      /* the ALPN list in wire format (length-prefixed names) */
	pthread_mutex_t lock; /* the client's sessions, shared by every worker */
	unsigned nslots;
	uint64_t tick;
	struct rotor__tls_slot *slots;
};

/* The calling thread's last TLS failure in words (rotor_tls_error(NULL)). */
extern __thread char rotor__tls_reason[ROTOR__TLS_REASON];

/* tls_ctx.c: drop a reference (the last frees ctx); offer the session kept for name to ssl. */
void rotor__tls_ctx_unref(struct rotor_tls_ctx *ctx);
void rotor__tls_ctx_offer(struct rotor_tls_ctx *ctx, SSL *ssl, const char *name);

/* tls.c: the server name a client session was opened for, or NULL; OpenSSL's key-log
 * callback, which keeps a session's TLS 1.3 traffic secrets for the kernel. */
const char *rotor__tls_session_name(const SSL *ssl);
void rotor__tls_on_keylog(const SSL *ssl, const char *line);

#endif
