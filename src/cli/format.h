/* Printing values read from the server. */
#ifndef H5A_CLI_FORMAT_H
#define H5A_CLI_FORMAT_H

#include <stdint.h>
#include <stdio.h>

#include "cli/nptype.h"
#include "cli/strbuf.h"
#include "hdf5_async.h"

/* numpy's repr summarises arrays above this many elements; we print them
 * in full up to here and only describe larger ones. */
#define FORMAT_MAX_ELEMS 1000

/* Writes a value to out: 0-d values plainly (numbers as Python prints
 * them, strings as their raw text), arrays of up to FORMAT_MAX_ELEMS
 * elements like numpy's repr with shape and dtype, e.g.
 *   array([[1, 2],
 *          [3, 4]], shape=(2, 2), dtype=int32)
 * Returns 1 when the array was too large and only its summary line
 * ("shape (N, M), dtype float64, B bytes") was printed, 0 when printed, -1
 * when out of memory or the data does not match the dtype. */
int format_value(FILE *out, const hdf5a_array *a, const np_type *t);

/* "(2, 3)" / "()" / "(5,)" into sb. */
void format_shape(strbuf *sb, int ndim, const uint64_t *shape);

#endif
