/*
 * kTLS: once a handshake is over, the kernel can encrypt and decrypt the records itself
 * (Linux 4.13 TX, 4.17 RX, 5.1 TLS 1.3; CONFIG_TLS), so that sends, receives and splice move
 * plaintext. This file owns the probe, the key material (struct tls12_crypto_info_aes_gcm_*,
 * computed from the secrets OpenSSL logs: RFC 8446 7.1/7.3 for 1.3, RFC 5246 6.3 for 1.2),
 * installing it, and the record-typed I/O. tls.c decides when it applies.
 */
#include <rotor.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* ---- The probe ----------------------------------------------------------------------- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result;

static int disabled_by_env(void)
{
	const char *p = getenv("ROTOR_DISABLE");
	while (p && *p) {
		size_t n = strcspn(p, ",");
		if (n == 4 && !strncmp(p, "ktls", 4))
			return 1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* TCP_ULP "tls" needs an established TCP socket: a loopback pair, made and dropped here. */
static void probe(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = -1, c = -1, s = -1;
	if (disabled_by_env())
		return;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s >= 0 && setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0)
		probe_result = 1; /* ENOENT: a kernel without CONFIG_TLS */
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
}

int rotor__ktls_probe(void)
{
	pthread_once(&probe_once, probe);
	return probe_result;
}

/* ---- Key material -------------------------------------------------------------------- */

static int kdf(const char *name, OSSL_PARAM *params, unsigned char *out, size_t len)
{
	EVP_KDF *k = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *c = k ? EVP_KDF_CTX_new(k) : NULL;
	int r = c && EVP_KDF_derive(c, out, len, params) == 1 ? 0 : -EPROTO;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(k);
	return r;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 7.1. */
static int expand_label(const unsigned char *secret, size_t slen, const char *md, const char *label,
                        unsigned char *out, size_t len)
{
	unsigned char info[64];
	size_t ll = strlen(label), n = 0;
	info[n++] = (unsigned char)(len >> 8);
	info[n++] = (unsigned char)len;
	info[n++] = (unsigned char)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0; /* an empty context */
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
	    OSSL_PARAM_construct_end()};
	return kdf("HKDF", p, out, len);
}

static void put_seq(unsigned char out[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		out[i] = (unsigned char)seq;
}

int rotor__ktls_keys13(const unsigned char *secret, size_t secret_len, const char *md_name,
                       int key_len, uint64_t seq, struct rotor__tls_keys *out)
{
	unsigned char iv[12];
	if ((key_len != 16 && key_len != 32) || secret_len == 0 || secret_len > 64)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	int r = expand_label(secret, secret_len, md_name, "key", out->key, (size_t)key_len);
	if (r == 0)
		r = expand_label(secret, secret_len, md_name, "iv", iv, sizeof(iv));
	if (r < 0)
		return r;
	out->version = ROTOR_TLS_1_3;
	out->key_len = key_len;
	memcpy(out->salt, iv, 4);
	memcpy(out->iv, iv + 4, 8);
	put_seq(out->rec_seq, seq);
	return 0;
}

int rotor__ktls_keys12(const unsigned char *master, size_t master_len,
                       const unsigned char client_random[32], const unsigned char server_random[32],
                       const char *md_name, int key_len, int client_side, uint64_t seq,
                       struct rotor__tls_keys *out)
{
	/* key_block = client key, server key, client IV (4: GCM's implicit salt), server IV */
	unsigned char block[2 * 32 + 2 * 4], seed[13 + 64];
	if ((key_len != 16 && key_len != 32) || master_len == 0 || master_len > 64)
		return -EINVAL;
	memcpy(seed, "key expansion", 13);
	memcpy(seed + 13, server_random, 32);
	memcpy(seed + 45, client_random, 32);
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md_name, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, master_len),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed)),
	    OSSL_PARAM_construct_end()};
	size_t kl = (size_t)key_len;
	int r = kdf("TLS1-PRF", p, block, 2 * kl + 8);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->version = ROTOR_TLS_1_2;
	out->key_len = key_len;
	memcpy(out->key, block + (client_side ? 0 : kl), kl);
	memcpy(out->salt, block + 2 * kl + (client_side ? 0 : 4), 4);
	put_seq(out->rec_seq, seq);
	/* The explicit nonce of the kernel's first record; it counts up from there. A receiver
	 * takes each record's own, and OpenSSL's started at random: the sequence number cannot
	 * meet a nonce OpenSSL used under this key but by a 2^-64 chance. */
	memcpy(out->iv, out->rec_seq, 8);
	OPENSSL_cleanse(block, sizeof(block));
	return 0;
}

/* ---- Installing, and the record-typed I/O -------------------------------------------- */

int rotor__ktls_install(int fd, const struct rotor__tls_keys *k, int tx, int *ulp_done)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 a128;
		struct tls12_crypto_info_aes_gcm_256 a256;
	} ci;
	socklen_t len;
	memset(&ci, 0, sizeof(ci));
	if (k->key_len == 16) {
		ci.a128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.a128.key, k->key, 16);
		memcpy(ci.a128.salt, k->salt, 4);
		memcpy(ci.a128.iv, k->iv, 8);
		memcpy(ci.a128.rec_seq, k->rec_seq, 8);
		len = sizeof(ci.a128);
	} else {
		ci.a256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci.a256.key, k->key, 32);
		memcpy(ci.a256.salt, k->salt, 4);
		memcpy(ci.a256.iv, k->iv, 8);
		memcpy(ci.a256.rec_seq, k->rec_seq, 8);
		len = sizeof(ci.a256);
	}
	ci.a128.info.version = k->version == ROTOR_TLS_1_3 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	if (!*ulp_done) {
		if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
			return -errno;
		*ulp_done = 1;
	}
	int r = setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, &ci, len) < 0 ? -errno : 0;
	OPENSSL_cleanse(&ci, sizeof(ci));
	return r;
}

ssize_t rotor__ktls_recv(int fd, void *buf, size_t len, int *type, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {buf, len};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = c.buf,
	                   .msg_controllen = sizeof(c.buf)};
	ssize_t n = rotor_recvmsg(fd, &m, 0, deadline);
	*type = 23;
	if (n < 0)
		return n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_TLS && h->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *(unsigned char *)CMSG_DATA(h);
	return n;
}

ssize_t rotor__ktls_send_record(int fd, unsigned char type, const void *buf, size_t len,
                                int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {(void *)buf, len};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = c.buf,
	                   .msg_controllen = sizeof(c.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_TLS;
	h->cmsg_type = TLS_SET_RECORD_TYPE;
	h->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*(unsigned char *)CMSG_DATA(h) = type;
	return rotor_sendmsg(fd, &m, MSG_NOSIGNAL, deadline);
}
