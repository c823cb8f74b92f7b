/* Private to the network side (net.c: the loop, start, signals, the sweep;
 * conn.c: one connection's bytes, frames, TLS, requests and replies): the
 * two structs they share and the functions they call across. */
#ifndef H5A_NET_INT_H
#define H5A_NET_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto/msgpack.h"
#include "server/auth.h"
#include "server/config.h"
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
/* Most answered requests kept for reuse (server.req_pool). */
#define REQ_POOL_MAX 1024
/* A request's reply buffer: reserved at this size on the loop thread (most
 * replies fit), kept with a pooled request up to REPLY_KEEP bytes. */
#define REPLY_FIRST 128
#define REPLY_KEEP 1024
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
    size_t big_cap; /* allocated: grows as the frame's bytes arrive */

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
    /* TLS replies not yet all encrypted (conn.c, tls_pump_out) */
    h5a_request *tls_head, *tls_tail;
    size_t tls_off;       /* bytes of tls_head's reply already encrypted */
    size_t tls_inflight;  /* ciphertext handed to the socket, not yet written */
    unsigned tls_writes;  /* those writes */
    bool tls_close_after; /* a reply among them asked to close after it */
    /* plaintext replies from a streamed read's on, written as its bytes are
     * read (conn_stream.c) */
    h5a_request *sq_head, *sq_tail;
    size_t sq_off; /* bytes of sq_head's reply already handed to uv_write */

    /* Requests received but not yet given to the storage thread: a request
     * that may have a large reply (a read) waits while another one of this
     * connection is in the storage thread or its unsent replies are over
     * max_reply_queue, and everything after it waits too (order). So a
     * client that stops reading holds at most max_reply_queue bytes of
     * replies, plus one. */
    h5a_request *held_head, *held_tail;
    size_t reads_in_storage;
    size_t reply_bytes; /* replies made, not yet written to the socket */
    bool peer_eof;      /* the peer shut its side: answer, then close */
    bool big_waits;     /* a large frame's header waits for the budget */
    _Atomic bool gone;  /* closed: the storage thread may skip its reads */
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
    /* Answered requests kept for the next ones (conn.c): a request is
     * ~1.5 KiB, past glibc's per-thread cache, and malloc's slow path for
     * it (bins, consolidation) was the loop's largest cost per small
     * request. At most REQ_POOL_MAX of them. */
    h5a_request *req_pool;
    size_t req_pooled;
    /* streamed reads (conn_stream.c): the connection waiting for the
     * storage thread's next slab, and replies written whose read had not
     * ended yet (freed once it has) */
    struct conn *stream_wait;
    h5a_request *parked;
    h5a_storage *storage;
    const h5a_config *cfg;
    h5a_tls *tls;        /* tls_cert_file: every connection speaks TLS */
    uint8_t *tls_rbuf;   /* TLS_CHUNK bytes of ciphertext being read */
    h5a_access access;   /* auth_file, protected mode */
    uv_signal_t sighup;  /* reloads auth_file */
    uv_signal_t sigusr1; /* prints the memory report */
    /* max_buffered_bytes: frames being received, requests not yet answered
     * and replies not yet sent, over every connection */
    uint64_t buffered;
    uint64_t frames_bytes; /* of which large frames still arriving */
    bool over_budget;
    struct conn *frame_owner; /* over budget: the one connection whose large
                                 frame keeps arriving (the others wait) */
    h5a_limits limits;
    conn *conns;
    uint64_t next_serial;
    size_t nconns;    /* every connection in conns */
    size_t nrejected; /* of those, the ones over max_connections being closed */
    uint64_t refused_unlogged, refused_logged_at;
    /* the HTTP port (http.c): its listener and connections */
    uv_tcp_t http_listener;
    bool http_on;
    struct http_conn *http_conns;
    size_t http_nconns;
    bool stopping;
    int signals;
};

/* conn.c: bytes held for clients, in max_buffered_bytes (http.c counts its
 * responses there too) */
void net_budget_add(server *s, uint64_t n);
void net_budget_sub(server *s, uint64_t n);
/* Over max_buffered_bytes, a connection holding this much of unanswered
 * requests or unsent replies is not read (conn_budget.c). */
#define HEAVY_BYTES ((size_t)1 << 20)
/* conn_budget.c: bytes of large frames still arriving (in the budget, and
 * apart); the connection whose frame goes on while over budget is done. */
void net_frames_add(server *s, uint64_t n);
void net_frames_sub(server *s, uint64_t n);
void net_frame_owner_done(server *s, conn *c);

/* net.c */
void net_log(const server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void net_log_refused(server *s);

/* conn_accept.c */
void conn_accept(server *s, uv_stream_t *listener);
/* 127.0.0.0/8, ::1 or ::ffff:127.x.y.z (both ports' protected mode) */
bool net_is_loopback(const struct sockaddr_storage *sa);
/* An accepted connection's peer as "ip:port" into peer ("?" when unknown);
 * true when it is loopback. Both ports log and decide with it. */
bool net_peer(uv_tcp_t *tcp, char *peer, size_t len);
/* Protected mode, or plaintext on a TLS port: one error reply, then close. */
void conn_refuse_now(conn *c);

/* conn.c */
/* Cut and submit the frames in the read buffer. */
void conn_parse_frames(conn *c);
/* Write out what is queued for the connection (replies in order). */
void conn_write_out(server *s, conn *c);
void conn_maybe_read(conn *c);
/* conn.c's, for conn_tls.c: a reply written (true: close after it), and
 * every reply queued so far written. */
bool conn_request_done(conn *c, h5a_request *r);
/* The replies from list on (linked by next) at the end of a queue. */
void conn_list_append(h5a_request **head, h5a_request **tail, h5a_request *list);
void conn_after_written(conn *c, int status, bool close_after);
/* conn_tls.c: the replies from head on, encrypted and written out as the
 * socket takes them; and what the session has for the peer, written. */
void conn_tls_write_out(conn *c, h5a_request *head);
int conn_tls_flush(conn *c);
/* conn_stream.c: r's stream state (H5A_STREAM_DONE when not streamed) */
int conn_stream_state(const h5a_request *r);
/* must the replies from head on go behind a stream (plaintext)? */
bool conn_stream_holds(const conn *c, const h5a_request *head);
void conn_stream_write_out(conn *c, h5a_request *head);
/* closing: the replies behind a stream, dropped */
void conn_stream_drop(conn *c);
/* a slab read or a read ended: write on, free what waited for its end */
void conn_stream_progress(server *s);
void conn_close(conn *c, const char *why);
/* Close after the replies are out, without losing them (see conn.c). */
void conn_finish(conn *c, const char *why);
/* The storage thread's callbacks: a request answered, then a moment to
 * write out what they queued. */
void conn_on_done(h5a_request *r, void *ud);
void conn_on_flush(void *ud);
/* A connection's frame stopped arriving (frame_timeout): answer with an
 * error and close. */
void conn_frame_timeout(conn *c, uint64_t idle_ms);
/* Stopping: the held requests go to the storage thread answered
 * SHUTTING_DOWN (not run), before it is told to stop. */
void conn_stop_holding(conn *c);

#endif
