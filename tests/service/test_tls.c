/*
 * TLS (rotor/tls.h, lib/service/tls.c): handshakes between rotor's client and server and
 * against openssl s_server and s_client, verification (a certificate from another CA, a
 * name it does not carry), SNI, ALPN, resumption, close_notify and truncation, deadlines
 * (a peer that stops mid-handshake), the kTLS probe and its fallback, and the key material
 * the kernel would take, checked by decrypting records captured off the wire. Certificates
 * are made per test by the openssl command (ECDSA P-256) in a temporary directory.
 */
#include <criterion/criterion.h>
#include <rotor/stream.h>
#include <rotor/tls.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tls.h"

static char dir[64];
static char ca[128], cert[128], key[128], other_cert[128], other_key[128];

/* A CA, a server certificate it signs for localhost and 127.0.0.1, and a self-signed
 * certificate for the same names that no CA vouches for. */
static void make_certs(void)
{
	if (sh("command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("needs the openssl command (Debian: openssl)");
	snprintf(dir, sizeof(dir), "/tmp/rotor-tls-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(other_cert, sizeof(other_cert), "%s/other.pem", dir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
	int r = sh("cd %s && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	           "-keyout ca.key -subj /CN=rotor-test-ca -days 2 -out ca.pem 2>/dev/null && "
	           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	           "-keyout key.pem -subj /CN=localhost -out csr.pem 2>/dev/null && "
	           "openssl x509 -req -in csr.pem -CA ca.pem -CAkey ca.key -CAcreateserial "
	           "-days 2 -extfile ext.cnf -out cert.pem 2>/dev/null && "
	           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	           "-keyout other.key -subj /CN=localhost -addext "
	           "subjectAltName=DNS:localhost,IP:127.0.0.1 -days 2 -out other.pem 2>/dev/null",
	           dir);
	cr_assert_eq(r, 0, "making certificates with openssl failed");
}

static void remove_certs(void)
{
	if (dir[0])
		sh("rm -rf %s", dir);
}

static struct rotor_tls_ctx *server_ctx(const char *alpn, unsigned flags)
{
	struct rotor_tls_config c = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	struct rotor_tls_ctx *x = NULL;
	c.alpn = alpn;
	c.flags = flags;
	int r = rotor_tls_ctx_create(&c, &x);
	cr_assert_eq(r, 0, "server ctx: %d %s", r, rotor__tls_error(NULL));
	return x;
}

static struct rotor_tls_ctx *client_ctx(const char *alpn, unsigned flags)
{
	struct rotor_tls_config c = {.role = ROTOR_TLS_CLIENT, .ca_file = ca};
	struct rotor_tls_ctx *x = NULL;
	c.alpn = alpn;
	c.flags = flags;
	int r = rotor_tls_ctx_create(&c, &x);
	cr_assert_eq(r, 0, "client ctx: %d %s", r, rotor__tls_error(NULL));
	return x;
}

/* A connected loopback TCP pair, made on the calling task. */
static void tcp_pair(int *cfd, int *sfd)
{
	int l = rotor_tcp_listen("127.0.0.1", 0, 16, 0);
	CHECK(l >= 0);
	*cfd = rotor_tcp_dial("127.0.0.1", rotor_sock_port(l), rotor_now() + 5 * SEC);
	*sfd = rotor_accept(l, NULL, NULL, SOCK_CLOEXEC, rotor_now() + 5 * SEC);
	CHECK(*cfd >= 0);
	CHECK(*sfd >= 0);
	close(l);
}

/* ---- Both ends rotor ----------------------------------------------------------------- */

struct side {
	struct rotor_tls_ctx *ctx;
	int fd;
	const char *name;
	int64_t deadline;
	struct rotor__tls *t;
	int rc;
	char error[256];
};

static void *handshake_task(void *arg)
{
	struct side *s = arg;
	s->rc = rotor__tls_handshake(s->fd, s->ctx, s->name, s->deadline, &s->t);
	snprintf(s->error, sizeof(s->error), "%s", rotor__tls_error(NULL));
	return NULL;
}

/* Handshake sc (server, on a task of its own) against cc (client, here) over a fresh pair. */
static void handshake_pair(struct side *c, struct side *s)
{
	struct rotor_task *st;
	tcp_pair(&c->fd, &s->fd);
	if (!c->deadline)
		c->deadline = rotor_now() + 5 * SEC;
	if (!s->deadline)
		s->deadline = rotor_now() + 5 * SEC;
	CHECK_EQ(rotor_spawn(handshake_task, s, &st), 0);
	handshake_task(c);
	CHECK_EQ(rotor_join(st, NULL), 0);
}

static ssize_t write_str(struct rotor__tls *t, const char *s)
{
	struct iovec v = {(void *)s, strlen(s)};
	return rotor__tls_writev(t, &v, 1, rotor_now() + 5 * SEC);
}

static void close_pair(struct side *c, struct side *s)
{
	rotor__tls_destroy(c->t);
	rotor__tls_destroy(s->t);
	close(c->fd);
	close(s->fd);
}

struct writer {
	struct rotor__tls *t;
	struct iovec v;
	ssize_t r;
};

static void *writer_task(void *arg)
{
	struct writer *w = arg;
	w->r = rotor__tls_writev(w->t, &w->v, 1, rotor_now() + 10 * SEC);
	return NULL;
}

static void *roundtrip_main(void *arg)
{
	struct side c = {.ctx = client_ctx("h2,http/1.1", 0), .name = "localhost"};
	struct side s = {.ctx = server_ctx("http/1.1,h2", 0)};
	char buf[64];
	(void)arg;
	handshake_pair(&c, &s);
	CHECK_EQ(c.rc, 0);
	CHECK_EQ(s.rc, 0);
	if (c.rc || s.rc)
		goto out;
	CHECK(!strcmp(rotor__tls_alpn(c.t), "http/1.1")); /* the server's preference */
	CHECK(!strcmp(rotor__tls_alpn(s.t), "http/1.1"));
	CHECK(!strcmp(rotor__tls_server_name(s.t), "localhost")); /* SNI */
	CHECK_EQ(rotor__tls_version(c.t), ROTOR_TLS_1_3);
	CHECK_EQ(rotor__tls_verified(c.t), 1);
	CHECK_EQ(rotor__tls_verified(s.t), 0); /* no client certificate asked for */
	CHECK_EQ(rotor__tls_resumed(c.t), 0);
	/* Several pieces gathered into one write, then a long one. */
	struct iovec v[3] = {{"GET ", 4}, {"/ ", 2}, {"HTTP/1.1\r\n", 10}};
	CHECK_EQ(rotor__tls_writev(c.t, v, 3, rotor_now() + 5 * SEC), 16);
	size_t got = 0;
	while (got < 16) {
		ssize_t n =
		    rotor__tls_read(s.t, buf + got, sizeof(buf) - got, rotor_now() + 5 * SEC);
		CHECK(n > 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(!memcmp(buf, "GET / HTTP/1.1\r\n", 16));
	enum { BIG = 1 << 20 };
	char *big = malloc(BIG), *back = malloc(BIG);
	for (int i = 0; i < BIG; i++)
		big[i] = (char)(i * 7);
	struct rotor_task *w;
	struct writer wa = {s.t, {big, BIG}, 0};
	CHECK_EQ(rotor_spawn(writer_task, &wa, &w), 0); /* the server writes 1 MiB meanwhile */
	got = 0;
	while (got < BIG) {
		ssize_t n = rotor__tls_read(c.t, back + got, BIG - got, rotor_now() + 10 * SEC);
		CHECK(n > 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK_EQ(rotor_join(w, NULL), 0);
	CHECK_EQ(wa.r, BIG);
	CHECK(got == BIG && !memcmp(big, back, BIG));
	free(big);
	free(back);
	/* close_notify: a clean end (0, and again), not an error. */
	CHECK_EQ(rotor__tls_shutdown(s.t, rotor_now() + 5 * SEC), 0);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 0);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 0);
	CHECK_EQ(write_str(s.t, "x"), -EPIPE); /* nothing after close_notify */
	/* The other direction still works: TLS closes each side on its own. */
	CHECK_EQ(write_str(c.t, "bye"), 3);
	CHECK_EQ(rotor__tls_read(s.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 3);
out:
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, handshakes_and_moves_data_both_ways, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, roundtrip_main, NULL);
}

/* ---- Refusals and deadlines ---------------------------------------------------------- */

static void *refuse_main(void *arg)
{
	int which = (int)U(arg);
	struct rotor_tls_config sc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	if (which == 0) /* a certificate no trusted CA signed */
		sc.cert_file = other_cert, sc.key_file = other_key;
	struct side c = {.ctx = client_ctx(NULL, 0),
	                 .name = which == 0 ? "localhost" : "example.com"};
	struct side s = {0};
	CHECK_EQ(rotor_tls_ctx_create(&sc, &s.ctx), 0);
	handshake_pair(&c, &s);
	CHECK_EQ(c.rc, -EKEYREJECTED);
	CHECK(s.rc < 0); /* the client's alert */
	if (which == 0)
		CHECK(strstr(c.error, "certificate verify failed: self-signed certificate"));
	else
		CHECK(strstr(c.error, "certificate verify failed: hostname mismatch"));
	CHECK(c.t == NULL && s.t == NULL);
	close(c.fd);
	close(s.fd);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, refuses_a_certificate_no_trusted_ca_signed, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, refuse_main, P(0));
}

Test(tls, refuses_a_certificate_for_another_name, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, refuse_main, P(1));
}

static void *stall_main(void *arg)
{
	struct rotor__tls *t = NULL;
	int cfd, sfd;
	(void)arg;
	/* A client that connects and says nothing, then one that stops inside its hello. */
	for (int i = 0; i < 2; i++) {
		struct rotor_tls_ctx *sx = server_ctx(NULL, 0);
		tcp_pair(&cfd, &sfd);
		if (i == 1)
			CHECK_EQ(
			    rotor_send(cfd, "\x16\x03\x01\x01\x00\x01\x00", 7, 0, ROTOR_FOREVER),
			    7);
		int64_t t0 = rotor_now();
		CHECK_EQ(rotor__tls_handshake(sfd, sx, NULL, t0 + 200 * MS, &t), -ETIMEDOUT);
		int64_t took = rotor_now() - t0;
		CHECK(took >= 190 * MS && took < 2 * SEC);
		CHECK(t == NULL);
		close(cfd);
		close(sfd);
		rotor_tls_ctx_destroy(sx);
	}
	/* A server that accepts and never answers the client's hello. */
	struct rotor_tls_ctx *cx = client_ctx(NULL, 0);
	tcp_pair(&cfd, &sfd);
	CHECK_EQ(rotor__tls_handshake(cfd, cx, "localhost", rotor_now() + 200 * MS, &t),
	         -ETIMEDOUT);
	close(cfd);
	close(sfd);
	rotor_tls_ctx_destroy(cx);
	return NULL;
}

Test(tls, cuts_a_peer_that_stops_mid_handshake_at_the_deadline, .init = make_certs,
     .fini = remove_certs)
{
	run_checked(1, stall_main, NULL);
}

static void *truncation_main(void *arg)
{
	struct side c = {.ctx = client_ctx(NULL, 0), .name = "localhost"};
	struct side s = {.ctx = server_ctx(NULL, 0)};
	char buf[64];
	(void)arg;
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	/* A read deadline loses nothing: what comes later is read whole. */
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 50 * MS), -ETIMEDOUT);
	CHECK_EQ(write_str(s.t, "late"), 4);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 4);
	CHECK(!memcmp(buf, "late", 4));
	/* An attacker (or a crash) ends the TCP stream without close_notify. */
	CHECK_EQ(write_str(s.t, "cut"), 3);
	shutdown(s.fd, SHUT_WR);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 3);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), -EPROTO);
	CHECK(strstr(rotor__tls_error(c.t), "unexpected eof"));
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), -EPROTO);
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, sees_a_truncated_stream_as_an_error_not_an_end, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, truncation_main, NULL);
}

/* ---- Resumption ---------------------------------------------------------------------- */

static void *resume_main(void *arg)
{
	int version = (int)U(arg);
	struct rotor_tls_config cc = {.role = ROTOR_TLS_CLIENT, .ca_file = ca};
	struct rotor_tls_config sc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	cc.max_version = sc.max_version = version;
	struct rotor_tls_ctx *cx, *sx;
	CHECK_EQ(rotor_tls_ctx_create(&cc, &cx), 0);
	CHECK_EQ(rotor_tls_ctx_create(&sc, &sx), 0);
	for (int i = 0; i < 2; i++) {
		struct side c = {.ctx = cx, .name = "localhost"}, s = {.ctx = sx};
		char b;
		handshake_pair(&c, &s);
		CHECK(c.rc == 0 && s.rc == 0);
		CHECK_EQ(rotor__tls_version(c.t), version);
		CHECK_EQ(rotor__tls_resumed(c.t), i);
		CHECK_EQ(rotor__tls_resumed(s.t), i);
		/* TLS 1.3 tickets come after the handshake: a read takes them in. */
		CHECK_EQ(write_str(s.t, "x"), 1);
		CHECK_EQ(rotor__tls_read(c.t, &b, 1, rotor_now() + 5 * SEC), 1);
		close_pair(&c, &s);
	}
	rotor_tls_ctx_destroy(cx);
	rotor_tls_ctx_destroy(sx);
	return NULL;
}

Test(tls, resumes_a_tls13_session, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, resume_main, P(ROTOR_TLS_1_3));
}

Test(tls, resumes_a_tls12_session, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, resume_main, P(ROTOR_TLS_1_2));
}

/* ---- Contexts: misuse and bad files --------------------------------------------------- */

Test(tls, says_what_is_wrong_with_a_context, .init = make_certs, .fini = remove_certs)
{
	struct rotor_tls_ctx *x = NULL;
	struct rotor_tls_config c = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	cr_assert_eq(rotor_tls_ctx_create(NULL, &x), -EINVAL);
	cr_assert_eq(rotor_tls_ctx_create(&c, NULL), -EINVAL);
	c.role = 7;
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.role = ROTOR_TLS_SERVER;
	c.key_file = other_key; /* not cert's key */
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	cr_assert(strstr(rotor__tls_error(NULL), "mismatch"), "%s", rotor__tls_error(NULL));
	c.key_file = "/nonexistent/key.pem";
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -ENOENT);
	c.key_file = key;
	c.cert_file = ca; /* a certificate without its key */
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.cert_file = c.key_file = NULL; /* a server needs both */
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.cert_file = cert, c.key_file = key;
	c.alpn = "h2,,http/1.1";
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.alpn = NULL;
	c.min_version = 0x0301;
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.min_version = 0;
	c.ciphers = "NO-SUCH-CIPHER";
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.ciphers = NULL;
	c.flags = 1u << 20;
	cr_assert_eq(rotor_tls_ctx_create(&c, &x), -EINVAL);
	c.flags = 0;
	cr_assert(x == NULL);
	/* The certificate and key as PEM text. */
	static char cpem[8192], kpem[8192];
	FILE *f = fopen(cert, "r");
	cpem[fread(cpem, 1, sizeof(cpem) - 1, f)] = 0;
	fclose(f);
	f = fopen(key, "r");
	kpem[fread(kpem, 1, sizeof(kpem) - 1, f)] = 0;
	fclose(f);
	struct rotor_tls_config p = {.role = ROTOR_TLS_SERVER, .cert_pem = cpem, .key_pem = kpem};
	cr_assert_eq(rotor_tls_ctx_create(&p, &x), 0, "%s", rotor__tls_error(NULL));
	cr_assert_eq(rotor_tls_ctx_destroy(x), 0);
	cr_assert_eq(rotor_tls_ctx_destroy(NULL), -EINVAL);
}

/* ---- kTLS: the probe, the fallback, the key material ------------------------------------ */

/* Whether this kernel takes the tls ULP, asked directly. */
static int kernel_has_tls_ulp(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
	cr_assert(l >= 0 && c >= 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 1), 0);
	getsockname(l, (struct sockaddr *)&a, &len);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept(l, NULL, NULL);
	ok = setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0;
	if (!ok)
		cr_log_info("TCP_ULP tls: %s (a kernel without CONFIG_TLS)", strerror(errno));
	close(s);
	close(c);
	close(l);
	return ok;
}

static void *fallback_main(void *arg)
{
	struct side c = {.ctx = client_ctx(NULL, 0), .name = "localhost"};
	struct side s = {.ctx = server_ctx(NULL, 0)};
	char buf[16];
	int expect = (int)U(arg);
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	CHECK_EQ(rotor__tls_ktls(c.t), expect);
	CHECK_EQ(rotor__tls_ktls(s.t), expect);
	CHECK_EQ(write_str(c.t, "ping"), 4);
	CHECK_EQ(rotor__tls_read(s.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 4);
	CHECK_EQ(write_str(s.t, "pong"), 4);
	CHECK_EQ(rotor__tls_read(c.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 4);
	CHECK(!memcmp(buf, "pong", 4));
	CHECK_EQ(rotor__tls_shutdown(c.t, rotor_now() + 5 * SEC), 0);
	CHECK_EQ(rotor__tls_read(s.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 0);
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, probes_ktls_once_and_falls_back_to_openssl, .init = make_certs, .fini = remove_certs)
{
	int kernel = kernel_has_tls_ulp();
	int want = kernel && !rotor_disabled("ktls");
	cr_assert_eq(rotor_tls_ktls_available(), want);
	cr_assert_eq(rotor_tls_ktls_available(), want); /* asked once, the same answer */
	if (!kernel)
		cr_assert(access("/proc/net/tls_stat", F_OK) != 0);
	/* Both directions in the kernel (TLS 1.3, AES-GCM) or neither: the data flows the same. */
	run_checked(1, fallback_main, P(want ? ROTOR_TLS_KTLS_TX | ROTOR_TLS_KTLS_RX : 0));
	if (!want)
		cr_log_info("kTLS not available here: the OpenSSL record layer carried the data");
}

/* Decrypt one TLS record (header included) with the key material a kernel would take: as
 * the kernel would, independently of OpenSSL's record layer. Returns the plaintext length
 * (TLS 1.3: without the inner content type, which must be application data), or -1. */
static int decrypt_record(const struct rotor__tls_keys *k, const unsigned char *rec, size_t len,
                          unsigned char *out)
{
	size_t blen = (size_t)rec[3] << 8 | rec[4];
	unsigned char nonce[12], aad[13];
	const unsigned char *ct = rec + 5;
	size_t ctlen, aadlen;
	if (len < 5 + blen || blen < 16 + (k->version == ROTOR_TLS_1_2 ? 8 : 1))
		return -1;
	memcpy(nonce, k->salt, 4);
	if (k->version == ROTOR_TLS_1_3) {
		memcpy(nonce + 4, k->iv, 8);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= k->rec_seq[i];
		memcpy(aad, rec, 5);
		aadlen = 5;
		ctlen = blen - 16;
	} else {
		/* The explicit nonce is the record's (OpenSSL starts it at random). */
		memcpy(nonce + 4, ct, 8);
		ct += 8;
		ctlen = blen - 8 - 16;
		memcpy(aad, k->rec_seq, 8);
		aad[8] = rec[0];
		aad[9] = rec[1];
		aad[10] = rec[2];
		aad[11] = (unsigned char)(ctlen >> 8);
		aad[12] = (unsigned char)ctlen;
		aadlen = 13;
	}
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0, ok;
	ok = EVP_DecryptInit_ex(c, k->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL,
	                        k->key, nonce) &&
	     EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) &&
	     EVP_DecryptUpdate(c, out, &n, ct, (int)ctlen) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(ct + ctlen)) &&
	     EVP_DecryptFinal_ex(c, out + n, &f) > 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return -1;
	n += f;
	if (k->version == ROTOR_TLS_1_3) {
		while (n > 0 && out[n - 1] == 0)
			n--; /* padding */
		if (n == 0 || out[--n] != 23)
			return -1;
	}
	return n;
}

/* Raw bytes off fd until they hold at least `records` whole records; returns the offset of
 * the last of those. */
static size_t read_records(int fd, unsigned char *buf, size_t cap, int records, size_t *len)
{
	size_t have = 0, off = 0, last = 0;
	int seen = 0;
	while (seen < records) {
		while (off + 5 <= have &&
		       off + 5 + ((size_t)buf[off + 3] << 8 | buf[off + 4]) <= have &&
		       seen < records) {
			last = off;
			off += 5 + ((size_t)buf[off + 3] << 8 | buf[off + 4]);
			seen++;
		}
		if (seen == records)
			break;
		ssize_t n = rotor_recv(fd, buf + have, cap - have, 0, rotor_now() + 5 * SEC);
		CHECK(n > 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	*len = have;
	return last;
}

static void same_keys(const struct rotor__tls_keys *a, const struct rotor__tls_keys *b)
{
	CHECK_EQ(a->version, b->version);
	CHECK_EQ(a->key_len, b->key_len);
	CHECK(!memcmp(a->key, b->key, sizeof(a->key)));
	CHECK(!memcmp(a->salt, b->salt, 4));
	CHECK(!memcmp(a->iv, b->iv, 8));
	CHECK(!memcmp(a->rec_seq, b->rec_seq, 8));
}

static void *keys_main(void *arg)
{
	int version = (int)(U(arg) & 0xffff), big = (int)(U(arg) >> 16);
	struct rotor_tls_config cc = {.role = ROTOR_TLS_CLIENT, .ca_file = ca};
	struct rotor_tls_config sc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	cc.min_version = cc.max_version = sc.min_version = sc.max_version = version;
	if (big)
		cc.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384",
		cc.ciphersuites = "TLS_AES_256_GCM_SHA384";
	else
		cc.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
		cc.ciphersuites = "TLS_AES_128_GCM_SHA256";
	struct side c = {.name = "localhost"}, s = {0};
	CHECK_EQ(rotor_tls_ctx_create(&cc, &c.ctx), 0);
	CHECK_EQ(rotor_tls_ctx_create(&sc, &s.ctx), 0);
	rotor__tls_ctx_keep_keys(c.ctx);
	rotor__tls_ctx_keep_keys(s.ctx);
	struct rotor__tls_keys k, k2;
	unsigned char raw[8192], plain[8192];
	size_t len;

	/* Records captured off the wire decrypt with what the kernel would be given. */
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	CHECK_EQ(rotor__tls_version(c.t), version);
	CHECK_EQ(rotor__tls_keys(c.t, 1, &k), 0);
	CHECK_EQ(k.key_len, big ? 32 : 16);
	CHECK_EQ(write_str(c.t, "to the server"), 13);
	size_t at = read_records(s.fd, raw, sizeof(raw), 1, &len);
	CHECK_EQ(decrypt_record(&k, raw + at, len - at, plain), 13);
	CHECK(!memcmp(plain, "to the server", 13));
	/* The server has sent its tickets (TLS 1.3) under the same key: the sequence counts
	 * them. The client has not read them; the data record comes after them. */
	CHECK_EQ(rotor__tls_keys(s.t, 1, &k), 0);
	int tickets = version == ROTOR_TLS_1_3 ? (int)k.rec_seq[7] : 0;
	CHECK_EQ(write_str(s.t, "to the client"), 13);
	at = read_records(c.fd, raw, sizeof(raw), tickets + 1, &len);
	CHECK_EQ(decrypt_record(&k, raw + at, len - at, plain), 13);
	CHECK(!memcmp(plain, "to the client", 13));
	close_pair(&c, &s);

	/* What one side would give its kernel to receive is what the other gives to send, once
	 * each has read what came so far (tickets included). */
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	char b[16];
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(write_str(s.t, "abc"), 3);
		CHECK_EQ(rotor__tls_read(c.t, b, sizeof(b), rotor_now() + 5 * SEC), 3);
		CHECK_EQ(write_str(c.t, "de"), 2);
		CHECK_EQ(rotor__tls_read(s.t, b, sizeof(b), rotor_now() + 5 * SEC), 2);
	}
	CHECK_EQ(rotor__tls_keys(s.t, 1, &k), 0);
	CHECK_EQ(rotor__tls_keys(c.t, 0, &k2), 0);
	same_keys(&k, &k2);
	CHECK_EQ(rotor__tls_keys(c.t, 1, &k), 0);
	CHECK_EQ(rotor__tls_keys(s.t, 0, &k2), 0);
	same_keys(&k, &k2);
	CHECK_EQ(k.rec_seq[7], version == ROTOR_TLS_1_3 ? 3 : 4); /* 1.2: Finished, then 3 */
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, hands_over_tls13_keys_that_decrypt_the_next_record, .init = make_certs,
     .fini = remove_certs)
{
	run_checked(1, keys_main, P(ROTOR_TLS_1_3));
	run_checked(1, keys_main, P(ROTOR_TLS_1_3 | 1 << 16));
}

Test(tls, hands_over_tls12_keys_that_decrypt_the_next_record, .init = make_certs,
     .fini = remove_certs)
{
	run_checked(1, keys_main, P(ROTOR_TLS_1_2));
	run_checked(1, keys_main, P(ROTOR_TLS_1_2 | 1 << 16));
}

/* ---- Against OpenSSL's own programs ---------------------------------------------------- */

/* A port nobody listens on now (the peer binds it next). */
static int free_port(void)
{
	int l = rotor_tcp_listen("127.0.0.1", 0, 1, 0);
	int p = rotor_sock_port(l);
	close(l);
	return p;
}

/* Start `sh -c cmd`, its output to out (or /dev/null). */
static pid_t start_sh(const char *cmd)
{
	pid_t pid;
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	extern char **environ;
	CHECK_EQ(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ), 0);
	return pid;
}

static void stop_pid(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Dial until the peer listens (it was just started). */
static int dial_peer(int port)
{
	for (int i = 0; i < 500; i++) {
		int fd = rotor_tcp_dial("127.0.0.1", port, rotor_now() + SEC);
		if (fd >= 0)
			return fd;
		rotor_sleep(10 * MS);
	}
	return -1;
}

static void *s_server_main(void *arg)
{
	(void)arg;
	struct rotor_tls_ctx *cx = client_ctx(NULL, 0);
	for (int round = 0; round < 2; round++) {
		char cmd[1024], buf[8192];
		int port = free_port();
		snprintf(cmd, sizeof(cmd),
		         /* timeout: a test that crashes leaves no server behind for long */
		         "exec timeout 60 openssl s_server -accept 127.0.0.1:%d -cert %s -key %s "
		         "-www %s "
		         ">/dev/null 2>&1",
		         port, cert, key, round ? "-tls1_2" : "");
		pid_t pid = start_sh(cmd);
		int fd = dial_peer(port);
		CHECK(fd >= 0);
		struct rotor__tls *t = NULL;
		int r = rotor__tls_handshake(fd, cx, "localhost", rotor_now() + 5 * SEC, &t);
		CHECK_EQ(r, 0);
		if (r == 0) {
			CHECK_EQ(rotor__tls_version(t), round ? ROTOR_TLS_1_2 : ROTOR_TLS_1_3);
			CHECK_EQ(rotor__tls_verified(t), 1);
			CHECK_EQ(write_str(t, "GET / HTTP/1.0\r\n\r\n"), 18);
			size_t got = 0;
			ssize_t n;
			while (got < sizeof(buf) - 1 &&
			       (n = rotor__tls_read(t, buf + got, sizeof(buf) - 1 - got,
			                            rotor_now() + 5 * SEC)) > 0)
				got += (size_t)n;
			buf[got] = 0;
			CHECK(strstr(buf, "HTTP/1.0 200 ok"));
			rotor__tls_destroy(t);
		}
		close(fd);
		stop_pid(pid);
	}
	rotor_tls_ctx_destroy(cx);
	return NULL;
}

Test(tls, connects_to_openssl_s_server, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, s_server_main, NULL);
}

static void *s_client_main(void *arg)
{
	(void)arg;
	struct rotor_tls_ctx *sx = server_ctx("h2,http/1.1", 0);
	int l = rotor_tcp_listen("127.0.0.1", 0, 4, 0);
	char cmd[1024], out[160], buf[64];
	snprintf(out, sizeof(out), "%s/s_client.out", dir);
	snprintf(cmd, sizeof(cmd),
	         "printf 'ping\\n' | openssl s_client -connect 127.0.0.1:%d -servername localhost "
	         "-CAfile %s -verify_return_error -alpn http/1.1 -quiet >%s 2>&1",
	         rotor_sock_port(l), ca, out);
	pid_t pid = start_sh(cmd);
	int fd = rotor_accept(l, NULL, NULL, SOCK_CLOEXEC, rotor_now() + 10 * SEC);
	CHECK(fd >= 0);
	struct rotor__tls *t = NULL;
	CHECK_EQ(rotor__tls_handshake(fd, sx, NULL, rotor_now() + 10 * SEC, &t), 0);
	if (t) {
		CHECK(rotor__tls_alpn(t) && !strcmp(rotor__tls_alpn(t), "http/1.1"));
		CHECK(rotor__tls_server_name(t) && !strcmp(rotor__tls_server_name(t), "localhost"));
		size_t got = 0;
		while (got < 5) {
			ssize_t n =
			    rotor__tls_read(t, buf + got, sizeof(buf) - got, rotor_now() + 5 * SEC);
			CHECK(n > 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		CHECK(got == 5 && !memcmp(buf, "ping\n", 5));
		CHECK_EQ(write_str(t, "pong\n"), 5);
		CHECK_EQ(rotor__tls_shutdown(t, rotor_now() + 5 * SEC), 0);
		rotor__tls_destroy(t);
	}
	/* s_client ends at our close_notify. */
	int status = -1;
	for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		rotor_sleep(10 * MS);
	CHECK(WIFEXITED(status));
	if (!WIFEXITED(status))
		stop_pid(pid);
	FILE *f = fopen(out, "r");
	char text[4096] = "";
	if (f) {
		text[fread(text, 1, sizeof(text) - 1, f)] = 0;
		fclose(f);
	}
	CHECK(strstr(text, "pong"));
	close(fd);
	close(l);
	rotor_tls_ctx_destroy(sx);
	return NULL;
}

Test(tls, accepts_openssl_s_client, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, s_client_main, NULL);
}

/* ---- A read and a write at once on one session ------------------------------------------ */

struct overlap {
	struct rotor__tls *t;
	char got[16];
	ssize_t n;
};

static void *overlap_reader(void *arg)
{
	struct overlap *o = arg;
	task_begins();
	o->n = rotor__tls_read(o->t, o->got, sizeof(o->got), rotor_now() + 5 * SEC);
	return NULL;
}

static void *overlap_main(void *arg)
{
	struct side c = {.ctx = client_ctx(NULL, 0), .name = "localhost"};
	struct side s = {.ctx = server_ctx(NULL, 0)};
	char buf[16];
	(void)arg;
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	struct overlap o = {.t = c.t};
	struct rotor_task *r;
	atomic_store(&tasks_begun, 0);
	CHECK_EQ(rotor_spawn(overlap_reader, &o, &r), 0);
	settle(1); /* the reader waits in its recv now */
	/* The client writes while its own read waits; the server answers. */
	CHECK_EQ(write_str(c.t, "ping"), 4);
	CHECK_EQ(rotor__tls_read(s.t, buf, sizeof(buf), rotor_now() + 5 * SEC), 4);
	CHECK_EQ(write_str(s.t, "pong"), 4);
	CHECK_EQ(rotor_join(r, NULL), 0);
	CHECK_EQ(o.n, 4);
	CHECK(!memcmp(o.got, "pong", 4));
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, reads_and_writes_one_session_at_once, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, overlap_main, NULL);
}

/* ---- The public calls: TLS streams ------------------------------------------------------- */

struct stream_side {
	struct rotor_tls_ctx *ctx;
	int fd;
	struct rotor_stream *s;
	int rc;
};

static void *accept_task(void *arg)
{
	struct stream_side *x = arg;
	x->rc = rotor_tls_accept(x->fd, x->ctx, NULL, rotor_now() + 5 * SEC, &x->s);
	return NULL;
}

static void *stream_main(void *arg)
{
	struct stream_side c = {.ctx = client_ctx("http/1.1", 0)},
	                   s = {.ctx = server_ctx("http/1.1", 0)};
	struct rotor_task *t;
	const void *line;
	(void)arg;
	tcp_pair(&c.fd, &s.fd);
	/* The wrong role for the call is refused before any byte moves. */
	CHECK_EQ(rotor_tls_connect(c.fd, s.ctx, "localhost", NULL, rotor_now() + SEC, &c.s),
	         -EINVAL);
	CHECK_EQ(rotor_tls_accept(s.fd, c.ctx, NULL, rotor_now() + SEC, &s.s), -EINVAL);
	CHECK_EQ(rotor_tls_connect(-1, c.ctx, "localhost", NULL, rotor_now() + SEC, &c.s), -EINVAL);
	CHECK_EQ(rotor_spawn(accept_task, &s, &t), 0);
	c.rc = rotor_tls_connect(c.fd, c.ctx, "localhost", NULL, rotor_now() + 5 * SEC, &c.s);
	CHECK_EQ(rotor_join(t, NULL), 0);
	CHECK_EQ(c.rc, 0);
	CHECK_EQ(s.rc, 0);
	if (c.rc || s.rc)
		goto out;
	CHECK(!strcmp(rotor_tls_alpn(c.s), "http/1.1"));
	CHECK(!strcmp(rotor_tls_server_name(s.s), "localhost"));
	CHECK_EQ(rotor_tls_version(s.s), ROTOR_TLS_1_3);
	CHECK(!strcmp(rotor_tls_cipher(c.s), rotor_tls_cipher(s.s)));
	CHECK_EQ(rotor_tls_resumed(c.s), 0);
	CHECK_EQ(rotor_tls_verified(c.s), 1);
	CHECK_EQ(rotor_tls_ktls(c.s), rotor_tls_ktls_available() ? 3 : 0);
	CHECK(!strcmp(rotor_tls_error(c.s), ""));
	/* Lines through the stream's framing, both ways. */
	CHECK_EQ(rotor_stream_write(c.s, "GET / HTTP/1.1\r\n", 16, rotor_now() + 5 * SEC), 16);
	CHECK_EQ(rotor_stream_write(c.s, "Host: x\r\n\r\n", 11, rotor_now() + 5 * SEC), 11);
	CHECK_EQ(rotor_stream_flush(c.s, rotor_now() + 5 * SEC), 0);
	CHECK_EQ(rotor_stream_read_until(s.s, "\r\n\r\n", 4, 0, &line, rotor_now() + 5 * SEC), 27);
	CHECK_EQ(rotor_stream_write_all(s.s, "HTTP/1.1 200 OK\r\n", 17, rotor_now() + 5 * SEC), 17);
	CHECK_EQ(rotor_stream_read_until(c.s, "\r\n", 2, 0, &line, rotor_now() + 5 * SEC), 17);
	CHECK(!memcmp(line, "HTTP/1.1 200 OK\r\n", 17));
	/* shutdown is close_notify: the peer reads a clean end. A raw cut instead is an error. */
	CHECK_EQ(rotor_stream_shutdown(s.s, rotor_now() + 5 * SEC), 0);
	char b[8];
	CHECK_EQ(rotor_stream_read(c.s, b, sizeof(b), rotor_now() + 5 * SEC), 0);
	shutdown(c.fd, SHUT_WR);
	CHECK_EQ(rotor_stream_read(s.s, b, sizeof(b), rotor_now() + 5 * SEC), -EPROTO);
	CHECK(strstr(rotor_tls_error(s.s), "unexpected eof"));
out:
	if (c.s)
		CHECK_EQ(rotor_stream_destroy(c.s), 0);
	if (s.s)
		CHECK_EQ(rotor_stream_destroy(s.s), 0);
	/* A plain stream is no TLS stream. */
	struct rotor_stream *plain;
	CHECK_EQ(rotor_stream_create(c.fd, NULL, &plain), 0);
	CHECK(rotor_tls_alpn(plain) == NULL);
	CHECK_EQ(rotor_tls_version(plain), -EINVAL);
	CHECK_EQ(rotor_tls_ktls(NULL), -EINVAL);
	CHECK(!strcmp(rotor_tls_error(plain), ""));
	CHECK_EQ(rotor_stream_destroy(plain), 0);
	close(c.fd);
	close(s.fd);
	rotor_tls_ctx_destroy(c.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, streams_over_tls_read_and_write_like_plain_ones, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, stream_main, NULL);
}

/* ---- Client certificates, and a cancelled handshake ---------------------------------------- */

static void *client_cert_main(void *arg)
{
	(void)arg;
	struct rotor_tls_config sc = {.role = ROTOR_TLS_SERVER, .cert_file = cert, .key_file = key};
	sc.ca_file = ca;
	sc.flags = ROTOR_TLS_VERIFY_PEER;
	struct rotor_tls_config cc = {.role = ROTOR_TLS_CLIENT, .ca_file = ca};
	cc.cert_file = cert; /* the server's own certificate serves as a client's here */
	cc.key_file = key;
	struct side c = {.name = "localhost"}, s = {0};
	CHECK_EQ(rotor_tls_ctx_create(&sc, &s.ctx), 0);
	CHECK_EQ(rotor_tls_ctx_create(&cc, &c.ctx), 0);
	handshake_pair(&c, &s);
	CHECK(c.rc == 0 && s.rc == 0);
	if (s.rc == 0) {
		char b;
		CHECK_EQ(rotor__tls_verified(s.t), 1);
		CHECK_EQ(write_str(c.t, "x"), 1); /* TLS 1.3: the server checks it after its own */
		CHECK_EQ(rotor__tls_read(s.t, &b, 1, rotor_now() + 5 * SEC), 1);
	}
	close_pair(&c, &s);
	rotor_tls_ctx_destroy(c.ctx);
	/* A client without one is refused by the server. */
	struct side c2 = {.ctx = client_ctx(NULL, 0), .name = "localhost"}, s2 = {.ctx = s.ctx};
	handshake_pair(&c2, &s2);
	CHECK_EQ(s2.rc, -EKEYREJECTED);
	CHECK(strstr(s2.error, "certificate"));
	if (c2.t)
		rotor__tls_destroy(c2.t);
	close(c2.fd);
	close(s2.fd);
	rotor_tls_ctx_destroy(c2.ctx);
	rotor_tls_ctx_destroy(s.ctx);
	return NULL;
}

Test(tls, verifies_client_certificates_when_asked, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, client_cert_main, NULL);
}

static void *cancel_main(void *arg)
{
	(void)arg;
	struct side c = {.ctx = client_ctx(NULL, 0), .name = "localhost"};
	struct rotor_task *t;
	int sfd;
	tcp_pair(&c.fd, &sfd); /* nobody answers the client's hello */
	c.deadline = ROTOR_FOREVER;
	atomic_store(&tasks_begun, 0);
	CHECK_EQ(rotor_spawn(handshake_task, &c, &t), 0);
	rotor_sleep(50 * MS);
	CHECK_EQ(rotor_cancel(t), 0);
	int j = rotor_join(t, NULL); /* a cancelled task's join says so */
	CHECK(j == 0 || j == -ECANCELED);
	CHECK_EQ(c.rc, -ECANCELED);
	CHECK(c.t == NULL);
	close(c.fd);
	close(sfd);
	rotor_tls_ctx_destroy(c.ctx);
	return NULL;
}

Test(tls, a_cancelled_handshake_ends_with_ecanceled, .init = make_certs, .fini = remove_certs)
{
	run_checked(1, cancel_main, NULL);
}
