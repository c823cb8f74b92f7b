/* Types, shapes and kinds as replies describe them (engine_describe.h). */
#include "server/engine_describe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "server/engine_layout.h"
#include "server/h5types.h"
#include "server/lzf_filter.h"

const char *h5a_otype_name(H5O_type_t t)
{
    switch (t) {
    case H5O_TYPE_GROUP: return "group";
    case H5O_TYPE_DATASET: return "dataset";
    case H5O_TYPE_NAMED_DATATYPE: return "datatype";
    default: return "unknown";
    }
}

const char *h5a_class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "vlen";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

void h5a_put_dtype(mp_buf *b, hid_t type)
{
    dtype *dt = NULL;
    char why[256];
    if (h5t_to_dtype(type, &dt, why, sizeof why)) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
        return;
    }
    if (dt->kind == DT_VLSTR) {
        mp_put_cstr(b, dt->utf8 ? "str" : "bytes");
    } else {
        size_t mark = b->len;
        if (dtype_encode(b, dt) && !b->oom) {
            b->len = mark;
            mp_put_nil(b);
        }
    }
    dtype_free(dt);
}

void h5a_put_dims(mp_buf *b, int n, const hsize_t *d, bool max)
{
    mp_put_array_header(b, (size_t)n);
    for (int i = 0; i < n; i++) {
        if (max && d[i] == H5S_UNLIMITED) mp_put_nil(b);
        else mp_put_uint(b, d[i]);
    }
}

void h5a_put_shapes(mp_buf *b, hid_t space)
{
    hsize_t dims[H5S_MAX_RANK], max[H5S_MAX_RANK];
    int n = H5Sget_simple_extent_ndims(space);
    bool null = H5Sget_simple_extent_type(space) == H5S_NULL || n < 0 || n > H5S_MAX_RANK;
    if (!null) H5Sget_simple_extent_dims(space, dims, max);
    mp_put_cstr(b, "shape");
    if (null) mp_put_nil(b);
    else h5a_put_dims(b, n, dims, false);
    mp_put_cstr(b, "maxshape");
    if (null) mp_put_nil(b);
    else h5a_put_dims(b, n, max, true);
}

/* ---- full type descriptors (h5grove's get_type_metadata) ---- */

/* numpy's dtype.str of what h5py makes of the type; for a compound that is
 * not complex, a map of its fields (h5grove's stringify_dtype) */
static void put_np_dtype(mp_buf *b, hid_t t)
{
    char s[48];
    size_t size = H5Tget_size(t);
    H5T_class_t c = H5Tget_class(t);
    char order = H5Tget_order(t) == H5T_ORDER_BE ? '>' : '<';
    switch (c) {
    case H5T_INTEGER:
    case H5T_BITFIELD:
        if (size == 1 || size == 2 || size == 4 || size == 8)
            snprintf(s, sizeof s, "%c%c%zu", size == 1 ? '|' : order,
                     c == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2 ? 'i' : 'u', size);
        else snprintf(s, sizeof s, "|V%zu", size);
        break;
    case H5T_FLOAT:
        if (size == 2 || size == 4 || size == 8 || size == 16)
            snprintf(s, sizeof s, "%cf%zu", order, size);
        else snprintf(s, sizeof s, "|V%zu", size);
        break;
    case H5T_STRING:
        if (H5Tis_variable_str(t) > 0) snprintf(s, sizeof s, "|O");
        else snprintf(s, sizeof s, "|S%zu", size);
        break;
    case H5T_VLEN:
    case H5T_REFERENCE: snprintf(s, sizeof s, "|O"); break;
    case H5T_ENUM: {
        /* h5py: a bool when the members are exactly FALSE = 0, TRUE = 1 */
        int n = H5Tget_nmembers(t);
        bool is_bool = n == 2;
        for (int i = 0; is_bool && i < n; i++) {
            char *name = H5Tget_member_name(t, (unsigned)i);
            long long v = 0;
            unsigned char raw[16] = {0};
            hid_t base = H5Tget_super(t);
            if (name && H5Tget_member_value(t, (unsigned)i, raw) >= 0 && H5Tget_size(base) <= 8) {
                hid_t native = H5Tcopy(H5T_NATIVE_LLONG);
                H5Tconvert(base, native, 1, raw, NULL, H5P_DEFAULT);
                memcpy(&v, raw, sizeof v);
                H5Tclose(native);
            }
            is_bool = name && ((strcmp(name, "FALSE") == 0 && v == 0) ||
                               (strcmp(name, "TRUE") == 0 && v == 1));
            H5free_memory(name);
            H5Tclose(base);
        }
        if (is_bool) {
            snprintf(s, sizeof s, "|b1");
        } else {
            hid_t base = H5Tget_super(t);
            put_np_dtype(b, base);
            H5Tclose(base);
            return;
        }
        break;
    }
    case H5T_COMPOUND: {
        int n = H5Tget_nmembers(t);
        /* h5py: {r, i} of one float type is complex */
        if (n == 2) {
            char *r = H5Tget_member_name(t, 0), *i = H5Tget_member_name(t, 1);
            hid_t rt = H5Tget_member_type(t, 0), it = H5Tget_member_type(t, 1);
            bool cplx = r && i && strcmp(r, "r") == 0 && strcmp(i, "i") == 0 &&
                        H5Tget_class(rt) == H5T_FLOAT && H5Tequal(rt, it) > 0 &&
                        H5Tget_member_offset(t, 1) == H5Tget_size(rt) &&
                        size == 2 * H5Tget_size(rt);
            char o = H5Tget_order(rt) == H5T_ORDER_BE ? '>' : '<';
            H5free_memory(r);
            H5free_memory(i);
            H5Tclose(rt);
            H5Tclose(it);
            if (cplx) {
                snprintf(s, sizeof s, "%cc%zu", o, size);
                break;
            }
        }
        mp_put_map_header(b, (size_t)(n < 0 ? 0 : n));
        for (int k = 0; k < n; k++) {
            char *name = H5Tget_member_name(t, (unsigned)k);
            hid_t mt = H5Tget_member_type(t, (unsigned)k);
            mp_put_cstr(b, name ? name : "");
            put_np_dtype(b, mt);
            H5free_memory(name);
            H5Tclose(mt);
        }
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    default: snprintf(s, sizeof s, "|V%zu", size); break;
    }
    H5Eclear2(H5E_DEFAULT);
    mp_put_cstr(b, s);
}

/* The descriptor, with "name" first for a compound's member. */
static void put_type(mp_buf *b, hid_t t, const char *field)
{
    H5T_class_t c = H5Tget_class(t);
    size_t extra = c == H5T_INTEGER ? 2
                   : c == H5T_FLOAT || c == H5T_BITFIELD || c == H5T_OPAQUE || c == H5T_COMPOUND ||
                           c == H5T_VLEN
                       ? 1
                   : c == H5T_STRING ? 3
                   : c == H5T_ENUM || c == H5T_ARRAY ? 2
                                                     : 0;
    mp_put_map_header(b, 3 + extra + (field ? 1 : 0));
    if (field) {
        mp_put_cstr(b, "name");
        mp_put_cstr(b, field);
    }
    mp_put_cstr(b, "class");
    mp_put_int(b, (int64_t)c);
    mp_put_cstr(b, "dtype");
    put_np_dtype(b, t);
    mp_put_cstr(b, "size");
    mp_put_uint(b, H5Tget_size(t));
    if (c == H5T_INTEGER || c == H5T_FLOAT || c == H5T_BITFIELD) {
        mp_put_cstr(b, "order");
        mp_put_int(b, H5Tget_order(t) == H5T_ORDER_BE ? 1 : 0);
    }
    if (c == H5T_INTEGER) {
        mp_put_cstr(b, "sign");
        mp_put_int(b, H5Tget_sign(t) == H5T_SGN_2 ? 1 : 0);
    } else if (c == H5T_STRING) {
        mp_put_cstr(b, "cset");
        mp_put_int(b, (int64_t)H5Tget_cset(t));
        mp_put_cstr(b, "strpad");
        mp_put_int(b, (int64_t)H5Tget_strpad(t));
        mp_put_cstr(b, "vlen");
        mp_put_bool(b, H5Tis_variable_str(t) > 0);
    } else if (c == H5T_OPAQUE) {
        char *tag = H5Tget_tag(t);
        mp_put_cstr(b, "tag");
        mp_put_cstr(b, tag ? tag : "");
        H5free_memory(tag);
    } else if (c == H5T_COMPOUND) {
        int n = H5Tget_nmembers(t);
        mp_put_cstr(b, "members");
        mp_put_array_header(b, (size_t)(n < 0 ? 0 : n));
        for (int k = 0; k < n; k++) {
            char *name = H5Tget_member_name(t, (unsigned)k);
            hid_t mt = H5Tget_member_type(t, (unsigned)k);
            put_type(b, mt, name ? name : "");
            H5free_memory(name);
            H5Tclose(mt);
        }
    } else if (c == H5T_ENUM) {
        int n = H5Tget_nmembers(t);
        hid_t base = H5Tget_super(t);
        size_t bs = H5Tget_size(base);
        bool sign = H5Tget_sign(base) == H5T_SGN_2;
        mp_put_cstr(b, "members");
        mp_put_map_header(b, (size_t)(n < 0 ? 0 : n));
        for (int k = 0; k < n; k++) {
            char *name = H5Tget_member_name(t, (unsigned)k);
            unsigned char raw[16] = {0};
            long long v = 0;
            if (H5Tget_member_value(t, (unsigned)k, raw) >= 0 && bs <= 8) {
                hid_t native = H5Tcopy(sign ? H5T_NATIVE_LLONG : H5T_NATIVE_ULLONG);
                H5Tconvert(base, native, 1, raw, NULL, H5P_DEFAULT);
                memcpy(&v, raw, sizeof v);
                H5Tclose(native);
            }
            mp_put_cstr(b, name ? name : "");
            if (sign) mp_put_int(b, v);
            else mp_put_uint(b, (uint64_t)v);
            H5free_memory(name);
        }
        mp_put_cstr(b, "base");
        put_type(b, base, NULL);
        H5Tclose(base);
    } else if (c == H5T_VLEN || c == H5T_ARRAY) {
        if (c == H5T_ARRAY) {
            hsize_t dims[H5S_MAX_RANK];
            int n = H5Tget_array_ndims(t);
            if (n < 0 || n > H5S_MAX_RANK) n = 0;
            else H5Tget_array_dims2(t, dims);
            mp_put_cstr(b, "dims");
            h5a_put_dims(b, n, dims, false);
        }
        hid_t base = H5Tget_super(t);
        mp_put_cstr(b, "base");
        put_type(b, base, NULL);
        H5Tclose(base);
    }
    H5Eclear2(H5E_DEFAULT);
}

void h5a_put_type(mp_buf *b, hid_t t)
{
    put_type(b, t, NULL);
}

/* ---- attributes ---- */

typedef struct {
    mp_buf *b;
    size_t count;
    bool values;
    int rc;
    h5a_err *err;
} attr_list;

/* An attribute's value as get_attr encodes it, written whole (nil when it
 * has none: a null dataspace, a type with no NumPy mapping, too large). */
static void put_attr_value(mp_buf *b, hid_t att, hid_t ft, hid_t sp)
{
    dtype *dt = NULL;
    char why[256];
    void *buf = NULL;
    hsize_t dims[H5A_MAX_DIMS];
    int nd = H5Sget_simple_extent_ndims(sp);
    if (H5Sget_simple_extent_type(sp) == H5S_NULL || nd < 0 || nd > H5A_MAX_DIMS ||
        h5t_to_dtype(ft, &dt, why, sizeof why)) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
        dtype_free(dt);
        return;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    h5a_array a = {.type = dt, .ndim = nd};
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) n *= (a.dims[i] = dims[i]);
    size_t size = H5Tget_size(ft);
    if (n && size > (0x7FFFFFFFull) / n) goto nil;
    a.nbytes = (size_t)n * size;
    if (!(buf = calloc(1, a.nbytes ? a.nbytes : 1))) goto nil;
    if (n && H5Aread(att, ft, buf) < 0) goto nil;
    a.data = buf;
    bool follows = false;
    size_t mark = b->len;
    if (h5a_array_encode(b, &a, &follows, why, sizeof why)) {
        b->len = mark;
        goto nil;
    }
    if (follows) mp_put_raw(b, buf, a.nbytes); /* the bin's bytes, in place */
    goto out;
nil:
    H5Eclear2(H5E_DEFAULT);
    mp_put_nil(b);
out:
    if (buf && dt->kind == DT_VLSTR && n) H5Dvlen_reclaim(ft, sp, H5P_DEFAULT, buf);
    free(buf);
    dtype_free(dt);
}

static herr_t attrs_cb(hid_t obj, const char *name, const H5A_info_t *ai, void *ud)
{
    attr_list *l = ud;
    hid_t att = H5Aopen(obj, name, H5P_DEFAULT);
    if (att < 0) {
        l->rc = h5a_err_h5(l->err, H5A_E_HDF5_ERROR, "cannot open attribute '%s'", name);
        return -1;
    }
    hid_t t = H5Aget_type(att), sp = H5Aget_space(att);
    mp_put_map_header(l->b, l->values ? 6 : 5);
    mp_put_cstr(l->b, "name");
    mp_put_cstr(l->b, name);
    h5a_put_shapes(l->b, sp); /* 2 entries */
    mp_put_cstr(l->b, "dtype");
    h5a_put_dtype(l->b, t);
    mp_put_cstr(l->b, "type");
    h5a_put_type(l->b, t);
    if (l->values) {
        mp_put_cstr(l->b, "value");
        put_attr_value(l->b, att, t, sp);
    }
    l->count++;
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(att);
    return 0;
}

int h5a_put_attrs(mp_buf *b, hid_t obj, bool values, h5a_err *err)
{
    mp_buf entries = {0};
    attr_list l = {.b = &entries, .values = values, .err = err};
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attrs_cb, &l) < 0 && !l.rc)
        l.rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot list the attributes");
    H5Eclear2(H5E_DEFAULT);
    if (!l.rc) {
        mp_put_array_header(b, l.count);
        if (entries.oom) b->oom = true;
        else mp_put_raw(b, entries.data, entries.len);
    }
    mp_buf_free(&entries);
    return l.rc;
}

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


static int info_dataset(hid_t loc, const char *name, mp_buf *b, h5a_err *err)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the dataset '%s'", name);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    mp_put_map_header(b, 17);
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
    mp_put_cstr(b, "type");
    h5a_put_type(b, t);
    mp_put_cstr(b, "attrs");
    int rc = h5a_put_attrs(b, d, false, err);
    H5Eclear2(H5E_DEFAULT);
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int h5a_put_info(mp_buf *b, hid_t loc, const char *name, h5a_err *err)
{
    H5O_info_t oi;
    if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look at '%s'", name);
    if (oi.type == H5O_TYPE_DATASET) return info_dataset(loc, name, b, err);
    hid_t obj = H5Oopen(loc, name, H5P_DEFAULT);
    if (obj < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open '%s'", name);
    if (oi.type == H5O_TYPE_GROUP) {
        H5G_info_t gi;
        if (H5Gget_info(obj, &gi) < 0) {
            H5Oclose(obj);
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look at the group '%s'", name);
        }
        mp_put_map_header(b, 4);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "group");
        mp_put_cstr(b, "members");
        mp_put_uint(b, gi.nlinks);
    } else if (oi.type == H5O_TYPE_NAMED_DATATYPE) {
        mp_put_map_header(b, 6);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "datatype");
        mp_put_cstr(b, "dtype");
        h5a_put_dtype(b, obj);
        mp_put_cstr(b, "hdf5_class");
        mp_put_cstr(b, h5a_class_name(H5Tget_class(obj)));
        mp_put_cstr(b, "type");
        h5a_put_type(b, obj);
    } else {
        mp_put_map_header(b, 3);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, h5a_otype_name(oi.type));
    }
    put_nattrs(b, obj);
    mp_put_cstr(b, "attrs");
    int rc = h5a_put_attrs(b, obj, false, err);
    H5Oclose(obj);
    return rc;
}
