#include "server/memory.h"

#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "server/bigbuf.h"

#define MAINTAIN_EVERY_NS (1000ull * 1000 * 1000)

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* Resident bytes of this process (/proc/self/statm), 0 if unknown. */
static uint64_t resident(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* What is resident beyond the heap in use: code, libraries, stacks, and
 * (most of it, under load) freed memory the allocator keeps. mallinfo2's
 * own "free" count cannot tell: it still counts memory malloc_trim has
 * given back. The code and stacks are taken as what was resident beyond
 * the heap when the server started (base). */
static uint64_t base_overhead;

void h5a_memory_init(void)
{
    struct mallinfo2 mi = mallinfo2();
    uint64_t rss = resident(), used = mi.uordblks + mi.hblkhd;
    base_overhead = rss > used ? rss - used : 0;
}

static uint64_t held_free(uint64_t rss, uint64_t used)
{
    return rss > used + base_overhead ? rss - used - base_overhead : 0;
}

void h5a_memory_report(const h5a_engine *eng, FILE *out)
{
    struct mallinfo2 mi = mallinfo2();
    h5a_engine_mem m;
    h5a_engine_memory(eng, &m);
    uint64_t rss = resident(), used = mi.uordblks + mi.hblkhd;
    size_t dd_clients, dd_entries, dd_bytes;
    h5a_engine_dedup_stats(eng, &dd_clients, &dd_entries, &dd_bytes);
    fprintf(out,
            "hdf5-async-server: memory: heap in use %.1f MiB, kept free by the allocator %.1f "
            "MiB (resident %.1f MiB; code and stacks %.1f MiB; arenas %.1f MiB, mmapped %.1f "
            "MiB); HDF5 metadata cache %.1f MiB (max %.1f "
            "MiB, %zu entries), free lists %.1f MiB, chunk caches up to %.1f MiB (%zu open "
            "datasets); write-ahead log: pages in memory %.1f MiB, index %.1f MiB, log file %.1f "
            "MiB; read buffers kept %.1f MiB; exactly-once table %.1f MiB (%zu clients, %zu "
            "results)\n",
            mib(used), mib(held_free(rss, used)), mib(rss), mib(base_overhead), mib(mi.arena),
            mib(mi.hblkhd),
            mib(m.mdc_bytes), mib(m.mdc_max), m.mdc_entries, mib(m.free_lists),
            mib(m.chunk_cache_max), m.open_datasets, mib(m.wal_map), mib(m.wal_index),
            mib(m.wal_log), mib(h5a_buf_held()), mib(dd_bytes), dd_clients, dd_entries);
    fflush(out);
}

uint64_t h5a_memory_maintain(const h5a_config *cfg, uint64_t now, uint64_t *last)
{
    if (now - *last < MAINTAIN_EVERY_NS) return 0;
    *last = now;
    h5a_buf_trim();
    /* mallinfo2 walks the free lists of every arena: cheap once a second */
    struct mallinfo2 mi = mallinfo2();
    if (held_free(resident(), mi.uordblks + mi.hblkhd) <= cfg->allocator_cache) return 0;
    malloc_trim(cfg->allocator_cache);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t after = (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
    return after > now ? after - now : 1;
}
