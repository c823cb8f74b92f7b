/*
 * LZF compression as an HDF5 filter, compatible with h5py's "lzf".
 *
 * LZF is not built into HDF5.  h5py ships its own filter under the
 * (registered) id 32000; we register a filter with the same id, name and
 * on-disk format (a bare liblzf stream per chunk, cd_values
 * {4, LZF_VERSION, chunk bytes}) so a dataset written by either side reads
 * on the other.
 *
 * Everything here touches the HDF5 library, so call it only from the thread
 * that owns HDF5.
 */
#ifndef H5A_LZF_FILTER_H
#define H5A_LZF_FILTER_H

#include <hdf5.h>

/* The id h5py uses (registered with The HDF Group for LZF). */
#define H5A_LZF_FILTER 32000

/*
 * Register the LZF filter with HDF5.  Returns 0 on success, a negative
 * value if H5Zregister fails (the HDF5 error stack then says why).
 * Idempotent: registering again simply replaces the class with itself.
 */
int h5a_lzf_register(void);

/*
 * Add LZF to a dataset creation property list exactly as h5py does for
 * compression='lzf': optional filter, no client data values (the filter's
 * set_local callback fills them in when the dataset is created).  The dcpl
 * must also get a chunk layout (H5Pset_chunk) before H5Dcreate.
 * Registers the filter first, so HDF5 does not silently skip it as an
 * unknown optional filter.  Returns 0, or a negative value on failure.
 */
int h5a_lzf_set(hid_t dcpl);

#endif /* H5A_LZF_FILTER_H */
