/* The metadata operations on attributes: set_attr, get_attr, list_attrs,
 * delete_attr. An attribute is stored as a dataset of the same value would
 * be (the same HDF5 type and shape, h5py's mapping) and read back the way a
 * dataset is read. */
#include <stdio.h>
#include <stdlib.h>

#include "server/bigbuf.h"
#include "server/engine_describe.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/h5types.h"

static int open_object(hid_t file, const char *path, hid_t *obj, h5a_err *err)
{
    H5O_type_t t;
    int rc = h5a_path_object(file, path, &t, err);
    if (rc) return rc;
    if ((*obj = H5Oopen(file, path, H5P_DEFAULT)) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open '%s'", path);
    return 0;
}

static int attr_exists(hid_t obj, const char *path, const char *name, bool *ex, h5a_err *err)
{
    htri_t e = H5Aexists(obj, name);
    if (e < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look up attribute '%s' of '%s'", name,
                          path);
    *ex = e > 0;
    return 0;
}

/* An existing attribute of that name is replaced: the new one is made
 * under a temporary name first, so a failure leaves the old one as it was. */
int h5a_op_SET_ATTR(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    hid_t obj, mt = H5I_INVALID_HID, sp = H5I_INVALID_HID, att = H5I_INVALID_HID;
    int rc = open_object(e->file, r->path, &obj, err);
    if (rc) return rc;
    const h5a_array *a = &r->data;
    char tmp[64] = "";
    bool exists = false;
    if ((rc = attr_exists(obj, r->path, r->name, &exists, err))) goto out;
    if ((mt = h5t_from_dtype(a->type, err->msg, sizeof err->msg)) < 0) {
        rc = h5a_err_code(err, H5A_E_UNSUPPORTED_TYPE);
        goto out;
    }
    if (a->ndim) {
        hsize_t dims[H5A_MAX_DIMS];
        for (int i = 0; i < a->ndim; i++) dims[i] = a->dims[i];
        sp = H5Screate_simple(a->ndim, dims, NULL);
    } else {
        sp = H5Screate(H5S_SCALAR);
    }
    for (unsigned i = 0; exists && !tmp[0]; i++) {
        bool taken = false;
        snprintf(tmp, sizeof tmp, ".hdf5-async-tmp-%u", i);
        if ((rc = attr_exists(obj, r->path, tmp, &taken, err))) goto out;
        if (taken) tmp[0] = '\0';
    }
    const char *made = exists ? tmp : r->name;
    if ((att = H5Acreate2(obj, made, mt, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create attribute '%s' of '%s'", r->name,
                        r->path);
        goto out;
    }
    h5a_state_mark_dirty(e);
    uint64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->dims[i];
    if (n && H5Awrite(att, mt, a->data) < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot write attribute '%s' of '%s'", r->name,
                        r->path);
        h5a_close_id(&att, H5Aclose);
        H5Adelete(obj, made);
        H5Eclear2(H5E_DEFAULT);
        goto out;
    }
    h5a_close_id(&att, H5Aclose);
    if (exists && (H5Adelete(obj, r->name) < 0 || H5Arename(obj, tmp, r->name) < 0)) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot replace attribute '%s' of '%s'", r->name,
                        r->path);
        goto out;
    }
    mp_put_nil(&r->reply);
out:
    h5a_close_id(&att, H5Aclose);
    h5a_close_id(&sp, H5Sclose);
    h5a_close_id(&mt, H5Tclose);
    H5Oclose(obj);
    return rc;
}

static int open_attr(hid_t obj, const h5a_request *r, hid_t *att, h5a_err *err)
{
    bool ex = false;
    int rc = attr_exists(obj, r->path, r->name, &ex, err);
    if (rc) return rc;
    if (!ex)
        return h5a_err_set(err, H5A_E_NOT_FOUND, "'%s' has no attribute '%s'", r->path, r->name);
    if ((*att = H5Aopen(obj, r->name, H5P_DEFAULT)) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open attribute '%s' of '%s'", r->name,
                          r->path);
    return 0;
}

/* The value encoded as a read encodes a dataset's (zero copy for arrays). */
int h5a_op_GET_ATTR(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    hid_t obj, att = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    dtype *dt = NULL;
    void *buf = NULL;
    int rc = open_object(e->file, r->path, &obj, err);
    if (rc) return rc;
    if ((rc = open_attr(obj, r, &att, err))) goto out;
    ft = H5Aget_type(att);
    sp = H5Aget_space(att);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (H5Sget_simple_extent_type(sp) == H5S_NULL) {
        rc = h5a_err_set(err, H5A_E_UNSUPPORTED_TYPE,
                         "attribute '%s' of '%s' is empty (a null dataspace, h5py.Empty): it has "
                         "no value",
                         r->name, r->path);
        goto out;
    }
    if (nd < 0 || nd > H5A_MAX_DIMS) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the shape of attribute '%s'", r->name);
        goto out;
    }
    if ((rc = h5t_to_dtype(ft, &dt, err->msg, sizeof err->msg))) {
        h5a_err_code(err, rc);
        goto out;
    }
    hsize_t dims[H5A_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    h5a_array a = {.type = dt, .ndim = nd};
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) n *= (a.dims[i] = dims[i]);
    size_t size = H5Tget_size(ft);
    if (n && size > (0xFFFFFFFFull - 65536) / n) {
        rc = h5a_err_set(err, H5A_E_TOO_LARGE,
                         "attribute '%s' of '%s' is larger than one reply frame (4 GiB)", r->name,
                         r->path);
        goto out;
    }
    a.nbytes = (size_t)n * size;
    if (!(buf = h5a_buf_alloc(a.nbytes ? a.nbytes : 1))) {
        rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory for %zu bytes", a.nbytes);
        goto out;
    }
    if (n && H5Aread(att, ft, buf) < 0) {
        h5a_buf_free(buf);
        buf = NULL;
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read attribute '%s' of '%s'", r->name,
                        r->path);
        goto out;
    }
    a.data = buf;
    bool follows = false;
    if ((rc = h5a_array_encode(&r->reply, &a, &follows, err->msg, sizeof err->msg))) {
        h5a_err_code(err, rc);
        goto out;
    }
    if (follows) {
        r->reply_data = buf;
        r->reply_data_len = a.nbytes;
        buf = NULL;
    }
out:
    if (buf) {
        if (dt && dt->kind == DT_VLSTR) H5Dvlen_reclaim(ft, sp, H5P_DEFAULT, buf);
        h5a_buf_free(buf);
    }
    dtype_free(dt);
    h5a_close_id(&sp, H5Sclose);
    h5a_close_id(&ft, H5Tclose);
    h5a_close_id(&att, H5Aclose);
    H5Oclose(obj);
    return rc;
}

/* [{"name", "shape", "maxshape", "dtype", "type"[, "value"]}, ...] in name
 * order (engine_describe). */
int h5a_op_LIST_ATTRS(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    hid_t obj;
    int rc = open_object(e->file, r->path, &obj, err);
    if (rc) return rc;
    rc = h5a_put_attrs(&r->reply, obj, r->values, err);
    H5Oclose(obj);
    return rc;
}

int h5a_op_DELETE_ATTR(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    hid_t obj;
    int rc = open_object(e->file, r->path, &obj, err);
    if (rc) return rc;
    bool ex = false;
    if (!(rc = attr_exists(obj, r->path, r->name, &ex, err)) && !ex)
        rc = h5a_err_set(err, H5A_E_NOT_FOUND, "'%s' has no attribute '%s'", r->path, r->name);
    if (!rc && H5Adelete(obj, r->name) < 0)
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot delete attribute '%s' of '%s'", r->name,
                        r->path);
    if (!rc) {
        h5a_state_mark_dirty(e);
        mp_put_nil(&r->reply);
    }
    H5Oclose(obj);
    return rc;
}
