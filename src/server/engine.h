/* The storage engine: every HDF5 call of the server lives in its files
 * (engine*.c, their layers listed in engine_err.h), and runs on the one
 * storage thread (see storage.c). This is its whole interface. */
#ifndef H5A_ENGINE_H
#define H5A_ENGINE_H

#include "server/config.h"
#include "server/engine_err.h"
#include "server/request.h"

typedef struct h5a_engine h5a_engine;

/* Open (or create) cfg->file_path. Returns 0, or -1 with err. */
int h5a_engine_open(h5a_engine **out, const h5a_config *cfg, char *err, size_t errlen);

/* Open the file at path; a missing (or empty) one is created only when
 * create is set, else -1 with *missing set. Returns 0, or -1 with err. */
int h5a_engine_open_path(h5a_engine **out, const h5a_config *cfg, const char *path, bool create,
                         bool *missing, char *err, size_t errlen);

/* An engine with no file, for the ops that need none (files.c): they see
 * only cfg. Closed with h5a_engine_close. NULL when out of memory. */
h5a_engine *h5a_engine_bare(const h5a_config *cfg);

/* The dataset at path: its datatype (*type: a new hid_t, the caller
 * closes it), rank and dims. 0, or the error. */
int h5a_engine_dataset_shape(h5a_engine *e, const char *path, int64_t *type, int *ndim,
                             uint64_t *dims, h5a_err *err);

/* The same for a dataset of a file no engine of this server holds
 * (another node's, [cluster]): opened read-only with HDF5's own driver and
 * closed again. */
int h5a_engine_peek_dataset(const char *file, const char *path, int64_t *type, int *ndim,
                            uint64_t *dims, h5a_err *err);

/* Apply req (or answer its parse error) and leave the whole reply frame in
 * req->reply (+ req->reply_data). Never fails as a function. */
void h5a_engine_execute(h5a_engine *eng, h5a_request *req);

/* May b be applied together with a (both appends to the same path with the
 * same dtype and row shape)? */
bool h5a_engine_can_group(const h5a_request *a, const h5a_request *b);
/* Apply n appends that h5a_engine_can_group chained, as one. */
void h5a_engine_execute_appends(h5a_engine *eng, h5a_request **reqs, size_t n);

/* Make everything applied so far durable at `level` (docs/durability.md):
 * FLUSH writes HDF5's caches through the crash-safe driver (wal.c) and
 * commits them to its log, which survives the server process dying; FSYNC
 * also puts them on disk, which survives the machine dying. Does nothing
 * when nothing changed since the last commit of that level. Returns 0, or
 * -1 with err (the changes stay pending and a later commit retries), or
 * H5A_ENGINE_GONE with err: the file was deleted or replaced while served,
 * and no commit will ever succeed again (wal.h, h5a_wal_commit). */
int h5a_engine_commit(h5a_engine *eng, h5a_durability level, char *err, size_t errlen);
#define H5A_ENGINE_GONE (-2)
/* The disk (or the user's quota) is full: nothing more can be written until
 * space returns. */
#define H5A_ENGINE_NOSPACE (-3)

/* The weakest commit level that would still do work: FLUSH when something
 * changed since the last commit, FSYNC when only the last fsync is missing,
 * NONE when everything is on disk. */
h5a_durability h5a_engine_pending(const h5a_engine *eng);

/* Turn req's reply (ok or not) into an error reply. */
void h5a_engine_fail_reply(h5a_request *req, int code, const char *msg);

/* What the engine and libhdf5 hold for the file, for the memory report. */
typedef struct h5a_engine_mem {
    size_t mdc_bytes, mdc_max, mdc_entries; /* HDF5's metadata cache */
    size_t free_lists;                      /* HDF5's own free lists */
    size_t open_datasets;                   /* kept open by the dataset cache */
    size_t chunk_cache_max;                 /* their chunk caches' ceilings, summed */
    size_t wal_map, wal_index;              /* the log driver's pages in memory, its index */
    uint64_t wal_log;                       /* the log file's size */
} h5a_engine_mem;
void h5a_engine_memory(const h5a_engine *eng, h5a_engine_mem *out);

/* ---- exactly-once and batches (engine_batch.c) ---- */

/* r carries client_id and seq and changes the file: when the table knows
 * it, answer it from there (the first reply's result, or SEQ_TOO_OLD) and
 * return true; it must not be applied. */
bool h5a_engine_answer_repeat(h5a_engine *eng, h5a_request *r);
/* r was applied (and carries client_id and seq): remember its result, to
 * be committed with it. */
void h5a_engine_remember(h5a_engine *eng, h5a_request *r);
/* Give the results remembered since the last commit to the log driver, for
 * the next commit (engine.c calls it before every commit and the close). */
int h5a_engine_hand_aux(h5a_engine *eng);
/* How many clients and results the table holds, and its bytes. */
void h5a_engine_dedup_stats(const h5a_engine *eng, size_t *clients, size_t *entries,
                            size_t *bytes);

/* Close every handle and the file (the driver makes the close durable). */
void h5a_engine_close(h5a_engine *eng);

#endif
