/* [cluster] routing that the blocking (blocking.c) and asynchronous
 * (async_follow.c) clients share, kept out of both so that neither grows
 * (issue 14): the node list of hdf5a_connect_opts.cluster_nodes, read as
 * the server reads [cluster] nodes; the owner of a file by the one
 * rendezvous implementation (src/proto/rendezvous.c); a "HOST:PORT" entry
 * split for connecting; and the loop check over the nodes a request was
 * sent to. No I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "proto/errors.h"
#include "proto/rendezvous.h"

int h5c_parse_node(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == addr || !colon[1] || *end || p <= 0 || p > 65535)
        return HDF5A_EREPLY;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
        h++, n -= 2;
    if (n == 0 || n >= hostlen)
        return HDF5A_EREPLY;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

bool h5c_path_has(const char *path, const char *node)
{
    size_t len = strlen(node);
    for (const char *p = path; p;) {
        const char *end = strstr(p, " -> ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, node, n) == 0)
            return true;
        p = end ? end + 4 : NULL;
    }
    return false;
}

void h5c_nodes_free(h5c_nodes *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int h5c_nodes_parse(const char *list, h5c_nodes *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t n = (size_t)(end - p);
        char entry[256], host[256];
        int port;
        if (n == 0 || n >= sizeof entry) {
            h5c_nodes_free(out);
            return h5a_fail(err, errlen, HDF5A_EINVAL,
                            "cluster_nodes: give HOST:PORT, HOST:PORT, ... (entry %d is %s)",
                            out->n + 1, n ? "too long" : "empty");
        }
        memcpy(entry, p, n);
        entry[n] = '\0';
        if (strpbrk(entry, " \t") || h5c_parse_node(entry, host, sizeof host, &port)) {
            h5c_nodes_free(out);
            return h5a_fail(err, errlen, HDF5A_EINVAL, "cluster_nodes: '%s' is not HOST:PORT",
                            entry);
        }
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->v[i], entry) == 0) {
                h5c_nodes_free(out);
                return h5a_fail(err, errlen, HDF5A_EINVAL, "cluster_nodes: '%s' is listed twice",
                                entry);
            }
        char **v = realloc(out->v, sizeof *v * (size_t)(out->n + 1));
        char *copy = v ? strdup(entry) : NULL;
        if (v)
            out->v = v;
        if (!copy) {
            h5c_nodes_free(out);
            return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
        }
        out->v[out->n++] = copy;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

const char *h5c_nodes_owner(const h5c_nodes *l, const char *file)
{
    if (!l->n || !file)
        return NULL;
    return l->v[h5a_rendezvous_owner((const char *const *)l->v, l->n, file)];
}
