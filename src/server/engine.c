/* Every HDF5 call of the server. Runs on the storage thread only: HDF5 is
 * built thread-safe here, but one global lock means a second thread calling
 * it would only wait, so we keep it to one and never block the event loop. */
#include "server/engine.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/engine_int.h"
#include "server/h5types.h"
#include "server/lzf_filter.h"

#define CACHE_SLOTS 64 /* open datasets kept; each may hold a partly filled chunk */
#define ERRLEN H5A_ENGINE_ERRLEN

struct h5a_engine {
    hid_t file;
    const h5a_config *cfg;
    bool dirty;
    /* Open datasets by path, so a stream of appends does not reopen its
     * dataset each time. Any change to the tree's shape empties it. */
    struct {
        char *path;
        hid_t dset;
    } cache[CACHE_SLOTS];
    unsigned cache_next;
};

enum { K_NONE, K_GROUP, K_DATASET, K_OTHER };

/* ---- errors ---- */

struct walk {
    char *buf;
    size_t len, used;
    int n;
};

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ud)
{
    struct walk *w = ud;
    if (w->n >= 2 || w->used >= w->len) return 0;
    int k = snprintf(w->buf + w->used, w->len - w->used, "%s%s (%s)", w->n ? "; " : ": ",
                     e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
    if (k > 0) w->used += (size_t)k < w->len - w->used ? (size_t)k : w->len - w->used - 1;
    w->n++;
    (void)n;
    return 0;
}

/* Format the message, append the innermost entries of HDF5's error stack
 * (the specific reason), clear the stack, return code. */
static int h5fail_v(char *err, int code, const char *fmt, va_list ap)
{
    int k = vsnprintf(err, ERRLEN, fmt, ap);
    size_t used = k < 0 ? 0 : (size_t)k >= ERRLEN ? ERRLEN - 1 : (size_t)k;
    struct walk w = {err, ERRLEN, used, 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return code;
}

static int h5fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int h5fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = h5fail_v(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int h5a_engine_h5fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = h5fail_v(err, code, fmt, ap);
    va_end(ap);
    return code;
}

#define FAIL(code, ...) h5a_fail(err, ERRLEN, code, __VA_ARGS__)

/* ---- small helpers ---- */

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

static void cache_clear(h5a_engine *e)
{
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        if (e->cache[i].path) {
            H5Dclose(e->cache[i].dset);
            free(e->cache[i].path);
            e->cache[i].path = NULL;
        }
    }
}

static int cache_find(const h5a_engine *e, const char *path)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (e->cache[i].path && strcmp(e->cache[i].path, path) == 0) return i;
    return -1;
}

/* The dataset at path, owned by the cache (do not close it). */
static hid_t dataset_open(h5a_engine *e, const char *path, char *err)
{
    int slot = cache_find(e, path);
    if (slot >= 0) return e->cache[slot].dset;
    hid_t d = H5Dopen2(e->file, path, H5P_DEFAULT);
    if (d < 0) return h5fail(err, H5A_E_HDF5_ERROR, "cannot open dataset '%s'", path), -1;
    char *copy = strdup(path);
    if (!copy) return H5Dclose(d), FAIL(H5A_E_INTERNAL, "out of memory"), -1;
    slot = (int)(e->cache_next++ % CACHE_SLOTS);
    if (e->cache[slot].path) {
        H5Dclose(e->cache[slot].dset);
        free(e->cache[slot].path);
    }
    e->cache[slot].path = copy;
    e->cache[slot].dset = d;
    return d;
}

/* What is at path: K_NONE, K_GROUP, K_DATASET or K_OTHER. A dataset (or
 * anything not a group) standing where a parent group is needed is
 * NOT_A_GROUP. */
static int path_kind(h5a_engine *e, const char *path, int *kind, char *err)
{
    *kind = K_GROUP;
    if (strcmp(path, "/") == 0) return 0;
    /* An open dataset in the cache is still a dataset at that path: every
     * operation that removes or replaces objects empties the cache. This
     * saves a lookup per path component on every append of a stream. */
    if (cache_find(e, path) >= 0) return *kind = K_DATASET, 0;
    size_t n = strlen(path);
    char *buf = strdup(path);
    if (!buf) return FAIL(H5A_E_INTERNAL, "out of memory");
    int rc = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/') continue;
        buf[i] = '\0';
        htri_t ex = H5Lexists(e->file, buf, H5P_DEFAULT);
        if (ex < 0) {
            rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot look up '%s'", buf);
            break;
        }
        if (ex == 0) {
            *kind = K_NONE;
            break;
        }
        H5O_info_t info;
        if (H5Oget_info_by_name2(e->file, buf, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
            /* a soft or external link to nothing: NOT_FOUND, saying where it leads */
            rc = H5Oexists_by_name(e->file, buf, H5P_DEFAULT) > 0
                     ? h5fail(err, H5A_E_HDF5_ERROR, "'%s' is a link that cannot be followed", buf)
                     : h5a_meta_dangling(e->file, buf, path, err);
            break;
        }
        if (i < n && info.type != H5O_TYPE_GROUP) {
            rc = FAIL(H5A_E_NOT_A_GROUP, "'%s' is a %s, not a group, so '%s' cannot exist", buf,
                      info.type == H5O_TYPE_DATASET ? "dataset" : "non-group object", path);
            break;
        }
        if (i == n)
            *kind = info.type == H5O_TYPE_GROUP     ? K_GROUP
                    : info.type == H5O_TYPE_DATASET ? K_DATASET
                                                    : K_OTHER;
        buf[i] = '/';
    }
    free(buf);
    return rc;
}

static hid_t lcpl_intermediate(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

static void shape_str(char *buf, size_t len, int ndim, const hsize_t *dims)
{
    uint64_t d[H5A_MAX_DIMS];
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    h5a_shape_str(ndim, d, buf, len);
}

static void put_shape_result(mp_buf *b, int ndim, const hsize_t *dims)
{
    mp_put_map_header(b, 1);
    mp_put_cstr(b, "shape");
    mp_put_array_header(b, (size_t)ndim);
    for (int i = 0; i < ndim; i++) mp_put_uint(b, dims[i]);
}

/* ---- compression and chunking ---- */

typedef struct {
    h5a_comp comp; /* COMP_NONE, COMP_GZIP or COMP_LZF, never DEFAULT */
    int level;
    bool explicit_; /* the request named it (not the server default) */
} comp_choice;

static comp_choice resolve_comp(const h5a_engine *e, const h5a_request *r)
{
    comp_choice c = {r->compression, r->level < 0 ? 4 : r->level, r->compression != COMP_DEFAULT};
    if (c.comp == COMP_DEFAULT) c.comp = e->cfg->use_compression ? COMP_GZIP : COMP_NONE;
    return c;
}

static int set_filter(hid_t dcpl, comp_choice c)
{
    if (c.comp == COMP_GZIP) return H5Pset_deflate(dcpl, (unsigned)c.level) < 0 ? -1 : 0;
    if (c.comp == COMP_LZF) return h5a_lzf_set(dcpl) < 0 ? -1 : 0;
    return 0;
}

/* h5py's guess_chunk: aim for a chunk between 8 KiB and 1 MiB that grows
 * with the dataset, halving axes in turn until it fits. */
static void guess_chunk(int ndim, const hsize_t *dims, size_t itemsize, hsize_t *chunk)
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

/* ---- dataset creation ---- */

typedef struct {
    int ndim;
    hsize_t dims[H5A_MAX_DIMS];
} shape_t;

static shape_t array_shape(const h5a_array *a)
{
    shape_t s = {a->ndim, {0}};
    for (int i = 0; i < a->ndim; i++) s.dims[i] = a->dims[i];
    return s;
}

static bool shape_eq(const shape_t *a, const shape_t *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static uint64_t shape_elems(const shape_t *s)
{
    uint64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->dims[i];
    return n;
}

/* A new dataset of type, shape; resizable along axis 0 when `growable`.
 * Linked at path (parents created) or anonymous when path is NULL. */
static hid_t dataset_create(h5a_engine *e, const char *path, hid_t type, const shape_t *s,
                            bool growable, comp_choice c, char *err)
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
    bool chunked = growable || (c.comp != COMP_NONE && s->ndim > 0 && shape_elems(s) > 0);
    if (chunked) {
        if (growable) append_chunk(s->ndim, s->dims, itemsize, chunk);
        else guess_chunk(s->ndim, s->dims, itemsize, chunk);
        if (H5Pset_chunk(dcpl, s->ndim, chunk) < 0 || set_filter(dcpl, c) < 0) {
            h5fail(err, H5A_E_HDF5_ERROR, "cannot set up chunks or compression for '%s'",
                   path ? path : "(new dataset)");
            goto out;
        }
    }
    if (path) {
        lcpl = lcpl_intermediate();
        d = H5Dcreate2(e->file, path, type, space, lcpl, dcpl, H5P_DEFAULT);
    } else {
        d = H5Dcreate_anon(e->file, type, space, dcpl, H5P_DEFAULT);
    }
    if (d < 0) h5fail(err, H5A_E_HDF5_ERROR, "cannot create dataset '%s'", path ? path : "(new)");
out:
    close_id(&space, H5Sclose);
    close_id(&dcpl, H5Pclose);
    close_id(&lcpl, H5Pclose);
    return d;
}

/* Put the (anonymous) dataset d at path in place of whatever is there. */
static int dataset_relink(h5a_engine *e, hid_t d, const char *path, bool exists, char *err)
{
    cache_clear(e);
    if (exists && H5Ldelete(e->file, path, H5P_DEFAULT) < 0)
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot replace '%s'", path);
    hid_t lcpl = lcpl_intermediate();
    herr_t rc = H5Olink(d, e->file, path, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (rc < 0) return h5fail(err, H5A_E_HDF5_ERROR, "cannot link dataset at '%s'", path);
    return 0;
}

/* Memory type for the request's data. */
static hid_t mem_type(const h5a_array *a, char *err)
{
    hid_t t = h5t_from_dtype(a->type, err, ERRLEN);
    return t;
}

static int write_all(hid_t d, hid_t mtype, const void *buf, const char *path, char *err)
{
    if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot write '%s'", path);
    return 0;
}

/* Rows [start, start+n) of dataset d (shape s) from/to buf laid out as
 * mtype. */
static int rows_io(hid_t d, bool writing, hid_t mtype, const shape_t *s, hsize_t start, hsize_t n,
                   void *buf, char *err)
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
    if (rc < 0) return h5fail(err, H5A_E_HDF5_ERROR, "cannot %s rows", writing ? "write" : "read");
    return 0;
}

static int get_shape(hid_t d, shape_t *s, hsize_t *maxdims, char *err)
{
    hid_t sp = H5Dget_space(d);
    int n = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (n < 0 || n > H5A_MAX_DIMS) {
        if (sp >= 0) H5Sclose(sp);
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot read the dataset's shape");
    }
    s->ndim = n;
    hsize_t mx[H5A_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, s->dims, maxdims ? maxdims : mx);
    if (H5Sget_simple_extent_type(sp) == H5S_NULL) {
        H5Sclose(sp);
        return FAIL(H5A_E_UNSUPPORTED_TYPE, "the dataset has a null dataspace (no elements)");
    }
    H5Sclose(sp);
    return 0;
}

/* Bytes of one element as read without conversion, and whole-dataset reads
 * that also handle variable-length strings. */
static int read_whole(hid_t d, hid_t ftype, const shape_t *s, void **out, size_t *nbytes,
                      char *err)
{
    size_t size = H5Tget_size(ftype);
    uint64_t n = shape_elems(s);
    if (n && size > SIZE_MAX / n) return FAIL(H5A_E_TOO_LARGE, "dataset too large for memory");
    *nbytes = (size_t)n * size;
    *out = h5a_buf_alloc(*nbytes);
    if (!*out) return FAIL(H5A_E_INTERNAL, "out of memory for %zu bytes", *nbytes);
    if (n && H5Dread(d, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        h5a_buf_free(*out);
        *out = NULL;
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot read dataset");
    }
    return 0;
}

static bool is_vlen_string(hid_t t);

/* Free what HDF5 allocated inside a buffer it read: variable-length strings
 * (which H5Tdetect_class does not count as H5T_VLEN) and sequences. */
static void reclaim(hid_t type, const shape_t *s, void *buf)
{
    if (!buf || (H5Tdetect_class(type, H5T_VLEN) <= 0 && !is_vlen_string(type))) return;
    hid_t sp = s->ndim ? H5Screate_simple(s->ndim, s->dims, NULL) : H5Screate(H5S_SCALAR);
    H5Dvlen_reclaim(type, sp, H5P_DEFAULT, buf);
    H5Sclose(sp);
}

static bool is_vlen_string(hid_t t)
{
    return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
}

/* H5Tequal, plus the character set of strings, which H5Tequal ignores for
 * variable-length ones: UTF-8 written over an ASCII dataset in place would
 * read back as bytes. (HDF5 does not convert between the two either.) */
static bool same_type(hid_t a, hid_t b)
{
    if (H5Tequal(a, b) <= 0) return false;
    return H5Tget_class(a) != H5T_STRING || H5Tget_cset(a) == H5Tget_cset(b);
}

/* ---- operations: each returns 0 (result written to b) or an error ---- */

static int op_create_group(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int kind, rc;
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_DATASET || kind == K_OTHER)
        return FAIL(H5A_E_EXISTS, "'%s' exists and is not a group", r->path);
    if (kind == K_NONE) {
        hid_t lcpl = lcpl_intermediate();
        hid_t g = H5Gcreate2(e->file, r->path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Pclose(lcpl);
        if (g < 0) return h5fail(err, H5A_E_HDF5_ERROR, "cannot create group '%s'", r->path);
        H5Gclose(g);
        e->dirty = true;
    }
    mp_put_nil(b);
    return 0;
}

/* The compression dataset d was created with (gzip, lzf or none; other
 * filters are not ours to name). */
static comp_choice dataset_compression(hid_t d)
{
    comp_choice c = {COMP_NONE, 4, false};
    hid_t dcpl = H5Dget_create_plist(d);
    for (int i = 0, n = H5Pget_nfilters(dcpl); i < n; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        if (f == H5Z_FILTER_DEFLATE) c.comp = COMP_GZIP, c.level = ncd ? (int)cd[0] : 4;
        else if (f == H5A_LZF_FILTER) c.comp = COMP_LZF;
    }
    H5Pclose(dcpl);
    return c;
}

/* Does the existing dataset d already have the compression c asks for? */
static bool same_compression(hid_t d, comp_choice c)
{
    comp_choice have = dataset_compression(d);
    return have.comp == c.comp && (have.comp != COMP_GZIP || have.level == c.level);
}

static int op_write(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int kind, rc;
    if (strcmp(r->path, "/") == 0) return FAIL(H5A_E_BAD_PATH, "cannot write a dataset at the root group '/'");
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_GROUP)
        return FAIL(H5A_E_NOT_A_DATASET, "'%s' is a group; delete it before writing a dataset there",
                    r->path);
    if (kind == K_OTHER) return FAIL(H5A_E_NOT_A_DATASET, "'%s' is not a dataset", r->path);

    const h5a_array *a = &r->data;
    shape_t s = array_shape(a);
    comp_choice c = resolve_comp(e, r);
    if (s.ndim == 0 && c.comp != COMP_NONE) {
        if (c.explicit_)
            return FAIL(H5A_E_BAD_REQUEST,
                        "a scalar dataset cannot be compressed (HDF5 filters need chunked "
                        "layout); write it with compression 'none' or as a 1-element array");
        c.comp = COMP_NONE; /* the server default does not apply to scalars */
    }
    if (shape_elems(&s) == 0) c.comp = COMP_NONE; /* nothing to compress, no chunk fits */

    hid_t mtype = mem_type(a, err);
    if (mtype < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t d = H5I_INVALID_HID;
    rc = 0;
    if (kind == K_DATASET) {
        /* same shape, type (and compression, when one was asked for):
         * overwrite in place, which keeps the file from growing */
        hid_t old = dataset_open(e, r->path, err);
        if (old < 0) {
            rc = H5A_E_HDF5_ERROR;
            goto out;
        }
        shape_t os;
        hsize_t omax[H5A_MAX_DIMS];
        hid_t ot = H5Dget_type(old);
        bool same = get_shape(old, &os, omax, err) == 0 && shape_eq(&os, &s) &&
                    same_type(ot, mtype) && (!c.explicit_ || same_compression(old, c));
        H5Tclose(ot);
        H5Eclear2(H5E_DEFAULT);
        if (same) {
            rc = write_all(old, mtype, a->data, r->path, err);
            e->dirty = true;
            if (!rc) put_shape_result(b, s.ndim, s.dims);
            goto out;
        }
        /* build the new dataset aside, then swap it in: a failure leaves
         * the old one untouched */
        d = dataset_create(e, NULL, mtype, &s, false, c, err);
        if (d < 0 || (rc = write_all(d, mtype, a->data, r->path, err)) ||
            (rc = dataset_relink(e, d, r->path, true, err))) {
            if (!rc) rc = H5A_E_HDF5_ERROR;
            goto out;
        }
    } else {
        d = dataset_create(e, r->path, mtype, &s, false, c, err);
        if (d < 0) {
            rc = H5A_E_HDF5_ERROR;
            goto out;
        }
        if ((rc = write_all(d, mtype, a->data, r->path, err))) {
            /* do not leave a half-made dataset behind */
            H5Ldelete(e->file, r->path, H5P_DEFAULT);
            goto out;
        }
    }
    e->dirty = true;
    put_shape_result(b, s.ndim, s.dims);
out:
    close_id(&d, H5Dclose);
    H5Tclose(mtype);
    return rc;
}

static int op_read(h5a_engine *e, h5a_request *r, h5a_request *req, char *err)
{
    int kind, rc;
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_NONE) return FAIL(H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    if (kind != K_DATASET) return FAIL(H5A_E_NOT_A_DATASET, "'%s' is a group, not a dataset", r->path);
    hid_t d = dataset_open(e, r->path, err);
    if (d < 0) return H5A_E_HDF5_ERROR;
    shape_t s;
    if ((rc = get_shape(d, &s, NULL, err))) return rc;
    hid_t ft = H5Dget_type(d);
    dtype *dt = NULL;
    void *buf = NULL;
    size_t nbytes = 0;
    if ((rc = h5t_to_dtype(ft, &dt, err, ERRLEN))) goto out;
    uint64_t n = shape_elems(&s);
    if (dt->kind != DT_VLSTR && n && H5Tget_size(ft) > (0xFFFFFFFFull - 65536) / n) {
        rc = FAIL(H5A_E_TOO_LARGE,
                  "dataset '%s' holds %llu elements of %zu bytes: more than one reply frame "
                  "(4 GiB) can carry",
                  r->path, (unsigned long long)n, H5Tget_size(ft));
        goto out;
    }
    if ((rc = read_whole(d, ft, &s, &buf, &nbytes, err))) goto out;
    h5a_array a = {.type = dt, .ndim = s.ndim, .data = buf, .nbytes = nbytes};
    for (int i = 0; i < s.ndim; i++) a.dims[i] = s.dims[i];
    bool follows = false;
    if ((rc = h5a_array_encode(&req->reply, &a, &follows, err, ERRLEN))) goto out;
    if (follows) {
        req->reply_data = buf;
        req->reply_data_len = nbytes;
        buf = NULL;
    }
out:
    reclaim(ft, &s, buf);
    h5a_buf_free(buf);
    dtype_free(dt);
    H5Tclose(ft);
    return rc;
}

/* Check that data a can be added as rows of dataset d (shape s, type ft):
 * returns the row count in *k. */
static int check_rows(const h5a_request *r, const h5a_array *a, const shape_t *s, hid_t ft,
                      hid_t mt, hsize_t *k, char *err)
{
    if (s->ndim == 0)
        return FAIL(H5A_E_SHAPE_MISMATCH, "'%s' is a scalar dataset: it has no axis 0 to grow",
                    r->path);
    shape_t as = array_shape(a);
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
        shape_str(want, sizeof want, s->ndim - 1, s->dims + 1);
        shape_str(got, sizeof got, as.ndim, as.dims);
        return FAIL(H5A_E_SHAPE_MISMATCH,
                    "data of shape %s does not fit rows of '%s' (rows have shape %s)", got,
                    r->path, want);
    }
    bool ok = same_type(ft, mt) || (h5t_is_numeric(ft) && h5t_is_numeric(mt));
    if (!ok) {
        dtype *fd = NULL;
        char fs[64] = "?", ms[64] = "?";
        if (h5t_to_dtype(ft, &fd, NULL, 0) == 0) dtype_str(fd, fs, sizeof fs);
        dtype_str(a->type, ms, sizeof ms);
        dtype_free(fd);
        H5Eclear2(H5E_DEFAULT);
        return FAIL(H5A_E_TYPE_MISMATCH, "data of type %s cannot be stored in '%s' of type %s",
                    ms[0] ? ms : "(struct/string)", r->path, fs[0] ? fs : "(struct/string)");
    }
    return 0;
}

/* A dataset made by write is not resizable: copy it once into a chunked one
 * that can grow along axis 0, attributes included. */
static hid_t make_growable(h5a_engine *e, const char *path, hid_t old, const shape_t *s,
                           comp_choice c, char *err)
{
    hid_t ft = H5Dget_type(old), d = H5I_INVALID_HID;
    void *buf = NULL;
    size_t nbytes;
    if (read_whole(old, ft, s, &buf, &nbytes, err)) goto out;
    d = dataset_create(e, NULL, ft, s, true, c, err);
    if (d < 0) goto out;
    if ((shape_elems(s) && write_all(d, ft, buf, path, err)) ||
        h5a_meta_copy_attrs(old, d, err) || dataset_relink(e, d, path, true, err)) {
        close_id(&d, H5Dclose);
        goto out;
    }
out:
    reclaim(ft, s, buf);
    h5a_buf_free(buf);
    H5Tclose(ft);
    return d;
}

/* append and insert: grow along axis 0, the new rows at `at` (-1 = end). */
static int op_grow(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int kind, rc;
    if (strcmp(r->path, "/") == 0) return FAIL(H5A_E_BAD_PATH, "'/' is the root group, not a dataset");
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    bool inserting = r->op == OP_INSERT;
    if (kind == K_GROUP || kind == K_OTHER)
        return FAIL(H5A_E_NOT_A_DATASET, "'%s' is a group, not a dataset", r->path);
    const h5a_array *a = &r->data;
    comp_choice c = resolve_comp(e, r);
    hid_t mt = mem_type(a, err);
    if (mt < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t own = H5I_INVALID_HID, ft = H5I_INVALID_HID;

    if (kind == K_NONE) {
        if (inserting) {
            rc = FAIL(H5A_E_NOT_FOUND, "no dataset at '%s' to insert into", r->path);
            goto out;
        }
        shape_t s = array_shape(a);
        if (s.ndim == 0) s.ndim = 1, s.dims[0] = 1; /* a scalar starts a 1-D dataset */
        own = dataset_create(e, r->path, mt, &s, true, c, err);
        if (own < 0) {
            rc = H5A_E_HDF5_ERROR;
            goto out;
        }
        if (shape_elems(&s) && (rc = write_all(own, mt, a->data, r->path, err))) {
            H5Ldelete(e->file, r->path, H5P_DEFAULT);
            goto out;
        }
        e->dirty = true;
        put_shape_result(b, s.ndim, s.dims);
        goto out;
    }

    hid_t d = dataset_open(e, r->path, err);
    if (d < 0) {
        rc = H5A_E_HDF5_ERROR;
        goto out;
    }
    shape_t s;
    hsize_t maxdims[H5A_MAX_DIMS];
    hsize_t k = 0;
    ft = H5Dget_type(d);
    if ((rc = get_shape(d, &s, maxdims, err)) || (rc = check_rows(r, a, &s, ft, mt, &k, err)))
        goto out;
    hsize_t len = s.dims[0], at = len;
    if (inserting) {
        int64_t idx = r->index < 0 ? r->index + (int64_t)len : r->index;
        if (idx < 0 || (uint64_t)idx > len) {
            rc = FAIL(H5A_E_OUT_OF_RANGE, "index %lld is out of range for '%s' of length %llu",
                      (long long)r->index, r->path, (unsigned long long)len);
            goto out;
        }
        at = (hsize_t)idx;
    }
    if (k == 0) goto done;
    if (maxdims[0] != H5S_UNLIMITED && maxdims[0] < len + k) {
        if (!c.explicit_) c = dataset_compression(d); /* keep what it has */
        own = make_growable(e, r->path, d, &s, c, err);
        if (own < 0) {
            rc = H5A_E_HDF5_ERROR;
            goto out;
        }
        d = own;
    }
    shape_t ns = s;
    ns.dims[0] = len + k;
    if (H5Dset_extent(d, ns.dims) < 0) {
        rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot grow '%s'", r->path);
        goto out;
    }
    e->dirty = true;
    if (at < len) {
        /* move the tail [at, len) to [at+k, len+k): costs the tail only */
        shape_t row = s;
        row.dims[0] = 1;
        size_t rowbytes = H5Tget_size(ft) * (size_t)shape_elems(&row);
        hsize_t tail = len - at;
        void *buf = malloc(rowbytes * tail);
        if (!buf) {
            rc = FAIL(H5A_E_INTERNAL, "out of memory moving %llu rows", (unsigned long long)tail);
            goto out;
        }
        rc = rows_io(d, false, ft, &ns, at, tail, buf, err);
        if (!rc) rc = rows_io(d, true, ft, &ns, at + k, tail, buf, err);
        shape_t ts = ns;
        ts.dims[0] = tail;
        reclaim(ft, &ts, buf);
        free(buf);
        if (rc) goto out;
    }
    if ((rc = rows_io(d, true, mt, &ns, at, k, (void *)a->data, err))) goto out;
    s = ns;
done:
    put_shape_result(b, s.ndim, s.dims);
out:
    close_id(&own, H5Dclose);
    close_id(&ft, H5Tclose);
    H5Tclose(mt);
    return rc;
}

static int op_delete(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int kind, rc;
    if (strcmp(r->path, "/") == 0) return FAIL(H5A_E_BAD_PATH, "the root group '/' cannot be deleted");
    /* the link itself, not what it points to: a dangling soft link can go too */
    if ((rc = h5a_meta_link_kind(e, r->path, &kind, err))) return rc;
    if (kind == H5A_LINK_NONE) return FAIL(H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    cache_clear(e);
    if (H5Ldelete(e->file, r->path, H5P_DEFAULT) < 0)
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot delete '%s'", r->path);
    e->dirty = true;
    mp_put_nil(b);
    return 0;
}

static int run(h5a_engine *e, h5a_request *r, char *err)
{
    mp_buf *b = &r->reply;
    switch (r->op) {
    case OP_PING: mp_put_cstr(b, "pong"); return 0;
    case OP_CREATE_GROUP: return op_create_group(e, r, b, err);
    case OP_WRITE: return op_write(e, r, b, err);
    case OP_READ: return op_read(e, r, r, err);
    case OP_APPEND:
    case OP_INSERT: return op_grow(e, r, b, err);
    case OP_DELETE: return op_delete(e, r, b, err);
    case OP_SET_ATTR: case OP_GET_ATTR: case OP_LIST_ATTRS: case OP_DELETE_ATTR:
    case OP_LIST: case OP_WALK: case OP_INFO: case OP_EXISTS:
    case OP_CREATE_LINK: case OP_MOVE: return h5a_meta_execute(e, r, err);
    default: return FAIL(H5A_E_INTERNAL, "no such op");
    }
}

/* Reply frames: begin writes the length placeholder, the id and an "ok"
 * header and returns where "ok" starts; finish rewrites from there into an
 * error when rc says so, and fills in the length. */
static size_t reply_begin(h5a_request *r)
{
    mp_buf *b = &r->reply;
    b->len = 0;
    mp_put_raw(b, "\0\0\0\0", 4);
    mp_put_map_header(b, 3);
    mp_put_cstr(b, "id");
    if (r->has_id) mp_put_uint(b, r->id);
    else mp_put_nil(b);
    size_t mark = b->len;
    mp_put_cstr(b, "ok");
    mp_put_bool(b, true);
    mp_put_cstr(b, "result");
    return mark;
}

static void reply_finish(h5a_request *r, size_t mark, int rc, char *err)
{
    mp_buf *b = &r->reply;
    if (!rc && b->oom) rc = FAIL(H5A_E_INTERNAL, "out of memory building the reply");
    if (rc) {
        h5a_buf_free(r->reply_data);
        r->reply_data = NULL;
        r->reply_data_len = 0;
        b->len = mark;
        b->oom = false;
        mp_put_cstr(b, "ok");
        mp_put_bool(b, false);
        mp_put_cstr(b, "error");
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "code");
        mp_put_cstr(b, h5a_strerror_code(rc));
        mp_put_cstr(b, "message");
        mp_put_cstr(b, err[0] ? err : "unknown error");
    }
    r->reply_ok = rc == 0;
    /* b->oom here means not even the error fit; the loop drops the connection */
    uint64_t n = b->len - 4 + r->reply_data_len;
    if (!b->oom) {
        b->data[0] = (uint8_t)(n >> 24);
        b->data[1] = (uint8_t)(n >> 16);
        b->data[2] = (uint8_t)(n >> 8);
        b->data[3] = (uint8_t)n;
    }
}

void h5a_engine_execute(h5a_engine *e, h5a_request *r)
{
    char err[ERRLEN] = "";
    size_t mark = reply_begin(r);
    int rc;
    if (r->err_code) {
        rc = r->err_code;
        snprintf(err, sizeof err, "%s", r->err_msg);
    } else {
        rc = run(e, r, err);
    }
    reply_finish(r, mark, rc, err);
}

bool h5a_engine_can_group(const h5a_request *a, const h5a_request *b)
{
    if (a->op != OP_APPEND || b->op != OP_APPEND || a->err_code || b->err_code ||
        !a->has_data || !b->has_data || strcmp(a->path, b->path) != 0)
        return false;
    if (a->data.ndim != b->data.ndim || !dtype_equal(a->data.type, b->data.type)) return false;
    for (int i = 1; i < a->data.ndim; i++)
        if (a->data.dims[i] != b->data.dims[i]) return false;
    return true;
}

/* Consecutive appends to one resizable dataset, applied as one: a single
 * H5Dset_extent and a single H5Dwrite for all their rows. This is how a
 * stream of one-row appends from many clients gets close to the speed of
 * one large write. Anything unusual (dataset missing or not resizable, a
 * request that does not fit) falls back to one-by-one execution, which
 * gives each request its own exact answer. */
void h5a_engine_execute_appends(h5a_engine *e, h5a_request **reqs, size_t n)
{
    char err[ERRLEN] = "";
    h5a_request *first = reqs[0];
    int kind;
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    shape_t s;
    hsize_t maxdims[H5A_MAX_DIMS], *k = NULL;
    uint8_t *staging = NULL;
    int rc = 0;
    if (n == 1 || path_kind(e, first->path, &kind, err) || kind != K_DATASET) goto one_by_one;
    if ((d = dataset_open(e, first->path, err)) < 0) goto one_by_one;
    if (get_shape(d, &s, maxdims, err) || s.ndim == 0 || maxdims[0] != H5S_UNLIMITED)
        goto one_by_one;
    ft = H5Dget_type(d);
    if ((mt = mem_type(&first->data, err)) < 0) goto one_by_one;
    if (!(k = malloc(n * sizeof *k))) goto one_by_one;
    hsize_t total = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_rows(reqs[i], &reqs[i]->data, &s, ft, mt, &k[i], err)) goto one_by_one;
        total += k[i];
        bytes += reqs[i]->data.nbytes;
    }
    if (!(staging = malloc(bytes ? bytes : 1))) goto one_by_one;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(staging + off, reqs[i]->data.data, reqs[i]->data.nbytes);
        off += reqs[i]->data.nbytes;
    }
    hsize_t len = s.dims[0];
    shape_t ns = s;
    ns.dims[0] = len + total;
    e->dirty = true;
    if (H5Dset_extent(d, ns.dims) < 0)
        rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot grow '%s'", first->path);
    else
        rc = rows_io(d, true, mt, &ns, len, total, staging, err);
    if (rc) {
        /* leave the dataset as it was: nobody was told it grew */
        shape_t old = s;
        H5Dset_extent(d, old.dims);
        H5Eclear2(H5E_DEFAULT);
    }
    for (size_t i = 0; i < n; i++) {
        size_t mark = reply_begin(reqs[i]);
        if (!rc) {
            len += k[i];
            s.dims[0] = len;
            put_shape_result(&reqs[i]->reply, s.ndim, s.dims);
        }
        reply_finish(reqs[i], mark, rc, err);
    }
    goto out;
one_by_one:
    H5Eclear2(H5E_DEFAULT);
    for (size_t i = 0; i < n; i++) h5a_engine_execute(e, reqs[i]);
out:
    free(staging);
    free(k);
    close_id(&ft, H5Tclose);
    close_id(&mt, H5Tclose);
}

/* ---- for engine_meta.c (engine_int.h) ---- */

hid_t h5a_engine_file(const h5a_engine *e) { return e->file; }
void h5a_engine_mark_dirty(h5a_engine *e) { e->dirty = true; }
void h5a_engine_forget_paths(h5a_engine *e) { cache_clear(e); }

void h5a_engine_flush(h5a_engine *e)
{
    if (!e->dirty) return;
    if (H5Fflush(e->file, H5F_SCOPE_GLOBAL) < 0) {
        char err[ERRLEN];
        h5fail(err, H5A_E_HDF5_ERROR, "flush failed");
        fprintf(stderr, "hdf5-async-server: %s\n", err);
    }
    e->dirty = false;
}

int h5a_engine_open(h5a_engine **out, const h5a_config *cfg, char *errout, size_t errlen)
{
    char err[ERRLEN];
    /* per thread: HDF5 must not print its error stack; we turn it into replies */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (h5a_lzf_register() < 0) {
        h5fail(err, H5A_E_HDF5_ERROR, "cannot register the LZF filter");
        snprintf(errout, errlen, "%s", err);
        return -1;
    }
    h5a_engine *e = calloc(1, sizeof *e);
    if (!e) return snprintf(errout, errlen, "out of memory"), -1;
    e->cfg = cfg;
    if (access(cfg->file_path, F_OK) == 0) {
        e->file = H5Fopen(cfg->file_path, H5F_ACC_RDWR, H5P_DEFAULT);
    } else {
        /* New files: the 1.10 format (extensible-array chunk indexes make
         * appends cheap) and free space tracked across restarts so that
         * deleted datasets' space is reused. */
        hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 1, 1);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
        e->file = H5Fcreate(cfg->file_path, H5F_ACC_EXCL, fcpl, fapl);
        H5Pclose(fcpl);
        H5Pclose(fapl);
    }
    if (e->file < 0) {
        h5fail(err, H5A_E_HDF5_ERROR, "cannot open HDF5 file '%s'", cfg->file_path);
        snprintf(errout, errlen, "%s", err);
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void h5a_engine_close(h5a_engine *e)
{
    if (!e) return;
    cache_clear(e);
    H5Fflush(e->file, H5F_SCOPE_GLOBAL);
    if (H5Fclose(e->file) < 0) {
        char err[ERRLEN];
        h5fail(err, H5A_E_HDF5_ERROR, "closing the file failed");
        fprintf(stderr, "hdf5-async-server: %s\n", err);
    }
    free(e);
}
