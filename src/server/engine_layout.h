/* Dataset layout and compression choice, and the limits on the work of one
 * request: how a new dataset is chunked (h5py's guess, or rows of about
 * 256 KiB for one that grows), which filters it gets (gzip, LZF, the
 * plugins h5py and hdf5plugin use), and what a shape or an operation would
 * cost HDF5 before HDF5 is asked (max_chunks, max_op_bytes).
 *
 * Layer 4: calls engine_path (parents made on creation), engine_state
 * (h5a_close_id) and engine_err; the data operations call it. */
#ifndef H5A_ENGINE_LAYOUT_H
#define H5A_ENGINE_LAYOUT_H

#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"
#include "server/engine_err.h"
#include "server/request.h"

/* The filter plugins' registered ids, the ones h5py and hdf5plugin use, so
 * each side reads what the other wrote (create_dataset and friends set
 * them, info names them). */
enum { FILTER_BZIP2 = 307, FILTER_LZ4 = 32004, FILTER_BITSHUFFLE = 32008 };

/* ---- shapes ---- */

typedef struct {
    int ndim;
    hsize_t dims[H5A_MAX_DIMS];
} shape_t;

shape_t h5a_array_shape(const h5a_array *a);
bool h5a_shape_eq(const shape_t *a, const shape_t *b);
/* a * b, UINT64_MAX when it does not fit */
uint64_t h5a_sat_mul(uint64_t a, uint64_t b);
/* Elements of shape s (saturates at UINT64_MAX: a file may hold shapes
 * whose product does not fit). */
uint64_t h5a_shape_elems(const shape_t *s);
/* Python's spelling of a shape, for messages: "(2, 3)" */
void h5a_dims_str(char *buf, size_t len, int ndim, const hsize_t *dims);

/* ---- compression ---- */

typedef struct {
    h5a_comp comp;  /* never COMP_DEFAULT */
    int level;      /* the filter's option (compression_opts), -1 = its default */
    bool explicit_; /* the request named it (not the server default) */
    bool shuffle;   /* HDF5's byte shuffle before the compressor (create_dataset) */
} comp_choice;

/* The compression a request asks for, the server default filled in. A
 * plugin the server's libhdf5 cannot load is refused up front, even where
 * it would have been ignored (an append to an existing dataset): the
 * client asked for something this server cannot do. */
int h5a_comp_resolve(const h5a_config *cfg, const h5a_request *r, comp_choice *c, h5a_err *err);
/* Add c's filters to dcpl, in h5py's order. Returns 0 or -1 (HDF5's stack
 * says why). */
int h5a_comp_set(hid_t dcpl, comp_choice c);
/* The compression dataset d was created with (the filters above; others
 * are not ours to name). */
comp_choice h5a_comp_of(hid_t d);
/* Does the existing dataset d already have the compression c asks for? */
bool h5a_comp_same(hid_t d, comp_choice c);

/* ---- chunks ---- */

/* h5py's guess_chunk: aim for a chunk between 8 KiB and 1 MiB that grows
 * with the dataset, halving axes in turn until it fits. */
void h5a_chunk_guess(int ndim, const hsize_t *dims, size_t itemsize, hsize_t *chunk);

/* ---- limits on the work of one request (max_chunks, max_op_bytes) ---- */

/* max_chunks: the chunk positions dataset `path` of shape dims in chunks
 * of chunk would span (fixed axes at their maxdims, when given). 0, or
 * OUT_OF_RANGE. */
int h5a_check_grid(const h5a_config *cfg, const char *path, int ndim, const hsize_t *dims,
                   const hsize_t *maxdims, const hsize_t *chunk, h5a_err *err);
/* max_op_bytes: an operation's extra bytes (moved, copied, filled,
 * touched). 0, or TOO_LARGE with the message fmt followed by the figures. */
int h5a_check_op_bytes(const h5a_config *cfg, uint64_t bytes, h5a_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- creation ---- */

/* A new dataset of type and shape s, chunked and compressed as c and the
 * limits allow; resizable along axis 0 (in rows of about 256 KiB) when
 * `growable`. Linked at path (parents created) or anonymous when path is
 * NULL. H5I_INVALID_HID with err set on failure. */
hid_t h5a_layout_create(hid_t file, const h5a_config *cfg, const char *path, hid_t type,
                        const shape_t *s, bool growable, comp_choice c, h5a_err *err);

#endif
