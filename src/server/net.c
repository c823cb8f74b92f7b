#include "server/net.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "proto/errors.h"
#include "server/auth.h"
#include "server/request.h"
#include "server/storage.h"
#include "server/tls.h"

/* Frames up to this size are read into the connection's shared buffer and
 * copied out (cheap); larger ones are read straight into a buffer of their
 * own that becomes the request's, so array bytes are never copied. */
#define RBUF_SIZE (64 * 1024)
/* A client whose unanswered requests or unsent replies pass the configured
 * limits (max_pending_bytes, max_pending_requests, max_reply_queue) is not
 * read until it catches up, so its memory stays bounded (conn_maybe_read). */
/* Largest parse scratch (in MessagePack nodes) kept between requests. */
#define SCRATCH_KEEP_NODES 65536
/* How long a connection we are closing may take to send us its EOF. */
#define DRAIN_MS 2000
/* The sweep timer runs at a quarter of the shortest timeout it enforces,
 * within these bounds: a timeout fires at most 25% (or 1 s) late. */
#define SWEEP_MIN_MS 10
#define SWEEP_MAX_MS 1000
/* TCP keepalive after this much silence: finds peers whose machine died,
 * which idle_timeout = 0 would otherwise keep for ever. */
#define KEEPALIVE_S 60
/* Refused connections are summed up on stderr at most this often. */
#define REFUSED_LOG_MS 10000
/* TLS: ciphertext is read into one loop-wide buffer of this size, and
 * replies are encrypted and handed to the socket this much at a time. */
#define TLS_CHUNK (256 * 1024)

typedef struct server server;

typedef struct conn {
    uv_tcp_t tcp; /* first: a uv handle pointer is a conn pointer */
    server *srv;
    struct conn *prev, *next;
    uint64_t serial;
    char peer[64];

    uint8_t *rbuf; /* RBUF_SIZE bytes while a partial frame waits; NULL when
                      idle, so thousands of quiet connections cost little */
    size_t rstart, rend;
    uint8_t *big; /* a large frame being read in place */
    size_t big_len, big_have;

    size_t pending_reqs;  /* submitted, reply not yet written out */
    size_t pending_bytes; /* their frame bytes */
    uint64_t last_active; /* uv_now() of the last byte received or last reply done */
    uint64_t bytes_queued; /* reply bytes ever passed to uv_write */
    /* over max_reply_queue: since when without the client taking a byte */
    bool stalled;
    uint64_t stall_since, sent_mark;
    bool rejected; /* over max_connections: gets one error reply, then closes */
    bool reading;
    bool paused; /* not read because it is over a limit (for the debug log) */
    bool closing;     /* uv_close called */
    bool no_more_input; /* protocol error or shutdown: read nothing more */
    bool close_when_idle;
    bool draining;          /* replies done, write side shut, discarding input */
    uint64_t drain_deadline; /* uv_now() after which we close anyway */
    h5a_request *out_head, *out_tail; /* answered, waiting for the next flush */
    struct conn *flush_next;         /* in server.flush_list when out_head */
    uv_shutdown_t shutdown_req;

    h5a_tls_conn *tls;      /* on a TLS port: the session; NULL on plaintext */
    bool tls_up;            /* handshake done (and logged) */
    bool first_seen;        /* the stream's first bytes were looked at */
    uint64_t accepted_at;   /* uv_now(), for tls_handshake_timeout */
    const char *refuse;     /* protected mode: refuse with this once the
                               handshake is done (TLS) or at once */
    int refuse_code;
    h5a_conn_auth auth;
} conn;

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    /* One timer for every connection: closes draining connections that never
     * send EOF, idle ones (idle_timeout) and slow ones (slow_client_timeout). */
    uv_timer_t sweep_timer;
    uint64_t sweep_ms;
    conn *flush_list;       /* connections with replies to write out */
    uv_buf_t *iov;          /* scratch for building one write per connection */
    mp_doc scratch;         /* the MessagePack nodes of the request being parsed */
    size_t iov_cap;
    h5a_storage *storage;
    const h5a_config *cfg;
    h5a_tls *tls;        /* tls_cert_file: every connection speaks TLS */
    uint8_t *tls_rbuf;   /* TLS_CHUNK bytes of ciphertext being read */
    h5a_access access;   /* auth_file, protected mode */
    uv_signal_t sighup;  /* reloads auth_file */
    uv_signal_t sigusr1; /* prints the memory report */
    h5a_limits limits;
    conn *conns;
    uint64_t next_serial;
    size_t nconns;    /* every connection in conns */
    size_t nrejected; /* of those, the ones over max_connections being closed */
    uint64_t refused_unlogged, refused_logged_at;
    bool stopping;
    int signals;
};

static void logf_(const server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const server *s, const char *fmt, ...)
{
    if (!s->cfg->debug) return;
    char ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    localtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld ", ts, now.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void conn_maybe_read(conn *c);

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

static void conn_close(conn *c, const char *why)
{
    if (c->closing) return;
    c->closing = true;
    server *s = c->srv;
    logf_(s, "conn %llu %s closed (%s)", (unsigned long long)c->serial, c->peer, why);
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
}

static int tls_flush(conn *c, bool last, bool close_after);

static void conn_finish(conn *c, const char *why)
{
    if (c->closing || c->draining) return;
    server *s = c->srv;
    logf_(s, "conn %llu %s finishing (%s)", (unsigned long long)c->serial, c->peer, why);
    c->draining = true;
    c->no_more_input = true;
    free(c->big);
    c->big = NULL;
    if (c->tls) { /* a close_notify before our FIN: the peer sees a clean end */
        h5a_tls_conn_shutdown(c->tls);
        tls_flush(c, false, false);
    }
    c->drain_deadline = uv_now(&s->loop) + DRAIN_MS;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown_sent) < 0) {
        conn_close(c, why);
        return;
    }
    conn_maybe_read(c);
}

static void log_refused(server *s)
{
    fprintf(stderr,
            "hdf5-async-server: refused %llu connection%s: %zu open, max_connections = %llu\n",
            (unsigned long long)s->refused_unlogged, s->refused_unlogged == 1 ? "" : "s",
            s->nconns - s->nrejected, (unsigned long long)s->cfg->max_connections);
    s->refused_unlogged = 0;
    s->refused_logged_at = uv_now(&s->loop);
}

/* Every sweep_ms: the deadlines of all connections, in one pass. */
static void on_sweep(uv_timer_t *t)
{
    server *s = t->data;
    const h5a_config *cfg = s->cfg;
    uint64_t now = uv_now(&s->loop);
    uint64_t idle_ms = cfg->idle_timeout * 1000, slow_ms = cfg->slow_client_timeout * 1000;
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->draining) {
            if (now >= c->drain_deadline) conn_close(c, "no EOF from peer");
            continue;
        }
        if (c->tls && !c->tls_up &&
            now - c->accepted_at >= cfg->tls_handshake_timeout * 1000) {
            fprintf(stderr,
                    "hdf5-async-server: conn %llu %s: TLS handshake not done after %llu s "
                    "(tls_handshake_timeout): closed\n",
                    (unsigned long long)c->serial, c->peer,
                    (unsigned long long)cfg->tls_handshake_timeout);
            conn_close(c, "TLS handshake timeout");
            continue;
        }
        /* A client over max_reply_queue that takes none of its replies for
         * slow_client_timeout is dropped with them. One that reads, however
         * slowly, is only paused: "stalled" restarts whenever a byte left. */
        size_t unsent = c->tcp.write_queue_size;
        if (slow_ms && unsent >= cfg->max_reply_queue) {
            uint64_t sent = c->bytes_queued - unsent;
            if (!c->stalled || sent != c->sent_mark) {
                c->stalled = true;
                c->stall_since = now;
                c->sent_mark = sent;
            } else if (now - c->stall_since >= slow_ms) {
                fprintf(stderr,
                        "hdf5-async-server: dropped conn %llu %s: %zu bytes of replies unread "
                        "for %llu s (max_reply_queue = %llu, slow_client_timeout = %llu)\n",
                        (unsigned long long)c->serial, c->peer, unsent,
                        (unsigned long long)((now - c->stall_since) / 1000),
                        (unsigned long long)cfg->max_reply_queue,
                        (unsigned long long)cfg->slow_client_timeout);
                conn_close(c, "slow client");
                continue;
            }
        } else {
            c->stalled = false;
        }
        /* Idle: nothing in flight (no request being executed, no reply
         * unsent) and no byte received. A frame arriving slowly keeps its
         * connection; one that stopped half-way is idle like any other. */
        if (idle_ms && c->pending_reqs == 0 && now - c->last_active >= idle_ms)
            conn_finish(c, "idle_timeout");
    }
    if (s->refused_unlogged && now - s->refused_logged_at >= REFUSED_LOG_MS) log_refused(s);
}

/* ---- replies ---- */

/* All replies a connection got from one hand-over of the storage thread go
 * out in one write: one syscall for many pipelined replies. */
typedef struct reply_batch {
    uv_write_t w;
    h5a_request *head;
} reply_batch;

/* Forget request r of connection c: it is answered or will never be. */
static bool request_done(conn *c, h5a_request *r)
{
    bool close_after = r->close_after;
    c->pending_reqs--;
    c->pending_bytes -= r->frame_len;
    h5a_request_free(r);
    return close_after;
}

/* A connection's batch of replies is out: close it when asked, else read on. */
static void after_written(conn *c, int status, bool close_after)
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
        close_after |= request_done(c, r);
    }
    free(b);
    after_written(c, status, close_after);
}

/* ---- TLS: replies are encrypted on the loop thread, TLS_CHUNK at a time,
 * each chunk's records written as soon as they are made, so a large reply
 * is never held twice in full; the plaintext is freed once encrypted. ---- */

typedef struct tls_write {
    uv_write_t w;
    bool last;        /* ends a batch of replies: after_written then */
    bool close_after;
    char data[];      /* the ciphertext */
} tls_write;

static void on_tls_written(uv_write_t *w, int status)
{
    tls_write *tw = (tls_write *)w;
    conn *c = w->data;
    bool last = tw->last, close_after = tw->close_after;
    free(tw);
    if (c->closing) return; /* on_closed frees the connection */
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    if (last) after_written(c, status, close_after);
}

/* Write out what the session has for the peer (records, handshake
 * messages, alerts). `last` marks the end of a batch of replies: it is
 * written even when empty, for its callback. */
static int tls_flush(conn *c, bool last, bool close_after)
{
    size_t n = h5a_tls_conn_pending_out(c->tls);
    if (n == 0 && !last) return 0;
    tls_write *tw = malloc(sizeof *tw + (n ? n : 1));
    if (!tw) return UV_ENOMEM;
    size_t got = h5a_tls_conn_take_out(c->tls, tw->data, n);
    tw->last = last;
    tw->close_after = close_after;
    tw->w.data = c;
    uv_buf_t b = uv_buf_init(tw->data, (unsigned)got);
    c->bytes_queued += got;
    int rc = uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, on_tls_written);
    if (rc < 0) free(tw);
    return rc;
}

/* Encrypt n bytes and send the records, a chunk at a time. */
static int tls_put(conn *c, const uint8_t *p, size_t n)
{
    char err[256];
    while (n > 0) {
        size_t k = n < TLS_CHUNK ? n : TLS_CHUNK;
        if (h5a_tls_conn_write(c->tls, p, k, err, sizeof err) < 0) return UV_EPROTO;
        int rc = tls_flush(c, false, false);
        if (rc < 0) return rc;
        p += k;
        n -= k;
    }
    return 0;
}

static void tls_write_out(conn *c, h5a_request *head)
{
    bool close_after = false;
    int rc = 0;
    for (h5a_request *r = head, *next; r; r = next) {
        next = r->next;
        if (!rc) rc = tls_put(c, r->reply.data, r->reply.len);
        if (!rc && r->reply_data_len) rc = tls_put(c, r->reply_data, r->reply_data_len);
        close_after |= request_done(c, r);
    }
    if (!rc) rc = tls_flush(c, true, close_after);
    if (rc < 0) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    conn_maybe_read(c);
}

/* Storage thread finished r: queue its reply (on the loop thread). */
static void on_done(h5a_request *r, void *ud)
{
    server *s = ud;
    conn *c = r->conn;
    if (s->cfg->debug) {
        double ms = (double)(uv_hrtime() - r->t_start) / 1e6;
        logf_(s, "conn %llu id=%llu op=%s path=%s bytes=%zu -> %s %.3f ms",
              (unsigned long long)c->serial, (unsigned long long)r->id, r->op_name,
              r->path ? r->path : "-", r->frame_len, r->reply_ok ? "ok" : "error", ms);
    }
    if (c->closing || r->reply.oom) {
        request_done(c, r);
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

static void write_out(server *s, conn *c)
{
    h5a_request *head = c->out_head;
    c->out_head = c->out_tail = NULL;
    if (c->closing) {
        for (h5a_request *r = head, *next; r; r = next) {
            next = r->next;
            request_done(c, r);
        }
        conn_free_if_done(c);
        return;
    }
    if (c->tls) {
        tls_write_out(c, head);
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
            request_done(c, r);
        }
        conn_close(c, "out of memory for replies");
        return;
    }
    n = 0;
    for (h5a_request *r = head; r; r = r->next) {
        s->iov[n++] = uv_buf_init((char *)r->reply.data, (unsigned)r->reply.len);
        c->bytes_queued += r->reply.len + r->reply_data_len;
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
            request_done(c, r);
        }
        free(b);
        conn_close(c, uv_strerror(rc));
        return;
    }
    /* a client that does not read its replies: stop reading its requests */
    conn_maybe_read(c);
}

static void on_flush(void *ud)
{
    server *s = ud;
    conn *c = s->flush_list;
    s->flush_list = NULL;
    while (c) {
        conn *next = c->flush_next;
        c->flush_next = NULL;
        write_out(s, c);
        c = next;
    }
}

/* ---- requests ---- */

static void submit(conn *c, h5a_request *r)
{
    r->conn = c;
    r->t_start = uv_hrtime();
    c->pending_reqs++;
    c->pending_bytes += r->frame_len;
    h5a_storage_submit(c->srv->storage, r);
}

static void dispatch_frame(conn *c, uint8_t *payload, size_t len)
{
    h5a_request *r = calloc(1, sizeof *r);
    if (!r) {
        free(payload);
        conn_close(c, "out of memory");
        return;
    }
    r->frame = payload;
    r->frame_len = len;
    /* Parse with the loop's reusable node array: nothing refers to the nodes
     * once parsing is done, so one array serves every request. */
    server *s = c->srv;
    r->doc = s->scratch;
    h5a_request_parse(r, &s->limits);
    /* who may do what is decided here, before the storage thread sees it */
    if (h5a_access_decide(&s->access, &c->auth, r, c->peer)) c->no_more_input = true;
    s->scratch = r->doc;
    memset(&r->doc, 0, sizeof r->doc);
    if (s->scratch.cap > SCRATCH_KEEP_NODES) mp_doc_free(&s->scratch); /* a rare huge list */
    submit(c, r);
}

/* The stream can no longer be trusted: answer with an error, read nothing
 * more, close once the answer is out. */
static void protocol_error(conn *c, int code, const char *msg)
{
    h5a_request *r = calloc(1, sizeof *r);
    c->no_more_input = true;
    if (!r) {
        conn_close(c, "out of memory");
        return;
    }
    r->op = OP_NONE;
    r->op_name = "?";
    r->close_after = true;
    h5a_request_set_error(r, code, "%s", msg);
    logf_(c->srv, "conn %llu %s protocol error: %s", (unsigned long long)c->serial, c->peer, msg);
    submit(c, r);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Cut complete frames out of rbuf; start a big frame when one begins. */
static void parse_frames(conn *c)
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
        if (len > RBUF_SIZE - 4) {
            uint8_t *big = malloc(len);
            if (!big) {
                protocol_error(c, H5A_E_TOO_LARGE, "cannot allocate memory for the frame");
                return;
            }
            size_t n = have < len ? have : len;
            memcpy(big, c->rbuf + c->rstart + 4, n);
            c->rstart += 4 + n;
            if (n == len) {
                dispatch_frame(c, big, len);
                continue;
            }
            c->big = big;
            c->big_len = len;
            c->big_have = n;
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
        *buf = uv_buf_init((char *)c->big + c->big_have, (unsigned)(c->big_len - c->big_have));
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
            c->big = NULL;
            dispatch_frame(c, p, c->big_len);
            parse_frames(c); /* bytes after it may already wait in rbuf */
        }
    } else {
        c->rend += n;
        if (!c->tls && tls_on_plain_port(c, c->rbuf + c->rstart, c->rend - c->rstart)) return;
        parse_frames(c);
    }
}

static void refuse_now(conn *c);

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
        if (n < 0) {
            logf_(c->srv, "conn %llu %s: %s", (unsigned long long)c->serial, c->peer, err);
            if (!c->tls_up)
                fprintf(stderr, "hdf5-async-server: conn %llu %s: %s\n",
                        (unsigned long long)c->serial, c->peer, err);
            tls_flush(c, false, false); /* the alert, if OpenSSL made one */
            conn_finish(c, "TLS error");
            return;
        }
        if (!c->tls_up && h5a_tls_conn_handshake_done(c->tls)) {
            c->tls_up = true;
            char d[128];
            const char *cn = h5a_tls_conn_peer_cn(c->tls);
            logf_(c->srv, "conn %llu %s: %s%s%s", (unsigned long long)c->serial, c->peer,
                  h5a_tls_conn_describe(c->tls, d, sizeof d), cn ? ", client certificate CN=" : "",
                  cn ? cn : "");
            if (cn && c->srv->access.auth &&
                h5a_access_login_name(&c->srv->access, &c->auth, cn))
                logf_(c->srv, "conn %llu authenticated as '%s' by its certificate",
                      (unsigned long long)c->serial, cn);
            if (c->refuse) {
                refuse_now(c);
                return;
            }
        }
        if (tls_flush(c, false, false) < 0) { /* handshake messages, tickets */
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
        conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread > 0) c->last_active = uv_now(&c->srv->loop);
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
                refuse_now(c);
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
static void conn_maybe_read(conn *c)
{
    if (c->closing) return;
    const h5a_config *cfg = c->srv->cfg;
    bool within = c->pending_bytes < cfg->max_pending_bytes &&
                  c->pending_reqs < cfg->max_pending_requests &&
                  c->tcp.write_queue_size < cfg->max_reply_queue;
    bool want = c->draining || (!c->no_more_input && within);
    if (!c->no_more_input && !c->draining && within == c->paused) {
        c->paused = !within;
        logf_(c->srv, "conn %llu %s %s (%zu requests, %zu request bytes, %zu reply bytes unsent)",
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

/* ---- accepting ---- */

/* One error reply with id nil, built here (the storage thread may be busy
 * for seconds), then a graceful close once it is out. */
static void send_error_and_finish(conn *c, int code, const char *msg)
{
    server *s = c->srv;
    h5a_request *r = calloc(1, sizeof *r);
    if (!r) {
        conn_close(c, "out of memory");
        return;
    }
    r->op = OP_NONE;
    r->op_name = "?";
    r->close_after = true;
    r->conn = c;
    mp_buf *b = &r->reply;
    mp_put_raw(b, "\0\0\0\0", 4);
    mp_put_map_header(b, 3);
    mp_put_cstr(b, "id");
    mp_put_nil(b);
    mp_put_cstr(b, "ok");
    mp_put_bool(b, false);
    mp_put_cstr(b, "error");
    mp_put_map_header(b, 2);
    mp_put_cstr(b, "code");
    mp_put_cstr(b, h5a_strerror_code(code));
    mp_put_cstr(b, "message");
    mp_put_cstr(b, msg);
    if (b->oom) {
        h5a_request_free(r);
        conn_close(c, "out of memory");
        return;
    }
    size_t n = b->len - 4;
    b->data[0] = (uint8_t)(n >> 24);
    b->data[1] = (uint8_t)(n >> 16);
    b->data[2] = (uint8_t)(n >> 8);
    b->data[3] = (uint8_t)n;
    c->pending_reqs++;
    c->out_head = c->out_tail = r;
    write_out(s, c); /* on_written then finishes the connection */
}

/* Over max_connections: accept anyway, so the client learns why instead of
 * hanging in the listen backlog, send one error reply (id nil) and close
 * gracefully (conn_finish) so the reply is not lost to a reset. The reply is
 * built here: the storage thread may be busy for seconds. */
static void conn_reject(conn *c, size_t nopen)
{
    server *s = c->srv;
    c->rejected = true;
    s->nrejected++;
    c->no_more_input = true;
    /* the first refusal after a quiet spell at once, the rest summed up by
     * the sweep every REFUSED_LOG_MS */
    if (s->refused_unlogged++ == 0 &&
        (!s->refused_logged_at || uv_now(&s->loop) - s->refused_logged_at >= REFUSED_LOG_MS))
        log_refused(s);
    logf_(s, "conn %llu %s refused: %zu connections open (max_connections)",
          (unsigned long long)c->serial, c->peer, nopen);
    char msg[160];
    snprintf(msg, sizeof msg, "server has %zu connections (max_connections = %llu); try later",
             nopen, (unsigned long long)s->cfg->max_connections);
    send_error_and_finish(c, H5A_E_TOO_LARGE, msg);
}

/* Protected mode, or plaintext on a TLS port: one error reply (id nil),
 * then close. On a TLS port it waits for the handshake (tls_pump). */
static void refuse_now(conn *c)
{
    c->rejected = true;
    c->srv->nrejected++;
    c->no_more_input = true;
    logf_(c->srv, "conn %llu %s refused: %s", (unsigned long long)c->serial, c->peer, c->refuse);
    send_error_and_finish(c, c->tls ? H5A_E_UNAUTHENTICATED : c->refuse_code, c->refuse);
}

static bool is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static void on_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        fprintf(stderr, "hdf5-async-server: accept: %s\n", uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = s;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* replies are small and latency matters */
    c->serial = ++s->next_serial;
    c->accepted_at = uv_now(&s->loop);
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    bool loopback = false;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        loopback = is_loopback(&sa);
        char ip[48] = "?";
        int port = 0;
        if (sa.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->last_active = uv_now(&s->loop);
    size_t nopen = s->nconns - s->nrejected - 1; /* before this one */
    if (nopen >= s->cfg->max_connections) {
        conn_reject(c, nopen);
        return;
    }
    /* a peer whose machine died is noticed (and closed) without idle_timeout */
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    logf_(s, "conn %llu %s open (%zu connections)", (unsigned long long)c->serial, c->peer,
          s->nconns);
    if (s->tls && !(c->tls = h5a_tls_conn_new(s->tls))) {
        conn_close(c, "out of memory for a TLS session");
        return;
    }
    if (!loopback && !s->access.auth && s->access.protected_mode) {
        c->refuse = "this server is in protected mode: with no auth_file it serves only clients "
                    "on its own machine. On the server, set auth_file (make a token with "
                    "`hdf5-async token NAME ROLE`) or protected_mode = no; see docs/security.md";
        c->refuse_code = H5A_E_UNAUTHENTICATED;
        if (!c->tls) { /* TLS: after the handshake, so the reply can be read */
            refuse_now(c);
            return;
        }
    }
    conn_maybe_read(c);
}

/* ---- shutdown ---- */

static void on_storage_stopped(void *ud)
{
    server *s = ud;
    /* every reply is written or queued; close each connection when its
     * queue drains (on_written does it for busy ones) */
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        c->close_when_idle = true;
        if (c->pending_reqs == 0) conn_finish(c, "server stopping");
    }
    h5a_storage_free(s->storage);
    s->storage = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *s = h->data;
    if (++s->signals > 1) {
        fprintf(stderr, "hdf5-async-server: second signal, exiting at once\n");
        _exit(1);
    }
    fprintf(stderr, "hdf5-async-server: %s: finishing received requests, then exiting\n",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
    s->stopping = true;
    uv_close((uv_handle_t *)&s->listener, NULL);
    /* requests not yet complete are dropped; complete ones are answered */
    for (conn *c = s->conns; c; c = c->next) {
        c->no_more_input = true;
        conn_maybe_read(c);
    }
    h5a_storage_stop(s->storage);
}

/* ---- start ---- */

static void raise_nofile_limit(const h5a_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* the file, the listener, the loop's own descriptors and HDF5's need some */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < cfg->max_connections + 64)
        fprintf(stderr,
                "hdf5-async-server: warning: the open-files limit (%llu) is below "
                "max_connections (%llu) + 64: accepting will fail before max_connections\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)cfg->max_connections);
}

static int resolve(const char *host, int port, struct sockaddr_storage *sa)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0) return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0) return 0;
    uv_loop_t loop;
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    uv_loop_init(&loop);
    int rc = uv_getaddrinfo(&loop, &req, NULL, host, NULL, &hints);
    if (rc == 0) {
        memcpy(sa, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
        if (sa->ss_family == AF_INET) ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
        else ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
        uv_freeaddrinfo(req.addrinfo);
    }
    uv_loop_close(&loop);
    return rc;
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Startup failed after the loop was made: close what is open (the storage
 * thread's handle frees its state when closed) and free it all, so that
 * a server that cannot start (e.g. its file is in use) exits without a
 * leak for the sanitizers to report. */
static int startup_failed(server *s, int status)
{
    uv_walk(&s->loop, close_any, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    h5a_tls_free(s->tls);
    free(s->tls_rbuf);
    h5a_auth_free(s->access.auth);
    free(s);
    return status;
}

/* SIGUSR1: where the memory is. The event loop's half (connections, frames
 * being received, replies not yet sent) here, the storage thread's (heap,
 * HDF5's caches, the log's pages) from that thread, between two batches. */
static void on_sigusr1(uv_signal_t *h, int signum)
{
    server *s = h->data;
    (void)signum;
    size_t rbufs = 0, frames = 0, pending = 0, unsent = 0;
    for (conn *c = s->conns; c; c = c->next) {
        if (c->rbuf) rbufs += RBUF_SIZE;
        if (c->big) frames += c->big_len;
        pending += c->pending_bytes;
        unsent += c->tcp.write_queue_size;
    }
    fprintf(stderr,
            "hdf5-async-server: memory (event loop): %zu connections, read buffers %.1f MiB, "
            "large frames arriving %.1f MiB, requests not yet answered %.1f MiB, replies not "
            "yet sent %.1f MiB\n",
            s->nconns, rbufs / 1048576.0, frames / 1048576.0, pending / 1048576.0,
            unsent / 1048576.0);
    if (s->storage) h5a_storage_report(s->storage);
}

/* SIGHUP: read auth_file again. A bad file keeps the old table. */
static void on_sighup(uv_signal_t *h, int signum)
{
    server *s = h->data;
    (void)signum;
    char err[1024];
    if (!s->cfg->auth_file[0]) {
        fprintf(stderr, "hdf5-async-server: SIGHUP: no auth_file to reload\n");
        return;
    }
    if (h5a_access_reload(&s->access, s->cfg->auth_file, err, sizeof err))
        fprintf(stderr, "hdf5-async-server: SIGHUP: keeping the old tokens: %s\n", err);
    else
        fprintf(stderr, "hdf5-async-server: SIGHUP: reloaded %s (%zu tokens)\n",
                s->cfg->auth_file, s->access.auth->n);
}

static bool host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* TLS context and tokens, before anything listens: a bad file stops the
 * server with its name and the reason (exit status 2, as config errors). */
static int load_security(server *s)
{
    const h5a_config *cfg = s->cfg;
    char err[1024];
    s->access.protected_mode = cfg->protected_mode;
    if (cfg->auth_file[0] && h5a_auth_load(&s->access.auth, cfg->auth_file, err, sizeof err)) {
        fprintf(stderr, "hdf5-async-server: %s\n", err);
        return -1;
    }
    if (cfg->tls_cert_file[0]) {
        if (h5a_tls_new(&s->tls, cfg->tls_cert_file, cfg->tls_key_file,
                        cfg->tls_ca_file[0] ? cfg->tls_ca_file : NULL,
                        (h5a_tls_client_auth)cfg->tls_client_auth, err, sizeof err)) {
            fprintf(stderr, "hdf5-async-server: %s\n", err);
            return -1;
        }
        if (!(s->tls_rbuf = malloc(TLS_CHUNK))) return -1;
    }
    if (!host_is_loopback(cfg->host) && !cfg->auth_file[0]) {
        if (cfg->protected_mode)
            fprintf(stderr,
                    "hdf5-async-server: warning: listening on %s with no auth_file: protected "
                    "mode serves only clients on this machine; set auth_file (docs/security.md) "
                    "to serve others\n",
                    cfg->host);
        else
            fprintf(stderr,
                    "hdf5-async-server: WARNING: listening on %s with no auth_file and "
                    "protected_mode = no: anyone who can reach this port can read, change and "
                    "delete the file\n",
                    cfg->host);
    }
    return 0;
}

int h5a_server_run(const h5a_config *cfg)
{
    server *s = calloc(1, sizeof *s);
    char err[1024];
    if (!s) return 1;
    s->cfg = cfg;
    s->limits.max_message_size = cfg->max_message_size;
    s->limits.mp.max_depth = (unsigned)cfg->max_nesting;
    s->limits.mp.max_nodes = (size_t)cfg->max_elements;
    raise_nofile_limit(cfg);
    /* a client that resets its connection while we write to it must cost us
     * that connection (EPIPE), not the process */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s->loop);
    if (load_security(s)) return startup_failed(s, 2);

    struct sockaddr_storage sa;
    int rc = resolve(cfg->host, cfg->port, &sa);
    if (rc) {
        fprintf(stderr, "hdf5-async-server: cannot resolve host '%s': %s\n", cfg->host,
                uv_strerror(rc));
        return startup_failed(s, 1);
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0)) ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection))) {
        fprintf(stderr, "hdf5-async-server: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                uv_strerror(rc));
        return startup_failed(s, 1);
    }
    if (h5a_storage_start(&s->storage, &s->loop, cfg, on_done, on_flush, on_storage_stopped, s,
                          err, sizeof err)) {
        fprintf(stderr, "hdf5-async-server: %s\n", err);
        return startup_failed(s, 1);
    }
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    /* neither keeps the loop alive: it ends when the listener, the storage
     * thread's async handle and every connection are closed, and a second
     * signal is still caught until then */
    uv_unref((uv_handle_t *)&s->sigint);
    uv_unref((uv_handle_t *)&s->sigterm);
    uv_signal_init(&s->loop, &s->sighup);
    s->sighup.data = s;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&s->sighup);
    uv_signal_init(&s->loop, &s->sigusr1);
    s->sigusr1.data = s;
    uv_signal_start(&s->sigusr1, on_sigusr1, SIGUSR1);
    uv_unref((uv_handle_t *)&s->sigusr1);
    s->sweep_ms = DRAIN_MS;
    if (cfg->idle_timeout && cfg->idle_timeout * 1000 < s->sweep_ms)
        s->sweep_ms = cfg->idle_timeout * 1000;
    if (cfg->slow_client_timeout && cfg->slow_client_timeout * 1000 < s->sweep_ms)
        s->sweep_ms = cfg->slow_client_timeout * 1000;
    s->sweep_ms /= 4;
    if (s->sweep_ms < SWEEP_MIN_MS) s->sweep_ms = SWEEP_MIN_MS;
    if (s->sweep_ms > SWEEP_MAX_MS) s->sweep_ms = SWEEP_MAX_MS;
    uv_timer_init(&s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_start(&s->sweep_timer, on_sweep, s->sweep_ms, s->sweep_ms);
    uv_unref((uv_handle_t *)&s->sweep_timer);

    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    printf("listening on %s:%d\n", cfg->host, port);
    fflush(stdout);
    logf_(s,
          "serving %s (use_compression=%s, max_message_size=%llu, max_connections=%llu, "
          "idle_timeout=%llu, max_pending_bytes=%llu, max_pending_requests=%llu, "
          "max_reply_queue=%llu, slow_client_timeout=%llu, max_nesting=%llu, max_elements=%llu, "
          "max_chunks=%llu, max_op_bytes=%llu)",
          cfg->file_path, cfg->use_compression ? "true" : "false",
          (unsigned long long)cfg->max_message_size, (unsigned long long)cfg->max_connections,
          (unsigned long long)cfg->idle_timeout, (unsigned long long)cfg->max_pending_bytes,
          (unsigned long long)cfg->max_pending_requests, (unsigned long long)cfg->max_reply_queue,
          (unsigned long long)cfg->slow_client_timeout, (unsigned long long)cfg->max_nesting,
          (unsigned long long)cfg->max_elements, (unsigned long long)cfg->max_chunks,
          (unsigned long long)cfg->max_op_bytes);

    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->refused_unlogged) log_refused(s);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->sigusr1, NULL);
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
    free(s->iov);
    mp_doc_free(&s->scratch);
    h5a_tls_free(s->tls);
    free(s->tls_rbuf);
    h5a_auth_free(s->access.auth);
    free(s);
    return 0;
}
