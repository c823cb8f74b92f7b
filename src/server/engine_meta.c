/* The metadata operations that inspect one object or rearrange links:
 * info, exists, create_link, move. Paths are followed the way h5py's
 * f[path] follows them (engine_path); only move and create_link (and
 * delete, engine_data.c) look at the last component as a link, so a soft
 * link is moved or removed, not its target. Wire formats in
 * docs/protocol.md. */
#include <stdlib.h>
#include <string.h>

#include "server/engine_describe.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"

/* ---- info ---- */

/* With `link`, a last component that is a soft, external or user-defined
 * link is described as list describes it, with the info of what it leads to
 * (nil when it leads nowhere; an external link is never followed). */
static int info_link(h5a_engine *e, h5a_request *r, bool *done, h5a_err *err)
{
    h5a_found f;
    *done = false;
    if (strcmp(r->path, "/") == 0) return 0;
    int rc = h5a_path_find(e->file, r->path, false, &f, err);
    if (rc) return rc;
    if (f.missing) return h5a_err_set(err, H5A_E_NOT_FOUND, "no object at '%s'", r->path);
    if (f.link == H5L_TYPE_HARD) return 0;
    *done = true;
    mp_buf *b = &r->reply;
    H5L_info_t li;
    if (H5Lget_info(e->file, r->path, &li, H5P_DEFAULT) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look at the link '%s'", r->path);
    if (li.type != H5L_TYPE_SOFT && li.type != H5L_TYPE_EXTERNAL) {
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "user_link");
        mp_put_cstr(b, "info");
        mp_put_nil(b);
        return 0;
    }
    char *val = malloc(li.u.val_size + 1);
    if (!val) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
    if (H5Lget_val(e->file, r->path, val, li.u.val_size, H5P_DEFAULT) < 0) {
        free(val);
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the link '%s'", r->path);
    }
    val[li.u.val_size] = '\0';
    bool soft = li.type == H5L_TYPE_SOFT;
    const char *fname = NULL, *oname = val;
    unsigned flags;
    if (!soft && H5Lunpack_elink_val(val, li.u.val_size, &flags, &fname, &oname) < 0) {
        free(val);
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the external link '%s'", r->path);
    }
    mp_put_map_header(b, soft ? 3 : 4);
    mp_put_cstr(b, "kind");
    mp_put_cstr(b, soft ? "soft_link" : "external_link");
    if (!soft) {
        mp_put_cstr(b, "file");
        mp_put_cstr(b, fname);
    }
    mp_put_cstr(b, "target");
    mp_put_cstr(b, oname);
    free(val);
    mp_put_cstr(b, "info");
    H5O_type_t t;
    h5a_err ignored;
    if (!soft || h5a_path_object(e->file, r->path, &t, &ignored)) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
        return 0;
    }
    return h5a_put_info(b, e->file, r->path, err);
}

int h5a_op_INFO(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    H5O_type_t t;
    int rc;
    if (r->link) {
        bool done;
        if ((rc = info_link(e, r, &done, err)) || done) return rc;
    }
    if ((rc = h5a_path_object(e->file, r->path, &t, err))) return rc;
    return h5a_put_info(&r->reply, e->file, r->path, err);
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
