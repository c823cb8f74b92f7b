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
#include <sys/stat.h>
#include <unistd.h>

#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/engine_int.h"
#include "server/h5types.h"
#include "server/lzf_filter.h"
#include "server/wal.h"

#define CACHE_SLOTS 64 /* open datasets kept; each may hold a partly filled chunk */
#define ERRLEN H5A_ENGINE_ERRLEN

struct h5a_engine {
    hid_t file;
    const h5a_config *cfg;
    bool dirty;    /* changed since the last commit (any level) */
    bool unsynced; /* changed since the last fsync commit */
    /* Open datasets by path, so a stream of appends does not reopen its
     * dataset each time. Any change to the tree's shape empties it. */
    struct {
        char *path;
        hid_t dset;
        int chunk_ndim; /* 0: not chunked */
        hsize_t chunk[H5A_MAX_DIMS];
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
    hid_t dcpl = H5Dget_create_plist(d);
    e->cache[slot].chunk_ndim = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED
                                    ? H5Pget_chunk(dcpl, H5A_MAX_DIMS, e->cache[slot].chunk)
                                    : 0;
    if (e->cache[slot].chunk_ndim < 0) e->cache[slot].chunk_ndim = 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return d;
}

/* The chunk shape of dataset d into chunk: its rank, or 0 when d is not
 * chunked. Cached datasets answer from the cache (appends ask every time). */
static int dataset_chunk(const h5a_engine *e, hid_t d, hsize_t *chunk)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (e->cache[i].path && e->cache[i].dset == d) {
            memcpy(chunk, e->cache[i].chunk, sizeof(hsize_t) * (size_t)e->cache[i].chunk_ndim);
            return e->cache[i].chunk_ndim;
        }
    hid_t dcpl = H5Dget_create_plist(d);
    int n = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5A_MAX_DIMS, chunk)
                                                            : 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return n < 0 ? 0 : n;
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
    uint64_t d[H5A_MAX_DIMS] = {0};
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
    h5a_comp comp; /* never COMP_DEFAULT */
    int level;     /* the filter's option (compression_opts), -1 = its default */
    bool explicit_; /* the request named it (not the server default) */
    bool shuffle;   /* HDF5's byte shuffle before the compressor (create_dataset) */
} comp_choice;

/* FILTER_LZ4, FILTER_BZIP2, FILTER_BITSHUFFLE: engine_int.h (info names them too) */

static H5Z_filter_t plugin_filter(h5a_comp c)
{
    return c == COMP_LZ4 ? FILTER_LZ4 : c == COMP_BZIP2 ? FILTER_BZIP2
         : c == COMP_BITSHUFFLE ? FILTER_BITSHUFFLE : -1;
}

/* The compression a request asks for, the server default filled in. A
 * plugin the server's libhdf5 cannot load is refused up front, even where
 * it would have been ignored (an append to an existing dataset): the
 * client asked for something this server cannot do. */
static int resolve_comp(const h5a_engine *e, const h5a_request *r, comp_choice *c, char *err)
{
    *c = (comp_choice){r->compression, r->level, r->compression != COMP_DEFAULT, false};
    if (c->comp == COMP_DEFAULT) c->comp = e->cfg->use_compression ? COMP_GZIP : COMP_NONE;
    if (c->comp == COMP_GZIP && c->level < 0) c->level = 4;
    H5Z_filter_t f = plugin_filter(c->comp);
    if (f >= 0 && H5Zfilter_avail(f) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return FAIL(H5A_E_BAD_REQUEST,
                    "compression '%s' is not available on this server: its libhdf5 finds no "
                    "plugin for filter %d (on Debian: the hdf5-filter-plugin package)",
                    h5a_comp_name(c->comp), (int)f);
    }
    return 0;
}

static int set_filter(hid_t dcpl, comp_choice c)
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

static uint64_t sat_mul(uint64_t a, uint64_t b);

/* Elements of shape s (saturates at UINT64_MAX: a file may hold shapes
 * whose product does not fit). */
static uint64_t shape_elems(const shape_t *s)
{
    uint64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n = sat_mul(n, s->dims[i]);
    return n;
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
 * the data it carries or selects. */

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

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
        n = sat_mul(n, c ? c : 1);
    }
    return n;
}

static int check_grid(const h5a_engine *e, const char *path, int ndim, const hsize_t *dims,
                      const hsize_t *maxdims, const hsize_t *chunk, char *err)
{
    uint64_t g = chunk_grid(ndim, dims, maxdims, chunk);
    if (g <= e->cfg->max_chunks) return 0;
    char sh[256], ch[256];
    shape_str(sh, sizeof sh, ndim, dims);
    shape_str(ch, sizeof ch, ndim, chunk);
    return FAIL(H5A_E_OUT_OF_RANGE,
                "'%s' of shape %s in chunks of %s would span %s%llu chunk positions%s, more "
                "than max_chunks (%llu): HDF5 visits every chunk position when a dataset "
                "shrinks, allocated or not; use larger chunks or a smaller shape",
                path, sh, ch, g == UINT64_MAX ? "over " : "", (unsigned long long)g,
                maxdims ? " (fixed axes counted at their maxshape)" : "",
                (unsigned long long)e->cfg->max_chunks);
}

/* An operation's extra bytes (moved, copied, filled) against max_op_bytes. */
static int check_op_bytes(const h5a_engine *e, uint64_t bytes, char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int check_op_bytes(const h5a_engine *e, uint64_t bytes, char *err, const char *fmt, ...)
{
    if (bytes <= e->cfg->max_op_bytes) return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ERRLEN, fmt, ap);
    va_end(ap);
    size_t n = strlen(err);
    snprintf(err + n, ERRLEN - n, ": %s%llu bytes, more than max_op_bytes (%llu)",
             bytes == UINT64_MAX ? "over " : "", (unsigned long long)bytes,
             (unsigned long long)e->cfg->max_op_bytes);
    return H5A_E_TOO_LARGE;
}

/* A new dataset of type, shape; resizable along axis 0 when `growable`.
 * Linked at path (parents created) or anonymous when path is NULL. On
 * failure returns -1 with the error code in *code and err filled. */
static hid_t dataset_create(h5a_engine *e, const char *path, hid_t type, const shape_t *s,
                            bool growable, comp_choice c, int *code, char *err)
{
    *code = H5A_E_HDF5_ERROR;
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
        int rc = check_grid(e, path ? path : "(new dataset)", s->ndim, s->dims,
                            growable ? NULL : maxdims, chunk, err);
        if (rc) {
            *code = rc;
            goto out;
        }
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
    else *code = 0;
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
    comp_choice c;
    if ((rc = resolve_comp(e, r, &c, err))) return rc;
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
        int code;
        d = dataset_create(e, NULL, mtype, &s, false, c, &code, err);
        if (d < 0 || (rc = write_all(d, mtype, a->data, r->path, err)) ||
            (rc = dataset_relink(e, d, r->path, true, err))) {
            if (!rc) rc = code;
            goto out;
        }
    } else {
        d = dataset_create(e, r->path, mtype, &s, false, c, &rc, err);
        if (d < 0) goto out;
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

/* ---- selections (read, write_slice) ---- */

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
static int sel_resolve(const h5a_request *r, const shape_t *s, sel_t *q, char *err)
{
    const h5a_selection *sel = r->sel;
    q->whole = true;
    q->out.ndim = 0;
    int given = 0, n = sel ? sel->n : 0;
    for (int i = 0; i < n; i++) given += sel->item[i].kind != SEL_ELLIPSIS;
    if (given > s->ndim) {
        char sh[256];
        shape_str(sh, sizeof sh, s->ndim, s->dims);
        return FAIL(H5A_E_SHAPE_MISMATCH,
                    "the selection indexes %d axes but '%s' has %d (shape %s)", given, r->path,
                    s->ndim, sh);
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
                return FAIL(H5A_E_OUT_OF_RANGE,
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

static uint64_t sel_elems(const sel_t *q) { return shape_elems(&q->out); }

/* The file and memory dataspaces of a selection (H5S_ALL for the whole
 * dataset). Only the selected elements are read or written: HDF5 touches
 * the chunks they are in and nothing else. */
static int sel_spaces(hid_t d, const sel_t *q, hid_t *fs, hid_t *ms, char *err)
{
    *fs = *ms = H5S_ALL;
    if (q->whole) return 0;
    *fs = H5Dget_space(d);
    if (*fs < 0 || H5Sselect_hyperslab(*fs, H5S_SELECT_SET, q->start, q->stride, q->count,
                                       NULL) < 0) {
        if (*fs >= 0) H5Sclose(*fs);
        *fs = H5S_ALL;
        return h5fail(err, H5A_E_HDF5_ERROR, "cannot select the elements");
    }
    *ms = q->out.ndim ? H5Screate_simple(q->out.ndim, q->out.dims, NULL) : H5Screate(H5S_SCALAR);
    return 0;
}

/* HDF5 reads (and, writing, rewrites) every chunk a selection touches
 * whole, so a strided selection of a few elements across many chunks costs
 * all of them: the touched chunks' bytes beyond the selected bytes count
 * against max_op_bytes. (A chunk itself is at most max_op_bytes, so a
 * selection inside one chunk always passes.) */
static int check_sel_chunks(const h5a_engine *e, hid_t d, const char *path, const shape_t *s,
                            const sel_t *q, size_t itemsize, char *err)
{
    hsize_t chunk[H5A_MAX_DIMS];
    if (q->whole || s->ndim == 0 || dataset_chunk(e, d, chunk) != s->ndim) return 0;
    uint64_t touched = itemsize;
    for (int i = 0; i < s->ndim; i++) {
        if (q->count[i] == 0) return 0;
        hsize_t first = q->start[i] / chunk[i];
        hsize_t last = (q->start[i] + (q->count[i] - 1) * q->stride[i]) / chunk[i];
        uint64_t n = q->stride[i] >= chunk[i] ? q->count[i] : last - first + 1;
        touched = sat_mul(touched, sat_mul(n, chunk[i]));
    }
    uint64_t selected = sat_mul(shape_elems(&q->out), itemsize);
    if (touched <= selected) return 0;
    return check_op_bytes(e, touched - selected, err,
                          "the selection of '%s' touches %llu bytes of chunks for %llu bytes "
                          "selected (HDF5 reads each touched chunk whole; select in parts, or "
                          "along the chunks); the excess is",
                          path, (unsigned long long)touched, (unsigned long long)selected);
}

static void sel_spaces_close(hid_t fs, hid_t ms)
{
    if (fs != H5S_ALL) H5Sclose(fs);
    if (ms != H5S_ALL) H5Sclose(ms);
}

static bool is_fixed_string(hid_t t)
{
    return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
}

/* Can data of memory type mt go into a dataset of file type ft? The same
 * type, or numbers into numbers (HDF5 converts them). With `strings`, also
 * fixed-length strings of another length (padded or cut, as NumPy and h5py
 * assign them): for elements written into place (write_slice, fill values),
 * not for rows added (append keeps its stricter rule). */
static int check_type(const char *path, const h5a_array *a, hid_t ft, hid_t mt, bool strings,
                      char *err)
{
    if (same_type(ft, mt) || (h5t_is_numeric(ft) && h5t_is_numeric(mt))) return 0;
    if (strings && is_fixed_string(ft) && is_fixed_string(mt) &&
        H5Tget_cset(ft) == H5Tget_cset(mt))
        return 0;
    dtype *fd = NULL;
    char fs[64] = "?", ms[64] = "?";
    if (h5t_to_dtype(ft, &fd, NULL, 0) == 0) dtype_str(fd, fs, sizeof fs);
    dtype_str(a->type, ms, sizeof ms);
    dtype_free(fd);
    H5Eclear2(H5E_DEFAULT);
    return FAIL(H5A_E_TYPE_MISMATCH, "data of type %s cannot be stored in '%s' of type %s",
                ms[0] ? ms : "(struct/string)", path, fs[0] ? fs : "(struct/string)");
}

static int open_existing_dataset(h5a_engine *e, const h5a_request *r, hid_t *d, char *err)
{
    int kind, rc;
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_NONE) return FAIL(H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    if (kind != K_DATASET) return FAIL(H5A_E_NOT_A_DATASET, "'%s' is a group, not a dataset", r->path);
    *d = dataset_open(e, r->path, err);
    return *d < 0 ? H5A_E_HDF5_ERROR : 0;
}

static int op_read(h5a_engine *e, h5a_request *r, h5a_request *req, char *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    if ((rc = open_existing_dataset(e, r, &d, err))) return rc;
    shape_t s;
    sel_t q;
    if ((rc = get_shape(d, &s, NULL, err)) || (rc = sel_resolve(r, &s, &q, err))) return rc;
    hid_t ft = H5Dget_type(d), fs = H5S_ALL, ms = H5S_ALL;
    dtype *dt = NULL;
    void *buf = NULL;
    size_t nbytes = 0, size = H5Tget_size(ft);
    if ((rc = h5t_to_dtype(ft, &dt, err, ERRLEN))) goto out;
    uint64_t n = sel_elems(&q);
    if (dt->kind != DT_VLSTR && n && size > (0xFFFFFFFFull - 65536) / n) {
        rc = FAIL(H5A_E_TOO_LARGE,
                  "%s '%s' holds %llu elements of %zu bytes: more than one reply frame "
                  "(4 GiB) can carry; read it in parts with 'selection'",
                  q.whole ? "dataset" : "the selection of", r->path, (unsigned long long)n, size);
        goto out;
    }
    if (n && size > SIZE_MAX / n) {
        rc = FAIL(H5A_E_TOO_LARGE, "dataset too large for memory");
        goto out;
    }
    if ((rc = check_sel_chunks(e, d, r->path, &s, &q, size, err))) goto out;
    nbytes = (size_t)n * size;
    if (!(buf = h5a_buf_alloc(nbytes))) {
        rc = FAIL(H5A_E_INTERNAL, "out of memory for %zu bytes", nbytes);
        goto out;
    }
    if (n && ((rc = sel_spaces(d, &q, &fs, &ms, err)) ||
              (H5Dread(d, ft, ms, fs, H5P_DEFAULT, buf) < 0 &&
               (rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot read '%s'", r->path))))) {
        h5a_buf_free(buf); /* nothing in it to reclaim */
        buf = NULL;
        goto out;
    }
    h5a_array a = {.type = dt, .ndim = q.out.ndim, .data = buf, .nbytes = nbytes};
    for (int i = 0; i < q.out.ndim; i++) a.dims[i] = q.out.dims[i];
    bool follows = false;
    if ((rc = h5a_array_encode(&req->reply, &a, &follows, err, ERRLEN))) goto out;
    if (follows) {
        req->reply_data = buf;
        req->reply_data_len = nbytes;
        buf = NULL;
    }
out:
    sel_spaces_close(fs, ms);
    reclaim(ft, &q.out, buf);
    h5a_buf_free(buf);
    dtype_free(dt);
    H5Tclose(ft);
    return rc;
}

/* write_slice: data into a selection of an existing dataset, converted as
 * HDF5 converts (numbers); a scalar is written to every selected element. */
static int op_write_slice(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    if ((rc = open_existing_dataset(e, r, &d, err))) {
        if (rc == H5A_E_NOT_FOUND)
            snprintf(err, ERRLEN,
                     "no dataset at '%s': write_slice writes into an existing dataset (make it "
                     "with write or create_dataset)", r->path);
        return rc;
    }
    const h5a_array *a = &r->data;
    shape_t s, as = array_shape(a);
    sel_t q;
    if ((rc = get_shape(d, &s, NULL, err)) || (rc = sel_resolve(r, &s, &q, err))) return rc;
    bool broadcast = as.ndim == 0 && !shape_eq(&as, &q.out);
    if (!broadcast && !shape_eq(&as, &q.out)) {
        char want[256], got[256];
        shape_str(want, sizeof want, q.out.ndim, q.out.dims);
        shape_str(got, sizeof got, as.ndim, as.dims);
        return FAIL(H5A_E_SHAPE_MISMATCH,
                    "data of shape %s does not fit the selection of '%s', of shape %s (only a "
                    "single value is broadcast)", got, r->path, want);
    }
    hid_t mt = mem_type(a, err);
    if (mt < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t ft = H5Dget_type(d), fs = H5S_ALL, ms = H5S_ALL;
    uint64_t n = sel_elems(&q);
    void *rep = NULL;
    const void *src = a->data;
    if ((rc = check_type(r->path, a, ft, mt, true, err)) || n == 0 ||
        (rc = check_sel_chunks(e, d, r->path, &s, &q, H5Tget_size(ft), err)))
        goto out;
    if (broadcast) {
        /* HDF5 writes equal element counts only: repeat the value (for
         * strings, the pointer to it) */
        size_t isz = a->type->itemsize;
        if ((rc = check_op_bytes(e, sat_mul(n, isz), err,
                                 "writing one value to the %llu elements selected in '%s' "
                                 "repeats it in memory",
                                 (unsigned long long)n, r->path)))
            goto out;
        if (n > SIZE_MAX / isz || !(rep = malloc((size_t)n * isz))) {
            rc = FAIL(H5A_E_INTERNAL, "out of memory repeating a value %llu times",
                      (unsigned long long)n);
            goto out;
        }
        for (uint64_t i = 0; i < n; i++) memcpy((char *)rep + i * isz, a->data, isz);
        src = rep;
    }
    if ((rc = sel_spaces(d, &q, &fs, &ms, err))) goto out;
    if (H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, src) < 0) {
        rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot write the selection of '%s'", r->path);
        goto out;
    }
    e->dirty = true;
out:
    if (!rc) put_shape_result(b, s.ndim, s.dims);
    sel_spaces_close(fs, ms);
    free(rep);
    H5Tclose(ft);
    H5Tclose(mt);
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
    return check_type(r->path, a, ft, mt, false, err);
}

/* A dataset made by write is not resizable: copy it once into a chunked one
 * that can grow along axis 0, attributes included. Returns 0 with the new
 * dataset in *out (the caller closes it), or an error code. */
static int make_growable(h5a_engine *e, const char *path, hid_t old, const shape_t *s,
                         comp_choice c, hid_t *out, char *err)
{
    hid_t ft = H5Dget_type(old), d = H5I_INVALID_HID;
    void *buf = NULL;
    size_t nbytes;
    int rc = check_op_bytes(e, sat_mul(shape_elems(s), H5Tget_size(ft)), err,
                            "'%s' was made by write and cannot grow: growing it means copying "
                            "it into a growable dataset first",
                            path);
    if (rc || (rc = read_whole(old, ft, s, &buf, &nbytes, err))) goto out;
    d = dataset_create(e, NULL, ft, s, true, c, &rc, err);
    if (d < 0) goto out;
    if ((shape_elems(s) && (rc = write_all(d, ft, buf, path, err))) ||
        (rc = h5a_meta_copy_attrs(old, d, err)) || (rc = dataset_relink(e, d, path, true, err))) {
        close_id(&d, H5Dclose);
        goto out;
    }
    *out = d;
out:
    reclaim(ft, s, buf);
    h5a_buf_free(buf);
    H5Tclose(ft);
    return rc;
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
    comp_choice c;
    if ((rc = resolve_comp(e, r, &c, err))) return rc;
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
        own = dataset_create(e, r->path, mt, &s, true, c, &rc, err);
        if (own < 0) goto out;
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
    if (k > H5S_UNLIMITED - 1 - len) {
        rc = FAIL(H5A_E_OUT_OF_RANGE, "'%s' of length %llu cannot grow by %llu rows", r->path,
                  (unsigned long long)len, (unsigned long long)k);
        goto out;
    }
    /* An insert moves the tail [at, len) to [at+k, len+k): it costs the
     * tail only, and the tail's size is checked and its buffer taken before
     * anything changes. */
    shape_t row = s;
    row.dims[0] = 1;
    uint64_t rowbytes = sat_mul(H5Tget_size(ft), shape_elems(&row));
    hsize_t tail = len - at;
    void *tailbuf = NULL;
    if (tail) {
        uint64_t bytes = sat_mul(rowbytes, tail);
        if ((rc = check_op_bytes(e, bytes, err, "inserting at %llu into '%s' moves the %llu rows after it",
                                 (unsigned long long)at, r->path, (unsigned long long)tail)))
            goto out;
        if (!(tailbuf = malloc(bytes))) {
            rc = FAIL(H5A_E_INTERNAL, "out of memory moving %llu rows", (unsigned long long)tail);
            goto out;
        }
    }
    if (maxdims[0] != H5S_UNLIMITED && maxdims[0] < len + k) {
        if (!c.explicit_) c = dataset_compression(d); /* keep what it has */
        if ((rc = make_growable(e, r->path, d, &s, c, &own, err))) goto out_tail;
        d = own;
        shape_t same;
        if ((rc = get_shape(d, &same, maxdims, err))) goto out_tail;
    }
    shape_t ns = s;
    ns.dims[0] = len + k;
    hsize_t chunk[H5A_MAX_DIMS];
    if (dataset_chunk(e, d, chunk) == s.ndim &&
        (rc = check_grid(e, r->path, ns.ndim, ns.dims, maxdims, chunk, err)))
        goto out_tail;
    if (H5Dset_extent(d, ns.dims) < 0) {
        rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot grow '%s'", r->path);
        goto out_tail;
    }
    e->dirty = true;
    if (tail) {
        rc = rows_io(d, false, ft, &ns, at, tail, tailbuf, err);
        if (!rc) rc = rows_io(d, true, ft, &ns, at + k, tail, tailbuf, err);
        shape_t ts = ns;
        ts.dims[0] = tail;
        reclaim(ft, &ts, tailbuf);
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
    put_shape_result(b, s.ndim, s.dims);
out:
    close_id(&own, H5Dclose);
    close_id(&ft, H5Tclose);
    H5Tclose(mt);
    return rc;
}

/* create_dataset: a dataset of a shape and type, with h5py's creation
 * options, and no data written (reads give the fill value). */
static int op_create_dataset(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int kind, rc;
    const h5a_dset_args *a = r->dset;
    if (strcmp(r->path, "/") == 0)
        return FAIL(H5A_E_BAD_PATH, "'/' is the root group, it cannot be a dataset");
    if ((rc = path_kind(e, r->path, &kind, err))) return rc;
    shape_t s = {a->ndim, {0}};
    for (int i = 0; i < a->ndim; i++) s.dims[i] = a->shape[i];
    hid_t ft = h5t_from_dtype(a->type, err, ERRLEN);
    if (ft < 0) return H5A_E_UNSUPPORTED_TYPE;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID,
          fillt = H5I_INVALID_HID, d = H5I_INVALID_HID;
    char sh[256];
    shape_str(sh, sizeof sh, s.ndim, s.dims);

    if (kind != K_NONE) {
        /* exist_ok is h5py's require_dataset: the same shape and type are
         * there, so every worker of a job may ask for the dataset first */
        if (kind == K_DATASET && a->exist_ok) {
            hid_t old = dataset_open(e, r->path, err), ot = H5I_INVALID_HID;
            shape_t os;
            if (old < 0) {
                rc = H5A_E_HDF5_ERROR;
                goto out;
            }
            if ((rc = get_shape(old, &os, NULL, err))) goto out;
            ot = H5Dget_type(old);
            bool same_t = same_type(ot, ft);
            H5Tclose(ot);
            if (shape_eq(&os, &s) && same_t) {
                put_shape_result(b, s.ndim, s.dims);
                goto out;
            }
            char osh[256];
            shape_str(osh, sizeof osh, os.ndim, os.dims);
            if (shape_eq(&os, &s))
                rc = FAIL(H5A_E_EXISTS,
                          "'%s' exists with another dtype: exist_ok needs the dtype asked for",
                          r->path);
            else
                rc = FAIL(H5A_E_EXISTS,
                          "'%s' exists with shape %s, not %s: exist_ok needs the shape asked for",
                          r->path, osh, sh);
            goto out;
        }
        rc = FAIL(H5A_E_EXISTS, "'%s' already exists (a %s)%s", r->path,
                  kind == K_DATASET ? "dataset" : kind == K_GROUP ? "group" : "non-group object",
                  kind == K_DATASET ? "; delete it first, or pass exist_ok" : "");
        goto out;
    }

    comp_choice c;
    if ((rc = resolve_comp(e, r, &c, err))) goto out;
    c.shuffle = a->shuffle;
    hsize_t maxdims[H5A_MAX_DIMS], chunk[H5A_MAX_DIMS];
    bool resizable = false;
    for (int i = 0; i < s.ndim; i++) {
        maxdims[i] = !a->has_maxshape ? s.dims[i]
                   : a->maxshape[i] == H5A_UNLIMITED ? H5S_UNLIMITED : a->maxshape[i];
        if (maxdims[i] != H5S_UNLIMITED && maxdims[i] < s.dims[i]) {
            char msh[256];
            shape_str(msh, sizeof msh, s.ndim, maxdims);
            rc = FAIL(H5A_E_BAD_REQUEST,
                      "maxshape entry %d (%llu) is smaller than the shape's (%llu): shape %s", i,
                      (unsigned long long)maxdims[i], (unsigned long long)s.dims[i], sh);
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
        rc = FAIL(H5A_E_BAD_REQUEST,
                  "a scalar dataset cannot be chunked, so it takes no chunks, compression or "
                  "shuffle");
        goto out;
    }
    if (chunked && a->chunks_mode == CHUNKS_CONTIGUOUS) {
        rc = FAIL(H5A_E_BAD_REQUEST, "chunks=false, but %s needs chunked layout",
                  resizable ? "a maxshape other than the shape" : c.shuffle ? "shuffle"
                                                                          : "compression");
        goto out;
    }
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (chunked) {
        size_t isz = H5Tget_size(ft);
        if (a->chunks_mode == CHUNKS_GIVEN) {
            for (int i = 0; i < s.ndim; i++) chunk[i] = a->chunks[i];
        } else {
            guess_chunk(s.ndim, s.dims, isz, chunk);
        }
        double bytes = (double)isz;
        for (int i = 0; i < s.ndim; i++) {
            bytes *= (double)chunk[i];
            /* HDF5's rule: a chunk fits inside a fixed axis, unless that
             * axis is of size 0 (h5py's guess is 1024 there) */
            if (chunk[i] == 0 ||
                (maxdims[i] != H5S_UNLIMITED && maxdims[i] && chunk[i] > maxdims[i])) {
                char csh[256], msh[256];
                shape_str(csh, sizeof csh, s.ndim, chunk);
                shape_str(msh, sizeof msh, s.ndim, maxdims);
                if (chunk[i] == 0)
                    rc = FAIL(H5A_E_BAD_REQUEST, "chunks %s: axis %d has a chunk size of 0", csh,
                              i);
                else
                    rc = FAIL(H5A_E_BAD_REQUEST,
                              "chunks %s do not fit maxshape %s: axis %d, of fixed size %llu, "
                              "is smaller than its chunk",
                              csh, msh, i, (unsigned long long)maxdims[i]);
                goto out;
            }
        }
        if (bytes >= 4294967296.0) {
            rc = FAIL(H5A_E_BAD_REQUEST, "a chunk of %.0f bytes: HDF5 chunks are under 4 GiB",
                      bytes);
            goto out;
        }
        /* every access to a chunk reads (and fills, and compresses) it whole */
        if ((rc = check_op_bytes(e, (uint64_t)bytes, err,
                                 "a chunk of '%s' would hold %.0f bytes, each read or written "
                                 "whole",
                                 r->path, bytes)) ||
            (rc = check_grid(e, r->path, s.ndim, s.dims, maxdims, chunk, err)))
            goto out;
        if (H5Pset_chunk(dcpl, s.ndim, chunk) < 0 || set_filter(dcpl, c) < 0) {
            rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot set up chunks or compression for '%s'",
                        r->path);
            goto out;
        }
    }
    /* A contiguous dataset's space is allocated whole at its first write
     * (and filled, when it has a fill value): the file's end jumps by its
     * size. A 2^62-byte one made the file impossible to checkpoint, close or
     * reopen (ftruncate: File too large). Chunked ones allocate per chunk. */
    if (!chunked && s.ndim &&
        (rc = check_op_bytes(e, sat_mul(shape_elems(&s), H5Tget_size(ft)), err,
                             "'%s' would be a contiguous dataset, which HDF5 allocates%s whole at "
                             "its first write (give it chunks to allocate only what is written)",
                             r->path, a->has_fill ? " and fills" : "")))
        goto out;
    if (a->has_fill) {
        if ((fillt = mem_type(&a->fill, err)) < 0) {
            rc = H5A_E_UNSUPPORTED_TYPE;
            goto out;
        }
        if ((rc = check_type(r->path, &a->fill, ft, fillt, true, err))) {
            snprintf(err + strlen(err), ERRLEN - strlen(err), " (the fillvalue)");
            goto out;
        }
        if (H5Pset_fill_value(dcpl, fillt, a->fill.data) < 0) {
            rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot set the fill value of '%s'", r->path);
            goto out;
        }
    }
    space = s.ndim ? H5Screate_simple(s.ndim, s.dims, maxdims) : H5Screate(H5S_SCALAR);
    lcpl = lcpl_intermediate();
    d = H5Dcreate2(e->file, r->path, ft, space, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = h5fail(err, H5A_E_HDF5_ERROR, "cannot create dataset '%s'", r->path);
        goto out;
    }
    e->dirty = true;
    put_shape_result(b, s.ndim, s.dims);
out:
    close_id(&d, H5Dclose);
    close_id(&space, H5Sclose);
    close_id(&dcpl, H5Pclose);
    close_id(&lcpl, H5Pclose);
    close_id(&fillt, H5Tclose);
    H5Tclose(ft);
    return rc;
}

/* resize: a chunked dataset's new shape within its maxshape, any axis;
 * what falls outside is dropped, as H5Dset_extent (and h5py) do. */
static int op_resize(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    int rc;
    hid_t d = H5I_INVALID_HID;
    const h5a_dset_args *a = r->dset;
    if ((rc = open_existing_dataset(e, r, &d, err))) return rc;
    shape_t s, ns;
    hsize_t maxdims[H5A_MAX_DIMS];
    if ((rc = get_shape(d, &s, maxdims, err))) return rc;
    char sh[256], msh[256];
    shape_str(sh, sizeof sh, s.ndim, s.dims);
    ns = s;
    if (a->has_axis) {
        int64_t ax = a->axis < 0 ? a->axis + s.ndim : a->axis;
        if (ax < 0 || ax >= s.ndim)
            return FAIL(H5A_E_OUT_OF_RANGE, "axis %lld is out of range for '%s' of shape %s",
                        (long long)a->axis, r->path, sh);
        ns.dims[ax] = a->shape[0];
    } else {
        if (a->ndim != s.ndim)
            return FAIL(H5A_E_SHAPE_MISMATCH,
                        "the new shape has %d dimensions but '%s' has %d (shape %s)", a->ndim,
                        r->path, s.ndim, sh);
        for (int i = 0; i < s.ndim; i++) ns.dims[i] = a->shape[i];
    }
    if (!shape_eq(&ns, &s)) {
        hsize_t chunk[H5A_MAX_DIMS];
        if (dataset_chunk(e, d, chunk) != s.ndim)
            return FAIL(H5A_E_OUT_OF_RANGE,
                        "'%s' is not chunked, so its shape %s is fixed: only chunked datasets "
                        "can be resized (create one with create_dataset and maxshape)",
                        r->path, sh);
        shape_str(msh, sizeof msh, s.ndim, maxdims);
        for (int i = 0; i < s.ndim; i++)
            if (maxdims[i] != H5S_UNLIMITED && ns.dims[i] > maxdims[i])
                return FAIL(H5A_E_OUT_OF_RANGE,
                            "axis %d of '%s' can grow to %llu at most (maxshape %s), not %llu",
                            i, r->path, (unsigned long long)maxdims[i], msh,
                            (unsigned long long)ns.dims[i]);
        /* a shrink visits the chunk positions of the old extent, a growth
         * makes those of the new one: the larger of the two, per axis */
        shape_t span = ns;
        for (int i = 0; i < s.ndim; i++)
            if (s.dims[i] > span.dims[i]) span.dims[i] = s.dims[i];
        if ((rc = check_grid(e, r->path, span.ndim, span.dims, maxdims, chunk, err))) return rc;
        if (H5Dset_extent(d, ns.dims) < 0)
            return h5fail(err, H5A_E_HDF5_ERROR, "cannot resize '%s'", r->path);
        e->dirty = true;
    }
    put_shape_result(b, ns.ndim, ns.dims);
    return 0;
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
    case OP_CREATE_DATASET: return op_create_dataset(e, r, b, err);
    case OP_RESIZE: return op_resize(e, r, b, err);
    case OP_WRITE_SLICE: return op_write_slice(e, r, b, err);
    case OP_SET_ATTR: case OP_GET_ATTR: case OP_LIST_ATTRS: case OP_DELETE_ATTR:
    case OP_LIST: case OP_WALK: case OP_INFO: case OP_EXISTS:
    case OP_CREATE_LINK: case OP_MOVE: return h5a_meta_execute(e, r, err);
    case OP_AUTH:
        /* decided on the loop thread (net.c), answered here in its turn */
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "name");
        if (r->auth_role) mp_put_cstr(b, r->auth_name);
        else mp_put_nil(b);
        mp_put_cstr(b, "role");
        mp_put_cstr(b, r->auth_role ? r->auth_role : "admin");
        return 0;
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
    hsize_t total = 0, chunk[H5A_MAX_DIMS];
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_rows(reqs[i], &reqs[i]->data, &s, ft, mt, &k[i], err)) goto one_by_one;
        total += k[i];
        bytes += reqs[i]->data.nbytes;
    }
    /* past a limit, each request gets its own answer (some may still fit) */
    if (total > H5S_UNLIMITED - 1 - s.dims[0]) goto one_by_one;
    shape_t grown = s;
    grown.dims[0] += total;
    if (dataset_chunk(e, d, chunk) != s.ndim ||
        check_grid(e, first->path, s.ndim, grown.dims, maxdims, chunk, err))
        goto one_by_one;
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

void h5a_engine_fail_reply(h5a_request *r, int code, const char *msg)
{
    char err[ERRLEN];
    snprintf(err, sizeof err, "%s", msg);
    size_t mark = reply_begin(r);
    reply_finish(r, mark, code, err);
}

h5a_durability h5a_engine_pending(const h5a_engine *e)
{
    return e->dirty ? H5A_DUR_FLUSH : e->unsynced ? H5A_DUR_FSYNC : H5A_DUR_NONE;
}

int h5a_engine_commit(h5a_engine *e, h5a_durability level, char *errout, size_t errlen)
{
    char err[ERRLEN];
    if (level == H5A_DUR_NONE) return 0;
    if (e->dirty) {
        if (H5Fflush(e->file, H5F_SCOPE_GLOBAL) < 0) {
            h5fail(err, H5A_E_HDF5_ERROR, "flushing the file failed");
            snprintf(errout, errlen, "%s", err);
            return -1;
        }
        /* A "flush" commit is the log record that makes the flushed state
         * the one a restart recovers; "fsync" below also covers it. */
        int rc = 0;
        if (level == H5A_DUR_FLUSH) rc = h5a_wal_commit(e->file, H5A_COMMIT_SOFT, errout, errlen);
        if (rc) return rc == H5A_WAL_E_GONE ? H5A_ENGINE_GONE : -1;
        e->dirty = false;
        e->unsynced = true;
    }
    if (level == H5A_DUR_FSYNC && e->unsynced) {
        int rc = h5a_wal_commit(e->file, H5A_COMMIT_HARD, errout, errlen);
        if (rc) return rc == H5A_WAL_E_GONE ? H5A_ENGINE_GONE : -1;
        e->unsynced = false;
    }
    return 0;
}

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
    /* Every byte goes through the write-ahead-log driver (wal.c): opening
     * the file first rolls it forward to its last commit if the server died,
     * so the file always opens (docs/durability.md). */
    h5a_wal_recovery rec;
    memset(&rec, 0, sizeof rec);
    /* file_id: new files get a userblock (below) where the driver keeps an
     * id its log is checked against */
    h5a_wal_options wopt = {.report = &rec, .discard_damaged = cfg->wal_discard_damaged,
                            .file_id = true};
    hid_t fapl = h5a_wal_fapl(&wopt);
    if (fapl < 0) {
        snprintf(errout, errlen, "cannot set up the file driver");
        free(e);
        return -1;
    }
    /* An empty file is taken as missing: it holds nothing, and it is what a
     * crash before the first commit of a new file leaves behind (the driver
     * truncates such a file back to its committed size, 0). */
    struct stat st;
    bool exists = stat(cfg->file_path, &st) == 0 && st.st_size > 0;
    if (exists) {
        /* h5a_wal_fapl also clears the superblock's "open for writing" mark a
         * crash leaves: the driver has just brought the bytes back to a
         * committed, consistent state, so that is safe here (what h5clear
         * does, which is unsafe without the log). */
        e->file = H5Fopen(cfg->file_path, H5F_ACC_RDWR, fapl);
        exists = e->file >= 0 || stat(cfg->file_path, &st) != 0 || st.st_size > 0;
        if (!exists) H5Eclear2(H5E_DEFAULT); /* recovered to empty: create it */
    }
    if (rec.message[0]) fprintf(stderr, "hdf5-async-server: %s\n", rec.message);
    hid_t fcpl = H5I_INVALID_HID; /* closed after the error stack is read */
    if (!exists) {
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
        e->file = H5Fcreate(cfg->file_path, H5F_ACC_TRUNC, fcpl, fapl);
        /* commit the empty file at once, so that from now on a crash comes
         * back to a valid HDF5 file */
        e->dirty = true;
        if (e->file >= 0 && h5a_engine_commit(e, H5A_DUR_FSYNC, errout, errlen)) {
            H5Fclose(e->file);
            H5Pclose(fcpl);
            H5Pclose(fapl);
            free(e);
            return -1;
        }
    }
    if (e->file < 0) {
        /* before H5Pclose: any HDF5 call clears the error stack, and the
         * driver's reason ("is in use by another process") is on it */
        h5fail(err, H5A_E_HDF5_ERROR, "cannot open HDF5 file '%s'", cfg->file_path);
        snprintf(errout, errlen, "%s", err);
        if (fcpl >= 0) H5Pclose(fcpl);
        H5Pclose(fapl);
        free(e);
        return -1;
    }
    if (fcpl >= 0) H5Pclose(fcpl);
    H5Pclose(fapl);
    warn_persistent_free_space(e->file, cfg->file_path);
    *out = e;
    return 0;
}

void h5a_engine_close(h5a_engine *e)
{
    if (!e) return;
    cache_clear(e);
    if (H5Fclose(e->file) < 0) {
        char err[ERRLEN];
        h5fail(err, H5A_E_HDF5_ERROR, "closing the file failed");
        fprintf(stderr, "hdf5-async-server: %s\n", err);
    }
    free(e);
}

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
    if (H5get_free_list_sizes(&reg, &arr, &blk, &fac) >= 0) out->free_lists = reg + arr + blk + fac;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
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
