#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "errors.h"

/* Plain values are packed as native numbers and labelled '<': that is only
 * true on a little-endian machine. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "array.c assumes a little-endian host"
#endif

bool h5a_nelems(int ndim, const uint64_t *dims, uint64_t *out)
{
    /* A zero extent makes the product 0 whatever the others are, but each
     * extent must still fit the signed sizes numpy and HDF5 use. */
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] > INT64_MAX)
            return false;
        empty = empty || dims[i] == 0;
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim && !empty; i++) {
        if (n > INT64_MAX / dims[i])
            return false;
        n *= dims[i];
    }
    *out = empty ? 0 : n;
    return true;
}

void h5a_array_clear(h5a_array *a)
{
    dtype_free(a->type);
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/* ---- helpers for messages ---- */

void h5a_shape_str(int ndim, const uint64_t *dims, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)dims[i]);
    if (o < len)
        snprintf(buf + o, len - o, ndim == 1 ? ",)" : ")");
}

static void type_str(const dtype *t, char *buf, size_t len)
{
    if (t->kind == DT_STRUCT)
        snprintf(buf, len, "structured (itemsize %zu)", t->itemsize);
    else
        dtype_str(t, buf, len);
}

/* ---- msgpack-numpy maps ---- */

static int parse_shape(const mp_node *shape, h5a_array *out, char *err, size_t errlen)
{
    if (shape->type != MP_ARRAY)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array \"shape\" must be a list, got %s",
                        mp_type_name(shape));
    /* TOO_LARGE rather than BAD_REQUEST: the shape is well formed, it only
     * exceeds HDF5's rank limit. */
    if (shape->len > H5A_MAX_DIMS)
        return h5a_fail(err, errlen, H5A_E_TOO_LARGE, "array rank %u exceeds %d", shape->len,
                        H5A_MAX_DIMS);
    const mp_node *d = mp_first_child(shape);
    for (uint32_t i = 0; i < shape->len; i++, d = mp_next(d)) {
        if (d->type != MP_UINT)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "array \"shape\" entries must be non-negative ints, entry %u is %s",
                            i, d->type == MP_INT ? "negative" : mp_type_name(d));
        out->dims[i] = d->v.u;
    }
    out->ndim = (int)shape->len;
    return 0;
}

/* Checks that data holds exactly the bytes the shape and type need and points
 * the array at them. */
static int attach_data(const mp_node *data, h5a_array *out, char *err, size_t errlen)
{
    if (!mp_is_raw(data))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array \"data\" must be bin, got %s",
                        mp_type_name(data));
    uint64_t n;
    char shape[256], type[64];
    /* messages are formatted only on the error paths: this runs per request */
    if (!h5a_nelems(out->ndim, out->dims, &n) ||
        (out->type->itemsize && n > SIZE_MAX / out->type->itemsize))
        return h5a_shape_str(out->ndim, out->dims, shape, sizeof shape), h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array of shape %s is too large", shape);
    size_t need = (size_t)n * out->type->itemsize;
    if (need != data->len) {
        h5a_shape_str(out->ndim, out->dims, shape, sizeof shape);
        type_str(out->type, type, sizeof type);
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "array of shape %s and type %s needs %zu bytes of data, got %u", shape,
                        type, need, data->len);
    }
    out->data = data->v.ptr;
    out->nbytes = need;
    return 0;
}

static int from_numpy_map(const mp_node *map, const mp_node *nd, h5a_array *out, char *err,
                          size_t errlen)
{
    if (nd->type != MP_BOOL)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array \"nd\" must be a bool, got %s",
                        mp_type_name(nd));
    const mp_node *type = mp_map_get(map, "type");
    const mp_node *data = mp_map_get(map, "data");
    if (!type || !data)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array map lacks \"%s\"",
                        type ? "data" : "type");
    const mp_node *kind = mp_map_get(map, "kind");
    if (kind && mp_raw_eq(kind, "O"))
        return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                        "numpy object arrays (pickled, kind 'O') are not supported");

    int rc = dtype_parse_node(type, &out->type, err, errlen);
    if (rc)
        return rc;
    if (nd->v.b) {
        const mp_node *shape = mp_map_get(map, "shape");
        if (!shape)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "array map lacks \"shape\"");
        if ((rc = parse_shape(shape, out, err, errlen)))
            return rc;
    }
    return attach_data(data, out, err, errlen);
}

/* Reads one float the way Python's float() spells it ("1.5", "-0", "inf",
 * "nan", "1e+300"), refusing what strtod would take but Python would not
 * (leading space, hex). Returns characters consumed, 0 if none. */
static size_t scan_double(const char *s, double *v)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!(isdigit((unsigned char)*p) || *p == '.' || *p == 'i' || *p == 'I' || *p == 'n' ||
          *p == 'N'))
        return 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        return 0;
    char *end;
    *v = strtod(s, &end);
    /* strtod takes "nan(...)"; Python does not, and nothing here needs it */
    if (end > s && end[-1] == ')')
        return 0;
    return (size_t)(end - s);
}

/* Python's complex repr: "1j", "(1+2j)", "(-0-1j)", "(nan+infj)",
 * "(1e+300-2.5e-10j)"; complex() also takes "1+2j" and "2", so do we. */
static bool parse_complex(const char *s, double *re, double *im)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    while (n && isspace((unsigned char)*s))
        s++, n--;
    char buf[128];
    if (n >= sizeof buf)
        return false;
    if (n && s[0] == '(') {
        if (s[n - 1] != ')')
            return false;
        s++;
        n -= 2;
        while (n && isspace((unsigned char)s[n - 1]))
            n--;
        while (n && isspace((unsigned char)*s))
            s++, n--;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';

    const char *p = buf;
    double x, y;
    size_t k = scan_double(p, &x);
    *re = 0.0;
    *im = 0.0;
    if (k == 0) {
        /* "j", "+j", "-j" */
        double sign = *p == '-' ? -1.0 : 1.0;
        if (*p == '+' || *p == '-')
            p++;
        if ((*p != 'j' && *p != 'J') || p[1])
            return false;
        *im = sign;
        return true;
    }
    p += k;
    if (*p == 'j' || *p == 'J') {
        *im = x;
        return p[1] == '\0';
    }
    *re = x;
    if (*p == '\0')
        return true;
    if (*p != '+' && *p != '-')
        return false;
    k = scan_double(p, &y);
    if (k == 0) {
        /* "1+j" */
        y = *p == '-' ? -1.0 : 1.0;
        k = 1;
    }
    p += k;
    if (*p != 'j' && *p != 'J')
        return false;
    *im = y;
    return p[1] == '\0';
}

static int from_complex_map(const mp_node *flag, const mp_node *map, h5a_array *out, char *err,
                            size_t errlen)
{
    const mp_node *data = mp_map_get(map, "data");
    if (flag->type != MP_BOOL || !flag->v.b || !data || !mp_is_raw(data))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "complex value must be {\"complex\": true, \"data\": \"(re+imj)\"}");
    char text[128];
    if (data->len >= sizeof text || memchr(data->v.ptr, '\0', data->len))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "complex value: bad \"data\"");
    memcpy(text, data->v.ptr, data->len);
    text[data->len] = '\0';
    double v[2];
    if (!parse_complex(text, &v[0], &v[1]))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "complex value: cannot parse '%s'",
                        text);
    out->type = dtype_new(DT_COMPLEX, 16);
    out->owned = malloc(sizeof v);
    if (!out->type || !out->owned)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    memcpy(out->owned, v, sizeof v);
    out->data = out->owned;
    out->nbytes = sizeof v;
    return 0;
}

/* ---- plain values ---- */

/* What the leaves of a plain value hold; decides the numpy type. */
typedef struct leaf_kinds {
    size_t bools, ints, floats, strs, bins;
    bool negative;   /* some int < 0 */
    bool above_i64;  /* some int > INT64_MAX */
    size_t strbytes; /* total string bytes, for the one allocation */
} leaf_kinds;

static void fmt_path(const uint32_t *idx, int depth, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < depth && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "[%u]", idx[i]);
}

static int classify_leaf(const mp_node *n, leaf_kinds *k, const uint32_t *idx, int depth,
                         char *err, size_t errlen)
{
    char path[H5A_MAX_DIMS * 12 + 1];
    switch (n->type) {
    case MP_BOOL: k->bools++; return 0;
    case MP_INT: k->ints++; k->negative = true; return 0;
    case MP_UINT:
        k->ints++;
        if (n->v.u > INT64_MAX)
            k->above_i64 = true;
        return 0;
    case MP_FLOAT: k->floats++; return 0;
    case MP_STR:
    case MP_BIN:
        if (memchr(n->v.ptr, '\0', n->len)) {
            fmt_path(idx, depth, path, sizeof path);
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "string%s contains a NUL byte; HDF5 strings cannot hold one",
                            path);
        }
        if (n->type == MP_STR)
            k->strs++;
        else
            k->bins++;
        k->strbytes += (size_t)n->len + 1;
        return 0;
    default:
        fmt_path(idx, depth, path, sizeof path);
        if (n->type == MP_MAP)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "map at %s inside a nested list: lists of numpy scalars or arrays "
                            "are not supported, send one array",
                            path);
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "%s at %s inside a nested list",
                        mp_type_name(n), path);
    }
}

/* Checks that the list is rectangular with the shape its first path gave,
 * classifying the leaves on the way. idx holds the position for messages. */
static int walk_list(const mp_node *n, const h5a_array *a, int depth, uint32_t *idx,
                     leaf_kinds *k, char *err, size_t errlen)
{
    char path[H5A_MAX_DIMS * 12 + 1];
    if (depth == a->ndim) {
        if (n->type == MP_ARRAY) {
            fmt_path(idx, depth, path, sizeof path);
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "ragged nested list: %s is a list where a value is expected", path);
        }
        return classify_leaf(n, k, idx, depth, err, errlen);
    }
    if (n->type != MP_ARRAY || n->len != a->dims[depth]) {
        fmt_path(idx, depth, path, sizeof path);
        if (n->type != MP_ARRAY)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "ragged nested list: %s is a %s where a list of %llu is expected",
                            depth ? path : "the value", mp_type_name(n),
                            (unsigned long long)a->dims[depth]);
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "ragged nested list: %s has %u items, expected %llu",
                        depth ? path : "the value", n->len, (unsigned long long)a->dims[depth]);
    }
    const mp_node *c = mp_first_child(n);
    for (uint32_t i = 0; i < n->len; i++, c = mp_next(c)) {
        idx[depth] = i;
        int rc = walk_list(c, a, depth + 1, idx, k, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* Leaves in pre-order are the elements in C order once the list is known to
 * be rectangular, so packing is a flat scan of the subtree. */
static void pack_numbers(const mp_node *root, const dtype *t, uint8_t *dst)
{
    const mp_node *end = root + root->span;
    for (const mp_node *n = root; n < end; n++) {
        if (n->type == MP_ARRAY)
            continue;
        if (t->kind == DT_FLOAT) {
            double v = n->type == MP_FLOAT ? n->v.f
                       : n->type == MP_INT ? (double)n->v.i
                       : n->type == MP_UINT ? (double)n->v.u
                                            : (double)n->v.b;
            memcpy(dst, &v, sizeof v);
            dst += sizeof v;
        } else if (t->kind == DT_BOOL) {
            *dst++ = n->v.b ? 1 : 0;
        } else if (t->kind == DT_UINT) {
            uint64_t v = n->type == MP_BOOL ? (uint64_t)n->v.b : n->v.u;
            memcpy(dst, &v, sizeof v);
            dst += sizeof v;
        } else {
            int64_t v = n->type == MP_BOOL ? (int64_t)n->v.b
                        : n->type == MP_INT ? n->v.i
                                            : (int64_t)n->v.u;
            memcpy(dst, &v, sizeof v);
            dst += sizeof v;
        }
    }
}

/* One allocation: nelems char * followed by the NUL-terminated copies. */
static void pack_strings(const mp_node *root, char **ptrs, char *chars)
{
    const mp_node *end = root + root->span;
    for (const mp_node *n = root; n < end; n++) {
        if (n->type == MP_ARRAY)
            continue;
        *ptrs++ = chars;
        memcpy(chars, n->v.ptr, n->len);
        chars[n->len] = '\0';
        chars += n->len + 1;
    }
}

static int from_plain(const mp_node *value, h5a_array *out, char *err, size_t errlen)
{
    /* The first path fixes the shape; walk_list then holds every other path
     * to it. */
    const mp_node *n = value;
    while (n->type == MP_ARRAY) {
        if (out->ndim == H5A_MAX_DIMS)
            return h5a_fail(err, errlen, H5A_E_TOO_LARGE, "nested list deeper than %d",
                            H5A_MAX_DIMS);
        out->dims[out->ndim++] = n->len;
        if (n->len == 0)
            break;
        n = mp_first_child(n);
    }

    leaf_kinds k = {0};
    uint32_t idx[H5A_MAX_DIMS];
    int rc = walk_list(value, out, 0, idx, &k, err, errlen);
    if (rc)
        return rc;

    size_t nums = k.bools + k.ints + k.floats;
    if (nums && (k.strs || k.bins))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "list mixes strings and numbers");
    if (k.strs && k.bins)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "list mixes str and bin strings");

    uint64_t nel;
    h5a_nelems(out->ndim, out->dims, &nel); /* bounded by the node count */
    out->plain = true;

    if (k.strs || k.bins) {
        out->type = dtype_new(DT_VLSTR, sizeof(char *));
        if (!out->type)
            return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
        out->type->utf8 = k.strs > 0;
        size_t ptrbytes = (size_t)nel * sizeof(char *);
        out->owned = malloc(ptrbytes + k.strbytes);
        if (!out->owned)
            return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
        pack_strings(value, out->owned, (char *)out->owned + ptrbytes);
        out->data = out->owned;
        out->nbytes = ptrbytes;
        return 0;
    }

    dt_kind kind;
    size_t size = 8;
    if (k.floats || nums == 0) {
        kind = DT_FLOAT; /* [] is float64 in numpy too */
    } else if (k.ints) {
        if (k.negative && k.above_i64)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "integers out of range: the list needs both int64 (negative "
                            "values) and uint64 (values above 2**63-1)");
        kind = k.above_i64 ? DT_UINT : DT_INT;
    } else {
        kind = DT_BOOL;
        size = 1;
    }
    out->type = dtype_new(kind, size);
    if (!out->type)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    out->nbytes = (size_t)nel * size;
    /* malloc(0) may return NULL; an empty array still gets a real pointer */
    out->owned = malloc(out->nbytes ? out->nbytes : 1);
    if (!out->owned)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    pack_numbers(value, out->type, out->owned);
    out->data = out->owned;
    return 0;
}

int h5a_array_from_node(const mp_node *value, h5a_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (value->type == MP_MAP) {
        const mp_node *nd = mp_map_get(value, "nd");
        const mp_node *cx = mp_map_get(value, "complex");
        if (nd)
            rc = from_numpy_map(value, nd, out, err, errlen);
        else if (cx)
            rc = from_complex_map(cx, value, out, err, errlen);
        else
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                          "a map is not an array value (expected msgpack-numpy's {\"nd\": ...})");
    } else if (value->type == MP_NIL) {
        rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "nil is not an array value");
    } else if (value->type == MP_EXT) {
        rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                      "MessagePack ext type %d is not an array value", value->ext_type);
    } else {
        rc = from_plain(value, out, err, errlen);
    }
    if (rc)
        h5a_array_clear(out);
    return rc;
}

/* ---- encoding ---- */

static const char *vlstr_at(const h5a_array *a, uint64_t i)
{
    const char *s;
    memcpy(&s, (const char *)a->data + i * sizeof(char *), sizeof s);
    return s ? s : ""; /* HDF5 may hand back NULL for an empty string */
}

static void put_vlstr(mp_buf *b, const h5a_array *a, uint64_t i)
{
    const char *s = vlstr_at(a, i);
    if (a->type->utf8)
        mp_put_cstr(b, s);
    else
        mp_put_bin(b, s, strlen(s));
}

static void put_vlstr_level(mp_buf *b, const h5a_array *a, int depth, uint64_t *next)
{
    mp_put_array_header(b, (size_t)a->dims[depth]);
    for (uint64_t i = 0; i < a->dims[depth] && !b->oom; i++) {
        if (depth + 1 == a->ndim)
            put_vlstr(b, a, (*next)++);
        else
            put_vlstr_level(b, a, depth + 1, next);
    }
}

static void put_key(mp_buf *b, const char *k) { mp_put_bin(b, k, strlen(k)); }

int h5a_array_encode(mp_buf *b, const h5a_array *a, bool *data_follows, char *err,
                     size_t errlen)
{
    *data_follows = false;
    size_t start = b->len;
    uint64_t nel;
    if (a->ndim < 0 || a->ndim > H5A_MAX_DIMS || !h5a_nelems(a->ndim, a->dims, &nel))
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "array to encode has a bad shape");

    /* A mismatch here is a bug in the caller, but it would put a frame on the
     * wire that no client can decode, or read past the data. */
    size_t esize = a->type->itemsize;
    if (esize && nel > a->nbytes / esize)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "array data shorter than its shape");
    if (a->type->kind != DT_VLSTR && nel * esize != a->nbytes)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "array data longer than its shape");

    if (a->type->kind == DT_VLSTR) {
        uint64_t next = 0;
        if (a->ndim == 0)
            put_vlstr(b, a, 0);
        else
            put_vlstr_level(b, a, 0, &next);
    } else if (a->ndim == 0) {
        mp_put_map_header(b, 3);
        put_key(b, "nd");
        mp_put_bool(b, false);
        put_key(b, "type");
        if (dtype_encode(b, a->type) == H5A_E_UNSUPPORTED_TYPE)
            goto unsupported;
        put_key(b, "data");
        mp_put_bin(b, a->data, a->nbytes);
    } else {
        mp_put_map_header(b, 5);
        put_key(b, "nd");
        mp_put_bool(b, true);
        put_key(b, "type");
        if (dtype_encode(b, a->type) == H5A_E_UNSUPPORTED_TYPE)
            goto unsupported;
        put_key(b, "kind");
        put_key(b, a->type->kind == DT_STRUCT ? "V" : "");
        put_key(b, "shape");
        mp_put_array_header(b, (size_t)a->ndim);
        for (int i = 0; i < a->ndim; i++)
            mp_put_uint(b, a->dims[i]);
        put_key(b, "data");
        mp_put_bin_header(b, a->nbytes);
        *data_follows = true;
    }
    if (b->oom) {
        *data_follows = false;
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory encoding array");
    }
    return 0;

unsupported:
    /* drop the half-written map so the buffer holds only whole values */
    b->len = start;
    return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                    "type cannot be written in msgpack-numpy form (variable-length strings "
                    "inside a struct, or overlapping fields)");
}
