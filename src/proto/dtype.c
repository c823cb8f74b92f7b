#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "errors.h"

/* numpy caps itemsize at a C int; anything larger could not come from it
 * and would only invite overflow further on. */
#define DT_MAX_ITEMSIZE ((size_t)INT32_MAX)

/* Nested structs in one type. The MessagePack depth limit already bounds
 * this for decoded input; the explicit cap keeps the recursion safe for any
 * caller. */
#define DT_MAX_NESTING 32

/* Named fields in one parsed type, counting nested structs. A dt_field is
 * ~300 bytes against ~7 bytes on the wire, so without a cap one frame could
 * ask for gigabytes; HDF5's 64 KiB datatype message holds far fewer anyway. */
#define DT_MAX_FIELDS 65536

/* ---- construction ---- */

static char default_order(dt_kind kind, size_t itemsize)
{
    switch (kind) {
    case DT_INT:
    case DT_UINT:
    case DT_FLOAT:
    case DT_COMPLEX:
        /* numpy writes '|' for one-byte numbers: byte order means nothing */
        return itemsize == 1 ? '|' : '<';
    default:
        return '|';
    }
}

dtype *dtype_new(dt_kind kind, size_t itemsize)
{
    dtype *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->itemsize = itemsize;
    t->order = default_order(kind, itemsize);
    return t;
}

void dtype_free(dtype *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nfields; i++) {
        free(t->fields[i].name);
        dtype_free(t->fields[i].type);
    }
    free(t->fields);
    free(t);
}

int dtype_add_field(dtype *st, const char *name, size_t offset, dtype *ftype, int ndim,
                    const uint64_t *dims)
{
    /* Ownership of ftype passes to us even on failure, so the caller never
     * has to ask who frees it. */
    if (!st || st->kind != DT_STRUCT || !name || !ftype || ndim < 0 || ndim > H5A_MAX_DIMS ||
        (ndim > 0 && !dims)) {
        dtype_free(ftype);
        return H5A_E_INTERNAL;
    }
    char *copy = strdup(name);
    dt_field *f = realloc(st->fields, (st->nfields + 1) * sizeof *f);
    if (!copy || !f) {
        free(copy);
        if (f)
            st->fields = f;
        dtype_free(ftype);
        return H5A_E_INTERNAL;
    }
    st->fields = f;
    /* Insert after any field with the same or lower offset, so equal offsets
     * keep their arrival order. */
    size_t at = st->nfields;
    while (at > 0 && f[at - 1].offset > offset)
        at--;
    memmove(&f[at + 1], &f[at], (st->nfields - at) * sizeof *f);
    memset(&f[at], 0, sizeof *f);
    f[at].name = copy;
    f[at].offset = offset;
    f[at].type = ftype;
    f[at].ndim = ndim;
    for (int i = 0; i < ndim; i++)
        f[at].dims[i] = dims[i];
    st->nfields++;
    return 0;
}

dtype *dtype_copy(const dtype *t)
{
    if (!t)
        return NULL;
    dtype *c = dtype_new(t->kind, t->itemsize);
    if (!c)
        return NULL;
    c->order = t->order;
    c->utf8 = t->utf8;
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        dtype *ft = dtype_copy(f->type);
        if (!ft || dtype_add_field(c, f->name, f->offset, ft, f->ndim, f->dims) != 0) {
            dtype_free(c);
            return NULL;
        }
    }
    return c;
}

bool dtype_equal(const dtype *a, const dtype *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    if (a->kind != b->kind || a->order != b->order || a->itemsize != b->itemsize ||
        a->utf8 != b->utf8 || a->nfields != b->nfields)
        return false;
    for (size_t i = 0; i < a->nfields; i++) {
        const dt_field *fa = &a->fields[i], *fb = &b->fields[i];
        if (strcmp(fa->name, fb->name) != 0 || fa->offset != fb->offset || fa->ndim != fb->ndim)
            return false;
        for (int k = 0; k < fa->ndim; k++)
            if (fa->dims[k] != fb->dims[k])
                return false;
        if (!dtype_equal(fa->type, fb->type))
            return false;
    }
    return true;
}

/* ---- type strings ---- */

static char kind_char(dt_kind kind)
{
    switch (kind) {
    case DT_BOOL: return 'b';
    case DT_INT: return 'i';
    case DT_UINT: return 'u';
    case DT_FLOAT: return 'f';
    case DT_COMPLEX: return 'c';
    case DT_BYTES: return 'S';
    case DT_VOID: return 'V';
    default: return 0;
    }
}

void dtype_str(const dtype *t, char *buf, size_t buflen)
{
    if (!buflen)
        return;
    char k = kind_char(t->kind);
    if (!k) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, buflen, "%c%c%zu", t->order, k, t->itemsize);
}

/* The type string as a printable C string for error messages: the input is
 * not NUL-terminated and may hold anything. */
static void printable(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        /* room for the widest escape, then "..." and the NUL */
        if (o + 8 > outlen) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

int dtype_parse_str(const char *s, size_t n, dtype **out, char *err, size_t errlen)
{
    char shown[64];
    printable(s, n, shown, sizeof shown);
    *out = NULL;

    size_t i = 0;
    char order = 0;
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '='))
        order = s[i++] == '=' ? '<' : s[0];
    if (i >= n)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "bad type string '%s'", shown);
    char kc = s[i++];

    /* These kinds are real numpy types we refuse, so they get their own code
     * and a hint, before the size (or a datetime unit) is even looked at. */
    switch (kc) {
    case 'U':
        return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                        "numpy unicode '%s' has no HDF5 equivalent; send variable-length "
                        "strings (plain MessagePack str) or bytes 'S'",
                        shown);
    case 'O':
        return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                        "numpy object type '%s' cannot be stored; send a typed array or "
                        "plain MessagePack values",
                        shown);
    case 'M':
    case 'm':
        return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                        "numpy %s type '%s' has no HDF5 equivalent; send it as integers",
                        kc == 'M' ? "datetime64" : "timedelta64", shown);
    }

    if (kc == '\0' || !strchr("biufcSV", kc))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "bad type string '%s': unknown kind '%c'",
                        shown, kc >= 0x20 && kc < 0x7f ? kc : '?');

    size_t size = 0;
    size_t ndigits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, ndigits++) {
        size = size * 10 + (size_t)(s[i] - '0');
        if (size > DT_MAX_ITEMSIZE)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "type '%s': size too large", shown);
    }
    if (ndigits == 0 || i != n)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "bad type string '%s'", shown);

    dt_kind kind;
    bool size_ok;
    switch (kc) {
    case 'b':
        kind = DT_BOOL;
        size_ok = size == 1;
        break;
    case 'i':
    case 'u':
        kind = kc == 'i' ? DT_INT : DT_UINT;
        size_ok = size == 1 || size == 2 || size == 4 || size == 8;
        break;
    case 'f':
        kind = DT_FLOAT;
        size_ok = size == 2 || size == 4 || size == 8;
        break;
    case 'c':
        kind = DT_COMPLEX;
        size_ok = size == 8 || size == 16;
        break;
    case 'S':
        kind = DT_BYTES;
        size_ok = size >= 1;
        break;
    default: /* V, the kinds were checked above */
        kind = DT_VOID;
        size_ok = size >= 1;
        break;
    }
    if (!size_ok) {
        if (size == 0)
            return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                            "type '%s' has size 0 (numpy's type for empty strings or "
                            "empty void); HDF5 types need at least one byte",
                            shown);
        return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                        "type '%s' is not supported (no HDF5 equivalent of that size)", shown);
    }

    dtype *t = dtype_new(kind, size);
    if (!t)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    /* Byte order of one-byte types is meaningless: numpy writes '|', and so
     * do we whatever was sent, so equal types compare equal. */
    if (size > 1 && (kind == DT_INT || kind == DT_UINT || kind == DT_FLOAT || kind == DT_COMPLEX))
        t->order = order && order != '|' ? order : '<';
    *out = t;
    return 0;
}

/* ---- descr lists ---- */

/* Copy of a str/bin node as a C string, refusing embedded NULs. */
static int raw_to_cstr(const mp_node *n, char **out)
{
    if (memchr(n->v.ptr, '\0', n->len))
        return -1;
    char *s = malloc((size_t)n->len + 1);
    if (!s)
        return H5A_E_INTERNAL;
    memcpy(s, n->v.ptr, n->len);
    s[n->len] = '\0';
    *out = s;
    return 0;
}

/* Subarray shape of a descr entry: a list of uints ([] is no subarray), or a
 * bare uint, which numpy also takes for a one-dimensional shape. */
static int parse_shape(const mp_node *n, size_t entry, int *ndim, uint64_t *dims,
                       uint64_t *count, char *err, size_t errlen)
{
    *ndim = 0;
    *count = 1;
    if (n->type == MP_UINT) {
        *ndim = 1;
        dims[0] = n->v.u;
        *count = n->v.u;
        return 0;
    }
    if (n->type != MP_ARRAY)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "type descr entry %zu: shape must be a list of ints, got %s", entry,
                        mp_type_name(n));
    if (n->len > H5A_MAX_DIMS)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "type descr entry %zu: subarray rank %u exceeds %d", entry, n->len,
                        H5A_MAX_DIMS);
    const mp_node *d = mp_first_child(n);
    for (uint32_t k = 0; k < n->len; k++, d = mp_next(d)) {
        if (d->type != MP_UINT)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "type descr entry %zu: shape must be a list of non-negative ints",
                            entry);
        dims[k] = d->v.u;
        if (d->v.u != 0 && *count > UINT64_MAX / d->v.u)
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "type descr entry %zu: subarray shape overflows", entry);
        else
            *count *= d->v.u;
    }
    *ndim = (int)n->len;
    return 0;
}

/* Name order for the duplicate check. */
static int cmp_field_name(const void *a, const void *b)
{
    const dt_field *const *fa = a, *const *fb = b;
    return strcmp((*fa)->name, (*fb)->name);
}

/* Sorting pointers keeps the check O(n log n): a descr may carry thousands of
 * fields and a pairwise scan would let one message burn seconds of CPU. */
static int check_duplicates(const dtype *st, char *err, size_t errlen)
{
    if (st->nfields < 2)
        return 0;
    const dt_field **v = malloc(st->nfields * sizeof *v);
    if (!v)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < st->nfields; i++)
        v[i] = &st->fields[i];
    qsort(v, st->nfields, sizeof *v, cmp_field_name);
    int rc = 0;
    for (size_t i = 1; i < st->nfields && !rc; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                          "type descr: duplicate field name '%s'", v[i]->name);
    free(v);
    return rc;
}

typedef struct parse_ctx {
    size_t fields; /* named fields so far, across all nesting levels */
    char *err;
    size_t errlen;
} parse_ctx;

static int parse_node(const mp_node *type, int nesting, parse_ctx *cx, dtype **out);

static int parse_descr(const mp_node *list, int nesting, parse_ctx *cx, dtype **out)
{
    char *err = cx->err;
    size_t errlen = cx->errlen;
    if (nesting > DT_MAX_NESTING)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "structured type nested deeper than %d",
                        DT_MAX_NESTING);
    dtype *st = dtype_new(DT_STRUCT, 0);
    if (!st)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");

    /* Fields arrive in offset order, so they are appended here directly with
     * geometric growth instead of going through dtype_add_field. */
    size_t cap = 0;
    int rc = 0;
    size_t offset = 0;
    size_t npad = 0, padsize = 0;
    const mp_node *e = mp_first_child(list);
    for (size_t i = 0; i < list->len; i++, e = mp_next(e)) {
        if (e->type != MP_ARRAY || e->len < 2 || e->len > 3) {
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                          "type descr entry %zu must be [name, format] or [name, format, shape]",
                          i);
            goto fail;
        }
        const mp_node *name = mp_first_child(e);
        const mp_node *fmt = mp_next(name);
        if (!mp_is_raw(name)) {
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                          "type descr entry %zu: field name must be a string, got %s", i,
                          mp_type_name(name));
            goto fail;
        }
        int ndim = 0;
        uint64_t dims[H5A_MAX_DIMS];
        uint64_t count = 1;
        if (e->len == 3 && (rc = parse_shape(mp_next(fmt), i, &ndim, dims, &count, err, errlen)))
            goto fail;

        dtype *ft = NULL;
        if ((rc = parse_node(fmt, nesting + 1, cx, &ft)))
            goto fail;
        if (ft->itemsize != 0 && count > DT_MAX_ITEMSIZE / ft->itemsize) {
            dtype_free(ft);
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                          "type descr entry %zu: field size overflows", i);
            goto fail;
        }
        size_t fsize = ft->itemsize * (size_t)count;
        if (fsize > DT_MAX_ITEMSIZE - offset) {
            dtype_free(ft);
            rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "structured type size overflows");
            goto fail;
        }

        if (name->len == 0) {
            /* numpy's descr spells gaps as unnamed void entries */
            bool is_void = ft->kind == DT_VOID;
            dtype_free(ft);
            if (!is_void) {
                rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                              "type descr entry %zu: unnamed entries are padding and must be "
                              "'|V<n>'",
                              i);
                goto fail;
            }
            offset += fsize;
            npad++;
            padsize = fsize;
            continue;
        }

        if (++cx->fields > DT_MAX_FIELDS) {
            dtype_free(ft);
            rc = h5a_fail(err, errlen, H5A_E_TOO_LARGE, "type has more than %d fields",
                          DT_MAX_FIELDS);
            goto fail;
        }
        if (st->nfields == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            dt_field *f = realloc(st->fields, ncap * sizeof *f);
            if (!f) {
                dtype_free(ft);
                rc = h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
                goto fail;
            }
            st->fields = f;
            cap = ncap;
        }
        dt_field *f = &st->fields[st->nfields];
        memset(f, 0, sizeof *f);
        rc = raw_to_cstr(name, &f->name);
        if (rc) {
            dtype_free(ft);
            if (rc == H5A_E_INTERNAL)
                rc = h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
            else
                rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                              "type descr entry %zu: field name contains a NUL byte", i);
            goto fail;
        }
        f->offset = offset;
        f->type = ft;
        f->ndim = ndim;
        memcpy(f->dims, dims, (size_t)ndim * sizeof dims[0]);
        st->nfields++;
        offset += fsize;
    }

    if (st->nfields == 0) {
        /* numpy describes a plain void type V<n> as [("", "|V<n>")] (and
         * msgpack-numpy sends exactly that for void arrays), so a lone
         * padding entry is that void type, not an empty struct. */
        if (npad == 1 && list->len == 1) {
            dtype_free(st);
            /* ["", "|V16", [4, 3, 0]] is a void of 0 bytes: the '|V0' that
             * the type-string parser refuses, refused here the same way so
             * that what this parser accepts, dtype_encode can write back. */
            if (padsize == 0)
                return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE,
                                "type descr entry 0: a void of size 0 (a subarray with a 0 "
                                "dimension); HDF5 types need at least one byte");
            *out = dtype_new(DT_VOID, padsize);
            return *out ? 0 : h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
        }
        rc = h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "structured type has no named fields");
        goto fail;
    }
    if ((rc = check_duplicates(st, err, errlen)))
        goto fail;
    st->itemsize = offset;
    *out = st;
    return 0;

fail:
    dtype_free(st);
    return rc;
}

static int parse_node(const mp_node *type, int nesting, parse_ctx *cx, dtype **out)
{
    *out = NULL;
    if (mp_is_raw(type))
        return dtype_parse_str((const char *)type->v.ptr, type->len, out, cx->err, cx->errlen);
    if (type->type == MP_ARRAY)
        return parse_descr(type, nesting, cx, out);
    return h5a_fail(cx->err, cx->errlen, H5A_E_BAD_REQUEST,
                    "type must be a type string or a descr list, got %s", mp_type_name(type));
}

int dtype_parse_node(const mp_node *type, dtype **out, char *err, size_t errlen)
{
    parse_ctx cx = {.fields = 0, .err = err, .errlen = errlen};
    return parse_node(type, 0, &cx, out);
}

/* ---- encoding ---- */

static void put_void(mp_buf *b, size_t n)
{
    char s[32];
    snprintf(s, sizeof s, "|V%zu", n);
    mp_put_cstr(b, s);
}

static bool subarray_count(const dt_field *f, uint64_t *count)
{
    *count = 1;
    for (int k = 0; k < f->ndim; k++) {
        if (f->dims[k] != 0 && *count > UINT64_MAX / f->dims[k])
            return false;
        *count *= f->dims[k];
    }
    return true;
}

static int encode_type(mp_buf *b, const dtype *t, int nesting)
{
    if (nesting > DT_MAX_NESTING)
        return H5A_E_UNSUPPORTED_TYPE;
    if (t->kind == DT_VLSTR)
        return H5A_E_UNSUPPORTED_TYPE;
    if (t->kind != DT_STRUCT) {
        char s[32];
        dtype_str(t, s, sizeof s);
        mp_put_cstr(b, s);
        return 0;
    }

    /* numpy's descr cannot express overlapping or out-of-bounds fields
     * either; count entries first because the list header comes first. */
    size_t entries = 0, end = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        uint64_t count;
        if (!subarray_count(f, &count) || f->offset < end ||
            (f->type->itemsize && count > (SIZE_MAX - f->offset) / f->type->itemsize))
            return H5A_E_UNSUPPORTED_TYPE;
        if (f->offset > end)
            entries++;
        entries++;
        end = f->offset + f->type->itemsize * (size_t)count;
    }
    if (end > t->itemsize)
        return H5A_E_UNSUPPORTED_TYPE;
    if (end < t->itemsize)
        entries++;

    mp_put_array_header(b, entries);
    end = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (f->offset > end) {
            mp_put_array_header(b, 2);
            mp_put_str(b, "", 0);
            put_void(b, f->offset - end);
        }
        mp_put_array_header(b, f->ndim > 0 ? 3 : 2);
        mp_put_cstr(b, f->name);
        int rc = encode_type(b, f->type, nesting + 1);
        if (rc)
            return rc;
        uint64_t count;
        subarray_count(f, &count);
        if (f->ndim > 0) {
            mp_put_array_header(b, (size_t)f->ndim);
            for (int k = 0; k < f->ndim; k++)
                mp_put_uint(b, f->dims[k]);
        }
        end = f->offset + f->type->itemsize * (size_t)count;
    }
    if (end < t->itemsize) {
        mp_put_array_header(b, 2);
        mp_put_str(b, "", 0);
        put_void(b, t->itemsize - end);
    }
    return 0;
}

int dtype_encode(mp_buf *b, const dtype *t)
{
    int rc = encode_type(b, t, 0);
    if (rc == 0 && b->oom)
        rc = H5A_E_INTERNAL;
    return rc;
}
