/* What the data operations share: what stands at a path (the dataset cache
 * first), a dataset's shape, whether data fits its type, whole writes,
 * freeing what HDF5 allocated in a read, putting a rebuilt dataset in place
 * of the old one, and the {"shape": [...]} result.
 *
 * Layer 6: calls engine_layout, engine_path, engine_state and engine_err;
 * engine_data.c, engine_create.c and engine_slice.c call it. */
#ifndef H5A_ENGINE_DSET_H
#define H5A_ENGINE_DSET_H

#include <hdf5.h>
#include <stdbool.h>

#include "server/engine_err.h"
#include "server/engine_layout.h"
#include "server/engine_state.h"

enum { K_NONE, K_GROUP, K_DATASET, K_OTHER };

/* What is at path: K_NONE, K_GROUP, K_DATASET or K_OTHER (h5a_path_find,
 * links followed). A cached path is a dataset without a lookup: this saves
 * HDF5's per-component lookups on every append of a stream. */
int h5a_dset_kind(h5a_engine *e, const char *path, int *kind, h5a_err *err);
/* The existing dataset at r->path (owned by the cache): NOT_FOUND when
 * nothing is there, NOT_A_DATASET for a group. */
int h5a_dset_open_existing(h5a_engine *e, const h5a_request *r, hid_t *d, h5a_err *err);
/* d's shape (and maxdims, when not NULL). UNSUPPORTED_TYPE for a null
 * dataspace. */
int h5a_dset_shape(hid_t d, shape_t *s, hsize_t *maxdims, h5a_err *err);

/* The memory type of the request's data (caller H5Tclose); H5I_INVALID_HID
 * with UNSUPPORTED_TYPE. */
hid_t h5a_mem_type(const h5a_array *a, h5a_err *err);
/* H5Tequal, plus the character set of strings, which H5Tequal ignores for
 * variable-length ones: UTF-8 written over an ASCII dataset in place would
 * read back as bytes. (HDF5 does not convert between the two either.) */
bool h5a_same_type(hid_t a, hid_t b);
/* Can data a of memory type mt go into `path` of file type ft? The same
 * type, or numbers into numbers (HDF5 converts them). With `strings`, also
 * fixed-length strings of another length (padded or cut, as NumPy and h5py
 * assign them): for elements written into place (write_slice, fill values),
 * not for rows added (append keeps its stricter rule). 0 or TYPE_MISMATCH. */
int h5a_check_type(const char *path, const h5a_array *a, hid_t ft, hid_t mt, bool strings,
                   h5a_err *err);

/* All of d from buf, laid out as mtype. */
int h5a_write_all(hid_t d, hid_t mtype, const void *buf, const char *path, h5a_err *err);
/* Free what HDF5 allocated inside a buffer of shape s it read as type:
 * variable-length strings (which H5Tdetect_class does not count as
 * H5T_VLEN) and sequences. */
void h5a_reclaim(hid_t type, const shape_t *s, void *buf);

/* Put the (anonymous) dataset d at path in place of whatever is there
 * (`exists`). Empties the dataset cache. */
int h5a_dset_relink(h5a_engine *e, hid_t d, const char *path, bool exists, h5a_err *err);
/* Copy every attribute of object `from` to object `to` (same types, shapes
 * and values): a dataset rebuilt in another layout keeps them. */
int h5a_copy_attrs(hid_t from, hid_t to, h5a_err *err);

/* {"shape": [...]}, the result of the ops that make or change a dataset */
void h5a_put_shape_result(mp_buf *b, int ndim, const hsize_t *dims);

#endif
