/*
 * rotor/tls.h: TLS 1.2 and 1.3 over rotor sockets, with OpenSSL 3. A context holds what many
 * connections share (role, certificate and key, trusted CAs, ALPN, the client's sessions for
 * resumption); rotor_tls_connect and rotor_tls_accept run a handshake on a connected socket
 * and return a buffered stream (rotor/stream.h) that reads and writes plaintext, so a TLS
 * connection is used through the same calls as a plain one. After the handshake the keys go
 * to the kernel (kTLS) where the kernel and the cipher allow; otherwise OpenSSL's record
 * layer encrypts. Present when rotor was built with OpenSSL (libssl-dev): ROTOR_HAVE_TLS
 * in the build, see docs/architecture.md.
 *
 * Errors are negative errnos: -EKEYREJECTED a certificate refused (by this side's
 * verification or by the peer's alert), -EPROTO any other TLS protocol failure (also a
 * stream that ends without close_notify: a truncation), -ETIMEDOUT, -ECANCELED, and the
 * socket's own errors. rotor_tls_error says OpenSSL's reason in words.
 */
#ifndef ROTOR_PUBLIC_TLS_H
#define ROTOR_PUBLIC_TLS_H

#include <rotor/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rotor_tls_ctx;
struct rotor_stream;
struct rotor_stream_config;

/* ---- Contexts ------------------------------------------------------------------------ */

#define ROTOR_TLS_CLIENT 0
#define ROTOR_TLS_SERVER 1

#define ROTOR_TLS_1_2 0x0303 /* rotor_tls_config.min_version, rotor_tls_version */
#define ROTOR_TLS_1_3 0x0304

#define ROTOR_TLS_NO_VERIFY   (1u << 0) /* client: accept any server certificate (tests only) */
#define ROTOR_TLS_VERIFY_PEER (1u << 1) /* server: ask for a client certificate, verify it */
#define ROTOR_TLS_NO_RESUME   (1u << 2) /* client: keep no sessions; server: issue no tickets */
#define ROTOR_TLS_NO_KTLS     (1u << 3) /* never hand the keys to the kernel */

/* All zero but role means defaults. Strings are copied: they need not outlive the call. */
struct rotor_tls_config {
	int role;              /* ROTOR_TLS_CLIENT or ROTOR_TLS_SERVER */
	const char *cert_file; /* PEM certificate chain (server: required; client: optional) */
	const char *key_file;  /* PEM private key of cert_file */
	const char *cert_pem;  /* the same as PEM text in memory, instead of the files */
	const char *key_pem;
	const char *ca_file; /* PEM CAs to verify the peer against; NULL: the system's store */
	const char *alpn;    /* comma-separated protocols in order of preference, e.g.
	                        "h2,http/1.1"; NULL: no ALPN */
	const char *ciphers; /* TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's default */
	const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's default */
	int min_version;          /* ROTOR_TLS_1_2 or ROTOR_TLS_1_3; 0: TLS 1.2 */
	int max_version;          /* 0: TLS 1.3 */
	unsigned flags;           /* ROTOR_TLS_* */
	unsigned sessions;        /* client: sessions kept for resumption, one per server name;
	                             0: 64 */
};

/*
 * rotor_tls_ctx_create - a context for cfg->role: loads the certificate and key (and checks
 * that they match), the CAs (client: the system's store unless ca_file; verification is on
 * unless ROTOR_TLS_NO_VERIFY), the ALPN list and the protocol range. A context is shared by
 * any number of connections on any workers. Returns 0 and *out, or -EINVAL (cfg or out NULL,
 * a bad role, version or flag, a server without a certificate, an unparsable certificate,
 * key, cipher list or ALPN list, a key that does not match its certificate), -ENOENT (a file
 * that does not exist), -EACCES (a file that cannot be read), -ENOMEM. rotor_tls_error(NULL)
 * says why. *out is untouched on failure. Thread: any. Suspends: no (reads files).
 */
ROTOR_API int rotor_tls_ctx_create(const struct rotor_tls_config *cfg, struct rotor_tls_ctx **out);

/* rotor_tls_ctx_destroy - drop the caller's hold on ctx: it is freed when the last
 * connection made with it ends. Returns 0 or -EINVAL (ctx NULL). Thread: any.
 * Suspends: no. */
ROTOR_API int rotor_tls_ctx_destroy(struct rotor_tls_ctx *ctx);

/* ---- Connections --------------------------------------------------------------------- */

/*
 * rotor_tls_connect - the client's handshake on connected socket fd with a client ctx:
 * server_name is sent as SNI (not for an IP literal) and the server's certificate must name
 * it (a DNS name, or the IP literal), unless ROTOR_TLS_NO_VERIFY; NULL sends no SNI and checks
 * no name. A session kept from an earlier connection to server_name is offered for
 * resumption. On success *out is a stream (configured by cfg, NULL: defaults) over the TLS
 * connection: destroying it sends close_notify (if nothing did) and frees the session, but
 * does not close fd.
 * rotor_tls_accept - the server's handshake on an accepted socket fd with a server ctx.
 * The whole handshake must end by deadline. Both return 0, or -EINVAL (fd negative, ctx or
 * out NULL, ctx of the other role), -EKEYREJECTED (a certificate refused), -EPROTO (the
 * handshake failed: no common protocol version or cipher, a malformed message, an alert
 * from the peer, the peer closed), -ETIMEDOUT (deadline), -ECANCELED, -ENOMEM, -EPERM (off a
 * task), or the socket's errors (-ECONNRESET, -EPIPE, ...); rotor_tls_error(NULL) says why.
 * *out is untouched on failure. Thread: task. Suspends: yes.
 */
ROTOR_API int rotor_tls_connect(int fd, struct rotor_tls_ctx *ctx, const char *server_name,
                                const struct rotor_stream_config *cfg, int64_t deadline,
                                struct rotor_stream **out);
ROTOR_API int rotor_tls_accept(int fd, struct rotor_tls_ctx *ctx,
                               const struct rotor_stream_config *cfg, int64_t deadline,
                               struct rotor_stream **out);

/* ---- What a handshake settled -------------------------------------------------------- */

/*
 * On a stream that rotor_tls_connect or rotor_tls_accept made (any other stream: the value
 * for "none" said below). Thread: any (the values are fixed by the handshake). Suspends: no.
 * rotor_tls_alpn - the protocol ALPN chose ("h2"), or NULL when none was.
 * rotor_tls_server_name - the SNI name the client sent (server) or asked for (client), or
 *   NULL.
 * rotor_tls_version - ROTOR_TLS_1_2 or ROTOR_TLS_1_3, or -EINVAL.
 * rotor_tls_cipher - the cipher suite's OpenSSL name ("TLS_AES_128_GCM_SHA256"), or NULL.
 * rotor_tls_resumed - 1 if the handshake resumed an earlier session, 0 if not, or -EINVAL.
 * rotor_tls_verified - 1 if the peer's certificate was verified, 0 if the peer sent none or
 *   verification was off, or -EINVAL.
 * rotor_tls_ktls - which directions the kernel encrypts (ROTOR_TLS_KTLS_TX, _RX), 0 when
 *   OpenSSL's record layer does it all, or -EINVAL.
 */
#define ROTOR_TLS_KTLS_TX (1 << 0)
#define ROTOR_TLS_KTLS_RX (1 << 1)
ROTOR_API const char *rotor_tls_alpn(const struct rotor_stream *s);
ROTOR_API const char *rotor_tls_server_name(const struct rotor_stream *s);
ROTOR_API int rotor_tls_version(const struct rotor_stream *s);
ROTOR_API const char *rotor_tls_cipher(const struct rotor_stream *s);
ROTOR_API int rotor_tls_resumed(const struct rotor_stream *s);
ROTOR_API int rotor_tls_verified(const struct rotor_stream *s);
ROTOR_API int rotor_tls_ktls(const struct rotor_stream *s);

/*
 * rotor_tls_error - OpenSSL's reason for the last TLS failure, in words ("certificate verify
 * failed: self-signed certificate", "unexpected eof while reading"): with s, the last failure
 * on that stream; with NULL, the last failure of a TLS call on the calling thread (a failed
 * rotor_tls_connect, say: read it before the task suspends again, other tasks of the worker
 * share it). "" when there is none. The string stays valid until the next TLS call on that
 * stream or thread. Thread: any. Suspends: no.
 */
ROTOR_API const char *rotor_tls_error(const struct rotor_stream *s);

/*
 * rotor_tls_ktls_available - whether this kernel takes TLS keys (setsockopt TCP_ULP "tls" on
 * a loopback TCP connection, tried once per process; ROTOR_DISABLE=ktls says no). 1 or 0.
 * Thread: any. Suspends: no.
 */
ROTOR_API int rotor_tls_ktls_available(void);

#ifdef __cplusplus
}
#endif

#endif /* ROTOR_PUBLIC_TLS_H */
