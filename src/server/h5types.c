/* NumPy dtype tree <-> HDF5 datatype, matching h5py 3.7 (h5t.pyx:
 * py_create and the TypeID.py_dtype methods). See h5types.h. */
#include "server/h5types.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"

/* ---- error text ---------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct {
    char *buf;
    size_t len;
    bool done;
} h5err_ctx;

static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    h5err_ctx *c = data;
    if (!c->done && e->desc && e->desc[0]) {
        snprintf(c->buf, c->len, "%s() %s", e->func_name ? e->func_name : "?", e->desc);
        c->done = true;
    }
    return 0;
}

/* "<what>: <deepest HDF5 error>" -- the deepest frame is the one that says
 * what was actually wrong ("member extends past end of compound type"). */
static void set_h5err(char *err, size_t errlen, const char *what)
{
    char detail[256] = "";
    h5err_ctx c = {detail, sizeof detail, false};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, &c);
    if (detail[0])
        set_err(err, errlen, "%s: %s", what, detail);
    else
        set_err(err, errlen, "%s", what);
}

/* Nested types fail deep down; say which member the message is about. */
static void prefix_member(char *err, size_t errlen, const char *name)
{
    if (!err || errlen == 0)
        return;
    char inner[512];
    snprintf(inner, sizeof inner, "%s", err);
    snprintf(err, errlen, "member '%s': %s", name, inner);
}

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "H5T_INTEGER";
    case H5T_FLOAT: return "H5T_FLOAT";
    case H5T_TIME: return "H5T_TIME";
    case H5T_STRING: return "H5T_STRING";
    case H5T_BITFIELD: return "H5T_BITFIELD";
    case H5T_OPAQUE: return "H5T_OPAQUE";
    case H5T_COMPOUND: return "H5T_COMPOUND";
    case H5T_REFERENCE: return "H5T_REFERENCE";
    case H5T_ENUM: return "H5T_ENUM";
    case H5T_VLEN: return "H5T_VLEN";
    case H5T_ARRAY: return "H5T_ARRAY";
    default: return "unknown class";
    }
}

/* ---- dtype -> HDF5 ------------------------------------------------------- */

static hid_t std_int(bool is_signed, size_t size, bool be)
{
    switch (size) {
    case 1: return is_signed ? (be ? H5T_STD_I8BE : H5T_STD_I8LE) : (be ? H5T_STD_U8BE : H5T_STD_U8LE);
    case 2: return is_signed ? (be ? H5T_STD_I16BE : H5T_STD_I16LE) : (be ? H5T_STD_U16BE : H5T_STD_U16LE);
    case 4: return is_signed ? (be ? H5T_STD_I32BE : H5T_STD_I32LE) : (be ? H5T_STD_U32BE : H5T_STD_U32LE);
    case 8: return is_signed ? (be ? H5T_STD_I64BE : H5T_STD_I64LE) : (be ? H5T_STD_U64BE : H5T_STD_U64LE);
    default: return H5I_INVALID_HID;
    }
}

/* HDF5 1.10 has no half type; h5py builds one from F32BE with these calls
 * in this order (set_fields first: the fields must fit the precision that
 * set_size is about to cut to 16), and makes LE by flipping a BE copy. */
static hid_t half_float(bool be, char *err, size_t errlen)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32BE);
    if (t < 0 || H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
        H5Tset_ebias(t, 15) < 0 || (!be && H5Tset_order(t, H5T_ORDER_LE) < 0)) {
        set_h5err(err, errlen, "cannot build half-precision float type");
        if (t >= 0)
            H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static hid_t from_dtype(const dtype *t, bool nested, char *err, size_t errlen);

static hid_t struct_from_dtype(const dtype *t, char *err, size_t errlen)
{
    if (t->nfields == 0) {
        set_err(err, errlen, "structured dtype without fields has no HDF5 equivalent");
        return H5I_INVALID_HID;
    }
    hid_t id = H5Tcreate(H5T_COMPOUND, t->itemsize);
    if (id < 0) {
        set_h5err(err, errlen, "H5Tcreate(H5T_COMPOUND) failed");
        return H5I_INVALID_HID;
    }
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        hid_t mt = from_dtype(f->type, true, err, errlen);
        if (mt < 0) {
            prefix_member(err, errlen, f->name);
            goto fail;
        }
        if (f->ndim > 0) {
            hsize_t dims[H5A_MAX_DIMS];
            if (f->ndim > H5A_MAX_DIMS) {
                H5Tclose(mt);
                set_err(err, errlen, "member '%s': subarray rank %d exceeds %d", f->name,
                        f->ndim, H5A_MAX_DIMS);
                goto fail;
            }
            for (int d = 0; d < f->ndim; d++)
                dims[d] = (hsize_t)f->dims[d];
            hid_t at = H5Tarray_create2(mt, (unsigned)f->ndim, dims);
            if (at < 0)
                set_h5err(err, errlen, "H5Tarray_create2 failed");
            H5Tclose(mt);
            if (at < 0) {
                prefix_member(err, errlen, f->name);
                goto fail;
            }
            mt = at;
        }
        herr_t st = H5Tinsert(id, f->name, f->offset, mt);
        if (st < 0)
            set_h5err(err, errlen, "H5Tinsert failed");
        H5Tclose(mt);
        if (st < 0) {
            prefix_member(err, errlen, f->name);
            goto fail;
        }
    }
    return id;
fail:
    H5Tclose(id);
    return H5I_INVALID_HID;
}

static hid_t from_dtype(const dtype *t, bool nested, char *err, size_t errlen)
{
    bool be = t->order == '>';
    hid_t id = H5I_INVALID_HID;

    switch (t->kind) {
    case DT_BOOL: {
        if (t->itemsize != 1)
            break;
        /* enum_insert values go through H5Tconvert to the base in h5py;
         * with an int8 base that is just the byte. */
        signed char no = 0, yes = 1;
        id = H5Tenum_create(H5T_NATIVE_INT8);
        if (id < 0 || H5Tenum_insert(id, "FALSE", &no) < 0 || H5Tenum_insert(id, "TRUE", &yes) < 0)
            goto h5fail;
        return id;
    }
    case DT_INT:
    case DT_UINT: {
        /* numpy reports byte order '|' for 1-byte types, so h5py takes its
         * native (LE here) table for them whatever was asked. */
        hid_t base = std_int(t->kind == DT_INT, t->itemsize, be && t->itemsize > 1);
        if (base < 0)
            break;
        if ((id = H5Tcopy(base)) < 0)
            goto h5fail;
        return id;
    }
    case DT_FLOAT:
        if (t->itemsize == 2)
            return half_float(be, err, errlen);
        else if (t->itemsize == 4)
            id = H5Tcopy(be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE);
        else if (t->itemsize == 8)
            id = H5Tcopy(be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE);
        else
            break;
        if (id < 0)
            goto h5fail;
        return id;
    case DT_COMPLEX: {
        hid_t part;
        if (t->itemsize == 8)
            part = be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE;
        else if (t->itemsize == 16)
            part = be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE;
        else
            break;
        id = H5Tcreate(H5T_COMPOUND, t->itemsize);
        if (id < 0 || H5Tinsert(id, "r", 0, part) < 0 ||
            H5Tinsert(id, "i", t->itemsize / 2, part) < 0)
            goto h5fail;
        return id;
    }
    case DT_BYTES:
        if (t->itemsize == 0)
            break;
        /* cset stays ASCII: h5py only sets UTF-8 for an 'h5py_encoding'
         * metadata hint, which our tree cannot carry. */
        id = H5Tcopy(H5T_C_S1);
        if (id < 0 || H5Tset_size(id, t->itemsize) < 0 || H5Tset_strpad(id, H5T_STR_NULLPAD) < 0)
            goto h5fail;
        return id;
    case DT_VOID:
        if (t->itemsize == 0)
            break;
        /* Plain |V<n> is an untagged opaque in h5py; the "NUMPY:" tag is only
         * for dtypes marked with h5py.opaque_dtype. */
        if ((id = H5Tcreate(H5T_OPAQUE, t->itemsize)) < 0)
            goto h5fail;
        return id;
    case DT_VLSTR:
        if (nested) {
            set_err(err, errlen, "variable-length strings inside a structured type are not supported");
            return H5I_INVALID_HID;
        }
        /* Strpad stays H5T_C_S1's NULLTERM, as in h5py's _c_vlen_str. */
        id = H5Tcopy(H5T_C_S1);
        if (id < 0 || H5Tset_size(id, H5T_VARIABLE) < 0 ||
            (t->utf8 && H5Tset_cset(id, H5T_CSET_UTF8) < 0))
            goto h5fail;
        return id;
    case DT_STRUCT:
        return struct_from_dtype(t, err, errlen);
    }
    set_err(err, errlen, "no HDF5 type for dtype kind %d with itemsize %zu", (int)t->kind,
            t->itemsize);
    return H5I_INVALID_HID;
h5fail:
    set_h5err(err, errlen, "cannot build HDF5 type");
    if (id >= 0)
        H5Tclose(id);
    return H5I_INVALID_HID;
}

hid_t h5t_from_dtype(const dtype *t, char *err, size_t errlen)
{
    if (!t) {
        set_err(err, errlen, "no dtype");
        return H5I_INVALID_HID;
    }
    return from_dtype(t, false, err, errlen);
}

/* ---- HDF5 -> dtype ------------------------------------------------------- */

static int to_dtype(hid_t type, bool nested, dtype **out, char *err, size_t errlen);

static int unsupported(char *err, size_t errlen, H5T_class_t cls, const char *why)
{
    return h5a_fail(err, errlen, H5A_E_UNSUPPORTED_TYPE, "HDF5 %s type %s", class_name(cls), why);
}

static int h5fail(char *err, size_t errlen, const char *what)
{
    set_h5err(err, errlen, what);
    return H5A_E_HDF5_ERROR;
}

static int new_simple(dt_kind kind, size_t size, char order, dtype **out, char *err, size_t errlen)
{
    dtype *d = dtype_new(kind, size);
    if (!d)
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    if (order)
        d->order = order;
    *out = d;
    return 0;
}

/* '<' or '>' for a multi-byte type, '|' for one byte (as numpy prints it);
 * 0 if the order is one numpy cannot express (VAX, mixed, none). */
static char order_char(hid_t type, size_t size)
{
    H5T_order_t o = H5Tget_order(type);
    if (size == 1 && (o == H5T_ORDER_LE || o == H5T_ORDER_BE || o == H5T_ORDER_NONE))
        return '|';
    if (o == H5T_ORDER_LE)
        return '<';
    if (o == H5T_ORDER_BE)
        return '>';
    return 0;
}

/* Bytes read back raw are only a NumPy float if the bit layout is exactly
 * IEEE binary16/32/64 (binary16 being what h5py builds for f2). */
static bool ieee_layout(hid_t type, size_t size)
{
    static const struct {
        size_t size, spos, epos, esize, mpos, msize, ebias;
    } L[] = {{2, 15, 10, 5, 0, 10, 15}, {4, 31, 23, 8, 0, 23, 127}, {8, 63, 52, 11, 0, 52, 1023}};
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
        return false;
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
        if (L[i].size != size)
            continue;
        return spos == L[i].spos && epos == L[i].epos && esize == L[i].esize &&
               mpos == L[i].mpos && msize == L[i].msize && H5Tget_ebias(type) == L[i].ebias &&
               H5Tget_precision(type) == 8 * size && H5Tget_offset(type) == 0 &&
               H5Tget_norm(type) == H5T_NORM_IMPLIED;
    }
    return false;
}

static int integer_to_dtype(hid_t type, size_t size, dtype **out, char *err, size_t errlen)
{
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return unsupported(err, errlen, H5T_INTEGER, "of size other than 1, 2, 4 or 8 bytes");
    /* Fewer significant bits than the size would leave unconverted padding
     * bits (no sign extension) in what numpy sees. */
    if (H5Tget_precision(type) != 8 * size || H5Tget_offset(type) != 0)
        return unsupported(err, errlen, H5T_INTEGER, "with padding bits (precision below its size)");
    char order = order_char(type, size);
    if (!order)
        return unsupported(err, errlen, H5T_INTEGER, "with a byte order numpy cannot express");
    H5T_sign_t sign = H5Tget_sign(type);
    if (sign == H5T_SGN_ERROR)
        return h5fail(err, errlen, "H5Tget_sign failed");
    return new_simple(sign == H5T_SGN_2 ? DT_INT : DT_UINT, size, order, out, err, errlen);
}

static int float_to_dtype(hid_t type, size_t size, dtype **out, char *err, size_t errlen)
{
    if (size != 2 && size != 4 && size != 8)
        return unsupported(err, errlen, H5T_FLOAT, "of size other than 2, 4 or 8 bytes");
    if (!ieee_layout(type, size))
        return unsupported(err, errlen, H5T_FLOAT, "with a non-IEEE bit layout");
    char order = order_char(type, size);
    if (!order)
        return unsupported(err, errlen, H5T_FLOAT, "with a byte order numpy cannot express");
    return new_simple(DT_FLOAT, size, order, out, err, errlen);
}

/* h5py's bool: two members FALSE=0 and TRUE=1 (h5py accepts any base, but
 * only a one-byte base has numpy bool's layout when read raw). */
static int is_h5py_bool(hid_t type)
{
    hid_t base = H5Tget_super(type);
    if (base < 0)
        return -1;
    size_t bsize = H5Tget_size(base);
    H5Tclose(base);
    if (bsize != 1 || H5Tget_nmembers(type) != 2)
        return 0;
    bool seen_false = false, seen_true = false;
    for (unsigned i = 0; i < 2; i++) {
        unsigned char v = 0xff;
        char *name = H5Tget_member_name(type, i);
        if (!name)
            return -1;
        herr_t st = H5Tget_member_value(type, i, &v);
        if (st >= 0 && strcmp(name, "FALSE") == 0 && v == 0)
            seen_false = true;
        else if (st >= 0 && strcmp(name, "TRUE") == 0 && v == 1)
            seen_true = true;
        H5free_memory(name);
        if (st < 0)
            return -1;
    }
    return seen_false && seen_true;
}

static int enum_to_dtype(hid_t type, bool nested, dtype **out, char *err, size_t errlen)
{
    int b = is_h5py_bool(type);
    if (b < 0)
        return h5fail(err, errlen, "cannot inspect enum type");
    if (b)
        return new_simple(DT_BOOL, 1, 0, out, err, errlen);
    /* Other enums read as their integer values, as h5py's dtype does once
     * the enum hint is dropped. */
    hid_t base = H5Tget_super(type);
    if (base < 0)
        return h5fail(err, errlen, "H5Tget_super failed");
    int rc = to_dtype(base, nested, out, err, errlen);
    H5Tclose(base);
    return rc;
}

/* h5py's complex: exactly {r, i} of one IEEE f4/f8 type, r at 0, i right
 * after it, nothing else in the compound. Returns 1 with *order set, 0 if
 * the compound is something else, -1 on an HDF5 failure. */
static int is_h5py_complex(hid_t type, size_t size, char *order)
{
    if (H5Tget_nmembers(type) != 2 || (size != 8 && size != 16))
        return 0;
    size_t half = size / 2;
    hid_t mt[2] = {H5I_INVALID_HID, H5I_INVALID_HID};
    int result = 1;
    for (unsigned i = 0; i < 2 && result == 1; i++) {
        char *name = H5Tget_member_name(type, i);
        if (!name)
            return -1;
        size_t want = strcmp(name, "r") == 0 ? 0 : strcmp(name, "i") == 0 ? half : (size_t)-1;
        H5free_memory(name);
        if (want == (size_t)-1 || H5Tget_member_offset(type, i) != want) {
            result = 0;
            break;
        }
        if ((mt[i] = H5Tget_member_type(type, i)) < 0) {
            result = -1;
            break;
        }
        if (H5Tget_class(mt[i]) != H5T_FLOAT || H5Tget_size(mt[i]) != half ||
            !ieee_layout(mt[i], half))
            result = 0;
    }
    if (result == 1) {
        htri_t eq = H5Tequal(mt[0], mt[1]);
        *order = order_char(mt[0], half);
        if (eq < 0)
            result = -1;
        else if (!eq || !*order)
            result = 0;
    }
    for (int i = 0; i < 2; i++)
        if (mt[i] >= 0)
            H5Tclose(mt[i]);
    return result;
}

/* A compound member: array types become numpy subarray dims (nested arrays
 * flatten, as numpy does with subarrays of subarrays). Takes ownership of
 * mt. */
static int member_to_field(hid_t mt, dtype **ftype, int *ndim, uint64_t *dims, char *err,
                           size_t errlen)
{
    *ndim = 0;
    while (H5Tget_class(mt) == H5T_ARRAY) {
        int r = H5Tget_array_ndims(mt);
        hsize_t hd[H5S_MAX_RANK];
        if (r < 0 || H5Tget_array_dims2(mt, hd) < 0) {
            int rc = h5fail(err, errlen, "cannot inspect array type");
            H5Tclose(mt);
            return rc;
        }
        if (*ndim + r > H5A_MAX_DIMS) {
            H5Tclose(mt);
            return unsupported(err, errlen, H5T_ARRAY, "with more than 32 dimensions in total");
        }
        for (int d = 0; d < r; d++)
            dims[(*ndim)++] = hd[d];
        hid_t base = H5Tget_super(mt);
        int rc = base < 0 ? h5fail(err, errlen, "H5Tget_super failed") : 0;
        H5Tclose(mt);
        if (rc < 0)
            return rc;
        mt = base;
    }
    int rc = to_dtype(mt, true, ftype, err, errlen);
    H5Tclose(mt);
    return rc;
}

typedef struct {
    size_t offset;
    unsigned idx;
} member_pos;

static int cmp_member_pos(const void *a, const void *b)
{
    const member_pos *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int compound_to_dtype(hid_t type, size_t size, dtype **out, char *err, size_t errlen)
{
    char order = 0;
    int c = is_h5py_complex(type, size, &order);
    if (c < 0)
        return h5fail(err, errlen, "cannot inspect compound type");
    if (c)
        return new_simple(DT_COMPLEX, size, order, out, err, errlen);

    int n = H5Tget_nmembers(type);
    if (n < 0)
        return h5fail(err, errlen, "H5Tget_nmembers failed");
    if (n == 0)
        return unsupported(err, errlen, H5T_COMPOUND, "without members");

    /* numpy lists fields by offset; HDF5's member order is insertion order. */
    member_pos *pos = malloc((size_t)n * sizeof *pos);
    dtype *st = dtype_new(DT_STRUCT, size);
    if (!pos || !st) {
        free(pos);
        dtype_free(st);
        return h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        pos[i].idx = (unsigned)i;
        pos[i].offset = H5Tget_member_offset(type, (unsigned)i);
    }
    qsort(pos, (size_t)n, sizeof *pos, cmp_member_pos);

    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *name = H5Tget_member_name(type, pos[i].idx);
        hid_t mt = name ? H5Tget_member_type(type, pos[i].idx) : H5I_INVALID_HID;
        if (mt < 0) {
            rc = h5fail(err, errlen, "cannot inspect compound member");
        } else if (name[0] == '\0') {
            H5Tclose(mt);
            rc = unsupported(err, errlen, H5T_COMPOUND, "with an unnamed member");
        } else {
            dtype *ft = NULL;
            int ndim;
            uint64_t dims[H5A_MAX_DIMS];
            rc = member_to_field(mt, &ft, &ndim, dims, err, errlen);
            if (rc == 0 && dtype_add_field(st, name, pos[i].offset, ft, ndim, dims) < 0)
                rc = h5a_fail(err, errlen, H5A_E_INTERNAL, "out of memory");
            else if (rc < 0)
                prefix_member(err, errlen, name);
        }
        if (name)
            H5free_memory(name);
    }
    free(pos);
    if (rc < 0) {
        dtype_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int to_dtype(hid_t type, bool nested, dtype **out, char *err, size_t errlen)
{
    H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_NO_CLASS)
        return h5fail(err, errlen, "H5Tget_class failed");
    size_t size = H5Tget_size(type);
    if (size == 0)
        return h5fail(err, errlen, "H5Tget_size failed");

    switch (cls) {
    case H5T_INTEGER:
        return integer_to_dtype(type, size, out, err, errlen);
    case H5T_FLOAT:
        return float_to_dtype(type, size, out, err, errlen);
    case H5T_ENUM:
        return enum_to_dtype(type, nested, out, err, errlen);
    case H5T_COMPOUND:
        return compound_to_dtype(type, size, out, err, errlen);
    case H5T_OPAQUE:
        return new_simple(DT_VOID, size, 0, out, err, errlen);
    case H5T_STRING: {
        htri_t var = H5Tis_variable_str(type);
        if (var < 0)
            return h5fail(err, errlen, "H5Tis_variable_str failed");
        if (!var)
            return new_simple(DT_BYTES, size, 0, out, err, errlen);
        /* A char * inside a struct element would need HDF5 to convert (and
         * allocate) on read, which the raw-read path never does. */
        if (nested)
            return unsupported(err, errlen, cls, "of variable length inside a compound");
        H5T_cset_t cs = H5Tget_cset(type);
        if (cs == H5T_CSET_ERROR)
            return h5fail(err, errlen, "H5Tget_cset failed");
        int rc = new_simple(DT_VLSTR, sizeof(char *), 0, out, err, errlen);
        if (rc == 0)
            (*out)->utf8 = cs == H5T_CSET_UTF8;
        return rc;
    }
    case H5T_ARRAY:
        return unsupported(err, errlen, cls, "as a dataset's element type has no NumPy equivalent");
    default:
        return unsupported(err, errlen, cls, "has no NumPy equivalent");
    }
}

int h5t_to_dtype(hid_t type, dtype **out, char *err, size_t errlen)
{
    *out = NULL;
    return to_dtype(type, false, out, err, errlen);
}

bool h5t_is_numeric(hid_t type)
{
    H5T_class_t c = H5Tget_class(type);
    return c == H5T_INTEGER || c == H5T_FLOAT;
}
