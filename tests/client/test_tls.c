/* Tokens and TLS through libhdf5async, against real servers the test starts
 * ($H5A_SERVER, else build/hdf5-async-server; port 0, "listening on"
 * awaited, no sleeps):
 *
 *  - "auth": plaintext, with a tokens file (auth_file);
 *  - "tls": TLS with a certificate for localhost and 127.0.0.1, client
 *    certificates optional (tls_ca_file), the same tokens file;
 *  - "elsewhere": TLS with a certificate for elsewhere.example only, and
 *    max_message_size = 1M.
 *
 * The certificates are made here with the `openssl` command in a temporary
 * directory: a test CA, a second CA nobody trusts, the servers', a client
 * certificate with CN=alice from the test CA and one with CN=mallory from
 * the other. Both APIs are exercised: the blocking one, the async one
 * through the poll adapter and, for one exchange, the libuv adapter.
 *
 * Arguments are names of tests to run (tests/check.h); the certificates
 * and the three servers are made when the first test needs them. The last
 * line of output is "N passed, M failed". */
#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5_async.h>
#include <hdf5_async/adapters/libuv.h>
#include <hdf5_async/adapters/poll.h>

#include "../check.h"

#define CHECK_RC(c, expr, want)                                                                \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        CHECK_MSG(rc_ == (want), "%s returned %s, expected %s (%s)", #expr,                    \
                  hdf5a_strerror(rc_), hdf5a_strerror(want), hdf5a_errstr(c));                 \
    } while (0)

static bool has(const char *text, const char *needle)
{
    return !needle || strstr(text, needle) != NULL;
}

/* a connect's result and its error text */
#define CHECK_CONNECT(rc_expr, want, err, needle)                                              \
    do {                                                                                       \
        int rc_ = (rc_expr);                                                                   \
        CHECK_MSG(rc_ == (want) && has(err, needle),                                           \
                  "connect returned %s (%s), expected %s with '%s'", hdf5a_strerror(rc_), err, \
                  hdf5a_strerror(want), has("", needle) ? "" : (const char *)(needle));        \
    } while (0)

#define TIMEOUT_MS 30000

static const char *server_bin;
static char dir[64]; /* certificates, tokens file, servers' files */

/* ---- the servers ---- */

typedef struct server {
    pid_t pid;
    int port;
    int out;
    char file[128];
    char config[128];
} server;

static int server_start(server *s, const char *name, const char *config_text)
{
    memset(s, 0, sizeof *s);
    snprintf(s->file, sizeof s->file, "%s/%s.h5", dir, name);
    snprintf(s->config, sizeof s->config, "%s/%s.ini", dir, name);
    FILE *f = fopen(s->config, "w");
    if (!f)
        return -1;
    fputs(config_text, f);
    fclose(f);
    int p[2];
    if (pipe(p) < 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(server_bin, server_bin, "--config", s->config, "--host", "127.0.0.1", "--port",
              "0", "--file", s->file, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", server_bin, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    s->out = p[0];
    char line[256];
    size_t n = 0;
    while (n < sizeof line - 1 && read(s->out, line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    char host[64];
    if (sscanf(line, "listening on %63[^:]:%d", host, &s->port) != 2) {
        fprintf(stderr, "server %s did not start (said '%s')\n", name, line);
        return -1;
    }
    return 0;
}

static void server_stop(server *s)
{
    int status = -1;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(s->out);
    char wal[160];
    snprintf(wal, sizeof wal, "%s.wal", s->file);
    unlink(wal);
    unlink(s->file);
    unlink(s->config);
}

/* ---- certificates and tokens ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2300];
    snprintf(full, sizeof full, "cd %s && (%s) >>openssl.log 2>&1", dir, cmd);
    int rc = system(full);
    if (rc != 0)
        fprintf(stderr, "failed (%d): %s\n(see %s/openssl.log)\n", rc, cmd, dir);
    return rc;
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* A CA, and certificates it signs: NAME.pem/NAME.key with subject CN and
 * the extensions in ext ("subjectAltName=..."). */
static int make_ca(const char *name)
{
    return sh("openssl req -x509 " EC " -keyout %s.key -out %s.pem -days 2 -subj /CN=%s "
              "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign",
              name, name, name);
}

static int make_cert(const char *name, const char *cn, const char *ca, const char *ext)
{
    return sh("printf '%%s\\n' '%s' > %s.ext && "
              "openssl req " EC " -keyout %s.key -out %s.csr -subj /CN=%s && "
              "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
              "-out %s.pem -days 2 -extfile %s.ext",
              ext, name, name, name, cn, name, ca, ca, name, name);
}

static int make_certs(void)
{
    return make_ca("ca") || make_ca("otherca") ||
           make_cert("server", "localhost", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1") ||
           make_cert("elsewhere", "elsewhere.example", "ca",
                     "subjectAltName=DNS:elsewhere.example") ||
           make_cert("alice", "alice", "ca", "extendedKeyUsage=clientAuth") ||
           make_cert("mallory", "mallory", "otherca", "extendedKeyUsage=clientAuth");
}

static void sha256_hex(const char *s, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* NAME ROLE TOKEN [PREFIX]: the tokens file holds their hashes */
static const char *const tokens[][4] = {
    {"reader", "read", "tok-reader-6f1c2a", NULL},
    {"writer", "write", "tok-writer-9d03be", NULL},
    {"boss", "admin", "tok-admin-27e84f", NULL},
    {"team", "write", "tok-team-c55a10", "/team"},
    {"alice", "write", "tok-alice-unused-0b7d", "/alice"}, /* the CN of alice.pem */
};
#define TOK_READER tokens[0][2]
#define TOK_WRITER tokens[1][2]
#define TOK_ADMIN tokens[2][2]
#define TOK_TEAM tokens[3][2]

static int write_tokens(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tokens", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# made by test_tls\n");
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        char hex[65];
        sha256_hex(tokens[i][2], hex);
        fprintf(f, "%s %s %s %s\n", tokens[i][0], tokens[i][1], hex,
                tokens[i][3] ? tokens[i][3] : "");
    }
    return fclose(f);
}

static char ca_pem[128], otherca_pem[128], alice_pem[128], alice_key[128], mallory_pem[128],
    mallory_key[128];

/* ---- the fixture: certificates, tokens, three servers, made once ---- */

static server srv_auth, srv_tls, srv_elsewhere;
static int fixture_state; /* 0 not made, 1 up, -1 failed */

static void set_paths(void);

static int fixture_up(void)
{
    snprintf(dir, sizeof dir, "/tmp/h5a-tls-test-XXXXXX");
    if (!mkdtemp(dir) || make_certs() || write_tokens())
        return -1;
    set_paths();
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "[server]\nauth_file = %s/tokens\n", dir);
    if (server_start(&srv_auth, "auth", cfg))
        return -1;
    snprintf(cfg, sizeof cfg,
             "[server]\nauth_file = %s/tokens\ntls_cert_file = %s/server.pem\n"
             "tls_key_file = %s/server.key\ntls_ca_file = %s\ntls_client_auth = optional\n",
             dir, dir, dir, ca_pem);
    if (server_start(&srv_tls, "tls", cfg))
        return -1;
    snprintf(cfg, sizeof cfg,
             "[server]\ntls_cert_file = %s/elsewhere.pem\ntls_key_file = %s/elsewhere.key\n"
             "max_message_size = 1M\n",
             dir, dir);
    if (server_start(&srv_elsewhere, "elsewhere", cfg))
        return -1;
    return 0;
}

/* The fixture, made by the first test that needs it; false (and a failure
 * counted) when it could not be. */
static bool fixture(void)
{
    if (fixture_state == 0)
        fixture_state = fixture_up() == 0 ? 1 : -1;
    CHECK_MSG(fixture_state == 1, "the certificates or servers could not be made (in %s)", dir);
    return fixture_state == 1;
}

static void fixture_down(void)
{
    server *all[] = {&srv_auth, &srv_tls, &srv_elsewhere};
    for (int i = 0; i < 3; i++)
        if (all[i]->pid > 0)
            server_stop(all[i]);
    if (!dir[0])
        return;
    if (check_failed == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "certificates and logs kept in %s\n", dir);
    }
}

static void set_paths(void)
{
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(otherca_pem, sizeof otherca_pem, "%s/otherca.pem", dir);
    snprintf(alice_pem, sizeof alice_pem, "%s/alice.pem", dir);
    snprintf(alice_key, sizeof alice_key, "%s/alice.key", dir);
    snprintf(mallory_pem, sizeof mallory_pem, "%s/mallory.pem", dir);
    snprintf(mallory_key, sizeof mallory_key, "%s/mallory.key", dir);
}

/* ---- helpers ---- */

static hdf5a_connect_opts opts_token(const char *token)
{
    hdf5a_connect_opts o;
    hdf5a_connect_opts_init(&o);
    o.token = token;
    return o;
}

static hdf5a_connect_opts opts_tls(const char *token, const char *ca)
{
    hdf5a_connect_opts o = opts_token(token);
    o.tls = 1;
    o.tls_ca_file = ca;
    return o;
}

static hdf5a_client *open_ok(const char *host, int port, const hdf5a_connect_opts *o)
{
    char err[512] = "";
    hdf5a_client *c = NULL;
    int rc = hdf5a_connect_ex(&c, host, port, TIMEOUT_MS, o, err, sizeof err);
    if (rc || !c)
        fprintf(stderr, "connect_ex: %s: %s\n", hdf5a_strerror(rc), err);
    return c;
}

static bool ident_is(const char *name, const char *role, const char *want_name,
                     const char *want_role)
{
    bool ok = (want_name ? name && strcmp(name, want_name) == 0 : name == NULL) &&
              (want_role ? role && strcmp(role, want_role) == 0 : role == NULL);
    if (!ok)
        fprintf(stderr, "identity %s/%s, expected %s/%s\n", name ? name : "(null)",
                role ? role : "(null)", want_name ? want_name : "(null)",
                want_role ? want_role : "(null)");
    return ok;
}

static bool client_is(const hdf5a_client *c, const char *want_name, const char *want_role)
{
    const char *name, *role;
    hdf5a_identity(c, &name, &role);
    return ident_is(name, role, want_name, want_role);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n);
    uint32_t x = seed;
    for (size_t i = 0; p && i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 7);
    }
    return p;
}

static const double three[3] = {1.5, 2.5, 3.5};
static const uint64_t three_shape[1] = {3};
static const hdf5a_array three_arr = {"<f8", 1, three_shape, three, sizeof three};

/* ---- async ---- */

typedef struct rec {
    int calls;
    int status;
    char message[512];
    hdf5a_array *array;
    char name[64], role[16]; /* hdf5a_async_identity inside the callback */
} rec;

static void on_reply(hdf5a_async *ac, const hdf5a_reply *r, void *priv)
{
    rec *x = priv;
    x->calls++;
    x->status = r->status;
    snprintf(x->message, sizeof x->message, "%s", r->message ? r->message : "(null)");
    if (r->array)
        x->array = hdf5a_reply_take_array(r);
    const char *name, *role;
    hdf5a_async_identity(ac, &name, &role);
    snprintf(x->name, sizeof x->name, "%s", name ? name : "(null)");
    snprintf(x->role, sizeof x->role, "%s", role ? role : "(null)");
}

#define CHECK_REC(x, want)                                                                     \
    CHECK_MSG((x).calls == 1 && (x).status == (want),                                          \
              "%s: %d calls, status %s, expected %s (%s)", #x, (x).calls,                      \
              hdf5a_strerror((x).status), hdf5a_strerror(want), (x).message)

static hdf5a_async *async_open(int port, const hdf5a_connect_opts *o, hdf5a_poll *p)
{
    char err[512] = "";
    hdf5a_async *ac = NULL;
    int rc = hdf5a_async_connect_ex(&ac, "127.0.0.1", port, o, err, sizeof err);
    if (rc || !ac) {
        fprintf(stderr, "async_connect_ex: %s: %s\n", hdf5a_strerror(rc), err);
        return NULL;
    }
    hdf5a_poll_attach(ac, p);
    return ac;
}

/* One ping on a fresh async connection: its status and message. */
static void async_ping(int port, const hdf5a_connect_opts *o, rec *x, int *conn_error)
{
    hdf5a_poll p;
    memset(x, 0, sizeof *x);
    hdf5a_async *ac = async_open(port, o, &p);
    CHECK(ac != NULL);
    if (!ac)
        return;
    CHECK(hdf5a_async_ping(ac, on_reply, x) == 0);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    *conn_error = hdf5a_async_error(ac);
    hdf5a_async_free(ac);
}

/* ================= options ================= */

static void test_options(void)
{
    if (!fixture())
        return;
    int port = srv_auth.port;
    char err[512] = "";
    hdf5a_client *c = (hdf5a_client *)&err; /* must come back NULL */
    hdf5a_connect_opts o;
    memset(&o, 0, sizeof o); /* size 0: not initialised */
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "hdf5a_connect_opts_init");
    CHECK(c == NULL);

    hdf5a_connect_opts_init(&o);
    CHECK(o.size == sizeof o && !o.tls && !o.token && !o.tls_insecure_skip_verify);
    hdf5a_connect_opts lit = HDF5A_CONNECT_OPTS_INIT;
    CHECK(lit.size == sizeof lit && !lit.tls);

    o.tls_ca_file = ca_pem; /* without tls */
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "tls");
    o = opts_tls(NULL, ca_pem);
    o.tls_cert_file = alice_pem; /* without its key */
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "tls_key_file");
    o = opts_tls(NULL, "/nonexistent/ca.pem");
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "/nonexistent/ca.pem");
    o = opts_tls(NULL, ca_pem);
    o.tls_cert_file = alice_pem;
    o.tls_key_file = mallory_key; /* another certificate's key */
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "mismatch");
    o = opts_token("");
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "token");

    /* a larger struct (a newer header) is fine while its extra bytes are zero */
    struct {
        hdf5a_connect_opts o;
        int newer;
    } big = {{0}, 0};
    hdf5a_connect_opts_init(&big.o);
    big.o.size = sizeof big;
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &big.o, err, sizeof err),
                  0, err, NULL);
    hdf5a_close(c);
    c = NULL;
    big.newer = 1;
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &big.o, err, sizeof err),
                  HDF5A_EINVAL, err, "does not know");
    CHECK(hdf5a_connect_ex(NULL, "127.0.0.1", port, TIMEOUT_MS, NULL, err, sizeof err) ==
          HDF5A_EINVAL);

    /* the async API checks the same, before anything is started */
    hdf5a_async *ac = (hdf5a_async *)&err;
    o = opts_tls(NULL, "/nonexistent/ca.pem");
    CHECK_CONNECT(hdf5a_async_connect_ex(&ac, "127.0.0.1", port, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "/nonexistent/ca.pem");
    CHECK(ac == NULL);
}

/* ================= tokens (plaintext server with auth_file) ================= */

static void test_tokens_blocking(void)
{
    if (!fixture())
        return;
    int port = srv_auth.port;
    char err[512] = "";
    /* no token: connected, but nothing is served */
    hdf5a_client *c = open_ok("127.0.0.1", port, NULL);
    CHECK(c != NULL);
    if (c) {
        CHECK_RC(c, hdf5a_ping(c), HDF5A_EUNAUTHENTICATED);
        CHECK(strstr(hdf5a_errstr(c), "auth") != NULL);
        CHECK(client_is(c, NULL, NULL));
        /* hdf5a_auth afterwards */
        CHECK_RC(c, hdf5a_auth(c, TOK_READER), 0);
        CHECK(client_is(c, "reader", "read"));
        CHECK_RC(c, hdf5a_ping(c), 0);
        hdf5a_close(c);
    }

    /* a bad token fails the connect with the server's message */
    hdf5a_connect_opts o = opts_token("not-a-token");
    c = (hdf5a_client *)&err;
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EUNAUTHENTICATED, err, "unknown token");
    CHECK(c == NULL && strstr(err, "refused the token") != NULL);
    CHECK(strstr(err, "not-a-token") == NULL); /* the token itself is never echoed */

    /* each role */
    o = opts_token(TOK_WRITER);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, "writer", "write"));
    if (c) {
        CHECK_RC(c, hdf5a_write(c, "/roles/w", &three_arr, NULL), 0);
        CHECK_RC(c, hdf5a_create_group(c, "/team/made_by_writer"), 0);
        hdf5a_close(c);
    }
    o = opts_token(TOK_READER);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, "reader", "read"));
    if (c) {
        hdf5a_array *r = NULL;
        CHECK_RC(c, hdf5a_read(c, "/roles/w", &r), 0);
        CHECK(r && r->nbytes == sizeof three && memcmp(r->data, three, sizeof three) == 0);
        hdf5a_array_free(r);
        CHECK_RC(c, hdf5a_write(c, "/roles/r", &three_arr, NULL), HDF5A_EPERMISSION_DENIED);
        CHECK(strstr(hdf5a_errstr(c), "read") != NULL);
        CHECK_RC(c, hdf5a_delete(c, "/roles/w"), HDF5A_EPERMISSION_DENIED);
        int ex = -1;
        CHECK_RC(c, hdf5a_exists(c, "/roles/r", &ex), 0); /* nothing was applied */
        CHECK(ex == 0);
        CHECK_RC(c, hdf5a_ping(c), 0); /* refusals leave the connection usable */
        hdf5a_close(c);
    }
    o = opts_token(TOK_ADMIN);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, "boss", "admin"));
    if (c) {
        CHECK_RC(c, hdf5a_write(c, "/roles/a", &three_arr, NULL), 0);
        CHECK_RC(c, hdf5a_delete(c, "/roles/a"), 0);
        hdf5a_close(c);
    }

    /* a prefix: /team only, for path and dest */
    o = opts_token(TOK_TEAM);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, "team", "write"));
    if (c) {
        CHECK_RC(c, hdf5a_write(c, "/team/x", &three_arr, NULL), 0);
        CHECK_RC(c, hdf5a_write(c, "/teammate/x", &three_arr, NULL), HDF5A_EPERMISSION_DENIED);
        CHECK(strstr(hdf5a_errstr(c), "/team") != NULL);
        CHECK_RC(c, hdf5a_move(c, "/team/x", "/elsewhere/x"), HDF5A_EPERMISSION_DENIED);
        CHECK_RC(c, hdf5a_create_link(c, "/team/l", "/roles/w"), HDF5A_EPERMISSION_DENIED);
        int ex = 0;
        CHECK_RC(c, hdf5a_exists(c, "/team/x", &ex), 0);
        CHECK(ex == 1);
        CHECK_RC(c, hdf5a_read(c, "/roles/w", &(hdf5a_array *){NULL}),
                 HDF5A_EPERMISSION_DENIED);
        hdf5a_close(c);
    }

    /* the third refused token on one connection closes it */
    o = opts_token(TOK_WRITER);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c != NULL);
    if (c) {
        CHECK_RC(c, hdf5a_auth(c, "bad-1"), HDF5A_EUNAUTHENTICATED);
        CHECK(client_is(c, "writer", "write")); /* a refusal changes nothing */
        CHECK_RC(c, hdf5a_ping(c), 0);
        CHECK_RC(c, hdf5a_auth(c, "bad-2"), HDF5A_EUNAUTHENTICATED);
        CHECK_RC(c, hdf5a_auth(c, "bad-3"), HDF5A_EUNAUTHENTICATED);
        CHECK(strstr(hdf5a_errstr(c), "closing") != NULL);
        int rc = hdf5a_ping(c);
        CHECK(rc == HDF5A_ECLOSED || rc == HDF5A_EIO);
        CHECK_RC(c, hdf5a_ping(c), HDF5A_ECLOSED);
        CHECK_RC(c, hdf5a_auth(c, NULL), HDF5A_ECLOSED);
        hdf5a_close(c);
    }
}

static void test_tokens_async(void)
{
    if (!fixture())
        return;
    int port = srv_auth.port;
    /* a good token: identity known in the first reply's callback */
    hdf5a_poll p;
    hdf5a_connect_opts o = opts_token(TOK_TEAM);
    hdf5a_async *ac = async_open(port, &o, &p);
    CHECK(ac != NULL);
    if (ac) {
        rec w = {0}, d = {0}, ping = {0};
        CHECK(hdf5a_async_pending(ac) == 1); /* the auth request */
        CHECK(hdf5a_async_write(ac, "/team/async", &three_arr, NULL, on_reply, &w) == 0);
        CHECK(hdf5a_async_write(ac, "/not-team/async", &three_arr, NULL, on_reply, &d) == 0);
        CHECK(hdf5a_async_ping(ac, on_reply, &ping) == 0);
        CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
        CHECK_REC(w, 0);
        CHECK(strcmp(w.name, "team") == 0 && strcmp(w.role, "write") == 0);
        CHECK_REC(d, HDF5A_EPERMISSION_DENIED);
        CHECK(strstr(d.message, "/team") != NULL);
        CHECK_REC(ping, 0);
        /* hdf5a_async_auth: a refusal does not end the connection */
        rec bad = {0}, good = {0}, after = {0};
        CHECK(hdf5a_async_auth(ac, "nope", on_reply, &bad) == 0);
        CHECK(hdf5a_async_auth(ac, TOK_READER, on_reply, &good) == 0);
        CHECK(hdf5a_async_write(ac, "/team/async2", &three_arr, NULL, on_reply, &after) == 0);
        CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
        CHECK_REC(bad, HDF5A_EUNAUTHENTICATED);
        CHECK_REC(good, 0);
        CHECK(strcmp(good.name, "reader") == 0 && strcmp(good.role, "read") == 0);
        CHECK_REC(after, HDF5A_EPERMISSION_DENIED);
        hdf5a_async_free(ac);
    }

    /* a bad token: every pending request fails with the server's verdict */
    o = opts_token("bad-async-token");
    ac = async_open(port, &o, &p);
    CHECK(ac != NULL);
    if (ac) {
        rec a = {0}, b = {0};
        CHECK(hdf5a_async_write(ac, "/team/never", &three_arr, NULL, on_reply, &a) == 0);
        CHECK(hdf5a_async_ping(ac, on_reply, &b) == 0);
        CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
        CHECK_REC(a, HDF5A_EUNAUTHENTICATED);
        CHECK_REC(b, HDF5A_EUNAUTHENTICATED);
        CHECK(strstr(a.message, "unknown token") != NULL);
        CHECK(hdf5a_async_error(ac) == HDF5A_EUNAUTHENTICATED);
        CHECK(strstr(hdf5a_async_errstr(ac), "refused the token") != NULL);
        CHECK(hdf5a_async_ping(ac, on_reply, &b) == HDF5A_ECLOSED);
        hdf5a_async_free(ac);
    }
    /* nothing of the refused connection was applied */
    o = opts_token(TOK_ADMIN);
    hdf5a_client *c = open_ok("127.0.0.1", port, &o);
    if (c) {
        int ex = 1;
        CHECK_RC(c, hdf5a_exists(c, "/team/never", &ex), 0);
        CHECK(ex == 0);
        hdf5a_close(c);
    }
}

/* ================= TLS ================= */

static void test_tls_blocking(void)
{
    if (!fixture())
        return;
    int port = srv_tls.port;
    char err[512] = "";
    /* the right CA, a token */
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    hdf5a_client *c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, "writer", "write"));
    if (c) {
        CHECK_RC(c, hdf5a_write(c, "/tls/x", &three_arr, NULL), 0);
        hdf5a_array *r = NULL;
        CHECK_RC(c, hdf5a_read(c, "/tls/x", &r), 0);
        CHECK(r && r->nbytes == sizeof three && memcmp(r->data, three, sizeof three) == 0);
        hdf5a_array_free(r);
        hdf5a_close(c);
    }
    /* by name: the certificate carries DNS:localhost too */
    c = open_ok("localhost", port, &o);
    CHECK(c != NULL);
    if (c)
        CHECK_RC(c, hdf5a_ping(c), 0);
    hdf5a_close(c);

    /* the wrong CA */
    o = opts_tls(TOK_WRITER, otherca_pem);
    c = (hdf5a_client *)&err;
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "certificate");
    CHECK(c == NULL && strstr(err, "tls_ca_file") != NULL);
    /* no CA file: the system's CAs, which do not know the test CA */
    o = opts_tls(TOK_WRITER, NULL);
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "certificate was refused");
    /* a name the certificate does not carry */
    o = opts_tls(TOK_WRITER, ca_pem);
    o.tls_server_name = "db.example";
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "hostname mismatch");
    CHECK(strstr(err, "db.example") != NULL);
    /* cipher suites: one the server has, or none that exists */
    o = opts_tls(TOK_WRITER, ca_pem);
    o.tls_ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c != NULL);
    if (c)
        CHECK_RC(c, hdf5a_ping(c), 0);
    hdf5a_close(c);
    o.tls_ciphersuites = "TLS_NO_SUCH_SUITE";
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EINVAL, err, "tls_ciphersuites");
    /* verification off: anything goes (and the name says so) */
    o = opts_tls(TOK_WRITER, otherca_pem);
    o.tls_server_name = "db.example";
    o.tls_insecure_skip_verify = 1;
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c != NULL);
    if (c)
        CHECK_RC(c, hdf5a_ping(c), 0);
    hdf5a_close(c);

    /* a client certificate: its CN (alice) names a token, no token sent */
    o = opts_tls(NULL, ca_pem);
    o.tls_cert_file = alice_pem;
    o.tls_key_file = alice_key;
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c && client_is(c, NULL, NULL));
    if (c) {
        CHECK_RC(c, hdf5a_write(c, "/alice/x", &three_arr, NULL), 0);
        CHECK_RC(c, hdf5a_write(c, "/bob/x", &three_arr, NULL), HDF5A_EPERMISSION_DENIED);
        CHECK(strstr(hdf5a_errstr(c), "alice") != NULL);
        hdf5a_close(c);
    }
    /* without it, and without a token: nothing is served */
    o = opts_tls(NULL, ca_pem);
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c != NULL);
    if (c)
        CHECK_RC(c, hdf5a_ping(c), HDF5A_EUNAUTHENTICATED);
    hdf5a_close(c);
    /* a certificate from a CA the server does not trust: the server ends the
     * handshake (under TLS 1.3 the client hears it at its first read) */
    o = opts_tls(TOK_WRITER, ca_pem);
    o.tls_cert_file = mallory_pem;
    o.tls_key_file = mallory_key;
    c = (hdf5a_client *)&err;
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "alert");

    /* a plaintext client on the TLS port: the server's one PROTOCOL_ERROR */
    c = open_ok("127.0.0.1", port, NULL);
    CHECK(c != NULL);
    if (c) {
        CHECK_RC(c, hdf5a_ping(c), HDF5A_EPROTOCOL_ERROR);
        CHECK(strstr(hdf5a_errstr(c), "this port speaks TLS") != NULL);
        hdf5a_close(c);
    }
    o = opts_token(TOK_WRITER);
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_EPROTOCOL_ERROR, err, "this port speaks TLS");
}

/* TLS to a plaintext port: the server closes on the ClientHello. No
 * timeout is set, so a hang would hang the test (alarm() ends it). */
static void test_tls_to_plaintext(void)
{
    if (!fixture())
        return;
    int plain_port = srv_auth.port;
    char err[512] = "";
    hdf5a_client *c = (hdf5a_client *)&err;
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", plain_port, 0, &o, err, sizeof err),
                  HDF5A_ETLS, err, "plaintext");
    CHECK(c == NULL);
    rec x;
    int conn_error = 0;
    async_ping(plain_port, &o, &x, &conn_error);
    CHECK_REC(x, HDF5A_ETLS);
    CHECK(strstr(x.message, "plaintext") != NULL);
    CHECK(conn_error == HDF5A_ETLS);
}

/* The default name checked is the host connected to. */
static void test_tls_server_name(void)
{
    if (!fixture())
        return;
    int port = srv_elsewhere.port;
    char err[512] = "";
    hdf5a_client *c = (hdf5a_client *)&err;
    hdf5a_connect_opts o = opts_tls(NULL, ca_pem);
    CHECK_CONNECT(hdf5a_connect_ex(&c, "127.0.0.1", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "IP address mismatch");
    CHECK(strstr(err, "'127.0.0.1'") != NULL);
    CHECK_CONNECT(hdf5a_connect_ex(&c, "localhost", port, TIMEOUT_MS, &o, err, sizeof err),
                  HDF5A_ETLS, err, "hostname mismatch");
    CHECK(strstr(err, "'localhost'") != NULL);
    o.tls_server_name = "elsewhere.example";
    c = open_ok("127.0.0.1", port, &o);
    CHECK(c != NULL);
    if (c) {
        CHECK_RC(c, hdf5a_ping(c), 0);
        CHECK(client_is(c, NULL, NULL));
    }
    hdf5a_close(c);
    /* async: the handshake fails in the loop */
    rec x;
    int conn_error = 0;
    o.tls_server_name = NULL;
    async_ping(port, &o, &x, &conn_error);
    CHECK_REC(x, HDF5A_ETLS);
    CHECK(strstr(x.message, "IP address mismatch") != NULL);
    CHECK(conn_error == HDF5A_ETLS);
    o.tls_server_name = "elsewhere.example";
    async_ping(port, &o, &x, &conn_error);
    CHECK_REC(x, 0);
    CHECK(conn_error == 0);
}

/* A frame over the server's max_message_size is answered before it is
 * read: the reply arrives, encrypted, while the request is still going. */
static void test_tls_early_reply(void)
{
    if (!fixture())
        return;
    int port = srv_elsewhere.port;
    hdf5a_connect_opts o = opts_tls(NULL, ca_pem);
    o.tls_server_name = "elsewhere.example";
    hdf5a_client *c = open_ok("127.0.0.1", port, &o);
    size_t n = 32u * 1024 * 1024;
    uint8_t *data = calloc(1, n);
    CHECK(c && data);
    if (c && data) {
        uint64_t shape[1] = {n};
        hdf5a_array a = {"|u1", 1, shape, data, n};
        CHECK_RC(c, hdf5a_write(c, "/x", &a, NULL), HDF5A_ETOO_LARGE);
        CHECK(strstr(hdf5a_errstr(c), "max_message_size") != NULL);
        CHECK_RC(c, hdf5a_ping(c), HDF5A_ECLOSED);
    }
    hdf5a_close(c);
    free(data);
}

#define BIG (64u * 1024 * 1024)

typedef struct {
    uint64_t last_done, last_total;
    int calls;
    bool monotonic;
} prog;

static void on_progress(uint64_t done, uint64_t total, void *ud)
{
    prog *p = ud;
    if (total == p->last_total && done < p->last_done)
        p->monotonic = false;
    p->last_done = done;
    p->last_total = total;
    p->calls++;
}

static void test_tls_big_blocking(void)
{
    if (!fixture())
        return;
    int port = srv_tls.port;
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    hdf5a_client *c = open_ok("127.0.0.1", port, &o);
    uint8_t *data = pattern(BIG, 4242);
    CHECK(c && data);
    if (c && data) {
        uint64_t shape[2] = {BIG / 8 / 1024, 1024};
        hdf5a_array a = {"<u8", 2, shape, data, BIG};
        prog pr = {0, 0, 0, true};
        hdf5a_set_progress(c, on_progress, &pr);
        CHECK_RC(c, hdf5a_write(c, "/tls/big", &a, NULL), 0);
        hdf5a_set_progress(c, NULL, NULL);
        /* the request's bytes were counted as they went, to the last */
        CHECK(pr.calls >= 8 && pr.monotonic);
        hdf5a_array *r = NULL;
        pr = (prog){0, 0, 0, true};
        hdf5a_set_progress(c, on_progress, &pr);
        CHECK_RC(c, hdf5a_read(c, "/tls/big", &r), 0);
        CHECK(pr.calls >= 8 && pr.monotonic && pr.last_done == pr.last_total &&
              pr.last_total > BIG);
        CHECK(r && r->ndim == 2 && r->shape[0] == shape[0] && r->nbytes == BIG);
        CHECK(r && (uintptr_t)r->data % 16 == 0);
        CHECK(r && memcmp(r->data, data, BIG) == 0);
        hdf5a_array_free(r);
        /* and a selection of it */
        hdf5a_sel sel[] = {HDF5A_SLICE(1000, 1002, HDF5A_DEFAULT)};
        CHECK_RC(c, hdf5a_read_slice(c, "/tls/big", sel, 1, &r), 0);
        CHECK(r && r->nbytes == 2 * 1024 * 8 &&
              memcmp(r->data, data + 1000 * 1024 * 8, r->nbytes) == 0);
        hdf5a_array_free(r);
    }
    hdf5a_close(c);
    free(data);
}

#define PIPE_N 5000

static int pipe_ok, pipe_calls;

static void on_append(hdf5a_async *ac, const hdf5a_reply *r, void *priv)
{
    pipe_calls++;
    if (r->status == 0 && r->ndim == 1 && r->shape[0] == (uint64_t)(intptr_t)priv + 1)
        pipe_ok++;
}

static void test_tls_async(void)
{
    if (!fixture())
        return;
    int port = srv_tls.port;
    hdf5a_poll p;
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    hdf5a_async *ac = async_open(port, &o, &p);
    uint8_t *data = pattern(BIG, 99);
    CHECK(ac && data);
    if (!ac || !data) {
        hdf5a_async_free(ac);
        free(data);
        return;
    }
    /* queued before the handshake is even started */
    uint64_t shape[1] = {BIG / 4};
    hdf5a_array a = {"<f4", 1, shape, data, BIG};
    rec w = {0}, r = {0};
    CHECK(hdf5a_async_write(ac, "/tls/async_big", &a, NULL, on_reply, &w) == 0);
    CHECK(hdf5a_async_read(ac, "/tls/async_big", on_reply, &r) == 0);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    CHECK_REC(w, 0);
    CHECK(strcmp(w.name, "writer") == 0);
    CHECK_REC(r, 0);
    CHECK(r.array && r.array->nbytes == BIG && memcmp(r.array->data, data, BIG) == 0);
    CHECK(r.array && (uintptr_t)r.array->data % 16 == 0);
    hdf5a_array_free(r.array);

    /* many small requests share records; replies come back in order */
    pipe_ok = pipe_calls = 0;
    int queued = 1;
    for (int64_t i = 0; i < PIPE_N; i++) {
        hdf5a_array one = {"<i8", 0, NULL, &i, sizeof i};
        queued &= hdf5a_async_append(ac, "/tls/pipe", &one, NULL, on_append,
                                     (void *)(intptr_t)i) == 0;
    }
    CHECK(queued);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    CHECK(pipe_calls == PIPE_N && pipe_ok == PIPE_N);
    rec back = {0};
    CHECK(hdf5a_async_read(ac, "/tls/pipe", on_reply, &back) == 0);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    CHECK_REC(back, 0);
    if (back.array) {
        const int64_t *v = back.array->data;
        bool ok = back.array->ndim == 1 && back.array->shape[0] == PIPE_N;
        for (int64_t i = 0; ok && i < PIPE_N; i++)
            ok = v[i] == i;
        CHECK(ok);
    }
    hdf5a_array_free(back.array);
    hdf5a_async_free(ac);
    free(data);

    /* a client certificate, async */
    o = opts_tls(NULL, ca_pem);
    o.tls_cert_file = alice_pem;
    o.tls_key_file = alice_key;
    ac = async_open(port, &o, &p);
    CHECK(ac != NULL);
    if (ac) {
        rec ok = {0}, denied = {0};
        CHECK(hdf5a_async_write(ac, "/alice/async", &three_arr, NULL, on_reply, &ok) == 0);
        CHECK(hdf5a_async_write(ac, "/x", &three_arr, NULL, on_reply, &denied) == 0);
        CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
        CHECK_REC(ok, 0);
        CHECK_REC(denied, HDF5A_EPERMISSION_DENIED);
        hdf5a_async_free(ac);
    }

    /* the wrong CA, async: every pending callback hears why */
    rec x;
    int conn_error = 0;
    o = opts_tls(TOK_WRITER, otherca_pem);
    async_ping(port, &o, &x, &conn_error);
    CHECK_REC(x, HDF5A_ETLS);
    CHECK(strstr(x.message, "certificate") != NULL);
    CHECK(conn_error == HDF5A_ETLS);

    /* a plaintext async client on the TLS port */
    async_ping(port, NULL, &x, &conn_error);
    CHECK_REC(x, HDF5A_EPROTOCOL_ERROR);
    CHECK(strstr(x.message, "this port speaks TLS") != NULL);
    o = opts_token(TOK_WRITER);
    async_ping(port, &o, &x, &conn_error);
    CHECK_REC(x, HDF5A_EPROTOCOL_ERROR);
    CHECK(conn_error == HDF5A_EPROTOCOL_ERROR);
    CHECK(strstr(x.message, "this port speaks TLS") != NULL);
}

/* reconnect over TLS with a token: the connection is lost (a fresh socket
 * put in place of the client's) right after each round of appends went
 * out; the client does the handshake and the auth request again and
 * resends, so every append lands once (each callback gets its own row's
 * length) and runs as the token's identity. */
static void test_tls_async_reconnect(void)
{
    if (!fixture())
        return;
    hdf5a_poll p;
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    o.reconnect = 1;
    o.reconnect_timeout_ms = TIMEOUT_MS;
    hdf5a_async *ac = async_open(srv_tls.port, &o, &p);
    CHECK(ac != NULL);
    if (!ac)
        return;
    rec up = {0};
    CHECK(hdf5a_async_ping(ac, on_reply, &up) == 0);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    CHECK_REC(up, 0);
    enum { ROUNDS = 3, PER = 50 };
    pipe_ok = pipe_calls = 0;
    int lost = 0;
    for (int64_t round = 0; round < ROUNDS; round++) {
        for (int64_t i = round * PER; i < (round + 1) * PER; i++) {
            hdf5a_array one = {"<i8", 0, NULL, &i, sizeof i};
            CHECK(hdf5a_async_append(ac, "/tls/again", &one, NULL, on_append,
                                     (void *)(intptr_t)i) == 0);
        }
        hdf5a_async_handle_write(ac);
        int fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fresh >= 0 && dup2(fresh, hdf5a_async_fd(ac)) >= 0)
            lost++;
        if (fresh >= 0)
            close(fresh);
        CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
        CHECK(hdf5a_async_error(ac) == 0);
    }
    CHECK(lost == ROUNDS);
    CHECK_MSG(pipe_calls == ROUNDS * PER && pipe_ok == ROUNDS * PER, "%d calls, %d ok",
              pipe_calls, pipe_ok);
    rec back = {0};
    CHECK(hdf5a_async_read(ac, "/tls/again", on_reply, &back) == 0);
    CHECK(hdf5a_poll_run(&p, TIMEOUT_MS) == 0);
    CHECK_REC(back, 0);
    CHECK(strcmp(back.name, "writer") == 0);
    if (back.array) {
        const int64_t *v = back.array->data;
        bool ok = back.array->ndim == 1 && back.array->shape[0] == ROUNDS * PER;
        for (int64_t i = 0; ok && i < ROUNDS * PER; i++)
            ok = v[i] == i;
        CHECK(ok);
    }
    hdf5a_array_free(back.array);
    hdf5a_async_free(ac);
}

/* ---- the libuv adapter over TLS ---- */

#define UV_BYTES (8u * 1024 * 1024)

static void on_uv_last(hdf5a_async *ac, const hdf5a_reply *r, void *priv)
{
    on_reply(ac, r, priv);
    hdf5a_async_free(ac); /* from inside the callback, under libuv */
}

static void test_tls_libuv(void)
{
    if (!fixture())
        return;
    int port = srv_tls.port;
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    char err[512] = "";
    hdf5a_async *ac = NULL;
    hdf5a_connect_opts o = opts_tls(TOK_WRITER, ca_pem);
    CHECK(hdf5a_async_connect_ex(&ac, "localhost", port, &o, err, sizeof err) == 0);
    uint8_t *data = pattern(UV_BYTES, 7);
    if (ac && data) {
        CHECK(hdf5a_libuv_attach(ac, &loop) == 0);
        uint64_t shape[1] = {UV_BYTES};
        hdf5a_array a = {"|u1", 1, shape, data, UV_BYTES};
        rec w = {0}, r = {0};
        CHECK(hdf5a_async_write(ac, "/tls/uv", &a, NULL, on_reply, &w) == 0);
        CHECK(hdf5a_async_read(ac, "/tls/uv", on_uv_last, &r) == 0);
        CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
        CHECK_REC(w, 0);
        CHECK_REC(r, 0);
        CHECK(r.array && r.array->nbytes == UV_BYTES &&
              memcmp(r.array->data, data, UV_BYTES) == 0);
        hdf5a_array_free(r.array);
    } else {
        fprintf(stderr, "libuv connect: %s\n", err);
        hdf5a_async_free(ac);
    }
    free(data);
    CHECK(uv_loop_close(&loop) == 0);
}

static const check_test tests[] = {
    CHECK_TEST(test_options),         CHECK_TEST(test_tokens_blocking),
    CHECK_TEST(test_tokens_async),    CHECK_TEST(test_tls_blocking),
    CHECK_TEST(test_tls_to_plaintext), CHECK_TEST(test_tls_server_name),
    CHECK_TEST(test_tls_early_reply), CHECK_TEST(test_tls_big_blocking),
    CHECK_TEST(test_tls_async),       CHECK_TEST(test_tls_libuv),
    CHECK_TEST(test_tls_async_reconnect),
};

int main(int argc, char **argv)
{
    check_select(argc, argv, tests, CHECK_COUNT(tests));
    server_bin = getenv("H5A_SERVER");
    if (!server_bin)
        server_bin = "build/hdf5-async-server";
    alarm(600); /* a hung test fails instead of hanging CI */
    check_run();
    fixture_down();
    return check_summary();
}
