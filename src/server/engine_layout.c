/* Dataset layout and compression choice, and the limits on the work of one
 * request (engine_layout.h). What h5py would choose, so that a dataset made
 * through the server and one made by h5py compare equal. */
#include "server/engine_layout.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/engine_path.h"
#include "server/engine_state.h"
#include "server/lzf_filter.h"

/* ---- shapes ---- */

shape_t h5a_array_shape(const h5a_array *a)
{
    shape_t s = {a->ndim, {0}};
    for (int i = 0; i < a->ndim; i++) s.dims[i] = a->dims[i];
    return s;
}

bool h5a_shape_eq(const shape_t *a, const shape_t *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

uint64_t h5a_sat_mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

uint64_t h5a_shape_elems(const shape_t *s)
{
    uint64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n = h5a_sat_mul(n, s->dims[i]);
    return n;
}

void h5a_dims_str(char *buf, size_t len, int ndim, const hsize_t *dims)
{
    uint64_t d[H5A_MAX_DIMS] = {0};
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    h5a_shape_str(ndim, d, buf, len);
}

/* ---- compression ---- */

static H5Z_filter_t plugin_filter(h5a_comp c)
{
    return c == COMP_LZ4 ? FILTER_LZ4 : c == COMP_BZIP2 ? FILTER_BZIP2
         : c == COMP_BITSHUFFLE ? FILTER_BITSHUFFLE : -1;
}

int h5a_comp_resolve(const h5a_config *cfg, const h5a_request *r, comp_choice *c, h5a_err *err)
{
    *c = (comp_choice){r->compression, r->level, r->compression != COMP_DEFAULT, false};
    if (c->comp == COMP_DEFAULT) c->comp = cfg->use_compression ? COMP_GZIP : COMP_NONE;
    if (c->comp == COMP_GZIP && c->level < 0) c->level = 4;
    H5Z_filter_t f = plugin_filter(c->comp);
    if (f >= 0 && H5Zfilter_avail(f) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return h5a_err_set(err, H5A_E_BAD_REQUEST,
                           "compression '%s' is not available on this server: its libhdf5 finds "
                           "no plugin for filter %d (on Debian: the hdf5-filter-plugin package)",
                           h5a_comp_name(c->comp), (int)f);
    }
    return 0;
}

int h5a_comp_set(hid_t dcpl, comp_choice c)
{
    /* shuffle first, as h5py orders them: it only helps a compressor after it */
    if (c.shuffle && H5Pset_shuffle(dcpl) < 0) return -1;
    if (c.comp == COMP_GZIP) return H5Pset_deflate(dcpl, (unsigned)c.level) < 0 ? -1 : 0;
    if (c.comp == COMP_LZF) return h5a_lzf_set(dcpl) < 0 ? -1 : 0;
    /* plugins are optional filters, as h5py sets them: a chunk they cannot
     * shrink is stored as it is */
    if (c.comp == COMP_LZ4 || c.comp == COMP_BZIP2) {
        unsigned cd = (unsigned)(c.level >= 0 ? c.level : c.comp == COMP_BZIP2 ? 9 : 0);
        return H5Pset_filter(dcpl, plugin_filter(c.comp), H5Z_FLAG_OPTIONAL, 1, &cd) < 0 ? -1 : 0;
    }
    if (c.comp == COMP_BITSHUFFLE) {
        /* hdf5plugin's Bitshuffle(): slots 0-2 are the filter's own, then
         * block size 0 (automatic) and 2 (LZ4 after the bit shuffle) */
        const unsigned cd[5] = {0, 0, 0, 0, 2};
        return H5Pset_filter(dcpl, FILTER_BITSHUFFLE, H5Z_FLAG_OPTIONAL, 5, cd) < 0 ? -1 : 0;
    }
    return 0;
}

comp_choice h5a_comp_of(hid_t d)
{
    comp_choice c = {COMP_NONE, -1, false, false};
    hid_t dcpl = H5Dget_create_plist(d);
    for (int i = 0, n = H5Pget_nfilters(dcpl); i < n; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        if (f == H5Z_FILTER_DEFLATE) c.comp = COMP_GZIP, c.level = ncd ? (int)cd[0] : 4;
        else if (f == H5A_LZF_FILTER) c.comp = COMP_LZF;
        else if (f == H5Z_FILTER_SHUFFLE) c.shuffle = true;
        else if (f == FILTER_LZ4) c.comp = COMP_LZ4, c.level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BZIP2) c.comp = COMP_BZIP2, c.level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BITSHUFFLE) c.comp = COMP_BITSHUFFLE;
    }
    H5Pclose(dcpl);
    return c;
}

bool h5a_comp_same(hid_t d, comp_choice c)
{
    comp_choice have = h5a_comp_of(d);
    return have.comp == c.comp && (have.comp != COMP_GZIP || have.level == c.level);
}

/* ---- chunks ---- */

void h5a_chunk_guess(int ndim, const hsize_t *dims, size_t itemsize, hsize_t *chunk)
{
    const double base = 16 * 1024, cmin = 8 * 1024, cmax = 1024 * 1024;
    double c[H5A_MAX_DIMS], total = (double)itemsize;
    for (int i = 0; i < ndim; i++) {
        c[i] = dims[i] ? (double)dims[i] : 1024;
        total *= c[i];
    }
    double target = base * pow(2.0, log10(total / (1024.0 * 1024.0)));
    if (target > cmax) target = cmax;
    if (target < cmin) target = cmin;
    for (int idx = 0;; idx++) {
        double bytes = (double)itemsize, elems = 1;
        for (int i = 0; i < ndim; i++) bytes *= c[i], elems *= c[i];
        if ((bytes < target || (bytes - target) / target < 0.5) && bytes < cmax) break;
        if (elems <= 1) break;
        int a = idx % ndim;
        c[a] = ceil(c[a] / 2.0);
    }
    for (int i = 0; i < ndim; i++) chunk[i] = (hsize_t)c[i];
}

/* Chunks for a dataset that grows along axis 0: sized from one row, never
 * from how many rows the first append happened to carry, about 256 KiB. */
static void append_chunk(int ndim, const hsize_t *dims, size_t itemsize, hsize_t *chunk)
{
    const double target = 256 * 1024, cmax = 1024 * 1024;
    double row = (double)itemsize;
    for (int i = 1; i < ndim; i++) {
        chunk[i] = dims[i] ? dims[i] : 1;
        row *= (double)chunk[i];
    }
    /* rows too large for one chunk: split the trailing axes too */
    for (int idx = 0; row > cmax && ndim > 1; idx++) {
        int a = 1 + idx % (ndim - 1);
        if (chunk[a] > 1) {
            row /= (double)chunk[a];
            chunk[a] = (chunk[a] + 1) / 2;
            row *= (double)chunk[a];
        } else if (idx > 4 * ndim) {
            break;
        }
    }
    double rows = floor(target / row);
    chunk[0] = rows < 1 ? 1 : (hsize_t)rows;
}

/* ---- limits on the work of one request ----
 * HDF5's cost follows numbers a client controls, not only the bytes it
 * sends: shrinking a dataset visits every chunk position of the old extent,
 * allocated or not (~100 ns each: a resize to 2^63 rows and back froze the
 * storage thread, and with it every client); a fixed maxshape gets an index
 * of every chunk position up front (HDF5 fails past 2^32, at the flush); an
 * insert moves the tail; turning a write-made dataset into a growable one
 * copies it; a contiguous dataset with a fill value is filled whole at its
 * first write; a broadcast repeats one value over the selection; and a
 * selection reads (and, written, rewrites) every chunk it touches whole.
 * Each is refused before HDF5 is called, by two keys (docs/protocol.md,
 * "Limits"): max_chunks, the chunk positions a dataset's shape may span,
 * and max_op_bytes, the bytes an operation may move, fill or touch beyond
 * the data it carries or selects. The operations that do those things call
 * the checks below. */

/* Chunk positions of a dataset of shape dims: the grid HDF5's chunk index
 * may have to cover, and a shrink may have to visit. A fixed axis counts at
 * its maxshape (a fixed-size index is made for all of it); an empty axis as
 * one position, to stay on the safe side. Saturates. */
static uint64_t chunk_grid(int ndim, const hsize_t *dims, const hsize_t *maxdims,
                           const hsize_t *chunk)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        hsize_t ext = dims[i];
        if (maxdims && maxdims[i] != H5S_UNLIMITED && maxdims[i] > ext) ext = maxdims[i];
        uint64_t c = chunk[i] ? ext / chunk[i] + (ext % chunk[i] != 0) : ext;
        n = h5a_sat_mul(n, c ? c : 1);
    }
    return n;
}

int h5a_check_grid(const h5a_config *cfg, const char *path, int ndim, const hsize_t *dims,
                   const hsize_t *maxdims, const hsize_t *chunk, h5a_err *err)
{
    uint64_t g = chunk_grid(ndim, dims, maxdims, chunk);
    if (g <= cfg->max_chunks) return 0;
    char sh[256], ch[256];
    h5a_dims_str(sh, sizeof sh, ndim, dims);
    h5a_dims_str(ch, sizeof ch, ndim, chunk);
    return h5a_err_set(err, H5A_E_OUT_OF_RANGE,
                       "'%s' of shape %s in chunks of %s would span %s%llu chunk positions%s, "
                       "more than max_chunks (%llu): HDF5 visits every chunk position when a "
                       "dataset shrinks, allocated or not; use larger chunks or a smaller shape",
                       path, sh, ch, g == UINT64_MAX ? "over " : "", (unsigned long long)g,
                       maxdims ? " (fixed axes counted at their maxshape)" : "",
                       (unsigned long long)cfg->max_chunks);
}

int h5a_check_op_bytes(const h5a_config *cfg, uint64_t bytes, h5a_err *err, const char *fmt, ...)
{
    if (bytes <= cfg->max_op_bytes) return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = H5A_E_TOO_LARGE;
    return h5a_err_append(err, ": %s%llu bytes, more than max_op_bytes (%llu)",
                          bytes == UINT64_MAX ? "over " : "", (unsigned long long)bytes,
                          (unsigned long long)cfg->max_op_bytes);
}

/* ---- creation ---- */

hid_t h5a_layout_create(hid_t file, const h5a_config *cfg, const char *path, hid_t type,
                        const shape_t *s, bool growable, comp_choice c, h5a_err *err)
{
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, d = -1;
    hsize_t maxdims[H5A_MAX_DIMS], chunk[H5A_MAX_DIMS];
    if (s->ndim == 0) {
        space = H5Screate(H5S_SCALAR);
    } else {
        memcpy(maxdims, s->dims, sizeof(hsize_t) * (size_t)s->ndim);
        if (growable) maxdims[0] = H5S_UNLIMITED;
        space = H5Screate_simple(s->ndim, s->dims, maxdims);
    }
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    size_t itemsize = H5Tget_size(type);
    bool chunked = growable || (c.comp != COMP_NONE && s->ndim > 0 && h5a_shape_elems(s) > 0);
    if (chunked) {
        if (growable) append_chunk(s->ndim, s->dims, itemsize, chunk);
        else h5a_chunk_guess(s->ndim, s->dims, itemsize, chunk);
        if (h5a_check_grid(cfg, path ? path : "(new dataset)", s->ndim, s->dims,
                           growable ? NULL : maxdims, chunk, err))
            goto out;
        if (H5Pset_chunk(dcpl, s->ndim, chunk) < 0 || h5a_comp_set(dcpl, c) < 0) {
            h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot set up chunks or compression for '%s'",
                       path ? path : "(new dataset)");
            goto out;
        }
    }
    if (path) {
        lcpl = h5a_path_lcpl();
        d = H5Dcreate2(file, path, type, space, lcpl, dcpl, H5P_DEFAULT);
    } else {
        d = H5Dcreate_anon(file, type, space, dcpl, H5P_DEFAULT);
    }
    if (d < 0)
        h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create dataset '%s'", path ? path : "(new)");
out:
    h5a_close_id(&space, H5Sclose);
    h5a_close_id(&dcpl, H5Pclose);
    h5a_close_id(&lcpl, H5Pclose);
    return d;
}
