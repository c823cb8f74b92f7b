/* The engine's state that every operation shares: the file, the settings,
 * the open datasets kept by path, whether anything changed since the last
 * commit; and the reply frame each request's answer goes into.
 *
 * Layer 2 (the bottom of the engine core; engine.c is its top): calls only
 * engine_err. The operations read `file` and `cfg` directly and change the
 * rest only through the functions below. */
#ifndef H5A_ENGINE_STATE_H
#define H5A_ENGINE_STATE_H

#include <hdf5.h>
#include <stdbool.h>

#include "server/config.h"
#include "server/engine_err.h"
#include "server/request.h"
#include "server/wal.h"

/* the core's engine.h names it too (same typedef, allowed by C11) */
typedef struct h5a_engine h5a_engine;

#define H5A_CACHE_SLOTS 64 /* open datasets kept; each may hold a partly filled chunk */

struct h5a_engine {
    hid_t file;
    const h5a_config *cfg;
    char path[4096]; /* the file's path as opened (under data_root, or file_path) */
    char close_error[H5A_WAL_CLOSE_ERRLEN]; /* the log driver says here why a close was not clean */
    bool dirty;    /* changed since the last commit (any level) */
    bool unsynced; /* changed since the last fsync commit */
    /* Open datasets by path, so a stream of appends does not reopen its
     * dataset each time. Any change to the tree's shape empties it. */
    struct {
        char *path;
        hid_t dset;
        int chunk_ndim; /* 0: not chunked */
        hsize_t chunk[H5A_MAX_DIMS];
    } cache[H5A_CACHE_SLOTS];
    unsigned cache_next;
    /* exactly-once: results by (client_id, seq), committed with the file
     * (dedup.h; engine_batch.c) */
    struct h5a_dedup *dedup;
};

/* Close *id with fn unless it is invalid, and make it invalid. */
static inline void h5a_close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

/* Something in the file changed: the next commit has work to do. Every op
 * that changes the file must call it, or a flush/fsync reply to that op
 * would promise what no commit did (h5a_engine_commit skips a clean engine;
 * docs/durability.md). */
void h5a_state_mark_dirty(h5a_engine *e);

/* Is path an open dataset of the cache? Then it is still a dataset at that
 * path: every operation that removes or replaces objects empties the cache. */
bool h5a_cache_has(const h5a_engine *e, const char *path);
/* The dataset at path (H5Dopen2 once, then from the cache): do not close
 * it. H5I_INVALID_HID with err set when HDF5 cannot open it. */
hid_t h5a_cache_open(h5a_engine *e, const char *path, h5a_err *err);
/* The chunk shape of dataset d into chunk: its rank, or 0 when d is not
 * chunked. Cached datasets answer from the cache (appends ask every time). */
int h5a_cache_chunk(const h5a_engine *e, hid_t d, hsize_t *chunk);
/* Objects were moved, removed or replaced: forget every cached dataset,
 * whose path may now name something else or nothing. */
void h5a_cache_clear(h5a_engine *e);

/* Reply frames: begin writes the length placeholder, the id and an "ok"
 * header and returns where "ok" starts; the op then writes its result;
 * finish rewrites from the mark into an error reply when rc says so, and
 * fills in the length. */
size_t h5a_reply_begin(h5a_request *r);
void h5a_reply_finish(h5a_request *r, size_t mark, int rc, const h5a_err *err);

/* Where the result of r's reply starts in r->reply (after h5a_reply_begin's
 * "result" key). */
#define H5A_REPLY_RESULT_AT(r) ((r)->reply_mark + 11)

/* engine.c: open e->path again through the log driver (after the
 * file was closed and replaced: compact). 0, or an error code with err. */
int h5a_engine_reopen(h5a_engine *e, h5a_err *err);

#endif
