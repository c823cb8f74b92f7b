/* What the server's memory holds, and giving freed memory back while busy.
 *
 * A long run under load showed RSS climbing for half an hour and falling
 * only when the load stopped (issue: "the soak's memory rule fails at 30
 * min"): glibc kept freed memory (main.c raises its trim threshold so that
 * large frames are not re-faulted each time), and the storage thread only
 * trimmed once idle. h5a_memory_maintain bounds what the allocator keeps
 * while the server is busy; h5a_memory_report (SIGUSR1) says where the
 * memory is. Storage thread only (it reads libhdf5's figures). */
#ifndef H5A_MEMORY_H
#define H5A_MEMORY_H

#include <stdint.h>
#include <stdio.h>

#include "server/config.h"
#include "server/engine.h"

/* Once, before the load: what is resident beyond the heap (code, stacks). */
void h5a_memory_init(void);

/* One line on out: the heap in use and what the allocator keeps free, the
 * HDF5 caches, the write-ahead log's pages, the kept read buffers. */
void h5a_memory_report(const h5a_engine *eng, FILE *out);

/* After a batch: at most once a second, release kept read buffers unused
 * for a second, and when the allocator keeps more than cfg->allocator_cache
 * bytes free, give them back to the system (malloc_trim). Returns the time
 * it took, in ns, when it trimmed (0 otherwise), for the debug log. */
uint64_t h5a_memory_maintain(const h5a_config *cfg, uint64_t now_ns, uint64_t *last_ns);

#endif
