/* Requests out, replies in, with no I/O: the part of the client both APIs
 * share. Arrays are described to the server with src/proto's dtype/array
 * code, so the client and the server agree on every byte of the form. */
#include <limits.h>
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
                   HDF5A_ENO_SPACE == H5A_E_NO_SPACE &&
                   HDF5A_ESEQ_TOO_OLD == H5A_E_SEQ_TOO_OLD &&
                   HDF5A_EWRONG_NODE == H5A_E_WRONG_NODE &&
                   -HDF5A_ELAST_SERVER + 1 == H5A_E_COUNT_PLUS_ONE,
               "hdf5_async.h error codes differ from src/proto/errors.h");

HDF5A_API const char *hdf5a_strerror(int code)
{
    if (code == 0)
        return "OK";
    if (code < 0 && code >= HDF5A_ELAST_SERVER)
        return h5a_strerror_code(code); /* the same numbering as src/proto/errors.h */
    switch (code) {
    case HDF5A_EIO: return "IO";
    case HDF5A_ETIMEOUT: return "TIMEOUT";
    case HDF5A_ECLOSED: return "CLOSED";
    case HDF5A_EREPLY: return "REPLY";
    case HDF5A_ENOMEM: return "NOMEM";
    case HDF5A_EINVAL: return "INVAL";
    case HDF5A_ETLS: return "TLS";
    default: return "UNKNOWN";
    }
}

/* The wire's code string back to its number; the protocol asks clients to
 * take an unknown code as INTERNAL. */
static int code_from_wire(const mp_node *n)
{
    for (int c = HDF5A_EBAD_REQUEST; c >= HDF5A_ELAST_SERVER; c--)
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

/* What the op list (src/proto/ops.h) says about each op. */
typedef struct op_desc {
    const char *name;
    unsigned args; /* H5A_ARG_*: the keys the encoder may write */
    bool changes;
} op_desc;

static const op_desc op_descs[] = {
#define H5C_X(ID, name, args, changes, perm, batch) [H5C_##ID] = {name, args, changes},
    H5A_OPS(H5C_X)
#undef H5C_X
};
_Static_assert(sizeof op_descs / sizeof op_descs[0] == H5C_READ_SLICE,
               "one entry per op of the list, and H5C_READ_SLICE after them");

/* H5C_READ_SLICE is the list's "read", sent with a selection. */
static const op_desc *desc_of(h5c_op op)
{
    return &op_descs[op == H5C_READ_SLICE ? H5C_READ : op];
}

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
    /* an op that changes nothing would only be slower waiting for a commit */
    return desc_of(op)->changes ? setting : HDF5A_DURABILITY_DEFAULT;
}

/* One request on its way into a frame: the caller's arguments, checked and
 * converted before anything is written, then the writing state. */
typedef struct enc {
    const h5c_request *req;
    unsigned args;                 /* the op's H5A_ARG_* */
    bool has_sel;                  /* a selection is sent */
    const hdf5a_create_opts *o;    /* create_dataset's options; may be NULL */
    const hdf5a_compression *comp; /* NULL: no compression keys */
    bool has_level;                /* compression_opts is sent */
    const char *durability;        /* NULL: no durability key */
    h5a_array arr, fill;           /* data and fillvalue; their types are ours */
    dtype *dt;                     /* create_dataset's dtype, ours */
    mp_buf *b;
    size_t nfields; /* keys written so far: the map header gets this count */
    char *err;
    size_t errlen;
} enc;

/* The arguments that need no conversion, in the order their errors have
 * always been reported. */
static int check_args(enc *e)
{
    const h5c_request *req = e->req;
    unsigned a = e->args;
    int rc;
    if (a & H5A_ARG_PATH && !req->path)
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL, "path is NULL");
    if (e->has_sel && (rc = check_sel(req->sel, req->nsel, e->err, e->errlen)))
        return rc;
    if (a & H5A_ARG_SHAPE && (rc = check_dims(req->ndim, req->shape, "shape", e->err, e->errlen)))
        return rc;
    if (a & H5A_ARG_TOKEN && !req->token)
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL, "token is NULL");
    bool no_name = a & H5A_ARG_NAME && !req->name;
    bool no_target = a & H5A_ARG_TARGET && !req->target;
    if (no_name || no_target || (a & H5A_ARG_DEST && !req->dest))
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL, "%s is NULL",
                        no_name ? "the attribute name" : no_target ? "target" : "dest");
    static const char *const durability[] = {NULL, "none", "flush", "fsync"};
    if ((unsigned)req->durability > HDF5A_DURABILITY_FSYNC)
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL,
                        "durability %d is not a hdf5a_durability", (int)req->durability);
    e->durability = durability[req->durability];
    return 0;
}

/* compression: a name, and a level only for the filters that take one. A
 * new dataset takes it from its options, data written from the request. */
static int check_compression(enc *e)
{
    if (!(e->args & H5A_ARG_COMP))
        return 0;
    const hdf5a_compression *c =
        e->args & H5A_ARG_CREATE ? (e->o ? e->o->comp : NULL) : e->req->comp;
    if (!c || !c->name)
        return 0;
    if (c->level < -1)
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL,
                        "compression level %d: give the filter's option, or -1 for the "
                        "default", c->level);
    e->comp = c;
    e->has_level = c->level >= 0 && takes_level(c->name);
    return 0;
}

static int import_data(enc *e)
{
    if (!(e->args & H5A_ARG_DATA))
        return 0;
    int rc = import_array(e->req->array, &e->arr, e->err, e->errlen);
    if (rc)
        return rc;
    /* a bin (and a frame) cannot hold more than 2^32-1 bytes */
    if ((uint64_t)e->arr.nbytes > UINT32_MAX - 4096)
        return h5a_fail(e->err, e->errlen, HDF5A_ETOO_LARGE,
                        "%zu bytes of data do not fit in one frame (4 GiB)", e->arr.nbytes);
    return 0;
}

/* create_dataset's dtype and options */
static int prepare_create(enc *e)
{
    if (!(e->args & H5A_ARG_CREATE))
        return 0;
    const h5c_request *req = e->req;
    const hdf5a_create_opts *o = e->o;
    int rc;
    if (!req->dtype)
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL, "dtype is NULL");
    if ((rc = parse_dtype(req->dtype, &e->dt, e->err, e->errlen)))
        return rc;
    if (!o)
        return 0;
    if ((o->maxshape && (rc = check_dims(req->ndim, o->maxshape, "maxshape", e->err,
                                         e->errlen))) ||
        (o->chunks && (rc = check_dims(req->ndim, o->chunks, "chunks", e->err, e->errlen))))
        return rc;
    if (!o->chunks &&
        (o->chunk_mode < HDF5A_CHUNKS_DEFAULT || o->chunk_mode > HDF5A_CHUNKS_CONTIGUOUS))
        return h5a_fail(e->err, e->errlen, HDF5A_EINVAL, "unknown chunk_mode %d",
                        o->chunk_mode);
    if (o->fillvalue && (rc = import_array(o->fillvalue, &e->fill, e->err, e->errlen)))
        return rc;
    return 0;
}

/* Every key goes through here, so that the map header counts what was
 * written. */
static void key(enc *e, const char *k)
{
    mp_put_cstr(e->b, k);
    e->nfields++;
}

static void put_str_field(enc *e, const char *k, const char *v)
{
    key(e, k);
    mp_put_cstr(e->b, v);
}

static void put_uint_field(enc *e, const char *k, uint64_t v)
{
    key(e, k);
    mp_put_uint(e->b, v);
}

/* id, op, and the arguments that are one string or number */
static void put_scalars(enc *e, uint64_t id)
{
    const h5c_request *req = e->req;
    unsigned a = e->args;
    if (!req->no_id)
        put_uint_field(e, "id", id);
    put_str_field(e, "op", desc_of(req->op)->name);
    if (req->client_id) {
        put_str_field(e, "client_id", req->client_id);
        put_uint_field(e, "seq", req->seq);
    }
    if (a & H5A_ARG_OPS) {
        key(e, "ops");
        mp_put_array_header(e->b, req->nops);
        mp_put_raw(e->b, req->ops, req->ops_len);
    }
    if (a & H5A_ARG_PATH)
        put_str_field(e, "path", req->path);
    if (a & H5A_ARG_INDEX) {
        key(e, "index");
        mp_put_int(e->b, req->index);
    }
    if (a & H5A_ARG_NAME)
        put_str_field(e, "name", req->name);
    if (a & H5A_ARG_TARGET)
        put_str_field(e, "target", req->target);
    if (a & H5A_ARG_DEST)
        put_str_field(e, "dest", req->dest);
    if (a & H5A_ARG_TOKEN)
        put_str_field(e, "token", req->token);
    /* paging and depth: absent means the server's default */
    if (a & H5A_ARG_PAGE && req->after)
        put_str_field(e, "after", req->after);
    if (a & H5A_ARG_PAGE && req->limit)
        put_uint_field(e, "limit", req->limit);
    if (a & H5A_ARG_DEPTH && req->max_depth)
        put_uint_field(e, "max_depth", req->max_depth);
    if (e->comp)
        put_str_field(e, "compression", e->comp->name);
    if (e->has_level)
        put_uint_field(e, "compression_opts", (uint64_t)e->comp->level);
}

/* selection, and shape (for a resize along one axis: the size, then axis) */
static void put_extent(enc *e)
{
    const h5c_request *req = e->req;
    if (e->has_sel) {
        key(e, "selection");
        put_sel(e->b, req->sel, req->nsel);
    }
    if (!(e->args & H5A_ARG_SHAPE))
        return;
    key(e, "shape");
    if (e->args & H5A_ARG_AXIS && req->has_axis) {
        mp_put_uint(e->b, req->shape[0]);
        key(e, "axis");
        mp_put_int(e->b, req->index);
    } else {
        put_dims(e->b, req->ndim, req->shape, false);
    }
}

/* create_dataset's dtype and options. An error leaves the map incomplete:
 * the caller drops the frame. */
static int put_create(enc *e)
{
    if (!(e->args & H5A_ARG_CREATE))
        return 0;
    mp_buf *b = e->b;
    const hdf5a_create_opts *o = e->o;
    int ndim = e->req->ndim;
    key(e, "dtype");
    if (e->dt->kind == DT_VLSTR)
        mp_put_cstr(b, e->dt->utf8 ? "str" : "bytes");
    else
        dtype_encode(b, e->dt);
    if (!o)
        return 0;
    if (o->maxshape) {
        key(e, "maxshape");
        put_dims(b, ndim, o->maxshape, true);
    }
    if (o->chunks || o->chunk_mode) {
        key(e, "chunks");
        if (o->chunks)
            put_dims(b, ndim, o->chunks, false);
        else
            mp_put_bool(b, o->chunk_mode == HDF5A_CHUNKS_AUTO);
    }
    if (o->shuffle) {
        key(e, "shuffle");
        mp_put_bool(b, true);
    }
    if (o->exist_ok) {
        key(e, "exist_ok");
        mp_put_bool(b, true);
    }
    if (!o->fillvalue)
        return 0;
    char why[256];
    bool follows = false;
    key(e, "fillvalue");
    int rc = h5a_array_encode(b, &e->fill, &follows, why, sizeof why);
    if (rc && !b->oom)
        return h5a_fail(e->err, e->errlen, arg_code(rc), "fillvalue: %s", why);
    if (!rc && follows)
        mp_put_raw(b, e->fill.data, e->fill.nbytes); /* one element: copy it in */
    return rc;
}

/* "data" goes last so that its bytes can follow the frame as they are:
 * *follows says they were left out. */
static int put_data(enc *e, bool *follows)
{
    *follows = false;
    if (!(e->args & H5A_ARG_DATA))
        return 0;
    char why[256];
    key(e, "data");
    int rc = h5a_array_encode(e->b, &e->arr, follows, why, sizeof why);
    if (rc && !e->b->oom)
        return h5a_fail(e->err, e->errlen, arg_code(rc), "data: %s", why);
    return rc;
}

/* The frame: its length prefix, then the request map. On error b is as it
 * was. */
static int put_frame(enc *e, uint64_t id, const void **tail, size_t *tail_len)
{
    mp_buf *b = e->b;
    size_t start = b->len;
    mp_put_raw(b, "\0\0\0\0", 4); /* the length, known at the end */
    size_t map = mp_map_begin(b);
    put_scalars(e, id);
    put_extent(e);
    int rc = put_create(e);
    if (e->durability)
        put_str_field(e, "durability", e->durability);
    if (e->req->file)
        put_str_field(e, "file", e->req->file);
    bool follows = false;
    if (!rc)
        rc = put_data(e, &follows);
    mp_map_end(b, map, e->nfields);
    if (b->oom)
        rc = h5a_fail(e->err, e->errlen, HDF5A_ENOMEM, "out of memory encoding the request");
    size_t body = b->len - start - 4 + (follows ? e->arr.nbytes : 0);
    if (!rc && (uint64_t)body > UINT32_MAX)
        rc = h5a_fail(e->err, e->errlen, HDF5A_ETOO_LARGE,
                      "request of %zu bytes exceeds a frame", body);
    if (rc) {
        b->len = start;
        b->oom = false;
        return rc;
    }
    for (int i = 0; i < 4; i++)
        b->data[start + i] = (uint8_t)(body >> (24 - 8 * i));
    if (follows) {
        *tail = e->arr.data;
        *tail_len = e->arr.nbytes;
    }
    return 0;
}

int h5c_encode_request(mp_buf *b, uint64_t id, const h5c_request *req, const void **tail,
                       size_t *tail_len, char *err, size_t errlen)
{
    *tail = NULL;
    *tail_len = 0;
    enc e = {.req = req, .args = desc_of(req->op)->args, .b = b, .err = err, .errlen = errlen};
    /* the C client's "read" is the whole dataset, its read_slice a part */
    e.has_sel = req->op == H5C_READ_SLICE || e.args & H5A_ARG_SEL_REQ;
    e.o = e.args & H5A_ARG_CREATE ? req->opts : NULL;
    int rc = check_args(&e);
    if (!rc)
        rc = check_compression(&e);
    if (!rc)
        rc = import_data(&e);
    if (!rc)
        rc = prepare_create(&e);
    if (!rc)
        rc = put_frame(&e, id, tail, tail_len);
    dtype_free(e.arr.type);
    dtype_free(e.fill.type);
    dtype_free(e.dt);
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
    out->index = -1;
    out->node = NULL;
    out->node_len = 0;
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
    const mp_node *ix = mp_map_get(e, "index");
    if (ix && ix->type == MP_UINT && ix->v.u < (uint64_t)LONG_MAX)
        out->index = (long)ix->v.u;
    const mp_node *node = mp_map_get(e, "node");
    if (node && mp_is_raw(node)) {
        out->node = (const char *)node->v.ptr;
        out->node_len = node->len;
    }
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
