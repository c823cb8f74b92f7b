/* [cluster] for the asynchronous client (hdf5a_connect_opts.follow_wrong_node
 * and cluster_nodes, issue 14), as the blocking client does it (blocking.c)
 * but without blocking the caller's loop on a reply. Kept apart from
 * async.c, which is about one connection.
 *
 * Every request's frame is kept until its reply. A WRONG_NODE reply marks
 * its request "redirect", wanting the node the error names (no callback
 * yet: nothing was applied), and makes the connection move: from then on
 * new requests are queued but not sent ("unsent"), the requests already
 * sent are answered by the old node (each callback with its answer, or
 * marked redirect too), and once none is left the socket is replaced
 * (dup3 on the same fd number, as reconnect does) by one to the node the
 * oldest redirected request wants: TLS on a new session for that host, the
 * connect's token first, then the frames redirected there and the held-back
 * ones, in order. Requests that want another node stay redirected and the
 * next move takes them. With consistent node lists every request thus
 * takes at most one hop, and one file's requests keep their order (they
 * all want the same node); a redirected request's callback comes after
 * those of requests for other files sent after it that the old node
 * answered.
 *
 * A request is redirected at most HDF5A_MAX_WRONG_NODE_HOPS times; a
 * redirection to a node it was already sent to (nodes whose lists differ)
 * or one hop too many is its final answer: HDF5A_EWRONG_NODE naming the
 * nodes. With cluster_nodes, hdf5a_async_set_file moves the connection the
 * same way to the file's owner (rendezvous.c) before later requests go. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/async.h"
#include "proto/errors.h"

typedef struct h5c_afw {
    char *token; /* NULL: no auth request */
    h5c_nodes nodes;
    char node[256];   /* where the connection is ("HOST:PORT") */
    /* the connection moves once what was sent on it is answered: to the
     * node the first redirected request wants, else to target (the owner
     * of the file set with cluster_nodes; "" none); meanwhile new requests
     * are held back */
    bool moving;
    char target[256];
} h5c_afw;

int h5c_afw_new(hdf5a_async *ac, const char *host, int port, const h5c_opts *o, char *why,
                size_t whylen)
{
    h5c_afw *f = calloc(1, sizeof *f);
    if (!f || (o->token && !(f->token = strdup(o->token)))) {
        free(f);
        return h5a_fail(why, whylen, HDF5A_ENOMEM, "out of memory");
    }
    int rc = o->cluster_nodes ? h5c_nodes_parse(o->cluster_nodes, &f->nodes, why, whylen) : 0;
    if (rc) {
        h5c_wipe_str(&f->token);
        free(f);
        return rc;
    }
    snprintf(f->node, sizeof f->node, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    ac->fw = f;
    return 0;
}

void h5c_afw_free(hdf5a_async *ac)
{
    h5c_afw *f = ac->fw;
    h5c_wipe_str(&f->token);
    h5c_nodes_free(&f->nodes);
    free(f);
    ac->fw = NULL;
}

pending_cb *h5c_afw_waiting(hdf5a_async *ac)
{
    pending_cb *cb = ac->held_last ? ac->held_last->next : ac->head;
    while (cb && (cb->redirect || cb->unsent)) {
        ac->held_last = cb;
        cb = cb->next;
    }
    return cb;
}

int h5c_afw_keep(hdf5a_async *ac, pending_cb *cb, size_t mark)
{
    size_t n = ac->out.len - mark;
    if (!ac->rc) { /* reconnect kept it already */
        if (!(cb->frame = malloc(n)))
            return HDF5A_ENOMEM;
        memcpy(cb->frame, ac->out.data + mark, n);
        cb->frame_len = n;
    }
    cb->unsent = ac->fw->moving;
    if (cb->unsent)
        ac->out.len = mark; /* sent from the frame once the connection moved */
    return 0;
}

bool h5c_afw_wrong_node(hdf5a_async *ac, pending_cb *cb, const h5c_reply *r)
{
    h5c_afw *f = ac->fw;
    char to[256];
    if (!r->node || r->node_len == 0 || r->node_len >= sizeof to ||
        memchr(r->node, '\0', r->node_len)) {
        snprintf(ac->msg, sizeof ac->msg, "%.*s", (int)r->message_len, r->message);
        return false;
    }
    memcpy(to, r->node, r->node_len);
    to[r->node_len] = '\0';
    char *want = strdup(to);
    if (!want || (!cb->path && !(cb->path = strdup(f->node)))) {
        free(want);
        snprintf(ac->msg, sizeof ac->msg, "%.*s (out of memory following it)",
                 (int)r->message_len, r->message);
        return false;
    }
    bool seen = h5c_path_has(cb->path, to);
    if (seen || cb->hops >= HDF5A_MAX_WRONG_NODE_HOPS) {
        free(want);
        snprintf(ac->msg, sizeof ac->msg,
                 "WRONG_NODE %s (%.600s -> %.200s): the nodes' [cluster] lists disagree; "
                 "nothing was applied",
                 seen ? "redirections loop" : "redirected too many times", cb->path, to);
        return false;
    }
    free(cb->want);
    cb->want = want;
    cb->redirect = true;
    cb->hops++;
    f->moving = true;
    return true;
}

void h5c_afw_reset(hdf5a_async *ac)
{
    ac->held_last = NULL;
    for (pending_cb *cb = ac->head; cb; cb = cb->next)
        cb->redirect = cb->unsent = false;
    ac->fw->moving = ac->fw->target[0] != '\0';
}

void h5c_afw_file_changed(hdf5a_async *ac)
{
    h5c_afw *f = ac->fw;
    const char *owner = h5c_nodes_owner(&f->nodes, ac->file);
    if (!owner)
        return;
    if (strcmp(owner, f->node) == 0) {
        if (!f->target[0])
            return;
        f->target[0] = '\0'; /* here already: only redirections move it */
    } else {
        snprintf(f->target, sizeof f->target, "%s", owner);
        f->moving = true;
    }
    if (!ac->in_callback && ac->state != ST_DISCONNECTED)
        h5c_afw_step(ac); /* nothing in flight: move (or stay) now */
}

/* The output for the new connection to `to`: the token's auth first, then
 * every frame redirected there or held back, in order. Requests that want
 * another node stay redirected, for the next move. */
static int requeue(hdf5a_async *ac, const char *to, char *why, size_t whylen)
{
    h5c_afw *f = ac->fw;
    ac->out.len = ac->out_pos = 0;
    ac->held_last = NULL; /* flags change below */
    if (f->token) {
        pending_cb *cb = calloc(1, sizeof *cb);
        h5c_request r = {.op = H5C_AUTH, .token = f->token};
        const void *tail;
        size_t tail_len;
        if (!cb || h5c_encode_request(&ac->out, ac->next_id + 1, &r, &tail, &tail_len, why,
                                      whylen)) {
            free(cb);
            return h5a_fail(why, whylen, HDF5A_ENOMEM, "out of memory");
        }
        cb->id = ++ac->next_id;
        cb->op = H5C_AUTH;
        cb->connect_auth = true;
        cb->next = ac->head;
        ac->head = cb;
        if (!ac->tail)
            ac->tail = cb;
        ac->pending++;
        ac->secret_len = ac->out.len;
    }
    f->moving = false;
    for (pending_cb *cb = ac->head; cb; cb = cb->next) {
        if (cb->redirect && strcmp(cb->want, to) != 0) {
            f->moving = true; /* the next move takes it */
            continue;
        }
        if (!cb->redirect && !cb->unsent)
            continue;
        mp_put_raw(&ac->out, cb->frame, cb->frame_len);
        if (cb->redirect && cb->path) { /* unsent ones: path NULL, the new node only */
            size_t n = strlen(cb->path) + 4 + strlen(to) + 1;
            char *p = realloc(cb->path, n);
            if (!p)
                return h5a_fail(why, whylen, HDF5A_ENOMEM, "out of memory");
            strcat(strcat(p, " -> "), to);
            cb->path = p;
        }
        cb->redirect = cb->unsent = false;
    }
    if (f->target[0] && strcmp(f->target, to) != 0)
        f->moving = true;
    if (ac->out.oom) {
        ac->out.oom = false;
        return h5a_fail(why, whylen, HDF5A_ENOMEM, "out of memory resending");
    }
    return 0;
}

/* A new socket to `to` in place of the drained one. */
static int switch_now(hdf5a_async *ac, const char *to, char *why, size_t whylen)
{
    h5c_afw *f = ac->fw;
    char host[256];
    int port;
    if (h5c_parse_node(to, host, sizeof host, &port))
        return h5a_fail(why, whylen, HDF5A_EREPLY, "the server named node '%s', not HOST:PORT",
                        to);
    /* a name in the node list is resolved here, in the loop; an address
     * (the usual [cluster] entry) costs nothing */
    struct addrinfo *list = NULL;
    int rc = h5c_resolve(host, port, &list, why, whylen);
    if (rc)
        return rc;
    int s = -1, error = 0;
    struct addrinfo *chosen = NULL;
    for (int pass = 0; pass < 2 && s < 0; pass++)
        for (struct addrinfo *ai = list; ai && s < 0; ai = ai->ai_next)
            if (h5c_addr_in_pass(ai, pass) && (s = h5c_connect_start(ai, &error)) >= 0)
                chosen = ai;
    if (s < 0) {
        freeaddrinfo(list);
        return h5a_fail(why, whylen, HDF5A_EIO, "socket: %s", strerror(errno));
    }
    if (ac->rc)
        h5c_arc_retarget(ac, chosen);
    h5c_addr_name(chosen, ac->peer, sizeof ac->peer);
    freeaddrinfo(list);
    if (h5c_async_replace_fd(ac, s) < 0)
        return h5a_fail(why, whylen, HDF5A_EIO, "dup3: %s", strerror(errno));
    /* nothing of the old connection is worth anything now */
    ac->in_start = ac->in_end = 0;
    free(ac->big_block);
    ac->big_block = NULL;
    ac->big = NULL;
    ac->cout_pos = ac->cout_len = 0;
    if (ac->secret_len)
        h5c_wipe(ac->out.data, ac->secret_len);
    ac->secret_len = 0;
    if ((rc = requeue(ac, to, why, whylen)))
        return rc;
    if (ac->tls && (rc = h5c_tls_restart_for(ac->tls, host, why, whylen)))
        return rc;
    snprintf(f->node, sizeof f->node, "%s", to);
    if (strcmp(f->target, to) == 0)
        f->target[0] = '\0';
    ac->connect_error = error;
    ac->state = ST_CONNECTING;
    want_read(ac, true);
    want_write(ac, true);
    return 0;
}

bool h5c_afw_step(hdf5a_async *ac)
{
    h5c_afw *f = ac->fw;
    if (!f->moving || h5c_afw_waiting(ac) || ac->state == ST_DISCONNECTED)
        return false;
    if (ac->state == ST_BACKOFF) {
        /* reconnect is waiting to connect again: it sends everything, and
         * the old node redirects again */
        return false;
    }
    /* the oldest redirected request's node first, so that every one gets
     * there; else the file's owner */
    char to[256] = "";
    for (pending_cb *cb = ac->head; cb && !to[0]; cb = cb->next)
        if (cb->redirect)
            snprintf(to, sizeof to, "%s", cb->want);
    if (!to[0] && strcmp(f->target, f->node) != 0)
        snprintf(to, sizeof to, "%s", f->target);
    if (!to[0]) { /* nowhere else to go: what was held back goes here */
        f->moving = false;
        f->target[0] = '\0';
        ac->held_last = NULL;
        for (pending_cb *cb = ac->head; cb; cb = cb->next)
            if (cb->unsent) {
                mp_put_raw(&ac->out, cb->frame, cb->frame_len);
                cb->unsent = false;
            }
        if (ac->out.oom) {
            ac->out.oom = false;
            return h5c_async_fail(ac, HDF5A_ENOMEM, "out of memory sending held requests");
        }
        if (ac->state == ST_CONNECTED && ac->out_pos < ac->out.len)
            want_write(ac, true);
        return false;
    }
    char why[H5C_ERRLEN], msg[H5C_ERRLEN];
    int rc = switch_now(ac, to, why, sizeof why);
    if (rc) {
        snprintf(msg, sizeof msg, "following WRONG_NODE to %.200s: %.700s", to, why);
        f->moving = false;
        f->target[0] = '\0';
        return h5c_async_fail(ac, rc, msg);
    }
    return true;
}
