/* Types, shapes and kinds of objects as replies describe them (info, list,
 * walk, list_attrs), so that every reply says them the same way.
 *
 * Layer 5: calls only h5types (and no engine file); the metadata
 * operations call it. */
#ifndef H5A_ENGINE_DESCRIBE_H
#define H5A_ENGINE_DESCRIBE_H

#include <hdf5.h>
#include <stdbool.h>

#include "proto/msgpack.h"

/* "group", "dataset", "datatype" or "unknown" */
const char *h5a_otype_name(H5O_type_t t);
/* HDF5's class of a type: "integer", "float", "string", ... */
const char *h5a_class_name(H5T_class_t c);
/* The dtype as reads describe the values: a type string, a descr list for
 * structs, "str" / "bytes" for variable-length UTF-8 / ASCII strings, nil
 * when the type has no NumPy mapping (reading it is UNSUPPORTED_TYPE). */
void h5a_put_dtype(mp_buf *b, hid_t type);
/* n sizes as an array; with `max`, nil for an unlimited one */
void h5a_put_dims(mp_buf *b, int n, const hsize_t *d, bool max);
/* "shape" and "maxshape" (two map entries) of a dataspace, as h5py gives
 * them: nil for a null dataspace (h5py.Empty), [] for a scalar, nil in
 * maxshape for an unlimited axis. */
void h5a_put_shapes(mp_buf *b, hid_t space);

#endif
