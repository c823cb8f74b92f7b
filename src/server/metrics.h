/* The server's counters for GET /metrics (Prometheus text format 0.0.4).
 *
 * No lock on the hot path: each counter has one writer thread. The event
 * loop thread owns h5a_metrics_loop (bytes in and out, connections
 * accepted, HTTP requests), the storage thread owns h5a_metrics_storage
 * (requests by op and code, queue wait and apply time, busy time, commits,
 * fsync time). A writer adds with a relaxed load and store (no atomic
 * read-modify-write: nobody else writes), and the scrape, on the loop
 * thread, reads both blocks with relaxed loads and sums them into the text.
 * A scrape can see one block a few increments older than the other; each
 * counter is still monotonic. */
#ifndef H5A_METRICS_H
#define H5A_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/errors.h"
#include "server/request.h"

/* Histogram bucket upper bounds, seconds (the last one is +Inf). */
#define H5A_METRICS_BUCKETS 20
/* Error codes are negative indexes; 0 is ok. */
#define H5A_METRICS_CODES ((int)H5A_E_COUNT_PLUS_ONE)

typedef _Atomic uint64_t h5a_counter;

typedef struct h5a_hist {
    h5a_counter bucket[H5A_METRICS_BUCKETS]; /* not cumulative: each falls in one */
    h5a_counter count;
    h5a_counter sum_ns;
} h5a_hist;

/* The two ports: the MessagePack one and the HTTP one. */
enum { H5A_PORT_MAIN, H5A_PORT_HTTP, H5A_PORTS };

/* HTTP endpoints, for hdf5_async_http_requests_total{endpoint} */
enum {
    H5A_EP_META,
    H5A_EP_DATA,
    H5A_EP_ATTR,
    H5A_EP_PATHS,
    H5A_EP_METRICS,
    H5A_EP_HEALTH,
    H5A_EP_VIEWER,
    H5A_EP_OTHER,
    H5A_EP_COUNT
};
/* HTTP statuses counted apart; others count under H5A_ST_OTHER */
enum { H5A_ST_200, H5A_ST_204, H5A_ST_304, H5A_ST_400, H5A_ST_401, H5A_ST_403, H5A_ST_404,
       H5A_ST_405, H5A_ST_408, H5A_ST_413, H5A_ST_414, H5A_ST_422, H5A_ST_431, H5A_ST_500,
       H5A_ST_503, H5A_ST_OTHER, H5A_ST_COUNT };

typedef struct h5a_metrics_loop {
    h5a_counter bytes_in[H5A_PORTS];
    h5a_counter bytes_out[H5A_PORTS];
    h5a_counter accepted[H5A_PORTS];
    h5a_counter http[H5A_EP_COUNT][H5A_ST_COUNT];
} h5a_metrics_loop;

typedef struct h5a_metrics_storage {
    h5a_counter requests[OP_NONE + 1][H5A_METRICS_CODES];
    h5a_hist wait[OP_NONE + 1];  /* given to the storage thread -> applied from */
    h5a_hist apply[OP_NONE + 1]; /* applying it (a grouped run of appends: its share) */
    h5a_counter applied;         /* requests taken off the queue */
    h5a_counter busy_ns;         /* applying batches and committing */
    h5a_counter commits[2];      /* flush, fsync */
    h5a_hist fsync;              /* the log's hard commit: write and fdatasync */
} h5a_metrics_storage;

extern h5a_metrics_loop h5a_mloop;
extern h5a_metrics_storage h5a_mstorage;
/* requests given to the storage thread (loop thread: h5a_storage_submit) */
extern h5a_counter h5a_msubmitted;

/* One writer: no read-modify-write needed. */
static inline void h5a_count(h5a_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void h5a_hist_add(h5a_hist *h, uint64_t ns);

/* Storage thread: request r was applied (code in r->reply_code). */
void h5a_metrics_request(const h5a_request *r, uint64_t wait_ns, uint64_t apply_ns);

int h5a_metrics_status_index(int status);

/* What the scrape needs from the loop's side. */
typedef struct h5a_metrics_view {
    uint64_t conns[H5A_PORTS];
    uint64_t buffered;        /* max_buffered_bytes' count */
    uint64_t auth_failures;
    const char *file_path;    /* the HDF5 file; its log is FILE.wal */
} h5a_metrics_view;

/* The whole text (Prometheus 0.0.4) into a malloc'd buffer; NULL when out
 * of memory. */
char *h5a_metrics_render(const h5a_metrics_view *v, size_t *len);

#endif
