/*
 * kTLS (ktls.c): the per-process probe, the key material a kernel takes after a handshake
 * (derived from the secrets OpenSSL logs, for TLS 1.2 and 1.3 AES-GCM), installing it on a
 * socket, and the record-typed reads and writes of a socket whose kernel does the crypto.
 * Nothing here knows a session: tls.c passes what each call needs.
 */
#ifndef ROTOR__KTLS_H
#define ROTOR__KTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tls.h"

/* 1 if setsockopt(TCP_ULP, "tls") works here and ROTOR_DISABLE does not name ktls, else 0.
 * Tried once per process (thread-safe). */
int rotor__ktls_probe(void);

/*
 * The kernel's key material from a TLS 1.3 traffic secret (HKDF-Expand-Label "key" and "iv"
 * with digest md_name, e.g. "SHA256") or from a TLS 1.2 master secret (the PRF's key block,
 * client or server half), and the next record's sequence number. 0, -EINVAL (sizes),
 * -ENOMEM, -EPROTO (OpenSSL's KDF failed).
 */
int rotor__ktls_keys13(const unsigned char *secret, size_t secret_len, const char *md_name,
                       int key_len, uint64_t seq, struct rotor__tls_keys *out);
int rotor__ktls_keys12(const unsigned char *master, size_t master_len,
                       const unsigned char client_random[32], const unsigned char server_random[32],
                       const char *md_name, int key_len, int client_side, uint64_t seq,
                       struct rotor__tls_keys *out);

/* Attach the tls ULP to fd (once) and give it the keys of one direction. 0 or -errno. */
int rotor__ktls_install(int fd, const struct rotor__tls_keys *k, int tx, int *ulp_done);

/* A read on a socket whose kernel decrypts: the count of plaintext bytes of one record,
 * with *type its content type (23: data; 21: alert; 22: handshake), 0 at end of stream, or
 * -errno. */
ssize_t rotor__ktls_recv(int fd, void *buf, size_t len, int *type, int64_t deadline);

/* Send a record of content type `type` (the kernel encrypts), all of it. Count or -errno. */
ssize_t rotor__ktls_send_record(int fd, unsigned char type, const void *buf, size_t len,
                                int64_t deadline);

#endif
