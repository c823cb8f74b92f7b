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
#include "server/request.h"
#include "server/storage.h"

/* Frames up to this size are read into the connection's shared buffer and
 * copied out (cheap); larger ones are read straight into a buffer of their
 * own that becomes the request's, so array bytes are never copied. */
#define RBUF_SIZE (64 * 1024)
/* Stop reading a client whose unanswered requests or unsent replies pass
 * these, until it catches up: its memory stays bounded. */
#define MAX_PENDING_BYTES (256u * 1024 * 1024)
#define MAX_PENDING_REQS 65536
#define MAX_WRITE_QUEUE (64u * 1024 * 1024)
/* Largest parse scratch (in MessagePack nodes) kept between requests. */
#define SCRATCH_KEEP_NODES 65536
/* How long a connection we are closing may take to send us its EOF. */
#define DRAIN_MS 2000

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
    bool reading;
    bool closing;     /* uv_close called */
    bool no_more_input; /* protocol error or shutdown: read nothing more */
    bool close_when_idle;
    bool draining;          /* replies done, write side shut, discarding input */
    uint64_t drain_deadline; /* uv_now() after which we close anyway */
    h5a_request *out_head, *out_tail; /* answered, waiting for the next flush */
    struct conn *flush_next;         /* in server.flush_list when out_head */
    uv_shutdown_t shutdown_req;
} conn;

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t drain_timer; /* closes draining connections that never send EOF */
    conn *flush_list;       /* connections with replies to write out */
    uv_buf_t *iov;          /* scratch for building one write per connection */
    mp_doc scratch;         /* the MessagePack nodes of the request being parsed */
    size_t iov_cap;
    h5a_storage *storage;
    const h5a_config *cfg;
    h5a_limits limits;
    conn *conns;
    uint64_t next_serial;
    size_t nconns;
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
static void on_drain_timer(uv_timer_t *t);

/* ---- closing ---- */

static void conn_free_if_done(conn *c)
{
    /* the handle is closed and no request still points at us */
    if (c->closing && c->pending_reqs == 0 && c->tcp.data == NULL) {
        free(c->big);
        free(c->rbuf);
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

static void conn_finish(conn *c, const char *why)
{
    if (c->closing || c->draining) return;
    server *s = c->srv;
    logf_(s, "conn %llu %s finishing (%s)", (unsigned long long)c->serial, c->peer, why);
    c->draining = true;
    c->no_more_input = true;
    free(c->big);
    c->big = NULL;
    c->drain_deadline = uv_now(&s->loop) + DRAIN_MS;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown_sent) < 0) {
        conn_close(c, why);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&s->drain_timer))
        uv_timer_start(&s->drain_timer, on_drain_timer, DRAIN_MS / 4, DRAIN_MS / 4);
    conn_maybe_read(c);
}

static void on_drain_timer(uv_timer_t *t)
{
    server *s = t->data;
    bool any = false;
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->draining) continue;
        if (uv_now(&s->loop) >= c->drain_deadline) conn_close(c, "no EOF from peer");
        else any = true;
    }
    if (!any) uv_timer_stop(t);
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
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    if (close_after) {
        conn_finish(c, "after protocol error");
        return;
    }
    if (c->close_when_idle && c->pending_reqs == 0) {
        conn_finish(c, "server stopping");
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

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h;
    (void)suggested;
    if (c->big) {
        *buf = uv_buf_init((char *)c->big + c->big_have, (unsigned)(c->big_len - c->big_have));
        return;
    }
    if (!c->rbuf && !(c->rbuf = malloc(RBUF_SIZE))) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to on_read */
        return;
    }
    if (c->rstart > 0) { /* keep the partial frame at the front */
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rend, (unsigned)(RBUF_SIZE - c->rend));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = (conn *)st;
    (void)buf;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (c->draining) { /* the peer's leftovers: read and forget */
        c->rstart = c->rend = 0;
        return;
    }
    if (nread == 0 || c->no_more_input) {
        if (c->rbuf && c->rstart == c->rend) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rstart = c->rend = 0;
        }
        return;
    }
    if (c->big) {
        c->big_have += (size_t)nread;
        if (c->big_have == c->big_len) {
            uint8_t *p = c->big;
            c->big = NULL;
            dispatch_frame(c, p, c->big_len);
            parse_frames(c); /* bytes after it may already wait in rbuf */
        }
    } else {
        c->rend += (size_t)nread;
        parse_frames(c);
    }
    conn_maybe_read(c);
}

/* Read while the client is within its budget; pause it otherwise. */
static void conn_maybe_read(conn *c)
{
    if (c->closing) return;
    bool want = c->draining ||
                (!c->no_more_input && c->pending_bytes < MAX_PENDING_BYTES &&
                 c->pending_reqs < MAX_PENDING_REQS && c->tcp.write_queue_size < MAX_WRITE_QUEUE);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ---- accepting ---- */

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
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
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
    logf_(s, "conn %llu %s open (%zu connections)", (unsigned long long)c->serial, c->peer,
          s->nconns);
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

static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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

int h5a_server_run(const h5a_config *cfg)
{
    server *s = calloc(1, sizeof *s);
    char err[1024];
    if (!s) return 1;
    s->cfg = cfg;
    s->limits.max_message_size = cfg->max_message_size;
    s->limits.mp.max_depth = MP_DEFAULT_MAX_DEPTH;
    s->limits.mp.max_nodes = MP_DEFAULT_MAX_NODES;
    raise_nofile_limit();
    /* a client that resets its connection while we write to it must cost us
     * that connection (EPIPE), not the process */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s->loop);

    struct sockaddr_storage sa;
    int rc = resolve(cfg->host, cfg->port, &sa);
    if (rc) {
        fprintf(stderr, "hdf5-async-server: cannot resolve host '%s': %s\n", cfg->host,
                uv_strerror(rc));
        return 1;
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0)) ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection))) {
        fprintf(stderr, "hdf5-async-server: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                uv_strerror(rc));
        return 1;
    }
    if (h5a_storage_start(&s->storage, &s->loop, cfg, on_done, on_flush, on_storage_stopped, s,
                          err, sizeof err)) {
        fprintf(stderr, "hdf5-async-server: %s\n", err);
        return 1;
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
    uv_timer_init(&s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_unref((uv_handle_t *)&s->drain_timer);

    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    printf("listening on %s:%d\n", cfg->host, port);
    fflush(stdout);
    logf_(s, "serving %s (use_compression=%s, max_message_size=%llu)", cfg->file_path,
          cfg->use_compression ? "true" : "false", (unsigned long long)cfg->max_message_size);

    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
    free(s->iov);
    mp_doc_free(&s->scratch);
    free(s);
    return 0;
}
