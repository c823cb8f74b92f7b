/* Command-line spellings of selections, shapes and dtypes, turned into
 * what the library takes. */
#ifndef CLI_SEL_H
#define CLI_SEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hdf5_async.h"

#define CLI_MAX_SEL 33 /* 32 axes and one ellipsis */

/* NumPy's index syntax without the brackets (they are allowed too):
 * "10:20, ::2", "-1", "..., 0", "5:" ; "" or "()" is the whole dataset.
 * Returns 0, or -1 with err. */
int cli_parse_selection(const char *s, hdf5a_sel *out, int *n, char *err, size_t errlen);

/* "10,20", "(10, 20)", "[10, 20]", "7", "()" or "" (a scalar's shape).
 * With nil_ok, entries "None", "none", "unlimited" or "*" are
 * HDF5A_UNLIMITED. Returns 0, or -1 with err. */
int cli_parse_dims(const char *s, bool nil_ok, int *ndim, uint64_t *dims, char *err,
                   size_t errlen);

/* A dtype as people type it ("f8", "int32", "float", "S10", ">u2", "str")
 * as the library's type string ("<f8", "<i4", "<f8", "|S10", ">u2",
 * "str"); anything unrecognised is passed on for the library to judge. */
void cli_dtype_name(const char *in, char *out, size_t outlen);

#endif
