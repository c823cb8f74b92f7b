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
 * the caller may free its data as soon as the call returns. */
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

/* Replies up to this size are cut out of the shared input buffer; larger
 * ones, and every read's, get a buffer of their own that is filled straight
 * from the socket (a read's array then keeps it). */
#define IBUF_SIZE (64 * 1024)
/* An output buffer grown past this by a large write is given back once it
 * has drained. */
#define OBUF_KEEP (1024 * 1024)
/* recv calls per readiness event, so one busy connection cannot hold the
 * caller's loop forever (libuv stops at 32 as well) */
#define READS_PER_EVENT 32

enum { ST_CONNECTING, ST_CONNECTED, ST_DISCONNECTED };

typedef struct pending_cb {
    struct pending_cb *next;
    hdf5a_callback *fn;
    void *privdata;
    uint64_t id;
    h5c_op op;
} pending_cb;

struct hdf5a_async {
    int fd; /* open until hdf5a_async_free, so adapters can always unwatch it */
    int state;
    int connect_error; /* errno of a connect that failed at once */
    char peer[80];
    int err; /* 0 while usable, else why the connection is gone */
    char errstr[H5C_ERRLEN];

    hdf5a_async_events ev;
    bool have_ev;
    bool reading, writing; /* what we asked the loop for */

    hdf5a_durability durability; /* hdf5a_async_set_durability */
    mp_buf out; /* encoded requests not yet sent, from out_pos on */
    size_t out_pos;

    uint8_t *in; /* IBUF_SIZE bytes, replies from in_start to in_end */
    size_t in_start, in_end;
    uint8_t *big; /* a reply being read into its own buffer */
    void *big_block;
    size_t big_len, big_have;

    mp_doc doc;
    char msg[H5C_ERRLEN]; /* the current reply's error text */

    pending_cb *head, *tail;
    size_t pending;
    uint64_t next_id;

    int in_callback;
    bool freeing;
};

/* ---- events ---- */

static void want_read(hdf5a_async *ac, bool on)
{
    if (ac->reading == on)
        return;
    ac->reading = on;
    if (!ac->have_ev)
        return;
    if (on && ac->ev.add_read)
        ac->ev.add_read(ac->ev.data);
    else if (!on && ac->ev.del_read)
        ac->ev.del_read(ac->ev.data);
}

static void want_write(hdf5a_async *ac, bool on)
{
    if (ac->writing == on)
        return;
    ac->writing = on;
    if (!ac->have_ev)
        return;
    if (on && ac->ev.add_write)
        ac->ev.add_write(ac->ev.data);
    else if (!on && ac->ev.del_write)
        ac->ev.del_write(ac->ev.data);
}

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
    return cb;
}

static void run_callback(hdf5a_async *ac, pending_cb *cb, const hdf5a_reply *r)
{
    ac->in_callback++;
    if (cb->fn)
        cb->fn(ac, r, cb->privdata);
    ac->in_callback--;
    free(cb);
}

/* Fires every pending callback: the first with head_status, the others
 * with HDF5A_ECLOSED. The state is already DISCONNECTED, so callbacks that
 * queue new requests are refused and the loop ends. */
static void fail_pending(hdf5a_async *ac, int head_status)
{
    int status = head_status;
    while (ac->head) {
        hdf5a_reply r = {0};
        r.status = status;
        r.message = ac->errstr;
        run_callback(ac, pop(ac), &r);
        status = HDF5A_ECLOSED;
    }
}

static void free_now(hdf5a_async *ac)
{
    ac->freeing = true;
    if (ac->state != ST_DISCONNECTED) {
        ac->state = ST_DISCONNECTED;
        ac->err = HDF5A_ECLOSED;
        snprintf(ac->errstr, sizeof ac->errstr, "the context was freed before the reply");
    }
    fail_pending(ac, HDF5A_ECLOSED);
    if (ac->have_ev && ac->ev.cleanup)
        ac->ev.cleanup(ac->ev.data);
    if (ac->fd >= 0)
        close(ac->fd);
    mp_buf_free(&ac->out);
    mp_doc_free(&ac->doc);
    free(ac->in);
    free(ac->big_block);
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
 * request. Always means "stop" to the caller; the context may be freed. */
static bool conn_fail(hdf5a_async *ac, int code, int head_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool conn_fail(hdf5a_async *ac, int code, int head_status, const char *fmt, ...)
{
    if (ac->state != ST_DISCONNECTED) {
        ac->state = ST_DISCONNECTED;
        ac->err = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ac->errstr, sizeof ac->errstr, fmt, ap);
        va_end(ap);
        want_read(ac, false);
        want_write(ac, false);
        free(ac->big_block);
        ac->big_block = NULL;
        ac->big = NULL;
    }
    fail_pending(ac, head_status);
    free_if_asked(ac);
    return true;
}

/* ---- connecting ---- */

HDF5A_API hdf5a_async *hdf5a_async_connect(const char *host, int port, char *err,
                                           size_t errlen)
{
    char why[H5C_ERRLEN] = "";
    struct addrinfo *list = NULL;
    hdf5a_async *ac = NULL;
    if (h5c_resolve(host, port, &list, why, sizeof why))
        goto fail;
    ac = calloc(1, sizeof *ac);
    if (!ac || !(ac->in = malloc(IBUF_SIZE))) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    ac->fd = -1;
    /* Only the first address that does not fail at once is tried: adapters
     * watch one fd, which must not change under them. A failure found at
     * once is still reported from the loop, like a later one, so requests
     * queued right after this call always get their callback. */
    bool started = false;
    for (int pass = 0; pass < 2 && !started; pass++) {
        for (struct addrinfo *ai = list; ai && !started; ai = ai->ai_next) {
            if (!h5c_addr_in_pass(ai, pass))
                continue;
            int error;
            int fd = h5c_connect_start(ai, &error);
            if (fd < 0) {
                snprintf(why, sizeof why, "socket: %s", strerror(errno));
                continue;
            }
            if (ac->fd >= 0)
                close(ac->fd);
            ac->fd = fd;
            ac->connect_error = error;
            h5c_addr_name(ai, ac->peer, sizeof ac->peer);
            started = error == 0;
        }
    }
    freeaddrinfo(list);
    list = NULL;
    if (ac->fd < 0)
        goto fail;
    ac->state = ST_CONNECTING;
    /* writable means connected; readable (or an error) may come first */
    ac->reading = true;
    ac->writing = true;
    return ac;
fail:
    if (list)
        freeaddrinfo(list);
    if (ac) {
        free(ac->in);
        free(ac);
    }
    if (err && errlen)
        snprintf(err, errlen, "%s", why[0] ? why : "cannot connect");
    return NULL;
}

/* 1 connected, 0 still connecting, -1 failed (the context may be gone). */
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
    ac->state = ST_CONNECTED;
    h5c_set_nodelay(ac->fd);
    return 1;
}

/* ---- writing ---- */

static void flush_output(hdf5a_async *ac)
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
            break;
        if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
            conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
        else
            conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "send: %s", strerror(errno));
        return;
    }
    if (ac->out_pos == ac->out.len) {
        ac->out.len = ac->out_pos = 0;
        if (ac->out.cap > OBUF_KEEP)
            mp_buf_free(&ac->out);
        want_write(ac, false);
        return;
    }
    /* keep appends cheap: drop the sent part once it outweighs the rest */
    if (ac->out_pos >= OBUF_KEEP && ac->out_pos >= ac->out.len - ac->out_pos) {
        memmove(ac->out.data, ac->out.data + ac->out_pos, ac->out.len - ac->out_pos);
        ac->out.len -= ac->out_pos;
        ac->out_pos = 0;
    }
    want_write(ac, true);
}

HDF5A_API void hdf5a_async_handle_write(hdf5a_async *ac)
{
    if (ac->state == ST_DISCONNECTED || ac->in_callback)
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
    pending_cb *cb = ac->head;
    h5c_reply r;
    char why[H5C_ERRLEN];
    if (h5c_decode_reply(payload, len, &ac->doc, cb->id, &r, why, sizeof why)) {
        free(block);
        return conn_fail(ac, HDF5A_EREPLY, HDF5A_EREPLY, "%s", why);
    }

    hdf5a_reply rep = {0};
    uint64_t shape[32];
    hdf5a_array *array = NULL;
    int rc = 0;
    rep.message = "";
    if (r.status) {
        rep.status = r.status;
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

    run_callback(ac, pop(ac), &rep);
    /* NULL when the callback took them */
    hdf5a_array_free((hdf5a_array *)rep.array);
    hdf5a_listing_free((hdf5a_listing *)rep.listing);
    hdf5a_objinfo_free((hdf5a_objinfo *)rep.info);
    return free_if_asked(ac) || ac->state == ST_DISCONNECTED;
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
        if (!ac->head)
            return conn_fail(ac, HDF5A_EREPLY, HDF5A_ECLOSED,
                             "the server sent a reply when no request was pending");
        if (len == 0)
            return conn_fail(ac, HDF5A_EREPLY, HDF5A_EREPLY, "the server sent an empty frame");
        if (ac->head->op == H5C_READ || ac->head->op == H5C_READ_SLICE || len > IBUF_SIZE - 4) {
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

HDF5A_API void hdf5a_async_handle_read(hdf5a_async *ac)
{
    if (ac->state == ST_DISCONNECTED || ac->in_callback)
        return;
    if (ac->state == ST_CONNECTING && finish_connect(ac) <= 0)
        return;
    for (int i = 0; i < READS_PER_EVENT; i++) {
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
        ssize_t k = recv(ac->fd, dst, room, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            conn_fail(ac, HDF5A_ECLOSED, HDF5A_ECLOSED, "the server closed the connection");
            return;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_fail(ac, HDF5A_EIO, HDF5A_ECLOSED, "recv: %s", strerror(errno));
            return;
        }
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

static int submit(hdf5a_async *ac, const h5c_request *req, hdf5a_callback *fn, void *privdata)
{
    if (!ac)
        return HDF5A_EINVAL;
    if (ac->state == ST_DISCONNECTED || ac->freeing)
        return HDF5A_ECLOSED; /* errstr keeps why */
    pending_cb *cb = malloc(sizeof *cb);
    if (!cb)
        return h5a_fail(ac->errstr, sizeof ac->errstr, HDF5A_ENOMEM, "out of memory");
    h5c_request r = *req;
    if (r.durability == HDF5A_DURABILITY_DEFAULT)
        r.durability = h5c_durability_for(r.op, ac->durability);
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
    if (rc) {
        free(cb);
        return rc;
    }
    ac->next_id = id;
    cb->next = NULL;
    cb->fn = fn;
    cb->privdata = privdata;
    cb->id = id;
    cb->op = req->op;
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

HDF5A_API int hdf5a_async_ping(hdf5a_async *ac, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_PING};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_set_durability(hdf5a_async *ac, hdf5a_durability d)
{
    if (!ac || (unsigned)d > HDF5A_DURABILITY_FSYNC)
        return HDF5A_EINVAL;
    ac->durability = d;
    return 0;
}

HDF5A_API int hdf5a_async_sync(hdf5a_async *ac, hdf5a_durability level, hdf5a_callback *cb,
                               void *privdata)
{
    if (!ac)
        return HDF5A_EINVAL;
    if (level != HDF5A_DURABILITY_FLUSH && level != HDF5A_DURABILITY_FSYNC)
        return h5a_fail(ac->errstr, sizeof ac->errstr, HDF5A_EINVAL,
                        "hdf5a_async_sync takes HDF5A_DURABILITY_FLUSH or _FSYNC");
    h5c_request r = {.op = H5C_PING, .durability = level};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_create_group(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                       void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_GROUP, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_write(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                const hdf5a_compression *comp, hdf5a_callback *cb,
                                void *privdata)
{
    h5c_request r = {.op = H5C_WRITE, .path = path, .array = a, .comp = comp};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_append(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                 const hdf5a_compression *comp, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_APPEND, .path = path, .array = a, .comp = comp};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_insert(hdf5a_async *ac, const char *path, int64_t index,
                                 const hdf5a_array *a, const hdf5a_compression *comp,
                                 hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_INSERT, .path = path, .array = a, .comp = comp, .index = index};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_read(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {.op = H5C_READ, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_delete(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_DELETE, .path = path};
    return submit(ac, &r, cb, privdata);
}

/* ---- accessors ---- */

HDF5A_API int hdf5a_async_set_attr(hdf5a_async *ac, const char *path, const char *name,
                                   const hdf5a_array *value, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_SET_ATTR, .path = path, .name = name, .array = value};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_get_attr(hdf5a_async *ac, const char *path, const char *name,
                                   hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_GET_ATTR, .path = path, .name = name};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_list_attrs(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                     void *privdata)
{
    h5c_request r = {.op = H5C_LIST_ATTRS, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_delete_attr(hdf5a_async *ac, const char *path, const char *name,
                                      hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_DELETE_ATTR, .path = path, .name = name};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_list(hdf5a_async *ac, const char *path, const char *after,
                               uint64_t limit, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_LIST, .path = path, .after = after, .limit = limit};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_walk(hdf5a_async *ac, const char *path, unsigned max_depth,
                               const char *after, uint64_t limit, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {
        .op = H5C_WALK, .path = path, .after = after, .limit = limit, .max_depth = max_depth};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_info(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {.op = H5C_INFO, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_exists(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_EXISTS, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_create_link(hdf5a_async *ac, const char *path, const char *target,
                                      hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_LINK, .path = path, .target = target};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_move(hdf5a_async *ac, const char *path, const char *dest,
                               hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_MOVE, .path = path, .dest = dest};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_fd(const hdf5a_async *ac) { return ac->fd; }

HDF5A_API const char *hdf5a_async_errstr(const hdf5a_async *ac) { return ac->errstr; }

HDF5A_API int hdf5a_async_error(const hdf5a_async *ac) { return ac->err; }

HDF5A_API size_t hdf5a_async_pending(const hdf5a_async *ac) { return ac->pending; }

HDF5A_API int hdf5a_async_read_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                     int nsel, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_READ_SLICE, .path = path, .sel = sel, .nsel = nsel};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_write_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                      int nsel, const hdf5a_array *a, hdf5a_callback *cb,
                                      void *privdata)
{
    h5c_request r = {.op = H5C_WRITE_SLICE, .path = path, .sel = sel, .nsel = nsel, .array = a};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_create_dataset(hdf5a_async *ac, const char *path, int ndim,
                                         const uint64_t *shape, const char *dtype,
                                         const hdf5a_create_opts *opts, hdf5a_callback *cb,
                                         void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_DATASET, .path = path, .ndim = ndim, .shape = shape,
                     .dtype = dtype, .opts = opts};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_resize(hdf5a_async *ac, const char *path, int ndim,
                                 const uint64_t *shape, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = ndim, .shape = shape};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_resize_axis(hdf5a_async *ac, const char *path, int axis,
                                      uint64_t size, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = 1, .shape = &size,
                     .has_axis = true, .index = axis};
    return submit(ac, &r, cb, privdata);
}
