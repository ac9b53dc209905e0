/*
 * TLS sessions over rotor sockets, with OpenSSL 3. OpenSSL never touches the socket: its BIO
 * reads ciphertext from the session's receive buffer and appends what it writes to the
 * session's send buffer, and never blocks (a read with nothing buffered says "retry"). The
 * session moves ciphertext with rotor_recv and rotor_send between OpenSSL's calls, so every
 * wait is an ordinary rotor wait with its deadline and cancellation, outside OpenSSL's
 * stack, and a deadline loses nothing (docs/architecture.md: why not a BIO that suspends).
 * After the handshake the keys may go to the kernel (ktls.c); then reads and writes move
 * plaintext and OpenSSL only set the session up. Invariant: tx[tx_off, tx_len) is
 * ciphertext OpenSSL produced that is not sent yet, rx[rx_off, rx_len) ciphertext received
 * that OpenSSL has not read yet.
 */
#include <rotor.h>

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ktls.h"
#include "tls_ctx.h"
#include "stream.h"
#include "tls.h"

#define RX_CAP    (32 * 1024) /* a recv's room: two full records */
#define PLAIN_CAP (16 * 1024) /* a record's plaintext: small iovecs are gathered into one */
#define TX_FLUSH  (64 * 1024) /* a long write goes out in sends of about this much */
#define REASON    ROTOR__TLS_REASON

struct rotor__tls {
	SSL *ssl;
	struct rotor_tls_ctx *ctx;
	int fd;
	int rerr, werr;          /* sticky: reads (a protocol error), writes (a failed send) */
	bool eof;                /* the socket's recv returned 0 */
	bool closed;             /* close_notify received: reads return 0 */
	bool sent_close;         /* close_notify sent */
	bool established;        /* the handshake ended */
	bool track;              /* keep secrets and count records, for the kernel's keys */
	bool reading;            /* a task waits in fill_rx (a read and a write may overlap) */
	bool sending;            /* a task waits in flush_tx: the kernel reads inflight */
	unsigned char *inflight; /* the buffer a send in flight reads: tx, or an older one */
	int ktls;                /* ROTOR_TLS_KTLS_* */
	int ulp;                 /* the tls ULP is attached */
	char *name;              /* the client's server name */
	unsigned char *rx, *tx, *plain;
	size_t rx_off, rx_len, tx_off, tx_len, tx_cap;
	/* TLS 1.3 traffic secrets and records since each direction's key was set, [0] sent and
	 * [1] received (TLS 1.2: since its ChangeCipherSpec). */
	unsigned char secret[2][64];
	size_t secret_len[2];
	uint64_t seq[2];
	char alpn[256];
	char reason[REASON];
};

/* ---- The BIO between OpenSSL and the session's buffers --------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
	struct rotor__tls *t = BIO_get_data(b);
	size_t have = t->rx_len - t->rx_off;
	BIO_clear_retry_flags(b);
	if (have == 0) {
		if (t->eof)
			return 0; /* OpenSSL: "unexpected eof" unless close_notify came first */
		BIO_set_retry_read(b);
		return -1;
	}
	size_t n = have < (size_t)len ? have : (size_t)len;
	memcpy(out, t->rx + t->rx_off, n);
	t->rx_off += n;
	return (int)n;
}

static int bio_write(BIO *b, const char *in, int len)
{
	struct rotor__tls *t = BIO_get_data(b);
	size_t n = (size_t)len;
	BIO_clear_retry_flags(b);
	if (t->tx_len + n > t->tx_cap) {
		if (t->tx_off && !t->sending) {
			memmove(t->tx, t->tx + t->tx_off, t->tx_len - t->tx_off);
			t->tx_len -= t->tx_off;
			t->tx_off = 0;
		}
		size_t cap = t->tx_cap ? t->tx_cap : 4096;
		while (cap < t->tx_len + n)
			cap *= 2;
		if (cap != t->tx_cap) {
			/* A send in flight reads the old buffer: it stays until the send ends. */
			unsigned char *p = t->sending ? malloc(cap) : realloc(t->tx, cap);
			if (!p)
				return -1;
			if (t->sending) {
				memcpy(p, t->tx, t->tx_len);
				if (t->tx != t->inflight)
					free(t->tx);
			}
			t->tx = p;
			t->tx_cap = cap;
		}
	}
	memcpy(t->tx + t->tx_len, in, n);
	t->tx_len += n;
	return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct rotor__tls *t = BIO_get_data(b);
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the session sends once OpenSSL returns */
	case BIO_CTRL_PENDING:
		return (long)(t->rx_len - t->rx_off);
	case BIO_CTRL_EOF:
		return t->eof && t->rx_off == t->rx_len;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void make_bio_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rotor");
	if (m && BIO_meth_set_read(m, bio_read) && BIO_meth_set_write(m, bio_write) &&
	    BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
		bio_method = m;
	else
		BIO_meth_free(m);
}

/* ---- Errors -------------------------------------------------------------------------- */

static void set_reason(char *dst, const char *why)
{
	snprintf(dst, REASON, "%s", why);
	if (dst != rotor__tls_reason)
		snprintf(rotor__tls_reason, REASON, "%s", why);
}

/* Alerts that refuse a certificate (RFC 8446 6.2). */
static bool certificate_alert(int alert)
{
	return (alert >= 42 && alert <= 46) || alert == 48 || alert == 49 || alert == 116;
}

/* The negative errno for OpenSSL's failure e (SSL_get_error), its reason kept in the
 * session and the thread; OpenSSL's error queue is left empty. */
static int tls_fail(struct rotor__tls *t, int e)
{
	unsigned long code = ERR_get_error(); /* the first: the cause, not its echoes */
	char why[REASON];
	int r = -EPROTO;
	if (code) {
		int lib = ERR_GET_LIB(code), rs = ERR_GET_REASON(code);
		const char *s = ERR_reason_error_string(code);
		if (s)
			snprintf(why, sizeof(why), "%s", s);
		else
			ERR_error_string_n(code, why, sizeof(why));
		if (lib == ERR_LIB_SSL && rs == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
			r = -EKEYREJECTED; /* a server that asks for one (ROTOR_TLS_VERIFY_PEER) */
		} else if (lib == ERR_LIB_SSL && rs == SSL_R_CERTIFICATE_VERIFY_FAILED) {
			r = -EKEYREJECTED;
			snprintf(why, sizeof(why), "certificate verify failed: %s",
			         X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		} else if (lib == ERR_LIB_SSL && rs > SSL_AD_REASON_OFFSET &&
		           certificate_alert(rs - SSL_AD_REASON_OFFSET)) {
			r = -EKEYREJECTED;
		} else if (rs == ERR_R_MALLOC_FAILURE) {
			r = -ENOMEM;
		}
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(why, sizeof(why), "the peer sent close_notify during the handshake");
	} else {
		snprintf(why, sizeof(why), "%s",
		         t->eof ? "unexpected eof while reading" : "TLS failure without a reason");
	}
	ERR_clear_error();
	set_reason(t->reason, why);
	return r;
}

/* ---- Moving ciphertext ---------------------------------------------------------------- */

static int flush_tx(struct rotor__tls *t, int64_t deadline)
{
	if (t->ktls & ROTOR_TLS_KTLS_TX) {
		/* OpenSSL's own records (a KeyUpdate's answer) would carry stale sequence
		 * numbers: with the kernel encrypting, they are dropped. */
		t->tx_off = t->tx_len = 0;
		return 0;
	}
	if (t->werr)
		return t->werr;
	/* A read and a write may overlap: what one appends while the other's send is in
	 * flight, that send's loop sends next. */
	if (t->sending)
		return 0;
	t->sending = true;
	while (t->tx_off < t->tx_len) {
		t->inflight = t->tx;
		ssize_t n = rotor_send(t->fd, t->tx + t->tx_off, t->tx_len - t->tx_off,
		                       MSG_NOSIGNAL, deadline);
		if (t->inflight != t->tx)
			free(t->inflight);
		t->inflight = NULL;
		if (n <= 0) {
			t->sending = false;
			return t->werr = n < 0 ? (int)n : -EPIPE; /* a partial record: broken */
		}
		t->tx_off += (size_t)n;
	}
	t->sending = false;
	t->tx_off = t->tx_len = 0;
	return 0;
}

static int fill_rx(struct rotor__tls *t, int64_t deadline)
{
	if (t->rx_off == t->rx_len) {
		t->rx_off = t->rx_len = 0;
	} else if (t->rx_off) {
		memmove(t->rx, t->rx + t->rx_off, t->rx_len - t->rx_off);
		t->rx_len -= t->rx_off;
		t->rx_off = 0;
	}
	if (t->rx_len == RX_CAP) {
		/* Never: OpenSSL reads a record at a time and RX_CAP holds two. */
		set_reason(t->reason, "a record larger than the receive buffer");
		return t->rerr = -EPROTO;
	}
	/* Not sticky: a deadline or a cancel leaves the bytes in the socket for the next read. */
	t->reading = true;
	ssize_t n = rotor_recv(t->fd, t->rx + t->rx_len, RX_CAP - t->rx_len, 0, deadline);
	t->reading = false;
	if (n < 0)
		return (int)n;
	if (n == 0)
		t->eof = true;
	t->rx_len += (size_t)n;
	return 0;
}

/* ---- Secrets for the kernel ------------------------------------------------------------ */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "LABEL <client random> <secret>", OpenSSL's key log line: the TLS 1.3 traffic secrets. The
 * line is logged as the key is set, so the direction's record count restarts here. */
void rotor__tls_on_keylog(const SSL *ssl, const char *line)
{
	struct rotor__tls *t = SSL_get_app_data(ssl);
	bool client = !SSL_is_server((SSL *)ssl);
	int dir;
	if (!t || !t->track)
		return;
	if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24))
		dir = client ? 0 : 1;
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24))
		dir = client ? 1 : 0;
	else
		return;
	const char *hex = strchr(line + 24, ' ');
	size_t n = 0;
	for (hex = hex ? hex + 1 : ""; n < 64 && hexval(hex[0]) >= 0 && hexval(hex[1]) >= 0;
	     hex += 2)
		t->secret[dir][n++] = (unsigned char)(hexval(hex[0]) * 16 + hexval(hex[1]));
	t->secret_len[dir] = n;
	t->seq[dir] = 0;
}

/* Every record's header, sent and received: the sequence numbers the kernel continues. */
static void on_msg(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
                   void *arg)
{
	struct rotor__tls *t = arg;
	int dir = write_p ? 0 : 1;
	(void)version;
	if (type != SSL3_RT_HEADER || len < 5)
		return;
	if (((const unsigned char *)buf)[0] != SSL3_RT_CHANGE_CIPHER_SPEC)
		t->seq[dir]++;
	else if (SSL_version(ssl) != TLS1_3_VERSION)
		t->seq[dir] = 0; /* TLS 1.2: the next record is the first under the new keys (a
		                  * header, since OpenSSL tells no ChangeCipherSpec it reads) */
}

int rotor__tls_keys(const struct rotor__tls *t, int tx, struct rotor__tls_keys *out)
{
	if (!t || !out || !t->established)
		return -EINVAL;
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
	int nid = c ? SSL_CIPHER_get_cipher_nid(c) : NID_undef;
	int key_len = nid == NID_aes_128_gcm ? 16 : nid == NID_aes_256_gcm ? 32 : 0;
	const EVP_MD *md = c ? SSL_CIPHER_get_handshake_digest(c) : NULL;
	int dir = tx ? 0 : 1;
	if (!t->track || !key_len || !md)
		return -ENOTSUP;
	if (SSL_version(t->ssl) == TLS1_3_VERSION) {
		if (!t->secret_len[dir])
			return -ENOTSUP;
		return rotor__ktls_keys13(t->secret[dir], t->secret_len[dir], EVP_MD_get0_name(md),
		                          key_len, t->seq[dir], out);
	}
	if (SSL_version(t->ssl) != TLS1_2_VERSION)
		return -ENOTSUP;
	unsigned char master[48], cr[32], sr[32];
	size_t mlen = SSL_SESSION_get_master_key(SSL_get_session(t->ssl), master, sizeof(master));
	SSL_get_client_random(t->ssl, cr, sizeof(cr));
	SSL_get_server_random(t->ssl, sr, sizeof(sr));
	bool ours_client = !SSL_is_server(t->ssl);
	int r = rotor__ktls_keys12(master, mlen, cr, sr, EVP_MD_get0_name(md), key_len,
	                           ours_client == (tx != 0), t->seq[dir], out);
	OPENSSL_cleanse(master, sizeof(master));
	return r;
}

/* Hand the keys over where the kernel takes them: sends first, then receives if OpenSSL
 * holds no ciphertext the kernel would miss. Any failure leaves OpenSSL doing it. */
static void try_ktls(struct rotor__tls *t)
{
	struct rotor__tls_keys k;
	if (!t->ctx->ktls || (t->fd & ROTOR_FIXED_FD) || t->tx_len)
		return;
	if (rotor__tls_keys(t, 1, &k) == 0 && rotor__ktls_install(t->fd, &k, 1, &t->ulp) == 0)
		t->ktls |= ROTOR_TLS_KTLS_TX;
	if ((t->ktls & ROTOR_TLS_KTLS_TX) && t->rx_off == t->rx_len && !SSL_has_pending(t->ssl) &&
	    rotor__tls_keys(t, 0, &k) == 0 && rotor__ktls_install(t->fd, &k, 0, &t->ulp) == 0) {
		t->ktls |= ROTOR_TLS_KTLS_RX;
		t->rx_off = t->rx_len = 0; /* rx now holds plaintext for short reads */
	}
	OPENSSL_cleanse(&k, sizeof(k));
}

const char *rotor__tls_session_name(const SSL *ssl)
{
	const struct rotor__tls *t = SSL_get_app_data(ssl);
	return t ? t->name : NULL;
}

/* ---- Sessions: the handshake ----------------------------------------------------------- */

/*
 * Handshakes in slices: a handshake step (an SSL_do_handshake, which never suspends) is CPU,
 * 0.3 to 2 ms here (key exchange, signing), and a burst of new connections makes hundreds of
 * them ready at once. The worker runs up to 128 ready tasks per loop turn before it looks at
 * its timers and completions again, so without a limit its other tasks would wait 128 steps
 * (100 ms and more with RSA). A worker's handshake steps share a slice of SLICE_NS per loop
 * turn: a step that finds the slice spent parks its task on a timer that expires at once,
 * which the worker sees only on its next turn, after the timers and completions that were
 * due first. bench_tls_handshake measures it (docs/architecture.md, "TLS").
 */
#define SLICE_NS (2 * 1000 * 1000)

struct slice {
	int64_t spent; /* handshake CPU of this turn, ns */
	uint64_t turn; /* bumped by the first parked task to wake: a new turn */
};

static pthread_once_t slice_once = PTHREAD_ONCE_INIT;
static int slice_key = -1;
static bool slice_off; /* ROTOR_TLS_NO_SLICE=1: bench_tls_handshake's other column */

static void make_slice_key(void)
{
	slice_key = rotor_key_create(free);
	slice_off = getenv("ROTOR_TLS_NO_SLICE") != NULL;
}

static void *slice_new(void *arg)
{
	(void)arg;
	return calloc(1, sizeof(struct slice));
}

static struct slice *worker_slice(void)
{
	void *p = NULL;
	pthread_once(&slice_once, make_slice_key);
	if (slice_off || slice_key < 0 || rotor_worker_local(slice_key, slice_new, NULL, &p) < 0)
		return NULL;
	return p;
}

/* Wait, if this turn's slice is spent, for a turn with room. 0 or -ETIMEDOUT, -ECANCELED. */
static int slice_wait(struct slice *sl, int64_t deadline)
{
	while (sl && sl->spent >= SLICE_NS) {
		uint64_t turn = sl->turn;
		if (rotor_now() >= deadline)
			return -ETIMEDOUT;
		int r = rotor_sleep(1);
		if (r < 0)
			return r;
		if (sl->turn == turn) {
			sl->turn++;
			sl->spent = 0;
		}
	}
	return 0;
}

static bool ip_literal(const char *name)
{
	unsigned char a[16];
	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

static int session_new(int fd, struct rotor_tls_ctx *ctx, const char *name, struct rotor__tls **out)
{
	pthread_once(&bio_once, make_bio_method);
	struct rotor__tls *t = bio_method ? calloc(1, sizeof(*t)) : NULL;
	if (!t)
		return -ENOMEM;
	t->fd = fd;
	t->ctx = ctx;
	atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
	t->rx = malloc(RX_CAP);
	t->ssl = SSL_new(ctx->ssl);
	BIO *b = t->ssl && t->rx ? BIO_new(bio_method) : NULL;
	if (name && !(t->name = strdup(name)))
		goto nomem;
	if (!b)
		goto nomem;
	BIO_set_data(b, t);
	SSL_set_bio(t->ssl, b, b); /* one reference, for both directions */
	SSL_set_app_data(t->ssl, t);
	t->track = ctx->keep_keys;
	if (t->track)
		SSL_set_msg_callback(t->ssl, on_msg), SSL_set_msg_callback_arg(t->ssl, t);
	if (ctx->role == ROTOR_TLS_SERVER) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (name && ip_literal(name)) {
			if (!(ctx->flags & ROTOR_TLS_NO_VERIFY) &&
			    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
				goto nomem;
		} else if (name) {
			if (SSL_set_tlsext_host_name(t->ssl, name) != 1 ||
			    (!(ctx->flags & ROTOR_TLS_NO_VERIFY) &&
			     SSL_set1_host(t->ssl, name) != 1))
				goto nomem;
		}
		if (name && ctx->nslots)
			rotor__tls_ctx_offer(ctx, t->ssl, t->name);
	}
	*out = t;
	return 0;
nomem:
	ERR_clear_error();
	rotor__tls_destroy(t);
	return -ENOMEM;
}

int rotor__tls_handshake(int fd, struct rotor_tls_ctx *ctx, const char *server_name,
                         int64_t deadline, struct rotor__tls **out)
{
	struct rotor__tls *t;
	rotor__tls_reason[0] = 0;
	if (fd < 0 || !ctx || !out)
		return -EINVAL;
	if (!rotor_current())
		return -EPERM;
	/* Setting a session up (SSL_new: 50 us and more in OpenSSL 3.0) counts in the slice. */
	struct slice *sl = worker_slice();
	int r = slice_wait(sl, deadline);
	if (r < 0)
		return r;
	int64_t t_new = sl ? rotor_now() : 0;
	r = session_new(fd, ctx, server_name, &t);
	if (sl)
		sl->spent += rotor_now() - t_new;
	if (r < 0)
		return r;
	for (;;) {
		if ((r = slice_wait(sl, deadline)) < 0)
			break;
		int64_t t0 = sl ? rotor_now() : 0;
		ERR_clear_error();
		int h = SSL_do_handshake(t->ssl);
		int e = h == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, h);
		if (sl)
			sl->spent += rotor_now() - t0;
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
			r = tls_fail(t, e);
			/* An alert that says why goes out if the socket takes it now. */
			if (t->tx_len > t->tx_off && !(t->fd & ROTOR_FIXED_FD))
				(void)!send(t->fd, t->tx + t->tx_off, t->tx_len - t->tx_off,
				            MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		}
		r = flush_tx(t, deadline);
		if (r < 0 || e == SSL_ERROR_NONE)
			break;
		r = fill_rx(t, deadline);
		if (r < 0)
			break;
	}
	if (r < 0) {
		if (!t->reason[0])
			set_reason(t->reason, strerror(-r));
		t->werr = r; /* no close_notify after a failed handshake */
		rotor__tls_destroy(t);
		return r;
	}
	t->established = true;
	const unsigned char *p;
	unsigned n;
	SSL_get0_alpn_selected(t->ssl, &p, &n);
	if (n)
		memcpy(t->alpn, p, n);
	t->alpn[n] = 0;
	try_ktls(t);
	*out = t;
	return 0;
}

/* ---- Sessions: reading and writing ------------------------------------------------------ */

/* A read on a socket whose kernel decrypts: control records are handled here, never
 * returned as data. */
static ssize_t ktls_read(struct rotor__tls *t, void *buf, size_t len, int64_t deadline)
{
	/* A record (control records included) must fit where it is read: a read shorter than
	 * a record's largest plaintext goes through rx, which the kernel path leaves unused
	 * (the keys went to the kernel with rx empty), and what it does not take stays there. */
	const size_t whole = 16384 + 256;
	for (;;) {
		if (t->rx_off < t->rx_len) {
			size_t n = t->rx_len - t->rx_off < len ? t->rx_len - t->rx_off : len;
			memcpy(buf, t->rx + t->rx_off, n);
			t->rx_off += n;
			return (ssize_t)n;
		}
		int type;
		void *dst = len < whole ? t->rx : buf;
		size_t cap = len < whole ? RX_CAP : len;
		ssize_t n = rotor__ktls_recv(t->fd, dst, cap, &type, deadline);
		if (n == -EIO || n == -EBADMSG || n == -EMSGSIZE) {
			set_reason(t->reason, "kTLS: a record the kernel could not decrypt");
			return t->rerr = -EPROTO;
		}
		if (n < 0)
			return n;
		if (n == 0) {
			set_reason(t->reason, "unexpected eof while reading");
			return t->rerr = -EPROTO; /* a truncation: no close_notify came */
		}
		if (type == SSL3_RT_APPLICATION_DATA) {
			if (dst != t->rx)
				return n;
			t->rx_off = 0;
			t->rx_len = (size_t)n;
			continue;
		}
		const unsigned char *m = dst;
		if (type == SSL3_RT_ALERT && n >= 2) {
			if (m[1] == SSL_AD_CLOSE_NOTIFY) {
				t->closed = true;
				return 0;
			}
			char why[64];
			snprintf(why, sizeof(why), "kTLS: alert %u received", m[1]);
			set_reason(t->reason, why);
			return t->rerr = certificate_alert(m[1]) ? -EKEYREJECTED : -EPROTO;
		}
		if (type == SSL3_RT_HANDSHAKE && n >= 1 && m[0] == SSL3_MT_NEWSESSION_TICKET)
			continue; /* a ticket the kernel decrypted: OpenSSL cannot take it back */
		set_reason(t->reason, type == SSL3_RT_HANDSHAKE && n >= 1 && m[0] == 24
		                          ? "kTLS: a KeyUpdate, which this path does not follow"
		                          : "kTLS: an unexpected record");
		return t->rerr = -EPROTO;
	}
}

ssize_t rotor__tls_read(void *ctx, void *buf, size_t len, int64_t deadline)
{
	struct rotor__tls *t = ctx;
	if (!t || !buf || !len)
		return -EINVAL;
	if (t->rerr)
		return t->rerr;
	if (t->closed)
		return 0;
	if (t->ktls & ROTOR_TLS_KTLS_RX)
		return ktls_read(t, buf, len, deadline);
	for (;;) {
		size_t n = 0;
		ERR_clear_error();
		int r = SSL_read_ex(t->ssl, buf, len, &n);
		if (r == 1) {
			if (t->tx_len > t->tx_off)
				flush_tx(t, deadline); /* e.g. a KeyUpdate's answer; errors stick */
			return (ssize_t)n;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->closed = true;
			return 0;
		}
		if (e != SSL_ERROR_WANT_READ)
			return t->rerr = tls_fail(t, e);
		if (t->tx_len > t->tx_off && (r = flush_tx(t, deadline)) < 0)
			return r;
		if ((r = fill_rx(t, deadline)) < 0)
			return r;
	}
}

/* One SSL_write of n bytes (at most a record's worth, or more: OpenSSL splits). */
static int ssl_write(struct rotor__tls *t, const void *p, size_t n, int64_t deadline)
{
	for (;;) {
		size_t done;
		ERR_clear_error();
		int r = SSL_write_ex(t->ssl, p, n, &done);
		if (r == 1)
			return t->tx_len - t->tx_off >= TX_FLUSH ? flush_tx(t, deadline) : 0;
		int e = SSL_get_error(t->ssl, r);
		if (e != SSL_ERROR_WANT_READ)
			return t->werr = tls_fail(t, e);
		/* Never without renegotiation (refused): a write that must read first. */
		if (t->reading) {
			set_reason(t->reason, "a write that needs a read while a read waits");
			return t->werr = -EPROTO;
		}
		if ((r = fill_rx(t, deadline)) < 0)
			return r;
	}
}

static ssize_t ktls_writev(struct rotor__tls *t, const struct iovec *iov, int cnt, int64_t deadline)
{
	struct iovec v[64];
	size_t total = 0;
	while (cnt > 0) {
		int k = cnt < 64 ? cnt : 64;
		memcpy(v, iov, (size_t)k * sizeof(*v));
		struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)k};
		size_t want = 0;
		for (int i = 0; i < k; i++)
			want += v[i].iov_len;
		while (want) {
			ssize_t n = rotor_sendmsg(t->fd, &m, MSG_NOSIGNAL, deadline);
			if (n <= 0)
				return t->werr = n < 0 ? (int)n : -EPIPE;
			want -= (size_t)n;
			total += (size_t)n;
			while (n > 0 && m.msg_iovlen) {
				size_t take =
				    (size_t)n < m.msg_iov->iov_len ? (size_t)n : m.msg_iov->iov_len;
				m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + take;
				m.msg_iov->iov_len -= take;
				n -= (ssize_t)take;
				if (!m.msg_iov->iov_len)
					m.msg_iov++, m.msg_iovlen--;
			}
		}
		iov += k;
		cnt -= k;
	}
	return (ssize_t)total;
}

ssize_t rotor__tls_writev(void *ctx, const struct iovec *iov, int cnt, int64_t deadline)
{
	struct rotor__tls *t = ctx;
	size_t total = 0, staged = 0;
	int r = 0;
	if (!t || (!iov && cnt) || cnt < 0)
		return -EINVAL;
	if (t->werr)
		return t->werr;
	if (t->sent_close)
		return -EPIPE;
	if (t->ktls & ROTOR_TLS_KTLS_TX)
		return ktls_writev(t, iov, cnt, deadline);
	/* Small pieces (a head, a short body) are gathered into one record; a piece of a
	 * record's size or more is encrypted from where it is. */
	for (int i = 0; i < cnt && r == 0; i++) {
		const char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		total += n;
		while (n && r == 0) {
			if (!staged && n >= PLAIN_CAP) {
				size_t big = n - n % PLAIN_CAP;
				r = ssl_write(t, p, big, deadline);
				p += big;
				n -= big;
				continue;
			}
			if (!t->plain && !(t->plain = malloc(PLAIN_CAP)))
				return -ENOMEM;
			size_t take = n < PLAIN_CAP - staged ? n : PLAIN_CAP - staged;
			memcpy(t->plain + staged, p, take);
			staged += take;
			p += take;
			n -= take;
			if (staged == PLAIN_CAP) {
				r = ssl_write(t, t->plain, staged, deadline);
				staged = 0;
			}
		}
	}
	if (r == 0 && staged)
		r = ssl_write(t, t->plain, staged, deadline);
	if (r == 0)
		r = flush_tx(t, deadline);
	return r < 0 ? r : (ssize_t)total;
}

int rotor__tls_shutdown(void *ctx, int64_t deadline)
{
	struct rotor__tls *t = ctx;
	static const unsigned char close_notify[2] = {SSL3_AL_WARNING, SSL_AD_CLOSE_NOTIFY};
	if (!t)
		return -EINVAL;
	if (t->sent_close)
		return 0;
	if (t->werr)
		return t->werr;
	t->sent_close = true;
	if (t->ktls & ROTOR_TLS_KTLS_TX) {
		ssize_t n =
		    rotor__ktls_send_record(t->fd, SSL3_RT_ALERT, close_notify, 2, deadline);
		return n == 2 ? 0 : (t->werr = n < 0 ? (int)n : -EPIPE);
	}
	ERR_clear_error();
	SSL_shutdown(t->ssl); /* close_notify into tx; the peer's is read by rotor__tls_read */
	ERR_clear_error();
	return flush_tx(t, deadline);
}

void rotor__tls_destroy(void *ctx)
{
	struct rotor__tls *t = ctx;
	if (!t)
		return;
	/* Close sends close_notify: without waiting, since destroy must not take long. */
	if (t->established && !t->sent_close && !t->werr) {
		if (t->fd & ROTOR_FIXED_FD) {
			rotor__tls_shutdown(t, rotor_now() + 100 * 1000 * 1000);
		} else if (t->ktls & ROTOR_TLS_KTLS_TX) {
			t->sent_close = true;
			rotor__ktls_send_record(
			    t->fd, SSL3_RT_ALERT,
			    (const unsigned char[]){SSL3_AL_WARNING, SSL_AD_CLOSE_NOTIFY}, 2,
			    rotor_now() + 100 * 1000 * 1000);
		} else {
			t->sent_close = true;
			SSL_shutdown(t->ssl);
			if (t->tx_len > t->tx_off)
				(void)!send(t->fd, t->tx + t->tx_off, t->tx_len - t->tx_off,
				            MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		ERR_clear_error();
	}
	struct slice *sl = t->established ? worker_slice() : NULL;
	int64_t t0 = sl ? rotor_now() : 0;
	SSL_free(t->ssl);
	if (sl)
		sl->spent += rotor_now() - t0; /* not waited for: destroy does not suspend for it */
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	free(t->rx);
	free(t->tx);
	free(t->plain);
	free(t->name);
	rotor__tls_ctx_unref(t->ctx);
	free(t);
}

/* ---- What the handshake settled ------------------------------------------------------- */

const char *rotor__tls_alpn(const struct rotor__tls *t)
{
	return t && t->alpn[0] ? t->alpn : NULL;
}

const char *rotor__tls_server_name(const struct rotor__tls *t)
{
	if (!t)
		return NULL;
	return t->name ? t->name : SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int rotor__tls_version(const struct rotor__tls *t)
{
	if (!t)
		return -EINVAL;
	return SSL_version(t->ssl) == TLS1_3_VERSION ? ROTOR_TLS_1_3 : ROTOR_TLS_1_2;
}

const char *rotor__tls_cipher(const struct rotor__tls *t)
{
	return t ? SSL_get_cipher_name(t->ssl) : NULL;
}

int rotor__tls_resumed(const struct rotor__tls *t)
{
	return t ? SSL_session_reused(t->ssl) == 1 : -EINVAL;
}

int rotor__tls_verified(const struct rotor__tls *t)
{
	if (!t)
		return -EINVAL;
	X509 *peer = SSL_get0_peer_certificate(t->ssl);
	return peer && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE &&
	       SSL_get_verify_result(t->ssl) == X509_V_OK;
}

int rotor__tls_ktls(const struct rotor__tls *t)
{
	return t ? t->ktls : -EINVAL;
}

const char *rotor__tls_error(const struct rotor__tls *t)
{
	return t ? t->reason : rotor__tls_reason;
}

/* ---- The public calls: a session as a stream's transport -------------------------------- */

static const struct rotor__stream_io tls_io = {
    .read = rotor__tls_read,
    .writev = rotor__tls_writev,
    .shutdown = rotor__tls_shutdown,
    .destroy = rotor__tls_destroy,
};

static int open_stream(int fd, struct rotor_tls_ctx *ctx, int role, const char *name,
                       const struct rotor_stream_config *cfg, int64_t deadline,
                       struct rotor_stream **out)
{
	struct rotor__tls *t;
	struct rotor_stream *s;
	if (fd < 0 || !ctx || !out || ctx->role != role)
		return -EINVAL;
	int r = rotor__tls_handshake(fd, ctx, name, deadline, &t);
	if (r < 0)
		return r;
	r = rotor__stream_create_io(fd, &tls_io, t, cfg, &s); /* frees t when it fails */
	if (r < 0) {
		snprintf(rotor__tls_reason, REASON, "the stream: %s", strerror(-r));
		return r;
	}
	*out = s;
	return 0;
}

int rotor_tls_connect(int fd, struct rotor_tls_ctx *ctx, const char *server_name,
                      const struct rotor_stream_config *cfg, int64_t deadline,
                      struct rotor_stream **out)
{
	return open_stream(fd, ctx, ROTOR_TLS_CLIENT, server_name, cfg, deadline, out);
}

int rotor_tls_accept(int fd, struct rotor_tls_ctx *ctx, const struct rotor_stream_config *cfg,
                     int64_t deadline, struct rotor_stream **out)
{
	return open_stream(fd, ctx, ROTOR_TLS_SERVER, NULL, cfg, deadline, out);
}

static const struct rotor__tls *of(const struct rotor_stream *s)
{
	return rotor__stream_io_ctx(s, &tls_io);
}

const char *rotor_tls_alpn(const struct rotor_stream *s)
{
	return rotor__tls_alpn(of(s));
}

const char *rotor_tls_server_name(const struct rotor_stream *s)
{
	return rotor__tls_server_name(of(s));
}

int rotor_tls_version(const struct rotor_stream *s)
{
	return rotor__tls_version(of(s));
}

const char *rotor_tls_cipher(const struct rotor_stream *s)
{
	return rotor__tls_cipher(of(s));
}

int rotor_tls_resumed(const struct rotor_stream *s)
{
	return rotor__tls_resumed(of(s));
}

int rotor_tls_verified(const struct rotor_stream *s)
{
	return rotor__tls_verified(of(s));
}

int rotor_tls_ktls(const struct rotor_stream *s)
{
	return rotor__tls_ktls(of(s));
}

const char *rotor_tls_error(const struct rotor_stream *s)
{
	if (!s)
		return rotor__tls_reason;
	const struct rotor__tls *t = of(s);
	return t ? t->reason : "";
}
