/* A typed, shaped block of C-order element bytes: what every write carries
 * and every read returns. Made from a decoded MessagePack value (msgpack-numpy
 * array or scalar, or plain MessagePack scalars and nested lists, mapped the
 * way numpy.asarray maps them) and written back in msgpack-numpy's form. */
#ifndef H5A_ARRAY_H
#define H5A_ARRAY_H

#include "dtype.h"
#include "msgpack.h"

typedef struct h5a_array {
    dtype *type;                 /* owned */
    int ndim;                    /* 0 = scalar */
    uint64_t dims[H5A_MAX_DIMS];
    const void *data;            /* nelems * type->itemsize bytes, C order; for
                                    DT_VLSTR an array of nelems `char *` */
    size_t nbytes;
    void *owned;                 /* freed by h5a_array_clear; NULL when data
                                    points into the decoded message */
    bool plain;                  /* came from plain MessagePack, not msgpack-numpy */
} h5a_array;

/* Product of dims (1 for a scalar); false on overflow past 2^63. */
bool h5a_nelems(int ndim, const uint64_t *dims, uint64_t *out);

/* Python's spelling of a shape, for messages: "()", "(3,)", "(2, 3)". */
void h5a_shape_str(int ndim, const uint64_t *dims, char *buf, size_t len);

/* Build an array from a decoded value. Forms accepted:
 *  - {"nd": true, "type", "kind", "shape", "data"}: data (bin, or str) must
 *    hold exactly itemsize * prod(shape) bytes; data is NOT copied (points
 *    into the message). Keys may be str or bin.
 *  - {"nd": false, "type", "data"}: a numpy scalar (ndim 0).
 *  - {"complex": true, "data": "(1+2j)"}: Python complex from msgpack-numpy -> <c16 scalar.
 *  - nil: H5A_E_BAD_REQUEST.
 *  - bool -> |b1, int -> <i8 (<u8 above INT64_MAX), float -> <f8,
 *    str -> DT_VLSTR utf8, bin -> DT_VLSTR ascii (what h5py does for bytes), all ndim 0.
 *  - nested arrays: must be rectangular; all leaves numbers/bools (promoted
 *    bool < int < float as numpy does; ints needing both <i8 and <u8 ranges
 *    are an error), or all str, or all bin (DT_VLSTR); [] is <f8 shape (0,).
 * Errors: H5A_E_BAD_REQUEST (form, ragged, byte count), H5A_E_UNSUPPORTED_TYPE,
 * H5A_E_TOO_LARGE (rank > 32). On error *out is left cleared. */
int h5a_array_from_node(const mp_node *value, h5a_array *out, char *err, size_t errlen);

/* Free what the array owns and zero it. */
void h5a_array_clear(h5a_array *a);

/* Encode an array as its msgpack-numpy value, leaving the element bytes out:
 * for an nd:true array the map's last entry is "data" with only a bin header
 * written, so the caller sends a->nbytes bytes of a->data right after
 * (zero copy) -- *data_follows is set true. Scalars (ndim 0) become
 * {"nd": false, "type", "data"} with the bytes copied in. DT_VLSTR encodes as
 * str/bin (scalar) or nested lists of str/bin, copied in. Map keys and
 * "kind" are written as bin (b"nd", b"V"), exactly as msgpack-numpy writes
 * them: msgpack_numpy.decode only recognises bin keys. */
int h5a_array_encode(mp_buf *b, const h5a_array *a, bool *data_follows, char *err,
                     size_t errlen);

#endif
