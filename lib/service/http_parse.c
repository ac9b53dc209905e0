/*
 * HTTP/1.1 framing (http_parse.h, RFC 9112): heads parsed in place in one pass, each line
 * checked as it is found, and the chunked coding as a state machine fed any pieces. The
 * verdict on a buffer depends only on its bytes, checked in order: a prefix of a message
 * gives 0 or the same result as the whole, so how the bytes were split between reads never
 * changes how a message is framed. Strict where two parsers could disagree about where a
 * message ends (docs/architecture.md, section 17). Pure functions: no state, no allocation.
 */
#include "http_parse.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* RFC 9110 tchar (letters, digits and !#$%&'*+-.^_`|~): one load per byte (a range check
 * and strchr cost several times more in the server's profile). */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
};

/* A field value's bytes (RFC 9110 5.5): VCHAR, obs-text, SP and HTAB; never NUL, CR, LF,
 * another control or DEL. */
static bool value_byte(unsigned char c)
{
	return c >= ' ' ? c != 0x7f : c == '\t';
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
	return (unsigned)(c - 'A') < 26u ? c | 0x20 : c;
}

/*
 * Eight bytes at a time (little-endian only, where the lowest flagged byte comes first):
 * bit 7 of byte i of (x - lo * ONES) & ~x is set when byte i is below lo (lo <= 0x80), of
 * (y - ONES) & ~y with y = x ^ (c * ONES) when byte i equals c, of (x + ONES) | x when byte
 * i is above 0x7e. A borrow or carry only crosses from a byte that is itself flagged, so the
 * lowest flagged byte is exact and the scan can step to it. With SSE2 (every x86-64),
 * sixteen at a time first.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR  1
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t load8(const char *p)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return x;
}

static inline uint32_t load4(const char *p)
{
	uint32_t x;
	memcpy(&x, p, sizeof(x));
	return x;
}
#endif

/*
 * Whether s[0, n) equals the literal lit (lowercase letters, digits and '-') ignoring ASCII
 * case, where s is a token or a checked field value: OR-ing 0x20 into a byte gives a letter,
 * digit or '-' only from that byte itself, its uppercase letter, or a control byte that
 * neither may hold, so whole words compare at once.
 */
static inline bool same_lower(const char *s, const char *lit, size_t n)
{
	size_t i = 0;
#ifdef SWAR
	if (n >= 8) {
		for (; i + 8 < n; i += 8)
			if ((load8(s + i) | ONES * 0x20) != load8(lit + i))
				return false;
		return (load8(s + n - 8) | ONES * 0x20) == load8(lit + n - 8);
	}
	if (n >= 4)
		return (load4(s) | 0x20202020u) == load4(lit) &&
		       (load4(s + n - 4) | 0x20202020u) == load4(lit + n - 4);
#endif
	for (; i < n; i++)
		if (((unsigned char)s[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return true;
}

/* The index of the first byte from i that is not a tchar, or len. */
static inline size_t skip_token(const char *buf, size_t len, size_t i)
{
	const unsigned char *b = (const unsigned char *)buf;
	for (; i + 4 <= len; i += 4) {
		if (!tchar[b[i]])
			return i;
		if (!tchar[b[i + 1]])
			return i + 1;
		if (!tchar[b[i + 2]])
			return i + 2;
		if (!tchar[b[i + 3]])
			return i + 3;
	}
	while (i < len && tchar[b[i]])
		i++;
	return i;
}

/* The index of the first byte from i outside [lo, 0x7e] with lo ' ' (values: then also a
 * byte from 0x80, obs-text, passes) or '!' (targets: VCHAR only), or len. */
static inline size_t skip_range(const char *buf, size_t len, size_t i, unsigned char lo)
{
	bool obs = lo == ' ';
#ifdef __SSE2__
	const __m128i below = _mm_set1_epi8((char)(lo - 1)), del = _mm_set1_epi8(0x7f);
	while (i + 16 <= len) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
		__m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(x, below), x);
		bad = _mm_or_si128(bad, obs ? _mm_cmpeq_epi8(x, del)
		                            : _mm_cmpeq_epi8(_mm_max_epu8(x, del), x));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);
		if (m)
			return i + (unsigned)__builtin_ctz(m);
		i += 16;
	}
#endif
#ifdef SWAR
	while (i + 8 <= len) {
		uint64_t x = load8(buf + i), y = x ^ (ONES * 0x7f);
		uint64_t m = ((x - ONES * lo) & ~x) | (obs ? (y - ONES) & ~y : (x + ONES) | x);
		m &= HIGHS;
		if (m)
			return i + ((size_t)__builtin_ctzll(m) >> 3);
		i += 8;
	}
#endif
	const unsigned char *b = (const unsigned char *)buf;
	if (obs)
		while (i < len && b[i] >= ' ' && b[i] != 0x7f)
			i++;
	else
		while (i < len && b[i] - 0x21u < 0x5eu)
			i++;
	return i;
}

/*
 * The end of a field value (or reason phrase) that starts at i: the index of its CR, which
 * buf[] shows followed by LF. 0 when buf ends first, -EBADMSG at a byte a value may not
 * hold (a bare CR, LF, NUL, another control or DEL).
 */
static inline ssize_t value_end(const char *buf, size_t len, size_t i)
{
	for (;;) {
		i = skip_range(buf, len, i, ' ');
		if (i == len)
			return 0;
		if (buf[i] != '\t') /* HTAB: rare, stepped over */
			break;
		i++;
	}
	if (buf[i] != '\r')
		return -EBADMSG;
	if (i + 1 == len)
		return 0;
	return buf[i + 1] == '\n' ? (ssize_t)i : -EBADMSG;
}

/* What the fields say about framing, gathered as they are parsed, decided at the blank line. */
struct framing {
	unsigned hosts;
	bool cl, cl_bad;   /* Content-Length seen; invalid or conflicting */
	uint64_t cl_value; /* its value */
	bool te;           /* Transfer-Encoding seen */
	bool te_last;      /* its last coding so far is chunked */
	bool te_other;     /* a coding other than chunked */
	unsigned te_chunked;
	bool close, keep, expect;
};

/* Content-Length = 1*DIGIT, or a list of equal ones (RFC 9110 8.6), at most 2^63 - 1. */
static bool parse_length(const char *v, size_t n, uint64_t *out)
{
	size_t i = 0;
	bool have = false;
	uint64_t first = 0;
	for (;;) {
		uint64_t x = 0;
		size_t s = i;
		for (; i < n && (unsigned char)(v[i] - '0') < 10; i++) {
			unsigned d = (unsigned)(v[i] - '0');
			if (x >= (uint64_t)INT64_MAX / 10 &&
			    (x > (uint64_t)INT64_MAX / 10 || d > (unsigned)(INT64_MAX % 10)))
				return false;
			x = x * 10 + d;
		}
		if (i == s || (have && x != first))
			return false;
		first = x;
		have = true;
		while (i < n && ows(v[i]))
			i++;
		if (i == n)
			break;
		if (v[i++] != ',')
			return false;
		while (i < n && ows(v[i]))
			i++;
	}
	*out = first;
	return true;
}

/* Transfer-Encoding: each coding in order; empty list elements are ignored (RFC 9110
 * 5.6.1), anything but exactly "chunked" is another coding (parameters included). */
static void parse_codings(const char *v, size_t n, struct framing *f)
{
	size_t i = 0;
	f->te = true;
	while (i < n) {
		while (i < n && (ows(v[i]) || v[i] == ','))
			i++;
		if (i == n)
			break;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && ows(v[e - 1]))
			e--;
		if (e - s == 7 && same_lower(v + s, "chunked", 7)) {
			f->te_chunked++;
			f->te_last = true;
		} else {
			f->te_other = true;
			f->te_last = false;
		}
	}
}

/* The fields that frame a message or its connection, by the length of their names. */
static void classify(const char *name, size_t nlen, const char *v, size_t vlen, struct framing *f)
{
	switch (nlen) {
	case 4:
		if (same_lower(name, "host", 4))
			f->hosts++;
		break;
	case 6:
		if (same_lower(name, "expect", 6) && rotor__http_has_token(v, vlen, "100-continue"))
			f->expect = true;
		break;
	case 10:
		if (same_lower(name, "connection", 10)) {
			if (rotor__http_has_token(v, vlen, "close"))
				f->close = true;
			if (rotor__http_has_token(v, vlen, "keep-alive"))
				f->keep = true;
		}
		break;
	case 14:
		if (same_lower(name, "content-length", 14)) {
			uint64_t x = 0;
			if (!parse_length(v, vlen, &x) || (f->cl && x != f->cl_value))
				f->cl_bad = true;
			f->cl = true;
			f->cl_value = x;
		}
		break;
	case 17:
		if (same_lower(name, "transfer-encoding", 17))
			parse_codings(v, vlen, f);
		break;
	}
}

/*
 * The field lines from pos up to and including the blank line: the index past it, 0 when
 * buf ends first, or a negative errno. A line starting with SP or HTAB (obs-fold), a name
 * that is not a token or is followed by anything but the colon, and a bad value byte are
 * -EBADMSG; the field past cap is -ENOBUFS.
 */
static ssize_t parse_fields(const char *buf, size_t len, size_t pos,
                            struct rotor__http_field *fields, unsigned cap, unsigned *nfields,
                            struct framing *f)
{
	unsigned n = 0;
	for (;;) {
		if (pos == len)
			return 0;
		if (buf[pos] == '\r') {
			if (pos + 1 == len)
				return 0;
			if (buf[pos + 1] != '\n')
				return -EBADMSG;
			*nfields = n;
			return (ssize_t)(pos + 2);
		}
		size_t s = pos;
		pos = skip_token(buf, len, pos);
		if (pos == len)
			return 0;
		if (pos == s || buf[pos] != ':')
			return -EBADMSG;
		if (n == cap)
			return -ENOBUFS;
		size_t nlen = pos - s;
		do
			if (++pos == len)
				return 0;
		while (ows(buf[pos]));
		ssize_t cr = value_end(buf, len, pos);
		if (cr <= 0)
			return cr;
		/* The value's bytes are checked: the only ones up to SP are SP and HTAB. */
		size_t e = (size_t)cr;
		while (e > pos && (unsigned char)buf[e - 1] <= ' ')
			e--;
		fields[n].name = buf + s;
		fields[n].name_len = (uint32_t)nlen;
		fields[n].value = buf + pos;
		fields[n].value_len = (uint32_t)(e - pos);
		n++;
		classify(buf + s, nlen, buf + pos, e - pos, f);
		pos = (size_t)cr + 2;
	}
}

/* Empty lines before the start line (RFC 9112 2.2): the index past them (len when buf
 * ends first), or -EBADMSG. */
static ssize_t skip_empty_lines(const char *buf, size_t len)
{
	size_t pos = 0;
	while (pos < len && buf[pos] == '\r') {
		if (pos + 1 == len)
			return (ssize_t)len;
		if (buf[pos + 1] != '\n')
			return -EBADMSG;
		pos += 2;
	}
	return (ssize_t)pos;
}

/* "HTTP/" DIGIT "." DIGIT at v (8 bytes there): the minor version (0 or 1), -EBADMSG when
 * it is no HTTP-version, -EPROTONOSUPPORT for one other than 1.0 and 1.1. */
static int parse_version(const char *v, bool any_minor)
{
	if (memcmp(v, "HTTP/", 5) || v[6] != '.' || (unsigned char)(v[5] - '0') >= 10 ||
	    (unsigned char)(v[7] - '0') >= 10)
		return -EBADMSG;
	if (v[5] != '1')
		return -EPROTONOSUPPORT;
	if (v[7] == '0')
		return 0;
	if (v[7] == '1' || any_minor)
		return 1;
	return -EPROTONOSUPPORT;
}

int rotor__http_error_status(int err)
{
	switch (err) {
	case -ENOBUFS:
	case -EMSGSIZE:
		return 431;
	case -ENOTSUP:
		return 501;
	case -EPROTONOSUPPORT:
		return 505;
	case -EFBIG:
		return 413;
	default:
		return 400;
	}
}

int rotor__http_parse_request(const char *buf, size_t len, struct rotor__http_field *fields,
                              unsigned cap, struct rotor__http_head *out)
{
	if (len > INT_MAX)
		len = INT_MAX;
	ssize_t r = skip_empty_lines(buf, len);
	if (r < 0 || (size_t)r == len)
		return r < 0 ? (int)r : 0;
	size_t pos = (size_t)r, m = pos;
	/* method SP request-target SP HTTP-version CRLF (RFC 9112 3) */
	pos = skip_token(buf, len, pos);
	if (pos == len)
		return 0;
	if (pos == m || buf[pos] != ' ')
		return -EBADMSG;
	size_t t = ++pos;
	/* The target: VCHAR only (no whitespace, controls or obs-text), up to its SP. */
	pos = skip_range(buf, len, pos, '!');
	if (pos == len)
		return 0;
	if (pos == t || buf[pos] != ' ')
		return -EBADMSG;
	size_t v = pos + 1;
	if (len - v < 10)
		return 0;
	int minor;
	if (!memcmp(buf + v, "HTTP/1.1\r\n", 10)) {
		minor = 1;
	} else {
		if (buf[v + 8] != '\r' || buf[v + 9] != '\n')
			return -EBADMSG;
		minor = parse_version(buf + v, false);
		if (minor < 0)
			return minor;
	}

	struct framing f = {0};
	unsigned n = 0;
	r = parse_fields(buf, len, v + 10, fields, cap, &n, &f);
	if (r <= 0)
		return (int)r;
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, never two. */
	if (f.hosts > 1 || (minor == 1 && f.hosts == 0))
		return -EBADMSG;
	enum rotor__http_body body = ROTOR__HTTP_BODY_NONE;
	if (f.te) {
		/* RFC 9112 6.1: faulty framing in HTTP/1.0 and with Content-Length; 6.3 (4):
		 * chunked must be the last coding; 7: and applied once. */
		if (minor == 0 || f.cl || !f.te_last || f.te_chunked > 1)
			return -EBADMSG;
		if (f.te_other)
			return -ENOTSUP;
		body = ROTOR__HTTP_BODY_CHUNKED;
	} else if (f.cl) {
		if (f.cl_bad)
			return -EBADMSG; /* RFC 9112 6.3 (5) */
		body = ROTOR__HTTP_BODY_LENGTH;
	}
	out->method = buf + m;
	out->method_len = (uint32_t)(t - 1 - m);
	out->target = buf + t;
	out->target_len = (uint32_t)(v - 1 - t);
	out->status = 0;
	out->reason = NULL;
	out->reason_len = 0;
	out->minor = minor;
	out->fields = fields;
	out->nfields = n;
	out->body = body;
	out->content_length = body == ROTOR__HTTP_BODY_LENGTH ? f.cl_value : 0;
	out->keep_alive = !f.close && (minor == 1 || f.keep);
	out->expect_continue = f.expect && minor == 1; /* RFC 9110 10.1.1: ignored in 1.0 */
	out->has_host = f.hosts == 1;
	return (int)r;
}

int rotor__http_parse_response(const char *buf, size_t len, bool head_request,
                               struct rotor__http_field *fields, unsigned cap,
                               struct rotor__http_head *out)
{
	if (len > INT_MAX)
		len = INT_MAX;
	ssize_t r = skip_empty_lines(buf, len);
	if (r < 0)
		return (int)r;
	size_t pos = (size_t)r;
	/* HTTP-version SP 3DIGIT SP reason-phrase CRLF (RFC 9112 4); a higher minor version is
	 * read as 1.1 (RFC 9110 2.5), and a status followed by CRLF alone is taken as one with
	 * an empty reason (RFC 9112 4: recipients may parse on whitespace boundaries). */
	if (len - pos < 13)
		return 0;
	const char *l = buf + pos;
	if (l[8] != ' ')
		return -EBADMSG;
	int minor = parse_version(l, true);
	if (minor < 0)
		return minor;
	if (l[9] < '1' || l[9] > '9' || (unsigned char)(l[10] - '0') >= 10 ||
	    (unsigned char)(l[11] - '0') >= 10)
		return -EBADMSG;
	int status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	size_t reason = pos + 12, reason_end;
	if (l[12] == ' ') {
		reason++;
		ssize_t cr = value_end(buf, len, reason);
		if (cr <= 0)
			return (int)cr;
		reason_end = (size_t)cr;
	} else if (l[12] == '\r') {
		if (len - pos < 14)
			return 0;
		if (l[13] != '\n')
			return -EBADMSG;
		reason_end = reason;
	} else {
		return -EBADMSG;
	}

	struct framing f = {0};
	unsigned n = 0;
	r = parse_fields(buf, len, reason_end + 2, fields, cap, &n, &f);
	if (r <= 0)
		return (int)r;
	bool keep = !f.close && (minor == 1 || f.keep);
	enum rotor__http_body body;
	/* RFC 9112 6.3: in the order of its list. */
	if (head_request || status < 200 || status == 204 || status == 304) {
		body = ROTOR__HTTP_BODY_NONE;
	} else if (f.te) {
		if (minor == 1 && f.te_last) {
			body = ROTOR__HTTP_BODY_CHUNKED;
			if (f.cl)
				keep = false; /* 6.3 (3): a sender that meant otherwise */
		} else {
			body = ROTOR__HTTP_BODY_CLOSE; /* 6.3 (3), and 6.1 for HTTP/1.0 */
			keep = false;
		}
	} else if (f.cl) {
		if (f.cl_bad)
			return -EBADMSG;
		body = ROTOR__HTTP_BODY_LENGTH;
	} else {
		body = ROTOR__HTTP_BODY_CLOSE;
		keep = false;
	}
	out->method = NULL;
	out->method_len = 0;
	out->target = NULL;
	out->target_len = 0;
	out->status = status;
	out->reason = buf + reason;
	out->reason_len = (uint32_t)(reason_end - reason);
	out->minor = minor;
	out->fields = fields;
	out->nfields = n;
	out->body = body;
	out->content_length = body == ROTOR__HTTP_BODY_LENGTH ? f.cl_value : 0;
	out->keep_alive = keep;
	out->expect_continue = false;
	out->has_host = false;
	return (int)r;
}

const struct rotor__http_field *rotor__http_field_find(const struct rotor__http_head *h,
                                                       const char *name)
{
	size_t n = strlen(name);
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct rotor__http_field *fl = &h->fields[i];
		if (fl->name_len != n)
			continue;
		size_t k = 0;
		while (k < n && lower((unsigned char)fl->name[k]) == lower((unsigned char)name[k]))
			k++;
		if (k == n)
			return fl;
	}
	return NULL;
}

bool rotor__http_has_token(const char *value, size_t len, const char *token)
{
	size_t tn = strlen(token), i = 0;
	while (i < len) {
		while (i < len && (ows(value[i]) || value[i] == ','))
			i++;
		size_t s = i;
		while (i < len && value[i] != ',')
			i++;
		size_t e = i;
		while (e > s && ows(value[e - 1]))
			e--;
		if (e - s == tn) {
			size_t k = 0;
			while (k < tn &&
			       lower((unsigned char)value[s + k]) == lower((unsigned char)token[k]))
				k++;
			if (k == tn)
				return true;
		}
	}
	return false;
}

/* ---- The chunked coding (RFC 9112 7.1) --------------------------------------------------- */

enum {
	CH_SIZE,     /* chunk-size: hex digits (line counts them) */
	CH_SIZE_WS,  /* BWS after the size, before a ';' */
	CH_EXT,      /* chunk-ext up to the CR */
	CH_SIZE_LF,  /* the LF ending the size line */
	CH_DATA,     /* left bytes of data */
	CH_DATA_CR,  /* the CRLF after the data */
	CH_DATA_LF,  /* ... its LF */
	CH_TR_START, /* the start of a trailer line, or the final CRLF */
	CH_TR_NAME,  /* a trailer field's name */
	CH_TR_VALUE, /* its value up to the CR */
	CH_TR_LF,    /* the LF ending a trailer field */
	CH_END_LF,   /* the LF of the final CRLF */
};

void rotor__http_chunked_init(struct rotor__http_chunked *c, size_t max_line, size_t max_trailer)
{
	*c = (struct rotor__http_chunked){
	    .max_line = max_line ? max_line : 4096,
	    .max_trailer = max_trailer ? max_trailer : 4096,
	    .state = CH_SIZE,
	};
}

static int hexval(unsigned char ch)
{
	if ((unsigned)(ch - '0') < 10u)
		return ch - '0';
	ch |= 0x20;
	if ((unsigned)(ch - 'a') < 6u)
		return ch - 'a' + 10;
	return -1;
}

ssize_t rotor__http_chunked_feed(struct rotor__http_chunked *c, const char *in, size_t len,
                                 const char **data, size_t *data_len)
{
	size_t i = 0;
	*data_len = 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (i < len && !c->done) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case CH_SIZE: {
			int d = hexval(ch);
			if (d >= 0) {
				/* 16 digits hold any uint64_t: more is refused, never wrapped. */
				if (c->line == 16)
					return -EBADMSG;
				c->left = c->left << 4 | (unsigned)d;
				c->line++;
				i++;
				continue;
			}
			if (c->line == 0)
				return -EBADMSG;
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch == ';')
				c->state = CH_EXT;
			else if (ows((char)ch))
				c->state = CH_SIZE_WS;
			else
				return -EBADMSG;
			break;
		}
		case CH_SIZE_WS:
			if (ch == ';')
				c->state = CH_EXT;
			else if (!ows((char)ch))
				return -EBADMSG;
			break;
		case CH_EXT:
			/* chunk-ext names and values are tokens or quoted strings: no bytes a field
			 * value could not hold, and no CR but the line's end. */
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!value_byte(ch))
				return -EBADMSG;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -EBADMSG;
			c->line = 0;
			c->state = c->left ? CH_DATA : CH_TR_START;
			i++;
			continue;
		case CH_DATA: {
			size_t run = len - i;
			if (run > c->left)
				run = (size_t)c->left;
			*data = in + i;
			*data_len = run;
			c->left -= run;
			if (!c->left)
				c->state = CH_DATA_CR;
			return (ssize_t)(i + run);
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -EBADMSG;
			c->state = CH_DATA_LF;
			i++;
			continue;
		case CH_DATA_LF:
			if (ch != '\n')
				return -EBADMSG;
			c->state = CH_SIZE;
			i++;
			continue;
		case CH_TR_START:
			if (ch == '\r')
				c->state = CH_END_LF;
			else if (tchar[ch])
				c->state = CH_TR_NAME;
			else
				return -EBADMSG; /* obs-fold, a bare LF, no name */
			break;
		case CH_TR_NAME:
			if (ch == ':')
				c->state = CH_TR_VALUE;
			else if (!tchar[ch])
				return -EBADMSG;
			break;
		case CH_TR_VALUE:
			if (ch == '\r')
				c->state = CH_TR_LF;
			else if (!value_byte(ch))
				return -EBADMSG;
			break;
		case CH_TR_LF:
			if (ch != '\n')
				return -EBADMSG;
			c->state = CH_TR_START;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -EBADMSG;
			c->done = true;
			break;
		}
		/* Every byte of a size line or the trailer section is counted against its limit. */
		i++;
		if (c->state >= CH_TR_START) {
			if (++c->trailer > c->max_trailer)
				return -EMSGSIZE;
		} else if (++c->line > c->max_line) {
			return -EMSGSIZE;
		}
	}
	return (ssize_t)i;
}
