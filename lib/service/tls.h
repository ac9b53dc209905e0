/*
 * A TLS session (tls.c) as the stream and the tests see it: a handshake over a socket, then
 * the four calls of a stream transport (stream.h's struct rotor__stream_io), and the keys a
 * kernel would take (kTLS), derived so that a test can check them without kernel support.
 */
#ifndef ROTOR__TLS_H
#define ROTOR__TLS_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <rotor/tls.h>

struct rotor__tls;

/* The handshake on fd for ctx's role (server_name: the client's SNI and name to check).
 * 0 and *out, or rotor_tls_connect's errors. Thread: task. Suspends: yes. */
int rotor__tls_handshake(int fd, struct rotor_tls_ctx *ctx, const char *server_name,
                         int64_t deadline, struct rotor__tls **out);

/* The transport calls (stream.h's contract), ctx being a struct rotor__tls. */
ssize_t rotor__tls_read(void *ctx, void *buf, size_t len, int64_t deadline);
ssize_t rotor__tls_writev(void *ctx, const struct iovec *iov, int cnt, int64_t deadline);
int rotor__tls_shutdown(void *ctx, int64_t deadline);
void rotor__tls_destroy(void *ctx);

/* What the handshake settled (rotor/tls.h's accessors, on a session). */
const char *rotor__tls_alpn(const struct rotor__tls *t);
const char *rotor__tls_server_name(const struct rotor__tls *t);
int rotor__tls_version(const struct rotor__tls *t);
const char *rotor__tls_cipher(const struct rotor__tls *t);
int rotor__tls_resumed(const struct rotor__tls *t);
int rotor__tls_verified(const struct rotor__tls *t);
int rotor__tls_ktls(const struct rotor__tls *t);
const char *rotor__tls_error(const struct rotor__tls *t); /* NULL: the thread's last */

/* The key material of one direction as the kernel takes it (struct
 * tls12_crypto_info_aes_gcm_128/256 of <linux/tls.h>), for the next record to be sent (tx)
 * or received (!tx). */
struct rotor__tls_keys {
	int version; /* ROTOR_TLS_1_2 or ROTOR_TLS_1_3 */
	int key_len; /* 16 (AES-128-GCM) or 32 (AES-256-GCM) */
	unsigned char key[32];
	unsigned char salt[4];    /* the first 4 bytes of the nonce */
	unsigned char iv[8];      /* the last 8 (1.3: XORed with the sequence; 1.2: explicit) */
	unsigned char rec_seq[8]; /* the next record's sequence number, big-endian */
};

/* Derive them: 0, -ENOTSUP (not AES-GCM, or the secrets were not kept: kTLS unavailable and
 * no rotor__tls_ctx_keep_keys), -EINVAL. */
int rotor__tls_keys(const struct rotor__tls *t, int tx, struct rotor__tls_keys *out);

/* Keep every session's secrets so that rotor__tls_keys works even where the kernel takes no
 * keys (tests). Before the first handshake. */
void rotor__tls_ctx_keep_keys(struct rotor_tls_ctx *ctx);

/* The per-process kTLS probe, 1 or 0 (rotor_tls_ktls_available). */
int rotor__tls_ktls_probe(void);

#endif
