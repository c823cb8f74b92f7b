/* One client request on its way through the server: parsed on the event
 * loop, executed on the storage thread, answered on the event loop. */
#ifndef H5A_REQUEST_H
#define H5A_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "common/names.h"
#include "proto/array.h"
#include "proto/msgpack.h"
#include "proto/ops.h"

/* One per entry of the op list (src/proto/ops.h), in its order. */
typedef enum {
#define H5A_X(ID, name, args, changes, perm, batch) OP_##ID,
    H5A_OPS(H5A_X)
#undef H5A_X
    OP_NONE /* the request never got as far as naming a valid op */
} h5a_op;

/* What the op list says about op (OP_NONE: nothing, changes nothing). */
typedef struct h5a_op_info {
    const char *name;
    unsigned args;  /* H5A_ARG_* */
    bool changes;   /* may change the file */
    h5a_perm perm;  /* role it needs */
    bool batch;     /* allowed inside a batch */
} h5a_op_info;
const h5a_op_info *h5a_op_info_of(h5a_op op);

/* The op list as the parser uses it, as JSON (`hdf5-async-server
 * --list-ops`): an array with one object per op, {"name", "keys" (every
 * request key it takes besides id, op and durability), "required" (those it
 * must send), "changes", "perm" ("read", "write" or "admin"), "batch",
 * "aliases"}. */
void h5a_op_list_print(FILE *f);

/* LZ4, BZIP2 and BITSHUFFLE are HDF5 filter plugins: the server uses them
 * only when libhdf5 finds them (Debian's hdf5-filter-plugin). */
typedef enum {
    COMP_DEFAULT,
    COMP_NONE,
    COMP_GZIP,
    COMP_LZF,
    COMP_LZ4,
    COMP_BZIP2,
    COMP_BITSHUFFLE
} h5a_comp;

/* One item of a read/write_slice selection, as NumPy basic indexing has
 * them: an index (drops the axis), a slice, or the ellipsis. */
typedef enum { SEL_INDEX, SEL_SLICE, SEL_ELLIPSIS } h5a_sel_kind;
typedef struct h5a_sel_item {
    h5a_sel_kind kind;
    bool has_start, has_stop; /* nil bounds take NumPy's defaults */
    int64_t start, stop, step; /* SEL_INDEX: the index is in start */
} h5a_sel_item;

/* At most one ellipsis besides one item per axis. */
#define H5A_MAX_SEL (H5A_MAX_DIMS + 1)
typedef struct h5a_selection {
    int n;
    h5a_sel_item item[H5A_MAX_SEL];
} h5a_selection;

/* maxshape entry for an unlimited axis */
#define H5A_UNLIMITED UINT64_MAX

typedef enum { CHUNKS_DEFAULT, CHUNKS_AUTO, CHUNKS_CONTIGUOUS, CHUNKS_GIVEN } h5a_chunks_mode;

/* Arguments of create_dataset and resize, allocated only for them so that
 * the requests that stream (appends) stay small. */
typedef struct h5a_dset_args {
    int ndim;
    uint64_t shape[H5A_MAX_DIMS];
    bool has_axis; /* resize: shape holds one size, for this axis */
    int64_t axis;
    dtype *type; /* create_dataset, owned */
    bool has_maxshape;
    uint64_t maxshape[H5A_MAX_DIMS]; /* H5A_UNLIMITED for nil entries */
    h5a_chunks_mode chunks_mode;
    uint64_t chunks[H5A_MAX_DIMS];
    bool has_fill;
    h5a_array fill; /* a single value */
    bool shuffle;
    bool exist_ok;
} h5a_dset_args;

/* One source of create_virtual: a dataset of a file under data_root. Its
 * type and shape are looked up on the storage thread (files.c) before the
 * op runs, since the op's engine sees only its own file. */
typedef struct h5a_vsource {
    char *file;    /* NULL: the request's own file; may hold one "%b" (unlimited) */
    char *path;    /* validated */
    int64_t type;  /* hid_t of its datatype (H5Tcopy), -1 until looked up */
    int ndim;
    uint64_t dims[H5A_MAX_DIMS];
    char *rel;     /* the file's name relative to the virtual dataset's file's folder */
} h5a_vsource;

#define H5A_MAX_VSOURCES 65536
typedef enum { VLAYOUT_STACK, VLAYOUT_CONCAT } h5a_vlayout;

/* A client_id is at most this many bytes. */
#define H5A_CLIENT_ID_MAX 64

typedef struct h5a_limits {
    uint64_t max_message_size;
    mp_limits mp;
} h5a_limits;

/* h5a_request.stream_state */
enum { H5A_STREAM_READING = 0, H5A_STREAM_DONE = 1, H5A_STREAM_FAILED = 2 };

typedef struct h5a_request {
    struct h5a_request *next; /* queue link (storage queue, then done list) */
    void *conn;               /* the connection it came from; opaque here */

    /* input: the frame payload and what was parsed out of it */
    uint8_t *frame;
    size_t frame_len;
    mp_doc doc;
    bool has_id;
    uint64_t id;
    h5a_op op;
    const char *op_name; /* as the client spelled it, for logs */
    char *path;          /* NUL-terminated copy, validated */
    char *file;          /* the file under data_root (files.c); NULL: the default file */
    h5a_array data;
    bool has_data;
    int64_t index;
    h5a_comp compression;
    int level; /* compression_opts: gzip level, bzip2 block size, lz4 block
                  bytes; -1 = the filter's default */
    h5a_selection *sel;   /* read/write_slice; NULL = the whole dataset */
    h5a_dset_args *dset;  /* create_dataset, resize */
    /* attributes, listing, links (NUL-terminated copies; NULL when absent) */
    char *name;         /* attribute name */
    char *target;       /* create_link: the soft link's target */
    char *dest;         /* move: the new path, validated */
    char *after;        /* list/walk: continue after this member name / path */
    uint64_t limit;     /* list/walk: most entries in the reply (0 = default) */
    uint64_t max_depth; /* walk: 0 = no limit */
    bool link;          /* info: describe a last component that is a link */
    bool with_info;     /* list: each entry with its object's info */
    bool values;        /* list_attrs: each attribute with its value */
    h5a_vsource *vsrc;  /* create_virtual: its sources */
    size_t nvsrc;
    h5a_vlayout vlayout;
    bool vunlimited;    /* one source whose file name holds "%b" */
    int durability; /* h5a_durability the client asked for; -1 = the server's default */
    /* exactly-once (dedup.c): the client's id and this request's number */
    bool has_seq;
    uint8_t client_id_len;
    char client_id[H5A_CLIENT_ID_MAX + 1];
    uint64_t seq;
    /* batch: its requests, parsed (their data points into this frame) */
    struct h5a_request **sub;
    uint32_t nsub;
    /* an error about op err_index of a batch: the reply's error says so */
    bool has_err_index;
    uint32_t err_index;
    char *token;    /* auth: the token as sent (wiped and freed with the input) */
    size_t token_len;
    /* auth, answered on the loop thread (net.c): the identity it gave; the
     * storage thread only writes it into the reply, in order */
    char auth_name[65];
    const char *auth_role; /* NULL: no auth_file, nobody needs a token */

    /* set when parsing failed: storage answers with this error, untouched file */
    int err_code;
    char err_msg[512];
    const char *moved_to; /* WRONG_NODE: the owner's address (cluster.c; static) */
    const char *reply_node; /* set by the engine: the error reply carries it as "node" */
    bool close_after; /* the stream cannot be trusted: close once answered */

    /* output: frame bytes (length prefix included) plus an optional
     * zero-copy payload sent right after them */
    mp_buf reply;
    size_t reply_mark; /* where "ok" starts in reply (engine_state.h) */
    bool repeat;       /* answered from the exactly-once table, not applied */
    void *reply_data; /* from h5a_buf_alloc */
    size_t reply_data_len;
    bool reply_ok;

    /* A large read streamed (engine_slice.c): its reply is handed to the
     * loop as soon as its header is made, and the loop sends reply_data as
     * the storage thread reads it, slab by slab, instead of after the whole
     * read -- reading the file and sending overlap. The loop sets
     * may_stream (a plaintext connection of the main port); storage.c
     * sets stream_cb when the reply may leave at once (nothing held before
     * it for a commit). After stream_cb(r, true) the storage thread touches
     * only stream_ready and, last of all, stream_state; the loop frees
     * nothing of r before stream_state is set. At most one request streams
     * at a time: the one the storage thread is executing. */
    bool may_stream;
    void (*stream_cb)(struct h5a_request *r, bool first, void *ud);
    void *stream_ud;
    bool streamed;      /* storage thread: handed over early */
    bool stream_failed; /* storage thread: a slab could not be read */
    _Atomic size_t stream_ready; /* bytes of reply_data read so far */
    _Atomic int stream_state;    /* H5A_STREAM_READING, _DONE or _FAILED */

    /* the connection went away: a request that changes nothing (droppable)
     * is then skipped by the storage thread -- nobody would read its reply */
    const _Atomic bool *gone;
    bool droppable;
    bool reply_counted; /* its reply is in the connection's reply_bytes */
    bool http;          /* made by the HTTP port (http.c): conn is an http_conn */

    uv_write_t write_req;
    uint64_t t_start; /* uv_hrtime at arrival, for debug logs */
    uint64_t t_queued; /* uv_hrtime when given to the storage thread (metrics) */
    int reply_code;    /* the error code of the reply, 0 when ok (metrics) */
} h5a_request;

/* Parse req->frame into the fields above. Never fails as a function: on bad
 * input it sets err_code/err_msg (and has_id when the id was readable). */
void h5a_request_parse(h5a_request *req, const h5a_limits *lim);

/* A request that only carries an error (framing problems). */
void h5a_request_set_error(h5a_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free the input side (frame, parsed document, data). Safe to call twice. */
void h5a_request_release_input(h5a_request *req);
void h5a_request_free(h5a_request *req);
/* Everything h5a_request_free frees but the struct itself (a pool keeps it). */
void h5a_request_clear(h5a_request *req);

/* Path checks shared with tests: 0, or H5A_E_BAD_PATH (or H5A_E_TOO_LARGE
 * past H5A_MAX_PATH_DEPTH, common/names.h) with err: h5a_path_check with
 * the protocol's codes. */
int h5a_path_validate(const char *p, size_t n, char *err, size_t errlen);

/* A request's `file`: relative, not empty, no NUL, no empty, "." or ".."
 * component, no trailing '/', not one of the server's own names (.wal,
 * .wal.damaged, .compact); 0 or H5A_E_BAD_REQUEST with err. Symlinks are
 * checked where the file is opened (files.c). */
#define H5A_MAX_FILE_NAME 1024
int h5a_file_name_validate(const char *p, size_t n, char *err, size_t errlen);

const char *h5a_op_name(h5a_op op);
/* "gzip", "lz4", ... as the protocol spells them; "default" for COMP_DEFAULT */
const char *h5a_comp_name(h5a_comp c);

#endif
