/* The HTTP port: connections, HTTP/1.1 through libhttp-parser (Debian's
 * libhttp-parser-dev: no parsing here), TLS through tls.c and the response
 * writer. What a parsed request gets (access, routing, /metrics, /health,
 * the viewer's files) is in http_route.c, the /api endpoints in
 * http_h5grove.c and http_data.c. Event loop thread only.
 *
 * One request per connection at a time: the parser pauses at the end of a
 * request, and resumes (on bytes it already has, pipelined) once the
 * response is out. A response's body is either in memory (copied or, for
 * data, the storage thread's read buffer itself, written in place) or
 * generated a piece at a time as the socket drains (JSON of large arrays),
 * so a slow browser holds at most its own response and never the storage
 * thread; every byte held counts in max_buffered_bytes. */
#include "server/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/errors.h"
#include "server/http_int.h"
#include "server/metrics.h"
#include "server/net_int.h"
#include "server/viewer_assets.h"

static void hc_close(http_conn *c, const char *why);
static void process(http_conn *c);
static void maybe_read(http_conn *c);
static void pump(http_conn *c);

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ---- the budget (max_buffered_bytes) ---- */

/* Bytes all HTTP responses hold (a part of the server's buffered bytes):
 * at most half of max_buffered_bytes (hc_may_hold), so that browsers that
 * do not read never put the server over its budget, which would make the
 * writers' large frames wait. One server per process. */
static uint64_t http_held;

void hc_hold(http_conn *c, int64_t bytes)
{
    if (bytes >= 0) {
        http_held += (uint64_t)bytes;
        net_budget_add(c->srv, (uint64_t)bytes);
    } else {
        http_held -= (uint64_t)-bytes;
        net_budget_sub(c->srv, (uint64_t)-bytes);
    }
}

bool hc_may_hold(http_conn *c, uint64_t bytes)
{
    return http_held + bytes <= c->srv->cfg->max_buffered_bytes / 2;
}

/* ---- closing ---- */

static void free_if_done(http_conn *c)
{
    if (c->closing && c->in_storage == 0 && c->tcp.data == NULL) {
        h5g_free(c);
        if (c->gen_free) c->gen_free(c->gen_state);
        free(c->in);
        free(c->qbuf);
        h5a_tls_conn_free(c->tls);
        free(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    http_conn *c = (http_conn *)h;
    c->tcp.data = NULL;
    free_if_done(c);
}

static void hc_close(http_conn *c, const char *why)
{
    if (c->closing) return;
    server *s = c->srv;
    c->closing = true;
    atomic_store(&c->gone, true);
    net_log(s, "http %llu %s closed (%s)", (unsigned long long)c->serial, c->peer, why);
    if (c->prev) c->prev->next = c->next;
    else s->http_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (!c->rejected) s->http_nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- writing ---- */

typedef struct hw {
    uv_write_t w;
    size_t n;
    void (*free_fn)(void *);
    void *owner;
    char data[];
} hw;

static void on_written(uv_write_t *w, int status)
{
    hw *b = (hw *)w;
    http_conn *c = w->data;
    c->out_bytes -= b->n;
    c->sent += b->n;
    hc_hold(c, -(int64_t)b->n);
    h5a_count(&h5a_mloop.bytes_out[H5A_PORT_HTTP], b->n);
    if (b->free_fn) b->free_fn(b->owner);
    free(b);
    if (c->closing) {
        free_if_done(c);
        return;
    }
    if (status < 0) {
        hc_close(c, uv_strerror(status));
        return;
    }
    pump(c);
}

static void write_buf(http_conn *c, hw *b, const void *p, size_t n)
{
    b->n = n;
    b->w.data = c;
    c->out_bytes += n;
    hc_hold(c, (int64_t)n);
    uv_buf_t ub = uv_buf_init((char *)p, (unsigned)n);
    int rc = uv_write(&b->w, (uv_stream_t *)&c->tcp, &ub, 1, on_written);
    if (rc < 0) {
        c->out_bytes -= n;
        hc_hold(c, -(int64_t)n);
        if (b->free_fn) b->free_fn(b->owner);
        free(b);
        hc_close(c, uv_strerror(rc));
    }
}

/* What the TLS session has for the peer, in one write. */
static void tls_flush(http_conn *c)
{
    size_t n = h5a_tls_conn_pending_out(c->tls);
    if (n == 0 || c->closing) return;
    hw *b = malloc(sizeof *b + n);
    if (!b) {
        hc_close(c, "out of memory");
        return;
    }
    b->free_fn = NULL;
    b->owner = NULL;
    size_t got = h5a_tls_conn_take_out(c->tls, b->data, n);
    write_buf(c, b, b->data, got);
}

/* n bytes to the peer: in place (owner freed by free_fn once written) or
 * copied (owner NULL). Through TLS they are encrypted now, a chunk at a
 * time, and the plaintext let go at once. */
static void raw_write(http_conn *c, const void *p, size_t n, void (*free_fn)(void *), void *owner)
{
    if (c->closing || n == 0) {
        if (free_fn) free_fn(owner);
        return;
    }
    if (c->tls) {
        char err[256];
        const uint8_t *q = p;
        for (size_t left = n; left > 0 && !c->closing;) {
            size_t k = left < TLS_CHUNK ? left : TLS_CHUNK;
            if (h5a_tls_conn_write(c->tls, q, k, err, sizeof err) < 0) {
                hc_close(c, err);
                break;
            }
            tls_flush(c);
            q += k;
            left -= k;
        }
        if (free_fn) free_fn(owner);
        return;
    }
    hw *b;
    if (owner) {
        if (!(b = malloc(sizeof *b))) {
            free_fn(owner);
            hc_close(c, "out of memory");
            return;
        }
        b->free_fn = free_fn;
        b->owner = owner;
        write_buf(c, b, p, n);
    } else {
        if (!(b = malloc(sizeof *b + n))) {
            hc_close(c, "out of memory");
            return;
        }
        memcpy(b->data, p, n);
        b->free_fn = NULL;
        b->owner = NULL;
        write_buf(c, b, b->data, n);
    }
}

void hc_start(http_conn *c, int status, const char *ctype, int64_t len, const char *extra)
{
    server *s = c->srv;
    char h[2048];
    size_t n = 0;
    c->status = status;
    c->chunked = len < 0;
    c->headers_sent = true;
    if (s->stopping) c->keep_alive = false;
    const char *origin = s->cfg->http_cors_origin;
#define H(...) n += (size_t)snprintf(h + n, n < sizeof h ? sizeof h - n : 0, __VA_ARGS__)
    H("HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason(status), ctype);
    if (len >= 0) H("Content-Length: %lld\r\n", (long long)len);
    else H("Transfer-Encoding: chunked\r\n");
    if (origin[0]) {
        H("Access-Control-Allow-Origin: %s\r\n", origin);
        if (strcmp(origin, "*") != 0) H("Vary: Origin\r\n");
    }
    H("Connection: %s\r\n%s\r\n", c->keep_alive && !c->close_after ? "keep-alive" : "close",
      extra ? extra : "");
#undef H
    if (n >= sizeof h) n = strlen(h);
    raw_write(c, h, n, NULL, NULL);
}

void hc_body(http_conn *c, const void *p, size_t n, void (*free_fn)(void *), void *owner)
{
    if (c->head || n == 0) {
        if (free_fn) free_fn(owner);
        return;
    }
    if (c->chunked) {
        char hdr[24];
        int k = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        raw_write(c, hdr, (size_t)k, NULL, NULL);
    }
    raw_write(c, p, n, free_fn, owner);
    if (c->chunked) raw_write(c, "\r\n", 2, NULL, NULL);
}

void hc_end(http_conn *c)
{
    if (c->ended) return;
    if (c->chunked && !c->head) raw_write(c, "0\r\n\r\n", 5, NULL, NULL);
    c->ended = true;
    c->gen = NULL;
    pump(c);
}

void hc_json(http_conn *c, int status, hjson *j)
{
    if (j->oom) {
        j_free(j);
        hc_error(c, 500, "out of memory");
        return;
    }
    hc_start(c, status, "application/json", (int64_t)j->len, NULL);
    hc_body(c, j->p, j->len, free, j->p);
    j->p = NULL;
    j->len = j->cap = 0;
    hc_end(c);
}

void hc_error(http_conn *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->headers_sent) { /* too late for a status: cut the response short */
        c->close_after = true;
        c->keep_alive = false;
        c->ended = true;
        c->gen = NULL;
        pump(c);
        return;
    }
    hjson j = {0};
    j_lit(&j, "{\"message\": ");
    j_cstr(&j, msg);
    j_lit(&j, "}");
    if (j.oom) {
        j_free(&j);
        hc_close(c, "out of memory");
        return;
    }
    const char *extra = status == 401   ? "WWW-Authenticate: Bearer realm=\"hdf5-async\"\r\n"
                        : status == 503 ? "Retry-After: 1\r\n"
                                        : NULL;
    hc_start(c, status, "application/json", (int64_t)j.len, extra);
    hc_body(c, j.p, j.len, free, j.p);
    hc_end(c);
}

void hc_stream(http_conn *c, http_gen_fn gen, void *state, void (*free_state)(void *))
{
    c->gen = gen;
    c->gen_state = state;
    c->gen_free = free_state;
    pump(c);
}

/* ---- a request's end ---- */

static void reset_request(http_conn *c)
{
    free(c->qbuf);
    c->qbuf = NULL;
    c->nparams = 0;
    if (c->gen_free) c->gen_free(c->gen_state);
    c->gen = NULL;
    c->gen_state = NULL;
    c->gen_free = NULL;
    c->busy = c->headers_sent = c->chunked = c->ended = c->head = false;
    c->status = 0;
}

static void response_done(http_conn *c)
{
    server *s = c->srv;
    h5a_count(&h5a_mloop.http[c->endpoint][h5a_metrics_status_index(c->status)], 1);
    if (s->cfg->debug)
        net_log(s, "http %llu %s %s -> %d %.3f ms", (unsigned long long)c->serial, c->peer, c->url,
                c->status, (double)(uv_hrtime() - c->t_begin) / 1e6);
    bool keep = c->keep_alive && !c->close_after && !s->stopping;
    reset_request(c);
    c->last_active = uv_now(&s->loop);
    if (!keep) {
        hc_close(c, "response sent, connection not kept");
        return;
    }
    http_parser_pause(&c->parser, 0);
    process(c);
    maybe_read(c);
}

/* The socket took what it was given: end the response, or make more. */
static void pump(http_conn *c)
{
    if (c->closing || !c->busy) return;
    if (c->ended) {
        if (c->out_bytes == 0 && c->in_storage == 0) response_done(c);
        return;
    }
    while (c->gen && !c->ended && !c->closing && c->out_bytes < HTTP_HIGH_WATER &&
           !c->srv->over_budget) {
        size_t before = c->out_bytes;
        c->gen(c);
        if (c->out_bytes == before && !c->ended) break; /* it waits for something else */
    }
    /* over budget with nothing of ours in flight: the stream still goes on
     * (it is what drains the budget), one piece at a time */
    if (c->gen && !c->ended && !c->closing && c->out_bytes == 0) c->gen(c);
}

/* ---- storage replies ---- */

void http_on_done(server *s, h5a_request *r)
{
    http_conn *c = r->conn;
    c->in_storage--;
    if (c->closing) {
        h5a_request_free(r);
        free_if_done(c);
        return;
    }
    h5g_on_done(c, r);
    pump(c);
}

/* ---- parsing (libhttp-parser's callbacks) ---- */

static int on_message_begin(http_parser *p)
{
    http_conn *c = p->data;
    c->url_len = c->header_bytes = c->field_len = c->auth_len = 0;
    c->field_overflow = c->auth_overflow = false;
    c->auth[0] = '\0';
    c->hdr = 0;
    c->in_request = true;
    c->request_start = uv_now(&c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (c->url_len + n > HTTP_MAX_URL) {
        c->bad = 414;
        return 1;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return 0;
}

static int count_header(http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > HTTP_MAX_HEADERS) {
        c->bad = 431;
        return 1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (count_header(c, n)) return 1;
    if (c->hdr != 3) { /* 3: in a field */
        c->field_len = 0;
        c->field_overflow = false;
        c->hdr = 3;
    }
    if (c->field_len + n >= sizeof c->field) c->field_overflow = true;
    else {
        memcpy(c->field + c->field_len, at, n);
        c->field_len += n;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (count_header(c, n)) return 1;
    if (c->hdr == 3) { /* the field is complete */
        bool is_auth = !c->field_overflow && c->field_len == 13 &&
                       strncasecmp(c->field, "authorization", 13) == 0;
        c->hdr = is_auth ? 1 : 0;
        if (is_auth) c->auth_len = 0;
    }
    if (c->hdr == 1) {
        if (c->auth_len + n > HTTP_MAX_AUTH) c->auth_overflow = true;
        else {
            memcpy(c->auth + c->auth_len, at, n);
            c->auth_len += n;
            c->auth[c->auth_len] = '\0';
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
        c->bad = 413; /* nothing here takes a body */
        return -1; /* 1 would mean "no body" to http_parser: -1 is an error */
    }
    if (c->auth_overflow) {
        c->bad = 431;
        return -1; /* 1 would mean "no body" to http_parser: -1 is an error */
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    c->in_request = false;
    c->busy = true;
    c->method = p->method;
    c->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* A request that cannot be read: answer with its status and close. */
static void refuse(http_conn *c, int status, const char *msg)
{
    c->busy = true;
    c->keep_alive = false;
    c->close_after = true;
    c->url_len = 0;
    c->url[0] = '\0';
    hc_error(c, status, "%s", msg);
}

/* Parse what has arrived; answer the request it completes. */
static void process(http_conn *c)
{
    if (c->closing || c->busy || c->close_after) return;
    if (c->in_len == 0) return;
    size_t n = http_parser_execute(&c->parser, &settings, c->in, c->in_len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    if (e == HPE_PAUSED && c->busy) {
        hc_route(c);
        return;
    }
    if (e != HPE_OK) {
        int st = c->bad ? c->bad : 400;
        char msg[200];
        snprintf(msg, sizeof msg, "%s%s", reason(st),
                 st == 400 ? ": this is not an HTTP/1.x request" : "");
        if (st == 414) snprintf(msg, sizeof msg, "URI Too Long: more than %d bytes", HTTP_MAX_URL);
        if (st == 431)
            snprintf(msg, sizeof msg, "Request Header Fields Too Large: more than %d bytes",
                     HTTP_MAX_HEADERS);
        if (st == 413) snprintf(msg, sizeof msg, "Payload Too Large: requests have no body here");
        c->in_len = 0;
        refuse(c, st, msg);
    }
}

/* ---- reading ---- */

static bool ensure_in(http_conn *c, size_t want)
{
    if (c->in_cap - c->in_len >= want) return true;
    size_t cap = c->in_len + want;
    char *p = realloc(c->in, cap);
    if (!p) return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = (http_conn *)h;
    (void)suggested;
    if (c->tls) {
        *buf = uv_buf_init((char *)c->srv->tls_rbuf, TLS_CHUNK);
        return;
    }
    if (!ensure_in(c, 16384)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = (http_conn *)st;
    if (nread < 0) {
        hc_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0) return;
    h5a_count(&h5a_mloop.bytes_in[H5A_PORT_HTTP], (uint64_t)nread);
    c->last_active = uv_now(&c->srv->loop);
    if (!c->tls) {
        c->in_len += (size_t)nread;
    } else {
        if (!c->first_seen) {
            c->first_seen = true;
            if ((uint8_t)buf->base[0] != 0x16) { /* plain HTTP to an HTTPS port */
                h5a_tls_conn_free(c->tls);
                c->tls = NULL;
                refuse(c, 400, "Bad Request: this port speaks HTTPS");
                return;
            }
        }
        if (h5a_tls_conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
            hc_close(c, "out of memory");
            return;
        }
        char err[512];
        for (;;) {
            if (!ensure_in(c, 16384)) {
                hc_close(c, "out of memory");
                return;
            }
            ssize_t k = h5a_tls_conn_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len, err,
                                          sizeof err);
            if (k < 0) {
                tls_flush(c);
                hc_close(c, k == -2 ? "peer closed" : err);
                return;
            }
            tls_flush(c); /* handshake messages */
            if (c->closing) return;
            if (k == 0) break;
            c->in_len += (size_t)k;
        }
        if (!c->tls_up && h5a_tls_conn_handshake_done(c->tls)) c->tls_up = true;
    }
    process(c);
    maybe_read(c);
}

/* Read while the connection is not over its bounds: a request being
 * answered with a lot queued after it, or the server over its budget. */
static void maybe_read(http_conn *c)
{
    if (c->closing) return;
    bool want = !c->close_after && c->in_len < 2 * HTTP_MAX_HEADERS && !c->srv->over_budget &&
                !c->srv->stopping;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void http_resume_all(server *s)
{
    for (http_conn *c = s->http_conns, *next; c; c = next) {
        next = c->next;
        maybe_read(c);
        pump(c);
    }
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) return;
    http_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = s;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    h5a_count(&h5a_mloop.accepted[H5A_PORT_HTTP], 1);
    uv_tcp_nodelay(&c->tcp, 1);
    c->serial = ++s->next_serial;
    c->loopback = net_peer(&c->tcp, c->peer, sizeof c->peer);
    /* both ports' connections count against max_connections */
    size_t open = s->nconns - s->nrejected + s->http_nconns;
    c->rejected = open >= s->cfg->max_connections;
    c->next = s->http_conns;
    if (s->http_conns) s->http_conns->prev = c;
    s->http_conns = c;
    if (!c->rejected) s->http_nconns++;
    c->last_active = uv_now(&s->loop);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    net_log(s, "http %llu %s open", (unsigned long long)c->serial, c->peer);
    if (s->tls && !(c->tls = h5a_tls_conn_new(s->tls))) {
        hc_close(c, "out of memory for a TLS session");
        return;
    }
    if (c->rejected && c->tls) { /* no handshake yet: nothing can be said in TLS */
        hc_close(c, "over max_connections");
        return;
    }
    /* a rejected one is read too: hc_route() answers its request with 503 */
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    maybe_read(c);
}

int http_start(server *s, int *port)
{
    const h5a_config *cfg = s->cfg;
    struct sockaddr_storage sa;
    int rc;
    if ((rc = uv_ip4_addr(cfg->host, cfg->http_port, (struct sockaddr_in *)&sa)) &&
        (rc = uv_ip6_addr(cfg->host, cfg->http_port, (struct sockaddr_in6 *)&sa))) {
        /* a host name: the main listener resolved it; take its address */
        int len = sizeof sa;
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len);
        if (sa.ss_family == AF_INET6) ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)cfg->http_port);
        else ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)cfg->http_port);
    }
    uv_tcp_init(&s->loop, &s->http_listener);
    s->http_listener.data = s;
    s->http_on = true;
    if ((rc = uv_tcp_bind(&s->http_listener, (struct sockaddr *)&sa, 0)) ||
        (rc = uv_listen((uv_stream_t *)&s->http_listener, 1024, on_connection))) {
        fprintf(stderr, "hdf5-async-server: cannot listen (http_port) on %s:%d: %s\n", cfg->host,
                cfg->http_port, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&s->http_listener, (struct sockaddr *)&bound, &blen);
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void http_sweep(server *s, uint64_t now)
{
    const h5a_config *cfg = s->cfg;
    uint64_t idle_ms = HTTP_IDLE_MS;
    if (cfg->idle_timeout && cfg->idle_timeout * 1000 < idle_ms) idle_ms = cfg->idle_timeout * 1000;
    for (http_conn *c = s->http_conns, *next; c; c = next) {
        next = c->next;
        if (c->busy) {
            /* a response none of whose bytes the client takes */
            if (c->out_bytes && cfg->slow_client_timeout) {
                if (c->sent != c->sent_mark || !c->stall_since) {
                    c->sent_mark = c->sent;
                    c->stall_since = now;
                } else if (now - c->stall_since >= cfg->slow_client_timeout * 1000) {
                    fprintf(stderr,
                            "hdf5-async-server: dropped http %llu %s: a response unread for %llu "
                            "s (slow_client_timeout)\n",
                            (unsigned long long)c->serial, c->peer,
                            (unsigned long long)cfg->slow_client_timeout);
                    hc_close(c, "slow client");
                }
            } else {
                c->stall_since = 0;
            }
            continue;
        }
        if (c->rejected && now - c->last_active >= (cfg->frame_timeout && cfg->frame_timeout * 1000 <
                                                     HTTP_REJECTED_MS
                                                     ? cfg->frame_timeout * 1000
                                                     : HTTP_REJECTED_MS)) {
            hc_close(c, "over max_connections, no request");
            continue;
        }
        if (c->in_request && cfg->frame_timeout &&
            now - c->request_start >= cfg->frame_timeout * 1000) {
            refuse(c, 408, "Request Timeout: the request did not arrive within frame_timeout");
            continue;
        }
        if (s->tls && c->tls && !c->tls_up &&
            now - c->last_active >= cfg->tls_handshake_timeout * 1000) {
            hc_close(c, "TLS handshake timeout");
            continue;
        }
        if (!c->in_request && now - c->last_active >= idle_ms) hc_close(c, "idle");
    }
}

void http_stop(server *s)
{
    if (!s->http_on) return;
    uv_close((uv_handle_t *)&s->http_listener, NULL);
    for (http_conn *c = s->http_conns, *next; c; c = next) {
        next = c->next;
        if (!c->busy) hc_close(c, "server stopping");
        else maybe_read(c);
    }
}

void http_close_all(server *s)
{
    for (http_conn *c = s->http_conns, *next; c; c = next) {
        next = c->next;
        if (!c->busy || (c->ended && c->out_bytes == 0)) hc_close(c, "server stopping");
    }
}

uint64_t http_nconns(const server *s)
{
    return s->http_nconns;
}
