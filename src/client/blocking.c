/* The blocking API: one call, one round trip, bounded by the client's
 * timeout. The socket is non-blocking underneath so that every wait goes
 * through poll() with the time that is left.
 *
 * Copies: a write's element bytes go from the caller's memory to the kernel
 * (sendmsg over two iovecs: the encoded header, then the data); a read's
 * reply is received into one allocation that the returned array then owns,
 * with the data pointing into it.
 *
 * Over TLS (tls.c) the same two pieces are encrypted from the caller's
 * memory into the session's output, which is sent through a staging buffer
 * about TLS_STAGE bytes at a time; replies are decrypted straight into
 * their allocation from ciphertext received into a second staging buffer.
 *
 * Connecting is in blocking_connect.c, the API's calls in blocking_ops.c,
 * the client's fields in blocking.h. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client/blocking.h"
#include "proto/errors.h"

/* ---- progress ---- */

/* Bytes between two progress calls (a direction's completion is always
 * reported). */
#define PROGRESS_STEP (1u << 20)

/* One direction of a round trip: how far it is, and what was last told. */
typedef struct {
    uint64_t done, total, told;
} xfer;

/* Counts n more bytes moved and calls the hook when due. */
static void advance(hdf5a_client *c, xfer *x, size_t n)
{
    x->done += n;
    if (c->progress && (x->done == x->total || x->done - x->told >= PROGRESS_STEP)) {
        x->told = x->done;
        c->progress(x->done, x->total, c->progress_ud);
    }
}

/* ---- time ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t h5c_blocking_deadline(int timeout_ms)
{
    return timeout_ms > 0 ? now_ms() + timeout_ms : -1;
}

/* poll()'s timeout for the time left until deadline (-1: none). */
static int ms_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits for events on fd. 0, or HDF5A_ETIMEOUT / HDF5A_EIO. */
int h5c_blocking_wait_fd(int fd, short events, int64_t deadline, short *revents)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, ms_left(deadline));
        if (n > 0) {
            *revents = p.revents;
            return 0;
        }
        if (n == 0)
            return HDF5A_ETIMEOUT;
        if (errno != EINTR)
            return HDF5A_EIO;
    }
}
/* ---- the connection ---- */

/* The connection can no longer be trusted (a frame is half sent or half
 * read): close it, so every later call fails fast with HDF5A_ECLOSED. */
static int conn_fail(hdf5a_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int conn_fail(hdf5a_client *c, int code, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
        va_end(ap);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return code;
}

static int wait_or_fail(hdf5a_client *c, short events, int64_t deadline, short *rev)
{
    int rc = h5c_blocking_wait_fd(c->fd, events, deadline, rev);
    if (rc == HDF5A_ETIMEOUT)
        return conn_fail(c, rc, "no reply within %d ms", c->timeout_ms);
    if (rc)
        return conn_fail(c, rc, "poll: %s", strerror(errno));
    return 0;
}

/* ---- TLS: ciphertext between the session and the socket ---- */

/* Sends the staged ciphertext, then whatever else the session holds for the
 * server, waiting as needed. */
static int tls_flush(hdf5a_client *c, int64_t deadline)
{
    for (;;) {
        if (c->cout_pos == c->cout_len) {
            c->cout_pos = 0;
            c->cout_len = h5c_tls_take_out(c->tls, c->cout, TLS_STAGE);
            if (!c->cout_len)
                return 0;
        }
        ssize_t k = send(c->fd, c->cout + c->cout_pos, c->cout_len - c->cout_pos, MSG_NOSIGNAL);
        if (k >= 0) {
            c->cout_pos += (size_t)k;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            return conn_fail(c, HDF5A_ECLOSED, "the server closed the connection");
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, HDF5A_EIO, "send: %s", strerror(errno));
        short rev;
        int rc = wait_or_fail(c, POLLOUT, deadline, &rev);
        if (rc)
            return rc;
    }
}

/* Receives what ciphertext is there into the session. *got: some came;
 * *eof: the server closed the connection. 0, or a failure (connection
 * closed). */
static int tls_recv(hdf5a_client *c, bool *got, bool *eof)
{
    *eof = *got = false;
    for (;;) {
        size_t room;
        uint8_t *dst = h5c_tls_in_space(c->tls, TLS_STAGE, &room);
        if (!dst)
            return conn_fail(c, HDF5A_ENOMEM, "out of memory for TLS input");
        ssize_t k = recv(c->fd, dst, room, 0); /* straight into the session's input */
        if (k > 0) {
            *got = true;
            h5c_tls_in_commit(c->tls, (size_t)k);
            return 0;
        }
        if (k == 0 || errno == ECONNRESET) {
            *eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return conn_fail(c, HDF5A_EIO, "recv: %s", strerror(errno));
    }
}

/* A TLS failure: the session's text, the connection closed. */
static int tls_fail(hdf5a_client *c, int rc)
{
    return conn_fail(c, rc, NULL);
}

/* The handshake, within deadline. */
int h5c_blocking_handshake(hdf5a_client *c, int64_t deadline)
{
    for (;;) {
        int r = h5c_tls_handshake(c->tls, c->errstr, sizeof c->errstr);
        if (r < 0)
            return tls_fail(c, r == HDF5A_ECLOSED ? HDF5A_ETLS : r);
        int rc = tls_flush(c, deadline); /* our flight first, also after the last step */
        if (rc)
            return rc;
        if (r == 1)
            return 0;
        short rev;
        if ((rc = wait_or_fail(c, POLLIN, deadline, &rev)))
            return rc == HDF5A_ETIMEOUT ? conn_fail(c, rc, "TLS handshake: no answer in time")
                                        : rc;
        bool got, eof;
        if ((rc = tls_recv(c, &got, &eof)))
            return rc;
        if (eof)
            return conn_fail(c, HDF5A_ETLS,
                             "the server closed the connection during the TLS handshake "
                             "(is its port a plaintext one? it does not answer TLS)");
    }
}

/* Plaintext of the reply into p (up to n bytes; *got > 0 on success): what
 * came while the request was being sent first, then the session's. */
static int tls_recv_some(hdf5a_client *c, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    *got = 0;
    if (c->early_pos < c->early_len) {
        size_t k = c->early_len - c->early_pos < n ? c->early_len - c->early_pos : n;
        memcpy(p, c->cin + c->early_pos, k);
        c->early_pos += k;
        *got = k;
        return 0;
    }
    for (;;) {
        int rc = h5c_tls_read(c->tls, p, n, got, c->errstr, sizeof c->errstr);
        if (rc)
            return tls_fail(c, rc);
        /* the session may have an answer of its own to send (a key update) */
        if (h5c_tls_out_pending(c->tls) && (rc = tls_flush(c, deadline)))
            return rc;
        if (*got)
            return 0;
        bool some, eof;
        if ((rc = tls_recv(c, &some, &eof)))
            return rc;
        if (eof)
            return conn_fail(c, HDF5A_ECLOSED, "the server closed the connection");
        short rev;
        if (!some && (rc = wait_or_fail(c, POLLIN, deadline, &rev)))
            return rc;
    }
}

/* The server sent something while the request was still going out: the
 * session's own messages (TLS 1.3 session tickets come after the
 * handshake), or the start of a reply, kept in cin (early_*). *reply: it
 * was. */
static int tls_take_early(hdf5a_client *c, bool *reply)
{
    *reply = false;
    bool some, eof;
    int rc = tls_recv(c, &some, &eof);
    if (rc)
        return rc;
    if (eof) { /* the server may have said why before it closed */
        *reply = true;
        return 0;
    }
    size_t got;
    if ((rc = h5c_tls_read(c->tls, c->cin, TLS_STAGE, &got, c->errstr, sizeof c->errstr)))
        return tls_fail(c, rc);
    c->early_pos = 0;
    c->early_len = got;
    *reply = got > 0;
    return 0;
}

/* send_request over TLS. Plaintext is encrypted in pieces that fill one
 * stage, so each stage empties the session's output and progress counts
 * what reached the kernel. */
static int tls_send(hdf5a_client *c, struct iovec *iov, int n, int64_t deadline, bool *complete,
                    xfer *x)
{
    size_t off = 0, unreported = 0;
    int i = 0;
    for (;;) {
        if (c->cout_pos < c->cout_len) {
            ssize_t k = send(c->fd, c->cout + c->cout_pos, c->cout_len - c->cout_pos,
                             MSG_NOSIGNAL);
            if (k >= 0) {
                c->cout_pos += (size_t)k;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return 0; /* the server may have said why before it closed */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return conn_fail(c, HDF5A_EIO, "send: %s", strerror(errno));
            short rev;
            int rc = wait_or_fail(c, POLLOUT | POLLIN, deadline, &rev);
            if (rc)
                return rc;
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                bool reply;
                if ((rc = tls_take_early(c, &reply)))
                    return rc;
                if (reply)
                    return 0;
            }
            continue;
        }
        size_t pend = h5c_tls_out_pending(c->tls);
        if (!pend && unreported) {
            advance(c, x, unreported);
            unreported = 0;
        }
        while (i < n && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        size_t room = TLS_STAGE > pend + TLS_SLACK ? TLS_STAGE - pend - TLS_SLACK : 0;
        size_t rest = i < n ? iov[i].iov_len - off : 0;
        /* small pieces share records and stages; large ones fill them */
        if (rest && (rest <= room || room >= 16384)) {
            size_t k = rest < room ? rest : room;
            int rc = h5c_tls_write(c->tls, (const char *)iov[i].iov_base + off, k, c->errstr,
                                   sizeof c->errstr);
            if (rc)
                return tls_fail(c, rc);
            off += k;
            unreported += k;
            continue;
        }
        if (!pend) {
            *complete = true;
            return 0;
        }
        c->cout_pos = 0;
        c->cout_len = h5c_tls_take_out(c->tls, c->cout, TLS_STAGE);
    }
}

/* ---- one round trip ---- */

/* Sends the iovecs. *complete is false when the server answered (or
 * closed) before taking the whole request: it refuses a frame over its
 * max_message_size without reading it, and that answer is worth reading. */
static int send_request(hdf5a_client *c, struct iovec *iov, int n, int64_t deadline,
                        bool *complete)
{
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    xfer x = {0};
    for (int i = 0; i < n; i++)
        x.total += iov[i].iov_len;
    *complete = false;
    if (c->tls)
        return tls_send(c, iov, n, deadline, complete, &x);
    for (;;) {
        while (m.msg_iovlen && m.msg_iov->iov_len == 0) {
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (!m.msg_iovlen) {
            *complete = true;
            return 0;
        }
        /* With a progress hook, at most PROGRESS_STEP per call: on loopback
         * one sendmsg can take a whole 64 MiB request while the server
         * drains it, and the hook would hear only the end. */
        struct iovec cut[4];
        struct msghdr sm = m;
        if (c->progress) {
            size_t left = PROGRESS_STEP, nv = 0;
            for (; nv < m.msg_iovlen && nv < 4 && left; nv++) {
                cut[nv] = m.msg_iov[nv];
                if (cut[nv].iov_len > left) cut[nv].iov_len = left;
                left -= cut[nv].iov_len;
            }
            sm.msg_iov = cut;
            sm.msg_iovlen = nv;
        }
        /* sendmsg is writev with flags: MSG_NOSIGNAL keeps a closed peer
         * from killing the caller with SIGPIPE */
        ssize_t k = sendmsg(c->fd, &sm, MSG_NOSIGNAL);
        if (k >= 0) {
            advance(c, &x, (size_t)k);
            size_t done = (size_t)k;
            while (done) {
                size_t step = done < m.msg_iov->iov_len ? done : m.msg_iov->iov_len;
                m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + step;
                m.msg_iov->iov_len -= step;
                done -= step;
                if (!m.msg_iov->iov_len) {
                    m.msg_iov++;
                    m.msg_iovlen--;
                }
            }
            continue;
        }
        if (errno == EINTR)
            continue;
        /* the server may have said why before it closed: read that */
        if (errno == EPIPE || errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, HDF5A_EIO, "send: %s", strerror(errno));
        short rev;
        int rc = wait_or_fail(c, POLLOUT | POLLIN, deadline, &rev);
        if (rc)
            return rc;
        if (rev & (POLLIN | POLLHUP | POLLERR))
            return 0;
    }
}

/* Receives n bytes into p; x (NULL: none) counts them for progress. */
static int recv_exact(hdf5a_client *c, uint8_t *p, size_t n, int64_t deadline, xfer *x)
{
    while (n) {
        if (c->tls) {
            size_t got;
            int rc = tls_recv_some(c, p, n, deadline, &got);
            if (rc)
                return rc;
            if (x)
                advance(c, x, got);
            p += got;
            n -= got;
            continue;
        }
        ssize_t k = recv(c->fd, p, n, 0);
        if (k > 0) {
            if (x)
                advance(c, x, (size_t)k);
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0 || errno == ECONNRESET)
            return conn_fail(c, HDF5A_ECLOSED, "the server closed the connection");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, HDF5A_EIO, "recv: %s", strerror(errno));
        short rev;
        int rc = wait_or_fail(c, POLLIN, deadline, &rev);
        if (rc)
            return rc;
    }
    return 0;
}

/* The result of a reply into out, by op: a hdf5a_array ** (read,
 * read_slice, get_attr), hdf5a_listing ** (list, walk, list_attrs),
 * hdf5a_objinfo ** (info), int * (exists) or h5c_identity * (auth). */
static int decode_result(h5c_op op, const mp_node *res, void **block, void *out, char *err,
                         size_t errlen)
{
    switch (op) {
    case H5C_READ:
    case H5C_READ_SLICE:
    case H5C_GET_ATTR: return h5c_result_array(res, block, out, err, errlen);
    case H5C_LIST:
    case H5C_WALK:
    case H5C_LIST_ATTRS:
    case H5C_LIST_FILES: return h5c_result_listing(op, res, out, err, errlen);
    case H5C_INFO: return h5c_result_info(res, out, err, errlen);
    case H5C_EXISTS: return h5c_result_bool(res, out, err, errlen);
    case H5C_AUTH: return h5c_result_identity(res, out, err, errlen);
    case H5C_COMPACT: return h5c_result_sizes(res, out, err, errlen);
    case H5C_BATCH: return h5c_result_batch(res, out, err, errlen);
    /* a caller passed out for an op with no such result: a bug here */
    default: return h5a_fail(err, errlen, HDF5A_EINVAL, "no result decoder for op %d", (int)op);
    }
}

/* Sends req and decodes its reply by deadline; out gets the result
 * (decode_result), for the ops whose result is a shape (h5c_op_gives_shape)
 * ndim/shape get it. */
int h5c_blocking_call_by(hdf5a_client *c, const h5c_request *req, int64_t deadline, int *ndim,
                         uint64_t *shape, void *out)
{
    if (!c)
        return HDF5A_EINVAL;
    c->errstr[0] = '\0';
    c->moved_to[0] = '\0';
    if (c->fd < 0) {
        snprintf(c->errstr, sizeof c->errstr,
                 "the connection was closed after an earlier error");
        return HDF5A_ECLOSED;
    }
    h5c_request sent = *req;
    if (sent.durability == HDF5A_DURABILITY_DEFAULT)
        sent.durability = h5c_durability_for(sent.op, c->durability);
    if (!sent.file)
        sent.file = c->file;
    uint64_t id = ++c->next_id;
    const void *tail;
    size_t tail_len;
    c->hdr.len = 0;
    int rc = h5c_encode_request(&c->hdr, id, &sent, &tail, &tail_len, c->errstr,
                                sizeof c->errstr);
    if (rc)
        return rc;

    struct iovec iov[2] = {{c->hdr.data, c->hdr.len}, {(void *)tail, tail_len}};
    bool complete;
    rc = send_request(c, iov, tail_len ? 2 : 1, deadline, &complete);
    if (req->token) /* sent (or not): it has no business staying in memory */
        h5c_wipe(c->hdr.data, c->hdr.len);
    if (rc)
        return rc;

    uint8_t lenbuf[4];
    if ((rc = recv_exact(c, lenbuf, 4, deadline, NULL)))
        return rc;
    size_t len = h5c_be32(lenbuf);
    if (len == 0)
        return conn_fail(c, HDF5A_EREPLY, "the server sent an empty frame");
    void *block;
    uint8_t *payload = h5c_frame_alloc(len, &block);
    if (!payload)
        return conn_fail(c, HDF5A_ENOMEM, "out of memory for a reply of %zu bytes", len);
    /* the prefix is counted as received; its bytes told nothing before */
    xfer x = {4, 4 + (uint64_t)len, 0};
    if ((rc = recv_exact(c, payload, len, deadline, &x))) {
        free(block);
        return rc;
    }

    h5c_reply r;
    rc = h5c_decode_reply(payload, len, &c->doc, id, &r, c->errstr, sizeof c->errstr);
    if (rc) {
        free(block);
        return conn_fail(c, rc, NULL);
    }
    c->last_index = r.index;
    if (r.status) {
        rc = r.status;
        snprintf(c->errstr, sizeof c->errstr, "%.*s", (int)r.message_len, r.message);
        if (rc == HDF5A_EWRONG_NODE && r.node && r.node_len < sizeof c->moved_to &&
            !memchr(r.node, '\0', r.node_len))
            snprintf(c->moved_to, sizeof c->moved_to, "%.*s", (int)r.node_len, r.node);
    } else if (out) {
        rc = decode_result(req->op, r.result, &block, out, c->errstr, sizeof c->errstr);
    } else if (ndim) {
        rc = h5c_result_shape(r.result, ndim, shape, c->errstr, sizeof c->errstr);
    }
    free(block);
    if (!complete) {
        /* the rest of our frame would be taken as a new one */
        conn_fail(c, 0, NULL);
        if (rc == 0)
            rc = h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EREPLY,
                          "the server replied before the request was sent");
    }
    return rc;
}

/* One request; with reconnect, carrying client_id and seq, and sent again
 * (the same seq: the server applies it at most once) on a new connection
 * when this one is lost, until reconnect_timeout_ms. */
static int call_retrying(hdf5a_client *c, const h5c_request *req, int *ndim, uint64_t *shape,
                         void *out)
{
    if (!c || !c->reconnect)
        return h5c_blocking_call_by(c, req, h5c_blocking_deadline(c ? c->timeout_ms : 0), ndim,
                                    shape, out);
    h5c_request r = *req;
    r.client_id = c->client_id;
    r.seq = ++c->next_seq;
    int64_t give_up = -1;
    int delay = 50;
    for (;;) {
        int rc = h5c_blocking_call_by(c, &r, h5c_blocking_deadline(c->timeout_ms), ndim, shape,
                                      out);
        if (rc != HDF5A_EIO && rc != HDF5A_ECLOSED)
            return rc;
        if (give_up < 0)
            give_up = now_ms() + c->reconnect_timeout_ms;
        char why[H5C_ERRLEN];
        snprintf(why, sizeof why, "%s", c->errstr);
        for (;;) {
            int64_t left = give_up - now_ms();
            if (left <= 0) {
                snprintf(c->errstr, sizeof c->errstr,
                         "connection to %.80s lost and not regained within %d ms: %.800s",
                         c->peer, c->reconnect_timeout_ms, why);
                return rc;
            }
            if (h5c_blocking_reconnect(c, why, sizeof why) == 0)
                break;
            poll(NULL, 0, delay < left ? delay : (int)left);
            delay = delay * 2 > 1000 ? 1000 : delay * 2;
        }
    }
}

/* cluster_nodes: the connection moves to the owner of the request's file
 * (cluster_route.c) before the request is sent. */
static int route(hdf5a_client *c, const h5c_request *req)
{
    const char *owner = h5c_nodes_owner(&c->nodes, req->file ? req->file : c->file);
    char here[300], why[H5C_ERRLEN];
    if (!owner)
        return 0;
    snprintf(here, sizeof here, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    if (strcmp(owner, here) == 0)
        return 0;
    int rc = h5c_blocking_switch_node(c, owner, why, sizeof why);
    if (rc)
        snprintf(c->errstr, sizeof c->errstr,
                 "connecting to %.200s, the file's owner by cluster_nodes: %.700s", owner, why);
    return rc;
}

/* One request; with follow_wrong_node, sent again to the node a WRONG_NODE
 * reply names (nothing was applied where it was refused), at most
 * HDF5A_MAX_WRONG_NODE_HOPS times, never back to a node this call tried. */
int h5c_blocking_call(hdf5a_client *c, const h5c_request *req, int *ndim, uint64_t *shape,
                      void *out)
{
    int rc = c && c->nodes.n ? route(c, req) : 0;
    if (rc)
        return rc;
    rc = call_retrying(c, req, ndim, shape, out);
    if (rc != HDF5A_EWRONG_NODE || !c || !c->follow || !c->moved_to[0])
        return rc;
    char path[H5C_ERRLEN]; /* the nodes tried, for the message */
    snprintf(path, sizeof path, "%s:%d", c->host, c->port);
    for (int hops = 0;; hops++) {
        char to[sizeof c->moved_to];
        snprintf(to, sizeof to, "%s", c->moved_to);
        bool seen = h5c_path_has(path, to); /* a node already tried */
        size_t used = strlen(path);
        snprintf(path + used, sizeof path - used, " -> %s", to);
        if (seen || hops == HDF5A_MAX_WRONG_NODE_HOPS) {
            snprintf(c->errstr, sizeof c->errstr,
                     "WRONG_NODE %s (%.900s): the nodes' [cluster] lists disagree; nothing was "
                     "applied",
                     seen ? "redirections loop" : "redirected too many times", path);
            return HDF5A_EWRONG_NODE;
        }
        char why[H5C_ERRLEN];
        if ((rc = h5c_blocking_switch_node(c, to, why, sizeof why))) {
            snprintf(c->errstr, sizeof c->errstr,
                     "following WRONG_NODE to %.200s: %.700s; nothing was applied", to, why);
            snprintf(c->moved_to, sizeof c->moved_to, "%s", to); /* hdf5a_wrong_node */
            return rc;
        }
        rc = call_retrying(c, req, ndim, shape, out);
        if (rc != HDF5A_EWRONG_NODE || !c->moved_to[0])
            return rc;
    }
}

