/* NumPy dtype tree <-> HDF5 datatype, the way h5py 3.7 does it.
 *
 * A file written through the server must be indistinguishable, type for
 * type, from one h5py wrote from the same NumPy value (DESIGN.md, "Types: do
 * what h5py does"), so h5t_from_dtype reproduces h5py's h5t.py_create call
 * for call: bool is an enum on H5T_NATIVE_INT8 {FALSE=0, TRUE=1}, f2 is
 * h5py's hand-built IEEE half, complex is a compound {r, i}, S<n> is a
 * NULLPAD ASCII string, V<n> an untagged opaque.
 *
 * The server reads without conversion (memory type = file type), so
 * h5t_to_dtype describes the bytes H5Dread hands back for that type, and
 * refuses anything whose bytes NumPy cannot describe exactly rather than
 * guessing (references, vlen sequences, bitfields, non-IEEE floats, ...).
 *
 * Everything here calls libhdf5: storage thread only. */
#ifndef H5A_H5TYPES_H
#define H5A_H5TYPES_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/dtype.h"

/* New transient datatype (caller H5Tclose) equal (H5Tequal) to the one h5py
 * creates for this dtype; H5I_INVALID_HID with a message in err otherwise.
 * A DT_VLSTR is only accepted at top level: in a struct or subarray the
 * server could not read it back without conversion. */
hid_t h5t_from_dtype(const dtype *t, char *err, size_t errlen);

/* NumPy description of an element of `type` as read with `type` itself as
 * the memory type. Returns 0 and a new tree in *out (dtype_free), or
 * H5A_E_UNSUPPORTED_TYPE (message names the HDF5 class) / H5A_E_HDF5_ERROR
 * / H5A_E_INTERNAL with *out set to NULL. */
int h5t_to_dtype(hid_t type, dtype **out, char *err, size_t errlen);

/* Integer or floating-point class (enums excluded): the only types between
 * which we let HDF5 convert, e.g. when appending <i4 data to a <f8 dataset. */
bool h5t_is_numeric(hid_t type);

#endif
