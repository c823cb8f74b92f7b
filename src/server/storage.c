#include "server/storage.h"

#include <errno.h>
#include <malloc.h>
#include <sys/statvfs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/engine.h"
#include "server/files.h"
#include "server/memory.h"
#include "server/wal.h"
#include "server/metrics.h"
#include "server/storage_int.h"

/* A request's input (frame, parsed data) is freed by the storage thread
 * once applied when it is at least this large; smaller ones later, by the
 * loop thread with the request. */
#define RELEASE_HERE_BYTES (64u * 1024)
/* How long the queue must stay empty before we flush HDF5's caches (a
 * "flush" commit: the file survives the server process dying). */
#define IDLE_FLUSH_NS (2 * 1000 * 1000)
/* ... but at most one such idle flush a second, as often as the fsync
 * commits below: under pipelined load the queue empties for a few ms dozens
 * of times a second, and each flush has HDF5 rewrite every growing
 * dataset's partly filled last chunk (64 clients appending to 64 datasets:
 * with no gap, 32 flushes took ~0.5 s of a 1.7 s run; with 250 ms, the
 * flushes were still ~a third of the storage thread's time). */
#define IDLE_FLUSH_GAP_NS (1000 * 1000 * 1000)
/* At most this long between "fsync" commits while anything is uncommitted,
 * idle or busy: bounds what a machine crash can take under durability
 * none/flush, and keeps the write-ahead log short. */
#define HARD_INTERVAL_NS (1000ull * 1000 * 1000)
/* After a commit failed (disk full, I/O error), wait this long before the
 * next background attempt instead of retrying in a tight loop. */
#define RETRY_NS (1000ull * 1000 * 1000)
/* How often an idle server checks for kept read buffers to release. */
#define IDLE_TRIM_NS (1000 * 1000 * 1000)

static void push(h5a_request **head, h5a_request **tail, h5a_request *r)
{
    r->next = NULL;
    if (*tail) (*tail)->next = r;
    else *head = r;
    *tail = r;
}

static bool changes_file(const h5a_request *r)
{
    return !r->err_code && h5a_op_info_of(r->op)->changes;
}

/* What r's reply must wait for. A level the request names is kept (on a
 * read or a ping it makes the reply a barrier). The server's default
 * (durability) applies only to a change that was applied: a read, or a
 * request that failed and so changed nothing, has nothing to make durable,
 * and must not wait for -- or fail with -- a commit (with the disk full,
 * reads kept working only so; so do they once the file is gone). */
static h5a_durability level_of(const h5a_storage *st, const h5a_request *r)
{
    if (r->durability >= 0) return (h5a_durability)r->durability;
    if (r->err_code || !r->reply_ok || !h5a_op_info_of(r->op)->changes) return H5A_DUR_NONE;
    return st->cfg->durability;
}

/* Apply one request, or refuse it if it would change a file that is gone. */
#define SPACE_RESUME_BYTES (16ull << 20)

/* The folder whose free space decides NO_SPACE: the data root, or the
 * folder of the one file. */
static const char *space_dir(h5a_storage *st)
{
    static _Thread_local char dir[4096];
    const char *root = h5a_files_space_dir(st->files);
    if (root) return root;
    snprintf(dir, sizeof dir, "%s", st->cfg->file_path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else snprintf(dir, sizeof dir, ".");
    return dir;
}

static void enter_no_space(h5a_storage *st)
{
    if (st->no_space) return;
    st->no_space = true;
    st->space_checked = uv_hrtime();
    fprintf(stderr, "hdf5-async-server: the disk of '%s' is full: changes are refused "
                    "(NO_SPACE) until it has room again; reads go on\n", space_dir(st));
}

/* Still full? Looks at the free space at most once a second. */
static bool still_full(h5a_storage *st)
{
    if (!st->no_space) return false;
    uint64_t now = uv_hrtime();
    if (now - st->space_checked < 1000000000ull) return true;
    st->space_checked = now;
    const char *dir = space_dir(st);
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0 || (uint64_t)sv.f_bavail * sv.f_frsize < SPACE_RESUME_BYTES)
        return true;
    st->no_space = false;
    fprintf(stderr, "hdf5-async-server: the disk of '%s' has room again: changes accepted\n",
            dir);
    return false;
}

/* The engine r runs on: its file's (opened, or created when r may create
 * something), or the bare engine for parse errors and the ops that touch
 * no file. NULL when the file cannot be had: r then holds the error. */
h5a_engine *storage_engine_of(h5a_storage *st, h5a_request *r, h5a_file **fout, bool *created)
{
    *fout = NULL;
    *created = false;
    if (r->err_code || !h5a_files_op_needs_file(r->op)) return h5a_files_bare(st->files);
    h5a_err err = {0, ""};
    bool create = changes_file(r) && h5a_files_op_creates(r->op);
    int rc = h5a_files_get(st->files, r->file, create, fout, created, &err);
    if (rc) {
        h5a_engine_fail_reply(r, rc, err.msg);
        return NULL;
    }
    return (*fout)->eng;
}

/* Was r (client_id, seq) applied once already? Then it is answered from
 * the exactly-once table of r's file -- each file's engine has its own,
 * committed with that file's changes -- and true is returned. A missing
 * file (or one that cannot be had: execute then says why) holds no repeat. */
bool storage_answer_repeat(h5a_storage *st, h5a_request *r)
{
    if (!r->has_seq || !changes_file(r) || !h5a_files_op_needs_file(r->op)) return false;
    h5a_file *f;
    bool created;
    h5a_err err = {0, ""};
    if (h5a_files_get(st->files, r->file, false, &f, &created, &err) || !f->eng) return false;
    return h5a_engine_answer_repeat(f->eng, r);
}

#define NO_SPACE_MSG                                                                            \
    "the disk is full: changes are refused until it has room again (nothing was applied; reads " \
    "still work)"

void storage_execute(h5a_storage *st, h5a_request *r)
{
    bool changes = changes_file(r), created;
    h5a_file *f;
    /* a request applied once already (client_id, seq) is answered from the
     * exactly-once table of its file, not applied again */
    if (storage_answer_repeat(st, r)) return;
    if (changes && still_full(st)) {
        h5a_engine_fail_reply(r, H5A_E_NO_SPACE, NO_SPACE_MSG);
        return;
    }
    if ((r->op == OP_CREATE_VIRTUAL || r->op == OP_BATCH) && !r->err_code) {
        /* its sources' types and shapes, from their own files, first (a
         * batch's create_virtual ops' too) */
        h5a_err err = {0, ""};
        if (h5a_files_resolve_sources(st->files, r, &err)) {
            h5a_files_release_sources(r);
            h5a_engine_fail_reply(r, err.code, err.msg);
            return;
        }
    }
    h5a_engine *eng = storage_engine_of(st, r, &f, &created);
    if (!eng) {
        h5a_files_release_sources(r);
        return;
    }
    if (f && f->gone && changes) {
        h5a_engine_fail_reply(r, H5A_E_HDF5_ERROR, f->gone_msg);
    } else {
        h5a_wal_take_write_errno(); /* only this request's failures count below */
        h5a_engine_execute(eng, r);
        if (changes && !r->reply_ok) {
            int e = h5a_wal_take_write_errno();
            if (e == ENOSPC || e == EDQUOT) {
                enter_no_space(st);
                h5a_engine_fail_reply(r, H5A_E_NO_SPACE,
                                      "the disk is full: this change was not applied");
            }
        }
        if (r->has_seq) h5a_engine_remember(eng, r);
    }
    h5a_files_release_sources(r);
    /* a file made for a request that failed: it created nothing */
    if (created && !r->reply_ok) h5a_files_discard(st->files, f);
}

/* Every commit goes through here: each open file is committed (a clean
 * one costs nothing), so that last_fsync, gone and commit_failed stay
 * true. -1 when any file failed (err names the first). */
static int commit(h5a_storage *st, h5a_durability level, char *err, size_t errlen)
{
    bool failed = false;
    h5a_file *f;
    for (size_t i = 0; (f = h5a_files_at(st->files, i)); i++) {
        if (f->gone) continue;
        char why[1024];
        int rc = h5a_engine_commit(f->eng, level, why, sizeof why);
        f->commit_failed = rc != 0;
        if (rc == H5A_ENGINE_NOSPACE) enter_no_space(st);
        if (rc == H5A_ENGINE_GONE) {
            f->gone = true;
            snprintf(f->gone_msg, sizeof f->gone_msg, "not applied: %s", why);
            fprintf(stderr, "hdf5-async-server: %s\n", why);
        }
        if (rc && !failed) {
            if (f->name) snprintf(err, errlen, "file '%.200s': %.800s", f->name, why);
            else snprintf(err, errlen, "%s", why);
        }
        failed |= rc != 0;
    }
    if (failed) return -1;
    st->last_flush = uv_hrtime();
    if (level == H5A_DUR_FSYNC) st->last_fsync = st->last_flush;
    return 0;
}

/* The weakest commit level that would still do work on some open file. */
static h5a_durability pending(h5a_storage *st)
{
    h5a_durability level = H5A_DUR_NONE;
    h5a_file *f;
    for (size_t i = 0; (f = h5a_files_at(st->files, i)); i++) {
        if (f->gone) continue; /* no commit can succeed */
        h5a_durability p = h5a_engine_pending(f->eng);
        if (p == H5A_DUR_FLUSH) return p;
        if (p > level) level = p;
    }
    return level;
}

/* Commit in the background (not for a waiting reply); a failure is logged
 * and retried later. */
static void background_commit(h5a_storage *st, h5a_durability level)
{
    char err[1024];
    uint64_t now = uv_hrtime();
    if (now < st->retry_at || commit(st, level, err, sizeof err) == 0) return;
    fprintf(stderr, "hdf5-async-server: background %s commit failed (retrying in 1 s): %s\n",
            h5a_durability_name(level), err);
    st->retry_at = now + RETRY_NS;
}

/* How long the idle storage thread waits before its next background step,
 * and which commit that step is (NONE: only trim read buffers). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Tell the loop replies are waiting: the async wakes it, unless it is
 * spinning on has_done. (Dekker's order: we publish has_done, then read
 * loop_spinning; the loop clears loop_spinning, then reads has_done; with
 * sequentially consistent atomics one of the two sees the other.) */
static void notify_loop(h5a_storage *st)
{
    atomic_store(&st->has_done, true);
    if (!atomic_load(&st->loop_spinning)) uv_async_send(&st->async);
}

static uint64_t idle_wait(h5a_storage *st, h5a_durability *level)
{
    uint64_t now = uv_hrtime(), wait;
    *level = pending(st);
    if (*level == H5A_DUR_FLUSH)
        wait = st->last_flush + IDLE_FLUSH_GAP_NS > now + IDLE_FLUSH_NS
                   ? st->last_flush + IDLE_FLUSH_GAP_NS - now
                   : IDLE_FLUSH_NS;
    else if (*level == H5A_DUR_FSYNC)
        wait = st->last_fsync + HARD_INTERVAL_NS > now ? st->last_fsync + HARD_INTERVAL_NS - now : 0;
    else wait = IDLE_TRIM_NS;
    if (*level != H5A_DUR_NONE && st->retry_at > now + wait) wait = st->retry_at - now;
    return wait ? wait : 1;
}

/* Group commit: make everything applied so far as durable as the strongest
 * level any held request asked for, with one flush (and one fsync) for all
 * of them, then release their replies. If that fails, the requests that
 * asked for durability get an error instead of ok: their operations were
 * applied, but we cannot promise what ok would have promised. */
static void release_held(h5a_storage *st)
{
    if (!st->held_head) return;
    char err[1024];
    if (commit(st, st->held_level, err, sizeof err) != 0) {
        fprintf(stderr, "hdf5-async-server: %s commit failed: %s\n",
                h5a_durability_name(st->held_level), err);
        char msg[1200];
        snprintf(msg, sizeof msg, "applied, but could not be made durable (%s): %s",
                 h5a_durability_name(st->held_level), err);
        for (h5a_request *r = st->held_head; r; r = r->next) {
            if (level_of(st, r) == H5A_DUR_NONE) continue;
            /* only the requests of the files that failed (a file closed
             * since was made durable by its close); a barrier (a ping)
             * waited for them all */
            h5a_file *f = h5a_files_op_needs_file(r->op) && !r->err_code
                              ? h5a_files_find(st->files, r->file)
                              : NULL;
            if (f ? f->commit_failed : !h5a_files_op_needs_file(r->op) || r->err_code)
                h5a_engine_fail_reply(r, H5A_E_HDF5_ERROR, msg);
        }
    }
    uv_mutex_lock(&st->mu); /* splice the whole held list onto the done list */
    if (st->out_tail) st->out_tail->next = st->held_head;
    else st->out_head = st->held_head;
    st->out_tail = st->held_tail;
    uv_mutex_unlock(&st->mu);
    st->held_head = st->held_tail = NULL;
    st->held_level = H5A_DUR_NONE;
    notify_loop(st);
}

/* A large read streams its reply (request.h, engine_slice.c): first, the
 * reply goes to the loop at once (nothing is held before it: see
 * may_stream_now), then the loop hears of each slab read. */
static void stream_cb(h5a_request *r, bool first, void *ud)
{
    h5a_storage *st = ud;
    if (first) {
        uv_mutex_lock(&st->mu);
        push(&st->out_head, &st->out_tail, r);
        uv_mutex_unlock(&st->mu);
    }
    notify_loop(st);
}

/* r's reply may leave before r is done: a read of the main port whose
 * reply would go out at once anyway (no earlier reply waits for a commit,
 * it asks for no durability). (A read's client_id/seq is not remembered:
 * the exactly-once table keeps changes only.) */
static bool may_stream_now(const h5a_storage *st, const h5a_request *r)
{
    return r->may_stream && r->op == OP_READ && !r->err_code && !st->held_head &&
           level_of(st, r) == H5A_DUR_NONE;
}

static void storage_main(void *arg)
{
    h5a_storage *st = arg;
    st->open_rc = h5a_files_start(&st->files, st->cfg, st->open_err, sizeof st->open_err);
    uv_sem_post(&st->opened);
    if (st->open_rc) return;
    st->last_fsync = uv_hrtime();
    h5a_memory_init();

    for (;;) {
        /* Work just finished: look for the next for spin_us before sleeping */
        if (st->cfg->spin_us && !atomic_load(&st->has_work)) {
            uint64_t until = uv_hrtime() + st->cfg->spin_us * 1000;
            while (!atomic_load_explicit(&st->has_work, memory_order_acquire) && uv_hrtime() < until)
                cpu_relax();
        }
        uv_mutex_lock(&st->mu);
        /* Idle with something uncommitted: wait a little for more work
         * first, so a client doing one request at a time does not pay for a
         * commit per request; commit once the queue has stayed empty that
         * long ("flush" after 2 ms, "fsync" at most a second after the
         * last one). */
        while (!st->in_head && !st->stop_requested && !st->report_requested) {
            h5a_durability level;
            uint64_t wait = idle_wait(st, &level);
            if (level == H5A_DUR_NONE && !st->bufs_kept && st->trimmed &&
                !h5a_files_any_closable(st->files))
                break;
            if (uv_cond_timedwait(&st->cv, &st->mu, wait) == UV_ETIMEDOUT && !st->in_head) {
                uv_mutex_unlock(&st->mu);
                if (level != H5A_DUR_NONE) background_commit(st, level);
                st->bufs_kept = h5a_buf_trim(); /* read buffers kept for reuse */
                h5a_files_close_idle(st->files);
                /* Idle for a second: give the heap's free memory back to
                 * the system, once per idle spell (main.c raises malloc's
                 * trim threshold so that busy periods do not pay for it;
                 * after a burst of load glibc would otherwise keep ~100 MB
                 * of free pages). Not sooner: trimming walks the heap. */
                if (!st->trimmed && uv_hrtime() - st->last_batch >= IDLE_TRIM_NS) {
                    malloc_trim(0);
                    st->trimmed = true;
                }
                uv_mutex_lock(&st->mu);
            }
        }
        while (!st->in_head && !st->stop_requested && !st->report_requested)
            uv_cond_wait(&st->cv, &st->mu);
        /* take the whole queue at once: one lock round trip per batch */
        h5a_request *batch = st->in_head;
        st->in_head = st->in_tail = NULL;
        atomic_store(&st->has_work, false);
        bool stop = st->stop_requested && !batch;
        bool report = st->report_requested;
        st->report_requested = false;
        uv_mutex_unlock(&st->mu);
        if (report) {
            h5a_file *f = h5a_files_find(st->files, NULL);
            if (!f) f = h5a_files_at(st->files, 0);
            if (f) h5a_memory_report(f->eng, stderr);
        }
        if (stop) break;
        if (!batch) continue;

        uint64_t busy_from = uv_hrtime();
        while (batch) {
            size_t n = 0;
            uint64_t t0 = uv_hrtime();
            bool ran = true;
            if (!storage_is_plain_append(batch)) {
                st->seg[n++] = batch;
                batch = batch->next;
                /* a read for a connection that has gone: nobody would
                 * read the reply (changes are applied all the same) */
                h5a_request *r = st->seg[0];
                if (!(r->droppable && r->gone &&
                      atomic_load_explicit(r->gone, memory_order_relaxed))) {
                    if (may_stream_now(st, r)) r->stream_cb = stream_cb, r->stream_ud = st;
                    storage_execute(st, r);
                } else {
                    ran = false;
                }
            } else {
                batch = storage_apply_appends(st, batch, &n);
            }
            /* metrics: each request's wait in the queue and its share of
             * the time applying it (a grouped run of appends shares one) */
            uint64_t t1 = uv_hrtime();
            h5a_count(&h5a_mstorage.applied, n);
            for (size_t i = 0; ran && i < n; i++)
                h5a_metrics_request(st->seg[i],
                                    t0 > st->seg[i]->t_queued ? t0 - st->seg[i]->t_queued : 0,
                                    (t1 - t0) / n);
            bool released = false;
            uv_mutex_lock(&st->mu);
            for (size_t i = 0; i < n; i++) {
                if (st->seg[i]->streamed) {
                    /* on the out list already; the loop may free it from
                     * this store on: the last touch here */
                    h5a_request *r = st->seg[i];
                    atomic_store_explicit(&r->stream_state,
                                          r->stream_failed ? H5A_STREAM_FAILED : H5A_STREAM_DONE,
                                          memory_order_release);
                    released = true;
                    continue;
                }
#ifdef H5A_DELIBERATE_LEAK
                /* `make soak-leak`: a build that leaks this many bytes per
                 * request, to show that the soak's memory rule catches it */
                memset(malloc(H5A_DELIBERATE_LEAK), 1, H5A_DELIBERATE_LEAK);
#endif
                /* free big frames before the reply is even sent (and a
                 * token at once); a small one is freed with its request on
                 * the loop thread that allocated it: glibc's free of
                 * another thread's chunk takes that arena's lock */
                if (st->seg[i]->frame_len >= RELEASE_HERE_BYTES || st->seg[i]->op == OP_AUTH)
                    h5a_request_release_input(st->seg[i]);
                h5a_durability level = level_of(st, st->seg[i]);
                /* once one reply waits for the commit, the ones after it
                 * wait too: replies leave in arrival order */
                if (level > H5A_DUR_NONE || st->held_head) {
                    if (level > st->held_level) st->held_level = level;
                    push(&st->held_head, &st->held_tail, st->seg[i]);
                } else {
                    push(&st->out_head, &st->out_tail, st->seg[i]);
                    released = true;
                }
            }
            uv_mutex_unlock(&st->mu);
            if (released) notify_loop(st); /* coalesces while the loop is busy */
        }
        st->last_batch = uv_hrtime();
        st->trimmed = false;
        uint64_t took = h5a_memory_maintain(st->cfg, st->last_batch, &st->last_busy_trim);
        if (took && st->cfg->debug)
            fprintf(stderr, "hdf5-async-server: gave freed memory back to the system while busy "
                            "(%.1f ms)\n", (double)took / 1e6);
        /* The queue is drained: one commit for everything that waits. */
        release_held(st);
        if (pending(st) != H5A_DUR_NONE &&
            uv_hrtime() - st->last_fsync >= HARD_INTERVAL_NS)
            background_commit(st, H5A_DUR_FSYNC);
        h5a_count(&h5a_mstorage.busy_ns, uv_hrtime() - busy_from);
        st->bufs_kept = true;
    }
    h5a_files_close(st->files);
    st->files = NULL;
    uv_mutex_lock(&st->mu);
    st->stopped = true;
    uv_mutex_unlock(&st->mu);
    uv_async_send(&st->async);
}

static void on_async(uv_async_t *h)
{
    h5a_storage *st = h->data;
    uv_mutex_lock(&st->mu);
    h5a_request *list = st->out_head;
    st->out_head = st->out_tail = NULL;
    atomic_store(&st->has_done, false);
    bool stopped = st->stopped;
    uv_mutex_unlock(&st->mu);
    while (list) {
        h5a_request *r = list;
        list = list->next;
        st->inflight--;
        st->done(r, st->ud);
    }
    st->flush(st->ud);
    if (stopped && !st->stopped_reported) {
        st->stopped_reported = true;
        st->on_stopped(st->ud);
    }
}

/* The loop spins for replies only while at most this many requests are in
 * the storage thread: a client waiting for its one reply gains from the
 * spin, but with requests pipelined, more of them are usually waiting on
 * the sockets, and a spinning loop would take a core from the storage
 * thread and the clients instead of reading them. */
#define SPIN_MAX_INFLIGHT 8

/* Hand this turn's requests to the storage thread, in submission order. */
static void hand_over(h5a_storage *st)
{
    if (!st->sub_head) return;
    uv_mutex_lock(&st->mu);
    if (st->in_tail) st->in_tail->next = st->sub_head;
    else st->in_head = st->sub_head;
    st->in_tail = st->sub_tail;
    atomic_store(&st->has_work, true);
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
    st->sub_head = st->sub_tail = NULL;
}

/* The loop is about to block in its poll: hand over the requests of this
 * turn; then if one of its requests is in the storage thread, look for its
 * reply for spin_us first (when only a few are, SPIN_MAX_INFLIGHT), and
 * answer it here (the async would wake the loop for it a few tens of
 * microseconds later). */
static void on_prepare(uv_prepare_t *h)
{
    h5a_storage *st = h->data;
    hand_over(st);
    if (!st->cfg->spin_us || !st->inflight || st->inflight > SPIN_MAX_INFLIGHT ||
        atomic_load(&st->has_done)) {
        if (atomic_load(&st->has_done)) on_async(&st->async);
        return;
    }
    atomic_store(&st->loop_spinning, true);
    uint64_t until = uv_hrtime() + st->cfg->spin_us * 1000;
    while (!atomic_load(&st->has_done) && uv_hrtime() < until) cpu_relax();
    atomic_store(&st->loop_spinning, false);
    if (atomic_load(&st->has_done)) on_async(&st->async);
}

static void free_after_close(uv_handle_t *h);

/* Close both of our loop handles; the last close frees st. */
static void close_handles(h5a_storage *st)
{
    st->closing_handles = 2;
    uv_close((uv_handle_t *)&st->async, free_after_close);
    uv_close((uv_handle_t *)&st->prepare, free_after_close);
}

int h5a_storage_start(h5a_storage **out, uv_loop_t *loop, const h5a_config *cfg,
                      h5a_done_cb done, h5a_flush_cb flush, h5a_stopped_cb stopped, void *ud,
                      char *err, size_t errlen)
{
    h5a_storage *st = calloc(1, sizeof *st);
    if (!st) return snprintf(err, errlen, "out of memory"), -1;
    st->cfg = cfg;
    h5a_buf_set_limit((size_t)cfg->read_buffer_cache);
    st->done = done;
    st->flush = flush;
    st->on_stopped = stopped;
    st->ud = ud;
    uv_mutex_init(&st->mu);
    uv_cond_init(&st->cv);
    uv_sem_init(&st->opened, 0);
    uv_async_init(loop, &st->async, on_async);
    st->async.data = st;
    uv_prepare_init(loop, &st->prepare);
    st->prepare.data = st;
    uv_prepare_start(&st->prepare, on_prepare);
    uv_unref((uv_handle_t *)&st->prepare);
    if (uv_thread_create(&st->thread, storage_main, st) != 0) {
        snprintf(err, errlen, "cannot start the storage thread");
        close_handles(st); /* frees st */
        return -1;
    }
    uv_sem_wait(&st->opened);
    if (st->open_rc) {
        uv_thread_join(&st->thread);
        snprintf(err, errlen, "%s", st->open_err);
        close_handles(st); /* frees st */
        return -1;
    }
    *out = st;
    return 0;
}

void h5a_storage_submit(h5a_storage *st, h5a_request *req)
{
    st->inflight++;
    req->t_queued = uv_hrtime();
    h5a_count(&h5a_msubmitted, 1); /* the loop thread is its one writer */
    push(&st->sub_head, &st->sub_tail, req); /* handed over by on_prepare */
}

void h5a_storage_report(h5a_storage *st)
{
    uv_mutex_lock(&st->mu);
    st->report_requested = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

void h5a_storage_stop(h5a_storage *st)
{
    hand_over(st); /* what was received is applied before the thread stops */
    uv_mutex_lock(&st->mu);
    st->stop_requested = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

static void free_after_close(uv_handle_t *h)
{
    h5a_storage *st = h->data;
    if (--st->closing_handles) return; /* the other handle is not closed yet */
    uv_mutex_destroy(&st->mu);
    uv_cond_destroy(&st->cv);
    uv_sem_destroy(&st->opened);
    free(st);
}

void h5a_storage_free(h5a_storage *st)
{
    uv_thread_join(&st->thread);
    close_handles(st);
}
