/* Streamed read replies on the loop thread (request.h, may_stream): a
 * large read's reply arrives here with its header made and its data still
 * being read by the storage thread; its bytes are written as they become
 * ready, and the replies after it wait behind it (order). Apart from
 * conn.c, whose batch writer handles every other reply in one writev.
 * Plaintext connections only (see submit() in conn.c for why not TLS).
 * Event loop thread only. */
#include <stdlib.h>

#include "server/metrics.h"
#include "server/net_int.h"

int conn_stream_state(const h5a_request *r)
{
    return r->streamed ? atomic_load_explicit(&r->stream_state, memory_order_acquire)
                       : H5A_STREAM_DONE;
}

/* How many bytes of r's reply (header included) may be sent now. */
static size_t have_bytes(const h5a_request *r, int state)
{
    if (state != H5A_STREAM_READING) return r->reply.len + r->reply_data_len;
    return r->reply.len + atomic_load_explicit(&r->stream_ready, memory_order_acquire);
}

/* One piece of a reply written: its request when the piece ends it. */
typedef struct piece {
    uv_write_t w;
    h5a_request *r;
} piece;

static void on_piece_written(uv_write_t *w, int status)
{
    piece *p = (piece *)w;
    conn *c = w->data;
    bool close_after = p->r ? conn_request_done(c, p->r) : false;
    free(p);
    conn_after_written(c, status, close_after);
}

/* Write what is ready of the replies queued behind a stream, in order;
 * waiting for the storage thread's next slab: say so (stream_wait). */
static void pump(conn *c)
{
    server *s = c->srv;
    while (c->sq_head && !c->closing) {
        h5a_request *r = c->sq_head;
        int state = conn_stream_state(r);
        if (state == H5A_STREAM_FAILED) {
            conn_close(c, "the file could not be read while a reply was being sent");
            return;
        }
        size_t total = r->reply.len + r->reply_data_len, have = have_bytes(r, state);
        if (c->sq_off == have) { /* (have < total: still reading) */
            s->stream_wait = c;
            return;
        }
        uv_buf_t iov[2];
        unsigned n = 0;
        if (c->sq_off < r->reply.len)
            iov[n++] = uv_buf_init((char *)r->reply.data + c->sq_off,
                                   (unsigned)(r->reply.len - c->sq_off));
        size_t from = c->sq_off > r->reply.len ? c->sq_off - r->reply.len : 0;
        if (have > r->reply.len + from)
            iov[n++] = uv_buf_init((char *)r->reply_data + from,
                                   (unsigned)(have - r->reply.len - from));
        piece *p = malloc(sizeof *p);
        if (!p) {
            conn_close(c, "out of memory for replies");
            return;
        }
        p->w.data = c;
        p->r = NULL;
        if (have == total) { /* its last bytes: the piece's write ends it */
            p->r = r;
            c->sq_head = r->next;
            if (!c->sq_head) c->sq_tail = NULL;
            c->sq_off = 0;
        } else {
            c->sq_off = have;
        }
        size_t bytes = 0;
        for (unsigned i = 0; i < n; i++) bytes += iov[i].len;
        c->bytes_queued += bytes;
        h5a_count(&h5a_mloop.bytes_out[H5A_PORT_MAIN], bytes);
        int rc = uv_write(&p->w, (uv_stream_t *)&c->tcp, iov, n, on_piece_written);
        if (rc < 0) {
            if (p->r) conn_request_done(c, p->r);
            free(p);
            conn_close(c, uv_strerror(rc));
            return;
        }
    }
}

bool conn_stream_holds(const conn *c, const h5a_request *head)
{
    if (c->sq_head) return true;
    for (const h5a_request *r = head; r; r = r->next) /* (a failed one: pump closes) */
        if (conn_stream_state(r) != H5A_STREAM_DONE) return true;
    return false;
}

void conn_stream_write_out(conn *c, h5a_request *head)
{
    conn_list_append(&c->sq_head, &c->sq_tail, head);
    pump(c);
    if (!c->closing) conn_maybe_read(c);
}

void conn_stream_drop(conn *c)
{
    if (c->srv->stream_wait == c) c->srv->stream_wait = NULL;
    for (h5a_request *r = c->sq_head, *next; r; r = next) {
        next = r->next;
        conn_request_done(c, r);
    }
    c->sq_head = c->sq_tail = NULL;
    c->sq_off = 0;
}

void conn_stream_progress(server *s)
{
    /* replies written whose read had not ended: free them now it has */
    for (h5a_request **pp = &s->parked; *pp;) {
        h5a_request *r = *pp;
        if (conn_stream_state(r) == H5A_STREAM_READING) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        conn *c = r->conn;
        bool close_after = conn_request_done(c, r);
        conn_after_written(c, 0, close_after);
    }
    conn *c = s->stream_wait;
    s->stream_wait = NULL;
    if (c && !c->closing) pump(c);
}
