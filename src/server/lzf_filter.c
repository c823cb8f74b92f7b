/*
 * LZF filter for HDF5, interoperable with h5py's compression='lzf'.
 *
 * Format contract (what h5py writes and expects, checked against h5py's
 * lzf/lzf_filter.c and against files written by h5py 3.7):
 *   - filter id 32000, class name "lzf" (stored in the pipeline message),
 *     added with H5Z_FLAG_OPTIONAL and no client data values;
 *   - at dataset creation set_local fills cd_values to at least 3 slots:
 *     [0] filter revision 4, [1] liblzf API version (LZF_VERSION, 0x0105),
 *     [2] uncompressed chunk size in bytes (type size * chunk dims);
 *   - each chunk is one raw liblzf stream with no header of our own;
 *   - a chunk that does not shrink is left uncompressed: the filter fails,
 *     and since it is optional HDF5 records that in the chunk's filter mask
 *     and stores the bytes as they are.
 */
#include "server/lzf_filter.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include <liblzf/lzf.h>

/* Value of cd_values[0] h5py writes; identifies the filter's own revision
 * (not the library's), so readers could tell layouts apart if it changed. */
#define LZF_FILTER_REVISION 4

/* h5py reads at most 8 client values in set_local; any beyond the first
 * three belong to whoever set them and are kept as they are.  We allow a
 * few more but refuse (rather than truncate) anything larger. */
#define LZF_MAX_CD_VALUES 16

/* Errors go onto the HDF5 error stack of the calling thread, so the server's
 * error reply (built from that stack) says what went wrong in the filter. */
#define LZF_PUSH_ERR(func, minor, msg) \
    H5Epush2(H5E_DEFAULT, __FILE__, func, __LINE__, H5E_ERR_CLS, H5E_PLINE, \
             minor, "%s", msg)

static herr_t lzf_set_local(hid_t dcpl, hid_t type, hid_t space);
static size_t lzf_filter_fn(unsigned int flags, size_t cd_nelmts,
                            const unsigned int cd_values[], size_t nbytes,
                            size_t *buf_size, void **buf);

static const H5Z_class2_t lzf_class = {
    .version = H5Z_CLASS_T_VERS,
    .id = (H5Z_filter_t)H5A_LZF_FILTER,
    .encoder_present = 1,
    .decoder_present = 1,
    /* Same name as h5py: HDF5 writes it into the file's pipeline message. */
    .name = "lzf",
    /* Like deflate, LZF works on any type and space, so no can_apply. */
    .can_apply = NULL,
    .set_local = lzf_set_local,
    .filter = lzf_filter_fn,
};

int h5a_lzf_register(void)
{
    /* H5Zregister replaces an existing class with the same id, so calling
     * this again (or after h5py-style plugin loading) is harmless. */
    if (H5Zregister(&lzf_class) < 0) {
        LZF_PUSH_ERR("h5a_lzf_register", H5E_CANTREGISTER,
                     "can't register the LZF filter");
        return -1;
    }
    return 0;
}

int h5a_lzf_set(hid_t dcpl)
{
    /* An unregistered optional filter would be dropped without complaint
     * at H5Dcreate, leaving an uncompressed dataset; register first. */
    if (h5a_lzf_register() < 0)
        return -1;
    /* h5py: dcpl.set_filter(32000, H5Z_FLAG_OPTIONAL) with no values.
     * Optional is what lets the filter decline incompressible chunks. */
    if (H5Pset_filter(dcpl, (H5Z_filter_t)H5A_LZF_FILTER, H5Z_FLAG_OPTIONAL,
                      0, NULL) < 0)
        return -1;
    return 0;
}

/*
 * Called by HDF5 once per dataset creation with the dataset's real type and
 * space.  Records the filter revision, the LZF version and the chunk size in
 * bytes; the last is the decompressor's output-size guess, which is why it
 * must be stored per dataset rather than derived from the compressed size.
 */
static herr_t lzf_set_local(hid_t dcpl, hid_t type, hid_t space)
{
    unsigned int flags = 0;
    size_t nvalues = LZF_MAX_CD_VALUES;
    unsigned int values[LZF_MAX_CD_VALUES] = {0};

    if (H5Pget_filter_by_id2(dcpl, (H5Z_filter_t)H5A_LZF_FILTER, &flags,
                             &nvalues, values, 0, NULL, NULL) < 0)
        return -1;
    /* On return nvalues is the number actually set, which may exceed the
     * array we passed; writing them back would then read past it. */
    if (nvalues > LZF_MAX_CD_VALUES) {
        LZF_PUSH_ERR("lzf_set_local", H5E_BADVALUE,
                     "too many client data values for the LZF filter");
        return -1;
    }
    if (nvalues < 3)
        nvalues = 3;

    /* Keep version slots a caller (or a copied dcpl) already filled in;
     * only default the ones that are unset, as h5py does. */
    if (values[0] == 0)
        values[0] = LZF_FILTER_REVISION;
    if (values[1] == 0)
        values[1] = LZF_VERSION;

    hsize_t dims[H5S_MAX_RANK];
    int ndims = H5Pget_chunk(dcpl, H5S_MAX_RANK, dims);
    if (ndims < 0)
        return -1;

    size_t tsize = H5Tget_size(type);
    if (tsize == 0)
        return -1;

    /* HDF5 caps a chunk below 4 GiB, so the byte count fits the 32-bit
     * slot; check anyway rather than store a wrapped guess. */
    uint64_t bytes = tsize;
    for (int i = 0; i < ndims; i++) {
        if (dims[i] != 0 && bytes > UINT_MAX / dims[i]) {
            LZF_PUSH_ERR("lzf_set_local", H5E_BADVALUE,
                         "LZF chunk size does not fit in 32 bits");
            return -1;
        }
        bytes *= dims[i];
    }
    values[2] = (unsigned int)bytes;

    if (H5Pmodify_filter(dcpl, (H5Z_filter_t)H5A_LZF_FILTER, flags, nvalues,
                         values) < 0)
        return -1;
    return 1;
}

/* Compress *buf in place (by swapping buffers).  Returns the compressed
 * size, or 0 to decline, which for an optional filter means "store raw". */
static size_t lzf_compress_chunk(size_t nbytes, size_t *buf_size, void **buf)
{
    /* liblzf lengths are unsigned int; HDF5 chunks stay below that. */
    if (nbytes == 0 || nbytes > UINT_MAX)
        return 0;

    /* Give liblzf one byte less than the input: it then fails exactly when
     * the result would not be smaller, and a chunk that does not shrink is
     * cheaper to store and read raw. */
    size_t cap = nbytes - 1;
    if (cap == 0)
        return 0;
    void *out = malloc(cap);
    if (out == NULL) {
        LZF_PUSH_ERR("lzf_filter", H5E_CANTALLOC,
                     "can't allocate LZF compression buffer");
        return 0;
    }
    unsigned int n = lzf_compress(*buf, (unsigned int)nbytes, out,
                                  (unsigned int)cap);
    if (n == 0) {
        /* Incompressible: not an error, so nothing goes on the stack. */
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return n;
}

/* Decompress *buf.  The expected size comes from cd_values[2]; if that is
 * missing or too small the buffer grows until the stream fits. */
static size_t lzf_decompress_chunk(size_t cd_nelmts,
                                   const unsigned int cd_values[],
                                   size_t nbytes, size_t *buf_size, void **buf)
{
    if (nbytes == 0 || nbytes > UINT_MAX) {
        LZF_PUSH_ERR("lzf_filter", H5E_BADVALUE,
                     "invalid LZF compressed chunk size");
        return 0;
    }

    /* Without the stored chunk size (files from very old h5py), start from
     * the input buffer size like h5py does and grow from there. */
    size_t cap = (cd_nelmts >= 3 && cd_values[2] != 0) ? cd_values[2]
                                                        : *buf_size;
    if (cap == 0)
        cap = nbytes;

    for (;;) {
        void *out = malloc(cap);
        if (out == NULL) {
            LZF_PUSH_ERR("lzf_filter", H5E_CANTALLOC,
                         "can't allocate LZF decompression buffer");
            return 0;
        }
        /* liblzf reports the reason for a 0 return only through errno. */
        errno = 0;
        unsigned int n = lzf_decompress(*buf, (unsigned int)nbytes, out,
                                        (unsigned int)cap);
        if (n != 0) {
            free(*buf);
            *buf = out;
            *buf_size = cap;
            return n;
        }
        int err = errno;
        free(out);

        if (err == E2BIG) {
            /* The guess was short (stale cd_values[2] or none at all).
             * Double rather than h5py's linear step, and stop at liblzf's
             * 32-bit limit instead of growing without bound. */
            if (cap >= UINT_MAX) {
                LZF_PUSH_ERR("lzf_filter", H5E_CANTFILTER,
                             "LZF chunk decompresses to more than 4 GiB");
                return 0;
            }
            cap = (cap > UINT_MAX / 2) ? UINT_MAX : cap * 2;
        } else if (err == EINVAL) {
            LZF_PUSH_ERR("lzf_filter", H5E_CANTFILTER,
                         "invalid data for LZF decompression (corrupt chunk)");
            return 0;
        } else {
            LZF_PUSH_ERR("lzf_filter", H5E_CANTFILTER,
                         "unknown LZF decompression error");
            return 0;
        }
    }
}

/* HDF5 uses one callback for both directions; H5Z_FLAG_REVERSE means read. */
static size_t lzf_filter_fn(unsigned int flags, size_t cd_nelmts,
                            const unsigned int cd_values[], size_t nbytes,
                            size_t *buf_size, void **buf)
{
    if (flags & H5Z_FLAG_REVERSE)
        return lzf_decompress_chunk(cd_nelmts, cd_values, nbytes, buf_size,
                                    buf);
    return lzf_compress_chunk(nbytes, buf_size, buf);
}
