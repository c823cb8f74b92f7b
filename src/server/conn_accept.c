/* Accepting a connection on the main port: who it is (loopback or not),
 * max_connections, protected mode, and the one error reply (id nil) sent
 * before closing a connection that is refused. Split from conn.c, whose
 * reading and writing it uses. Event loop thread only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/errors.h"
#include "server/metrics.h"
#include "server/net_int.h"

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
    conn_write_out(s, c); /* on_written then finishes the connection */
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
        net_log_refused(s);
    net_log(s, "conn %llu %s refused: %zu connections open (max_connections)",
          (unsigned long long)c->serial, c->peer, nopen);
    char msg[160];
    snprintf(msg, sizeof msg, "server has %zu connections (max_connections = %llu); try later",
             nopen, (unsigned long long)s->cfg->max_connections);
    send_error_and_finish(c, H5A_E_TOO_LARGE, msg);
}

/* Protected mode, or plaintext on a TLS port: one error reply (id nil),
 * then close. On a TLS port it waits for the handshake (tls_pump). */
void conn_refuse_now(conn *c)
{
    c->rejected = true;
    c->srv->nrejected++;
    c->no_more_input = true;
    net_log(c->srv, "conn %llu %s refused: %s", (unsigned long long)c->serial, c->peer, c->refuse);
    send_error_and_finish(c, c->tls ? H5A_E_UNAUTHENTICATED : c->refuse_code, c->refuse);
}

bool net_is_loopback(const struct sockaddr_storage *sa)
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

bool net_peer(uv_tcp_t *tcp, char *peer, size_t len)
{
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    snprintf(peer, len, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &salen) != 0) return false;
    char ip[48] = "?";
    int port = 0;
    if (sa.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    snprintf(peer, len, "%s:%d", ip, port);
    return net_is_loopback(&sa);
}

void conn_accept(server *s, uv_stream_t *l)
{
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
    h5a_count(&h5a_mloop.accepted[H5A_PORT_MAIN], 1);
    c->serial = ++s->next_serial;
    c->accepted_at = uv_now(&s->loop);
    bool loopback = net_peer(&c->tcp, c->peer, sizeof c->peer);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->last_active = uv_now(&s->loop);
    /* before this one; the HTTP port's connections count too */
    size_t nopen = s->nconns - s->nrejected - 1 + s->http_nconns;
    if (nopen >= s->cfg->max_connections) {
        conn_reject(c, nopen);
        return;
    }
    /* a peer whose machine died is noticed (and closed) without idle_timeout */
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    net_log(s, "conn %llu %s open (%zu connections)", (unsigned long long)c->serial, c->peer,
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
            conn_refuse_now(c);
            return;
        }
    }
    conn_maybe_read(c);
}

