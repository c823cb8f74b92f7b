/* NumPy dtypes as the CLI needs them: to size .npy data, to translate
 * between numpy's descr (in .npy headers) and the client library's dtype
 * strings (JSON descr lists for structured types), and to print values. */
#ifndef H5A_CLI_DTYPE_H
#define H5A_CLI_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/lit.h"

#define DT_MAX_NDIM 32

typedef enum {
    DT_BOOL,
    DT_INT,
    DT_UINT,
    DT_FLOAT,
    DT_COMPLEX,
    DT_BYTES,   /* S<n> */
    DT_VOID,    /* V<n> */
    DT_UNICODE, /* U<n>: UCS-4 */
    DT_STRUCT,
    DT_VSTR,    /* the library's "str": char * to UTF-8 */
    DT_VBYTES,  /* the library's "bytes": char * to ASCII */
    DT_OBJECT,  /* O: pickled in .npy files, never readable */
    DT_OTHER    /* M, m, ...: passed through, the server decides */
} dt_kind;

struct dtype;

typedef struct dt_field {
    char *name; /* "" is padding */
    struct dtype *type;
    int ndim;   /* subarray dims, 0 for a plain field */
    uint64_t shape[DT_MAX_NDIM];
    size_t count; /* elements in the subarray (1 when ndim is 0) */
    size_t offset;
} dt_field;

typedef struct dtype {
    dt_kind kind;
    char order;    /* '<', '>' or '|' */
    size_t size;   /* itemsize in bytes */
    char str[48];  /* normalised type string ("<f8", "|S3"); "" for structs */
    size_t nfields;
    dt_field *fields;
} dtype;

/* From a parsed numpy descr: a type string or a descr list. */
dtype *dt_from_lit(const lit *descr, char *err, size_t errlen);
/* From a library dtype string: "str", "bytes", a type string or JSON. */
dtype *dt_parse(const char *s, char *err, size_t errlen);
void dt_free(dtype *t);

/* Whether t or any field of it is an object type. */
int dt_has_object(const dtype *t);
/* The library's form (type string or JSON descr list); malloc'd. */
char *dt_to_json(const dtype *t);
/* numpy's descr as a Python literal for a .npy header; malloc'd. */
char *dt_to_pydescr(const dtype *t);
/* How numpy's repr names the dtype ("int32", "'>i4'", "[('a', '<i4')]"). */
char *dt_repr(const dtype *t);

int dt_host_little_endian(void);

/* A growable string used by the formatting code. */
typedef struct strbuf {
    char *b;
    size_t n, cap;
    int oom;
} strbuf;
void sb_add(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Python repr of a str (UTF-8 in) or of bytes. */
void sb_pystr(strbuf *sb, const char *s, size_t n);
void sb_pybytes(strbuf *sb, const unsigned char *s, size_t n);

#endif
