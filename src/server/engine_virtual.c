/* create_virtual (issue 14): a virtual dataset (H5Pset_virtual) at a path
 * of the request's file over datasets of files under the same data root,
 * the way facilities stitch one file per writer into one logical dataset
 * (EuXFEL, DLS odin-data, LCLS). The sources' types and shapes were looked
 * up in their own files before the op runs (files.c,
 * h5a_files_resolve_sources): this file only builds the mapping.
 *
 *   stack   a new first axis, one slot per source: (n, *shape)
 *   concat  along axis 0: (sum of lengths, *rest); sizes fixed at creation
 *   unlimited (one source whose file holds "%b"): HDF5's printf mapping;
 *           block k of the virtual dataset comes from the file with k in
 *           place of %b, so files written later keep appearing. Its size
 *           is computed by HDF5 when the dataset is opened (from the files
 *           that exist), and the sources' length along axis 0 is fixed.
 *
 * Layer 7 of the engine (engine_err.h). */
#include <string.h>

#include "server/engine_dset.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"
#include "server/engine_state.h"

/* Do all sources fit one another? Same type; stack: the same shape;
 * concat: the same shape after axis 0. */
static int check_sources(const h5a_request *r, h5a_err *err)
{
    const h5a_vsource *a = &r->vsrc[0];
    if (r->vlayout == VLAYOUT_CONCAT && a->ndim == 0)
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH, "scalar datasets cannot be concatenated");
    if (a->ndim + (r->vlayout == VLAYOUT_STACK) > H5A_MAX_DIMS)
        return h5a_err_set(err, H5A_E_SHAPE_MISMATCH, "too many axes");
    for (size_t i = 1; i < r->nvsrc; i++) {
        const h5a_vsource *b = &r->vsrc[i];
        htri_t eq = H5Tequal((hid_t)a->type, (hid_t)b->type);
        if (eq <= 0)
            return h5a_err_set(err, H5A_E_TYPE_MISMATCH,
                               "source %zu ('%s') has another type than source 0", i, b->path);
        bool ok = b->ndim == a->ndim;
        for (int k = r->vlayout == VLAYOUT_CONCAT; ok && k < a->ndim; k++)
            ok = a->dims[k] == b->dims[k];
        if (!ok)
            return h5a_err_set(err, H5A_E_SHAPE_MISMATCH,
                               "source %zu ('%s') has another shape than source 0%s", i, b->path,
                               r->vlayout == VLAYOUT_CONCAT ? " (after axis 0)" : "");
    }
    return 0;
}

int h5a_op_CREATE_VIRTUAL(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    int kind, rc;
    if (strcmp(r->path, "/") == 0)
        return h5a_err_set(err, H5A_E_BAD_PATH, "'/' is the root group, it cannot be a dataset");
    if ((rc = h5a_dset_kind(e, r->path, &kind, err))) return rc;
    if (kind != K_NONE)
        return h5a_err_set(err, H5A_E_EXISTS, "'%s' already exists", r->path);
    for (size_t i = 0; i < r->nvsrc; i++) /* looked up by files.c before the op */
        if (r->vsrc[i].type < 0 || !r->vsrc[i].rel)
            return h5a_err_set(err, H5A_E_INTERNAL, "the sources were not looked up");
    if ((rc = check_sources(r, err))) return rc;
    const h5a_vsource *s0 = &r->vsrc[0];
    bool stack = r->vlayout == VLAYOUT_STACK;
    int vnd = s0->ndim + stack;
    hsize_t vdims[H5A_MAX_DIMS], vmax[H5A_MAX_DIMS];
    for (int k = 0; k < s0->ndim; k++) vdims[k + stack] = vmax[k + stack] = s0->dims[k];
    if (r->vunlimited) {
        vdims[0] = 0;
        vmax[0] = H5S_UNLIMITED;
    } else if (stack) {
        vdims[0] = vmax[0] = r->nvsrc;
    } else {
        hsize_t total = 0;
        for (size_t i = 0; i < r->nvsrc; i++) total += r->vsrc[i].dims[0];
        vdims[0] = vmax[0] = total;
    }
    hid_t vspace = H5Screate_simple(vnd, vdims, vmax), dcpl = H5Pcreate(H5P_DATASET_CREATE),
          lcpl = h5a_path_lcpl(), d = H5I_INVALID_HID;
    if (vspace < 0 || dcpl < 0 || lcpl < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot set up the virtual dataset");
        goto out;
    }
    hsize_t start[H5A_MAX_DIMS] = {0}, stride[H5A_MAX_DIMS], count[H5A_MAX_DIMS],
            block[H5A_MAX_DIMS];
    hsize_t offset = 0;
    for (size_t i = 0; i < r->nvsrc; i++) {
        const h5a_vsource *v = &r->vsrc[i];
        hsize_t sd[H5A_MAX_DIMS];
        for (int k = 0; k < v->ndim; k++) sd[k] = v->dims[k];
        /* the slot of source i in the virtual dataset */
        for (int k = 0; k < vnd; k++) {
            start[k] = 0;
            stride[k] = 1;
            count[k] = 1;
            block[k] = vdims[k];
        }
        hsize_t len0 = stack ? 1 : sd[0];
        if (r->vunlimited) {
            stride[0] = len0;
            count[0] = H5S_UNLIMITED;
            block[0] = len0;
        } else {
            start[0] = stack ? i : offset;
            block[0] = len0;
            offset += len0;
        }
        hid_t sspace = v->ndim ? H5Screate_simple(v->ndim, sd, NULL) : H5Screate(H5S_SCALAR);
        herr_t ok = sspace >= 0 && (len0 > 0 || r->vunlimited)
                        ? H5Sselect_hyperslab(vspace, H5S_SELECT_SET, start, stride, count, block)
                        : 0;
        if (ok >= 0 && sspace >= 0 && (len0 > 0 || r->vunlimited))
            ok = H5Pset_virtual(dcpl, vspace, v->rel, v->path, sspace);
        if (sspace >= 0) H5Sclose(sspace);
        if (sspace < 0 || ok < 0) {
            rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot map source %zu ('%s')", i, v->path);
            goto out;
        }
    }
    H5Sselect_all(vspace);
    d = H5Dcreate2(e->file, r->path, (hid_t)s0->type, vspace, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot create virtual dataset '%s'", r->path);
        goto out;
    }
    h5a_state_mark_dirty(e);
    h5a_put_shape_result(&r->reply, vnd, vdims);
out:
    h5a_close_id(&d, H5Dclose);
    h5a_close_id(&vspace, H5Sclose);
    h5a_close_id(&dcpl, H5Pclose);
    h5a_close_id(&lcpl, H5Pclose);
    return rc;
}
