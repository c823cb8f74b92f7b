/* Exactly-once requests: what the server remembers of each client_id.
 *
 * A request may carry client_id and seq (docs/protocol.md, "Exactly-once").
 * For each client the table keeps the results of its last `window` changing
 * requests that succeeded, by seq; a repeat gets the remembered result, a
 * seq below the window is refused (SEQ_TOO_OLD), anything else is new. A
 * client not heard of for `idle_timeout` seconds is forgotten, and past
 * `max_clients` the least recently used one is: memory stays bounded.
 *
 * What the table holds must survive a crash together with the changes it
 * describes, so it travels with the file's commits: every entry recorded is
 * encoded as a delta that the engine hands to the log driver, which writes
 * it in the same commit as the change (an auxiliary record, wal.h). A
 * recovery replays the deltas of the commits it replays (h5a_dedup_replay),
 * and each checkpoint, which starts the log afresh, first writes the whole
 * table to "FILE.dedup" (h5a_dedup_snapshot). Replaying a delta the table
 * already holds changes nothing, which is what makes the order of the two
 * safe (docs/design.md, "Exactly-once and batches").
 *
 * Storage thread only. */
#ifndef H5A_DEDUP_H
#define H5A_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct h5a_dedup h5a_dedup;

typedef struct {
    uint64_t window;       /* results kept per client (seqs) */
    uint64_t idle_timeout; /* seconds without a request before a client is forgotten */
    uint64_t max_clients;  /* clients kept at most (least recently used go first) */
    uint64_t max_bytes;    /* memory of the table at most (the same clients go first) */
} h5a_dedup_limits;

/* A result larger than this is not kept: a repeat is told it was applied. */
#define H5A_DEDUP_MAX_RESULT 4000

/* snapshot_path: where the table goes at checkpoints ("FILE.dedup"). */
h5a_dedup *h5a_dedup_new(const h5a_dedup_limits *lim, const char *snapshot_path);
void h5a_dedup_free(h5a_dedup *d);

/* Read the snapshot, if any. 0, or -1 with err (a damaged snapshot: the
 * caller decides; the table is then empty). */
int h5a_dedup_load(h5a_dedup *d, char *err, size_t errlen);
/* A new file: forget everything, and the snapshot of an earlier file. */
void h5a_dedup_reset(h5a_dedup *d);

typedef enum {
    H5A_DEDUP_NEW,      /* never applied: apply it */
    H5A_DEDUP_REPEAT,   /* applied: *result (len bytes, MessagePack) is its result */
    H5A_DEDUP_TOO_OLD,  /* below the window: may have been applied, not again */
    H5A_DEDUP_NOT_KEPT, /* applied, but its result was too large to keep */
} h5a_dedup_verdict;

h5a_dedup_verdict h5a_dedup_check(h5a_dedup *d, const char *cid, size_t cidlen, uint64_t seq,
                                  const uint8_t **result, size_t *len);

/* Remember (cid, seq) -> result and append its delta to the pending bytes
 * (h5a_dedup_take_pending). -1: out of memory. */
int h5a_dedup_record(h5a_dedup *d, const char *cid, size_t cidlen, uint64_t seq,
                     const uint8_t *result, size_t len);

/* The deltas recorded since the last take, for the next commit; the
 * caller copies them and they are gone from here. */
const uint8_t *h5a_dedup_pending(const h5a_dedup *d, size_t *len);
void h5a_dedup_clear_pending(h5a_dedup *d);

/* The log driver's callbacks (h5a_wal_options.aux_*): ctx is the table. */
int h5a_dedup_replay(void *ctx, const void *data, size_t n);
int h5a_dedup_snapshot(void *ctx);

typedef struct {
    size_t clients, entries, bytes;
} h5a_dedup_stats;
void h5a_dedup_get_stats(const h5a_dedup *d, h5a_dedup_stats *out);

#endif
