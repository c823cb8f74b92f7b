/* The storage thread and its queues. The event loop submits requests; the
 * thread applies them one at a time in submission order and hands them back
 * to the loop through a uv_async_t, in the same order. */
#ifndef H5A_STORAGE_H
#define H5A_STORAGE_H

#include <uv.h>

#include "server/config.h"
#include "server/request.h"

typedef struct h5a_storage h5a_storage;

/* Called on the loop thread for each finished request, in order. */
typedef void (*h5a_done_cb)(h5a_request *req, void *ud);
/* Called on the loop thread after each run of done() calls: the moment to
 * write out what they queued. */
typedef void (*h5a_flush_cb)(void *ud);
/* Called on the loop thread once, after h5a_storage_stop, when every
 * request submitted before it is done and the file is closed. */
typedef void (*h5a_stopped_cb)(void *ud);

/* Start the thread and open the file on it. Returns 0, or -1 with err (the
 * file could not be opened; no thread is left running). */
int h5a_storage_start(h5a_storage **out, uv_loop_t *loop, const h5a_config *cfg,
                      h5a_done_cb done, h5a_flush_cb flush, h5a_stopped_cb stopped, void *ud,
                      char *err, size_t errlen);
/* Queue req (loop thread). The requests of one turn of the loop are handed
 * to the storage thread together, in submission order, before the loop
 * polls again (a uv_prepare handle), or by h5a_storage_stop. */
void h5a_storage_submit(h5a_storage *st, h5a_request *req);
/* Print the memory report (h5a_memory_report) on stderr from the storage
 * thread, between two batches. Any thread; returns at once. */
void h5a_storage_report(h5a_storage *st);
/* Finish what was submitted, flush and close the file, then stopped(). */
void h5a_storage_stop(h5a_storage *st);
/* After stopped(): join the thread and free everything. */
void h5a_storage_free(h5a_storage *st);

#endif
