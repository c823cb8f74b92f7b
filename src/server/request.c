#include "server/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/config.h"

/* The op list, expanded: one entry per op, in h5a_op order, then the
 * aliases (name lookup only). */
static const h5a_op_info op_info[] = {
#define H5A_X(ID, name, args, changes, perm, batch) \
    {name, args, changes, H5A_PERM_##perm, batch},
    H5A_OPS(H5A_X)
#undef H5A_X
    {"?", 0, false, H5A_PERM_READ, false}, /* OP_NONE */
};
_Static_assert(sizeof op_info / sizeof op_info[0] == OP_NONE + 1, "one entry per op");

static const struct {
    const char *name;
    size_t len;
    h5a_op op;
} op_names[] = {
#define H5A_X(ID, name, args, changes, perm, batch) {name, sizeof(name) - 1, OP_##ID},
    H5A_OPS(H5A_X)
#undef H5A_X
#define H5A_X(ID, name) {name, sizeof(name) - 1, OP_##ID},
    H5A_OP_ALIASES(H5A_X)
#undef H5A_X
};

/* The request keys an op may take, in the list's order (H5A_KEYS). */
enum {
#define H5A_X(K, key, takes, needs) KEY_##K,
    H5A_KEYS(H5A_X)
#undef H5A_X
    KEY_COUNT
};
static const struct {
    const char *key;
    size_t len;
    unsigned takes; /* H5A_ARG_* flags of the ops that take it */
    unsigned needs; /* ... and of those that must send it */
} req_keys[] = {
#define H5A_X(K, key, takes, needs) {key, sizeof(key) - 1, takes, needs},
    H5A_KEYS(H5A_X)
#undef H5A_X
};

const h5a_op_info *h5a_op_info_of(h5a_op op)
{
    return &op_info[(unsigned)op <= OP_NONE ? op : OP_NONE];
}

const char *h5a_op_name(h5a_op op) { return h5a_op_info_of(op)->name; }

/* The names in ops.h are plain identifiers: nothing to escape. */
static void print_keys(FILE *f, const char *field, unsigned args, bool needed)
{
    fprintf(f, ", \"%s\": [", field);
    const char *sep = "";
    for (int j = 0; j < KEY_COUNT; j++)
        if (args & (needed ? req_keys[j].needs : req_keys[j].takes)) {
            fprintf(f, "%s\"%s\"", sep, req_keys[j].key);
            sep = ", ";
        }
    fputc(']', f);
}

void h5a_op_list_print(FILE *f)
{
    static const char *const perm[] = {
        [H5A_PERM_READ] = "read", [H5A_PERM_WRITE] = "write", [H5A_PERM_ADMIN] = "admin"};
    fputs("[\n", f);
    for (int o = 0; o < OP_NONE; o++) {
        const h5a_op_info *in = h5a_op_info_of((h5a_op)o);
        fprintf(f, "  {\"name\": \"%s\"", in->name);
        print_keys(f, "keys", in->args, false);
        print_keys(f, "required", in->args, true);
        fprintf(f, ", \"changes\": %s, \"perm\": \"%s\", \"batch\": %s, \"aliases\": [",
                in->changes ? "true" : "false", perm[in->perm], in->batch ? "true" : "false");
        const char *sep = "";
        for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
            if (op_names[i].op == (h5a_op)o && strcmp(op_names[i].name, in->name) != 0) {
                fprintf(f, "%s\"%s\"", sep, op_names[i].name);
                sep = ", ";
            }
        fprintf(f, "]}%s\n", o + 1 < OP_NONE ? "," : "");
    }
    fputs("]\n", f);
}

void h5a_request_set_error(h5a_request *req, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->err_msg, sizeof req->err_msg, fmt, ap);
    va_end(ap);
    req->err_code = code;
}

int h5a_path_validate(const char *p, size_t n, char *err, size_t errlen)
{
    switch (h5a_path_check(p, n, err, errlen)) {
    case 0: return 0;
    case H5A_PATH_TOO_DEEP: return H5A_E_TOO_LARGE;
    default: return H5A_E_BAD_PATH;
    }
}

static const struct {
    const char *name;
    h5a_comp comp;
} comps[] = {
    {"gzip", COMP_GZIP},   {"lzf", COMP_LZF},     {"none", COMP_NONE},
    {"lz4", COMP_LZ4},     {"bzip2", COMP_BZIP2}, {"bitshuffle", COMP_BITSHUFFLE},
};

const char *h5a_comp_name(h5a_comp c)
{
    for (size_t i = 0; i < sizeof comps / sizeof comps[0]; i++)
        if (comps[i].comp == c) return comps[i].name;
    return "default";
}

static int parse_compression(h5a_request *req, const mp_node *comp, const mp_node *opts)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    req->compression = COMP_DEFAULT;
    req->level = -1;
    if (comp && comp->type != MP_NIL) {
        if (!mp_is_raw(comp))
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'compression' must be a string or nil");
        for (size_t i = 0; i < sizeof comps / sizeof comps[0]; i++)
            if (mp_raw_eq(comp, comps[i].name)) req->compression = comps[i].comp;
        if (req->compression == COMP_DEFAULT)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "unknown compression '%.*s' (known: gzip, lzf, none, lz4, bzip2, "
                            "bitshuffle)",
                            (int)(comp->len > 64 ? 64 : comp->len), (const char *)comp->v.ptr);
    }
    if (opts && opts->type != MP_NIL) {
        /* Each filter's one option, in h5py's / hdf5plugin's units. A
         * level also applies to the server's default when that is gzip. */
        h5a_comp c = req->compression;
        uint64_t lo = 0, hi = 9;
        const char *what = "a gzip level from 0 to 9";
        if (c == COMP_BZIP2) lo = 1, what = "a bzip2 block size from 1 to 9 (x 100 kB)";
        if (c == COMP_LZ4) hi = 0x7E000000, what = "an lz4 block size in bytes (0 = 1 GiB)";
        if (c == COMP_NONE || c == COMP_LZF || c == COMP_BITSHUFFLE)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "compression '%s' takes no 'compression_opts'", h5a_comp_name(c));
        if (opts->type != MP_UINT || opts->v.u < lo || opts->v.u > hi)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'compression_opts' must be %s", what);
        req->level = (int)opts->v.u;
    }
    return 0;
}

/* A msgpack int as int64; unsigned values past INT64_MAX saturate, which
 * keeps NumPy's meaning for slice bounds (clamped to the axis anyway) and
 * for indexes (out of range anyway: no axis is that long). */
static bool int_arg(const mp_node *n, int64_t *out)
{
    if (n->type == MP_INT) return *out = n->v.i, true;
    if (n->type == MP_UINT) return *out = n->v.u > INT64_MAX ? INT64_MAX : (int64_t)n->v.u, true;
    return false;
}

static int parse_selection(h5a_request *req, const mp_node *sel)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    if (sel->type != MP_ARRAY)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                        "'selection' must be a list of indexes, [start, stop, step] slices "
                        "and at most one \"...\", not a %s", mp_type_name(sel));
    if (sel->len > H5A_MAX_SEL)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                        "'selection' has %u items: datasets have at most %d dimensions",
                        (unsigned)sel->len, H5A_MAX_DIMS);
    if (!(req->sel = calloc(1, sizeof *req->sel)))
        return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    req->sel->n = (int)sel->len;
    bool ellipsis = false;
    const mp_node *it = mp_first_child(sel);
    for (uint32_t i = 0; i < sel->len; i++, it = mp_next(it)) {
        h5a_sel_item *s = &req->sel->item[i];
        if (int_arg(it, &s->start)) {
            s->kind = SEL_INDEX;
        } else if (mp_is_raw(it) && mp_raw_eq(it, "...")) {
            if (ellipsis)
                return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                "'selection' may hold only one \"...\" (ellipsis)");
            ellipsis = true;
            s->kind = SEL_ELLIPSIS;
        } else if (it->type == MP_ARRAY && it->len == 3) {
            const mp_node *b = mp_first_child(it), *c = mp_next(b), *st = mp_next(c);
            s->kind = SEL_SLICE;
            s->step = 1;
            if ((b->type != MP_NIL && !(s->has_start = int_arg(b, &s->start))) ||
                (c->type != MP_NIL && !(s->has_stop = int_arg(c, &s->stop))) ||
                (st->type != MP_NIL && !int_arg(st, &s->step)))
                return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                "'selection' item %u: slice bounds and step must be integers "
                                "or nil", (unsigned)i);
            if (s->step <= 0)
                return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                "'selection' item %u: step %lld is not supported (steps must "
                                "be positive; reverse the result instead)",
                                (unsigned)i, (long long)s->step);
        } else {
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "'selection' item %u must be an integer, a [start, stop, step] "
                            "list or \"...\", not a %s%s",
                            (unsigned)i, mp_type_name(it),
                            it->type == MP_ARRAY ? " of other length" : "");
        }
    }
    if (!ellipsis && sel->len > H5A_MAX_DIMS)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                        "'selection' has %u items: datasets have at most %d dimensions",
                        (unsigned)sel->len, H5A_MAX_DIMS);
    return 0;
}

/* A list of sizes; nil entries (allowed when nil_ok) become H5A_UNLIMITED. */
static int parse_dims(h5a_request *req, const mp_node *n, const char *name, bool nil_ok,
                      int *ndim, uint64_t *dims)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    if (n->type != MP_ARRAY)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'%s' must be a list of sizes, not a %s", name,
                        mp_type_name(n));
    if (n->len > H5A_MAX_DIMS)
        return h5a_fail(e, el, H5A_E_TOO_LARGE, "'%s' has %u dimensions (at most %d)", name,
                        (unsigned)n->len, H5A_MAX_DIMS);
    *ndim = (int)n->len;
    const mp_node *d = mp_first_child(n);
    for (uint32_t i = 0; i < n->len; i++, d = mp_next(d)) {
        if (nil_ok && d->type == MP_NIL) {
            dims[i] = H5A_UNLIMITED;
        } else if (d->type == MP_UINT && d->v.u < H5A_UNLIMITED) {
            dims[i] = d->v.u;
        } else {
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'%s' entry %u must be %s, not %s", name,
                            (unsigned)i,
                            nil_ok ? "a non-negative integer or nil (unlimited)"
                                   : "a non-negative integer",
                            mp_type_name(d));
        }
    }
    return 0;
}

static int parse_bool(h5a_request *req, const mp_node *n, const char *name, bool *out)
{
    if (!n || n->type == MP_NIL) return 0;
    if (n->type != MP_BOOL)
        return h5a_fail(req->err_msg, sizeof req->err_msg, H5A_E_BAD_REQUEST,
                        "'%s' must be true or false", name);
    *out = n->v.b;
    return 0;
}

/* create_dataset's and resize's arguments (n: shape, dtype, chunks, maxshape,
 * fillvalue, shuffle, exist_ok, axis; absent ones NULL). */
static int parse_dset(h5a_request *req, const mp_node **n)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    enum { SHAPE = KEY_SHAPE, DTYPE = KEY_DTYPE, CHUNKS = KEY_CHUNKS, MAXSHAPE = KEY_MAXSHAPE,
           FILL = KEY_FILLVALUE, SHUFFLE = KEY_SHUFFLE, EXIST_OK = KEY_EXIST_OK, AXIS = KEY_AXIS };
    h5a_dset_args *a = req->dset = calloc(1, sizeof *req->dset);
    if (!a) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    int rc;
    if (n[AXIS] && n[AXIS]->type != MP_NIL) {
        if (!int_arg(n[AXIS], &a->axis))
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'axis' must be an integer");
        a->has_axis = true;
    }
    if (!n[SHAPE])
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs a 'shape'", req->op_name);
    if (a->has_axis) {
        if (n[SHAPE]->type != MP_UINT || n[SHAPE]->v.u == H5A_UNLIMITED)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "with 'axis', 'shape' is that axis' new size: a non-negative integer");
        a->ndim = 1;
        a->shape[0] = n[SHAPE]->v.u;
    } else if ((rc = parse_dims(req, n[SHAPE], "shape", false, &a->ndim, a->shape))) {
        return rc;
    }
    if (req->op != OP_CREATE_DATASET) return 0;

    if (!n[DTYPE] || n[DTYPE]->type == MP_NIL)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op 'create_dataset' needs a 'dtype'");
    /* "str" and "bytes" are variable-length strings, as in the C library:
     * no NumPy type string says that */
    if (mp_raw_eq(n[DTYPE], "str") || mp_raw_eq(n[DTYPE], "bytes")) {
        if (!(a->type = dtype_new(DT_VLSTR, sizeof(char *))))
            return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
        a->type->utf8 = mp_raw_eq(n[DTYPE], "str");
    } else if ((rc = dtype_parse_node(n[DTYPE], &a->type, e, el))) {
        return rc;
    }

    if (n[MAXSHAPE] && n[MAXSHAPE]->type != MP_NIL) {
        int nd;
        if ((rc = parse_dims(req, n[MAXSHAPE], "maxshape", true, &nd, a->maxshape))) return rc;
        if (nd != a->ndim)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "'maxshape' has %d entries but 'shape' has %d", nd, a->ndim);
        a->has_maxshape = true;
    }
    const mp_node *ch = n[CHUNKS];
    if (!ch || ch->type == MP_NIL) {
        a->chunks_mode = CHUNKS_DEFAULT;
    } else if (ch->type == MP_BOOL) {
        a->chunks_mode = ch->v.b ? CHUNKS_AUTO : CHUNKS_CONTIGUOUS;
    } else {
        int nd;
        if ((rc = parse_dims(req, ch, "chunks", false, &nd, a->chunks))) return rc;
        if (nd != a->ndim)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "'chunks' has %d entries but 'shape' has %d", nd, a->ndim);
        a->chunks_mode = CHUNKS_GIVEN;
    }
    if (n[FILL] && n[FILL]->type != MP_NIL) {
        if ((rc = h5a_array_from_node(n[FILL], &a->fill, e, el))) return rc;
        a->has_fill = true;
        uint64_t cnt;
        if (!h5a_nelems(a->fill.ndim, a->fill.dims, &cnt) || cnt != 1)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'fillvalue' must be a single value");
    }
    if ((rc = parse_bool(req, n[SHUFFLE], "shuffle", &a->shuffle)) ||
        (rc = parse_bool(req, n[EXIST_OK], "exist_ok", &a->exist_ok)))
        return rc;
    return 0;
}

/* A str argument as a NUL-terminated copy; empty strings and NUL bytes
 * are refused (HDF5 names are C strings). */
static int copy_name(h5a_request *req, const mp_node *n, const char *what, char **out)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    if (n->type != MP_STR)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'%s' must be a string, not %s", what,
                        mp_type_name(n));
    if (n->len == 0) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'%s' is empty", what);
    if (memchr(n->v.ptr, '\0', n->len))
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'%s' contains a NUL byte", what);
    *out = strndup((const char *)n->v.ptr, n->len);
    if (!*out) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    return 0;
}

/* An optional count: absent or nil = 0 (the default), else an int >= 1. */
static int parse_count(h5a_request *req, const mp_node *n, const char *what, uint64_t *out)
{
    *out = 0;
    if (!n || n->type == MP_NIL) return 0;
    if (n->type != MP_UINT || n->v.u == 0)
        return h5a_fail(req->err_msg, sizeof req->err_msg, H5A_E_BAD_REQUEST,
                        "'%s' must be a positive integer or nil", what);
    *out = n->v.u;
    return 0;
}

/* Arguments of the attribute, listing and link ops. */
static int parse_meta_args(h5a_request *req, unsigned want, const mp_node *name,
                           const mp_node *target, const mp_node *dest, const mp_node *limit,
                           const mp_node *after, const mp_node *depth)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    int rc;
    if (want & H5A_ARG_NAME) {
        if (!name) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs a string 'name'", req->op_name);
        if ((rc = copy_name(req, name, "name", &req->name))) return rc;
    }
    if (want & H5A_ARG_TARGET) {
        if (!target)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs a string 'target'", req->op_name);
        if ((rc = copy_name(req, target, "target", &req->target))) return rc;
        /* absolute, or relative to the link's group: the path rules either
         * way, so that a target names something a path could name */
        char why[200];
        size_t n = strlen(req->target);
        bool rel = req->target[0] != '/';
        char *abs = malloc(n + 2);
        if (!abs) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
        snprintf(abs, n + 2, "%s%s", rel ? "/" : "", req->target);
        rc = h5a_path_validate(abs, n + rel, why, sizeof why);
        free(abs);
        if (rc) return h5a_fail(e, el, rc, "link target '%.100s': %s", req->target, why);
    }
    if (want & H5A_ARG_DEST) {
        if (!dest || dest->type != MP_STR)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs a string 'dest'", req->op_name);
        if ((rc = h5a_path_validate((const char *)dest->v.ptr, dest->len, e, el))) return rc;
        req->dest = strndup((const char *)dest->v.ptr, dest->len);
        if (!req->dest) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    }
    if (want & H5A_ARG_PAGE) {
        if ((rc = parse_count(req, limit, "limit", &req->limit))) return rc;
        if (after && after->type != MP_NIL) {
            if ((rc = copy_name(req, after, "after", &req->after))) return rc;
            /* list continues after a member name, walk after a path */
            if (req->op == OP_LIST && strchr(req->after, '/'))
                return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                "'after' of op 'list' is a member name, without '/'");
            if (req->op == OP_WALK &&
                (rc = h5a_path_validate(req->after, strlen(req->after), e, el)))
                return rc;
        }
    }
    if (want & H5A_ARG_DEPTH && (rc = parse_count(req, depth, "max_depth", &req->max_depth))) return rc;
    return 0;
}

/* create_virtual's sources ([{"file"?, "path"}, ...]) and layout. */
static int parse_virtual(h5a_request *req, const mp_node *src, const mp_node *layout)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    int rc;
    if (!layout || !mp_is_raw(layout))
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op 'create_virtual' needs 'layout': \"stack\" or \"concat\"");
    if (mp_raw_eq(layout, "stack")) req->vlayout = VLAYOUT_STACK;
    else if (mp_raw_eq(layout, "concat")) req->vlayout = VLAYOUT_CONCAT;
    else return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'layout' must be \"stack\" or \"concat\"");
    if (!src || src->type != MP_ARRAY || src->len == 0 || src->len > H5A_MAX_VSOURCES)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                        "op 'create_virtual' needs 'sources': an array of 1 to %d maps "
                        "{\"file\", \"path\"}", H5A_MAX_VSOURCES);
    if (!(req->vsrc = calloc(src->len, sizeof *req->vsrc)))
        return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    req->nvsrc = src->len;
    const mp_node *it = mp_first_child(src);
    for (uint32_t i = 0; i < src->len; i++, it = mp_next(it)) {
        h5a_vsource *v = &req->vsrc[i];
        v->type = -1;
        if (it->type != MP_MAP)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "sources[%u] must be a map {\"file\", \"path\"}", i);
        const mp_node *k = mp_first_child(it), *file = NULL, *path = NULL;
        for (uint32_t j = 0; j < it->len; j++, k = mp_next(mp_next(k))) {
            if (mp_is_raw(k) && mp_raw_eq(k, "file")) file = mp_next(k);
            else if (mp_is_raw(k) && mp_raw_eq(k, "path")) path = mp_next(k);
            else return h5a_fail(e, el, H5A_E_BAD_REQUEST, "sources[%u] takes only 'file' and 'path'", i);
        }
        if (!path || path->type != MP_STR)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "sources[%u] needs a string 'path'", i);
        if ((rc = h5a_path_validate((const char *)path->v.ptr, path->len, e, el))) return rc;
        if (!(v->path = strndup((const char *)path->v.ptr, path->len)))
            return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
        if (file && file->type != MP_NIL) {
            if (file->type != MP_STR)
                return h5a_fail(e, el, H5A_E_BAD_REQUEST, "sources[%u]: 'file' must be a string", i);
            if ((rc = h5a_file_name_validate((const char *)file->v.ptr, file->len, e, el))) return rc;
            if (!(v->file = strndup((const char *)file->v.ptr, file->len)))
                return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
            /* printf-style: "%b" is the block number of an unlimited mapping
             * (H5Pset_virtual); any other '%' would be taken by HDF5 too */
            char *pct = strchr(v->file, '%');
            if (pct) {
                if (pct[1] != 'b' || strchr(pct + 2, '%'))
                    return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                    "sources[%u]: a file name may hold one '%%b' (the block "
                                    "number of an unlimited mapping) and no other '%%'", i);
                if (src->len != 1)
                    return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                                    "an unlimited virtual dataset ('%%b' in a file name) has "
                                    "exactly one source");
                req->vunlimited = true;
            }
        }
    }
    return 0;
}

static void free_virtual(h5a_request *req)
{
    for (size_t i = 0; i < req->nvsrc; i++) {
        free(req->vsrc[i].file);
        free(req->vsrc[i].path);
        free(req->vsrc[i].rel);
    }
    free(req->vsrc);
    req->vsrc = NULL;
    req->nvsrc = 0;
}

/* The optional flags of info, list and list_attrs (nil = false). */
static int parse_flags(h5a_request *req, unsigned want, const mp_node *const *arg)
{
    int rc = 0;
    if (want & H5A_ARG_LINK) rc = parse_bool(req, arg[KEY_LINK], "link", &req->link);
    if (!rc && want & H5A_ARG_INFO) rc = parse_bool(req, arg[KEY_INFO], "info", &req->with_info);
    if (!rc && want & H5A_ARG_VALUES) rc = parse_bool(req, arg[KEY_VALUES], "values", &req->values);
    return rc;
}

static int parse_body(h5a_request *req, const mp_node *root, bool top);

/* A batch's "ops": each a map like a request without id, durability,
 * client_id or seq, of an op allowed in batches (ops.h's BATCH column). */
static int parse_ops(h5a_request *req, const mp_node *ops)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    if (!ops || ops->type != MP_ARRAY)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op 'batch' needs 'ops', a list of requests");
    if (ops->len == 0) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'ops' of a batch is empty");
    if (!(req->sub = calloc(ops->len, sizeof *req->sub)))
        return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    const mp_node *it = mp_first_child(ops);
    for (uint32_t i = 0; i < ops->len; i++, it = mp_next(it)) {
        h5a_request *c = req->sub[i] = calloc(1, sizeof *c);
        if (!c) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
        req->nsub = i + 1;
        c->op = OP_NONE;
        c->op_name = "?";
        c->durability = -1;
        int rc = it->type == MP_MAP ? parse_body(c, it, false)
                                    : h5a_fail(c->err_msg, sizeof c->err_msg, H5A_E_BAD_REQUEST,
                                               "it must be a map, not a %s", mp_type_name(it));
        if (!rc && !h5a_op_info_of(c->op)->batch)
            rc = h5a_fail(c->err_msg, sizeof c->err_msg, H5A_E_BAD_REQUEST,
                          "op '%s' may not go in a batch", c->op_name);
        if (rc) {
            req->has_err_index = true;
            req->err_index = i;
            return h5a_fail(e, el, rc, "batch op %u (%s): %s; nothing was applied", (unsigned)i,
                            c->op_name, c->err_msg);
        }
    }
    return 0;
}

static int parse(h5a_request *req, const h5a_limits *lim)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    int rc = mp_decode(req->frame, req->frame_len, &lim->mp, &req->doc, e, el);
    if (rc) return rc;
    const mp_node *root = &req->doc.nodes[0];
    if (root->type != MP_MAP)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "a request must be a MessagePack map");

    const mp_node *id = mp_map_get(root, "id");
    if (!id || id->type != MP_UINT)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "a request needs an unsigned integer 'id'");
    req->has_id = true;
    req->id = id->v.u;
    return parse_body(req, root, true);
}

/* client_id (str of 1..64 bytes) and seq (uint) come together. */
static int parse_client(h5a_request *req, const mp_node *cid, const mp_node *seq)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    if (!cid && !seq) return 0;
    if (!cid || !seq)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'client_id' and 'seq' go together");
    if (!mp_is_raw(cid) || cid->len == 0 || cid->len > H5A_CLIENT_ID_MAX)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'client_id' must be a string of 1 to %d bytes",
                        H5A_CLIENT_ID_MAX);
    if (seq->type != MP_UINT)
        return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'seq' must be an unsigned integer");
    memcpy(req->client_id, cid->v.ptr, cid->len);
    req->client_id[cid->len] = '\0';
    req->client_id_len = (uint8_t)cid->len;
    req->seq = seq->v.u;
    req->has_seq = true;
    return 0;
}

static int parse_body(h5a_request *req, const mp_node *root, bool top)
{
    char *e = req->err_msg;
    size_t el = sizeof req->err_msg;
    int rc;
    const mp_node *op = mp_map_get(root, "op");
    if (!op || !mp_is_raw(op)) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "a request needs a string 'op'");
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (mp_raw_eqn(op, op_names[i].name, op_names[i].len)) {
            req->op = op_names[i].op;
            req->op_name = op_names[i].name;
        }
    if (req->op == OP_NONE) {
        /* the list of known ops, from the table so that it cannot go stale */
        char known[512];
        size_t used = 0;
        /* each op, its aliases right after it ("write, update") */
        for (int o = 0; o < OP_NONE; o++)
            for (size_t i = 0; i < sizeof op_names / sizeof op_names[0] && used < sizeof known;
                 i++) {
                if (op_names[i].op != (h5a_op)o) continue;
                int k = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                                 op_names[i].name);
                if (k > 0) used += (size_t)k;
            }
        /* the op quoted up to 32 bytes, so that the whole list fits in err_msg */
        return h5a_fail(e, el, H5A_E_UNKNOWN_OP, "unknown op '%.*s' (known: %s)",
                        (int)(op->len > 32 ? 32 : op->len), (const char *)op->v.ptr, known);
    }

    unsigned want = h5a_op_info_of(req->op)->args;
    const mp_node *k = mp_first_child(root), *dur = NULL, *file = NULL, *cid = NULL, *seq = NULL;
    const mp_node *arg[KEY_COUNT] = {NULL};
    for (uint32_t i = 0; i < root->len; i++, k = mp_next(mp_next(k))) {
        if (!mp_is_raw(k)) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "request keys must be strings");
        if (MP_RAW_EQ_LIT(k, "op")) continue;
        bool whole = MP_RAW_EQ_LIT(k, "id") || MP_RAW_EQ_LIT(k, "durability") ||
                     MP_RAW_EQ_LIT(k, "client_id") || MP_RAW_EQ_LIT(k, "seq");
        if (whole && !top) /* they belong to the batch as a whole */
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "'%.*s' goes on the batch, not on the ops inside it", (int)k->len,
                            (const char *)k->v.ptr);
        if (MP_RAW_EQ_LIT(k, "id")) continue;
        if (MP_RAW_EQ_LIT(k, "durability")) { /* every op: a ping with "fsync" is a barrier */
            dur = mp_next(k);
            continue;
        }
        if (MP_RAW_EQ_LIT(k, "file")) { /* every op: the file under data_root it is for */
            file = mp_next(k);
            continue;
        }
        if (MP_RAW_EQ_LIT(k, "client_id")) { /* every op: exactly-once (dedup.c) */
            cid = mp_next(k);
            continue;
        }
        if (MP_RAW_EQ_LIT(k, "seq")) {
            seq = mp_next(k);
            continue;
        }
        int j = 0;
        while (j < KEY_COUNT && !mp_raw_eqn(k, req_keys[j].key, req_keys[j].len)) j++;
        if (j == KEY_COUNT || !(req_keys[j].takes & want))
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' takes no argument '%.*s'",
                            req->op_name, (int)(k->len > 64 ? 64 : k->len), (const char *)k->v.ptr);
        arg[j] = mp_next(k);
    }
    const mp_node *path = arg[KEY_PATH], *data = arg[KEY_DATA], *index = arg[KEY_INDEX],
                  *sel = arg[KEY_SELECTION], *token = arg[KEY_TOKEN];

    if ((rc = parse_client(req, cid, seq))) return rc;
    if (want & H5A_ARG_OPS && (rc = parse_ops(req, arg[KEY_OPS]))) return rc;
    if (dur) {
        int d = mp_is_raw(dur) ? h5a_durability_parse((const char *)dur->v.ptr, dur->len) : -1;
        if (d < 0)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "'durability' must be \"none\", \"flush\" or \"fsync\"");
        req->durability = d;
    }
    if (file) {
        if (file->type != MP_STR)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "'file' must be a string");
        if ((rc = h5a_file_name_validate((const char *)file->v.ptr, file->len, e, el))) return rc;
        req->file = strndup((const char *)file->v.ptr, file->len);
        if (!req->file) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    }
    /* A batch applies to one file, its own: each file has its own log, and
     * all-or-nothing across two logs is not possible. An op inside may
     * repeat the batch's file, never name another. */
    for (uint32_t i = 0; i < req->nsub; i++) {
        const char *sf = req->sub[i]->file;
        if (sf && !(req->file && strcmp(sf, req->file) == 0)) {
            req->has_err_index = true;
            req->err_index = i;
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "batch op %u (%s): 'file' \"%s\" is not the batch's file (%s%s%s): a "
                            "batch applies to one file; nothing was applied",
                            (unsigned)i, req->sub[i]->op_name, sf, req->file ? "\"" : "",
                            req->file ? req->file : "the default file", req->file ? "\"" : "");
        }
        /* the ops' file is the batch's (create_virtual resolves its
         * sources relative to it) */
        if (!sf && req->file && !(req->sub[i]->file = strdup(req->file)))
            return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    }
    if (want & H5A_ARG_PATH) {
        if (!path || path->type != MP_STR)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs a string 'path'", req->op_name);
        if ((rc = h5a_path_validate((const char *)path->v.ptr, path->len, e, el))) return rc;
        req->path = strndup((const char *)path->v.ptr, path->len);
        if (!req->path) return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
    }
    if (want & H5A_ARG_INDEX) {
        if (!index || (index->type != MP_INT && index->type != MP_UINT))
            return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs an integer 'index'", req->op_name);
        if (index->type == MP_UINT && index->v.u > INT64_MAX)
            return h5a_fail(e, el, H5A_E_OUT_OF_RANGE, "index %llu is out of range",
                            (unsigned long long)index->v.u);
        req->index = index->type == MP_INT ? index->v.i : (int64_t)index->v.u;
    }
    if (want & H5A_ARG_COMP &&
        (rc = parse_compression(req, arg[KEY_COMPRESSION], arg[KEY_COMPRESSION_OPTS])))
        return rc;
    if (want & (H5A_ARG_SEL | H5A_ARG_SEL_REQ)) {
        /* nil counts as absent: the whole dataset */
        if (sel && sel->type != MP_NIL && (rc = parse_selection(req, sel))) return rc;
        if (want & H5A_ARG_SEL_REQ && !req->sel)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "op 'write_slice' needs a 'selection' (use 'write' for whole "
                            "datasets)");
    }
    if (want & H5A_ARG_SHAPE && (rc = parse_dset(req, arg))) return rc;
    if ((rc = parse_meta_args(req, want, arg[KEY_NAME], arg[KEY_TARGET], arg[KEY_DEST],
                              arg[KEY_LIMIT], arg[KEY_AFTER], arg[KEY_MAX_DEPTH])))
        return rc;
    if ((rc = parse_flags(req, want, arg))) return rc;
    if (want & H5A_ARG_VIRTUAL && (rc = parse_virtual(req, arg[KEY_SOURCES], arg[KEY_LAYOUT])))
        return rc;
    if (want & H5A_ARG_TOKEN) {
        if (!token || token->type != MP_STR || token->len == 0 || token->len > 4096)
            return h5a_fail(e, el, H5A_E_BAD_REQUEST,
                            "op 'auth' needs a string 'token' of 1 to 4096 bytes");
        if (!(req->token = malloc(token->len)))
            return h5a_fail(e, el, H5A_E_INTERNAL, "out of memory");
        memcpy(req->token, token->v.ptr, token->len);
        req->token_len = token->len;
    }
    if (want & H5A_ARG_DATA) {
        if (!data) return h5a_fail(e, el, H5A_E_BAD_REQUEST, "op '%s' needs 'data'", req->op_name);
        if ((rc = h5a_array_from_node(data, &req->data, e, el))) return rc;
        req->has_data = true;
    }
    return 0;
}

void h5a_request_parse(h5a_request *req, const h5a_limits *lim)
{
    req->op = OP_NONE;
    req->op_name = "?";
    req->durability = -1;
    req->has_err_index = false;
    int rc = parse(req, lim);
    if (rc) req->err_code = rc;
}

void h5a_request_release_input(h5a_request *req)
{
    if (req->has_data) h5a_array_clear(&req->data);
    req->has_data = false;
    free(req->sel);
    req->sel = NULL;
    if (req->dset) {
        h5a_array_clear(&req->dset->fill);
        dtype_free(req->dset->type);
        free(req->dset);
        req->dset = NULL;
    }
    if (req->token) {
        /* the token is a secret: gone from memory as soon as it is used */
        explicit_bzero(req->token, req->token_len);
        free(req->token);
        req->token = NULL;
    }
    for (uint32_t i = 0; i < req->nsub; i++) h5a_request_free(req->sub[i]);
    free(req->sub);
    req->sub = NULL;
    req->nsub = 0;
    if (req->op == OP_AUTH && req->frame) explicit_bzero(req->frame, req->frame_len);
    mp_doc_free(&req->doc);
    free(req->frame);
    req->frame = NULL;
}

void h5a_request_clear(h5a_request *req)
{
    h5a_request_release_input(req);
    free(req->path);
    free(req->file);
    free_virtual(req);
    free(req->name);
    free(req->target);
    free(req->dest);
    free(req->after);
    mp_buf_free(&req->reply);
    h5a_buf_free(req->reply_data);
}

void h5a_request_free(h5a_request *req)
{
    if (!req) return;
    h5a_request_clear(req);
    free(req);
}
