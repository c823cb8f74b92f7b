/* The asynchronous API, after hiredis' async.c: the context owns a socket,
 * an output buffer, an input buffer with a frame parser over it, and a FIFO
 * of callbacks. The caller's event loop tells us when the socket is
 * readable or writable (hdf5a_async_handle_read/_write, usually through an
 * adapter) and we tell it what we want through the hooks in
 * hdf5a_async_events.
 *
 * Rules kept everywhere below:
 *  - every callback fires exactly once: with its reply, or with
 *    HDF5A_ECLOSED when the connection fails or the context is freed;
 *  - replies come in request order, so the FIFO's head is the request the
 *    next reply answers; its id is checked anyway, and a reply that does
 *    not fit fails the connection (HDF5A_EREPLY to the head);
 *  - hdf5a_async_free from inside a callback only sets `freeing`; the code
 *    that ran the callback frees the context once it has returned, and
 *    then touches nothing of it (functions return true for "stop").
 *
 * Requests are copied whole into the output buffer, array bytes included:
 * the caller may free its data as soon as the call returns.
 *
 * TLS (tls.c) sits between the socket and those buffers: the handshake runs
 * in the loop after the TCP connect (ST_HANDSHAKE), the output buffer is
 * encrypted a stage at a time into `cout` and sent from there, and received
 * ciphertext goes through `cin` into the session, from which replies are
 * decrypted into the same input buffers as plaintext ones. The session may
 * hold data the socket will not announce again (the loop's readiness is
 * level-triggered on the socket), so a read event drains it whole. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "proto/errors.h"

#include "client/async.h"

/* ---- events ---- */

HDF5A_API void hdf5a_async_set_events(hdf5a_async *ac, const hdf5a_async_events *ev)
{
    if (!ev)
        return;
    ac->ev = *ev;
    ac->have_ev = true;
    /* tell the loop what we already want */
    if (ac->reading && ac->ev.add_read)
        ac->ev.add_read(ac->ev.data);
    if (ac->writing && ac->ev.add_write)
        ac->ev.add_write(ac->ev.data);
}

/* ---- callbacks, failure and freeing ---- */

static pending_cb *pop(hdf5a_async *ac)
{
    pending_cb *cb = ac->head;
    ac->head = cb->next;
    if (!ac->head)
        ac->tail = NULL;
    ac->pending--;
    if (ac->held_last == cb)
        ac->held_last = NULL;
    return cb;
}

/* cb out of the queue (the head, or with follow one after redirected ones) */
static pending_cb *take(hdf5a_async *ac, pending_cb *cb)
{
    if (cb == ac->head)
        return pop(ac);
    pending_cb *prev = ac->held_last && ac->held_last->next == cb ? ac->held_last : ac->head;
    while (prev->next != cb)
        prev = prev->next;
    prev->next = cb->next;
    if (ac->tail == cb)
        ac->tail = prev;
    ac->pending--;
    return cb;
}

static void run_callback(hdf5a_async *ac, pending_cb *cb, const hdf5a_reply *r)
{
    ac->in_callback++;
    if (cb->fn)
        cb->fn(ac, r, cb->privdata);
    ac->in_callback--;
    free(cb->frame);
    free(cb->path);
    free(cb->want);
    free(cb);
}

/* Fires every pending callback: the first with head_status, the others
 * with rest_status. The state is already DISCONNECTED, so callbacks that
 * queue new requests are refused and the loop ends. */
static void fail_pending(hdf5a_async *ac, int head_status, int rest_status)
{
    int status = head_status;
    while (ac->head) {
        hdf5a_reply r = {0};
        r.status = status;
        r.message = ac->errstr;
        run_callback(ac, pop(ac), &r);
        status = rest_status;
    }
}

static void free_now(hdf5a_async *ac)
{
    /* TLS: a close_notify, if the socket takes it now: the server then sees
     * an orderly end; it does not wait for one */
    if (ac->tls && ac->state == ST_CONNECTED && ac->cout_pos == ac->cout_len &&
        ac->out_pos == ac->out.len) {
        h5c_tls_close_notify(ac->tls);
        size_t n = h5c_tls_take_out(ac->tls, ac->cout, TLS_STAGE);
        if (n)
            (void)send(ac->fd, ac->cout, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ac->freeing = true;
    if (ac->state != ST_DISCONNECTED) {
        ac->state = ST_DISCONNECTED;
        ac->err = HDF5A_ECLOSED;
        snprintf(ac->errstr, sizeof ac->errstr, "the context was freed before the reply");
    }
    fail_pending(ac, HDF5A_ECLOSED, HDF5A_ECLOSED);
    if (ac->have_ev && ac->ev.cleanup)
        ac->ev.cleanup(ac->ev.data);
    h5c_async_release(ac);
}

void h5c_async_release(hdf5a_async *ac)
{
    if (ac->fd >= 0)
        close(ac->fd);
    if (ac->rc)
        h5c_arc_free(ac);
    if (ac->fw)
        h5c_afw_free(ac);
    if (ac->secret_len)
        h5c_wipe(ac->out.data, ac->secret_len);
    h5c_tls_free(ac->tls);
    free(ac->cin);
    free(ac->cout);
    mp_buf_free(&ac->out);
    mp_doc_free(&ac->doc);
    free(ac->in);
    free(ac->big_block);
    free(ac->file);
    free(ac);
}

/* After callbacks ran: free the context if one of them asked. True when it
 * is gone. */
static bool free_if_asked(hdf5a_async *ac)
{
    if (ac->freeing && ac->in_callback == 0) {
        free_now(ac);
        return true;
    }
    return false;
}

HDF5A_API void hdf5a_async_free(hdf5a_async *ac)
{
    if (!ac)
        return;
    if (ac->in_callback) {
        ac->freeing = true;
        return;
    }
    free_now(ac);
}

/* The connection is gone: stop watching it, keep why, fail every pending
 * request (the first with head_status, the others with rest_status).
 * Always means "stop" to the caller; the context may be freed. */
static bool conn_fail_v(hdf5a_async *ac, int code, int head_status, int rest_status,
                        const char *fmt, va_list ap)
{
    if (ac->state != ST_DISCONNECTED) {
        char why[H5C_ERRLEN];
        vsnprintf(why, sizeof why, fmt, ap);
        /* with reconnect, a lost connection is not the end */
        if (ac->rc && (code == HDF5A_EIO || code == HDF5A_ECLOSED) &&
            h5c_arc_lost(ac, code, why, sizeof why))
            return true;
        ac->state = ST_DISCONNECTED;
        ac->err = code;
        memcpy(ac->errstr, why, sizeof why);
        want_read(ac, false);
        want_write(ac, false);
        free(ac->big_block);
        ac->big_block = NULL;
        ac->big = NULL;
    }
    fail_pending(ac, head_status, rest_status);
    free_if_asked(ac);
    return true;
}

/* Requests after the head were sent (or not) on a connection that died:
 * HDF5A_ECLOSED tells them so. */
static bool conn_fail(hdf5a_async *ac, int code, int head_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool conn_fail(hdf5a_async *ac, int code, int head_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_fail_v(ac, code, head_status, HDF5A_ECLOSED, fmt, ap);
    va_end(ap);
    return true;
}

bool h5c_async_fail(hdf5a_async *ac, int code, const char *why)
{
    return conn_fail(ac, code, HDF5A_ECLOSED, "%s", why);
}

/* Nothing pending can ever be answered, and for one reason (a failed
 * handshake, a refused token): every callback gets code. */
static bool conn_fail_all(hdf5a_async *ac, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool conn_fail_all(hdf5a_async *ac, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_fail_v(ac, code, code, code, fmt, ap);
    va_end(ap);
    return true;
}

/* ---- connecting (the connect call is in async_connect.c) ---- */

static bool flush_output(hdf5a_async *ac);

/* TLS: one handshake step with what the session has received, and its
 * messages on their way. 1 done (connected), 0 waiting, -1 failed (the
 * context may be gone). */
static int handshake_step(hdf5a_async *ac)
{
    char why[H5C_ERRLEN];
    int r = h5c_tls_handshake(ac->tls, why, sizeof why);
    if (r < 0) {
        conn_fail_all(ac, HDF5A_ETLS, "%s: %s", ac->peer, why);
        return -1;
    }
    if (r == 1)
        h5c_async_connected(ac);
    /* our flight, then (once connected) the queued requests */
    return flush_output(ac) ? -1 : r;
}

void h5c_async_connected(hdf5a_async *ac)
{
    ac->state = ST_CONNECTED;
    if (ac->rc)
        ac->rc_up = true;
}

/* 1 connected, 0 still connecting (or in the TLS handshake), -1 failed
 * (the context may be gone). */
static int finish_connect(hdf5a_async *ac)
{
    int error = ac->connect_error;
    socklen_t len = sizeof error;
    if (!error && getsockopt(ac->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        error = errno;
    if (error) {
        conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "connect to %s: %s", ac->peer, strerror(error));
        return -1;
    }
    /* a read event may arrive before the connect is done */
    struct pollfd p = {ac->fd, POLLOUT, 0};
    if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT))
        return 0;
    h5c_set_nodelay(ac->fd);
    if (!ac->tls) {
        h5c_async_connected(ac);
        return 1;
    }
    ac->state = ST_HANDSHAKE;
    return handshake_step(ac);
}

/* ---- writing ---- */

/* The plaintext path: straight from the output buffer. 1 when the socket
 * is full, 0 when all went, -1 when the connection failed. */
static int send_plain(hdf5a_async *ac)
{
    while (ac->out_pos < ac->out.len) {
        ssize_t k = send(ac->fd, ac->out.data + ac->out_pos, ac->out.len - ac->out_pos,
                         MSG_NOSIGNAL);
        if (k > 0) {
            ac->out_pos += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
            conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
        else
            conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The TLS path: the output buffer encrypted a stage at a time (only once
 * the handshake is done), each stage sent from cout. Same results. */
static int send_tls(hdf5a_async *ac)
{
    char why[H5C_ERRLEN];
    for (;;) {
        if (ac->cout_pos < ac->cout_len) {
            ssize_t k = send(ac->fd, ac->cout + ac->cout_pos, ac->cout_len - ac->cout_pos,
                             MSG_NOSIGNAL);
            if (k > 0) {
                ac->cout_pos += (size_t)k;
                continue;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 1;
            if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
                conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
            else
                conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "send: %s", strerror(errno));
            return -1;
        }
        size_t pend = h5c_tls_out_pending(ac->tls);
        size_t room = TLS_STAGE > pend + TLS_SLACK ? TLS_STAGE - pend - TLS_SLACK : 0;
        size_t rest = ac->state == ST_CONNECTED ? ac->out.len - ac->out_pos : 0;
        /* small requests share records and stages; large ones fill them */
        if (rest && (rest <= room || room >= 16384)) {
            size_t k = rest < room ? rest : room;
            int rc = h5c_tls_write(ac->tls, ac->out.data + ac->out_pos, k, why, sizeof why);
            if (rc) {
                conn_fail_all(ac, rc, "%s: %s", ac->peer, why);
                return -1;
            }
            ac->out_pos += k;
            continue;
        }
        if (!pend)
            return 0;
        ac->cout_pos = 0;
        ac->cout_len = h5c_tls_take_out(ac->tls, ac->cout, TLS_STAGE);
    }
}

/* True when the connection failed (the context may be gone). */
static bool flush_output(hdf5a_async *ac)
{
    int rc = ac->tls ? send_tls(ac) : send_plain(ac);
    if (rc < 0)
        return true;
    if (ac->secret_len && ac->out_pos >= ac->secret_len) {
        h5c_wipe(ac->out.data, ac->secret_len); /* the token, sent */
        ac->secret_len = 0;
    }
    if (ac->out_pos == ac->out.len) {
        ac->out.len = ac->out_pos = 0;
        if (ac->out.cap > OBUF_KEEP)
            mp_buf_free(&ac->out);
    } else if (ac->out_pos >= OBUF_KEEP && ac->out_pos >= ac->out.len - ac->out_pos) {
        /* keep appends cheap: drop the sent part once it outweighs the rest */
        memmove(ac->out.data, ac->out.data + ac->out_pos, ac->out.len - ac->out_pos);
        ac->out.len -= ac->out_pos;
        ac->out_pos = 0;
    }
    /* in the handshake, the queued requests wait for it, not for the socket */
    want_write(ac, rc == 1);
    return false;
}

HDF5A_API void hdf5a_async_handle_write(hdf5a_async *ac)
{
    if (ac->state == ST_DISCONNECTED || ac->state == ST_BACKOFF || ac->in_callback)
        return;
    if (ac->state == ST_CONNECTING && finish_connect(ac) <= 0)
        return;
    flush_output(ac);
}

/* ---- reading ---- */

/* Hands one reply to the head callback. True means stop: the connection
 * failed or the context was freed. block (may be NULL) is the allocation
 * holding payload; it is freed here or kept by a read's array. */
static bool dispatch(hdf5a_async *ac, const uint8_t *payload, size_t len, void *block)
{
    pending_cb *cb = answering(ac);
    h5c_reply r;
    char why[H5C_ERRLEN];
    if (h5c_decode_reply(payload, len, &ac->doc, cb->id, &r, why, sizeof why)) {
        free(block);
        return conn_fail(ac, HDF5A_EREPLY, HDF5A_EREPLY, "%s", why);
    }
    if (ac->rc)
        h5c_arc_replied(ac);

    if (cb->connect_auth) {
        /* nothing of the caller's may run unauthenticated, so a refusal
         * ends the connection */
        int rc = 0;
        if (r.status)
            rc = conn_fail_all(ac, r.status, "%s refused the token: %.*s", ac->peer,
                               (int)r.message_len, r.message);
        else if (h5c_result_identity(r.result, &ac->ident, why, sizeof why))
            rc = conn_fail(ac, HDF5A_EREPLY, HDF5A_EREPLY, "%s", why);
        free(block);
        if (rc)
            return true;
        run_callback(ac, take(ac, cb), &(hdf5a_reply){.message = ""});
        return free_if_asked(ac) || ac->state == ST_DISCONNECTED ||
               (ac->fw && h5c_afw_step(ac));
    }

    hdf5a_reply rep = {0};
    uint64_t shape[32];
    hdf5a_array *array = NULL;
    int rc = 0;
    rep.message = "";
    if (r.status == HDF5A_EWRONG_NODE && ac->fw) {
        /* follow: sent on to the owner, or why not in msg */
        if (h5c_afw_wrong_node(ac, cb, &r)) {
            free(block);
            return h5c_afw_step(ac);
        }
        rep.status = r.status;
        rep.message = ac->msg;
    } else if (r.status) {
        rep.status = r.status;
        rep.has_index = r.index >= 0;
        rep.index = r.index;
        snprintf(ac->msg, sizeof ac->msg, "%.*s", (int)r.message_len, r.message);
        rep.message = ac->msg;
    } else if (cb->op == H5C_READ || cb->op == H5C_READ_SLICE || cb->op == H5C_GET_ATTR) {
        rc = h5c_result_array(r.result, &block, &array, ac->msg, sizeof ac->msg);
        rep.array = array;
    } else if (cb->op == H5C_LIST || cb->op == H5C_WALK || cb->op == H5C_LIST_ATTRS) {
        hdf5a_listing *l = NULL;
        rc = h5c_result_listing(cb->op, r.result, &l, ac->msg, sizeof ac->msg);
        rep.listing = l;
    } else if (cb->op == H5C_INFO) {
        hdf5a_objinfo *i = NULL;
        rc = h5c_result_info(r.result, &i, ac->msg, sizeof ac->msg);
        rep.info = i;
    } else if (cb->op == H5C_EXISTS) {
        rc = h5c_result_bool(r.result, &rep.exists, ac->msg, sizeof ac->msg);
    } else if (cb->op == H5C_COMPACT) {
        uint64_t sizes[2] = {0, 0};
        rc = h5c_result_sizes(r.result, sizes, ac->msg, sizeof ac->msg);
        rep.before = sizes[0];
        rep.after = sizes[1];
    } else if (cb->op == H5C_BATCH) {
        if (cb->out)
            rc = h5c_result_batch(r.result, cb->out, ac->msg, sizeof ac->msg);
    } else if (cb->op == H5C_AUTH) {
        h5c_identity id;
        rc = h5c_result_identity(r.result, &id, ac->msg, sizeof ac->msg);
        if (!rc)
            ac->ident = id;
    } else if (h5c_op_gives_shape(cb->op)) {
        rc = h5c_result_shape(r.result, &rep.ndim, shape, ac->msg, sizeof ac->msg);
        rep.shape = shape;
    }
    if (rc) {
        /* the stream is still in step; only this reply is unusable */
        rep.status = rc;
        rep.message = ac->msg;
        rep.ndim = 0;
        rep.shape = NULL;
    }
    free(block);

    run_callback(ac, take(ac, cb), &rep);
    /* NULL when the callback took them */
    hdf5a_array_free((hdf5a_array *)rep.array);
    hdf5a_listing_free((hdf5a_listing *)rep.listing);
    hdf5a_objinfo_free((hdf5a_objinfo *)rep.info);
    return free_if_asked(ac) || ac->state == ST_DISCONNECTED || (ac->fw && h5c_afw_step(ac));
}

HDF5A_API hdf5a_array *hdf5a_reply_take_array(const hdf5a_reply *reply)
{
    if (!reply)
        return NULL;
    /* replies are the library's own, non-const objects; the const only
     * keeps callbacks from changing them by accident */
    hdf5a_reply *r = (hdf5a_reply *)reply;
    hdf5a_array *a = (hdf5a_array *)r->array;
    r->array = NULL;
    return a;
}

HDF5A_API hdf5a_listing *hdf5a_reply_take_listing(const hdf5a_reply *reply)
{
    if (!reply)
        return NULL;
    hdf5a_reply *r = (hdf5a_reply *)reply; /* the library's own, see take_array */
    hdf5a_listing *l = (hdf5a_listing *)r->listing;
    r->listing = NULL;
    return l;
}

HDF5A_API hdf5a_objinfo *hdf5a_reply_take_info(const hdf5a_reply *reply)
{
    if (!reply)
        return NULL;
    hdf5a_reply *r = (hdf5a_reply *)reply;
    hdf5a_objinfo *i = (hdf5a_objinfo *)r->info;
    r->info = NULL;
    return i;
}

/* Cuts complete replies out of the input buffer. True means stop. */
static bool process_input(hdf5a_async *ac)
{
    while (!ac->big && ac->in_end - ac->in_start >= 4) {
        size_t len = h5c_be32(ac->in + ac->in_start);
        size_t have = ac->in_end - ac->in_start - 4;
        pending_cb *next = answering(ac);
        if (!next)
            return conn_fail(ac, HDF5A_EREPLY, HDF5A_ECLOSED,
                             "the server sent a reply when no request was pending");
        if (len == 0)
            return conn_fail(ac, HDF5A_EREPLY, HDF5A_EREPLY, "the server sent an empty frame");
        if (next->op == H5C_READ || next->op == H5C_READ_SLICE || len > IBUF_SIZE - 4) {
            void *block;
            uint8_t *p = h5c_frame_alloc(len, &block);
            if (!p)
                return conn_fail(ac, HDF5A_ENOMEM, HDF5A_ENOMEM,
                                 "out of memory for a reply of %zu bytes", len);
            size_t n = have < len ? have : len;
            memcpy(p, ac->in + ac->in_start + 4, n);
            ac->in_start += 4 + n;
            if (n < len) {
                ac->big = p;
                ac->big_block = block;
                ac->big_len = len;
                ac->big_have = n;
                break;
            }
            if (dispatch(ac, p, len, block))
                return true;
            continue;
        }
        if (have < len)
            break;
        const uint8_t *p = ac->in + ac->in_start + 4;
        ac->in_start += 4 + len;
        if (dispatch(ac, p, len, NULL))
            return true;
    }
    if (ac->in_start == ac->in_end)
        ac->in_start = ac->in_end = 0;
    return false;
}

/* TLS: ciphertext from the socket into the session, until the socket has
 * none. 1 some came, 0 none (EAGAIN), -1 failed (the context may be gone):
 * also on EOF, which over TLS without a close_notify is no clean end. */
static int tls_pull(hdf5a_async *ac)
{
    char why[H5C_ERRLEN];
    for (;;) {
        size_t room;
        uint8_t *dst = h5c_tls_in_space(ac->tls, TLS_STAGE, &room);
        if (!dst) {
            snprintf(why, sizeof why, "out of memory for TLS input");
            conn_fail(ac, HDF5A_ENOMEM, HDF5A_ENOMEM, "%s", why);
            return -1;
        }
        ssize_t k = recv(ac->fd, dst, room, 0); /* straight into the session's input */
        if (k > 0) {
            h5c_tls_in_commit(ac->tls, (size_t)k);
            return 1;
        }
        if (k == 0 || errno == ECONNRESET) {
            if (ac->state == ST_HANDSHAKE && !ac->rc_up) /* not a reconnect's */
                conn_fail_all(ac, HDF5A_ETLS,
                              "%s closed the connection during the TLS handshake (is its port "
                              "a plaintext one? it does not answer TLS)", ac->peer);
            else
                conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "recv: %s", strerror(errno));
        return -1;
    }
}

/* Up to room bytes of the reply stream into dst: >0, 0 nothing yet, -1
 * failed or closed (the context may be gone). */
static ssize_t pull(hdf5a_async *ac, uint8_t *dst, size_t room)
{
    if (!ac->tls) {
        for (;;) {
            ssize_t k = recv(ac->fd, dst, room, 0);
            if (k > 0)
                return k;
            if (k == 0 || (k < 0 && errno == ECONNRESET)) {
                conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
                return -1;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "recv: %s", strerror(errno));
            return -1;
        }
    }
    char why[H5C_ERRLEN];
    for (;;) {
        size_t got;
        int rc = h5c_tls_read(ac->tls, dst, room, &got, why, sizeof why);
        if (rc) {
            /* a bad record or an alert (a refused client certificate shows
             * here under TLS 1.3): nothing more can be read */
            if (rc == HDF5A_ECLOSED)
                conn_fail(ac, rc, rc, "%s", why);
            else
                conn_fail_all(ac, rc, "%s: %s", ac->peer, why);
            return -1;
        }
        if (h5c_tls_out_pending(ac->tls)) /* the session's own answer (a key update) */
            want_write(ac, true);
        if (got)
            return (ssize_t)got;
        int r = tls_pull(ac);
        if (r <= 0)
            return r;
    }
}

HDF5A_API void hdf5a_async_handle_read(hdf5a_async *ac)
{
    if (ac->state == ST_DISCONNECTED || ac->in_callback)
        return;
    if (ac->state == ST_BACKOFF) {
        h5c_arc_timer(ac);
        return;
    }
    if (ac->state == ST_CONNECTING && finish_connect(ac) < 0)
        return;
    if (ac->state == ST_CONNECTING)
        return;
    if (ac->state == ST_HANDSHAKE) {
        int r;
        while ((r = tls_pull(ac)) > 0) {
            if ((r = handshake_step(ac)) != 0)
                break;
        }
        if (r <= 0)
            return; /* failed, or waiting for more */
    }
    /* the session may hold records the socket will not announce again */
    for (int i = 0; i < READS_PER_EVENT || (ac->tls && h5c_tls_has_input(ac->tls)); i++) {
        uint8_t *dst;
        size_t room;
        if (ac->big) {
            dst = ac->big + ac->big_have;
            room = ac->big_len - ac->big_have;
        } else {
            /* a partial reply left here is smaller than the buffer */
            if (ac->in_start > 0 && ac->in_end == IBUF_SIZE) {
                memmove(ac->in, ac->in + ac->in_start, ac->in_end - ac->in_start);
                ac->in_end -= ac->in_start;
                ac->in_start = 0;
            }
            dst = ac->in + ac->in_end;
            room = IBUF_SIZE - ac->in_end;
        }
        ssize_t k = pull(ac, dst, room);
        if (k <= 0)
            return;
        if (ac->big) {
            ac->big_have += (size_t)k;
            if (ac->big_have < ac->big_len)
                continue;
            uint8_t *p = ac->big;
            void *block = ac->big_block;
            ac->big = NULL;
            ac->big_block = NULL;
            if (dispatch(ac, p, ac->big_len, block))
                return;
        } else {
            ac->in_end += (size_t)k;
        }
        if (process_input(ac))
            return;
    }
}

/* ---- requests ---- */

int h5c_async_submit(hdf5a_async *ac, const h5c_request *req, hdf5a_callback *fn,
                     void *privdata, void *out)
{
    if (!ac)
        return HDF5A_EINVAL;
    if (ac->state == ST_DISCONNECTED || ac->freeing)
        return HDF5A_ECLOSED; /* errstr keeps why */
    pending_cb *cb = calloc(1, sizeof *cb);
    if (!cb)
        return h5a_fail(ac->errstr, sizeof ac->errstr, HDF5A_ENOMEM, "out of memory");
    h5c_request r = *req;
    if (ac->rc)
        h5c_arc_stamp(ac, &r);
    if (r.durability == HDF5A_DURABILITY_DEFAULT)
        r.durability = h5c_durability_for(r.op, ac->durability);
    if (!r.file)
        r.file = ac->file;
    size_t mark = ac->out.len;
    uint64_t id = ac->next_id + 1;
    const void *tail;
    size_t tail_len;
    int rc = h5c_encode_request(&ac->out, id, &r, &tail, &tail_len, ac->errstr,
                                sizeof ac->errstr);
    if (!rc && tail_len) {
        mp_put_raw(&ac->out, tail, tail_len);
        if (ac->out.oom) {
            ac->out.len = mark;
            ac->out.oom = false;
            rc = h5a_fail(ac->errstr, sizeof ac->errstr, HDF5A_ENOMEM,
                          "out of memory queueing %zu bytes", tail_len);
        }
    }
    if (!rc && ((ac->rc && (rc = h5c_arc_keep(ac, cb, mark))) ||
                (ac->fw && (rc = h5c_afw_keep(ac, cb, mark))))) {
        ac->out.len = mark;
        snprintf(ac->errstr, sizeof ac->errstr, "out of memory");
    }
    if (rc) {
        free(cb->frame);
        free(cb);
        return rc;
    }
    ac->next_id = id;
    cb->next = NULL;
    cb->fn = fn;
    cb->privdata = privdata;
    cb->id = id;
    cb->op = req->op;
    cb->connect_auth = false;
    cb->out = out;
    if (ac->tail)
        ac->tail->next = cb;
    else
        ac->head = cb;
    ac->tail = cb;
    ac->pending++;
    if (ac->state == ST_CONNECTED)
        want_write(ac, true);
    return 0;
}
