/* Rendezvous (highest random weight) hashing of file names over a
 * [cluster] node list (issue 14): the one implementation the server
 * (cluster.c), the C library and the CLI share; python/hdf5_async/cluster.py
 * is its twin, and docs/protocol.md section 4b states it for any language.
 *
 * weight(N, F) = splitmix64 finalizer of FNV-1a 64 over N's bytes, one 0
 * byte, F's bytes; the owner is the node of the highest weight, the first on
 * a tie. No I/O. */
#ifndef H5A_RENDEZVOUS_H
#define H5A_RENDEZVOUS_H

#include <stdint.h>

uint64_t h5a_rendezvous_weight(const char *node, const char *file);
/* The index of file's owner among nodes[0..n-1]; -1 when n is 0. */
int h5a_rendezvous_owner(const char *const *nodes, int n, const char *file);

#endif
