/* Types, shapes and kinds of objects as replies describe them (info, list,
 * walk, list_attrs), so that every reply says them the same way: also the
 * whole of info's description of one object, which list gives each member
 * with `info`.
 *
 * Layer 5: calls h5types, engine_layout's filter ids and engine_err; the
 * metadata operations call it. */
#ifndef H5A_ENGINE_DESCRIBE_H
#define H5A_ENGINE_DESCRIBE_H

#include <hdf5.h>
#include <stdbool.h>

#include "proto/msgpack.h"
#include "server/engine_err.h"

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
/* The type as h5grove describes it (its get_type_metadata, from h5py's
 * TypeID): {"class": HDF5's class code, "dtype": numpy's dtype.str of what
 * h5py makes of it (a map of fields for a compound that is not complex),
 * "size"; per class "order", "sign", "cset", "strpad", "vlen", "tag",
 * "members" (a compound's, each with "name"; an enum's, name -> value),
 * "base", "dims"}. */
void h5a_put_type(mp_buf *b, hid_t type);
/* The attributes of obj in name order: [{"name", "shape", "maxshape",
 * "dtype", "type"[, "value"]}]; a value as get_attr encodes it, nil when
 * it has none (null dataspace) or no NumPy mapping. Returns 0 or the error. */
int h5a_put_attrs(mp_buf *b, hid_t obj, bool values, h5a_err *err);
/* What info says about the object at name (relative to loc; links
 * followed): a map, see docs/protocol.md. Returns 0 or the error. */
int h5a_put_info(mp_buf *b, hid_t loc, const char *name, h5a_err *err);

#endif
