/* [cluster] (issue 14): several servers, one data root shared by all of
 * them (a parallel file system), each file served by exactly one node.
 * Every client and server computes the same owner for a file name with
 * rendezvous (highest-random-weight) hashing over the node list, so nobody
 * needs to ask anybody; a request for a file this node does not own is
 * refused on the event loop (WRONG_NODE, with the owner's address), before
 * anything is applied.
 *
 * The weight of node N (its entry as written in the list, blanks around it
 * removed, e.g. "10.0.0.2:8888") for file F (the request's `file`, as sent):
 *
 *   h = FNV-1a 64 over the bytes of N, one 0 byte, the bytes of F
 *       (h = 0xcbf29ce484222325; for each byte b: h ^= b; h *= 0x100000001b3)
 *   h ^= h >> 30; h *= 0xbf58476d1ce4e5b9;   (splitmix64's finalizer,
 *   h ^= h >> 27; h *= 0x94d049bb133111eb;    all arithmetic mod 2^64)
 *   h ^= h >> 31
 *
 * The owner is the node of the highest weight (the lowest index on a tie).
 * The hash itself is src/proto/rendezvous.c, shared with the clients.
 * Loop thread (conn.c) and storage thread (files.c) read it; set once at
 * start (main.c), never changed. */
#ifndef H5A_CLUSTER_H
#define H5A_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"
#include "server/request.h"

uint64_t h5a_cluster_weight(const char *node, const char *file);
/* The index of file's owner in cfg's node list; -1 without [cluster]. */
int h5a_cluster_owner(const h5a_config *cfg, const char *file);
/* Does this node serve file (always, without [cluster])? */
bool h5a_cluster_mine(const h5a_config *cfg, const char *file);

/* Find this server in the node list (cfg->node_index when --node was
 * given, else its host:port); with --node (or port 0) it listens on its
 * entry's port.
 * 0, or -1 with err. Nothing to do without [cluster]. */
int h5a_cluster_setup(h5a_config *cfg, char *err, size_t errlen);

/* A request for a file another node owns: set r's error (WRONG_NODE,
 * r->moved_to = the owner's address). Requests without a file are for the
 * default file, routed by its name when it lies under the data root. */
void h5a_cluster_route(const h5a_config *cfg, h5a_request *r);

#endif
