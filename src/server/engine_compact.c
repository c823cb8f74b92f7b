/* compact (admin): the served file copied into a fresh one that holds only
 * what is live, then swapped in under the same path -- the space deletes and
 * rewrites freed comes back to the disk. HDF5 reuses freed space only while
 * the file is open (free-space tracking is not persistent here: see
 * docs/durability.md), so a file that saw churn across restarts grows; this
 * is the online h5repack.
 *
 * The copy is H5Ocopy of the root group into a temporary group of the new
 * file, whose children then move up (one H5Ocopy, so objects hard-linked in
 * two places stay one object; soft and external links stay links, their
 * targets as they were), plus the root's attributes. The new file goes
 * through the log driver like any file, is committed and closed cleanly, and
 * replaces the old one with rename(2): a crash before the rename leaves the
 * old file, after it the new one, never a mix. It takes the storage thread
 * for as long as the copy takes (about the time to read and write the live
 * data): a maintenance operation.
 *
 * Layer 7: uses the core's state (engine_state.h), commit and reopen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/engine.h"
#include "server/engine_dset.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/engine_state.h"
#include "server/wal.h"

#define TMP_ROOT "/.hdf5_async_compact"

typedef struct {
    hid_t file;
    h5a_err *err;
    int rc;
} mover;

static herr_t move_up(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    (void)info;
    mover *m = ud;
    char *src = malloc(strlen(TMP_ROOT) + strlen(name) + 2);
    char *dst = malloc(strlen(name) + 2);
    if (!src || !dst) {
        free(src);
        free(dst);
        m->rc = h5a_err_set(m->err, H5A_E_INTERNAL, "out of memory");
        return -1;
    }
    sprintf(src, "%s/%s", TMP_ROOT, name);
    sprintf(dst, "/%s", name);
    if (H5Lmove(m->file, src, m->file, dst, H5P_DEFAULT, H5P_DEFAULT) < 0)
        m->rc = h5a_err_h5(m->err, H5A_E_HDF5_ERROR, "compact: cannot move '%s' into place", name);
    free(src);
    free(dst);
    (void)g;
    return m->rc ? -1 : 0;
}

/* The names of the links in group g, so that moving them does not change
 * the group under an iteration. */
static int list_names(hid_t g, char ***names, size_t *n, h5a_err *err)
{
    H5G_info_t gi;
    *names = NULL;
    *n = 0;
    if (H5Gget_info(g, &gi) < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot list");
    char **v = calloc(gi.nlinks ? gi.nlinks : 1, sizeof *v);
    if (!v) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        if (len < 0 || !(v[i] = malloc((size_t)len + 1)) ||
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, v[i], (size_t)len + 1,
                               H5P_DEFAULT) < 0) {
            for (hsize_t k = 0; k <= i; k++) free(v[k]);
            free(v);
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot list");
        }
    }
    *names = v;
    *n = (size_t)gi.nlinks;
    return 0;
}

/* Copy the served file into tmp (a fresh file through the log driver). */
static int copy_into(h5a_engine *e, const char *tmp, h5a_err *err)
{
    h5a_wal_options wopt = {.file_id = true};
    hid_t fapl = h5a_wal_fapl(&wopt), fcpl = H5Pcreate(H5P_FILE_CREATE), dst = H5I_INVALID_HID,
          root_src = H5I_INVALID_HID, root_dst = H5I_INVALID_HID, tmp_g = H5I_INVALID_HID;
    int rc = 0;
    /* the properties every new file gets (h5a_engine_open) */
    H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 0, 1);
    H5Pset_userblock(fcpl, 512);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    if (fapl < 0 || (dst = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot create '%s'", tmp);
        goto out;
    }
    if (H5Ocopy(e->file, "/", dst, TMP_ROOT, H5P_DEFAULT, H5P_DEFAULT) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot copy the file's objects");
        goto out;
    }
    char **names;
    size_t n;
    if ((tmp_g = H5Gopen2(dst, TMP_ROOT, H5P_DEFAULT)) < 0 ||
        (rc = list_names(tmp_g, &names, &n, err))) {
        if (!rc) rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot open the copy");
        goto out;
    }
    mover m = {dst, err, 0};
    for (size_t i = 0; i < n; i++) {
        if (!m.rc) move_up(tmp_g, names[i], NULL, &m);
        free(names[i]);
    }
    free(names);
    if ((rc = m.rc)) goto out;
    /* the root's own attributes: the copy's root is TMP_ROOT */
    if ((root_src = H5Gopen2(e->file, "/", H5P_DEFAULT)) < 0 ||
        (root_dst = H5Gopen2(dst, "/", H5P_DEFAULT)) < 0 ||
        (rc = h5a_copy_attrs(root_src, root_dst, err))) {
        if (!rc) rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot copy the root's attributes");
        goto out;
    }
    H5Gclose(tmp_g);
    tmp_g = H5I_INVALID_HID;
    if (H5Ldelete(dst, TMP_ROOT, H5P_DEFAULT) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot remove the temporary group");
        goto out;
    }
    char why[512];
    if (H5Fflush(dst, H5F_SCOPE_GLOBAL) < 0 ||
        h5a_wal_commit(dst, H5A_COMMIT_HARD, why, sizeof why) != 0) {
        rc = h5a_err_set(err, H5A_E_HDF5_ERROR, "compact: cannot commit '%s': %s", tmp, why);
        goto out;
    }
out:
    if (tmp_g >= 0) H5Gclose(tmp_g);
    if (root_src >= 0) H5Gclose(root_src);
    if (root_dst >= 0) H5Gclose(root_dst);
    /* a clean close removes the new file's log */
    if (dst >= 0 && H5Fclose(dst) < 0 && !rc)
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "compact: cannot close '%s'", tmp);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    return rc;
}

int h5a_op_COMPACT(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    const char *path = e->path;
    char tmp[4200], why[1024];
    snprintf(tmp, sizeof tmp, "%s.compact", path);
    struct stat before, after;
    if (stat(path, &before) != 0)
        return h5a_err_set(err, H5A_E_HDF5_ERROR, "compact: cannot stat '%s': %s", path,
                           strerror(errno));
    /* what the copy reads must be what the file holds: commit it all */
    int crc = h5a_engine_commit(e, H5A_DUR_FSYNC, why, sizeof why);
    if (crc == H5A_ENGINE_NOSPACE)
        return h5a_err_set(err, H5A_E_NO_SPACE, "compact: the disk is full: %s", why);
    if (crc) return h5a_err_set(err, H5A_E_HDF5_ERROR, "compact: cannot commit first: %s", why);
    unlink(tmp); /* a leftover of a compact that crashed */
    int rc = copy_into(e, tmp, err);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    /* swap: the served file closes cleanly (its log goes), the copy takes its
     * name atomically, and is opened again under it */
    h5a_cache_clear(e);
    if (H5Fclose(e->file) < 0 || e->close_error[0]) {
        /* still on disk as committed; reopen it and leave the copy out */
        unlink(tmp);
        e->file = H5I_INVALID_HID;
        h5a_err sub;
        if (h5a_engine_reopen(e, &sub))
            fprintf(stderr, "hdf5-async-server: compact: %s\n", sub.msg);
        return h5a_err_set(err, H5A_E_HDF5_ERROR, "compact: cannot close '%s' to swap it: %s",
                           path, e->close_error);
    }
    int renamed = rename(tmp, path);
    int saved = errno;
    if (renamed == 0) h5a_wal_fsync_dir(path);
    else unlink(tmp);
    if ((rc = h5a_engine_reopen(e, err))) {
        /* the server can serve no file now: say so loudly; a restart opens it */
        fprintf(stderr, "hdf5-async-server: compact: %s\n", err->msg);
        return rc;
    }
    if (renamed != 0)
        return h5a_err_set(err, H5A_E_HDF5_ERROR, "compact: cannot rename '%s' over '%s': %s",
                           tmp, path, strerror(saved));
    stat(path, &after);
    mp_buf *b = &r->reply;
    mp_put_map_header(b, 2);
    mp_put_cstr(b, "before");
    mp_put_uint(b, (uint64_t)before.st_size);
    mp_put_cstr(b, "after");
    mp_put_uint(b, (uint64_t)after.st_size);
    return 0;
}
