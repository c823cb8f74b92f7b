/* Reading and writing NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Reading gives C-order element bytes ready for the client library:
 * Fortran-ordered files are transposed, and unicode ('U') arrays, which
 * have no HDF5 type, become variable-length UTF-8 strings (dtype "str").
 * Writing takes what the library read; variable-length strings are written
 * as 'U' (from "str") or 'S' (from "bytes") arrays sized to the longest. */
#ifndef H5A_CLI_NPY_H
#define H5A_CLI_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "cli/nptype.h"
#include "hdf5_async.h"

/* Header bytes we are willing to read: numpy's own reader stops at 10000
 * by default; wide structured dtypes can need more, a hostile file should
 * not make us allocate much. */
#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_array {
    np_type *dt;     /* the file's dtype, normalised */
    char *dtype_str; /* the library's dtype string for the data below */
    int ndim;
    uint64_t shape[NP_MAX_NDIM];
    uint64_t count;  /* elements */
    void *data;      /* C-order element bytes, or char *[count] for "str" */
    size_t nbytes;
    char *strings;   /* storage behind the char * array of "str" data */
    int version;     /* the file's format major version */
} npy_array;

/* path "-" reads standard input. On failure returns -1 with a message
 * (naming the file) in err. */
int npy_load(const char *path, npy_array *a, char *err, size_t errlen);
void npy_free(npy_array *a);

/* path "-" writes standard output; a file is written under a temporary
 * name and renamed, so a failure never leaves a truncated .npy behind. */
int npy_save(const char *path, const hdf5a_array *a, char *err, size_t errlen);

#endif
