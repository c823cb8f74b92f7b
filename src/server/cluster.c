/* Which node serves which file (cluster.h): rendezvous hashing over the
 * [cluster] node list, and the check that turns a request for another
 * node's file into WRONG_NODE. No I/O. */
#include "server/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/rendezvous.h"

uint64_t h5a_cluster_weight(const char *node, const char *file)
{
    return h5a_rendezvous_weight(node, file);
}

int h5a_cluster_owner(const h5a_config *cfg, const char *file)
{
    const char *nodes[H5A_MAX_NODES];
    for (int i = 0; i < cfg->cluster_n; i++) nodes[i] = cfg->cluster_nodes[i];
    return h5a_rendezvous_owner(nodes, cfg->cluster_n, file);
}

bool h5a_cluster_mine(const h5a_config *cfg, const char *file)
{
    int o = h5a_cluster_owner(cfg, file);
    return o < 0 || o == cfg->node_index;
}

int h5a_cluster_setup(h5a_config *cfg, char *err, size_t errlen)
{
    if (cfg->cluster_n == 0) {
        if (cfg->node_index >= 0)
            return snprintf(err, errlen, "--node is given but the config has no [cluster] nodes"), -1;
        return 0;
    }
    if (!cfg->data_root[0])
        return snprintf(err, errlen, "[cluster] needs data_root (the root every node shares)"), -1;
    if (cfg->node_index >= cfg->cluster_n)
        return snprintf(err, errlen, "--node %d: the [cluster] list has %d nodes (0..%d)",
                        cfg->node_index, cfg->cluster_n, cfg->cluster_n - 1), -1;
    bool given = cfg->node_index >= 0;
    if (cfg->node_index < 0) {
        char me[300];
        snprintf(me, sizeof me, "%s:%d", cfg->host, cfg->port);
        for (int i = 0; i < cfg->cluster_n; i++)
            if (strcmp(cfg->cluster_nodes[i], me) == 0) cfg->node_index = i;
        if (cfg->node_index < 0) {
            /* listening on every address: the one entry with our port */
            int found = -1, count = 0;
            for (int i = 0; i < cfg->cluster_n; i++) {
                const char *colon = strrchr(cfg->cluster_nodes[i], ':');
                if (colon && atoi(colon + 1) == cfg->port) found = i, count++;
            }
            if (count == 1 && cfg->port != 0) cfg->node_index = found;
        }
        if (cfg->node_index < 0)
            return snprintf(err, errlen,
                            "this server (%s) is not in the [cluster] nodes list: give --node "
                            "INDEX, or host and port as the list writes them",
                            me), -1;
    }
    if (given || cfg->port == 0) { /* --node: listen on its entry's port */
        const char *colon = strrchr(cfg->cluster_nodes[cfg->node_index], ':');
        cfg->port = colon ? atoi(colon + 1) : 0;
    }
    return 0;
}

void h5a_cluster_route(const h5a_config *cfg, h5a_request *r)
{
    if (cfg->cluster_n == 0 || r->err_code || r->op == OP_PING || r->op == OP_AUTH ||
        r->op == OP_LIST_FILES)
        return;
    const char *file = r->file;
    if (!file && cfg->file_path[0] != '/') file = cfg->file_path; /* the default, under the root */
    if (!file) return;
    int o = h5a_cluster_owner(cfg, file);
    if (o == cfg->node_index) return;
    r->err_code = H5A_E_WRONG_NODE;
    r->moved_to = cfg->cluster_nodes[o];
    snprintf(r->err_msg, sizeof r->err_msg,
             "file '%.200s' belongs to node %d at %s (this is node %d): send it there; "
             "nothing was applied", file, o, cfg->cluster_nodes[o], cfg->node_index);
}
