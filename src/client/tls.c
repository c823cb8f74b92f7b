/* The client's TLS: OpenSSL driven through two in-memory BIOs, so that nothing
 * here touches a socket or waits. The blocking API (blocking.c) and the
 * asynchronous one (async.c) move the ciphertext between the BIOs and the
 * socket themselves, each in its own way (poll with a deadline; the
 * caller's event loop), and the framing above sees plaintext only. Every
 * bit of TLS is OpenSSL's: the glue picks the BIOs, the verification
 * settings, and turns OpenSSL's errors into one message. */
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "proto/errors.h"

/* The input side: ciphertext from the server in one buffer of ours, which
 * the caller can recv() into directly (h5c_tls_in_space) and OpenSSL reads
 * through a small source BIO (in_read): one copy fewer than recv into a
 * staging buffer, BIO_write into a memory BIO, then OpenSSL's BIO_read out
 * of it -- on a large reply that copy cost as much as a tenth of the
 * decryption. [rpos, wpos) is unread; the buffer only grows to what one
 * recv asks for plus what was left unread. */
typedef struct tls_in {
    uint8_t *buf;
    size_t cap, rpos, wpos;
} tls_in;

struct h5c_tls {
    SSL_CTX *ctx;
    SSL *ssl;
    tls_in inb; /* read by OpenSSL through in (in_method) */
    BIO *in;  /* ciphertext from the server, read by OpenSSL */
    BIO *out; /* ciphertext for the server, written by OpenSSL */
    char name[256]; /* what the certificate must name, for messages */
    bool insecure;  /* tls_insecure_skip_verify: no verdict to report */
    bool fixed;     /* tls_server_name: every node's certificate names it */
};

/* BIO_read/BIO_write take an int. */
#define BIO_CHUNK (1u << 30)

/* fmt's text, then OpenSSL's queued reasons ("...: reason; reason"); the
 * queue is emptied, since it is per thread and a stale entry would be
 * blamed on the next failure. */
static int ssl_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ssl_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (!err || !errlen) {
        ERR_clear_error();
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    const char *sep = ": ";
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (k < 0 || (size_t)k >= errlen)
            continue;
        const char *reason = ERR_reason_error_string(e);
        char buf[256];
        if (!reason) {
            ERR_error_string_n(e, buf, sizeof buf);
            reason = buf;
        }
        int w = snprintf(err + k, errlen - (size_t)k, "%s%s", sep, reason);
        if (w > 0)
            k += w;
        sep = "; ";
    }
    return code;
}

/* Only the fields this library knows are read: a caller built against an
 * older header passes a smaller size, one built against a newer header a
 * larger one whose extra fields must then be unused (zero). */
int h5c_opts_import(const hdf5a_connect_opts *in, h5c_opts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!in)
        return 0;
    hdf5a_connect_opts o;
    memset(&o, 0, sizeof o);
    size_t known = sizeof o;
    if (in->size < offsetof(hdf5a_connect_opts, token) + sizeof o.token)
        return h5a_fail(err, errlen, HDF5A_EINVAL,
                        "hdf5a_connect_opts.size is %zu: fill the options with "
                        "hdf5a_connect_opts_init first", in->size);
    if (in->size > known) {
        const unsigned char *extra = (const unsigned char *)in + known;
        for (size_t i = 0; i < in->size - known; i++)
            if (extra[i])
                return h5a_fail(err, errlen, HDF5A_EINVAL,
                                "hdf5a_connect_opts sets options this library (%s) does not "
                                "know", HDF5A_VERSION);
    }
    memcpy(&o, in, in->size < known ? in->size : known);
    out->token = o.token;
    out->tls = o.tls != 0;
    out->ca_file = o.tls_ca_file;
    out->cert_file = o.tls_cert_file;
    out->key_file = o.tls_key_file;
    out->server_name = o.tls_server_name;
    out->insecure = o.tls_insecure_skip_verify != 0;
    out->ciphersuites = o.tls_ciphersuites;
    out->reconnect = o.reconnect != 0;
    out->reconnect_timeout_ms = o.reconnect_timeout_ms;
    out->follow_wrong_node = o.follow_wrong_node != 0;
    out->cluster_nodes = o.cluster_nodes;
    if (out->cluster_nodes)
        out->follow_wrong_node = true;
    if (o.reconnect_timeout_ms < 0)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "reconnect_timeout_ms is negative");
    if (out->token && (!*out->token || strlen(out->token) > 4096))
        return h5a_fail(err, errlen, HDF5A_EINVAL, "the token must be 1 to 4096 bytes");
    if (!out->tls && (out->ca_file || out->cert_file || out->key_file || out->server_name ||
                      out->insecure || out->ciphersuites))
        return h5a_fail(err, errlen, HDF5A_EINVAL,
                        "TLS options are set but tls is not: set hdf5a_connect_opts.tls");
    if (!out->cert_file != !out->key_file)
        return h5a_fail(err, errlen, HDF5A_EINVAL,
                        "%s is set but %s is not: a client certificate needs both",
                        out->cert_file ? "tls_cert_file" : "tls_key_file",
                        out->cert_file ? "tls_key_file" : "tls_cert_file");
    return 0;
}

static bool is_ip_literal(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    ASN1_OCTET_STRING_free(ip);
    return ip != NULL;
}

static int make_ctx(h5c_tls *t, const h5c_opts *o, char *err, size_t errlen)
{
    if (!(t->ctx = SSL_CTX_new(TLS_client_method())))
        return ssl_fail(err, errlen, HDF5A_ENOMEM, "cannot make a TLS context");
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(t->ctx, o->ciphersuites) != 1)
        return ssl_fail(err, errlen, HDF5A_EINVAL, "tls_ciphersuites '%s' names no TLS 1.3 suite",
                        o->ciphersuites);
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1)
            return ssl_fail(err, errlen, HDF5A_EINVAL,
                            "tls_ca_file '%s': cannot load the CA certificates", o->ca_file);
    } else {
        /* the system's bundle, read now: its directory of hashed names
         * would be searched during the handshake, in the caller's loop;
         * only a system with no bundle file falls back to it */
        X509_STORE *store = SSL_CTX_get_cert_store(t->ctx);
        if (SSL_CTX_set_default_verify_file(t->ctx) != 1 ||
            sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) == 0) {
            ERR_clear_error();
            if (SSL_CTX_set_default_verify_dir(t->ctx) != 1)
                return ssl_fail(err, errlen, HDF5A_EINVAL,
                                "cannot load the system's CA certificates");
        }
    }
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1)
            return ssl_fail(err, errlen, HDF5A_EINVAL,
                            "tls_cert_file '%s': cannot load the certificate", o->cert_file);
        if (SSL_CTX_use_PrivateKey_file(t->ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
            return ssl_fail(err, errlen, HDF5A_EINVAL,
                            "tls_key_file '%s': cannot load the private key", o->key_file);
        if (SSL_CTX_check_private_key(t->ctx) != 1)
            return ssl_fail(err, errlen, HDF5A_EINVAL,
                            "tls_key_file '%s' does not match tls_cert_file '%s'", o->key_file,
                            o->cert_file);
    }
    SSL_CTX_set_verify(t->ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return 0;
}

/* ---- the input BIO: a read-only window on t->inb ---- */

static int in_read(BIO *b, char *out, size_t n, size_t *got)
{
    tls_in *in = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t k = in->wpos - in->rpos < n ? in->wpos - in->rpos : n;
    if (k == 0) { /* "more later", not end of stream */
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    memcpy(out, in->buf + in->rpos, k);
    in->rpos += k;
    if (in->rpos == in->wpos)
        in->rpos = in->wpos = 0;
    *got = k;
    return 1;
}

static long in_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_in *in = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return (long)(in->wpos - in->rpos);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *in_method;
static CRYPTO_ONCE in_method_once = CRYPTO_ONCE_STATIC_INIT;

static void in_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hdf5-async TLS input");
    if (m && (!BIO_meth_set_read_ex(m, in_read) || !BIO_meth_set_ctrl(m, in_ctrl))) {
        BIO_meth_free(m);
        m = NULL;
    }
    in_method = m; /* kept for the life of the process, like OpenSSL's own methods */
}

static BIO *in_bio(tls_in *in)
{
    if (!CRYPTO_THREAD_run_once(&in_method_once, in_method_make) || !in_method)
        return NULL;
    BIO *b = BIO_new(in_method);
    if (b) {
        BIO_set_data(b, in);
        BIO_set_init(b, 1);
    }
    return b;
}

uint8_t *h5c_tls_in_space(h5c_tls *t, size_t want, size_t *room)
{
    tls_in *in = &t->inb;
    if (in->cap - in->wpos < want) {
        if (in->rpos) { /* move the unread tail to the front */
            memmove(in->buf, in->buf + in->rpos, in->wpos - in->rpos);
            in->wpos -= in->rpos;
            in->rpos = 0;
        }
        if (in->cap - in->wpos < want) {
            uint8_t *nb = realloc(in->buf, in->wpos + want);
            if (!nb)
                return NULL;
            in->buf = nb;
            in->cap = in->wpos + want;
        }
    }
    *room = in->cap - in->wpos;
    return in->buf + in->wpos;
}

void h5c_tls_in_commit(h5c_tls *t, size_t n) { t->inb.wpos += n; }

/* A fresh session on t's context: SNI and the name check for t->name. */
static int new_session(h5c_tls *t, char *err, size_t errlen)
{
    const char *name = t->name;
    t->ssl = SSL_new(t->ctx);
    t->inb.rpos = t->inb.wpos = 0; /* a new connection: nothing of the old one is read */
    t->in = in_bio(&t->inb);
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        BIO_free(t->in);
        BIO_free(t->out);
        t->in = t->out = NULL;
        return ssl_fail(err, errlen, HDF5A_ENOMEM, "cannot make a TLS session");
    }
    SSL_set_bio(t->ssl, t->in, t->out); /* the session owns both now */
    SSL_set_connect_state(t->ssl);
    if (!is_ip_literal(name) && SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return ssl_fail(err, errlen, HDF5A_EINVAL, "tls_server_name '%s' cannot be sent", name);
    /* checks a DNS name or, for an address, an IP entry of the certificate */
    if (!t->insecure && SSL_set1_host(t->ssl, name) != 1)
        return ssl_fail(err, errlen, HDF5A_EINVAL, "cannot check the certificate for '%s'", name);
    return 0;
}

/* A new connection's session in place of the old one, on the same context
 * (the certificates loaded at connect: no file is read again). */
int h5c_tls_restart(h5c_tls *t, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_free(t->ssl);
    t->ssl = NULL;
    return new_session(t, err, errlen);
}

int h5c_tls_restart_for(h5c_tls *t, const char *host, char *err, size_t errlen)
{
    if (!t->fixed)
        snprintf(t->name, sizeof t->name, "%s", host);
    return h5c_tls_restart(t, err, errlen);
}

int h5c_tls_new(h5c_tls **out, const h5c_opts *o, const char *host, char *err, size_t errlen)
{
    *out = NULL;
    ERR_clear_error();
    h5c_tls *t = calloc(1, sizeof *t);
    if (!t)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    const char *name = o->server_name ? o->server_name : host;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->fixed = o->server_name != NULL;
    t->insecure = o->insecure;
    int rc = make_ctx(t, o, err, errlen);
    if (rc)
        goto fail;
    if ((rc = new_session(t, err, errlen)))
        goto fail;
    *out = t;
    return 0;
fail:
    h5c_tls_free(t);
    return rc;
}

void h5c_tls_free(h5c_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    free(t->inb.buf);
    free(t);
}

/* A failed handshake or record, in words: why the certificate was refused
 * and what to change, else OpenSSL's reasons. */
static int session_fail(h5c_tls *t, int r, const char *what, char *err, size_t errlen)
{
    long v = t->insecure ? X509_V_OK : SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        const char *hint = "";
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            hint = "; set tls_server_name to a name the certificate carries, or connect to one";
        else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                 v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                 v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
            hint = "; is tls_ca_file the CA that signed the server's certificate?";
        ERR_clear_error();
        return h5a_fail(err, errlen, HDF5A_ETLS,
                        "%s: the server's certificate was refused: %s (expected name '%s')%s",
                        what, X509_verify_cert_error_string(v), t->name, hint);
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return h5a_fail(err, errlen, HDF5A_ECLOSED, "the server closed the TLS session");
    }
    unsigned long first = ERR_peek_error();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER)
        return ssl_fail(err, errlen, HDF5A_ETLS,
                        "%s (the server's answer is not TLS: is its port a plaintext one?)",
                        what);
    if (!first)
        return h5a_fail(err, errlen, HDF5A_ETLS, "%s (OpenSSL error %d)", what, e);
    return ssl_fail(err, errlen, HDF5A_ETLS, "%s", what);
}

int h5c_tls_handshake(h5c_tls *t, char *err, size_t errlen)
{
    if (SSL_is_init_finished(t->ssl))
        return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return session_fail(t, r, "TLS handshake failed", err, errlen);
}

bool h5c_tls_handshake_done(const h5c_tls *t) { return SSL_is_init_finished(t->ssl); }

int h5c_tls_feed(h5c_tls *t, const void *data, size_t n, char *err, size_t errlen)
{
    size_t room;
    uint8_t *p = h5c_tls_in_space(t, n, &room);
    if (!p)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory for TLS input");
    memcpy(p, data, n);
    h5c_tls_in_commit(t, n);
    return 0;
}

int h5c_tls_read(h5c_tls *t, void *buf, size_t n, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    ERR_clear_error();
    if (!SSL_is_init_finished(t->ssl)) {
        int rc = h5c_tls_handshake(t, err, errlen);
        if (rc <= 0)
            return rc;
    }
    /* SSL_read_ex gives one record at a time: go on while records are
     * whole, so a large read decrypts straight into the caller's buffer */
    while (*got < n) {
        size_t k = 0;
        int r = SSL_read_ex(t->ssl, (char *)buf + *got, n - *got, &k);
        if (r == 1) {
            *got += k;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (*got) { /* give what came first; the failure comes back next time */
            ERR_clear_error();
            break;
        }
        return session_fail(t, r, "TLS error", err, errlen);
    }
    return 0;
}

bool h5c_tls_has_input(const h5c_tls *t)
{
    return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->in) > 0;
}

int h5c_tls_write(h5c_tls *t, const void *data, size_t n, char *err, size_t errlen)
{
    ERR_clear_error();
    while (n > 0) {
        size_t k = 0;
        /* into a memory BIO a write never has to wait: it can only fail */
        if (SSL_write_ex(t->ssl, data, n, &k) != 1)
            return session_fail(t, 0, "TLS write failed", err, errlen);
        data = (const char *)data + k;
        n -= k;
    }
    return 0;
}

size_t h5c_tls_out_pending(const h5c_tls *t) { return BIO_ctrl_pending(t->out); }

size_t h5c_tls_take_out(h5c_tls *t, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        int r = BIO_read(t->out, (char *)buf + got, want > BIO_CHUNK ? (int)BIO_CHUNK : (int)want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

void h5c_tls_close_notify(h5c_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void h5c_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void h5c_wipe_str(char **p)
{
    if (*p) {
        h5c_wipe(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}
