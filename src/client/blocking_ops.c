/* The blocking API's calls: settings and accessors of the client, and one
 * function an operation, each building its h5c_request for
 * h5c_blocking_call (blocking.c), which owns the round trip. Kept apart so
 * that blocking.c is about the round trip alone, not the API's surface. */
#include <stdlib.h>
#include <string.h>

#include "client/blocking.h"
#include "proto/errors.h"
#include "proto/rendezvous.h"

/* ---- the client's state ---- */

HDF5A_API const char *hdf5a_errstr(const hdf5a_client *c) { return c ? c->errstr : ""; }

HDF5A_API void hdf5a_set_progress(hdf5a_client *c, hdf5a_progress_cb *cb, void *ud)
{
    if (!c)
        return;
    c->progress = cb;
    c->progress_ud = cb ? ud : NULL;
}

HDF5A_API void hdf5a_identity(const hdf5a_client *c, const char **name, const char **role)
{
    h5c_identity_get(c ? &c->ident : NULL, name, role);
}

HDF5A_API const char *hdf5a_wrong_node(const hdf5a_client *c)
{
    return c && c->moved_to[0] ? c->moved_to : NULL;
}

/* ---- operations ---- */

HDF5A_API int hdf5a_set_durability(hdf5a_client *c, hdf5a_durability d)
{
    if (!c || (unsigned)d > HDF5A_DURABILITY_FSYNC)
        return HDF5A_EINVAL;
    c->durability = d;
    return 0;
}

HDF5A_API int hdf5a_set_file(hdf5a_client *c, const char *file)
{
    if (!c)
        return HDF5A_EINVAL;
    char *copy = NULL;
    if (file && !(copy = strdup(file)))
        return HDF5A_ENOMEM;
    free(c->file);
    c->file = copy;
    return 0;
}

HDF5A_API int hdf5a_cluster_owner(const char *const *nodes, int n, const char *file)
{
    return nodes && file ? h5a_rendezvous_owner(nodes, n, file) : -1;
}

HDF5A_API int hdf5a_list_files(hdf5a_client *c, hdf5a_listing **out)
{
    if (out)
        *out = NULL;
    if (!out)
        return HDF5A_EINVAL;
    h5c_request r = {.op = H5C_LIST_FILES};
    return h5c_blocking_call(c, &r, NULL, NULL, out);
}

HDF5A_API int hdf5a_sync(hdf5a_client *c, hdf5a_durability level)
{
    if (!c)
        return HDF5A_EINVAL;
    if (level != HDF5A_DURABILITY_FLUSH && level != HDF5A_DURABILITY_FSYNC)
        return h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EINVAL,
                        "hdf5a_sync takes HDF5A_DURABILITY_FLUSH or _FSYNC");
    h5c_request r = {.op = H5C_PING, .durability = level};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_auth(hdf5a_client *c, const char *token)
{
    h5c_identity id;
    h5c_request r = {.op = H5C_AUTH, .token = token};
    int rc = h5c_blocking_call(c, &r, NULL, NULL, &id);
    if (rc == 0)
        c->ident = id;
    return rc;
}

HDF5A_API int hdf5a_ping(hdf5a_client *c)
{
    h5c_request r = {.op = H5C_PING};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_create_group(hdf5a_client *c, const char *path)
{
    h5c_request r = {.op = H5C_CREATE_GROUP, .path = path};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_write(hdf5a_client *c, const char *path, const hdf5a_array *a,
                          const hdf5a_compression *comp)
{
    h5c_request r = {.op = H5C_WRITE, .path = path, .array = a, .comp = comp};
    int ndim;
    uint64_t shape[32];
    return h5c_blocking_call(c, &r, &ndim, shape, NULL);
}

static int grow(hdf5a_client *c, const h5c_request *r, uint64_t *new_len)
{
    int ndim = 0;
    uint64_t shape[32];
    int rc = h5c_blocking_call(c, r, &ndim, shape, NULL);
    if (rc == 0 && new_len)
        *new_len = ndim > 0 ? shape[0] : 0;
    return rc;
}

HDF5A_API int hdf5a_append(hdf5a_client *c, const char *path, const hdf5a_array *a,
                           const hdf5a_compression *comp, uint64_t *new_len)
{
    h5c_request r = {.op = H5C_APPEND, .path = path, .array = a, .comp = comp};
    return grow(c, &r, new_len);
}

HDF5A_API int hdf5a_insert(hdf5a_client *c, const char *path, int64_t index,
                           const hdf5a_array *a, const hdf5a_compression *comp,
                           uint64_t *new_len)
{
    h5c_request r = {.op = H5C_INSERT, .path = path, .array = a, .comp = comp, .index = index};
    return grow(c, &r, new_len);
}

HDF5A_API int hdf5a_read(hdf5a_client *c, const char *path, hdf5a_array **out)
{
    if (!out)
        return c ? h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EINVAL, "out is NULL")
                 : HDF5A_EINVAL;
    *out = NULL;
    h5c_request r = {.op = H5C_READ, .path = path};
    return h5c_blocking_call(c, &r, NULL, NULL, out);
}

HDF5A_API int hdf5a_delete(hdf5a_client *c, const char *path)
{
    h5c_request r = {.op = H5C_DELETE, .path = path};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_read_slice(hdf5a_client *c, const char *path, const hdf5a_sel *sel,
                               int nsel, hdf5a_array **out)
{
    if (!out)
        return c ? h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EINVAL, "out is NULL")
                 : HDF5A_EINVAL;
    *out = NULL;
    h5c_request r = {.op = H5C_READ_SLICE, .path = path, .sel = sel, .nsel = nsel};
    return h5c_blocking_call(c, &r, NULL, NULL, out);
}

HDF5A_API int hdf5a_write_slice(hdf5a_client *c, const char *path, const hdf5a_sel *sel,
                                int nsel, const hdf5a_array *a)
{
    h5c_request r = {.op = H5C_WRITE_SLICE, .path = path, .sel = sel, .nsel = nsel, .array = a};
    int ndim;
    uint64_t shape[32];
    return h5c_blocking_call(c, &r, &ndim, shape, NULL);
}

HDF5A_API int hdf5a_create_dataset(hdf5a_client *c, const char *path, int ndim,
                                   const uint64_t *shape, const char *dtype,
                                   const hdf5a_create_opts *opts)
{
    h5c_request r = {.op = H5C_CREATE_DATASET, .path = path, .ndim = ndim, .shape = shape,
                     .dtype = dtype, .opts = opts};
    int nd;
    uint64_t sh[32];
    return h5c_blocking_call(c, &r, &nd, sh, NULL);
}

HDF5A_API int hdf5a_resize(hdf5a_client *c, const char *path, int ndim, const uint64_t *shape)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = ndim, .shape = shape};
    int nd;
    uint64_t sh[32];
    return h5c_blocking_call(c, &r, &nd, sh, NULL);
}

HDF5A_API int hdf5a_resize_axis(hdf5a_client *c, const char *path, int axis, uint64_t size,
                                int *new_ndim, uint64_t *new_shape)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = 1, .shape = &size,
                     .has_axis = true, .index = axis};
    int nd = 0;
    uint64_t sh[32];
    int rc = h5c_blocking_call(c, &r, &nd, sh, NULL);
    if (rc == 0 && new_ndim)
        *new_ndim = nd;
    if (rc == 0 && new_shape)
        memcpy(new_shape, sh, sizeof(uint64_t) * (size_t)nd);
    return rc;
}

/* ---- attributes, listing, links ---- */

/* A call whose result goes to *out (a pointer the caller gets, NULL on
 * failure). */
static int call_out(hdf5a_client *c, const h5c_request *r, void **out)
{
    if (!out)
        return c ? h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EINVAL, "out is NULL")
                 : HDF5A_EINVAL;
    *out = NULL;
    return h5c_blocking_call(c, r, NULL, NULL, out);
}

HDF5A_API int hdf5a_set_attr(hdf5a_client *c, const char *path, const char *name,
                             const hdf5a_array *value)
{
    h5c_request r = {.op = H5C_SET_ATTR, .path = path, .name = name, .array = value};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_get_attr(hdf5a_client *c, const char *path, const char *name,
                             hdf5a_array **out)
{
    h5c_request r = {.op = H5C_GET_ATTR, .path = path, .name = name};
    return call_out(c, &r, (void **)out);
}

HDF5A_API int hdf5a_list_attrs(hdf5a_client *c, const char *path, hdf5a_listing **out)
{
    h5c_request r = {.op = H5C_LIST_ATTRS, .path = path};
    return call_out(c, &r, (void **)out);
}

HDF5A_API int hdf5a_delete_attr(hdf5a_client *c, const char *path, const char *name)
{
    h5c_request r = {.op = H5C_DELETE_ATTR, .path = path, .name = name};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_list(hdf5a_client *c, const char *path, const char *after, uint64_t limit,
                         hdf5a_listing **out)
{
    h5c_request r = {.op = H5C_LIST, .path = path, .after = after, .limit = limit};
    return call_out(c, &r, (void **)out);
}

HDF5A_API int hdf5a_walk(hdf5a_client *c, const char *path, unsigned max_depth,
                         const char *after, uint64_t limit, hdf5a_listing **out)
{
    h5c_request r = {
        .op = H5C_WALK, .path = path, .after = after, .limit = limit, .max_depth = max_depth};
    return call_out(c, &r, (void **)out);
}

HDF5A_API int hdf5a_info(hdf5a_client *c, const char *path, hdf5a_objinfo **out)
{
    h5c_request r = {.op = H5C_INFO, .path = path};
    return call_out(c, &r, (void **)out);
}

HDF5A_API int hdf5a_exists(hdf5a_client *c, const char *path, int *exists)
{
    if (!exists)
        return c ? h5a_fail(c->errstr, sizeof c->errstr, HDF5A_EINVAL, "exists is NULL")
                 : HDF5A_EINVAL;
    *exists = 0;
    h5c_request r = {.op = H5C_EXISTS, .path = path};
    return h5c_blocking_call(c, &r, NULL, NULL, exists);
}

HDF5A_API int hdf5a_compact(hdf5a_client *c, uint64_t *before, uint64_t *after)
{
    uint64_t sizes[2] = {0, 0};
    h5c_request r = {.op = H5C_COMPACT};
    int rc = h5c_blocking_call(c, &r, NULL, NULL, sizes);
    if (before) *before = sizes[0];
    if (after) *after = sizes[1];
    return rc;
}

HDF5A_API int hdf5a_create_link(hdf5a_client *c, const char *path, const char *target)
{
    h5c_request r = {.op = H5C_CREATE_LINK, .path = path, .target = target};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

HDF5A_API int hdf5a_move(hdf5a_client *c, const char *path, const char *dest)
{
    h5c_request r = {.op = H5C_MOVE, .path = path, .dest = dest};
    return h5c_blocking_call(c, &r, NULL, NULL, NULL);
}

/* ---- batches (batch.c builds them) ---- */

int h5c_blocking_batch(hdf5a_client *c, const h5c_request *r, hdf5a_batch *b, long *failed)
{
    if (c)
        c->last_index = -1;
    int rc = h5c_blocking_call(c, r, NULL, NULL, b);
    if (failed)
        *failed = rc && c ? c->last_index : -1;
    return rc;
}
