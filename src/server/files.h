/* The table of open files (issue 14): with data_root set, every request
 * may name a file under it, and each file has its own engine -- its own
 * HDF5 handle, write-ahead log, crash recovery, dataset cache and dirty
 * flags. Files are opened on demand (a missing one is created only for a
 * request that may create something) and at most max_open_files stay open:
 * opening one more closes the least recently used (a close is durable).
 *
 * Storage thread only; called by storage.c, calls the engine (engine.h). */
#ifndef H5A_FILES_H
#define H5A_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"
#include "server/engine.h"
#include "server/engine_err.h"
#include "server/request.h"

typedef struct h5a_file {
    char *name;       /* relative to data_root; NULL for a file_path outside it */
    h5a_engine *eng;  /* NULL: not open */
    uint64_t used;    /* LRU tick */
    uint64_t last_ns; /* CLOCK_MONOTONIC of its last request (idle close) */
    bool pinned;      /* file_path without data_root: opened at start, never closed early */
    int made_dirs;    /* folders created with the file (removed again if it is discarded) */
    /* deleted or replaced while served: no commit can succeed, changes
     * are refused with gone_msg until the file is closed and reopened */
    bool gone;
    char gone_msg[1200];
    bool commit_failed; /* the last commit of release_held failed (storage.c) */
} h5a_file;

typedef struct h5a_files h5a_files;

/* Check data_root (a folder), open file_path when it is the only file or
 * lies outside the root (as a server without data_root always did).
 * 0, or -1 with err. */
int h5a_files_start(h5a_files **out, const h5a_config *cfg, char *err, size_t errlen);
/* Close every file (each close is durable) and free the table. */
void h5a_files_close(h5a_files *fs);

/* Does op work on a file (everything but ping, auth and list_files)? */
bool h5a_files_op_needs_file(h5a_op op);
/* May a request of op create a missing file? (Ops that only change what
 * exists -- delete, move, resize... -- get NOT_FOUND like reads.) */
bool h5a_files_op_creates(h5a_op op);

/* The open file for `name` (NULL: the default file), opened or created on
 * the way. *created says the file did not exist before. 0, or an error
 * code with err: BAD_REQUEST for a name that leaves the root (a symlink on
 * the way, not a regular file) or when the server has no data_root,
 * NOT_FOUND for a missing file when create is false. */
int h5a_files_get(h5a_files *fs, const char *name, bool create, h5a_file **out, bool *created,
                  h5a_err *err);
/* The open file for name (NULL: the default), or NULL; opens nothing. */
h5a_file *h5a_files_find(h5a_files *fs, const char *name);
/* A file get() just created whose first request failed: close it and
 * remove it, its log and the folders made for it: creating nothing. */
void h5a_files_discard(h5a_files *fs, h5a_file *f);

/* create_virtual (r->vsrc): look up each source's type and shape in its
 * file (which must exist; a "%b" pattern's file for block 0 stands for all)
 * and its name relative to r's file's folder. 0, or the error. The types
 * are released with h5a_files_release_sources, after the op. For a batch:
 * those of its create_virtual ops (the error then names the op's index). */
int h5a_files_resolve_sources(h5a_files *fs, h5a_request *r, h5a_err *err);
void h5a_files_release_sources(h5a_request *r);

/* Idle files: a file under the root unused for file_idle_close seconds
 * (config; 0: never) is committed and closed (its log removed: a plain
 * HDF5 file again, which other readers -- and create_virtual on other
 * nodes -- can open). any_closable: is any such file open at all (the idle
 * storage thread then keeps looking once a second). */
bool h5a_files_any_closable(const h5a_files *fs);
void h5a_files_close_idle(h5a_files *fs);

/* The open files, for commits: i from 0 while it returns non-NULL. */
h5a_file *h5a_files_at(h5a_files *fs, size_t i);
/* An engine with no file, for the ops that need none (ping, auth,
 * list_files: it knows the config). */
h5a_engine *h5a_files_bare(h5a_files *fs);
/* The directory whose free space says whether the disk is full. */
const char *h5a_files_space_dir(const h5a_files *fs);

#endif
