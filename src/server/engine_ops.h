/* The operations' handlers, one per entry of the op list (src/proto/ops.h),
 * named h5a_op_<ID>: the core's dispatch table (engine.c) is built from the
 * list by name, so an op added to the list without a handler declared here
 * does not compile.
 *
 * Each takes the request, writes its result into r->reply (after the
 * header h5a_reply_begin wrote) and returns 0, or an error code with err
 * set. Layer 7: the operations call the layers below them and never each
 * other's files or the core. */
#ifndef H5A_ENGINE_OPS_H
#define H5A_ENGINE_OPS_H

#include "server/engine_err.h"
#include "server/engine_state.h"

#define H5A_OP_HANDLER(ID) int h5a_op_##ID(h5a_engine *e, h5a_request *r, h5a_err *err)

/* engine_data.c: groups, whole datasets, rows */
H5A_OP_HANDLER(CREATE_GROUP);
H5A_OP_HANDLER(WRITE);
H5A_OP_HANDLER(APPEND);
H5A_OP_HANDLER(INSERT);
H5A_OP_HANDLER(DELETE);
/* Apply n appends that h5a_engine_can_group chained as one (engine.h), and
 * answer each. Returns false, having changed and answered nothing, when they
 * must be applied one by one instead. */
bool h5a_append_group(h5a_engine *e, h5a_request **reqs, size_t n);

/* engine_create.c: datasets made by shape, and reshaped */
H5A_OP_HANDLER(CREATE_DATASET);
H5A_OP_HANDLER(RESIZE);

/* engine_slice.c: selections */
H5A_OP_HANDLER(READ);
H5A_OP_HANDLER(WRITE_SLICE);

/* engine_attr.c: attributes */
H5A_OP_HANDLER(SET_ATTR);
H5A_OP_HANDLER(GET_ATTR);
H5A_OP_HANDLER(LIST_ATTRS);
H5A_OP_HANDLER(DELETE_ATTR);

/* engine_list.c: listing */
H5A_OP_HANDLER(LIST);
H5A_OP_HANDLER(WALK);

/* engine_meta.c: inspection and links */
H5A_OP_HANDLER(INFO);
H5A_OP_HANDLER(EXISTS);
H5A_OP_HANDLER(CREATE_LINK);
H5A_OP_HANDLER(MOVE);

/* engine_compact.c: the online repack (admin) */
H5A_OP_HANDLER(COMPACT);

/* engine_batch.c: several ops as one, all or nothing (layer 8, beside the
 * core: it runs the other ops through h5a_engine_execute) */
H5A_OP_HANDLER(BATCH);

/* engine_files.c: the files under data_root (touches no HDF5 file) */
H5A_OP_HANDLER(LIST_FILES);

/* engine_virtual.c: virtual datasets over files under data_root */
H5A_OP_HANDLER(CREATE_VIRTUAL);

/* engine.c: the ops that touch no file, answered by the core itself */
H5A_OP_HANDLER(PING);
H5A_OP_HANDLER(AUTH);

#endif
