/* The data operations that make a dataset by shape and change its shape:
 * create_dataset, with h5py's creation options (chunks, maxshape,
 * compression, shuffle, fill value, exist_ok), and resize. Both check what
 * the chosen shape and chunks would cost (max_chunks, max_op_bytes) before
 * HDF5 is called. */
#include <string.h>

#include "server/engine_dset.h"
#include "server/engine_layout.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/h5types.h"

/* exist_ok is h5py's require_dataset: the same shape and type are there,
 * so every worker of a job may ask for the dataset first. */
static int require_existing(h5a_engine *e, h5a_request *r, const shape_t *s, hid_t ft,
                            const char *sh, h5a_err *err)
{
    hid_t old = h5a_cache_open(e, r->path, err);
    if (old < 0) return err->code;
    shape_t os;
    int rc = h5a_dset_shape(old, &os, NULL, err);
    if (rc) return rc;
    hid_t ot = H5Dget_type(old);
    bool same_t = h5a_same_type(ot, ft);
    H5Tclose(ot);
    if (h5a_shape_eq(&os, s) && same_t) {
        h5a_put_shape_result(&r->reply, s->ndim, s->dims);
        return 0;
    }
    char osh[256];
    h5a_dims_str(osh, sizeof osh, os.ndim, os.dims);
    if (h5a_shape_eq(&os, s))
        return h5a_err_set(err, H5A_E_EXISTS,
                           "'%s' exists with another dtype: exist_ok needs the dtype asked for",
                           r->path);
    return h5a_err_set(err, H5A_E_EXISTS,
                       "'%s' exists with shape %s, not %s: exist_ok needs the shape asked for",
                       r->path, osh, sh);
}

/* The chunks of a new chunked dataset (given, or h5py's guess) into dcpl,
 * after HDF5's rules and the limits of one request. */
static int set_chunks(h5a_engine *e, const h5a_request *r, const shape_t *s,
                      const hsize_t *maxdims, hid_t ft, comp_choice c, hid_t dcpl, h5a_err *err)
{
    const h5a_dset_args *a = r->dset;
    hsize_t chunk[H5A_MAX_DIMS];
    size_t isz = H5Tget_size(ft);
    if (a->chunks_mode == CHUNKS_GIVEN) {
        for (int i = 0; i < s->ndim; i++) chunk[i] = a->chunks[i];
    } else {
        h5a_chunk_guess(s->ndim, s->dims, isz, chunk);
    }
    double bytes = (double)isz;
    for (int i = 0; i < s->ndim; i++) {
        bytes *= (double)chunk[i];
        /* HDF5's rule: a chunk fits inside a fixed axis, unless that
         * axis is of size 0 (h5py's guess is 1024 there) */
        if (chunk[i] == 0 ||
            (maxdims[i] != H5S_UNLIMITED && maxdims[i] && chunk[i] > maxdims[i])) {
            char csh[256], msh[256];
            h5a_dims_str(csh, sizeof csh, s->ndim, chunk);
            h5a_dims_str(msh, sizeof msh, s->ndim, maxdims);
            if (chunk[i] == 0)
                return h5a_err_set(err, H5A_E_BAD_REQUEST,
                                   "chunks %s: axis %d has a chunk size of 0", csh, i);
            return h5a_err_set(err, H5A_E_BAD_REQUEST,
                               "chunks %s do not fit maxshape %s: axis %d, of fixed size %llu, "
                               "is smaller than its chunk",
                               csh, msh, i, (unsigned long long)maxdims[i]);
        }
    }
    if (bytes >= 4294967296.0)
        return h5a_err_set(err, H5A_E_BAD_REQUEST,
                           "a chunk of %.0f bytes: HDF5 chunks are under 4 GiB", bytes);
    /* every access to a chunk reads (and fills, and compresses) it whole */
    int rc;
    if ((rc = h5a_check_op_bytes(e->cfg, (uint64_t)bytes, err,
                                 "a chunk of '%s' would hold %.0f bytes, each read or written "
                                 "whole",
                                 r->path, bytes)) ||
        (rc = h5a_check_grid(e->cfg, r->path, s->ndim, s->dims, maxdims, chunk, err)))
        return rc;
    if (H5Pset_chunk(dcpl, s->ndim, chunk) < 0 || h5a_comp_set(dcpl, c) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot set up chunks or compression for '%s'",
                          r->path);
    return 0;
}

/* create_dataset: a dataset of a shape and type, with h5py's creation
 * options, and no data written (reads give the fill value). */
int h5a_op_CREATE_DATASET(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int kind, rc;
    const h5a_dset_args *a = r->dset;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "'/' is the root group, it cannot be a dataset");
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    shape_t s = {a->ndim, {0}};
    for (int i = 0; i < a->ndim; i++) s.dims[i] = a->shape[i];
    hid_t ft = h5t_from_dtype(a->type, err->msg, sizeof err->msg);
    if (ft < 0) return h5a_err_code(err, H5A_E_UNSUPPORTED_TYPE);
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID,
          fillt = H5I_INVALID_HID, d = H5I_INVALID_HID;
    char sh[256];
    h5a_dims_str(sh, sizeof sh, s.ndim, s.dims);

    if (kind != K_NONE) {
        if (kind == K_DATASET && a->exist_ok) {
            rc = require_existing(e, r, &s, ft, sh, err);
            goto out;
        }
        rc = h5a_err_set(err, H5A_E_EXISTS, "'%s' already exists (a %s)%s", r->path,
                         kind == K_DATASET ? "dataset"
                         : kind == K_GROUP ? "group"
                                           : "non-group object",
                         kind == K_DATASET ? "; delete it first, or pass exist_ok" : "");
        goto out;
    }

    comp_choice c;
    if ((rc = h5a_comp_resolve(e->cfg, r, &c, err))) goto out;
    c.shuffle = a->shuffle;
    hsize_t maxdims[H5A_MAX_DIMS];
    bool resizable = false;
    for (int i = 0; i < s.ndim; i++) {
        maxdims[i] = !a->has_maxshape ? s.dims[i]
                   : a->maxshape[i] == H5A_UNLIMITED ? H5S_UNLIMITED : a->maxshape[i];
        if (maxdims[i] != H5S_UNLIMITED && maxdims[i] < s.dims[i]) {
            char msh[256];
            h5a_dims_str(msh, sizeof msh, s.ndim, maxdims);
            rc = h5a_err_set(err, H5A_E_BAD_REQUEST,
                             "maxshape entry %d (%llu) is smaller than the shape's (%llu): "
                             "shape %s",
                             i, (unsigned long long)maxdims[i], (unsigned long long)s.dims[i], sh);
            goto out;
        }
        resizable |= maxdims[i] != s.dims[i];
    }
    /* h5py's rules: chunked when asked, or when maxshape, compression or
     * shuffle need it; the server's default compression is only a default
     * and is dropped where no chunk fits (scalars) or none is wanted. */
    if (!c.explicit_ && (s.ndim == 0 || a->chunks_mode == CHUNKS_CONTIGUOUS))
        c.comp = COMP_NONE;
    bool filters = c.comp != COMP_NONE || c.shuffle;
    bool chunked = a->chunks_mode == CHUNKS_AUTO || a->chunks_mode == CHUNKS_GIVEN || resizable ||
                   filters;
    if (chunked && s.ndim == 0) {
        rc = h5a_err_set(err, H5A_E_BAD_REQUEST,
                         "a scalar dataset cannot be chunked, so it takes no chunks, compression "
                         "or shuffle");
        goto out;
    }
    if (chunked && a->chunks_mode == CHUNKS_CONTIGUOUS) {
        rc = h5a_err_set(err, H5A_E_BAD_REQUEST, "chunks=false, but %s needs chunked layout",
                         resizable ? "a maxshape other than the shape"
                         : c.shuffle ? "shuffle"
                                     : "compression");
        goto out;
    }
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (chunked && (rc = set_chunks(e, r, &s, maxdims, ft, c, dcpl, err))) goto out;
    /* A contiguous dataset's space is allocated whole at its first write
     * (and filled, when it has a fill value): the file's end jumps by its
     * size. A 2^62-byte one made the file impossible to checkpoint, close or
     * reopen (ftruncate: File too large). Chunked ones allocate per chunk. */
    if (!chunked && s.ndim &&
        (rc = h5a_check_op_bytes(e->cfg, h5a_sat_mul(h5a_shape_elems(&s), H5Tget_size(ft)), err,
                                 "'%s' would be a contiguous dataset, which HDF5 allocates%s "
                                 "whole at its first write (give it chunks to allocate only what "
                                 "is written)",
                                 r->path, a->has_fill ? " and fills" : "")))
        goto out;
    if (a->has_fill) {
        if ((fillt = h5a_mem_type(&a->fill, err)) < 0) {
            rc = H5A_E_UNSUPPORTED_TYPE;
            goto out;
        }
        if ((rc = h5a_check_type(r->path, &a->fill, ft, fillt, true, err))) {
            h5a_err_append(err, " (the fillvalue)");
            goto out;
        }
        if (H5Pset_fill_value(dcpl, fillt, a->fill.data) < 0) {
            rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot set the fill value of '%s'", r->path);
            goto out;
        }
    }
    space = s.ndim ? H5Screate_simple(s.ndim, s.dims, maxdims) : H5Screate(H5S_SCALAR);
    lcpl = h5a_path_lcpl();
    d = H5Dcreate2(e->file, r->path, ft, space, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create dataset '%s'", r->path);
        goto out;
    }
    h5a_state_mark_dirty(e);
    h5a_put_shape_result(&r->reply, s.ndim, s.dims);
out:
    h5a_close_id(&d, H5Dclose);
    h5a_close_id(&space, H5Sclose);
    h5a_close_id(&dcpl, H5Pclose);
    h5a_close_id(&lcpl, H5Pclose);
    h5a_close_id(&fillt, H5Tclose);
    H5Tclose(ft);
    return rc;
}

/* resize: a chunked dataset's new shape within its maxshape, any axis;
 * what falls outside is dropped, as H5Dset_extent (and h5py) do. */
int h5a_op_RESIZE(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    const h5a_dset_args *a = r->dset;
    if ((rc = h5a_dset_open_existing(e, r, &d, err))) return rc;
    shape_t s, ns;
    hsize_t maxdims[H5A_MAX_DIMS];
    if ((rc = h5a_dset_shape(d, &s, maxdims, err))) return rc;
    char sh[256], msh[256];
    h5a_dims_str(sh, sizeof sh, s.ndim, s.dims);
    ns = s;
    if (a->has_axis) {
        int64_t ax = a->axis < 0 ? a->axis + s.ndim : a->axis;
        if (ax < 0 || ax >= s.ndim)
            return h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                               "axis %lld is out of range for '%s' of shape %s",
                               (long long)a->axis, r->path, sh);
        ns.dims[ax] = a->shape[0];
    } else {
        if (a->ndim != s.ndim)
            return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                               "the new shape has %d dimensions but '%s' has %d (shape %s)",
                               a->ndim, r->path, s.ndim, sh);
        for (int i = 0; i < s.ndim; i++) ns.dims[i] = a->shape[i];
    }
    if (!h5a_shape_eq(&ns, &s)) {
        hsize_t chunk[H5A_MAX_DIMS];
        if (h5a_cache_chunk(e, d, chunk) != s.ndim)
            return h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                               "'%s' is not chunked, so its shape %s is fixed: only chunked "
                               "datasets can be resized (create one with create_dataset and "
                               "maxshape)",
                               r->path, sh);
        h5a_dims_str(msh, sizeof msh, s.ndim, maxdims);
        for (int i = 0; i < s.ndim; i++)
            if (maxdims[i] != H5S_UNLIMITED && ns.dims[i] > maxdims[i])
                return h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                                   "axis %d of '%s' can grow to %llu at most (maxshape %s), not "
                                   "%llu",
                                   i, r->path, (unsigned long long)maxdims[i], msh,
                                   (unsigned long long)ns.dims[i]);
        /* a shrink visits the chunk positions of the old extent, a growth
         * makes those of the new one: the larger of the two, per axis */
        shape_t span = ns;
        for (int i = 0; i < s.ndim; i++)
            if (s.dims[i] > span.dims[i]) span.dims[i] = s.dims[i];
        if ((rc = h5a_check_grid(e->cfg, r->path, span.ndim, span.dims, maxdims, chunk, err)))
            return rc;
        if (H5Dset_extent(d, ns.dims) < 0)
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot resize '%s'", r->path);
        h5a_state_mark_dirty(e);
    }
    h5a_put_shape_result(&r->reply, ns.ndim, ns.dims);
    return 0;
}
