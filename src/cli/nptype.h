/* NumPy dtypes as the CLI needs them (np_type): to size .npy data, to
 * translate between numpy's descr (in .npy headers) and the client
 * library's dtype strings (JSON descr lists for structured types), and to
 * print values. Unlike src/proto/dtype.h's tree, which only describes what
 * can travel, it also models what only .npy files hold: unicode 'U',
 * objects 'O', dates; and it keeps numpy's type string for each node. */
#ifndef H5A_CLI_NPTYPE_H
#define H5A_CLI_NPTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/lit.h"

#define NP_MAX_NDIM 32

typedef enum {
    NP_BOOL,
    NP_INT,
    NP_UINT,
    NP_FLOAT,
    NP_COMPLEX,
    NP_BYTES,   /* S<n> */
    NP_VOID,    /* V<n> */
    NP_UNICODE, /* U<n>: UCS-4 */
    NP_STRUCT,
    NP_VSTR,    /* the library's "str": char * to UTF-8 */
    NP_VBYTES,  /* the library's "bytes": char * to ASCII */
    NP_OBJECT,  /* O: pickled in .npy files, never readable */
    NP_OTHER    /* M, m, ...: passed through, the server decides */
} np_kind;

struct np_type;

typedef struct np_field {
    char *name; /* "" is padding */
    struct np_type *type;
    int ndim;   /* subarray dims, 0 for a plain field */
    uint64_t shape[NP_MAX_NDIM];
    size_t count; /* elements in the subarray (1 when ndim is 0) */
    size_t offset;
} np_field;

typedef struct np_type {
    np_kind kind;
    char order;    /* '<', '>' or '|' */
    size_t size;   /* itemsize in bytes */
    char str[48];  /* normalised type string ("<f8", "|S3"); "" for structs */
    size_t nfields;
    np_field *fields;
} np_type;

/* From a parsed numpy descr: a type string or a descr list. */
np_type *np_type_from_lit(const lit *descr, char *err, size_t errlen);
/* From a library dtype string: "str", "bytes", a type string or JSON. */
np_type *np_type_parse(const char *s, char *err, size_t errlen);
void np_type_free(np_type *t);

/* Whether t or any field of it is an object type. */
int np_type_has_object(const np_type *t);
/* The library's form (type string or JSON descr list); malloc'd. */
char *np_type_to_json(const np_type *t);
/* numpy's descr as a Python literal for a .npy header; malloc'd. */
char *np_type_to_pydescr(const np_type *t);
/* How numpy's repr names the dtype ("int32", "'>i4'", "[('a', '<i4')]"). */
char *np_type_repr(const np_type *t);

int np_host_little_endian(void);

#endif
