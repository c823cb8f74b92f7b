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
#include "server/http.h"
#include "server/net_int.h"

void net_log(const server *s, const char *fmt, ...)
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

void net_log_refused(server *s)
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
    uint64_t idle_ms = cfg->idle_timeout * 1000, slow_ms = cfg->slow_client_timeout * 1000,
             frame_ms = cfg->frame_timeout * 1000;
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
        /* A client that takes none of its replies for slow_client_timeout
         * while more wait behind them (the socket is full and requests are
         * held, or max_reply_queue bytes are queued) is dropped with them.
         * One that reads, however slowly, is only paused: "stalled"
         * restarts whenever a byte left. */
        size_t unsent = c->tcp.write_queue_size;
        bool blocked = unsent > 0 && (c->held_head || unsent >= cfg->max_reply_queue);
        if (slow_ms && blocked) {
            uint64_t sent = c->bytes_queued - unsent;
            if (!c->stalled || sent != c->sent_mark) {
                c->stalled = true;
                c->stall_since = now;
                c->sent_mark = sent;
            } else if (now - c->stall_since >= slow_ms) {
                fprintf(stderr,
                        "hdf5-async-server: dropped conn %llu %s: %zu bytes of replies unread "
                        "for %llu s, %zu requests waiting (max_reply_queue = %llu, "
                        "slow_client_timeout = %llu)\n",
                        (unsigned long long)c->serial, c->peer, unsent,
                        (unsigned long long)((now - c->stall_since) / 1000),
                        c->pending_reqs, (unsigned long long)cfg->max_reply_queue,
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
        /* A frame that stopped arriving (not one we stopped reading) */
        bool partial = c->big || (c->rbuf && c->rend > c->rstart);
        if (frame_ms && partial && !c->paused && !c->no_more_input &&
            now - c->last_active >= frame_ms) {
            conn_frame_timeout(c, now - c->last_active);
            continue;
        }
        if (idle_ms && c->pending_reqs == 0 && now - c->last_active >= idle_ms)
            conn_finish(c, "idle_timeout");
    }
    if (s->refused_unlogged && now - s->refused_logged_at >= REFUSED_LOG_MS) net_log_refused(s);
    http_sweep(s, now);
}

static void on_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        fprintf(stderr, "hdf5-async-server: accept: %s\n", uv_strerror(status));
        return;
    }
    conn_accept(s, l);
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
    http_close_all(s);
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
    http_stop(s);
    /* requests not yet complete are dropped; complete ones are answered */
    for (conn *c = s->conns; c; c = c->next) {
        c->no_more_input = true;
        conn_maybe_read(c);
        conn_stop_holding(c);
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
        if (c->big) frames += c->big_cap;
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
    h5a_auth_files(cfg->data_root[0] != 0, cfg->file_path[0] != '/' ? cfg->file_path : NULL);
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
    int http_port = -1;
    if (cfg->http_port >= 0 && http_start(s, &http_port)) return startup_failed(s, 1);
    if (h5a_storage_start(&s->storage, &s->loop, cfg, conn_on_done, conn_on_flush, on_storage_stopped, s,
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
    if (cfg->frame_timeout && cfg->frame_timeout * 1000 < s->sweep_ms)
        s->sweep_ms = cfg->frame_timeout * 1000;
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
    if (http_port >= 0) printf("http listening on %s:%d\n", cfg->host, http_port);
    fflush(stdout);
    net_log(s,
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
    if (s->refused_unlogged) net_log_refused(s);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->sigusr1, NULL);
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
    free(s->iov);
    while (s->req_pool) {
        h5a_request *r = s->req_pool;
        s->req_pool = r->next;
        mp_buf_free(&r->reply); /* kept with it (conn.c) */
        free(r);
    }
    mp_doc_free(&s->scratch);
    h5a_tls_free(s->tls);
    free(s->tls_rbuf);
    h5a_auth_free(s->access.auth);
    free(s);
    return 0;
}
