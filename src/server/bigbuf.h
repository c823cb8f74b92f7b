/* Buffers for array bytes the storage thread produces (read results), kept
 * for reuse. glibc gives the storage thread an arena of its own, capped at
 * 64 MiB, so each large read buffer would be a fresh mmap: 16k page faults
 * and 64 MiB of zeroing per 64 MiB read, more than the read itself costs.
 * Any thread may allocate and free. */
#ifndef H5A_BIGBUF_H
#define H5A_BIGBUF_H

#include <stdbool.h>
#include <stddef.h>

void *h5a_buf_alloc(size_t n); /* like malloc; NULL when out of memory */
void h5a_buf_free(void *p);    /* like free; p from h5a_buf_alloc */
/* At most this many bytes are kept (read_buffer_cache); 0 keeps none. */
void h5a_buf_set_limit(size_t bytes);
/* Bytes kept now. */
size_t h5a_buf_held(void);
/* Release kept buffers unused for a second; true if some are still kept. */
bool h5a_buf_trim(void);

#endif
