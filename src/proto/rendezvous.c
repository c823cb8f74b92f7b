/* Rendezvous hashing of file names over a node list (rendezvous.h). */
#include "proto/rendezvous.h"

static uint64_t fnv1a(uint64_t h, const unsigned char *p)
{
    for (; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t h5a_rendezvous_weight(const char *node, const char *file)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ull, (const unsigned char *)node);
    h *= 0x100000001b3ull; /* the separator: h ^= 0, then the multiply */
    h = fnv1a(h, (const unsigned char *)file);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

int h5a_rendezvous_owner(const char *const *nodes, int n, const char *file)
{
    int best = -1;
    uint64_t bw = 0;
    for (int i = 0; i < n; i++) {
        uint64_t w = h5a_rendezvous_weight(nodes[i], file);
        if (best < 0 || w > bw) best = i, bw = w;
    }
    return best;
}
