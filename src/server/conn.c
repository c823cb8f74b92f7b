/* One connection: reading and cutting frames (in place for large ones),
 * TLS through tls.c, the access check, handing requests to the storage
 * thread, writing replies back in order, and closing without losing them.
 * Event loop thread only. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "server/cluster.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/net_int.h"

/* A large frame's buffer starts at this size and doubles as bytes arrive. */
#define BIG_FIRST ((size_t)1 << 20)

/* ---- closing ---- */

static void conn_free_if_done(conn *c)
{
    /* the handle is closed and no request still points at us */
    if (c->closing && c->pending_reqs == 0 && c->tcp.data == NULL) {
        free(c->big);
        free(c->rbuf);
        h5a_tls_conn_free(c->tls);
        free(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    c->tcp.data = NULL; /* marks "handle closed" */
    conn_free_if_done(c);
}


void conn_close(conn *c, const char *why)
{
    if (c->closing) return;
    c->closing = true;
    /* reads still queued for the storage thread are skipped, the requests
     * never given to it are dropped here */
    atomic_store(&c->gone, true);
    net_frame_owner_done(c->srv, c);
    for (h5a_request *r = c->held_head, *next; r; r = next) {
        next = r->next;
        conn_request_done(c, r);
    }
    c->held_head = c->held_tail = NULL;
    conn_stream_drop(c);
    for (h5a_request *r = c->tls_head, *next; r; r = next) { /* replies not yet encrypted */
        next = r->next;
        conn_request_done(c, r);
    }
    c->tls_head = c->tls_tail = NULL;
    if (c->big) {
        net_frames_sub(c->srv, c->big_cap);
        free(c->big);
        c->big = NULL;
    }
    server *s = c->srv;
    net_log(s, "conn %llu %s closed (%s)", (unsigned long long)c->serial, c->peer, why);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->rejected) s->nrejected--;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Close after the replies are out, without losing them. A plain close with
 * unread input in our receive buffer makes the kernel send RST, and the peer
 * may then drop replies it has not read yet. So: shut our write side (FIN
 * after the queued replies), discard whatever the peer still sends until its
 * EOF, and only then close; DRAIN_MS bounds the wait. */
static void on_shutdown_sent(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (status < 0) conn_close(c, "shutdown failed");
    else if (c->peer_eof) conn_close(c, "peer closed its side; every request answered");
}

void conn_finish(conn *c, const char *why)
{
    if (c->closing || c->draining) return;
    server *s = c->srv;
    net_log(s, "conn %llu %s finishing (%s)", (unsigned long long)c->serial, c->peer, why);
    c->draining = true;
    c->no_more_input = true;
    net_frame_owner_done(s, c);
    if (c->big) {
        net_frames_sub(s, c->big_cap);
        free(c->big);
        c->big = NULL;
    }
    if (c->tls) { /* a close_notify before our FIN: the peer sees a clean end */
        h5a_tls_conn_shutdown(c->tls);
        conn_tls_flush(c);
    }
    c->drain_deadline = uv_now(&s->loop) + DRAIN_MS;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown_sent) < 0) {
        conn_close(c, why);
        return;
    }
    conn_maybe_read(c);
}

/* ---- replies ---- */

/* All replies a connection got from one hand-over of the storage thread go
 * out in one write: one syscall for many pipelined replies. */
typedef struct reply_batch {
    uv_write_t w;
    h5a_request *head;
} reply_batch;

/* A zeroed request, from the pool when it has one. */
static h5a_request *request_new(server *s)
{
    h5a_request *r = s->req_pool;
    if (!r) return calloc(1, sizeof *r);
    s->req_pool = r->next;
    s->req_pooled--;
    mp_buf reply = r->reply; /* a small reply buffer is kept with it */
    memset(r, 0, sizeof *r);
    r->reply = reply;
    return r;
}

/* Forget request r of connection c: it is answered or will never be. */
bool conn_request_done(conn *c, h5a_request *r)
{
    if (conn_stream_state(r) == H5A_STREAM_READING) {
        /* the storage thread still reads into it: freed once it is done
         * (conn_stream_progress), the connection kept until then */
        r->next = c->srv->parked;
        c->srv->parked = r;
        return false;
    }
    bool close_after = r->close_after;
    size_t reply = r->reply.len + r->reply_data_len;
    c->pending_reqs--;
    c->pending_bytes -= r->frame_len;
    if (r->reply_counted) {
        c->reply_bytes -= reply;
        net_budget_sub(c->srv, r->frame_len + reply);
    } else {
        net_budget_sub(c->srv, r->frame_len);
    }
    server *s = c->srv;
    if (s->req_pooled < REQ_POOL_MAX) {
        /* its reply buffer too, when small: made on this thread, it is
         * freed on this thread, not across threads (glibc's arenas) */
        mp_buf kept = r->reply;
        if (kept.cap > REPLY_KEEP || kept.oom) mp_buf_free(&kept);
        kept.len = 0;
        r->reply = (mp_buf){0};
        h5a_request_clear(r);
        r->reply = kept;
        r->next = s->req_pool;
        s->req_pool = r;
        s->req_pooled++;
    } else {
        h5a_request_free(r);
    }
    return close_after;
}

void conn_list_append(h5a_request **head, h5a_request **tail, h5a_request *list)
{
    h5a_request *last = list;
    while (last->next) last = last->next;
    if (*tail) (*tail)->next = list;
    else *head = list;
    *tail = last;
}

/* Replies this connection has not yet had written to the socket. */
static size_t unsent(const conn *c)
{
    return c->reply_bytes + (c->tls ? c->tcp.write_queue_size : 0);
}

static bool may_submit(const conn *c, const h5a_request *r)
{
    if (!r->droppable) return true; /* its reply is small */
    return c->reads_in_storage == 0 && unsent(c) < c->srv->cfg->max_reply_queue;
}

/* Give the storage thread the held requests that may go now, in order. */
static void release_held(conn *c)
{
    while (c->held_head && !c->closing && !c->srv->stopping && may_submit(c, c->held_head)) {
        h5a_request *r = c->held_head;
        c->held_head = r->next;
        if (!c->held_head) c->held_tail = NULL;
        r->next = NULL;
        if (r->droppable) c->reads_in_storage++;
        h5a_storage_submit(c->srv->storage, r);
    }
}

/* A connection's batch of replies is out: close it when asked, else read on. */
void conn_after_written(conn *c, int status, bool close_after)
{
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    if (c->pending_reqs == 0) c->last_active = uv_now(&c->srv->loop); /* idle from now */
    release_held(c);
    if (c->peer_eof && c->pending_reqs == 0) {
        conn_finish(c, "peer closed its side; every request answered");
        return;
    }
    if (close_after) {
        conn_finish(c, c->rejected ? "over max_connections" : "after protocol error");
        return;
    }
    if (c->close_when_idle && c->pending_reqs == 0) {
        conn_finish(c, "server stopping");
        return;
    }
    conn_maybe_read(c);
}

static void on_written(uv_write_t *w, int status)
{
    reply_batch *b = (reply_batch *)w;
    conn *c = w->data;
    bool close_after = false;
    for (h5a_request *r = b->head, *next; r; r = next) {
        next = r->next;
        close_after |= conn_request_done(c, r);
    }
    free(b);
    conn_after_written(c, status, close_after);
}

/* Storage thread finished r: queue its reply (on the loop thread). */
void conn_on_done(h5a_request *r, void *ud)
{
    server *s = ud;
    if (r->http) { /* the HTTP port's: it writes its responses itself */
        http_on_done(s, r);
        return;
    }
    conn *c = r->conn;
    if (s->cfg->debug) {
        double ms = (double)(uv_hrtime() - r->t_start) / 1e6;
        net_log(s, "conn %llu id=%llu op=%s path=%s bytes=%zu -> %s %.3f ms%s",
              (unsigned long long)c->serial, (unsigned long long)r->id, r->op_name,
              r->path ? r->path : "-", r->frame_len, r->reply_ok ? "ok" : "error", ms,
              r->streamed ? " (streamed: data follows as it is read)" : "");
    }
    size_t reply = r->reply.len + r->reply_data_len;
    c->reply_bytes += reply;
    r->reply_counted = true;
    net_budget_add(s, reply);
    if (r->droppable) c->reads_in_storage--;
    if (c->closing || r->reply.oom) {
        conn_request_done(c, r);
        if (c->closing) conn_free_if_done(c);
        else conn_close(c, "out of memory for a reply");
        return;
    }
    r->next = NULL;
    if (c->out_tail) {
        c->out_tail->next = r;
    } else {
        c->out_head = r;
        c->flush_next = s->flush_list;
        s->flush_list = c;
    }
    c->out_tail = r;
}

void conn_write_out(server *s, conn *c)
{
    h5a_request *head = c->out_head;
    c->out_head = c->out_tail = NULL;
    if (c->closing) {
        for (h5a_request *r = head, *next; r; r = next) {
            next = r->next;
            conn_request_done(c, r);
        }
        conn_free_if_done(c);
        return;
    }
    if (c->tls) {
        conn_tls_write_out(c, head);
        return;
    }
    if (conn_stream_holds(c, head)) {
        conn_stream_write_out(c, head);
        return;
    }
    size_t n = 0;
    for (h5a_request *r = head; r; r = r->next) n += r->reply_data_len ? 2 : 1;
    reply_batch *b = malloc(sizeof *b);
    if (n > s->iov_cap) {
        uv_buf_t *iov = realloc(s->iov, n * sizeof *iov);
        if (iov) s->iov = iov, s->iov_cap = n;
    }
    if (!b || n > s->iov_cap) {
        free(b);
        for (h5a_request *r = head, *next; r; r = next) {
            next = r->next;
            conn_request_done(c, r);
        }
        conn_close(c, "out of memory for replies");
        return;
    }
    n = 0;
    for (h5a_request *r = head; r; r = r->next) {
        s->iov[n++] = uv_buf_init((char *)r->reply.data, (unsigned)r->reply.len);
        c->bytes_queued += r->reply.len + r->reply_data_len;
        h5a_count(&h5a_mloop.bytes_out[H5A_PORT_MAIN], r->reply.len + r->reply_data_len);
        if (r->reply_data_len)
            s->iov[n++] = uv_buf_init((char *)r->reply_data, (unsigned)r->reply_data_len);
    }
    b->head = head;
    b->w.data = c;
    /* uv_write copies the buffer list, not the bytes: they live in the
     * requests until on_written frees them */
    int rc = uv_write(&b->w, (uv_stream_t *)&c->tcp, s->iov, (unsigned)n, on_written);
    if (rc < 0) {
        /* the write callback will not run: account for the requests here */
        for (h5a_request *r = head, *next; r; r = next) {
            next = r->next;
            conn_request_done(c, r);
        }
        free(b);
        conn_close(c, uv_strerror(rc));
        return;
    }
    /* a client that does not read its replies: stop reading its requests */
    conn_maybe_read(c);
}

void conn_on_flush(void *ud)
{
    server *s = ud;
    conn_stream_progress(s); /* first: a reply queued below may wait in turn */
    conn *c = s->flush_list;
    s->flush_list = NULL;
    while (c) {
        conn *next = c->flush_next;
        c->flush_next = NULL;
        conn_write_out(s, c);
        c = next;
    }
}

/* ---- requests ---- */

static void submit(conn *c, h5a_request *r)
{
    r->conn = c;
    r->gone = &c->gone;
    r->t_start = uv_hrtime();
    const h5a_op_info *op = h5a_op_info_of(r->op);
    r->droppable = !r->err_code && !op->changes && r->op != OP_PING && r->op != OP_AUTH &&
                   r->op != OP_EXISTS;
    /* plaintext replies may stream (conn_stream.c). Not over TLS: there the
     * loop thread's encryption and the client's decryption keep both cores
     * busy, and a storage thread reading alongside made warm 64 MiB reads
     * ~28% slower (2.0 -> 1.45 GB/s; the first read after idle was ~45%
     * faster) -- `hdf5-async-bench --only tls`, 2026-12-04 */
    r->may_stream = !c->tls;
    c->pending_reqs++;
    c->pending_bytes += r->frame_len;
    net_budget_add(c->srv, r->frame_len);
    if (!c->held_head && may_submit(c, r)) {
        if (r->droppable) c->reads_in_storage++;
        h5a_storage_submit(c->srv->storage, r);
        return;
    }
    r->next = NULL;
    if (c->held_tail) c->held_tail->next = r;
    else c->held_head = r;
    c->held_tail = r;
}

static void dispatch_frame(conn *c, uint8_t *payload, size_t len)
{
    h5a_request *r = request_new(c->srv);
    if (!r) {
        free(payload);
        conn_close(c, "out of memory");
        return;
    }
    r->frame = payload;
    r->frame_len = len;
    /* the reply is made in here, on the loop thread's heap, so that the
     * storage thread rarely allocates what this thread frees */
    mp_buf_reserve(&r->reply, REPLY_FIRST);
    /* Parse with the loop's reusable node array: nothing refers to the nodes
     * once parsing is done, so one array serves every request. */
    server *s = c->srv;
    r->doc = s->scratch;
    h5a_request_parse(r, &s->limits);
    /* who may do what is decided here, before the storage thread sees it */
    if (h5a_access_decide(&s->access, &c->auth, r, c->peer)) c->no_more_input = true;
    h5a_cluster_route(s->cfg, r); /* another node's file: WRONG_NODE, nothing applied */
    s->scratch = r->doc;
    memset(&r->doc, 0, sizeof r->doc);
    if (s->scratch.cap > SCRATCH_KEEP_NODES) mp_doc_free(&s->scratch); /* a rare huge list */
    submit(c, r);
}

static void protocol_error(conn *c, int code, const char *msg);

void conn_frame_timeout(conn *c, uint64_t idle_ms)
{
    char msg[200];
    size_t have = c->big ? c->big_have : c->rend - c->rstart;
    snprintf(msg, sizeof msg,
             "a frame stopped arriving: %zu bytes of it, then nothing for %.0f s (frame_timeout)",
             have, idle_ms / 1000.0);
    fprintf(stderr, "hdf5-async-server: conn %llu %s: %s\n", (unsigned long long)c->serial,
            c->peer, msg);
    protocol_error(c, H5A_E_PROTOCOL_ERROR, msg);
}

/* The stream can no longer be trusted: answer with an error, read nothing
 * more, close once the answer is out. */
static void protocol_error(conn *c, int code, const char *msg)
{
    h5a_request *r = request_new(c->srv);
    c->no_more_input = true;
    if (!r) {
        conn_close(c, "out of memory");
        return;
    }
    r->op = OP_NONE;
    r->op_name = "?";
    r->close_after = true;
    h5a_request_set_error(r, code, "%s", msg);
    net_log(c->srv, "conn %llu %s protocol error: %s", (unsigned long long)c->serial, c->peer, msg);
    submit(c, r);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Cut complete frames out of rbuf; start a big frame when one begins. */
void conn_parse_frames(conn *c)
{
    server *s = c->srv;
    while (!c->no_more_input && c->rend - c->rstart >= 4) {
        uint32_t len = be32(c->rbuf + c->rstart);
        if (len == 0) {
            protocol_error(c, H5A_E_PROTOCOL_ERROR, "zero-length frame");
            return;
        }
        if (len > s->cfg->max_message_size) {
            char msg[160];
            snprintf(msg, sizeof msg, "frame of %u bytes is over max_message_size (%llu)", len,
                     (unsigned long long)s->cfg->max_message_size);
            protocol_error(c, H5A_E_TOO_LARGE, msg);
            return;
        }
        size_t have = c->rend - c->rstart - 4;
        if (len > RBUF_SIZE - 4 && s->over_budget) {
            c->big_waits = true; /* budget_check starts it once under */
            break;
        }
        if (len > RBUF_SIZE - 4) {
            /* The buffer grows as the bytes arrive (plain_dest): a length
             * prefix alone reserves BIG_FIRST at most, whatever it says. */
            size_t n = have < len ? have : len;
            size_t cap = len < BIG_FIRST ? len : BIG_FIRST;
            if (cap < n) cap = n;
            uint8_t *big = malloc(cap);
            if (!big) {
                protocol_error(c, H5A_E_TOO_LARGE, "cannot allocate memory for the frame");
                return;
            }
            memcpy(big, c->rbuf + c->rstart + 4, n);
            c->rstart += 4 + n;
            if (n == len) {
                dispatch_frame(c, big, len);
                continue;
            }
            c->big = big;
            c->big_len = len;
            c->big_have = n;
            c->big_cap = cap;
            net_frames_add(s, cap);
            return;
        }
        if (have < len) break;
        uint8_t *p = malloc(len);
        if (!p) {
            conn_close(c, "out of memory");
            return;
        }
        memcpy(p, c->rbuf + c->rstart + 4, len);
        c->rstart += 4 + len;
        dispatch_frame(c, p, len);
    }
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
        free(c->rbuf);
        c->rbuf = NULL;
    }
}

/* Where the next plaintext bytes go: the rest of a large frame being read in
 * place, or the free end of rbuf. False when out of memory. */
static bool plain_dest(conn *c, uv_buf_t *buf)
{
    if (c->big) {
        if (c->big_have == c->big_cap) { /* full: double it, up to the frame's length */
            size_t cap = c->big_cap * 2 < c->big_len ? c->big_cap * 2 : c->big_len;
            uint8_t *p = realloc(c->big, cap);
            if (!p) {
                *buf = uv_buf_init(NULL, 0);
                return false;
            }
            net_frames_add(c->srv, cap - c->big_cap);
            c->big = p;
            c->big_cap = cap;
        }
        *buf = uv_buf_init((char *)c->big + c->big_have, (unsigned)(c->big_cap - c->big_have));
        return true;
    }
    if (!c->rbuf && !(c->rbuf = malloc(RBUF_SIZE))) {
        *buf = uv_buf_init(NULL, 0);
        return false;
    }
    if (c->rstart > 0) { /* keep the partial frame at the front */
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rend, (unsigned)(RBUF_SIZE - c->rend));
    return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h;
    (void)suggested;
    if (c->tls) { /* ciphertext: decrypted into plain_dest by tls_pump */
        *buf = uv_buf_init((char *)c->srv->tls_rbuf, TLS_CHUNK);
        return;
    }
    plain_dest(c, buf); /* on failure libuv reports UV_ENOBUFS to on_read */
}

/* The very first bytes of a plaintext connection are a TLS ClientHello:
 * the client expects TLS and would take a frame length from the record.
 * Say so in the log and close (what it reads is no frame of ours either). */
static bool tls_on_plain_port(conn *c, const uint8_t *p, size_t n)
{
    if (c->first_seen || n < 6) return false;
    c->first_seen = true;
    if (!h5a_tls_looks_like_hello(p, n)) return false;
    fprintf(stderr,
            "hdf5-async-server: conn %llu %s: a TLS ClientHello on a plaintext port: closed "
            "(set tls_cert_file and tls_key_file to speak TLS)\n",
            (unsigned long long)c->serial, c->peer);
    conn_close(c, "TLS client on a plaintext port");
    return true;
}

/* n plaintext bytes arrived where plain_dest said. */
static void plain_got(conn *c, size_t n)
{
    if (c->no_more_input) {
        if (c->rbuf && c->rstart == c->rend) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rstart = c->rend = 0;
        }
        return;
    }
    if (c->big) {
        c->big_have += n;
        if (c->big_have == c->big_len) {
            uint8_t *p = c->big;
            size_t cap = c->big_cap;
            c->big = NULL;
            net_frame_owner_done(c->srv, c);
            dispatch_frame(c, p, c->big_len);
            /* counted as the request's now (added first: a dip under the
             * budget in between would wake every connection) */
            net_frames_sub(c->srv, cap);
            conn_parse_frames(c); /* bytes after it may already wait in rbuf */
        }
    } else {
        c->rend += n;
        if (!c->tls && tls_on_plain_port(c, c->rbuf + c->rstart, c->rend - c->rstart)) return;
        conn_parse_frames(c);
    }
}


/* The peer shut its side (EOF, or TLS close_notify) with requests still
 * unanswered: it may still be reading. Answer them all, then close
 * (after_written); a partial frame left at the end is dropped. */
static void peer_eof(conn *c)
{
    net_log(c->srv, "conn %llu %s: peer closed its side; answering %zu requests, then closing",
            (unsigned long long)c->serial, c->peer, c->pending_reqs);
    c->peer_eof = true;
    c->no_more_input = true;
    conn_maybe_read(c);
}

/* Decrypt what the session holds into plain_dest while the connection may
 * read; runs again when a paused connection resumes (conn_maybe_read),
 * since records already received wait inside the session. */
static void tls_pump(conn *c)
{
    char err[512];
    while (!c->closing && !c->draining && !c->no_more_input) {
        uv_buf_t dst;
        if (!plain_dest(c, &dst)) {
            conn_close(c, "out of memory");
            return;
        }
        ssize_t n = h5a_tls_conn_read(c->tls, dst.base, dst.len, err, sizeof err);
        if (n == -2 && c->pending_reqs > 0) { /* close_notify: a half close */
            peer_eof(c);
            return;
        }
        if (n < 0) {
            net_log(c->srv, "conn %llu %s: %s", (unsigned long long)c->serial, c->peer, err);
            if (!c->tls_up)
                fprintf(stderr, "hdf5-async-server: conn %llu %s: %s\n",
                        (unsigned long long)c->serial, c->peer, err);
            conn_tls_flush(c); /* the alert, if OpenSSL made one */
            conn_finish(c, "TLS error");
            return;
        }
        if (!c->tls_up && h5a_tls_conn_handshake_done(c->tls)) {
            c->tls_up = true;
            char d[128];
            const char *cn = h5a_tls_conn_peer_cn(c->tls);
            net_log(c->srv, "conn %llu %s: %s%s%s", (unsigned long long)c->serial, c->peer,
                  h5a_tls_conn_describe(c->tls, d, sizeof d), cn ? ", client certificate CN=" : "",
                  cn ? cn : "");
            if (cn && c->srv->access.auth &&
                h5a_access_login_name(&c->srv->access, &c->auth, cn))
                net_log(c->srv, "conn %llu authenticated as '%s' by its certificate",
                      (unsigned long long)c->serial, cn);
            if (c->refuse) {
                conn_refuse_now(c);
                return;
            }
        }
        if (conn_tls_flush(c) < 0) { /* handshake messages, tickets */
            conn_close(c, "out of memory");
            return;
        }
        if (n == 0) return;
        plain_got(c, (size_t)n);
        if (c->closing || c->draining || !c->reading) return; /* paused: resumed later */
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = (conn *)st;
    if (nread < 0) {
        if (nread == UV_EOF && !c->draining && c->pending_reqs > 0) {
            peer_eof(c);
            return;
        }
        conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread > 0) {
        c->last_active = uv_now(&c->srv->loop);
        h5a_count(&h5a_mloop.bytes_in[H5A_PORT_MAIN], (uint64_t)nread);
    }
    if (c->draining) { /* the peer's leftovers: read and forget */
        c->rstart = c->rend = 0;
        return;
    }
    if (c->tls) {
        if (nread == 0 || c->no_more_input) return;
        if (!c->first_seen) {
            c->first_seen = true;
            /* our own protocol in plaintext: answer in kind, so the client
             * learns why instead of seeing the connection drop */
            if ((uint8_t)buf->base[0] != 0x16) {
                h5a_tls_conn_free(c->tls);
                c->tls = NULL;
                c->refuse = "this port speaks TLS: connect with TLS (Python ssl=..., the CLI's "
                            "--tls, the C library's TLS options)";
                c->refuse_code = H5A_E_PROTOCOL_ERROR;
                conn_refuse_now(c);
                return;
            }
        }
        if (h5a_tls_conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        tls_pump(c);
    } else {
        plain_got(c, (size_t)nread);
    }
    conn_maybe_read(c);
}

/* Read while the client is within its budget; pause it otherwise. */
void conn_maybe_read(conn *c)
{
    if (c->closing) return;
    const h5a_config *cfg = c->srv->cfg;
    bool within = c->pending_bytes < cfg->max_pending_bytes &&
                  c->pending_reqs < cfg->max_pending_requests &&
                  unsent(c) < cfg->max_reply_queue && c->tcp.write_queue_size < cfg->max_reply_queue &&
                  !(c->held_head && c->tcp.write_queue_size > 0) &&
                  !(c->srv->over_budget &&
                    (c->big_waits || unsent(c) + c->pending_bytes >= HEAVY_BYTES));
    server *s = c->srv;
    if (within && c->big && s->over_budget) {
        /* Frames wait while anything else can drain the budget; once only
         * arriving frames hold it (what is left would never drain by
         * itself), they go on one at a time. */
        if (!s->frame_owner && s->buffered - s->frames_bytes < s->cfg->max_buffered_bytes / 10)
            s->frame_owner = c;
        within = s->frame_owner == c;
    }
    bool want = c->draining || (!c->no_more_input && within);
    if (!c->no_more_input && !c->draining && within == c->paused) {
        c->paused = !within;
        net_log(c->srv, "conn %llu %s %s (%zu requests, %zu request bytes, %zu reply bytes unsent)",
              (unsigned long long)c->serial, c->peer, c->paused ? "paused" : "resumed",
              c->pending_reqs, c->pending_bytes, c->tcp.write_queue_size);
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
            c->reading = true;
            /* records that arrived before the pause wait inside the session */
            if (c->tls && !c->draining) tls_pump(c);
        }
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void conn_stop_holding(conn *c)
{
    /* Stopping: every request received is answered. The held ones are not
     * run -- the first is a read whose reply a client that is not reading
     * may never take, and the rest wait behind it -- but answered
     * SHUTTING_DOWN, so that what was applied is exactly a prefix of what
     * the connection sent. */
    for (h5a_request *r = c->held_head, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (!r->err_code)
            h5a_request_set_error(r, H5A_E_SHUTTING_DOWN,
                                  "the server is stopping: this request was not run");
        r->droppable = false;
        h5a_storage_submit(c->srv->storage, r);
    }
    c->held_head = c->held_tail = NULL;
}
