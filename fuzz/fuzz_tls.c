/* fuzz_tls: the server's TLS glue (src/server/tls.c) with arbitrary record
 * splits. A real OpenSSL client (memory BIOs too) talks to an h5a_tls_conn;
 * the input decides how the bytes in flight are cut on the way each way,
 * what plaintext goes through, and whether one byte is corrupted.
 *
 * Input: a flags byte, then a script of bytes consumed as needed:
 *   flags bit 0: "raw" mode: everything after the flags byte is fed to the
 *                server as if it came from the network (cut into pieces
 *                whose sizes the input also gives): the glue must refuse
 *                garbage cleanly, never crash or hang;
 *   flags bit 1: flip one byte of the traffic (its position from the script).
 * Checks, when nothing is corrupted: the handshake completes; every message
 * the client sends reaches the server's plaintext intact and in order, and
 * every one the server sends back reaches the client, whatever the splits.
 * With a flipped byte the session may fail (it must, unless the byte was
 * not covered by a MAC) but never report wrong plaintext. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/tls.h"

#define FAIL_IF(cond, ...)                                                                 \
    do {                                                                                   \
        if (cond) {                                                                        \
            fprintf(stderr, "fuzz_tls: %s:%d: check failed: %s\n  ", __FILE__, __LINE__,   \
                    #cond);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static h5a_tls *server_ctx;
static SSL_CTX *client_ctx;
static char dir[256];

static void fatal(const char *what)
{
    fprintf(stderr, "fuzz_tls: setup: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* A throwaway self-signed P-256 certificate, written where h5a_tls_new
 * reads it from. */
static void make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x) fatal("keygen");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) fatal("sign");
    FILE *f = fopen(cert_path, "w");
    FILE *k = fopen(key_path, "w");
    if (!f || !k || !PEM_write_X509(f, x) || !PEM_write_PrivateKey(k, key, NULL, NULL, 0, NULL, NULL))
        fatal("write cert");
    fclose(f);
    fclose(k);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void cleanup(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/cert.pem", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/key.pem", dir);
    unlink(p);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "%s/h5a-fuzz-tls-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) fatal("mkdtemp");
    atexit(cleanup);
    char cert[300], key[300], err[1024];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    make_cert(cert, key);
    if (h5a_tls_new(&server_ctx, cert, key, NULL, H5A_TLS_CLIENT_AUTH_NO, err, sizeof err))
        fatal(err);
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx) fatal("client ctx");
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

/* The script: bytes taken one at a time, zeros once it runs out. */
typedef struct {
    const uint8_t *p;
    size_t n, i;
} script;

static unsigned next(script *s) { return s->i < s->n ? s->p[s->i++] : 0; }

/* A piece size from the script: mostly small, sometimes large. */
static size_t piece(script *s)
{
    unsigned b = next(s);
    if (b < 200) return 1 + b % 64;
    if (b < 250) return 1 + (size_t)next(s) * 64;
    return 1 << 20;
}

typedef struct {
    SSL *ssl;
    BIO *in, *out; /* the client's memory BIOs */
    h5a_tls_conn *srv;
    bool flip_pending;
    size_t flip_at, moved;
    bool corrupted; /* a byte was flipped in transit */
    bool failed;    /* either side gave up */
    unsigned takes; /* server-to-client moves so far: every other one whole-block */
} pair;

/* Move up to n bytes from the client to the server or back. */
static void move(pair *pr, bool to_server, size_t n)
{
    uint8_t buf[4096];
    /* every other time all of it is waiting: the zero-copy way the server
     * sends (the block it encrypted into, with headroom in front) */
    if (!to_server && n >= h5a_tls_conn_pending_out(pr->srv) && (pr->takes++ & 1)) {
        size_t off = 0, got = 0;
        h5a_tls_conn_set_headroom(pr->srv, 64);
        uint8_t *block = h5a_tls_conn_take_out_buf(pr->srv, &off, &got);
        if (!block) return;
        FAIL_IF(h5a_tls_conn_pending_out(pr->srv) != 0, "take_out_buf left bytes behind");
        for (size_t i = 0; i < got; i++, pr->moved++)
            if (pr->flip_pending && pr->moved == pr->flip_at) {
                block[off + i] ^= 0x5a;
                pr->flip_pending = false;
                pr->corrupted = true;
            }
        FAIL_IF(BIO_write(pr->in, block + off, (int)got) != (int)got, "client BIO_write");
        free(block);
        return;
    }
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf, got;
        if (to_server) {
            int r = BIO_read(pr->out, buf, (int)k);
            if (r <= 0) return;
            got = (size_t)r;
        } else {
            got = h5a_tls_conn_take_out(pr->srv, buf, k);
            if (!got) return;
        }
        for (size_t i = 0; i < got; i++, pr->moved++)
            if (pr->flip_pending && pr->moved == pr->flip_at) {
                buf[i] ^= 0x5a;
                pr->flip_pending = false;
                pr->corrupted = true;
            }
        if (to_server) FAIL_IF(h5a_tls_conn_feed(pr->srv, buf, got) != 0, "feed failed");
        else FAIL_IF(BIO_write(pr->in, buf, (int)got) != (int)got, "client BIO_write");
        n -= got;
    }
}

static bool pending(pair *pr)
{
    return BIO_ctrl_pending(pr->out) > 0 || h5a_tls_conn_pending_out(pr->srv) > 0;
}

/* Run the handshake with the script's splits; true once both sides are up. */
static bool handshake(pair *pr, script *s)
{
    char err[512];
    for (int round = 0; round < 2000; round++) {
        int r = SSL_do_handshake(pr->ssl);
        if (r != 1) {
            int e = SSL_get_error(pr->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return false;
            }
        }
        move(pr, true, piece(s));
        if (h5a_tls_conn_read(pr->srv, NULL, 0, err, sizeof err) < 0) return false;
        move(pr, false, piece(s));
        if (r == 1 && h5a_tls_conn_handshake_done(pr->srv) && !pending(pr)) return true;
    }
    FAIL_IF(!pr->corrupted, "handshake did not finish in 2000 rounds");
    return false;
}

/* n bytes of message from the client to the server, checked on arrival. */
static bool client_to_server(pair *pr, script *s, const uint8_t *msg, size_t n)
{
    char err[512];
    size_t w = 0;
    if (n && SSL_write_ex(pr->ssl, msg, n, &w) != 1) {
        ERR_clear_error();
        return false;
    }
    uint8_t *got = malloc(n + 1);
    size_t have = 0;
    for (int round = 0; have < n && round < 100000; round++) {
        move(pr, true, piece(s));
        ssize_t k = h5a_tls_conn_read(pr->srv, got + have, n - have, err, sizeof err);
        if (k < 0) {
            free(got);
            return false;
        }
        have += (size_t)k;
        if (!k && !BIO_ctrl_pending(pr->out)) break;
    }
    if (!pr->corrupted) {
        FAIL_IF(have != n, "server read %zu of %zu bytes", have, n);
        FAIL_IF(memcmp(got, msg, n) != 0, "the server read other bytes than the client sent");
    } else {
        FAIL_IF(memcmp(got, msg, have) != 0, "corrupted traffic gave wrong plaintext");
    }
    free(got);
    return have == n;
}

static bool server_to_client(pair *pr, script *s, const uint8_t *msg, size_t n)
{
    char err[512];
    if (h5a_tls_conn_write(pr->srv, msg, n, err, sizeof err) < 0) return false;
    uint8_t *got = malloc(n + 1);
    size_t have = 0;
    for (int round = 0; have < n && round < 100000; round++) {
        move(pr, false, piece(s));
        size_t k = 0;
        int r = SSL_read_ex(pr->ssl, got + have, n - have, &k);
        if (r == 1) {
            have += k;
            continue;
        }
        int e = SSL_get_error(pr->ssl, r);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ) break; /* the session failed */
        if (!h5a_tls_conn_pending_out(pr->srv)) break; /* nothing more is coming */
    }
    if (!pr->corrupted) {
        FAIL_IF(have != n, "client read %zu of %zu bytes", have, n);
        FAIL_IF(memcmp(got, msg, n) != 0, "the client read other bytes than the server sent");
    } else {
        FAIL_IF(memcmp(got, msg, have) != 0, "corrupted traffic gave wrong plaintext");
    }
    free(got);
    return have == n;
}

static void run_raw(const uint8_t *data, size_t size)
{
    h5a_tls_conn *c = h5a_tls_conn_new(server_ctx);
    FAIL_IF(!c, "h5a_tls_conn_new");
    script s = {data, size, 0};
    char err[512];
    uint8_t plain[1024];
    size_t off = 0;
    while (off < size) {
        size_t k = piece(&s) % 512 + 1;
        if (k > size - off) k = size - off;
        FAIL_IF(h5a_tls_conn_feed(c, data + off, k) != 0, "feed");
        off += k;
        ssize_t n = h5a_tls_conn_read(c, plain, sizeof plain, err, sizeof err);
        if (n < 0) {
            FAIL_IF(err[0] == '\0', "an error without a message");
            break;
        }
        /* garbage cannot complete a handshake, so no plaintext can come */
        FAIL_IF(n > 0, "plaintext from unauthenticated garbage");
        uint8_t out[4096];
        while (h5a_tls_conn_take_out(c, out, sizeof out)) {
        }
    }
    h5a_tls_conn_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned flags = data[0];
    if (flags & 1) {
        run_raw(data + 1, size - 1);
        return 0;
    }
    script s = {data + 1, size - 1, 0};
    pair pr = {0};
    pr.ssl = SSL_new(client_ctx);
    pr.in = BIO_new(BIO_s_mem());
    pr.out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(pr.in, -1);
    SSL_set_bio(pr.ssl, pr.in, pr.out);
    SSL_set_connect_state(pr.ssl);
    pr.srv = h5a_tls_conn_new(server_ctx);
    FAIL_IF(!pr.ssl || !pr.srv, "setup");
    if (flags & 2) {
        pr.flip_pending = true;
        pr.flip_at = next(&s) | next(&s) << 8;
    }
    bool up = handshake(&pr, &s);
    FAIL_IF(!up && !pr.corrupted, "handshake failed on clean traffic");
    /* up to 4 messages each way, their sizes and bytes from the script */
    for (int m = 0; up && m < 4; m++) {
        size_t n = (size_t)next(&s) << 4 | next(&s) >> 4;
        if (next(&s) > 240) n = (size_t)64 << 10; /* a few records' worth */
        uint8_t *msg = malloc(n + 1);
        for (size_t i = 0; i < n; i++) msg[i] = (uint8_t)(i * 31 + m);
        if (n) memcpy(msg, s.p + s.i, s.n - s.i < n ? s.n - s.i : n);
        bool ok = client_to_server(&pr, &s, msg, n) && server_to_client(&pr, &s, msg, n);
        free(msg);
        if (!ok) {
            FAIL_IF(!pr.corrupted, "a message was lost on clean traffic");
            break;
        }
    }
    SSL_free(pr.ssl);
    h5a_tls_conn_free(pr.srv);
    ERR_clear_error();
    return 0;
}
