/* hdf5a_batch_*: ops queued on the client side and sent as one `batch`
 * request (docs/protocol.md, "batch"), applied all or nothing by the
 * server. Each op is encoded when it is added (by the codec, as a map
 * without id, its array bytes copied), so a bad argument is reported at
 * once and the batch owns everything it sends. Its own file so that the
 * blocking client stays what it was; the round trip is blocking.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "proto/errors.h"

struct hdf5a_batch {
    mp_buf ops;     /* the packed maps, one after the other */
    size_t n;       /* how many */
    h5c_op *kinds;  /* each op's kind (which results carry a shape) */
    size_t cap;
    /* after a successful send: the shape after each op (ndim 0: none) */
    int *ndim;
    uint64_t (*shape)[32];
    size_t nres;
    char errstr[H5C_ERRLEN];
};

HDF5A_API hdf5a_batch *hdf5a_batch_new(void)
{
    return calloc(1, sizeof(hdf5a_batch));
}

HDF5A_API void hdf5a_batch_clear(hdf5a_batch *b)
{
    if (!b)
        return;
    b->ops.len = 0;
    b->n = 0;
    b->nres = 0;
    b->errstr[0] = '\0';
}

HDF5A_API void hdf5a_batch_free(hdf5a_batch *b)
{
    if (!b)
        return;
    mp_buf_free(&b->ops);
    free(b->kinds);
    free(b->ndim);
    free(b->shape);
    free(b);
}

HDF5A_API size_t hdf5a_batch_count(const hdf5a_batch *b)
{
    return b ? b->n : 0;
}

HDF5A_API const char *hdf5a_batch_errstr(const hdf5a_batch *b)
{
    return b ? b->errstr : "";
}

static int room(hdf5a_batch *b)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 16;
    h5c_op *k = realloc(b->kinds, cap * sizeof *k);
    if (!k)
        return h5a_fail(b->errstr, sizeof b->errstr, HDF5A_ENOMEM, "out of memory");
    b->kinds = k;
    b->cap = cap;
    return 0;
}

/* Encode r as a map without id (data inline) at the end of b->ops. */
static int add(hdf5a_batch *b, h5c_request *r)
{
    if (!b)
        return HDF5A_EINVAL;
    b->errstr[0] = '\0';
    int rc = room(b);
    if (rc)
        return rc;
    r->no_id = true;
    size_t start = b->ops.len;
    const void *tail;
    size_t tail_len;
    if ((rc = h5c_encode_request(&b->ops, 0, r, &tail, &tail_len, b->errstr, sizeof b->errstr)))
        return rc;
    /* the frame's length prefix goes; the data (the map's last value) joins it */
    memmove(b->ops.data + start, b->ops.data + start + 4, b->ops.len - start - 4);
    b->ops.len -= 4;
    if (tail_len)
        mp_put_raw(&b->ops, tail, tail_len);
    if (b->ops.oom) {
        b->ops.len = start;
        b->ops.oom = false;
        return h5a_fail(b->errstr, sizeof b->errstr, HDF5A_ENOMEM, "out of memory");
    }
    b->kinds[b->n++] = r->op;
    return 0;
}

HDF5A_API int hdf5a_batch_create_group(hdf5a_batch *b, const char *path)
{
    h5c_request r = {.op = H5C_CREATE_GROUP, .path = path};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_write(hdf5a_batch *b, const char *path, const hdf5a_array *a,
                                const hdf5a_compression *comp)
{
    h5c_request r = {.op = H5C_WRITE, .path = path, .array = a, .comp = comp};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_append(hdf5a_batch *b, const char *path, const hdf5a_array *a,
                                 const hdf5a_compression *comp)
{
    h5c_request r = {.op = H5C_APPEND, .path = path, .array = a, .comp = comp};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_insert(hdf5a_batch *b, const char *path, int64_t index,
                                 const hdf5a_array *a, const hdf5a_compression *comp)
{
    h5c_request r = {.op = H5C_INSERT, .path = path, .array = a, .comp = comp, .index = index};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_delete(hdf5a_batch *b, const char *path)
{
    h5c_request r = {.op = H5C_DELETE, .path = path};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_resize(hdf5a_batch *b, const char *path, int ndim,
                                 const uint64_t *shape)
{
    h5c_request r = {.op = H5C_RESIZE, .path = path, .ndim = ndim, .shape = shape};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_set_attr(hdf5a_batch *b, const char *path, const char *name,
                                   const hdf5a_array *value)
{
    h5c_request r = {.op = H5C_SET_ATTR, .path = path, .name = name, .array = value};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_delete_attr(hdf5a_batch *b, const char *path, const char *name)
{
    h5c_request r = {.op = H5C_DELETE_ATTR, .path = path, .name = name};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_create_link(hdf5a_batch *b, const char *path, const char *target)
{
    h5c_request r = {.op = H5C_CREATE_LINK, .path = path, .target = target};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_move(hdf5a_batch *b, const char *path, const char *dest)
{
    h5c_request r = {.op = H5C_MOVE, .path = path, .dest = dest};
    return add(b, &r);
}

HDF5A_API int hdf5a_batch_add_raw(hdf5a_batch *b, const void *msgpack_map, size_t len)
{
    if (!b || !msgpack_map)
        return HDF5A_EINVAL;
    b->errstr[0] = '\0';
    mp_doc doc = {0};
    char why[256];
    int rc = mp_decode(msgpack_map, len, NULL, &doc, why, sizeof why);
    bool is_map = rc == 0 && doc.nodes[0].type == MP_MAP;
    /* its kind, for the shape in its result */
    h5c_op kind = H5C_PING;
    const mp_node *op = is_map ? mp_map_get(&doc.nodes[0], "op") : NULL;
    static const struct { const char *name; h5c_op op; } shaped[] = {
        {"write", H5C_WRITE}, {"update", H5C_WRITE}, {"append", H5C_APPEND},
        {"insert", H5C_INSERT}, {"resize", H5C_RESIZE}, {"write_slice", H5C_WRITE_SLICE},
        {"create_dataset", H5C_CREATE_DATASET}};
    for (size_t i = 0; op && mp_is_raw(op) && i < sizeof shaped / sizeof shaped[0]; i++)
        if (mp_raw_eq(op, shaped[i].name))
            kind = shaped[i].op;
    mp_doc_free(&doc);
    if (!is_map)
        return h5a_fail(b->errstr, sizeof b->errstr, HDF5A_EINVAL,
                        "an op of a batch must be one MessagePack map%s%s", rc ? ": " : "",
                        rc ? why : "");
    if ((rc = room(b)))
        return rc;
    mp_put_raw(&b->ops, msgpack_map, len);
    if (b->ops.oom)
        return h5a_fail(b->errstr, sizeof b->errstr, HDF5A_ENOMEM, "out of memory");
    b->kinds[b->n++] = kind;
    return 0;
}

int h5c_result_batch(const mp_node *result, hdf5a_batch *b, char *err, size_t errlen)
{
    if (!result || result->type != MP_ARRAY || result->len != b->n)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "a batch's result is not a list of %zu",
                        b->n);
    int *nd = realloc(b->ndim, (b->n ? b->n : 1) * sizeof *nd);
    if (nd)
        b->ndim = nd;
    uint64_t(*sh)[32] = realloc(b->shape, (b->n ? b->n : 1) * sizeof *sh);
    if (sh)
        b->shape = sh;
    if (!nd || !sh)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    const mp_node *it = mp_first_child(result);
    for (size_t i = 0; i < b->n; i++, it = mp_next(it)) {
        b->ndim[i] = 0;
        if (h5c_op_gives_shape(b->kinds[i])) {
            int rc = h5c_result_shape(it, &b->ndim[i], b->shape[i], err, errlen);
            if (rc)
                return rc;
        }
    }
    b->nres = b->n;
    return 0;
}

int h5c_batch_request(hdf5a_batch *b, h5c_request *r)
{
    if (!b)
        return HDF5A_EINVAL;
    if (b->n > UINT32_MAX)
        return h5a_fail(b->errstr, sizeof b->errstr, HDF5A_EINVAL, "too many ops in a batch");
    b->nres = 0;
    h5c_request one = {.op = H5C_BATCH, .ops = b->ops.data, .ops_len = b->ops.len,
                       .nops = (uint32_t)b->n};
    *r = one;
    return 0;
}

HDF5A_API int hdf5a_batch_send(hdf5a_client *c, hdf5a_batch *b, long *failed)
{
    if (failed)
        *failed = -1;
    h5c_request r;
    int rc = c ? h5c_batch_request(b, &r) : HDF5A_EINVAL;
    return rc ? rc : h5c_blocking_batch(c, &r, b, failed);
}

HDF5A_API int hdf5a_batch_result_shape(const hdf5a_batch *b, size_t i, int *ndim,
                                       uint64_t shape[32])
{
    if (!b || !ndim || i >= b->nres)
        return HDF5A_EINVAL;
    *ndim = b->ndim[i];
    if (shape)
        memcpy(shape, b->shape[i], sizeof(uint64_t) * (size_t)b->ndim[i]);
    return 0;
}
