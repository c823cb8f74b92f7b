/* The blocking client's connection from start to end: TCP to the first
 * address that answers, TLS, the token; the copies of the options that
 * reconnect and follow_wrong_node keep, and the connection made again from
 * them (after a loss, or on another node); closing. Apart from blocking.c,
 * which is about one round trip on a connection once it is there. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/blocking.h"
#include "proto/errors.h"

/* One address: connect within the deadline. Returns the fd or -1 with
 * *code and err set; name (80 bytes) gets "host:port". */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *code, char *name,
                       char *err, size_t errlen)
{
    h5c_addr_name(ai, name, 80);
    int error;
    int fd = h5c_connect_start(ai, &error);
    if (fd < 0) {
        *code = h5a_fail(err, errlen, HDF5A_EIO, "socket: %s", strerror(errno));
        return -1;
    }
    if (!error) {
        short rev;
        int rc = h5c_blocking_wait_fd(fd, POLLOUT, deadline, &rev);
        socklen_t len = sizeof error;
        if (rc == HDF5A_ETIMEOUT) {
            close(fd);
            *code = h5a_fail(err, errlen, HDF5A_ETIMEOUT, "connect to %s: timed out", name);
            return -1;
        }
        if (rc || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
            error = errno;
    }
    if (error) {
        close(fd);
        *code = h5a_fail(err, errlen, HDF5A_EIO, "connect to %s: %s", name, strerror(error));
        return -1;
    }
    return fd;
}

static void free_ropts(h5c_opts *o)
{
    char *token = (char *)o->token; /* ours: strdup'd at connect */
    h5c_wipe_str(&token);
    free((char *)o->ca_file);
    free((char *)o->cert_file);
    free((char *)o->key_file);
    free((char *)o->server_name);
    free((char *)o->ciphersuites);
    memset(o, 0, sizeof *o);
}

static void client_free(hdf5a_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free_ropts(&c->ropts);
    h5c_nodes_free(&c->nodes);
    free(c->host);
    h5c_tls_free(c->tls);
    free(c->cin);
    free(c->cout);
    mp_buf_free(&c->hdr);
    mp_doc_free(&c->doc);
    free(c->file);
    free(c);
}

/* TCP to the first address of host that answers; c->fd, c->peer. */
static int connect_tcp(hdf5a_client *c, const char *host, int port, int64_t deadline, char *err,
                       size_t errlen)
{
    struct addrinfo *list = NULL;
    int rc = h5c_resolve(host, port, &list, err, errlen);
    if (rc)
        return rc;
    int fd = -1, code = 0;
    for (int pass = 0; pass < 2 && fd < 0 && code != HDF5A_ETIMEOUT; pass++)
        for (struct addrinfo *ai = list; ai && fd < 0 && code != HDF5A_ETIMEOUT; ai = ai->ai_next)
            if (h5c_addr_in_pass(ai, pass))
                fd = connect_one(ai, deadline, &code, c->peer, err, errlen);
    freeaddrinfo(list);
    if (fd < 0)
        return code ? code : h5a_fail(err, errlen, HDF5A_EIO, "cannot connect");
    c->fd = fd;
    h5c_set_nodelay(fd);
    return 0;
}

/* The auth request, first on the connection. */
static int authenticate(hdf5a_client *c, const char *token, int64_t deadline, char *err,
                        size_t errlen)
{
    h5c_request r = {.op = H5C_AUTH, .token = token};
    int rc = h5c_blocking_call_by(c, &r, deadline, NULL, NULL, &c->ident);
    if (rc == HDF5A_EUNAUTHENTICATED)
        return h5a_fail(err, errlen, rc, "%s refused the token: %s", c->peer, c->errstr);
    if (rc)
        return h5a_fail(err, errlen, rc, "%s: %s", c->peer, c->errstr);
    return 0;
}

/* Keep what reconnecting needs: copies of the options' strings, and a
 * random client_id. */
static int keep_for_reconnect(hdf5a_client *c, const char *host, int port, const h5c_opts *o)
{
    c->reconnect = o->reconnect;
    c->follow = o->follow_wrong_node;
    c->reconnect_timeout_ms = o->reconnect_timeout_ms ? o->reconnect_timeout_ms : 60000;
    c->port = port;
    c->ropts = *o;
    c->ropts.token = c->ropts.ca_file = c->ropts.cert_file = c->ropts.key_file = NULL;
    c->ropts.server_name = c->ropts.ciphersuites = NULL;
#define DUP(f) (!o->f || (c->ropts.f = strdup(o->f)))
    if (!(c->host = strdup(host)) || !DUP(token) || !DUP(ca_file) || !DUP(cert_file) ||
        !DUP(key_file) || !DUP(server_name) || !DUP(ciphersuites))
        return HDF5A_ENOMEM;
#undef DUP
    unsigned char rnd[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(rnd, 1, sizeof rnd, f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof rnd) { /* no /dev/urandom: the clock and the pid */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < sizeof rnd; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            rnd[i] = (unsigned char)(x >> 56);
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->client_id + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

/* A new connection in place of the lost one: TCP, TLS, the token. */
int h5c_blocking_reconnect(hdf5a_client *c, char *err, size_t errlen)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    h5c_tls_free(c->tls);
    c->tls = NULL;
    c->cout_pos = c->cout_len = c->early_pos = c->early_len = 0;
    int64_t deadline =
        h5c_blocking_deadline(c->timeout_ms ? c->timeout_ms : c->reconnect_timeout_ms);
    int rc;
    if (c->ropts.tls && (rc = h5c_tls_new(&c->tls, &c->ropts, c->host, err, errlen)))
        return rc;
    if ((rc = connect_tcp(c, c->host, c->port, deadline, err, errlen)))
        return rc;
    if (c->tls && (rc = h5c_blocking_handshake(c, deadline))) {
        snprintf(err, errlen, "%s", c->errstr);
        goto fail;
    }
    if (c->ropts.token && (rc = authenticate(c, c->ropts.token, deadline, err, errlen)))
        goto fail;
    c->errstr[0] = '\0';
    return 0;
fail:
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return rc;
}

/* The connection moved to the node at addr (TLS, the token as at first);
 * on failure back to the node it was on (or closed when that fails too). */
int h5c_blocking_switch_node(hdf5a_client *c, const char *addr, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (h5c_parse_node(addr, host, sizeof host, &port))
        return h5a_fail(err, errlen, HDF5A_EREPLY, "the server named node '%s', not HOST:PORT",
                        addr);
    char *old_host = c->host, *new_host = strdup(host);
    int old_port = c->port;
    if (!new_host)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    c->host = new_host;
    c->port = port;
    int rc = h5c_blocking_reconnect(c, err, errlen);
    if (rc == 0) {
        free(old_host);
        return 0;
    }
    free(new_host);
    c->host = old_host;
    c->port = old_port;
    char ignored[H5C_ERRLEN];
    h5c_blocking_reconnect(c, ignored, sizeof ignored);
    return rc;
}

HDF5A_API void hdf5a_connect_opts_init(hdf5a_connect_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
}

HDF5A_API int hdf5a_connect_ex(hdf5a_client **out, const char *host, int port, int timeout_ms,
                               const hdf5a_connect_opts *opts, char *err, size_t errlen)
{
    char why[H5C_ERRLEN] = "";
    hdf5a_client *c = NULL;
    h5c_opts o;
    int rc;
    if (!out) {
        rc = h5a_fail(why, sizeof why, HDF5A_EINVAL, "out is NULL");
        goto fail;
    }
    *out = NULL;
    if (timeout_ms < 0) {
        rc = h5a_fail(why, sizeof why, HDF5A_EINVAL, "timeout_ms is negative");
        goto fail;
    }
    if (!host || !*host) {
        rc = h5a_fail(why, sizeof why, HDF5A_EINVAL, "no host given");
        goto fail;
    }
    if ((rc = h5c_opts_import(opts, &o, why, sizeof why)))
        goto fail;
    if (!(c = calloc(1, sizeof *c))) {
        rc = h5a_fail(why, sizeof why, HDF5A_ENOMEM, "out of memory");
        goto fail;
    }
    c->fd = -1;
    c->last_index = -1;
    c->timeout_ms = timeout_ms;
    if ((o.reconnect || o.follow_wrong_node) && (rc = keep_for_reconnect(c, host, port, &o))) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    if (o.cluster_nodes && (rc = h5c_nodes_parse(o.cluster_nodes, &c->nodes, why, sizeof why)))
        goto fail;
    /* certificates and keys first: a bad file is reported whether or not
     * the server is up */
    if (o.tls) {
        if ((rc = h5c_tls_new(&c->tls, &o, host, why, sizeof why)))
            goto fail;
        if (!(c->cin = malloc(TLS_STAGE)) || !(c->cout = malloc(TLS_STAGE))) {
            rc = h5a_fail(why, sizeof why, HDF5A_ENOMEM, "out of memory");
            goto fail;
        }
    }
    int64_t deadline = h5c_blocking_deadline(timeout_ms);
    if ((rc = connect_tcp(c, host, port, deadline, why, sizeof why)))
        goto fail;
    if (c->tls && (rc = h5c_blocking_handshake(c, deadline))) {
        snprintf(why, sizeof why, "%.80s: %.900s", c->peer, c->errstr);
        goto fail;
    }
    if (o.token && (rc = authenticate(c, o.token, deadline, why, sizeof why)))
        goto fail;
    c->errstr[0] = '\0';
    *out = c;
    return 0;
fail:
    if (c)
        client_free(c);
    if (err && errlen)
        snprintf(err, errlen, "%s", why[0] ? why : "cannot connect");
    return rc;
}

HDF5A_API hdf5a_client *hdf5a_connect(const char *host, int port, int timeout_ms, char *err,
                                      size_t errlen)
{
    hdf5a_client *c = NULL;
    hdf5a_connect_ex(&c, host, port, timeout_ms, NULL, err, errlen);
    return c;
}

HDF5A_API void hdf5a_close(hdf5a_client *c)
{
    if (!c)
        return;
    if (c->tls && c->fd >= 0 && c->cout_pos == c->cout_len) {
        /* a close_notify, if the socket takes it now: the server then sees
         * an orderly end; it does not wait for one */
        h5c_tls_close_notify(c->tls);
        size_t n = h5c_tls_take_out(c->tls, c->cout, TLS_STAGE);
        if (n)
            (void)send(c->fd, c->cout, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    client_free(c);
}

