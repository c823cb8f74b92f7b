/* The data operations on a selection of a dataset: read and write_slice.
 * A selection is resolved against the dataset's current shape with NumPy's
 * rules into one HDF5 hyperslab, so HDF5 touches only the chunks it covers;
 * what those chunks cost beyond the selected bytes is checked first
 * (max_op_bytes). */
#include <stdlib.h>
#include <string.h>

#include "server/bigbuf.h"
#include "server/engine_dset.h"
#include "server/engine_layout.h"
#include "server/engine_ops.h"
#include "server/h5types.h"

/* A request's selection resolved against a dataset's shape: the hyperslab
 * of the file (one start/stride/count per axis; an index is a count of 1)
 * and the shape NumPy gives the result (indexed axes dropped). */
typedef struct {
    bool whole; /* no selection, or one that names every element in order */
    hsize_t start[H5A_MAX_DIMS], stride[H5A_MAX_DIMS], count[H5A_MAX_DIMS];
    shape_t out;
} sel_t;

/* NumPy's rules for basic indexing (PySlice_AdjustIndices for step > 0):
 * negative bounds count from the end, bounds outside the axis are clamped,
 * an index outside it is an error. */
static int sel_resolve(const h5a_request *r, const shape_t *s, sel_t *q, h5a_err *err)
{
    const h5a_selection *sel = r->sel;
    q->whole = true;
    q->out.ndim = 0;
    int given = 0, n = sel ? sel->n : 0;
    for (int i = 0; i < n; i++) given += sel->item[i].kind != SEL_ELLIPSIS;
    if (given > s->ndim) {
        char sh[256];
        h5a_dims_str(sh, sizeof sh, s->ndim, s->dims);
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                           "the selection indexes %d axes but '%s' has %d (shape %s)", given,
                           r->path, s->ndim, sh);
    }
    int axis = 0;
    for (int i = 0; i <= n; i++) {
        if (i == n || sel->item[i].kind == SEL_ELLIPSIS) {
            /* the ellipsis stands for the axes no item names, the end of
             * the list for those after the last item: whole axes */
            int whole_axes = i == n ? s->ndim - axis : s->ndim - given;
            for (int k = 0; k < whole_axes; k++, axis++) {
                q->start[axis] = 0;
                q->stride[axis] = 1;
                q->count[axis] = s->dims[axis];
                q->out.dims[q->out.ndim++] = s->dims[axis];
            }
            continue;
        }
        const h5a_sel_item *it = &sel->item[i];
        int64_t len = (int64_t)s->dims[axis];
        if (it->kind == SEL_INDEX) {
            int64_t idx = it->start < 0 ? it->start + len : it->start;
            if (idx < 0 || idx >= len)
                return h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                                   "index %lld is out of range for axis %d of '%s' with size %lld",
                                   (long long)it->start, axis, r->path, (long long)len);
            q->start[axis] = (hsize_t)idx;
            q->stride[axis] = 1;
            q->count[axis] = 1;
            q->whole = false;
        } else {
            int64_t a = it->has_start ? it->start : 0, b = it->has_stop ? it->stop : len;
            if (a < 0) a = a + len < 0 ? 0 : a + len;
            else if (a > len) a = len;
            if (b < 0) b = b + len < 0 ? 0 : b + len;
            else if (b > len) b = len;
            uint64_t cnt = b > a ? (uint64_t)(b - a - 1) / (uint64_t)it->step + 1 : 0;
            q->start[axis] = (hsize_t)a;
            q->stride[axis] = cnt > 1 ? (hsize_t)it->step : 1;
            q->count[axis] = cnt;
            q->out.dims[q->out.ndim++] = cnt;
            if (cnt != (uint64_t)len) q->whole = false;
        }
        axis++;
    }
    return 0;
}

/* The file and memory dataspaces of a selection (H5S_ALL for the whole
 * dataset). Only the selected elements are read or written: HDF5 touches
 * the chunks they are in and nothing else. */
static int sel_spaces(hid_t d, const sel_t *q, hid_t *fs, hid_t *ms, h5a_err *err)
{
    *fs = *ms = H5S_ALL;
    if (q->whole) return 0;
    *fs = H5Dget_space(d);
    if (*fs < 0 || H5Sselect_hyperslab(*fs, H5S_SELECT_SET, q->start, q->stride, q->count,
                                       NULL) < 0) {
        if (*fs >= 0) H5Sclose(*fs);
        *fs = H5S_ALL;
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot select the elements");
    }
    *ms = q->out.ndim ? H5Screate_simple(q->out.ndim, q->out.dims, NULL) : H5Screate(H5S_SCALAR);
    return 0;
}

static void sel_spaces_close(hid_t fs, hid_t ms)
{
    if (fs != H5S_ALL) H5Sclose(fs);
    if (ms != H5S_ALL) H5Sclose(ms);
}

/* HDF5 reads (and, writing, rewrites) every chunk a selection touches
 * whole, so a strided selection of a few elements across many chunks costs
 * all of them: the touched chunks' bytes beyond the selected bytes count
 * against max_op_bytes. (A chunk itself is at most max_op_bytes, so a
 * selection inside one chunk always passes.) */
static int check_sel_chunks(const h5a_engine *e, hid_t d, const char *path, const shape_t *s,
                            const sel_t *q, size_t itemsize, h5a_err *err)
{
    hsize_t chunk[H5A_MAX_DIMS];
    if (s->ndim == 0 || h5a_cache_chunk(e, d, chunk) != s->ndim) return 0;
    uint64_t nchunks = 1, chunk_bytes = itemsize;
    for (int i = 0; i < s->ndim; i++) {
        if (q->count[i] == 0) return 0;
        hsize_t first = q->start[i] / chunk[i];
        hsize_t last = (q->start[i] + (q->count[i] - 1) * q->stride[i]) / chunk[i];
        uint64_t n = q->stride[i] >= chunk[i] ? q->count[i] : last - first + 1;
        nchunks = h5a_sat_mul(nchunks, n);
        chunk_bytes = h5a_sat_mul(chunk_bytes, chunk[i]);
    }
    uint64_t selected = h5a_sat_mul(h5a_shape_elems(&q->out), itemsize);
    char what[400];
    snprintf(what, sizeof what, "the selection of '%.300s'", path);
    return h5a_check_chunk_work(e->cfg, nchunks, chunk_bytes, selected, what, err);
}

/* Large whole reads stream (request.h, may_stream): the reply leaves with
 * its header, and the data follows slab by slab as HDF5 reads it, so that
 * the socket and the client work while the file is read rather than after
 * (a 64 MiB read from the page cache takes ~5 ms before its first byte
 * otherwise). Slabs are whole rows of the first axis, whole chunks of it
 * when chunked, so no chunk is read twice. Not for types with variable-
 * length parts (their bytes are pointers until converted). */
#define STREAM_MIN_BYTES ((size_t)8 << 20)
#define STREAM_SLAB_BYTES ((size_t)4 << 20)

static bool can_stream(const h5a_request *r, const sel_t *q, hid_t ft, const dtype *dt,
                       size_t nbytes)
{
    return r->stream_cb && q->whole && q->out.ndim >= 1 && q->out.dims[0] >= 2 &&
           nbytes >= STREAM_MIN_BYTES && dt->kind != DT_VLSTR && H5Tdetect_class(ft, H5T_VLEN) == 0;
}

/* r's reply is finished (header only, its data following) and handed over;
 * then buf is filled slab by slab, each published in r->stream_ready.
 * storage.c sets r->stream_state once it is done with r. A slab that
 * cannot be read cannot become an error reply any more (the header is on
 * its way): r->stream_failed, and the loop closes the connection instead
 * of sending the rest, so the client never takes the partial data. */
static void read_streamed(const h5a_engine *e, h5a_request *r, hid_t d, hid_t ft, const sel_t *q,
                          uint8_t *buf, size_t nbytes)
{
    const shape_t *out = &q->out;
    size_t row = nbytes / out->dims[0];
    hsize_t step = row >= STREAM_SLAB_BYTES ? 1 : STREAM_SLAB_BYTES / row, chunk[H5A_MAX_DIMS];
    if (h5a_cache_chunk(e, d, chunk) == out->ndim && chunk[0])
        step = step <= chunk[0] ? chunk[0] : step / chunk[0] * chunk[0];
    char path[256];
    snprintf(path, sizeof path, "%s", r->path); /* r's fields are the loop's to read now */
    void (*cb)(h5a_request *, bool, void *) = r->stream_cb;
    void *ud = r->stream_ud;
    const _Atomic bool *gone = r->gone;
    h5a_reply_finish(r, r->reply_mark, 0, &(h5a_err){0, ""});
    r->streamed = true;
    cb(r, true, ud);
    hid_t fs = H5Dget_space(d), ms = H5I_INVALID_HID;
    hsize_t start[H5A_MAX_DIMS] = {0}, count[H5A_MAX_DIMS];
    for (int i = 0; i < out->ndim; i++) count[i] = out->dims[i];
    for (hsize_t at = 0; at < out->dims[0]; at += count[0]) {
        if (gone && atomic_load_explicit(gone, memory_order_relaxed)) {
            r->stream_failed = true; /* nobody reads it any more */
            break;
        }
        start[0] = at;
        count[0] = out->dims[0] - at < step ? out->dims[0] - at : step;
        if (ms >= 0) H5Sclose(ms);
        ms = H5Screate_simple(out->ndim, count, NULL);
        if (fs < 0 || ms < 0 ||
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(d, ft, ms, fs, H5P_DEFAULT, buf + at * row) < 0) {
            fprintf(stderr, "hdf5-async-server: cannot read rows %llu.. of '%s' while its reply "
                            "was being sent: closing that connection\n",
                    (unsigned long long)at, path);
            r->stream_failed = true;
            break;
        }
        atomic_store_explicit(&r->stream_ready, (size_t)(at + count[0]) * row,
                              memory_order_release);
        cb(r, false, ud);
    }
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
}

int h5a_op_READ(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    if ((rc = h5a_dset_open_existing(e, r, &d, err))) return rc;
    shape_t s;
    sel_t q;
    if ((rc = h5a_dset_shape(d, &s, NULL, err)) || (rc = sel_resolve(r, &s, &q, err))) return rc;
    hid_t ft = H5Dget_type(d), fs = H5S_ALL, ms = H5S_ALL;
    dtype *dt = NULL;
    void *buf = NULL;
    size_t nbytes = 0, size = H5Tget_size(ft);
    if ((rc = h5t_to_dtype(ft, &dt, err->msg, sizeof err->msg))) {
        h5a_err_code(err, rc);
        goto out;
    }
    uint64_t n = h5a_shape_elems(&q.out);
    if (dt->kind != DT_VLSTR && n && size > (0xFFFFFFFFull - 65536) / n) {
        rc = h5a_err_set(err, H5A_E_TOO_LARGE,
                         "%s '%s' holds %llu elements of %zu bytes: more than one reply frame "
                         "(4 GiB) can carry; read it in parts with 'selection'",
                         q.whole ? "dataset" : "the selection of", r->path, (unsigned long long)n,
                         size);
        goto out;
    }
    if (n && size > SIZE_MAX / n) {
        rc = h5a_err_set(err, H5A_E_TOO_LARGE, "dataset too large for memory");
        goto out;
    }
    if ((rc = check_sel_chunks(e, d, r->path, &s, &q, size, err))) goto out;
    nbytes = (size_t)n * size;
    if (!(buf = h5a_buf_alloc(nbytes))) {
        rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory for %zu bytes", nbytes);
        goto out;
    }
    /* a streamed read encodes its header first and reads after handing it over */
    bool stream = can_stream(r, &q, ft, dt, nbytes);
    if (n && !stream &&
        ((rc = sel_spaces(d, &q, &fs, &ms, err)) ||
         (H5Dread(d, ft, ms, fs, H5P_DEFAULT, buf) < 0 &&
          (rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read '%s'", r->path))))) {
        h5a_buf_free(buf); /* nothing in it to reclaim */
        buf = NULL;
        goto out;
    }
    h5a_array a = {.type = dt, .ndim = q.out.ndim, .data = buf, .nbytes = nbytes};
    for (int i = 0; i < q.out.ndim; i++) a.dims[i] = q.out.dims[i];
    bool follows = false;
    if ((rc = h5a_array_encode(&r->reply, &a, &follows, err->msg, sizeof err->msg))) {
        h5a_err_code(err, rc);
        goto out;
    }
    if (stream && !follows) { /* (an n-d array's bytes always follow its header) */
        rc = h5a_err_set(err, H5A_E_INTERNAL, "no data to stream");
        goto out;
    }
    if (follows) {
        r->reply_data = buf;
        r->reply_data_len = nbytes;
        buf = NULL;
    }
    if (stream) read_streamed(e, r, d, ft, &q, r->reply_data, nbytes);
out:
    sel_spaces_close(fs, ms);
    h5a_reclaim(ft, &q.out, buf);
    h5a_buf_free(buf);
    dtype_free(dt);
    H5Tclose(ft);
    return rc;
}

/* write_slice: data into a selection of an existing dataset, converted as
 * HDF5 converts (numbers); a scalar is written to every selected element. */
int h5a_op_WRITE_SLICE(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    if ((rc = h5a_dset_open_existing(e, r, &d, err))) {
        if (rc == H5A_E_NOT_FOUND)
            h5a_err_set(err, rc,
                        "no dataset at '%s': write_slice writes into an existing dataset (make "
                        "it with write or create_dataset)",
                        r->path);
        return rc;
    }
    const h5a_array *a = &r->data;
    shape_t s, as = h5a_array_shape(a);
    sel_t q;
    if ((rc = h5a_dset_shape(d, &s, NULL, err)) || (rc = sel_resolve(r, &s, &q, err))) return rc;
    bool broadcast = as.ndim == 0 && !h5a_shape_eq(&as, &q.out);
    if (!broadcast && !h5a_shape_eq(&as, &q.out)) {
        char want[256], got[256];
        h5a_dims_str(want, sizeof want, q.out.ndim, q.out.dims);
        h5a_dims_str(got, sizeof got, as.ndim, as.dims);
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                           "data of shape %s does not fit the selection of '%s', of shape %s "
                           "(only a single value is broadcast)",
                           got, r->path, want);
    }
    hid_t mt = h5a_mem_type(a, err);
    if (mt < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t ft = H5Dget_type(d), fs = H5S_ALL, ms = H5S_ALL;
    uint64_t n = h5a_shape_elems(&q.out);
    void *rep = NULL;
    const void *src = a->data;
    if ((rc = h5a_check_type(r->path, a, ft, mt, true, err)) || n == 0) goto out;
    if (broadcast &&
        (rc = h5a_check_op_bytes(e->cfg, h5a_sat_mul(n, a->type->itemsize), err,
                                 "writing one value to the %llu elements selected in '%s' "
                                 "repeats it in memory",
                                 (unsigned long long)n, r->path)))
        goto out;
    if ((rc = check_sel_chunks(e, d, r->path, &s, &q, H5Tget_size(ft), err))) goto out;
    if (broadcast) {
        /* HDF5 writes equal element counts only: repeat the value (for
         * strings, the pointer to it) */
        size_t isz = a->type->itemsize;
        if (n > SIZE_MAX / isz || !(rep = malloc((size_t)n * isz))) {
            rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory repeating a value %llu times",
                             (unsigned long long)n);
            goto out;
        }
        for (uint64_t i = 0; i < n; i++) memcpy((char *)rep + i * isz, a->data, isz);
        src = rep;
    }
    if ((rc = sel_spaces(d, &q, &fs, &ms, err))) goto out;
    if (H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, src) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot write the selection of '%s'", r->path);
        goto out;
    }
    h5a_state_mark_dirty(e);
out:
    if (!rc) h5a_put_shape_result(&r->reply, s.ndim, s.dims);
    sel_spaces_close(fs, ms);
    free(rep);
    H5Tclose(ft);
    H5Tclose(mt);
    return rc;
}
