/* The storage engine's core (engine.h): opening and closing the file,
 * dispatching each request to its operation's handler through the op list,
 * and committing. Every HDF5 call of the server is in the engine's files,
 * which run on the storage thread only: HDF5 is built thread-safe here, but
 * one global lock means a second thread calling it would only wait, so we
 * keep it to one and never block the event loop.
 *
 * Layer 8, the top of the engine (the layers are listed in engine_err.h):
 * it calls the operations (engine_ops.h) and the state below them, and
 * nothing calls it but storage.c. */
#include "server/engine.h"

#include <hdf5.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/dedup.h"
#include "server/engine_err.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/engine_state.h"
#include "server/lzf_filter.h"
#include "server/metrics.h"
#include "server/wal.h"

/* ---- dispatch ---- */

int h5a_op_PING(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    mp_put_cstr(&r->reply, "pong");
    return 0;
}

int h5a_op_AUTH(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    /* decided on the loop thread (net.c), answered here in its turn */
    mp_buf *b = &r->reply;
    mp_put_map_header(b, 2);
    mp_put_cstr(b, "name");
    if (r->auth_role) mp_put_cstr(b, r->auth_name);
    else mp_put_nil(b);
    mp_put_cstr(b, "role");
    mp_put_cstr(b, r->auth_role ? r->auth_role : "admin");
    return 0;
}

/* One handler per entry of the op list, in its order (OP_<ID> indexes it):
 * an op added to src/proto/ops.h without its h5a_op_<ID> does not compile. */
typedef int (*op_handler)(h5a_engine *e, h5a_request *r, h5a_err *err);
static const op_handler handlers[] = {
#define H5A_X(ID, name, args, changes, perm, batch) [OP_##ID] = h5a_op_##ID,
    H5A_OPS(H5A_X)
#undef H5A_X
};
_Static_assert(sizeof handlers / sizeof handlers[0] == OP_NONE,
               "one handler per op of src/proto/ops.h");

void h5a_engine_execute(h5a_engine *e, h5a_request *r)
{
    h5a_err err = {0, ""};
    size_t mark = h5a_reply_begin(r);
    int rc;
    if (r->err_code) {
        rc = h5a_err_set(&err, r->err_code, "%s", r->err_msg);
        r->reply_node = r->moved_to;
    } else if ((unsigned)r->op >= OP_NONE) {
        rc = h5a_err_set(&err, H5A_E_INTERNAL, "no such op");
    } else {
        rc = handlers[r->op](e, r, &err);
        if (r->streamed) return; /* its reply is out already (engine_slice.c) */
    }
    h5a_reply_finish(r, mark, rc, &err);
}

bool h5a_engine_can_group(const h5a_request *a, const h5a_request *b)
{
    if (a->op != OP_APPEND || b->op != OP_APPEND || a->err_code || b->err_code ||
        !a->has_data || !b->has_data || strcmp(a->path, b->path) != 0)
        return false;
    if ((a->file == NULL) != (b->file == NULL) || (a->file && strcmp(a->file, b->file) != 0))
        return false;
    if (a->data.ndim != b->data.ndim || !dtype_equal(a->data.type, b->data.type)) return false;
    for (int i = 1; i < a->data.ndim; i++)
        if (a->data.dims[i] != b->data.dims[i]) return false;
    return true;
}

void h5a_engine_execute_appends(h5a_engine *e, h5a_request **reqs, size_t n)
{
    if (n > 1 && h5a_append_group(e, reqs, n)) return;
    for (size_t i = 0; i < n; i++) h5a_engine_execute(e, reqs[i]);
}

void h5a_engine_fail_reply(h5a_request *r, int code, const char *msg)
{
    h5a_err err;
    h5a_err_set(&err, code, "%s", msg);
    size_t mark = h5a_reply_begin(r);
    h5a_reply_finish(r, mark, code, &err);
}

/* ---- what other modules ask of a file ---- */

int h5a_engine_dataset_shape(h5a_engine *e, const char *path, int64_t *type, int *ndim,
                             uint64_t *dims, h5a_err *err)
{
    H5O_type_t kind;
    int rc = h5a_path_object(e->file, path, &kind, err);
    if (rc) return rc;
    if (kind != H5O_TYPE_DATASET)
        return h5a_err_set(err, H5A_E_NOT_A_DATASET, "'%s' is not a dataset", path);
    hid_t d = h5a_cache_open(e, path, err);
    if (d < 0) return err->code;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int n = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t hd[H5A_MAX_DIMS];
    if (n < 0 || n > H5A_MAX_DIMS || t < 0 || H5Sget_simple_extent_dims(sp, hd, NULL) < 0) {
        if (sp >= 0) H5Sclose(sp);
        if (t >= 0) H5Tclose(t);
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the shape of '%s'", path);
    }
    H5Sclose(sp);
    *ndim = n;
    for (int i = 0; i < n; i++) dims[i] = hd[i];
    *type = t;
    return 0;
}

int h5a_engine_peek_dataset(const char *file, const char *path, int64_t *type, int *ndim,
                            uint64_t *dims, h5a_err *err)
{
    struct stat st;
    if (stat(file, &st) != 0 || st.st_size == 0)
        return h5a_err_set(err, H5A_E_NOT_FOUND, "no file '%s'", file);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR,
                          "cannot open '%s' read-only (is it open on its node? its node closes "
                          "it when idle or stopped)", file);
    h5a_engine tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.file = f;
    int rc = h5a_engine_dataset_shape(&tmp, path, type, ndim, dims, err);
    h5a_cache_clear(&tmp);
    H5Fclose(f);
    return rc;
}

/* ---- commit ---- */

h5a_durability h5a_engine_pending(const h5a_engine *e)
{
    return e->dirty ? H5A_DUR_FLUSH : e->unsynced ? H5A_DUR_FSYNC : H5A_DUR_NONE;
}

/* A failed commit's kind: the file gone, the disk full, or anything else. */
static int commit_failure(int rc)
{
    int e = h5a_wal_take_write_errno();
    if (rc == H5A_WAL_E_GONE) return H5A_ENGINE_GONE;
    return e == ENOSPC || e == EDQUOT ? H5A_ENGINE_NOSPACE : -1;
}

int h5a_engine_commit(h5a_engine *e, h5a_durability level, char *errout, size_t errlen)
{
    h5a_err err;
    if (level == H5A_DUR_NONE) return 0;
    if (e->dirty) {
        if (H5Fflush(e->file, H5F_SCOPE_GLOBAL) < 0) {
            h5a_err_h5(&err, H5A_E_HDF5_ERROR, "flushing the file failed");
            snprintf(errout, errlen, "%s", err.msg);
            return commit_failure(-1);
        }
        /* the exactly-once results of what this commit covers go in it */
        if (h5a_engine_hand_aux(e) < 0) {
            snprintf(errout, errlen, "out of memory committing the exactly-once table");
            return -1;
        }
        /* A "flush" commit is the log record that makes the flushed state
         * the one a restart recovers; "fsync" below also covers it. */
        int rc = 0;
        if (level == H5A_DUR_FLUSH) rc = h5a_wal_commit(e->file, H5A_COMMIT_SOFT, errout, errlen);
        if (rc) return commit_failure(rc);
        e->dirty = false;
        e->unsynced = true;
        h5a_count(&h5a_mstorage.commits[0], 1);
    }
    if (level == H5A_DUR_FSYNC && e->unsynced) {
        uint64_t t0 = uv_hrtime();
        int rc = h5a_wal_commit(e->file, H5A_COMMIT_HARD, errout, errlen);
        if (rc) return commit_failure(rc);
        h5a_hist_add(&h5a_mstorage.fsync, uv_hrtime() - t0);
        h5a_count(&h5a_mstorage.commits[1], 1);
        e->unsynced = false;
    }
    return 0;
}

/* ---- open, close ---- */

/* Files made by earlier builds of this server track free space across
 * restarts, which a crash can leave inconsistent (see h5a_engine_open). */
static void warn_persistent_free_space(hid_t file, const char *path)
{
    hid_t fcpl = H5Fget_create_plist(file);
    H5F_fspace_strategy_t strategy;
    hbool_t persist = false;
    hsize_t threshold;
    if (fcpl >= 0 && H5Pget_file_space_strategy(fcpl, &strategy, &persist, &threshold) >= 0 &&
        persist)
        fprintf(stderr,
                "hdf5-async-server: warning: '%s' keeps persistent free-space managers, which a "
                "crash can leave stale; to be crash-safe, copy it once with "
                "`h5repack -S FSM_AGGR -P 0 OLD NEW`\n",
                path);
    if (fcpl >= 0) H5Pclose(fcpl);
    H5Eclear2(H5E_DEFAULT);
}

/* The driver's options: the recovery report, and the exactly-once table
 * committed with the pages (dedup.h). */
static h5a_wal_options wal_options(h5a_engine *e, h5a_wal_recovery *rec)
{
    memset(rec, 0, sizeof *rec);
    /* file_id: new files get a userblock (below) where the driver keeps an
     * id its log is checked against */
    h5a_wal_options o = {.report = rec, .discard_damaged = e->cfg->wal_discard_damaged,
                         .file_id = true, .close_error = e->close_error,
                         .aux_ctx = e->dedup, .aux_replay = h5a_dedup_replay,
                         .aux_checkpoint = h5a_dedup_snapshot};
    return o;
}


/* Once, on the storage thread, before the first file is opened. */
static int engine_setup_once(char *errout, size_t errlen)
{
    static bool done;
    h5a_err err;
    if (done) return 0;
    /* per thread: HDF5 must not print its error stack; we turn it into replies */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (h5a_path_refuse_external_links() < 0) {
        h5a_err_h5(&err, H5A_E_HDF5_ERROR, "cannot turn off external links");
        snprintf(errout, errlen, "%s", err.msg);
        return -1;
    }
    if (h5a_lzf_register() < 0) {
        h5a_err_h5(&err, H5A_E_HDF5_ERROR, "cannot register the LZF filter");
        snprintf(errout, errlen, "%s", err.msg);
        return -1;
    }
    done = true;
    return 0;
}

int h5a_engine_open(h5a_engine **out, const h5a_config *cfg, char *errout, size_t errlen)
{
    bool missing;
    return h5a_engine_open_path(out, cfg, cfg->file_path, true, &missing, errout, errlen);
}

int h5a_engine_open_path(h5a_engine **out, const h5a_config *cfg, const char *path, bool create,
                         bool *missing, char *errout, size_t errlen)
{
    h5a_err err;
    *missing = false;
    if (engine_setup_once(errout, errlen)) return -1;
    if (strlen(path) >= sizeof ((h5a_engine *)0)->path)
        return snprintf(errout, errlen, "the file name is too long"), -1;
    h5a_engine *e = calloc(1, sizeof *e);
    if (!e) return snprintf(errout, errlen, "out of memory"), -1;
    e->cfg = cfg;
    snprintf(e->path, sizeof e->path, "%s", path);
    /* Every byte goes through the write-ahead-log driver (wal.c): opening
     * the file first rolls it forward to its last commit if the server died,
     * so the file always opens (docs/durability.md). */
    /* An empty file is taken as missing: it holds nothing, and it is what a
     * crash before the first commit of a new file leaves behind (the driver
     * truncates such a file back to its committed size, 0). */
    struct stat st;
    bool exists = stat(path, &st) == 0 && st.st_size > 0;
    /* the exactly-once table as of the last checkpoint; the open's
     * recovery replays the commits since into it */
    char snap[sizeof e->path + 8];
    snprintf(snap, sizeof snap, "%s.dedup", path);
    h5a_dedup_limits dl = {cfg->dedup_window, cfg->dedup_idle_timeout, cfg->dedup_max_clients,
                           cfg->dedup_max_bytes};
    if (!(e->dedup = h5a_dedup_new(&dl, snap))) {
        free(e);
        return snprintf(errout, errlen, "out of memory"), -1;
    }
    char derr[300];
    if (!exists) h5a_dedup_reset(e->dedup);
    else if (h5a_dedup_load(e->dedup, derr, sizeof derr) < 0)
        fprintf(stderr, "hdf5-async-server: warning: %s: requests resent after this start may "
                        "be applied again\n", derr);
    h5a_wal_recovery rec;
    h5a_wal_options wopt = wal_options(e, &rec);
    hid_t fapl = h5a_wal_fapl(&wopt);
    if (fapl < 0) {
        snprintf(errout, errlen, "cannot set up the file driver");
        h5a_dedup_free(e->dedup);
        free(e);
        return -1;
    }
    if (exists) {
        /* h5a_wal_fapl also clears the superblock's "open for writing" mark a
         * crash leaves: the driver has just brought the bytes back to a
         * committed, consistent state, so that is safe here (what h5clear
         * does, which is unsafe without the log). */
        e->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
        exists = e->file >= 0 || stat(path, &st) != 0 || st.st_size > 0;
        if (!exists) H5Eclear2(H5E_DEFAULT); /* recovered to empty: create it */
    }
    if (rec.message[0]) fprintf(stderr, "hdf5-async-server: %s\n", rec.message);
    hid_t fcpl = H5I_INVALID_HID; /* closed after the error stack is read */
    if (!exists && !create) {
        *missing = true;
        snprintf(errout, errlen, "no such file");
        if (e->file >= 0) H5Fclose(e->file);
        H5Pclose(fapl);
        h5a_dedup_free(e->dedup);
        free(e);
        return -1;
    }
    if (!exists) {
        h5a_dedup_reset(e->dedup); /* an earlier file's */
        /* New files: the 1.10 format (extensible-array chunk indexes make
         * appends cheap). Free space is NOT tracked across restarts: HDF5
         * writes persistent free-space managers only at close, so a flushed
         * but unclosed file (what a crash leaves) would hold stale ones that
         * point at space in use -- checked, such a file fails to reopen.
         * Space freed by deletes is reused while the server runs. A 512-byte
         * userblock holds the id the driver checks its log against. */
        fcpl = H5Pcreate(H5P_FILE_CREATE);
        H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 0, 1);
        H5Pset_userblock(fcpl, 512);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
        e->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
        /* commit the empty file at once, so that from now on a crash comes
         * back to a valid HDF5 file */
        e->dirty = true;
        if (e->file >= 0 && h5a_engine_commit(e, H5A_DUR_FSYNC, errout, errlen)) {
            H5Fclose(e->file);
            H5Pclose(fcpl);
            H5Pclose(fapl);
            h5a_dedup_free(e->dedup);
            free(e);
            return -1;
        }
    }
    if (e->file < 0) {
        /* before H5Pclose: any HDF5 call clears the error stack, and the
         * driver's reason ("is in use by another process") is on it */
        h5a_err_h5(&err, H5A_E_HDF5_ERROR, "cannot open HDF5 file '%s'", path);
        snprintf(errout, errlen, "%s", err.msg);
        if (fcpl >= 0) H5Pclose(fcpl);
        H5Pclose(fapl);
        h5a_dedup_free(e->dedup);
        free(e);
        return -1;
    }
    if (fcpl >= 0) H5Pclose(fcpl);
    H5Pclose(fapl);
    warn_persistent_free_space(e->file, path);
    *out = e;
    return 0;
}

int h5a_engine_reopen(h5a_engine *e, h5a_err *err)
{
    h5a_wal_recovery rec;
    h5a_wal_options wopt = wal_options(e, &rec);
    hid_t fapl = h5a_wal_fapl(&wopt);
    if (fapl < 0) return h5a_err_set(err, H5A_E_HDF5_ERROR, "cannot set up the file driver");
    e->file = H5Fopen(e->path, H5F_ACC_RDWR, fapl);
    int rc = e->file < 0 ? h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open HDF5 file '%s' again",
                                       e->path)
                         : 0;
    H5Pclose(fapl);
    e->dirty = e->unsynced = false;
    return rc;
}

h5a_engine *h5a_engine_bare(const h5a_config *cfg)
{
    h5a_engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->cfg = cfg;
    e->file = H5I_INVALID_HID;
    return e;
}

void h5a_engine_close(h5a_engine *e)
{
    if (!e) return;
    if (e->file < 0) { /* h5a_engine_bare */
        free(e);
        return;
    }
    h5a_cache_clear(e);
    if (h5a_engine_hand_aux(e) < 0)
        fprintf(stderr, "hdf5-async-server: out of memory saving the exactly-once table\n");
    if (H5Fclose(e->file) < 0) {
        h5a_err err;
        h5a_err_h5(&err, H5A_E_HDF5_ERROR, "closing the file failed");
        fprintf(stderr, "hdf5-async-server: %s\n", err.msg);
    }
    if (e->close_error[0]) fprintf(stderr, "hdf5-async-server: %s\n", e->close_error);
    h5a_dedup_free(e->dedup);
    free(e);
}

/* ---- memory report ---- */

void h5a_engine_memory(const h5a_engine *e, h5a_engine_mem *out)
{
    memset(out, 0, sizeof *out);
    size_t max = 0, min_clean = 0, cur = 0;
    int n = 0;
    if (H5Fget_mdc_size(e->file, &max, &min_clean, &cur, &n) >= 0) {
        out->mdc_bytes = cur;
        out->mdc_max = max;
        out->mdc_entries = n > 0 ? (size_t)n : 0;
    }
    size_t reg = 0, arr = 0, blk = 0, fac = 0;
    if (H5get_free_list_sizes(&reg, &arr, &blk, &fac) >= 0)
        out->free_lists = reg + arr + blk + fac;
    for (unsigned i = 0; i < H5A_CACHE_SLOTS; i++) {
        if (!e->cache[i].path) continue;
        out->open_datasets++;
        hid_t dapl = H5Dget_access_plist(e->cache[i].dset);
        size_t slots = 0, bytes = 0;
        double w0 = 0;
        if (dapl >= 0 && H5Pget_chunk_cache(dapl, &slots, &bytes, &w0) >= 0 &&
            e->cache[i].chunk_ndim)
            out->chunk_cache_max += bytes;
        if (dapl >= 0) H5Pclose(dapl);
    }
    h5a_wal_stats w;
    if (h5a_wal_get_stats(e->file, &w) == 0) {
        out->wal_map = w.map_bytes;
        out->wal_index = w.index_bytes;
        out->wal_log = w.log_bytes;
    }
    H5Eclear2(H5E_DEFAULT);
}
