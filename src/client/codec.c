/* Requests out, replies in, with no I/O: the part of the client both APIs
 * share. Arrays are described to the server with src/proto's dtype/array
 * code, so the client and the server agree on every byte of the form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "proto/array.h"
#include "proto/dtype.h"
#include "proto/errors.h"

/* ---- error names ---- */

/* The public header spells the server's codes out; they must stay the
 * codec's numbers, which travel as the same wire strings. */
_Static_assert(HDF5A_EBAD_REQUEST == H5A_E_BAD_REQUEST && HDF5A_EPROTOCOL_ERROR ==
                   H5A_E_PROTOCOL_ERROR && HDF5A_ENOT_FOUND == H5A_E_NOT_FOUND &&
                   HDF5A_EOUT_OF_RANGE == H5A_E_OUT_OF_RANGE &&
                   HDF5A_EINTERNAL == H5A_E_INTERNAL &&
                   HDF5A_EPERMISSION_DENIED == H5A_E_PERMISSION_DENIED &&
                   H5A_E_COUNT_PLUS_ONE == 19,
               "hdf5_async.h error codes differ from src/proto/errors.h");

HDF5A_API const char *hdf5a_strerror(int code)
{
    if (code == 0)
        return "OK";
    if (code < 0 && code >= HDF5A_EPERMISSION_DENIED)
        return h5a_strerror_code(code); /* the same numbering as src/proto/errors.h */
    switch (code) {
    case HDF5A_EIO: return "IO";
    case HDF5A_ETIMEOUT: return "TIMEOUT";
    case HDF5A_ECLOSED: return "CLOSED";
    case HDF5A_EREPLY: return "REPLY";
    case HDF5A_ENOMEM: return "NOMEM";
    case HDF5A_EINVAL: return "INVAL";
    default: return "UNKNOWN";
    }
}

/* The wire's code string back to its number; the protocol asks clients to
 * take an unknown code as INTERNAL. */
static int code_from_wire(const mp_node *n)
{
    for (int c = HDF5A_EBAD_REQUEST; c >= HDF5A_EPERMISSION_DENIED; c--)
        if (mp_raw_eq(n, h5a_strerror_code(c)))
            return c;
    return HDF5A_EINTERNAL;
}

/* ---- arrays from the caller ---- */

/* The codec's failures on what the caller handed us: a type with no HDF5
 * mapping keeps the server's code, anything else is a bad argument. Out of
 * memory is checked for separately. */
static int arg_code(int rc)
{
    return rc == H5A_E_UNSUPPORTED_TYPE ? HDF5A_EUNSUPPORTED_TYPE : HDF5A_EINVAL;
}

static int parse_descr_json(const char *json, dtype **out, char *err, size_t errlen)
{
    mp_buf mp = {0};
    mp_doc doc = {0};
    int rc = h5c_json_to_msgpack(json, &mp, err, errlen);
    if (rc == 0) {
        char why[256];
        mp_limits lim = {.max_depth = 2 * 32 + 2, .max_nodes = 0};
        rc = mp_decode(mp.data, mp.len, &lim, &doc, why, sizeof why);
        if (rc == 0)
            rc = dtype_parse_node(&doc.nodes[0], out, why, sizeof why);
        if (rc)
            rc = h5a_fail(err, errlen, rc == H5A_E_INTERNAL ? HDF5A_ENOMEM : arg_code(rc),
                          "dtype descr: %s", why);
    }
    mp_doc_free(&doc);
    mp_buf_free(&mp);
    return rc;
}

static int parse_dtype(const char *s, dtype **out, char *err, size_t errlen)
{
    *out = NULL;
    bool utf8 = strcmp(s, "str") == 0;
    if (utf8 || strcmp(s, "bytes") == 0) {
        *out = dtype_new(DT_VLSTR, sizeof(char *));
        if (!*out)
            return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
        (*out)->utf8 = utf8;
        return 0;
    }
    const char *p = s + strspn(s, " \t\r\n");
    if (*p == '[')
        return parse_descr_json(p, out, err, errlen);
    char why[256];
    int rc = dtype_parse_str(s, strlen(s), out, why, sizeof why);
    if (rc)
        return h5a_fail(err, errlen, rc == H5A_E_INTERNAL ? HDF5A_ENOMEM : arg_code(rc),
                        "dtype: %s", why);
    return 0;
}

/* The caller's array as the codec's; data is not copied. The caller frees
 * out->type. */
static int import_array(const hdf5a_array *a, h5a_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!a || !a->dtype)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "no array, or an array without a dtype");
    if (a->ndim < 0 || a->ndim > H5A_MAX_DIMS)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "ndim %d is outside 0..%d", a->ndim,
                        H5A_MAX_DIMS);
    if (a->ndim > 0 && !a->shape)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "ndim is %d but shape is NULL", a->ndim);
    for (int i = 0; i < a->ndim; i++)
        out->dims[i] = a->shape[i];
    out->ndim = a->ndim;

    int rc = parse_dtype(a->dtype, &out->type, err, errlen);
    if (rc)
        return rc;
    uint64_t n;
    size_t esize = out->type->itemsize;
    if (!h5a_nelems(a->ndim, out->dims, &n) || (esize && n > SIZE_MAX / esize)) {
        rc = h5a_fail(err, errlen, HDF5A_EINVAL, "the shape has too many elements");
        goto fail;
    }
    size_t need = (size_t)n * esize;
    if (a->nbytes != need) {
        rc = h5a_fail(err, errlen, HDF5A_EINVAL,
                      "nbytes is %zu but %llu elements of dtype '%.64s' take %zu", a->nbytes,
                      (unsigned long long)n, a->dtype, need);
        goto fail;
    }
    if (need && !a->data) {
        rc = h5a_fail(err, errlen, HDF5A_EINVAL, "data is NULL");
        goto fail;
    }
    if (out->type->kind == DT_VLSTR && n == 0) {
        /* strings travel as nested lists, and an empty list is float64 to
         * the server: it would store a dataset of another type */
        rc = h5a_fail(err, errlen, HDF5A_EINVAL,
                      "an empty string array cannot be sent: the protocol cannot tell its "
                      "type from an empty float64 list");
        goto fail;
    }
    out->data = a->data;
    out->nbytes = need;
    return 0;
fail:
    dtype_free(out->type);
    out->type = NULL;
    return rc;
}

/* ---- requests ---- */

static const char *op_name(h5c_op op)
{
    static const char *const names[] = {
        "ping",           "create_group", "write",    "read",       "append",
        "insert",         "delete",       "read" /* with a selection */, "write_slice",
        "create_dataset", "resize",       "set_attr", "get_attr",   "list_attrs",
        "delete_attr",    "list",         "walk",     "info",       "exists",
        "create_link",    "move"};
    _Static_assert(sizeof names / sizeof names[0] == H5C_MOVE + 1, "one name per h5c_op");
    return names[op];
}

static void put_key(mp_buf *b, const char *k) { mp_put_cstr(b, k); }

static int check_dims(int ndim, const uint64_t *dims, const char *what, char *err,
                      size_t errlen)
{
    if (ndim < 0 || ndim > H5A_MAX_DIMS)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "%s: ndim %d is outside 0..%d", what, ndim,
                        H5A_MAX_DIMS);
    if (ndim > 0 && !dims)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "%s is NULL but ndim is %d", what, ndim);
    return 0;
}

/* sizes as a list; HDF5A_UNLIMITED as nil where allowed */
static void put_dims(mp_buf *b, int ndim, const uint64_t *dims, bool unlimited_nil)
{
    mp_put_array_header(b, (size_t)ndim);
    for (int i = 0; i < ndim; i++) {
        if (unlimited_nil && dims[i] == HDF5A_UNLIMITED)
            mp_put_nil(b);
        else
            mp_put_uint(b, dims[i]);
    }
}

static void put_bound(mp_buf *b, int64_t v)
{
    if (v == HDF5A_DEFAULT)
        mp_put_nil(b);
    else
        mp_put_int(b, v);
}

static int check_sel(const hdf5a_sel *sel, int nsel, char *err, size_t errlen)
{
    if (nsel < 0 || nsel > H5A_MAX_DIMS + 1)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "nsel %d is outside 0..%d", nsel,
                        H5A_MAX_DIMS + 1);
    if (nsel > 0 && !sel)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "sel is NULL but nsel is %d", nsel);
    for (int i = 0; i < nsel; i++)
        if (sel[i].kind != HDF5A_SEL_INDEX && sel[i].kind != HDF5A_SEL_SLICE &&
            sel[i].kind != HDF5A_SEL_ELLIPSIS)
            return h5a_fail(err, errlen, HDF5A_EINVAL, "sel[%d] has an unknown kind %d", i,
                            sel[i].kind);
    return 0;
}

static void put_sel(mp_buf *b, const hdf5a_sel *sel, int nsel)
{
    mp_put_array_header(b, (size_t)nsel);
    for (int i = 0; i < nsel; i++) {
        if (sel[i].kind == HDF5A_SEL_INDEX) {
            mp_put_int(b, sel[i].start);
        } else if (sel[i].kind == HDF5A_SEL_ELLIPSIS) {
            mp_put_cstr(b, "...");
        } else {
            mp_put_array_header(b, 3);
            put_bound(b, sel[i].start);
            put_bound(b, sel[i].stop);
            put_bound(b, sel[i].step);
        }
    }
}

/* Which filters take compression_opts (the others ignore the level). */
static bool takes_level(const char *name)
{
    return strcmp(name, "gzip") == 0 || strcmp(name, "bzip2") == 0 || strcmp(name, "lz4") == 0;
}

hdf5a_durability h5c_durability_for(h5c_op op, hdf5a_durability setting)
{
    /* the ops that change nothing: a commit would only make them slower */
    switch (op) {
    case H5C_PING:
    case H5C_READ:
    case H5C_READ_SLICE:
    case H5C_GET_ATTR:
    case H5C_LIST_ATTRS:
    case H5C_LIST:
    case H5C_WALK:
    case H5C_INFO:
    case H5C_EXISTS:
        return HDF5A_DURABILITY_DEFAULT;
    case H5C_CREATE_GROUP:
    case H5C_WRITE:
    case H5C_APPEND:
    case H5C_INSERT:
    case H5C_DELETE:
    case H5C_WRITE_SLICE:
    case H5C_CREATE_DATASET:
    case H5C_RESIZE:
    case H5C_SET_ATTR:
    case H5C_DELETE_ATTR:
    case H5C_CREATE_LINK:
    case H5C_MOVE:
        break;
    }
    return setting;
}

int h5c_encode_request(mp_buf *b, uint64_t id, const h5c_request *req, const void **tail,
                       size_t *tail_len, char *err, size_t errlen)
{
    *tail = NULL;
    *tail_len = 0;
    h5c_op op = req->op;
    bool has_path = op != H5C_PING;
    bool has_data = op == H5C_WRITE || op == H5C_APPEND || op == H5C_INSERT ||
                    op == H5C_WRITE_SLICE || op == H5C_SET_ATTR;
    bool has_sel = op == H5C_READ_SLICE || op == H5C_WRITE_SLICE;
    bool creating = op == H5C_CREATE_DATASET;
    const hdf5a_create_opts *o = creating ? req->opts : NULL;
    if (has_path && !req->path)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "path is NULL");
    int rc = 0; /* ops without data, selection or shape set it nowhere else */
    if (has_sel && (rc = check_sel(req->sel, req->nsel, err, errlen)))
        return rc;
    if ((creating || op == H5C_RESIZE) && (rc = check_dims(req->ndim, req->shape, "shape", err,
                                                           errlen)))
        return rc;
    /* the string arguments each op needs */
    bool has_name = op == H5C_SET_ATTR || op == H5C_GET_ATTR || op == H5C_DELETE_ATTR;
    bool has_target = op == H5C_CREATE_LINK, has_dest = op == H5C_MOVE;
    bool paged = op == H5C_LIST || op == H5C_WALK;
    if ((has_name && !req->name) || (has_target && !req->target) || (has_dest && !req->dest))
        return h5a_fail(err, errlen, HDF5A_EINVAL, "%s is NULL",
                        has_name ? "the attribute name" : has_target ? "target" : "dest");
    bool has_after = paged && req->after, has_limit = paged && req->limit;
    bool has_depth = op == H5C_WALK && req->max_depth;
    static const char *const durability[] = {NULL, "none", "flush", "fsync"};
    if ((unsigned)req->durability > HDF5A_DURABILITY_FSYNC)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "durability %d is not a hdf5a_durability",
                        (int)req->durability);
    const char *dname = durability[req->durability];

    /* compression: a name, and a level only for the filters that take one
     * (none for write_slice and set_attr, which create no dataset) */
    const hdf5a_compression *comp =
        creating ? (o ? o->comp : NULL)
        : has_data && op != H5C_WRITE_SLICE && op != H5C_SET_ATTR ? req->comp : NULL;
    const char *cname = comp ? comp->name : NULL;
    bool has_level = false;
    if (cname) {
        int level = comp->level;
        if (level < -1)
            return h5a_fail(err, errlen, HDF5A_EINVAL,
                            "compression level %d: give the filter's option, or -1 for the "
                            "default", level);
        has_level = level >= 0 && takes_level(cname);
    }

    h5a_array arr = {0}, fill = {0};
    dtype *dt = NULL;
    if (has_data) {
        if ((rc = import_array(req->array, &arr, err, errlen)))
            return rc;
        /* a bin (and a frame) cannot hold more than 2^32-1 bytes */
        if ((uint64_t)arr.nbytes > UINT32_MAX - 4096) {
            dtype_free(arr.type);
            return h5a_fail(err, errlen, HDF5A_ETOO_LARGE,
                            "%zu bytes of data do not fit in one frame (4 GiB)", arr.nbytes);
        }
    }
    size_t nfields = 2 + has_path + (op == H5C_INSERT) + (cname != NULL) + has_level +
                     has_data + has_sel + (op == H5C_RESIZE && req->has_axis) + has_name +
                     has_target + has_dest + has_after + has_limit + has_depth +
                     (dname != NULL);
    if (op == H5C_RESIZE)
        nfields++; /* shape */
    if (creating) {
        if (!req->dtype) {
            rc = h5a_fail(err, errlen, HDF5A_EINVAL, "dtype is NULL");
            goto fail;
        }
        if ((rc = parse_dtype(req->dtype, &dt, err, errlen)))
            goto fail;
        nfields += 2; /* shape, dtype */
        if (o) {
            if ((o->maxshape && (rc = check_dims(req->ndim, o->maxshape, "maxshape", err,
                                                 errlen))) ||
                (o->chunks && (rc = check_dims(req->ndim, o->chunks, "chunks", err, errlen))))
                goto fail;
            if (!o->chunks && (o->chunk_mode < HDF5A_CHUNKS_DEFAULT ||
                               o->chunk_mode > HDF5A_CHUNKS_CONTIGUOUS)) {
                rc = h5a_fail(err, errlen, HDF5A_EINVAL, "unknown chunk_mode %d", o->chunk_mode);
                goto fail;
            }
            if (o->fillvalue && (rc = import_array(o->fillvalue, &fill, err, errlen)))
                goto fail;
            nfields += (o->maxshape != NULL) + (o->chunks || o->chunk_mode) +
                       (o->fillvalue != NULL) + (o->shuffle != 0) + (o->exist_ok != 0);
        }
    }

    size_t start = b->len;
    mp_put_raw(b, "\0\0\0\0", 4);
    mp_put_map_header(b, nfields);
    put_key(b, "id");
    mp_put_uint(b, id);
    put_key(b, "op");
    mp_put_cstr(b, op_name(op));
    if (has_path) {
        put_key(b, "path");
        mp_put_cstr(b, req->path);
    }
    if (op == H5C_INSERT) {
        put_key(b, "index");
        mp_put_int(b, req->index);
    }
    if (has_name) {
        put_key(b, "name");
        mp_put_cstr(b, req->name);
    }
    if (has_target) {
        put_key(b, "target");
        mp_put_cstr(b, req->target);
    }
    if (has_dest) {
        put_key(b, "dest");
        mp_put_cstr(b, req->dest);
    }
    if (has_after) {
        put_key(b, "after");
        mp_put_cstr(b, req->after);
    }
    if (has_limit) {
        put_key(b, "limit");
        mp_put_uint(b, req->limit);
    }
    if (has_depth) {
        put_key(b, "max_depth");
        mp_put_uint(b, req->max_depth);
    }
    if (cname) {
        put_key(b, "compression");
        mp_put_cstr(b, cname);
    }
    if (has_level) {
        put_key(b, "compression_opts");
        mp_put_uint(b, (uint64_t)comp->level);
    }
    if (has_sel) {
        put_key(b, "selection");
        put_sel(b, req->sel, req->nsel);
    }
    if (op == H5C_RESIZE) {
        put_key(b, "shape");
        if (req->has_axis) {
            mp_put_uint(b, req->shape[0]);
            put_key(b, "axis");
            mp_put_int(b, req->index);
        } else {
            put_dims(b, req->ndim, req->shape, false);
        }
    }
    char why[256];
    if (creating) {
        put_key(b, "shape");
        put_dims(b, req->ndim, req->shape, false);
        put_key(b, "dtype");
        if (dt->kind == DT_VLSTR)
            mp_put_cstr(b, dt->utf8 ? "str" : "bytes");
        else
            dtype_encode(b, dt);
        if (o && o->maxshape) {
            put_key(b, "maxshape");
            put_dims(b, req->ndim, o->maxshape, true);
        }
        if (o && (o->chunks || o->chunk_mode)) {
            put_key(b, "chunks");
            if (o->chunks)
                put_dims(b, req->ndim, o->chunks, false);
            else
                mp_put_bool(b, o->chunk_mode == HDF5A_CHUNKS_AUTO);
        }
        if (o && o->shuffle) {
            put_key(b, "shuffle");
            mp_put_bool(b, true);
        }
        if (o && o->exist_ok) {
            put_key(b, "exist_ok");
            mp_put_bool(b, true);
        }
        if (o && o->fillvalue) {
            bool fill_follows = false;
            put_key(b, "fillvalue");
            rc = h5a_array_encode(b, &fill, &fill_follows, why, sizeof why);
            if (rc && !b->oom)
                rc = h5a_fail(err, errlen, arg_code(rc), "fillvalue: %s", why);
            if (!rc && fill_follows)
                mp_put_raw(b, fill.data, fill.nbytes); /* one element: copy it in */
        }
    }
    if (dname) {
        put_key(b, "durability");
        mp_put_cstr(b, dname);
    }
    bool follows = false;
    if (!rc && has_data) {
        /* "data" goes last so that its bytes can follow the header as they are */
        put_key(b, "data");
        rc = h5a_array_encode(b, &arr, &follows, why, sizeof why);
        if (rc && !b->oom)
            rc = h5a_fail(err, errlen, arg_code(rc), "data: %s", why);
    }
    if (b->oom)
        rc = h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory encoding the request");
    size_t body = b->len - start - 4 + (follows ? arr.nbytes : 0);
    if (!rc && (uint64_t)body > UINT32_MAX)
        rc = h5a_fail(err, errlen, HDF5A_ETOO_LARGE, "request of %zu bytes exceeds a frame",
                      body);
    if (rc) {
        b->len = start;
        b->oom = false;
        goto fail;
    }
    b->data[start] = (uint8_t)(body >> 24);
    b->data[start + 1] = (uint8_t)(body >> 16);
    b->data[start + 2] = (uint8_t)(body >> 8);
    b->data[start + 3] = (uint8_t)body;
    if (follows) {
        *tail = arr.data;
        *tail_len = arr.nbytes;
    }
fail:
    dtype_free(arr.type);
    dtype_free(fill.type);
    dtype_free(dt);
    return rc;
}

/* ---- replies ---- */

int h5c_decode_reply(const uint8_t *payload, size_t len, mp_doc *doc, uint64_t id,
                     h5c_reply *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The server is trusted more than its clients are: deep enough for a
     * rank-32 string array or a 32-deep struct inside the envelope, and no
     * node limit beyond what the frame's bytes can describe. */
    mp_limits lim = {.max_depth = 128, .max_nodes = SIZE_MAX};
    char why[256];
    if (mp_decode(payload, len, &lim, doc, why, sizeof why))
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply is not valid MessagePack: %s", why);
    const mp_node *root = &doc->nodes[0];
    const mp_node *rid = mp_map_get(root, "id");
    const mp_node *ok = mp_map_get(root, "ok");
    if (root->type != MP_MAP || !rid || !ok || ok->type != MP_BOOL)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply is not a map with \"id\" and \"ok\"");
    if (rid->type != MP_NIL && (rid->type != MP_UINT || rid->v.u != id))
        return h5a_fail(err, errlen, HDF5A_EREPLY,
                        "reply id %llu%s does not match the request's id %llu",
                        rid->type == MP_UINT ? (unsigned long long)rid->v.u : 0ULL,
                        rid->type == MP_UINT ? "" : " (not a uint)", (unsigned long long)id);
    if (ok->v.b) {
        out->result = mp_map_get(root, "result");
        if (!out->result)
            return h5a_fail(err, errlen, HDF5A_EREPLY, "reply has no \"result\"");
        return 0;
    }
    const mp_node *e = mp_map_get(root, "error");
    const mp_node *code = mp_map_get(e, "code");
    const mp_node *msg = mp_map_get(e, "message");
    if (!code || !mp_is_raw(code))
        return h5a_fail(err, errlen, HDF5A_EREPLY, "error reply without a \"code\"");
    out->status = code_from_wire(code);
    if (msg && mp_is_raw(msg)) {
        out->message = (const char *)msg->v.ptr;
        out->message_len = msg->len;
    } else {
        out->message = "";
    }
    return 0;
}

int h5c_result_shape(const mp_node *result, int *ndim, uint64_t *shape, char *err,
                     size_t errlen)
{
    const mp_node *s = mp_map_get(result, "shape");
    if (!s || s->type != MP_ARRAY || s->len > H5A_MAX_DIMS)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "result has no valid \"shape\"");
    const mp_node *d = mp_first_child(s);
    for (uint32_t i = 0; i < s->len; i++, d = mp_next(d)) {
        if (d->type != MP_UINT)
            return h5a_fail(err, errlen, HDF5A_EREPLY, "result \"shape\" is not all uints");
        shape[i] = d->v.u;
    }
    *ndim = (int)s->len;
    return 0;
}

uint8_t *h5c_frame_alloc(size_t len, void **block)
{
    *block = NULL;
    if (len > SIZE_MAX - 16)
        return NULL;
    uint8_t *p = malloc(len + 16);
    if (!p)
        return NULL;
    *block = p;
    /* malloc gives 16-byte alignment; shift so that p + off + len is too */
    return p + (16 - len % 16) % 16;
}

/* What hdf5a_read and reply arrays really are: the public struct first,
 * then what it points at. One allocation (plus the frame, when the element
 * bytes stay there), freed by hdf5a_array_free. */
typedef struct owned_array {
    hdf5a_array pub;
    void *frame; /* the frame holding pub.data, or NULL */
    uint64_t shape[H5A_MAX_DIMS];
    /* then: dtype text; then, 16-aligned, element bytes not in a frame */
} owned_array;

HDF5A_API void hdf5a_array_free(hdf5a_array *a)
{
    if (!a)
        return;
    owned_array *o = (owned_array *)a;
    free(o->frame);
    free(o);
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

int h5c_result_array(const mp_node *result, void **frame_block, hdf5a_array **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    h5a_array t;
    char why[256];
    int rc = h5a_array_from_node(result, &t, why, sizeof why);
    if (rc)
        return h5a_fail(err, errlen, rc == H5A_E_INTERNAL ? HDF5A_ENOMEM : HDF5A_EREPLY,
                        "read result: %s", why);
    uint64_t n = 0;
    h5a_nelems(t.ndim, t.dims, &n); /* bounded by the frame it came from */

    /* The dtype as the caller sees it. A plain list is only ever sent for
     * variable-length strings, so an empty one (which the codec can only
     * call float64) is an empty string array; whether it was UTF-8 or ASCII
     * the reply does not say. */
    mp_buf json = {0};
    const char *dt;
    char simple[32];
    bool vlen = t.type->kind == DT_VLSTR || (t.plain && n == 0 && result->type == MP_ARRAY);
    if (vlen) {
        dt = t.type->kind == DT_VLSTR && !t.type->utf8 ? "bytes" : "str";
    } else if (t.type->kind == DT_STRUCT) {
        rc = h5c_msgpack_to_json(mp_map_get(result, "type"), &json, err, errlen);
        if (rc)
            goto out;
        dt = (const char *)json.data;
    } else {
        dtype_str(t.type, simple, sizeof simple);
        dt = simple;
    }

    /* Strings are copied in; other element bytes stay in the frame unless
     * the codec had to make them (a complex scalar sent as text). */
    size_t chars = 0;
    if (vlen) {
        for (uint64_t i = 0; i < n; i++) {
            const char *s;
            memcpy(&s, (const char *)t.data + i * sizeof s, sizeof s);
            chars += strlen(s) + 1;
        }
    }
    bool copy_data = vlen || t.owned != NULL || !*frame_block;
    size_t dt_off = sizeof(owned_array);
    size_t data_off = align16(dt_off + strlen(dt) + 1);
    size_t data_len = vlen ? (size_t)n * sizeof(char *) + chars : copy_data ? t.nbytes : 0;
    owned_array *o = malloc(data_off + data_len);
    if (!o) {
        rc = h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory for the read result");
        goto out;
    }
    memset(o, 0, sizeof *o);
    char *dts = (char *)o + dt_off;
    strcpy(dts, dt);
    uint8_t *data = (uint8_t *)o + data_off;
    if (vlen) {
        char **ptrs = (char **)data;
        char *c = (char *)(ptrs + n);
        for (uint64_t i = 0; i < n; i++) {
            const char *s;
            memcpy(&s, (const char *)t.data + i * sizeof s, sizeof s);
            size_t l = strlen(s) + 1;
            memcpy(c, s, l);
            ptrs[i] = c;
            c += l;
        }
        o->pub.nbytes = (size_t)n * sizeof(char *);
    } else if (copy_data) {
        if (t.nbytes)
            memcpy(data, t.data, t.nbytes);
        o->pub.nbytes = t.nbytes;
    } else {
        data = (uint8_t *)t.data;
        o->pub.nbytes = t.nbytes;
        o->frame = *frame_block;
        *frame_block = NULL;
    }
    for (int i = 0; i < t.ndim; i++)
        o->shape[i] = t.dims[i];
    o->pub.dtype = dts;
    o->pub.ndim = t.ndim;
    o->pub.shape = o->shape;
    o->pub.data = data;
    *out = &o->pub;
out:
    mp_buf_free(&json);
    h5a_array_clear(&t);
    return rc;
}
