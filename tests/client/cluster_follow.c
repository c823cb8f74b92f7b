/* The blocking C client against a [cluster] of servers that
 * tests/integration/test_cluster_c.py starts (the servers must know their
 * node list before they start, which is easier from Python): follows
 * WRONG_NODE with follow_wrong_node, surfaces the owner (hdf5a_wrong_node)
 * without it, and refuses a redirection loop. Not a test_* program: it
 * needs those servers, so `make test-client` does not run it.
 *
 *   cluster_follow three NODE0 NODE1 NODE2   (the config's nodes, in order)
 *   cluster_follow loop  HOST:PORT FILE      (nodes whose lists disagree)
 *   cluster_follow dead  HOST:PORT FILE OWNER (FILE's owner is down)
 *   cluster_follow athree / aloop / adead ...  the same with the
 *                                      asynchronous client (pipelined)
 *   cluster_follow cthree NODE0 NODE1 NODE2   athree's pipelines with
 *                                      cluster_nodes: set_file moves first
 *   cluster_follow nodes HOST:PORT LIST FILE  (cluster_nodes: both clients
 *                                      go to FILE's owner by LIST first)
 *
 * $H5A_TOKEN, when set, is every connection's token (nodes with an
 * auth_file: following must authenticate on the new node too); with
 * $H5A_TLS_CA every connection is TLS, verified against that CA.
 *
 * Exit status 0 when every check passed; what the files hold is checked
 * by the pytest with h5py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdf5_async.h"
#include "hdf5_async/adapters/poll.h"

#define TIMEOUT_MS 30000
#define NPIPE 30 /* a multiple of 3 */

static int failed;
#define CHECK(x)                                                                           \
    do {                                                                                   \
        if (!(x)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #x);          \
            failed++;                                                                      \
        }                                                                                  \
    } while (0)

static hdf5a_client *connect_to(const char *node, int follow, int reconnect)
{
    char host[256], err[1024];
    const char *colon = strrchr(node, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - node), node);
    hdf5a_connect_opts o;
    hdf5a_connect_opts_init(&o);
    o.follow_wrong_node = follow;
    o.reconnect = reconnect;
    o.token = getenv("H5A_TOKEN"); /* a server with an auth_file: each node's auth */
    o.tls_ca_file = getenv("H5A_TLS_CA");
    o.tls = o.tls_ca_file != NULL;
    hdf5a_client *c = NULL;
    if (hdf5a_connect_ex(&c, host, atoi(colon + 1), TIMEOUT_MS, &o, err, sizeof err)) {
        fprintf(stderr, "connect to %s: %s\n", node, err);
        exit(1);
    }
    return c;
}

/* appends {k, k+1, k+2} (int32) to /rows of the client's file */
static int append3(hdf5a_client *c, int k, uint64_t *rows)
{
    int32_t v[3] = {k, k + 1, k + 2};
    uint64_t shape[1] = {3};
    hdf5a_array a = {"<i4", 1, shape, v, sizeof v};
    *rows = 0;
    return hdf5a_append(c, "/rows", &a, NULL, rows);
}

/* The first name "PREFIX_N.h5" whose owner is node `want`. */
static void file_of(const char *const *nodes, int want, const char *prefix, char *out, size_t n)
{
    for (int i = 0;; i++) {
        snprintf(out, n, "%s_%d.h5", prefix, i);
        if (hdf5a_cluster_owner(nodes, 3, out) == want)
            return;
    }
}

static void three(const char *const *nodes)
{
    char f[3][64];
    for (int i = 0; i < 3; i++)
        file_of(nodes, i, "c", f[i], sizeof f[i]);
    uint64_t rows;

    /* without following: WRONG_NODE, the owner named, nothing applied */
    hdf5a_client *c = connect_to(nodes[0], 0, 0);
    CHECK(hdf5a_set_file(c, f[2]) == 0);
    CHECK(append3(c, 100, &rows) == HDF5A_EWRONG_NODE);
    CHECK(hdf5a_wrong_node(c) && strcmp(hdf5a_wrong_node(c), nodes[2]) == 0);
    CHECK(strstr(hdf5a_errstr(c), nodes[2]) != NULL);
    CHECK(hdf5a_ping(c) == 0 && hdf5a_wrong_node(c) == NULL);
    hdf5a_close(c);

    /* following, with and without reconnect: each file lands on its owner;
     * file i gets rows {10i, ...} then {10i+5, ...} */
    for (int rec = 0; rec < 2; rec++) {
        c = connect_to(nodes[0], 1, rec);
        for (int i = 2; i >= 0; i--) { /* node 0's own file last: back again */
            CHECK(hdf5a_set_file(c, f[i]) == 0);
            int rc = append3(c, 10 * i + 5 * rec, &rows);
            CHECK(rc == 0);
            if (rc)
                fprintf(stderr, "append to %s: %s\n", f[i], hdf5a_errstr(c));
            CHECK(rows == 3u * (rec + 1));
            CHECK(hdf5a_wrong_node(c) == NULL);
            hdf5a_array *back = NULL;
            CHECK(hdf5a_read(c, "/rows", &back) == 0 && back && back->shape[0] == rows &&
                  ((int32_t *)back->data)[3 * rec] == 10 * i + 5 * rec);
            hdf5a_array_free(back);
        }
        hdf5a_close(c);
    }
    for (int i = 0; i < 3; i++)
        printf("%s %s\n", f[i], nodes[i]);
}

static void loop(const char *node, const char *file)
{
    hdf5a_client *c = connect_to(node, 1, 0);
    CHECK(hdf5a_set_file(c, file) == 0);
    uint64_t rows;
    CHECK(append3(c, 1, &rows) == HDF5A_EWRONG_NODE);
    CHECK(strstr(hdf5a_errstr(c), "redirections loop") != NULL);
    CHECK(hdf5a_wrong_node(c) != NULL);
    fprintf(stderr, "loop: %s\n", hdf5a_errstr(c));
    hdf5a_close(c);
}

/* The owner cannot be reached: the connect's error, the owner named, and
 * the client back on the node it came from. */
static void dead(const char *node, const char *file, const char *owner)
{
    hdf5a_client *c = connect_to(node, 1, 0);
    CHECK(hdf5a_set_file(c, file) == 0);
    uint64_t rows;
    CHECK(append3(c, 1, &rows) == HDF5A_EIO);
    CHECK(strstr(hdf5a_errstr(c), "following WRONG_NODE to") != NULL);
    CHECK(hdf5a_wrong_node(c) && strcmp(hdf5a_wrong_node(c), owner) == 0);
    fprintf(stderr, "dead: %s\n", hdf5a_errstr(c));
    CHECK(hdf5a_set_file(c, NULL) == 0);
    CHECK(hdf5a_ping(c) == 0);
    hdf5a_close(c);
}

/* ---- the asynchronous client ---- */

static hdf5a_async *aconnect_to(const char *node, int reconnect, const char *nodes,
                                hdf5a_poll *p)
{
    char host[256], err[1024];
    const char *colon = strrchr(node, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - node), node);
    hdf5a_connect_opts o;
    hdf5a_connect_opts_init(&o);
    o.follow_wrong_node = 1;
    o.reconnect = reconnect;
    o.cluster_nodes = nodes;
    o.token = getenv("H5A_TOKEN");
    o.tls_ca_file = getenv("H5A_TLS_CA");
    o.tls = o.tls_ca_file != NULL;
    hdf5a_async *ac = NULL;
    if (hdf5a_async_connect_ex(&ac, host, atoi(colon + 1), &o, err, sizeof err)) {
        fprintf(stderr, "async connect to %s: %s\n", node, err);
        exit(1);
    }
    hdf5a_poll_attach(ac, p);
    return ac;
}

/* One callback's record: how often it fired, with what. */
typedef struct {
    int calls, status;
    uint64_t rows;
    int32_t at;     /* a read's element at `want` */
    uint64_t want;
    char msg[512];
} outcome;

static void on_reply(hdf5a_async *ac, const hdf5a_reply *r, void *privdata)
{
    outcome *o = privdata;
    (void)ac;
    o->calls++;
    o->status = r->status;
    snprintf(o->msg, sizeof o->msg, "%s", r->message ? r->message : "");
    if (r->ndim > 0)
        o->rows = r->shape[0];
    if (r->array && r->array->ndim == 1) {
        o->rows = r->array->shape[0];
        if (o->want < o->rows)
            o->at = ((const int32_t *)r->array->data)[o->want];
    }
}

/* frees the context from inside its callback */
static void on_reply_free(hdf5a_async *ac, const hdf5a_reply *r, void *privdata)
{
    on_reply(ac, r, privdata);
    hdf5a_async_free(ac);
}

static int aappend3(hdf5a_async *ac, int k, outcome *o)
{
    int32_t v[3] = {k, k + 1, k + 2};
    uint64_t shape[1] = {3};
    hdf5a_array a = {"<i4", 1, shape, v, sizeof v};
    return hdf5a_async_append(ac, "/rows", &a, NULL, on_reply, o);
}

static void run(hdf5a_poll *p)
{
    while (p->ac && hdf5a_async_pending(p->ac) > 0)
        if (hdf5a_poll_run_once(p, TIMEOUT_MS) <= 0) {
            fprintf(stderr, "the loop stopped with %zu pending: %s\n",
                    p->ac ? hdf5a_async_pending(p->ac) : 0,
                    p->ac ? hdf5a_async_errstr(p->ac) : "(freed)");
            failed++;
            return;
        }
}

/* Pipelined: three appends for the three nodes' files queued at once on
 * node 0 (which answers its own and refuses the others), then reads of
 * all three the same way; every callback once, with the owner's answer. */
static void athree(const char *const *nodes, const char *list)
{
    char f[3][64];
    for (int i = 0; i < 3; i++)
        file_of(nodes, i, list ? "k" : "a", f[i], sizeof f[i]);
    for (int rec = 0; rec < 2; rec++) {
        hdf5a_poll p;
        hdf5a_async *ac = aconnect_to(nodes[0], rec, list, &p);
        outcome app[3] = {{0}}, rd[3] = {{0}};
        for (int i = 2; i >= 0; i--) {
            CHECK(hdf5a_async_set_file(ac, f[i]) == 0);
            CHECK(aappend3(ac, 10 * i + 5 * rec, &app[i]) == 0);
        }
        run(&p);
        for (int i = 2; i >= 0; i--) {
            rd[i].want = 3u * rec;
            CHECK(hdf5a_async_set_file(ac, f[i]) == 0);
            CHECK(hdf5a_async_read(ac, "/rows", on_reply, &rd[i]) == 0);
        }
        run(&p);
        for (int i = 0; i < 3; i++) {
            CHECK(app[i].calls == 1 && app[i].status == 0);
            if (app[i].status)
                fprintf(stderr, "append to %s: %s\n", f[i], app[i].msg);
            CHECK(app[i].rows == 3u * (rec + 1));
            CHECK(rd[i].calls == 1 && rd[i].status == 0);
            CHECK(rd[i].rows == 3u * (rec + 1) && rd[i].at == 10 * i + 5 * rec);
        }
        /* an interleaved pipeline: request k appends 1000+k to /seqREC of
         * file k%3, all queued at once, so that each node refuses some and
         * answers others while requests for other nodes wait; each file
         * must get its values in the order they were queued */
        char seq[16];
        snprintf(seq, sizeof seq, "/seq%d", rec);
        outcome one[NPIPE];
        memset(one, 0, sizeof one);
        for (int k = 0; k < NPIPE; k++) {
            int32_t v = 1000 + k;
            uint64_t shape[1] = {1};
            hdf5a_array a = {"<i4", 1, shape, &v, sizeof v};
            CHECK(hdf5a_async_set_file(ac, f[k % 3]) == 0);
            CHECK(hdf5a_async_append(ac, seq, &a, NULL, on_reply, &one[k]) == 0);
        }
        run(&p);
        for (int k = 0; k < NPIPE; k++) {
            CHECK(one[k].calls == 1 && one[k].status == 0 && one[k].rows == (uint64_t)k / 3 + 1);
            if (one[k].status)
                fprintf(stderr, "pipelined append %d: %s\n", k, one[k].msg);
        }
        for (int i = 0; i < 3; i++) {
            outcome back = {0};
            back.want = NPIPE / 3 - 1;
            CHECK(hdf5a_async_set_file(ac, f[i]) == 0);
            CHECK(hdf5a_async_read(ac, seq, on_reply, &back) == 0);
            run(&p);
            CHECK(back.calls == 1 && back.status == 0 && back.rows == NPIPE / 3 &&
                  back.at == 1000 + NPIPE - 3 + i);
        }
        CHECK(hdf5a_async_error(ac) == 0);
        hdf5a_async_free(ac);
    }
    /* freed from a callback while requests wait for a move: every other
     * callback fires once, with HDF5A_ECLOSED; those for nodes 1 and 2
     * were refused by node 0 and never sent on (/gone stays absent there,
     * which the pytest checks; node 0 may have applied its own) */
    hdf5a_poll p;
    hdf5a_async *ac = aconnect_to(nodes[0], 0, list, &p);
    outcome o[4] = {{0}};
    int32_t v = 1;
    uint64_t shape[1] = {1};
    hdf5a_array a = {"<i4", 1, shape, &v, sizeof v};
    CHECK(hdf5a_async_set_file(ac, f[0]) == 0);
    CHECK(hdf5a_async_ping(ac, on_reply_free, &o[0]) == 0);
    for (int i = 1; i < 4; i++) {
        CHECK(hdf5a_async_set_file(ac, f[i % 3]) == 0);
        CHECK(hdf5a_async_append(ac, "/gone", &a, NULL, on_reply, &o[i]) == 0);
    }
    while (p.ac && hdf5a_poll_run_once(&p, TIMEOUT_MS) > 0)
        ;
    CHECK(p.ac == NULL);
    CHECK(o[0].calls == 1 && o[0].status == 0);
    for (int i = 1; i < 4; i++)
        CHECK(o[i].calls == 1 && o[i].status == HDF5A_ECLOSED);
    for (int i = 0; i < 3; i++)
        printf("%s %s\n", f[i], nodes[i]);
}

static void aloop(const char *node, const char *file)
{
    hdf5a_poll p;
    hdf5a_async *ac = aconnect_to(node, 0, NULL, &p);
    outcome o[2] = {{0}};
    CHECK(hdf5a_async_set_file(ac, file) == 0);
    CHECK(aappend3(ac, 1, &o[0]) == 0 && aappend3(ac, 4, &o[1]) == 0);
    run(&p);
    for (int i = 0; i < 2; i++) {
        CHECK(o[i].calls == 1 && o[i].status == HDF5A_EWRONG_NODE);
        CHECK(strstr(o[i].msg, "redirections loop") != NULL);
    }
    fprintf(stderr, "aloop: %s\n", o[0].msg);
    /* the context still works */
    outcome ping = {0};
    CHECK(hdf5a_async_set_file(ac, NULL) == 0);
    CHECK(hdf5a_async_ping(ac, on_reply, &ping) == 0);
    run(&p);
    CHECK(ping.calls == 1 && ping.status == 0);
    hdf5a_async_free(ac);
}

/* The owner cannot be reached: the callback once, with the connection's
 * failure, nothing applied anywhere. */
static void adead(const char *node, const char *file, const char *owner)
{
    hdf5a_poll p;
    hdf5a_async *ac = aconnect_to(node, 0, NULL, &p);
    outcome o = {0};
    CHECK(hdf5a_async_set_file(ac, file) == 0);
    CHECK(aappend3(ac, 1, &o) == 0);
    run(&p);
    CHECK(o.calls == 1 && o.status == HDF5A_ECLOSED);
    CHECK(hdf5a_async_error(ac) == HDF5A_EIO);
    CHECK(strstr(hdf5a_async_errstr(ac), owner) != NULL);
    fprintf(stderr, "adead: %s / %s\n", o.msg, hdf5a_async_errstr(ac));
    hdf5a_async_free(ac);
}

/* cluster_nodes: the request goes to FILE's owner by LIST before any is
 * sent (the node connected to would have applied it: the pytest gives the
 * nodes separate roots and lists that both claim FILE). */
static void nodes_first(const char *node, const char *list, const char *file)
{
    char host[256], err[1024];
    const char *colon = strrchr(node, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - node), node);
    hdf5a_connect_opts o;
    hdf5a_connect_opts_init(&o);
    o.cluster_nodes = list;
    hdf5a_client *c = NULL;
    if (hdf5a_connect_ex(&c, host, atoi(colon + 1), TIMEOUT_MS, &o, err, sizeof err)) {
        fprintf(stderr, "connect to %s: %s\n", node, err);
        exit(1);
    }
    uint64_t rows;
    CHECK(hdf5a_set_file(c, file) == 0);
    CHECK(append3(c, 1, &rows) == 0 && rows == 3);
    hdf5a_close(c);

    hdf5a_poll p;
    hdf5a_async *ac = aconnect_to(node, 0, list, &p);
    outcome a = {0};
    CHECK(hdf5a_async_set_file(ac, file) == 0);
    CHECK(aappend3(ac, 4, &a) == 0);
    run(&p);
    CHECK(a.calls == 1 && a.status == 0 && a.rows == 6);
    hdf5a_async_free(ac);

    /* a list that does not parse is refused at connect */
    o.cluster_nodes = "127.0.0.1:1, nonsense";
    CHECK(hdf5a_connect_ex(&c, host, atoi(colon + 1), TIMEOUT_MS, &o, err, sizeof err) ==
              HDF5A_EINVAL && strstr(err, "nonsense"));
    hdf5a_async *bad = NULL;
    CHECK(hdf5a_async_connect_ex(&bad, host, atoi(colon + 1), &o, err, sizeof err) ==
              HDF5A_EINVAL && !bad);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "three") == 0)
        three((const char *const *)argv + 2);
    else if (argc == 4 && strcmp(argv[1], "loop") == 0)
        loop(argv[2], argv[3]);
    else if (argc == 5 && strcmp(argv[1], "dead") == 0)
        dead(argv[2], argv[3], argv[4]);
    else if (argc == 5 && strcmp(argv[1], "athree") == 0)
        athree((const char *const *)argv + 2, NULL);
    else if (argc == 5 && strcmp(argv[1], "cthree") == 0) {
        char list[1024];
        snprintf(list, sizeof list, "%s, %s, %s", argv[2], argv[3], argv[4]);
        athree((const char *const *)argv + 2, list);
    }
    else if (argc == 4 && strcmp(argv[1], "aloop") == 0)
        aloop(argv[2], argv[3]);
    else if (argc == 5 && strcmp(argv[1], "adead") == 0)
        adead(argv[2], argv[3], argv[4]);
    else if (argc == 5 && strcmp(argv[1], "nodes") == 0)
        nodes_first(argv[2], argv[3], argv[4]);
    else {
        fprintf(stderr, "usage: %s three NODE0 NODE1 NODE2 | loop HOST:PORT FILE | "
                        "dead HOST:PORT FILE OWNER\n", argv[0]);
        return 2;
    }
    if (failed)
        fprintf(stderr, "%d checks failed\n", failed);
    return failed ? 1 : 0;
}
