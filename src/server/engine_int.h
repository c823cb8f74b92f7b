/* Private to the engine's files (engine.c, engine_meta.c): the few pieces
 * of engine.c that the attribute, listing and link operations need. Storage
 * thread only, like everything that calls libhdf5. */
#ifndef H5A_ENGINE_INT_H
#define H5A_ENGINE_INT_H

#include <hdf5.h>

#include "server/engine.h"

#define H5A_ENGINE_ERRLEN 1024 /* size of every `err` buffer below */

/* The filter plugins' registered ids, the ones h5py and hdf5plugin use, so
 * each side reads what the other wrote (create_dataset and friends set
 * them, info names them). */
enum { FILTER_BZIP2 = 307, FILTER_LZ4 = 32004, FILTER_BITSHUFFLE = 32008 };

hid_t h5a_engine_file(const h5a_engine *e);
/* Something in the file changed: the next commit has work to do. Every op
 * that changes the file must call it (engine.c ops set e->dirty), or a
 * flush/fsync reply to that op would promise what no commit did
 * (h5a_engine_commit skips a clean engine; docs/durability.md). */
void h5a_engine_mark_dirty(h5a_engine *e);
/* Objects were moved or removed: forget every cached open dataset, whose
 * path may now name something else or nothing. */
void h5a_engine_forget_paths(h5a_engine *e);

/* Format the message, append the innermost entries of HDF5's error stack,
 * clear the stack, return code. */
int h5a_engine_h5fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* engine_meta.c: set_attr, get_attr, list_attrs, delete_attr, list, walk,
 * info, exists, create_link, move. Returns 0 with the result written to
 * r->reply (and r->reply_data), or an error code with err filled. */
int h5a_meta_execute(h5a_engine *e, h5a_request *r, char *err);

/* What the last component of path is as a link, without following it:
 * H5A_LINK_NONE when nothing is there, a missing parent included. Parents
 * are followed as HDF5 follows them (soft links too) and must be groups:
 * another object is NOT_A_GROUP, a link leading nowhere NOT_FOUND. */
enum { H5A_LINK_NONE, H5A_LINK_HARD, H5A_LINK_SOFT, H5A_LINK_EXTERNAL, H5A_LINK_OTHER };
int h5a_meta_link_kind(h5a_engine *e, const char *path, int *kind, char *err);

/* NOT_FOUND for path, whose component `name` is a link leading nowhere
 * (a dangling soft link, an external link whose file or object is
 * missing); the message says where it leads. */
int h5a_meta_dangling(hid_t file, const char *name, const char *path, char *err);

/* Copy every attribute of object `from` to object `to` (same types,
 * shapes and values): a dataset rebuilt in another layout keeps them. */
int h5a_meta_copy_attrs(hid_t from, hid_t to, char *err);

#endif
