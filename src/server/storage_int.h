/* What storage.c and storage_group.c share: the storage thread's state
 * and the steps of applying one request. The struct's comments say which
 * fields the event loop touches (the queues, under mu, and the flags); the
 * rest is the storage thread's. */
#ifndef H5A_STORAGE_INT_H
#define H5A_STORAGE_INT_H

#include <stdatomic.h>

#include "server/engine.h"
#include "server/files.h"
#include "server/storage.h"

/* Bounds on one segment of appends applied together. */
#define SEGMENT_MAX 1024
#define SEGMENT_BYTES (64u * 1024 * 1024)
#define DUP_SLOTS (2 * SEGMENT_MAX)

struct by_path {
    h5a_request *r;
    size_t idx;
};

/* Handing a request over and back costs two wake-ups of a sleeping thread
 * (tens of microseconds each on a VM): what separates a one-at-a-time
 * request from Redis's latency. So each side keeps looking for the other's
 * work for spin_us after its last (Aeron's "spin, then park"): the storage
 * thread after a batch, the event loop while a request of it is in the
 * storage thread. CPU is spent only while there is traffic; an idle server
 * sleeps. The flags below are read without the mutex while spinning. */
struct h5a_storage {
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    _Atomic bool has_work;      /* in_head is not empty */
    _Atomic bool has_done;      /* out_head is not empty */
    _Atomic bool loop_spinning; /* the loop is looking at has_done: no async needed */
    uint64_t inflight;          /* loop thread: submitted, not yet back */
    /* loop thread: requests submitted during this turn of the loop, handed
     * over together (one lock, one wake-up) by on_prepare before the loop
     * polls again, instead of a lock round trip and a signal per request */
    h5a_request *sub_head, *sub_tail;
    uv_prepare_t prepare;       /* the loop's spin, before it blocks */
    int closing_handles;
    h5a_request *in_head, *in_tail; /* waiting for the storage thread */
    h5a_request *out_head, *out_tail; /* finished, waiting for the loop */
    bool stop_requested;
    bool report_requested; /* SIGUSR1: print the memory report */
    bool bufs_kept; /* storage thread only: bigbuf.c may hold buffers to trim */
    bool stopped; /* thread is done, file closed */
    bool stopped_reported;

    uv_async_t async;
    h5a_done_cb done;
    h5a_flush_cb flush;
    h5a_stopped_cb on_stopped;
    void *ud;

    const h5a_config *cfg;
    h5a_files *files; /* the open files, each with its engine (files.c) */
    uv_sem_t opened;
    int open_rc;

    /* storage thread only: group commit (see release_held) */
    h5a_request *held_head, *held_tail; /* applied, replies waiting for the commit */
    h5a_durability held_level;          /* the strongest level among them */
    uint64_t last_fsync;                /* uv_hrtime of the last fsync commit */
    uint64_t last_flush;                /* ... and of the last commit of any level */
    uint64_t retry_at;                  /* no background commit before this */
    uint64_t last_batch;                /* uv_hrtime when the last batch was applied */
    bool trimmed;                       /* malloc_trim done since then */
    uint64_t last_busy_trim;            /* uv_hrtime of the last trim under load */
    /* The disk is full (a write or a commit failed with ENOSPC): changes
     * are refused with NO_SPACE, nothing applied, until the file's
     * directory has SPACE_RESUME_BYTES free again (looked at once a
     * second); reads go on. */
    bool no_space;
    uint64_t space_checked;
    char open_err[1024];
    /* storage thread only: the current segment in arrival order, the same
     * requests sorted by path, and one group of appends to one dataset */
    h5a_request *seg[SEGMENT_MAX];
    struct by_path byp[SEGMENT_MAX];
    h5a_request *group[SEGMENT_MAX];
    /* the client_ids of the segment being gathered (repeats_in_segment) */
    struct {
        uint32_t gen, idx;
    } dup[DUP_SLOTS];
    uint32_t dup_gen;
};

/* storage.c: the engine of r's file (NULL: r got its error reply), whether
 * r repeats an applied (client_id, seq) and was answered so, and applying
 * one request alone. */
h5a_engine *storage_engine_of(h5a_storage *st, h5a_request *r, h5a_file **fout, bool *created);
bool storage_answer_repeat(h5a_storage *st, h5a_request *r);
void storage_execute(h5a_storage *st, h5a_request *r);

/* storage_group.c: is r an append that may join a run; apply the run that
 * starts at r (its requests into st->seg, *count of them) and return the
 * rest of the batch. */
bool storage_is_plain_append(const h5a_request *r);
h5a_request *storage_apply_appends(h5a_storage *st, h5a_request *r, size_t *count);

#endif
