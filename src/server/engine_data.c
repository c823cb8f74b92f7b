/* The data operations on groups, whole datasets and rows: create_group,
 * write, append, insert, delete, and appends applied as one group. They
 * create and replace datasets with engine_layout's choices, find what is at
 * a path through engine_dset (the cache first, then the resolver), and mark
 * the engine dirty for every change. */
#include <stdlib.h>
#include <string.h>

#include "server/bigbuf.h"
#include "server/engine_dset.h"
#include "server/engine_layout.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"

int h5a_op_CREATE_GROUP(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int kind, rc;
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_DATASET || kind == K_OTHER)
        return h5a_err_set(err, H5A_E_EXISTS, "'%s' exists and is not a group", r->path);
    if (kind == K_NONE) {
        hid_t lcpl = h5a_path_lcpl();
        hid_t g = H5Gcreate2(e->file, r->path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Pclose(lcpl);
        if (g < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create group '%s'", r->path);
        H5Gclose(g);
        h5a_state_mark_dirty(e);
    }
    mp_put_nil(&r->reply);
    return 0;
}

int h5a_op_WRITE(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    mp_buf *b = &r->reply;
    int kind, rc;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "cannot write a dataset at the root group '/'");
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_GROUP)
        return h5a_err_set(err, H5A_E_NOT_A_DATASET,
                           "'%s' is a group; delete it before writing a dataset there", r->path);
    if (kind == K_OTHER)
        return h5a_err_set(err, H5A_E_NOT_A_DATASET, "'%s' is not a dataset", r->path);

    const h5a_array *a = &r->data;
    shape_t s = h5a_array_shape(a);
    comp_choice c;
    if ((rc = h5a_comp_resolve(e->cfg, r, &c, err))) return rc;
    if (s.ndim == 0 && c.comp != COMP_NONE) {
        if (c.explicit_)
            return h5a_err_set(err, H5A_E_BAD_REQUEST,
                               "a scalar dataset cannot be compressed (HDF5 filters need chunked "
                               "layout); write it with compression 'none' or as a 1-element array");
        c.comp = COMP_NONE; /* the server default does not apply to scalars */
    }
    if (h5a_shape_elems(&s) == 0) c.comp = COMP_NONE; /* nothing to compress, no chunk fits */

    hid_t mtype = h5a_mem_type(a, err);
    if (mtype < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t d = H5I_INVALID_HID;
    rc = 0;
    if (kind == K_DATASET) {
        /* same shape, type (and compression, when one was asked for):
         * overwrite in place, which keeps the file from growing */
        hid_t old = h5a_cache_open(e, r->path, err);
        if (old < 0) {
            rc = err->code;
            goto out;
        }
        shape_t os;
        hsize_t omax[H5A_MAX_DIMS];
        hid_t ot = H5Dget_type(old);
        bool same = h5a_dset_shape(old, &os, omax, err) == 0 && h5a_shape_eq(&os, &s) &&
                    h5a_same_type(ot, mtype) && (!c.explicit_ || h5a_comp_same(old, c));
        H5Tclose(ot);
        H5Eclear2(H5E_DEFAULT);
        if (same) {
            rc = h5a_write_all(old, mtype, a->data, r->path, err);
            h5a_state_mark_dirty(e);
            if (!rc) h5a_put_shape_result(b, s.ndim, s.dims);
            goto out;
        }
        /* build the new dataset aside, then swap it in: a failure leaves
         * the old one untouched */
        d = h5a_layout_create(e->file, e->cfg, NULL, mtype, &s, false, c, err);
        if (d < 0) {
            rc = err->code;
            goto out;
        }
        if ((rc = h5a_write_all(d, mtype, a->data, r->path, err)) ||
            (rc = h5a_dset_relink(e, d, r->path, true, err)))
            goto out;
    } else {
        d = h5a_layout_create(e->file, e->cfg, r->path, mtype, &s, false, c, err);
        if (d < 0) {
            rc = err->code;
            goto out;
        }
        if ((rc = h5a_write_all(d, mtype, a->data, r->path, err))) {
            /* do not leave a half-made dataset behind */
            H5Ldelete(e->file, r->path, H5P_DEFAULT);
            goto out;
        }
    }
    h5a_state_mark_dirty(e);
    h5a_put_shape_result(b, s.ndim, s.dims);
out:
    h5a_close_id(&d, H5Dclose);
    H5Tclose(mtype);
    return rc;
}

/* ---- rows: append, insert ---- */

/* Rows [start, start+n) of dataset d (shape s) from/to buf laid out as
 * mtype. */
static int rows_io(hid_t d, bool writing, hid_t mtype, const shape_t *s, hsize_t start, hsize_t n,
                   void *buf, h5a_err *err)
{
    if (n == 0) return 0;
    hsize_t off[H5A_MAX_DIMS] = {0}, count[H5A_MAX_DIMS];
    for (int i = 0; i < s->ndim; i++) count[i] = s->dims[i];
    off[0] = start;
    count[0] = n;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(s->ndim, count, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, count, NULL);
    if (rc >= 0)
        rc = writing ? H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf)
                     : H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(fs);
    H5Sclose(ms);
    if (rc < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot %s rows", writing ? "write" : "read");
    return 0;
}

/* Check that data a can be added as rows of dataset d (shape s, type ft):
 * returns the row count in *k. */
static int check_rows(const h5a_request *r, const h5a_array *a, const shape_t *s, hid_t ft,
                      hid_t mt, bool type_checked, hsize_t *k, h5a_err *err)
{
    if (s->ndim == 0)
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                           "'%s' is a scalar dataset: it has no axis 0 to grow", r->path);
    shape_t as = h5a_array_shape(a);
    const hsize_t *trail = as.dims;
    bool fits = true;
    if (as.ndim == s->ndim) {
        *k = as.dims[0];
        trail = as.dims + 1;
    } else if (as.ndim == s->ndim - 1) {
        *k = 1;
    } else {
        fits = false;
    }
    for (int i = 1; fits && i < s->ndim; i++) fits = trail[i - 1] == s->dims[i];
    if (!fits) {
        char want[256], got[256];
        h5a_dims_str(want, sizeof want, s->ndim - 1, s->dims + 1);
        h5a_dims_str(got, sizeof got, as.ndim, as.dims);
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                           "data of shape %s does not fit rows of '%s' (rows have shape %s)", got,
                           r->path, want);
    }
    return type_checked ? 0 : h5a_check_type(r->path, a, ft, mt, false, err);
}

/* The whole of dataset d (shape s) read without conversion, variable-length
 * strings included, into a new buffer (h5a_buf_free). */
static int read_whole(hid_t d, hid_t ftype, const shape_t *s, void **out, size_t *nbytes,
                      h5a_err *err)
{
    size_t size = H5Tget_size(ftype);
    uint64_t n = h5a_shape_elems(s);
    if (n && size > SIZE_MAX / n)
        return h5a_err_set(err, H5A_E_TOO_LARGE, "dataset too large for memory");
    *nbytes = (size_t)n * size;
    *out = h5a_buf_alloc(*nbytes);
    if (!*out) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory for %zu bytes", *nbytes);
    if (n && H5Dread(d, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        h5a_buf_free(*out);
        *out = NULL;
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read dataset");
    }
    return 0;
}

/* A dataset made by write is not resizable: copy it once into a chunked one
 * that can grow along axis 0, attributes included. Returns 0 with the new
 * dataset in *out (the caller closes it), or an error code. */
static int make_growable(h5a_engine *e, const char *path, hid_t old, const shape_t *s,
                         comp_choice c, hid_t *out, h5a_err *err)
{
    hid_t ft = H5Dget_type(old), d = H5I_INVALID_HID;
    void *buf = NULL;
    size_t nbytes;
    int rc = h5a_check_op_bytes(e->cfg, h5a_sat_mul(h5a_shape_elems(s), H5Tget_size(ft)), err,
                                "'%s' was made by write and cannot grow: growing it means "
                                "copying it into a growable dataset first",
                                path);
    if (rc || (rc = read_whole(old, ft, s, &buf, &nbytes, err))) goto out;
    d = h5a_layout_create(e->file, e->cfg, NULL, ft, s, true, c, err);
    if (d < 0) {
        rc = err->code;
        goto out;
    }
    if ((h5a_shape_elems(s) && (rc = h5a_write_all(d, ft, buf, path, err))) ||
        (rc = h5a_copy_attrs(old, d, err)) || (rc = h5a_dset_relink(e, d, path, true, err))) {
        h5a_close_id(&d, H5Dclose);
        goto out;
    }
    *out = d;
out:
    h5a_reclaim(ft, s, buf);
    h5a_buf_free(buf);
    H5Tclose(ft);
    return rc;
}

/* append and insert: grow along axis 0, the new rows at r->index (insert)
 * or at the end. */
static int grow(h5a_engine *e, h5a_request *r, bool inserting, h5a_err *err)
{
    mp_buf *b = &r->reply;
    int kind, rc;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "'/' is the root group, not a dataset");
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_GROUP || kind == K_OTHER)
        return h5a_err_set(err, H5A_E_NOT_A_DATASET, "'%s' is a group, not a dataset", r->path);
    const h5a_array *a = &r->data;
    comp_choice c;
    if ((rc = h5a_comp_resolve(e->cfg, r, &c, err))) return rc;
    hid_t mt = h5a_mem_type(a, err);
    if (mt < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t own = H5I_INVALID_HID, ft = H5I_INVALID_HID;

    if (kind == K_NONE) {
        if (inserting) {
            rc = h5a_err_set(err, H5A_E_NOT_FOUND, "no dataset at '%s' to insert into", r->path);
            goto out;
        }
        shape_t s = h5a_array_shape(a);
        if (s.ndim == 0) s.ndim = 1, s.dims[0] = 1; /* a scalar starts a 1-D dataset */
        own = h5a_layout_create(e->file, e->cfg, r->path, mt, &s, true, c, err);
        if (own < 0) {
            rc = err->code;
            goto out;
        }
        if (h5a_shape_elems(&s) && (rc = h5a_write_all(own, mt, a->data, r->path, err))) {
            H5Ldelete(e->file, r->path, H5P_DEFAULT);
            goto out;
        }
        h5a_state_mark_dirty(e);
        h5a_put_shape_result(b, s.ndim, s.dims);
        goto out;
    }

    hid_t d = h5a_cache_open(e, r->path, err);
    if (d < 0) {
        rc = err->code;
        goto out;
    }
    shape_t s;
    hsize_t maxdims[H5A_MAX_DIMS];
    hsize_t k = 0;
    ft = H5Dget_type(d);
    if ((rc = h5a_dset_shape(d, &s, maxdims, err)) ||
        (rc = check_rows(r, a, &s, ft, mt, false, &k, err)))
        goto out;
    hsize_t len = s.dims[0], at = len;
    if (inserting) {
        int64_t idx = r->index < 0 ? r->index + (int64_t)len : r->index;
        if (idx < 0 || (uint64_t)idx > len) {
            rc = h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                             "index %lld is out of range for '%s' of length %llu",
                             (long long)r->index, r->path, (unsigned long long)len);
            goto out;
        }
        at = (hsize_t)idx;
    }
    if (k == 0) goto done;
    if (k > H5S_UNLIMITED - 1 - len) {
        rc = h5a_err_set(err, H5A_E_OUT_OF_RANGE, "'%s' of length %llu cannot grow by %llu rows",
                         r->path, (unsigned long long)len, (unsigned long long)k);
        goto out;
    }
    /* An insert moves the tail [at, len) to [at+k, len+k): it costs the
     * tail only, and the tail's size is checked and its buffer taken before
     * anything changes. */
    shape_t row = s;
    row.dims[0] = 1;
    uint64_t rowbytes = h5a_sat_mul(H5Tget_size(ft), h5a_shape_elems(&row));
    hsize_t tail = len - at;
    void *tailbuf = NULL;
    if (tail) {
        uint64_t bytes = h5a_sat_mul(rowbytes, tail);
        if ((rc = h5a_check_op_bytes(e->cfg, bytes, err,
                                     "inserting at %llu into '%s' moves the %llu rows after it",
                                     (unsigned long long)at, r->path, (unsigned long long)tail)))
            goto out;
        if (!(tailbuf = malloc(bytes))) {
            rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory moving %llu rows",
                             (unsigned long long)tail);
            goto out;
        }
    }
    if (maxdims[0] != H5S_UNLIMITED && maxdims[0] < len + k) {
        if (!c.explicit_) c = h5a_comp_of(d); /* keep what it has */
        if ((rc = make_growable(e, r->path, d, &s, c, &own, err))) goto out_tail;
        d = own;
        shape_t same;
        if ((rc = h5a_dset_shape(d, &same, maxdims, err))) goto out_tail;
    }
    shape_t ns = s;
    ns.dims[0] = len + k;
    hsize_t chunk[H5A_MAX_DIMS];
    if (h5a_cache_chunk(e, d, chunk) == s.ndim) {
        /* rows [at, len + k) are written: the new ones and a moved tail */
        uint64_t cb = H5Tget_size(ft);
        for (int i = 0; i < s.ndim; i++) cb = h5a_sat_mul(cb, chunk[i]);
        char what[400];
        snprintf(what, sizeof what, "%s %llu rows %s '%.300s'", inserting ? "inserting" : "appending",
                 (unsigned long long)k, inserting ? "into" : "to", r->path);
        if ((rc = h5a_check_grid(e->cfg, r->path, ns.ndim, ns.dims, maxdims, chunk, err)) ||
            (rc = h5a_check_chunk_work(e->cfg, h5a_rows_chunks(ns.ndim, ns.dims, chunk, at, len + k - at),
                                       cb, h5a_sat_mul(rowbytes, len + k - at), what, err)))
            goto out_tail;
    }
    if (H5Dset_extent(d, ns.dims) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot grow '%s'", r->path);
        goto out_tail;
    }
    h5a_state_mark_dirty(e);
    if (tail) {
        rc = rows_io(d, false, ft, &ns, at, tail, tailbuf, err);
        if (!rc) rc = rows_io(d, true, ft, &ns, at + k, tail, tailbuf, err);
        shape_t ts = ns;
        ts.dims[0] = tail;
        h5a_reclaim(ft, &ts, tailbuf);
    }
    if (!rc) rc = rows_io(d, true, mt, &ns, at, k, (void *)a->data, err);
    if (rc) {
        /* nobody is told it grew: back to the old length (an insert's moved
         * tail is only at risk if HDF5 failed midway through writing it) */
        H5Dset_extent(d, s.dims);
        H5Eclear2(H5E_DEFAULT);
        goto out_tail;
    }
    s = ns;
out_tail:
    free(tailbuf);
    if (rc) goto out;
done:
    h5a_put_shape_result(b, s.ndim, s.dims);
out:
    h5a_close_id(&own, H5Dclose);
    h5a_close_id(&ft, H5Tclose);
    H5Tclose(mt);
    return rc;
}

int h5a_op_APPEND(h5a_engine *e, h5a_request *r, h5a_err *err) { return grow(e, r, false, err); }
int h5a_op_INSERT(h5a_engine *e, h5a_request *r, h5a_err *err) { return grow(e, r, true, err); }

/* Consecutive appends to one resizable dataset, applied as one: a single
 * H5Dset_extent and a single H5Dwrite for all their rows. This is how a
 * stream of one-row appends from many clients gets close to the speed of
 * one large write. Anything unusual (dataset missing or not resizable, a
 * request that does not fit) leaves them to one-by-one execution, which
 * gives each request its own exact answer. */
bool h5a_append_group(h5a_engine *e, h5a_request **reqs, size_t n)
{
    h5a_err err = {0, ""};
    h5a_request *first = reqs[0];
    int kind;
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    shape_t s;
    hsize_t maxdims[H5A_MAX_DIMS], *k = NULL;
    uint8_t *staging = NULL;
    int rc = 0;
    bool answered = false;
    if (h5a_dset_kind(e, first->path, &kind, &err) || kind != K_DATASET) goto out;
    if ((d = h5a_cache_open(e, first->path, &err)) < 0) goto out;
    if (h5a_dset_shape(d, &s, maxdims, &err) || s.ndim == 0 || maxdims[0] != H5S_UNLIMITED)
        goto out;
    ft = H5Dget_type(d);
    if ((mt = h5a_mem_type(&first->data, &err)) < 0) goto out;
    if (!(k = malloc(n * sizeof *k))) goto out;
    hsize_t total = 0, chunk[H5A_MAX_DIMS];
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        /* one dtype for the whole group (h5a_engine_can_group): its type
         * is checked against the dataset's once, HDF5's type compare being
         * the dearest part of the check */
        if (check_rows(reqs[i], &reqs[i]->data, &s, ft, mt, i > 0, &k[i], &err)) goto out;
        total += k[i];
        bytes += reqs[i]->data.nbytes;
    }
    /* past a limit, each request gets its own answer (some may still fit) */
    if (total > H5S_UNLIMITED - 1 - s.dims[0]) goto out;
    shape_t grown = s;
    grown.dims[0] += total;
    if (h5a_cache_chunk(e, d, chunk) != s.ndim) goto out;
    uint64_t cb = H5Tget_size(ft);
    for (int i = 0; i < s.ndim; i++) cb = h5a_sat_mul(cb, chunk[i]);
    if (h5a_check_grid(e->cfg, first->path, s.ndim, grown.dims, maxdims, chunk, &err) ||
        h5a_check_chunk_work(e->cfg, h5a_rows_chunks(s.ndim, grown.dims, chunk, s.dims[0], total),
                             cb, bytes, "the appends", &err))
        goto out;
    if (!(staging = malloc(bytes ? bytes : 1))) goto out;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(staging + off, reqs[i]->data.data, reqs[i]->data.nbytes);
        off += reqs[i]->data.nbytes;
    }
    hsize_t len = s.dims[0];
    shape_t ns = s;
    ns.dims[0] = len + total;
    h5a_state_mark_dirty(e);
    if (H5Dset_extent(d, ns.dims) < 0)
        rc = h5a_err_h5(&err, H5A_E_HDF5_ERROR, "cannot grow '%s'", first->path);
    else
        rc = rows_io(d, true, mt, &ns, len, total, staging, &err);
    if (rc) {
        /* leave the dataset as it was: nobody was told it grew */
        H5Dset_extent(d, s.dims);
        H5Eclear2(H5E_DEFAULT);
    }
    for (size_t i = 0; i < n; i++) {
        size_t mark = h5a_reply_begin(reqs[i]);
        if (!rc) {
            len += k[i];
            s.dims[0] = len;
            h5a_put_shape_result(&reqs[i]->reply, s.ndim, s.dims);
        }
        h5a_reply_finish(reqs[i], mark, rc, &err);
    }
    answered = true;
out:
    if (!answered) H5Eclear2(H5E_DEFAULT);
    free(staging);
    free(k);
    h5a_close_id(&ft, H5Tclose);
    h5a_close_id(&mt, H5Tclose);
    return answered;
}

int h5a_op_DELETE(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "the root group '/' cannot be deleted");
    /* the link itself, not what it points to: a dangling soft link can go too */
    h5a_found f;
    int rc = h5a_path_find(e->file, r->path, false, &f, err);
    if (rc) return rc;
    if (f.missing) return h5a_err_set(err, H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    h5a_cache_clear(e);
    if (H5Ldelete(e->file, r->path, H5P_DEFAULT) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot delete '%s'", r->path);
    h5a_state_mark_dirty(e);
    mp_put_nil(&r->reply);
    return 0;
}
