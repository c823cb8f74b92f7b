/* The engine's errors: the error object every engine function fills, and
 * HDF5's error stack turned into its message.
 *
 * Layer 1 of the engine, the bottom: it calls nothing of the engine. Each
 * layer calls only layers below it (no file calls back into one that calls
 * it; the ops of layer 7 do not call each other):
 *   8 engine.c           core: open/close, dispatch through the op list, commit
 *   7 engine_data.c      create_group, write, append, insert, delete
 *     engine_create.c    create_dataset, resize
 *     engine_slice.c     read, write_slice
 *     engine_attr.c      set_attr, get_attr, list_attrs, delete_attr
 *     engine_list.c      list, walk
 *     engine_meta.c      info, exists, create_link, move
 *   6 engine_dset.c      what the data operations share
 *   5 engine_describe.c  types and shapes as replies describe them
 *   4 engine_layout.c    chunks, compression, the limits on one request's work
 *   3 engine_path.c      the one path and link resolver
 *   2 engine_state.c     core: the file, the dataset cache, dirty flags, reply frames
 *   1 engine_err.c       this
 * Storage thread only, like everything that calls libhdf5. */
#ifndef H5A_ENGINE_ERR_H
#define H5A_ENGINE_ERR_H

#include <stddef.h>

#include "proto/errors.h"

#define H5A_ERR_MSGLEN 1024

/* What went wrong in a request: the H5A_E_* code its reply carries and the
 * message. Functions take an h5a_err * and return the code they set (0 on
 * success, err untouched). */
typedef struct h5a_err {
    int code;
    char msg[H5A_ERR_MSGLEN];
} h5a_err;

/* Format msg, set code, return code. */
int h5a_err_set(h5a_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* h5a_err_set, then the innermost entries of HDF5's error stack (the
 * specific reason) appended to msg; the stack is cleared. */
int h5a_err_h5(h5a_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Add to the end of msg (cut at its size); returns err->code. */
int h5a_err_append(h5a_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For the project's (char *err, size_t errlen) functions, which wrote msg
 * themselves: set code, return it. */
int h5a_err_code(h5a_err *err, int code);

#endif
