/* NumPy data types as they travel in msgpack-numpy's form, with no HDF5 in
 * sight: parsed from a type string ("<f8", "|S5") or a structured descr list
 * ([["a","<i4"],["b","<f8",[3]],["c",[["x","<f4"]]]]) and written back the
 * same way. The server maps this tree to HDF5 types (src/server/h5types.c);
 * the C client uses it to describe arrays. */
#ifndef H5A_DTYPE_H
#define H5A_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msgpack.h"

#define H5A_MAX_DIMS 32 /* HDF5's H5S_MAX_RANK */

typedef enum {
    DT_BOOL,    /* "|b1" */
    DT_INT,     /* "<i1".."<i8" */
    DT_UINT,    /* "<u1".."<u8" */
    DT_FLOAT,   /* "<f2" "<f4" "<f8" */
    DT_COMPLEX, /* "<c8" "<c16" */
    DT_BYTES,   /* "|S<n>" fixed-length byte string, n >= 1 */
    DT_VOID,    /* "|V<n>" raw bytes (HDF5 opaque); unnamed ones are padding */
    DT_STRUCT,  /* structured: fields in offset order */
    DT_VLSTR    /* variable-length string: not a NumPy type string; an
                   element in memory is a `char *` (NUL-terminated). Only
                   made from plain MessagePack strings or read from HDF5. */
} dt_kind;

struct dtype;

typedef struct dt_field {
    char *name;            /* NUL-terminated, owned; never "" (padding is implicit) */
    size_t offset;         /* byte offset within the struct */
    struct dtype *type;    /* element type of the field, owned */
    int ndim;              /* 0, or subarray rank */
    uint64_t dims[H5A_MAX_DIMS];
} dt_field;

typedef struct dtype {
    dt_kind kind;
    char order;      /* '<', '>' or '|' (not applicable) */
    bool utf8;       /* DT_VLSTR: true UTF-8 (msgpack str), false ASCII (bin) */
    size_t itemsize; /* bytes per element; sizeof(char *) for DT_VLSTR */
    size_t nfields;  /* DT_STRUCT */
    dt_field *fields;
} dtype;

/* Parse a NumPy type string such as "<f8", "|b1", ">i4", "|S10", "|V8".
 * 'U', 'O', 'M', 'm' and unknown sizes give H5A_E_UNSUPPORTED_TYPE; garbage
 * gives H5A_E_BAD_REQUEST. Native order "=" is taken as little-endian '<'. */
int dtype_parse_str(const char *s, size_t n, dtype **out, char *err, size_t errlen);

/* Parse msgpack-numpy's "type" value: a str/bin type string, or an array
 * (descr list) for structured types. Each descr entry is [name, format] or
 * [name, format, shape]; format is a type string or a nested descr list;
 * entries named "" are padding (they advance the offset, make no field). */
int dtype_parse_node(const mp_node *type, dtype **out, char *err, size_t errlen);

/* New dtype of a simple kind and size (order '<' where it applies). */
dtype *dtype_new(dt_kind kind, size_t itemsize);
/* Struct builder: dtype_new(DT_STRUCT, itemsize) then dtype_add_field
 * (takes ownership of ftype; copies name). Returns 0 or H5A_E_INTERNAL. */
int dtype_add_field(dtype *st, const char *name, size_t offset, dtype *ftype, int ndim,
                    const uint64_t *dims);
dtype *dtype_copy(const dtype *t);
void dtype_free(dtype *t);
bool dtype_equal(const dtype *a, const dtype *b);

/* Numpy type string of a non-struct type ("<f8") into buf; "" for
 * DT_STRUCT and DT_VLSTR. */
void dtype_str(const dtype *t, char *buf, size_t buflen);

/* Write msgpack-numpy's "type" value: a str for simple types, a descr list
 * for structs (with ["", "|V<n>"] entries for gaps and trailing padding, as
 * numpy's dtype.descr does). DT_VLSTR cannot be written (returns
 * H5A_E_UNSUPPORTED_TYPE). */
int dtype_encode(mp_buf *b, const dtype *t);

#endif
