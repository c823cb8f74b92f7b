/* OpenSSL driven through memory BIOs (see tls.h). Everything cryptographic
 * is OpenSSL's; what is written here is the glue: which BIO gets which
 * bytes, and turning OpenSSL's error queue into one message. */
#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct h5a_tls {
    SSL_CTX *ctx;
};

/* Ciphertext to the peer: OpenSSL writes its records through a small sink
 * BIO (out_write) straight into one malloc'd block of ours, which the
 * connection then sends as it is (h5a_tls_conn_take_out_buf): one copy
 * fewer per byte than a memory BIO read out into a buffer of our own, which
 * on a large reply cost as much as a tenth of the encryption. The block has
 * `headroom` free bytes in front (for the connection's write request) and
 * [headroom + rpos, headroom + len) not yet taken. */
typedef struct tls_out {
    uint8_t *buf;
    size_t cap, len, rpos, headroom;
} tls_out;

struct h5a_tls_conn {
    SSL *ssl;
    BIO *in;  /* ciphertext from the peer, read by OpenSSL */
    BIO *out; /* ciphertext to the peer, written by OpenSSL into outb */
    tls_out outb;
    bool failed;
    char cn[256];
    bool cn_known;
};

/* OpenSSL's error queue as "what: reason; reason" (and the queue emptied:
 * it is per thread, and a stale entry would be blamed on the next call). */
static void ssl_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    int k = snprintf(err, errlen, fmt, arg);
    unsigned long e;
    const char *sep = ": ";
    while ((e = ERR_get_error()) != 0) {
        if (k >= 0 && (size_t)k < errlen) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            int w = snprintf(err + k, errlen - (size_t)k, "%s%s", sep, buf);
            if (w > 0) k += w;
            sep = "; ";
        }
    }
}

int h5a_tls_new(h5a_tls **out, const char *cert_file, const char *key_file, const char *ca_file,
                h5a_tls_client_auth client_auth, char *err, size_t errlen)
{
    *out = NULL;
    ERR_clear_error();
    h5a_tls *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
        ssl_err(err, errlen, "%s", "cannot make a TLS context");
        free(t);
        return -1;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* large replies: let one SSL_write take a whole buffer and records be
     * released as they are written */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
        ssl_err(err, errlen, "tls_cert_file '%s': cannot load the certificate", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, errlen, "tls_key_file '%s': cannot load the private key", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        ssl_err(err, errlen, "tls_key_file '%s' does not match tls_cert_file", key_file);
        goto fail;
    }
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
            ssl_err(err, errlen, "tls_ca_file '%s': cannot load the CA certificates", ca_file);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names) SSL_CTX_set_client_CA_list(t->ctx, names);
    }
    int mode = SSL_VERIFY_NONE;
    if (client_auth == H5A_TLS_CLIENT_AUTH_OPTIONAL) mode = SSL_VERIFY_PEER;
    if (client_auth == H5A_TLS_CLIENT_AUTH_REQUIRE)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(t->ctx, mode, NULL);
    *out = t;
    return 0;
fail:
    SSL_CTX_free(t->ctx);
    free(t);
    return -1;
}

void h5a_tls_free(h5a_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* ---- the output BIO ---- */

/* Room for n more bytes of ciphertext; false: out of memory. */
static bool out_reserve(tls_out *o, size_t n)
{
    size_t need = o->headroom + o->len + n;
    if (need <= o->cap) return true;
    size_t cap = o->cap ? o->cap * 2 : 16384;
    if (cap < need) cap = need;
    uint8_t *nb = realloc(o->buf, cap);
    if (!nb) return false;
    o->buf = nb;
    o->cap = cap;
    return true;
}

static int out_write(BIO *b, const char *data, size_t n, size_t *written)
{
    tls_out *o = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!out_reserve(o, n)) return 0;
    memcpy(o->buf + o->headroom + o->len, data, n);
    o->len += n;
    *written = n;
    return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_out *o = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return (long)(o->len - o->rpos);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *out_method;
static CRYPTO_ONCE out_method_once = CRYPTO_ONCE_STATIC_INIT;

static void out_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hdf5-async TLS output");
    if (m && (!BIO_meth_set_write_ex(m, out_write) || !BIO_meth_set_ctrl(m, out_ctrl))) {
        BIO_meth_free(m);
        m = NULL;
    }
    out_method = m; /* kept for the life of the process, like OpenSSL's own methods */
}

h5a_tls_conn *h5a_tls_conn_new(h5a_tls *t)
{
    h5a_tls_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ssl = SSL_new(t->ctx);
    c->in = BIO_new(BIO_s_mem());
    if (CRYPTO_THREAD_run_once(&out_method_once, out_method_make) && out_method &&
        (c->out = BIO_new(out_method))) {
        BIO_set_data(c->out, &c->outb);
        BIO_set_init(c->out, 1);
    }
    if (!c->ssl || !c->in || !c->out) {
        SSL_free(c->ssl);
        BIO_free(c->in);
        BIO_free(c->out);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    /* an empty input BIO means "come back later", not end of file */
    BIO_set_mem_eof_return(c->in, -1);
    SSL_set_bio(c->ssl, c->in, c->out); /* the SSL owns both now */
    SSL_set_accept_state(c->ssl);
    return c;
}

void h5a_tls_conn_free(h5a_tls_conn *c)
{
    if (!c) return;
    SSL_free(c->ssl);
    free(c->outb.buf);
    free(c);
}

int h5a_tls_conn_feed(h5a_tls_conn *c, const void *data, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = BIO_write(c->in, data, chunk);
        if (w <= 0) return -1;
        data = (const char *)data + w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t h5a_tls_conn_read(h5a_tls_conn *c, void *buf, size_t n, char *err, size_t errlen)
{
    if (c->failed) {
        snprintf(err, errlen, "TLS session already failed");
        return -1;
    }
    ERR_clear_error();
    if (!SSL_is_init_finished(c->ssl)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            c->failed = true;
            long v = SSL_get_verify_result(c->ssl);
            if (v != X509_V_OK)
                snprintf(err, errlen, "TLS handshake failed: client certificate: %s",
                         X509_verify_cert_error_string(v));
            else
                ssl_err(err, errlen, "%s", "TLS handshake failed");
            ERR_clear_error();
            return -1;
        }
    }
    if (n == 0) return 0;
    size_t got = 0;
    /* SSL_read_ex decrypts one record at a time: loop until buf is full or
     * no complete record is left */
    while (got < n) {
        size_t k = 0;
        int r = SSL_read_ex(c->ssl, (char *)buf + got, n - got, &k);
        if (r == 1) {
            got += k;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (got) break; /* report what was read; the error comes back next time */
        c->failed = true;
        if (e == SSL_ERROR_ZERO_RETURN) {
            snprintf(err, errlen, "peer closed the TLS session");
            return -2;
        }
        ssl_err(err, errlen, "%s", "TLS error");
        ERR_clear_error();
        return -1;
    }
    return (ssize_t)got;
}

int h5a_tls_conn_write(h5a_tls_conn *c, const void *data, size_t n, char *err, size_t errlen)
{
    if (c->failed || !SSL_is_init_finished(c->ssl)) {
        snprintf(err, errlen, "TLS session not established");
        return -1;
    }
    ERR_clear_error();
    /* the records of n bytes in one block: at most 16 KiB of plaintext a
     * record, each with a header, a tag and padding well under 256 bytes */
    if (!out_reserve(&c->outb, n + (n / 16384 + 1) * 256)) {
        snprintf(err, errlen, "out of memory for TLS output");
        return -1;
    }
    while (n > 0) {
        size_t k = 0;
        /* into our buffer a write never waits: it only can fail */
        if (SSL_write_ex(c->ssl, data, n, &k) != 1) {
            c->failed = true;
            ssl_err(err, errlen, "%s", "TLS write failed");
            return -1;
        }
        data = (const char *)data + k;
        n -= k;
    }
    return 0;
}

size_t h5a_tls_conn_pending_out(const h5a_tls_conn *c)
{
    return c->outb.len - c->outb.rpos;
}

size_t h5a_tls_conn_take_out(h5a_tls_conn *c, void *buf, size_t n)
{
    tls_out *o = &c->outb;
    size_t k = o->len - o->rpos < n ? o->len - o->rpos : n;
    if (k) memcpy(buf, o->buf + o->headroom + o->rpos, k);
    o->rpos += k;
    if (o->rpos == o->len) o->rpos = o->len = 0; /* the block is reused */
    return k;
}

void h5a_tls_conn_set_headroom(h5a_tls_conn *c, size_t headroom)
{
    tls_out *o = &c->outb;
    if (o->len == 0 && o->headroom != headroom) {
        free(o->buf);
        o->buf = NULL;
        o->cap = 0;
        o->headroom = headroom;
    }
}

void *h5a_tls_conn_take_out_buf(h5a_tls_conn *c, size_t *off, size_t *len)
{
    tls_out *o = &c->outb;
    if (o->len == o->rpos) return NULL;
    void *b = o->buf;
    *off = o->headroom + o->rpos;
    *len = o->len - o->rpos;
    o->buf = NULL;
    o->cap = o->len = o->rpos = 0;
    return b;
}

bool h5a_tls_conn_handshake_done(const h5a_tls_conn *c)
{
    return !c->failed && SSL_is_init_finished(c->ssl);
}

void h5a_tls_conn_shutdown(h5a_tls_conn *c)
{
    if (!c->failed && SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);
    ERR_clear_error();
}

const char *h5a_tls_conn_peer_cn(const h5a_tls_conn *c)
{
    h5a_tls_conn *m = (h5a_tls_conn *)c;
    if (!m->cn_known) {
        m->cn_known = true;
        m->cn[0] = '\0';
        X509 *peer = SSL_get1_peer_certificate(c->ssl);
        if (peer) {
            if (SSL_get_verify_result(c->ssl) == X509_V_OK) {
                int len = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                                    m->cn, sizeof m->cn);
                if (len <= 0 || (size_t)len >= sizeof m->cn || memchr(m->cn, '\0', (size_t)len))
                    m->cn[0] = '\0'; /* none, or one with an embedded NUL: ignored */
            }
            X509_free(peer);
        }
    }
    return m->cn[0] ? m->cn : NULL;
}

const char *h5a_tls_conn_describe(const h5a_tls_conn *c, char *buf, size_t n)
{
    snprintf(buf, n, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
    return buf;
}

bool h5a_tls_looks_like_hello(const unsigned char *p, size_t n)
{
    return n >= 6 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04 && p[5] == 0x01;
}
