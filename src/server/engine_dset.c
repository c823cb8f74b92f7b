/* What the data operations share (engine_dset.h). */
#include "server/engine_dset.h"

#include <stdlib.h>
#include <string.h>

#include "server/engine_path.h"
#include "server/h5types.h"

int h5a_dset_kind(h5a_engine *e, const char *path, int *kind, h5a_err *err)
{
    *kind = K_GROUP;
    if (strcmp(path, "/") == 0) return 0;
    if (h5a_cache_has(e, path)) return *kind = K_DATASET, 0;
    h5a_found f;
    int rc = h5a_path_find(e->file, path, true, &f, err);
    if (rc) return rc;
    *kind = f.missing                        ? K_NONE
            : f.type == H5O_TYPE_GROUP       ? K_GROUP
            : f.type == H5O_TYPE_DATASET     ? K_DATASET
                                             : K_OTHER;
    return 0;
}

int h5a_dset_open_existing(h5a_engine *e, const h5a_request *r, hid_t *d, h5a_err *err)
{
    int kind, rc;
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    if (kind == K_NONE) return h5a_err_set(err, H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    if (kind != K_DATASET)
        return h5a_err_set(err, H5A_E_NOT_A_DATASET, "'%s' is a group, not a dataset", r->path);
    *d = h5a_cache_open(e, r->path, err);
    return *d < 0 ? err->code : 0;
}

int h5a_dset_shape(hid_t d, shape_t *s, hsize_t *maxdims, h5a_err *err)
{
    hid_t sp = H5Dget_space(d);
    int n = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (n < 0 || n > H5A_MAX_DIMS) {
        if (sp >= 0) H5Sclose(sp);
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the dataset's shape");
    }
    s->ndim = n;
    hsize_t mx[H5A_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, s->dims, maxdims ? maxdims : mx);
    if (H5Sget_simple_extent_type(sp) == H5S_NULL) {
        H5Sclose(sp);
        return h5a_err_set(err, H5A_E_UNSUPPORTED_TYPE,
                           "the dataset has a null dataspace (no elements)");
    }
    H5Sclose(sp);
    return 0;
}

hid_t h5a_mem_type(const h5a_array *a, h5a_err *err)
{
    hid_t t = h5t_from_dtype(a->type, err->msg, sizeof err->msg);
    if (t < 0) h5a_err_code(err, H5A_E_UNSUPPORTED_TYPE);
    return t;
}

bool h5a_same_type(hid_t a, hid_t b)
{
    if (H5Tequal(a, b) <= 0) return false;
    return H5Tget_class(a) != H5T_STRING || H5Tget_cset(a) == H5Tget_cset(b);
}

static bool is_fixed_string(hid_t t)
{
    return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
}

static bool is_vlen_string(hid_t t)
{
    return H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
}

int h5a_check_type(const char *path, const h5a_array *a, hid_t ft, hid_t mt, bool strings,
                   h5a_err *err)
{
    if (h5a_same_type(ft, mt) || (h5t_is_numeric(ft) && h5t_is_numeric(mt))) return 0;
    if (strings && is_fixed_string(ft) && is_fixed_string(mt) &&
        H5Tget_cset(ft) == H5Tget_cset(mt))
        return 0;
    dtype *fd = NULL;
    char fs[64] = "?", ms[64] = "?";
    if (h5t_to_dtype(ft, &fd, NULL, 0) == 0) dtype_str(fd, fs, sizeof fs);
    dtype_str(a->type, ms, sizeof ms);
    dtype_free(fd);
    H5Eclear2(H5E_DEFAULT);
    return h5a_err_set(err, H5A_E_TYPE_MISMATCH,
                       "data of type %s cannot be stored in '%s' of type %s",
                       ms[0] ? ms : "(struct/string)", path, fs[0] ? fs : "(struct/string)");
}

int h5a_write_all(hid_t d, hid_t mtype, const void *buf, const char *path, h5a_err *err)
{
    if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot write '%s'", path);
    return 0;
}

void h5a_reclaim(hid_t type, const shape_t *s, void *buf)
{
    if (!buf || (H5Tdetect_class(type, H5T_VLEN) <= 0 && !is_vlen_string(type))) return;
    hid_t sp = s->ndim ? H5Screate_simple(s->ndim, s->dims, NULL) : H5Screate(H5S_SCALAR);
    H5Dvlen_reclaim(type, sp, H5P_DEFAULT, buf);
    H5Sclose(sp);
}

int h5a_dset_relink(h5a_engine *e, hid_t d, const char *path, bool exists, h5a_err *err)
{
    h5a_cache_clear(e);
    if (exists && H5Ldelete(e->file, path, H5P_DEFAULT) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot replace '%s'", path);
    hid_t lcpl = h5a_path_lcpl();
    herr_t rc = H5Olink(d, e->file, path, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (rc < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot link dataset at '%s'", path);
    return 0;
}

typedef struct {
    hid_t to;
    int rc;
    h5a_err *err;
} attr_copy;

static herr_t copy_attr_cb(hid_t from, const char *name, const H5A_info_t *ai, void *ud)
{
    attr_copy *c = ud;
    hid_t src = H5Aopen(from, name, H5P_DEFAULT), t = H5I_INVALID_HID, sp = H5I_INVALID_HID,
          dst = H5I_INVALID_HID;
    void *buf = NULL;
    int ok = src >= 0 && (t = H5Aget_type(src)) >= 0 && (sp = H5Aget_space(src)) >= 0;
    hssize_t n = ok ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t size = ok ? H5Tget_size(t) : 0;
    ok = ok && n >= 0 && size && (buf = calloc((size_t)n ? (size_t)n : 1, size)) &&
         (dst = H5Acreate2(c->to, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
         (n == 0 || (H5Aread(src, t, buf) >= 0 && H5Awrite(dst, t, buf) >= 0));
    if (!ok) c->rc = h5a_err_h5(c->err, H5A_E_HDF5_ERROR, "cannot copy attribute '%s'", name);
    /* variable-length members were allocated by H5Aread */
    if (buf && n > 0 && sp >= 0 && (H5Tdetect_class(t, H5T_VLEN) > 0 || is_vlen_string(t)))
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
    free(buf);
    h5a_close_id(&dst, H5Aclose);
    h5a_close_id(&sp, H5Sclose);
    h5a_close_id(&t, H5Tclose);
    h5a_close_id(&src, H5Aclose);
    return ok ? 0 : -1;
}

int h5a_copy_attrs(hid_t from, hid_t to, h5a_err *err)
{
    attr_copy c = {to, 0, err};
    hsize_t idx = 0;
    if (H5Aiterate2(from, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr_cb, &c) < 0 && !c.rc)
        c.rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot copy the attributes");
    H5Eclear2(H5E_DEFAULT);
    return c.rc;
}

void h5a_put_shape_result(mp_buf *b, int ndim, const hsize_t *dims)
{
    mp_put_map_header(b, 1);
    mp_put_cstr(b, "shape");
    mp_put_array_header(b, (size_t)ndim);
    for (int i = 0; i < ndim; i++) mp_put_uint(b, dims[i]);
}
