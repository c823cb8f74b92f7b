/* The asynchronous API's requests: each builds its h5c_request and queues
 * it with h5c_async_submit (async.c), which owns the connection, the
 * output buffer and the callbacks; and the settings later requests take
 * (durability, file). Kept apart so that async.c stays about the one
 * connection. */
#include <stdlib.h>
#include <string.h>

#include "client/async.h"
#include "proto/errors.h"

static int submit(hdf5a_async *ac, const h5c_request *req, hdf5a_callback *fn, void *privdata)
{
    return h5c_async_submit(ac, req, fn, privdata, NULL);
}

HDF5A_API int hdf5a_async_create_group(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                       void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_GROUP, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_write(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                const hdf5a_compression *comp, hdf5a_callback *cb,
                                void *privdata)
{
    h5c_request r = {.op = H5C_WRITE, .path = path, .array = a, .comp = comp};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_append(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                 const hdf5a_compression *comp, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_APPEND, .path = path, .array = a, .comp = comp};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_insert(hdf5a_async *ac, const char *path, int64_t index,
                                 const hdf5a_array *a, const hdf5a_compression *comp,
                                 hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_INSERT, .path = path, .array = a, .comp = comp, .index = index};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_read(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {.op = H5C_READ, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_delete(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_DELETE, .path = path};
    return submit(ac, &r, cb, privdata);
}

/* ---- accessors ---- */

HDF5A_API int hdf5a_async_set_attr(hdf5a_async *ac, const char *path, const char *name,
                                   const hdf5a_array *value, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_SET_ATTR, .path = path, .name = name, .array = value};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_get_attr(hdf5a_async *ac, const char *path, const char *name,
                                   hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_GET_ATTR, .path = path, .name = name};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_list_attrs(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                     void *privdata)
{
    h5c_request r = {.op = H5C_LIST_ATTRS, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_delete_attr(hdf5a_async *ac, const char *path, const char *name,
                                      hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_DELETE_ATTR, .path = path, .name = name};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_list(hdf5a_async *ac, const char *path, const char *after,
                               uint64_t limit, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_LIST, .path = path, .after = after, .limit = limit};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_walk(hdf5a_async *ac, const char *path, unsigned max_depth,
                               const char *after, uint64_t limit, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {
        .op = H5C_WALK, .path = path, .after = after, .limit = limit, .max_depth = max_depth};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_info(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {.op = H5C_INFO, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_exists(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata)
{
    h5c_request r = {.op = H5C_EXISTS, .path = path};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_compact(hdf5a_async *ac, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_COMPACT};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_create_link(hdf5a_async *ac, const char *path, const char *target,
                                      hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_LINK, .path = path, .target = target};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_move(hdf5a_async *ac, const char *path, const char *dest,
                               hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_MOVE, .path = path, .dest = dest};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_fd(const hdf5a_async *ac) { return ac->fd; }

HDF5A_API const char *hdf5a_async_errstr(const hdf5a_async *ac) { return ac->errstr; }

HDF5A_API int hdf5a_async_error(const hdf5a_async *ac) { return ac->err; }

HDF5A_API size_t hdf5a_async_pending(const hdf5a_async *ac) { return ac->pending; }

HDF5A_API int hdf5a_async_read_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                     int nsel, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_READ_SLICE, .path = path, .sel = sel, .nsel = nsel};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_write_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                      int nsel, const hdf5a_array *a, hdf5a_callback *cb,
                                      void *privdata)
{
    h5c_request r = {.op = H5C_WRITE_SLICE, .path = path, .sel = sel, .nsel = nsel, .array = a};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_create_dataset(hdf5a_async *ac, const char *path, int ndim,
                                         const uint64_t *shape, const char *dtype,
                                         const hdf5a_create_opts *opts, hdf5a_callback *cb,
                                         void *privdata)
{
    h5c_request r = {.op = H5C_CREATE_DATASET, .path = path, .ndim = ndim, .shape = shape,
                     .dtype = dtype, .opts = opts};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_resize(hdf5a_async *ac, const char *path, int ndim,
                                 const uint64_t *shape, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = ndim, .shape = shape};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_resize_axis(hdf5a_async *ac, const char *path, int axis,
                                      uint64_t size, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = 1, .shape = &size,
                     .has_axis = true, .index = axis};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_batch_send(hdf5a_async *ac, hdf5a_batch *b, hdf5a_callback *cb,
                                     void *privdata)
{
    h5c_request r;
    int rc = h5c_batch_request(b, &r);
    return rc ? rc : h5c_async_submit(ac, &r, cb, privdata, b);
}

HDF5A_API int hdf5a_async_auth(hdf5a_async *ac, const char *token, hdf5a_callback *cb,
                               void *privdata)
{
    h5c_request r = {.op = H5C_AUTH, .token = token};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_ping(hdf5a_async *ac, hdf5a_callback *cb, void *privdata)
{
    h5c_request r = {.op = H5C_PING};
    return submit(ac, &r, cb, privdata);
}

HDF5A_API int hdf5a_async_set_durability(hdf5a_async *ac, hdf5a_durability d)
{
    if (!ac || (unsigned)d > HDF5A_DURABILITY_FSYNC)
        return HDF5A_EINVAL;
    ac->durability = d;
    return 0;
}

HDF5A_API int hdf5a_async_set_file(hdf5a_async *ac, const char *file)
{
    if (!ac)
        return HDF5A_EINVAL;
    char *copy = NULL;
    if (file && !(copy = strdup(file)))
        return HDF5A_ENOMEM;
    free(ac->file);
    ac->file = copy;
    if (ac->fw)
        h5c_afw_file_changed(ac); /* cluster_nodes: to the file's owner */
    return 0;
}

HDF5A_API int hdf5a_async_sync(hdf5a_async *ac, hdf5a_durability level, hdf5a_callback *cb,
                               void *privdata)
{
    if (!ac)
        return HDF5A_EINVAL;
    if (level != HDF5A_DURABILITY_FLUSH && level != HDF5A_DURABILITY_FSYNC)
        return h5a_fail(ac->errstr, sizeof ac->errstr, HDF5A_EINVAL,
                        "hdf5a_async_sync takes HDF5A_DURABILITY_FLUSH or _FSYNC");
    h5c_request r = {.op = H5C_PING, .durability = level};
    return submit(ac, &r, cb, privdata);
}
