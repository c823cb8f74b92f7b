/* The one list of operations. Everything that needs to know which ops exist,
 * what each takes and what it may do expands H5A_OPS: the server's parser
 * and op enum, the permission (auth.c) and batch (request.c) checks, the C
 * client's op enum and encoder, and (through a test that compares them) the
 * Python client and docs/protocol.md.
 *
 * Adding an operation: see "Adding an operation" in docs/design.md (a line
 * here, its handler, its tests, docs/protocol.md, the Python list in
 * python/hdf5_async/ops.py and the clients' functions);
 * tests/integration/test_op_list.py compares the docs and ops.py with
 * `hdf5-async-server --list-ops`, which prints this list.
 *
 * X(ID, "name", ARGS, CHANGES, PERM, BATCH)
 *   ID       the C name: OP_ID in the server, H5C_ID in the C client
 *   "name"   the op as it travels ("op": "name")
 *   ARGS     the request keys it takes besides id, op, durability and file
 *            (which every op takes): H5A_ARG_* flags; any other key is
 *            BAD_REQUEST
 *   CHANGES  1 when it may change the file (clients send their default
 *            durability only with these; a read-only token may not send them)
 *   PERM     the role it needs: READ, WRITE or ADMIN
 *   BATCH    1 when it may appear inside a batch
 *
 * "batch" itself needs only READ: each op inside it is checked with its own
 * role and paths (auth.c), so a batch never lets a token do more than its
 * ops one by one would.
 */
#ifndef H5A_OPS_H
#define H5A_OPS_H

/* Request keys an op takes. */
enum {
    H5A_ARG_PATH = 1 << 0,      /* path (required) */
    H5A_ARG_DATA = 1 << 1,      /* data (required) */
    H5A_ARG_INDEX = 1 << 2,     /* index (required) */
    H5A_ARG_COMP = 1 << 3,      /* compression, compression_opts (optional) */
    H5A_ARG_SEL = 1 << 4,       /* selection (optional) */
    H5A_ARG_SEL_REQ = 1 << 5,   /* selection (required) */
    H5A_ARG_SHAPE = 1 << 6,     /* shape (required) */
    H5A_ARG_CREATE = 1 << 7,    /* dtype (required), chunks, maxshape, fillvalue, shuffle,
                                   exist_ok */
    H5A_ARG_AXIS = 1 << 8,      /* axis (optional) */
    H5A_ARG_NAME = 1 << 9,      /* name: an attribute's (required) */
    H5A_ARG_TARGET = 1 << 10,   /* target: a soft link's (required) */
    H5A_ARG_DEST = 1 << 11,     /* dest (required) */
    H5A_ARG_PAGE = 1 << 12,     /* limit, after (optional) */
    H5A_ARG_DEPTH = 1 << 13,    /* max_depth (optional) */
    H5A_ARG_TOKEN = 1 << 14,    /* token (required) */
    H5A_ARG_LINK = 1 << 15,     /* link: describe a last component that is a link (optional) */
    H5A_ARG_INFO = 1 << 16,     /* info: each entry with its object's info (optional) */
    H5A_ARG_VALUES = 1 << 17,   /* values: each attribute with its value (optional) */
    H5A_ARG_OPS = 1 << 18,      /* ops: a batch's requests (required) */
    H5A_ARG_VIRTUAL = 1 << 19,  /* sources, layout: a virtual dataset's (required) */
};

/* The request keys behind those flags: X(KEY, "key", TAKES, NEEDS). An op
 * takes the key when its ARGS has a flag of TAKES, and must send it when its
 * ARGS has a flag of NEEDS. The server accepts exactly these keys, and
 * `hdf5-async-server --list-ops` prints them per op. */
#define H5A_KEYS(X)                                                                       \
    X(PATH, "path", H5A_ARG_PATH, H5A_ARG_PATH)                                           \
    X(DATA, "data", H5A_ARG_DATA, H5A_ARG_DATA)                                           \
    X(INDEX, "index", H5A_ARG_INDEX, H5A_ARG_INDEX)                                       \
    X(COMPRESSION, "compression", H5A_ARG_COMP, 0)                                        \
    X(COMPRESSION_OPTS, "compression_opts", H5A_ARG_COMP, 0)                              \
    X(SELECTION, "selection", H5A_ARG_SEL | H5A_ARG_SEL_REQ, H5A_ARG_SEL_REQ)             \
    X(SHAPE, "shape", H5A_ARG_SHAPE, H5A_ARG_SHAPE)                                       \
    X(DTYPE, "dtype", H5A_ARG_CREATE, H5A_ARG_CREATE)                                     \
    X(CHUNKS, "chunks", H5A_ARG_CREATE, 0)                                                \
    X(MAXSHAPE, "maxshape", H5A_ARG_CREATE, 0)                                            \
    X(FILLVALUE, "fillvalue", H5A_ARG_CREATE, 0)                                          \
    X(SHUFFLE, "shuffle", H5A_ARG_CREATE, 0)                                              \
    X(EXIST_OK, "exist_ok", H5A_ARG_CREATE, 0)                                            \
    X(AXIS, "axis", H5A_ARG_AXIS, 0)                                                      \
    X(NAME, "name", H5A_ARG_NAME, H5A_ARG_NAME)                                           \
    X(TARGET, "target", H5A_ARG_TARGET, H5A_ARG_TARGET)                                   \
    X(DEST, "dest", H5A_ARG_DEST, H5A_ARG_DEST)                                           \
    X(LIMIT, "limit", H5A_ARG_PAGE, 0)                                                    \
    X(AFTER, "after", H5A_ARG_PAGE, 0)                                                    \
    X(MAX_DEPTH, "max_depth", H5A_ARG_DEPTH, 0)                                           \
    X(TOKEN, "token", H5A_ARG_TOKEN, H5A_ARG_TOKEN)                                       \
    X(LINK, "link", H5A_ARG_LINK, 0)                                                      \
    X(INFO, "info", H5A_ARG_INFO, 0)                                                      \
    X(VALUES, "values", H5A_ARG_VALUES, 0)                                                \
    X(OPS, "ops", H5A_ARG_OPS, H5A_ARG_OPS)                                               \
    X(SOURCES, "sources", H5A_ARG_VIRTUAL, H5A_ARG_VIRTUAL)                               \
    X(LAYOUT, "layout", H5A_ARG_VIRTUAL, H5A_ARG_VIRTUAL)

typedef enum { H5A_PERM_READ, H5A_PERM_WRITE, H5A_PERM_ADMIN } h5a_perm;

#define H5A_OPS(X)                                                                        \
    X(PING, "ping", 0, 0, READ, 1)                                                        \
    X(CREATE_GROUP, "create_group", H5A_ARG_PATH, 1, WRITE, 1)                            \
    X(WRITE, "write", H5A_ARG_PATH | H5A_ARG_DATA | H5A_ARG_COMP, 1, WRITE, 1)            \
    X(READ, "read", H5A_ARG_PATH | H5A_ARG_SEL, 0, READ, 1)                               \
    X(APPEND, "append", H5A_ARG_PATH | H5A_ARG_DATA | H5A_ARG_COMP, 1, WRITE, 1)          \
    X(INSERT, "insert", H5A_ARG_PATH | H5A_ARG_DATA | H5A_ARG_COMP | H5A_ARG_INDEX, 1,    \
      WRITE, 1)                                                                           \
    X(DELETE, "delete", H5A_ARG_PATH, 1, WRITE, 1)                                        \
    X(CREATE_DATASET, "create_dataset",                                                   \
      H5A_ARG_PATH | H5A_ARG_SHAPE | H5A_ARG_CREATE | H5A_ARG_COMP, 1, WRITE, 1)          \
    X(RESIZE, "resize", H5A_ARG_PATH | H5A_ARG_SHAPE | H5A_ARG_AXIS, 1, WRITE, 1)         \
    X(WRITE_SLICE, "write_slice", H5A_ARG_PATH | H5A_ARG_SEL_REQ | H5A_ARG_DATA, 1,       \
      WRITE, 1)                                                                           \
    X(SET_ATTR, "set_attr", H5A_ARG_PATH | H5A_ARG_NAME | H5A_ARG_DATA, 1, WRITE, 1)      \
    X(GET_ATTR, "get_attr", H5A_ARG_PATH | H5A_ARG_NAME, 0, READ, 1)                      \
    X(LIST_ATTRS, "list_attrs", H5A_ARG_PATH | H5A_ARG_VALUES, 0, READ, 1)                \
    X(DELETE_ATTR, "delete_attr", H5A_ARG_PATH | H5A_ARG_NAME, 1, WRITE, 1)               \
    X(LIST, "list", H5A_ARG_PATH | H5A_ARG_PAGE | H5A_ARG_INFO, 0, READ, 1)               \
    X(WALK, "walk", H5A_ARG_PATH | H5A_ARG_PAGE | H5A_ARG_DEPTH, 0, READ, 1)              \
    X(INFO, "info", H5A_ARG_PATH | H5A_ARG_LINK, 0, READ, 1)                              \
    X(EXISTS, "exists", H5A_ARG_PATH, 0, READ, 1)                                         \
    X(CREATE_LINK, "create_link", H5A_ARG_PATH | H5A_ARG_TARGET, 1, WRITE, 1)             \
    X(MOVE, "move", H5A_ARG_PATH | H5A_ARG_DEST, 1, WRITE, 1)                             \
    X(AUTH, "auth", H5A_ARG_TOKEN, 0, READ, 0)                                            \
    X(COMPACT, "compact", 0, 1, ADMIN, 0)                                                 \
    X(BATCH, "batch", H5A_ARG_OPS, 1, READ, 0)                                            \
    X(LIST_FILES, "list_files", 0, 0, READ, 0)                                            \
    X(CREATE_VIRTUAL, "create_virtual", H5A_ARG_PATH | H5A_ARG_VIRTUAL, 1, WRITE, 1)

/* Other spellings of an op: X(ID, "alias"). "update" is the seed's name of
 * "write". */
#define H5A_OP_ALIASES(X) X(WRITE, "update")

#endif
