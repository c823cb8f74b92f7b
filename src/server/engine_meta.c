/* The metadata operations that inspect one object or rearrange links:
 * info, exists, create_link, move. Paths are followed the way h5py's
 * f[path] follows them (engine_path); only move and create_link (and
 * delete, engine_data.c) look at the last component as a link, so a soft
 * link is moved or removed, not its target. Wire formats in
 * docs/protocol.md. */
#include <stdlib.h>
#include <string.h>

#include "server/engine_describe.h"
#include "server/engine_layout.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/h5types.h"
#include "server/lzf_filter.h"

/* ---- info ---- */

static void put_filters(mp_buf *b, hid_t dcpl)
{
    int n = H5Pget_nfilters(dcpl);
    if (n < 0) n = 0;
    const char *comp = NULL;
    int level = -1;
    bool shuffle = false, fletcher = false;
    mp_buf list = {0};
    for (int i = 0; i < n; i++) {
        unsigned flags, cd[16], config;
        size_t ncd = 16;
        char name[128] = "";
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name,
                                        &config);
        if (f < 0) continue;
        if (ncd > 16) ncd = 16;
        if (f == H5Z_FILTER_DEFLATE) comp = "gzip", level = ncd ? (int)cd[0] : 4;
        else if (f == H5A_LZF_FILTER) comp = "lzf";
        else if (f == H5Z_FILTER_SZIP) comp = "szip";
        /* the plugins by the names the compression argument gives them,
         * with their one option (lz4: block bytes, bzip2: block size) */
        else if (f == FILTER_LZ4) comp = "lz4", level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BZIP2) comp = "bzip2", level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BITSHUFFLE) comp = "bitshuffle";
        else if (f == H5Z_FILTER_SHUFFLE) shuffle = true;
        else if (f == H5Z_FILTER_FLETCHER32) fletcher = true;
        mp_put_map_header(&list, 3);
        mp_put_cstr(&list, "id");
        mp_put_uint(&list, (uint64_t)f);
        mp_put_cstr(&list, "name");
        mp_put_cstr(&list, name);
        mp_put_cstr(&list, "cd_values");
        mp_put_array_header(&list, ncd);
        for (size_t k = 0; k < ncd; k++) mp_put_uint(&list, cd[k]);
    }
    H5Eclear2(H5E_DEFAULT);
    mp_put_cstr(b, "compression");
    if (comp) mp_put_cstr(b, comp);
    else mp_put_nil(b);
    mp_put_cstr(b, "compression_opts");
    if (level >= 0) mp_put_uint(b, (uint64_t)level);
    else mp_put_nil(b);
    mp_put_cstr(b, "shuffle");
    mp_put_bool(b, shuffle);
    mp_put_cstr(b, "fletcher32");
    mp_put_bool(b, fletcher);
    mp_put_cstr(b, "filters");
    mp_put_array_header(b, (size_t)n);
    if (list.oom) b->oom = true;
    else mp_put_raw(b, list.data, list.len);
    mp_buf_free(&list);
}

/* The fill value as a scalar value like a read's, nil for types reads
 * cannot describe and for variable-length strings (whose fill value is a
 * pointer, not a value). */
static void put_fill(mp_buf *b, hid_t dcpl, hid_t type)
{
    dtype *dt = NULL;
    char why[256];
    void *buf = NULL;
    if (h5t_to_dtype(type, &dt, why, sizeof why) || dt->kind == DT_VLSTR ||
        !(buf = calloc(1, dt->itemsize)) || H5Pget_fill_value(dcpl, type, buf) < 0) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
    } else {
        h5a_array a = {.type = dt, .ndim = 0, .data = buf, .nbytes = dt->itemsize};
        bool follows;
        size_t mark = b->len;
        if (h5a_array_encode(b, &a, &follows, why, sizeof why) && !b->oom) {
            b->len = mark;
            mp_put_nil(b);
        }
    }
    free(buf);
    dtype_free(dt);
}

static void put_nattrs(mp_buf *b, hid_t obj)
{
    H5O_info_t info;
    mp_put_cstr(b, "nattrs");
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) < 0) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
    } else {
        mp_put_uint(b, info.num_attrs);
    }
}

static int info_dataset(hid_t file, const char *path, mp_buf *b, h5a_err *err)
{
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the dataset '%s'", path);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    mp_put_map_header(b, 15);
    mp_put_cstr(b, "kind");
    mp_put_cstr(b, "dataset");
    h5a_put_shapes(b, sp);
    mp_put_cstr(b, "dtype");
    h5a_put_dtype(b, t);
    mp_put_cstr(b, "hdf5_class");
    mp_put_cstr(b, h5a_class_name(H5Tget_class(t)));
    mp_put_cstr(b, "layout");
    mp_put_cstr(b, layout == H5D_COMPACT      ? "compact"
                   : layout == H5D_CONTIGUOUS ? "contiguous"
                   : layout == H5D_CHUNKED    ? "chunked"
                   : layout == H5D_VIRTUAL    ? "virtual"
                                              : "unknown");
    mp_put_cstr(b, "chunks");
    hsize_t chunk[H5S_MAX_RANK];
    int nc = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk) : -1;
    if (nc >= 0) h5a_put_dims(b, nc, chunk, false);
    else mp_put_nil(b);
    put_filters(b, dcpl); /* 5 entries */
    mp_put_cstr(b, "fillvalue");
    put_fill(b, dcpl, t);
    mp_put_cstr(b, "storage_size");
    mp_put_uint(b, H5Dget_storage_size(d));
    put_nattrs(b, d);
    H5Eclear2(H5E_DEFAULT);
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return 0;
}

int h5a_op_INFO(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    mp_buf *b = &r->reply;
    H5O_type_t t;
    int rc = h5a_path_object(e->file, r->path, &t, err);
    if (rc) return rc;
    if (t == H5O_TYPE_DATASET) return info_dataset(e->file, r->path, b, err);
    hid_t obj = H5Oopen(e->file, r->path, H5P_DEFAULT);
    if (obj < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open '%s'", r->path);
    if (t == H5O_TYPE_GROUP) {
        H5G_info_t gi;
        if (H5Gget_info(obj, &gi) < 0) {
            H5Oclose(obj);
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look at the group '%s'", r->path);
        }
        mp_put_map_header(b, 3);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "group");
        mp_put_cstr(b, "members");
        mp_put_uint(b, gi.nlinks);
    } else if (t == H5O_TYPE_NAMED_DATATYPE) {
        mp_put_map_header(b, 4);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "datatype");
        mp_put_cstr(b, "dtype");
        h5a_put_dtype(b, obj);
        mp_put_cstr(b, "hdf5_class");
        mp_put_cstr(b, h5a_class_name(H5Tget_class(obj)));
    } else {
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, h5a_otype_name(t));
    }
    put_nattrs(b, obj);
    H5Oclose(obj);
    return 0;
}

/* ---- exists ---- */

/* As h5py's `path in file`: is there a link of that name (the parents
 * followed)? A dangling soft link exists (it takes the name); a missing
 * parent, or one that is not a group or leads nowhere, makes it false. */
int h5a_op_EXISTS(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    h5a_found f;
    int rc = h5a_path_find(e->file, r->path, false, &f, err);
    if (rc == H5A_E_NOT_FOUND || rc == H5A_E_NOT_A_GROUP) rc = 0, f.missing = true;
    if (rc) return rc;
    mp_put_bool(&r->reply, !f.missing);
    return 0;
}

/* ---- links ---- */

/* Is there a link at path (its parents followed)? */
static int link_taken(hid_t file, const char *path, bool *taken, h5a_err *err)
{
    h5a_found f;
    int rc = h5a_path_find(file, path, false, &f, err);
    *taken = !rc && !f.missing;
    return rc;
}

int h5a_op_CREATE_LINK(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    bool taken;
    int rc;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "'/' is the root group; it cannot be a link");
    if ((rc = link_taken(e->file, r->path, &taken, err))) return rc;
    if (taken) return h5a_err_set(err, H5A_E_EXISTS, "'%s' already exists", r->path);
    hid_t lcpl = h5a_path_lcpl();
    herr_t hr = H5Lcreate_soft(r->target, e->file, r->path, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (hr < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create the soft link '%s'", r->path);
    h5a_state_mark_dirty(e);
    mp_put_nil(&r->reply);
    return 0;
}

int h5a_op_MOVE(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    bool taken;
    int rc;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "the root group '/' cannot be moved");
    if (strcmp(r->dest, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH,
                           "'/' is the root group; nothing can be moved there");
    if ((rc = link_taken(e->file, r->path, &taken, err))) return rc;
    if (!taken) return h5a_err_set(err, H5A_E_NOT_FOUND, "no object at '%s' to move", r->path);
    size_t n = strlen(r->path);
    if (strncmp(r->dest, r->path, n) == 0 && r->dest[n] == '/')
        return h5a_err_set(err, H5A_E_BAD_REQUEST, "cannot move '%s' into itself ('%s')", r->path,
                           r->dest);
    if ((rc = link_taken(e->file, r->dest, &taken, err))) return rc;
    if (taken) return h5a_err_set(err, H5A_E_EXISTS, "'%s' already exists", r->dest);
    /* cached datasets are found by path: under the old one they are gone */
    h5a_cache_clear(e);
    hid_t lcpl = h5a_path_lcpl();
    herr_t hr = H5Lmove(e->file, r->path, e->file, r->dest, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (hr < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot move '%s' to '%s'", r->path, r->dest);
    h5a_state_mark_dirty(e);
    mp_put_nil(&r->reply);
    return 0;
}
