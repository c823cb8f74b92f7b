/* libhdf5async: the C client of hdf5-async.
 *
 * One server owns an HDF5 file; this library talks to it over TCP (see
 * docs/protocol.md). Two APIs share one connection type each:
 *
 *  - the blocking API (hdf5a_client): one call, one round trip;
 *  - the asynchronous, pipelined API (hdf5a_async): send any number of
 *    requests without waiting; each request's callback fires exactly once.
 *    It attaches to the caller's event loop through small header-only
 *    adapters, as hiredis does: <hdf5_async/adapters/libuv.h> and
 *    <hdf5_async/adapters/poll.h> (the latter needs no other library).
 *
 * Conventions: every symbol starts with hdf5a_ / HDF5A_. Functions that can
 * fail return 0 on success and a negative HDF5A_E* code on failure; the text
 * of the last error is kept in the client (hdf5a_errstr). Types are opaque.
 * A client or context is used by one thread at a time.
 */
#ifndef HDF5_ASYNC_H
#define HDF5_ASYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HDF5A_API __attribute__((visibility("default")))
#else
#define HDF5A_API
#endif

#define HDF5A_VERSION "0.1.0"

/* ---- error codes ----
 * -1 .. -16 are the server's error codes, in the protocol's order (the
 * reply's "code" string is hdf5a_strerror(code)); -100 and below are the
 * library's own. */
enum {
    HDF5A_OK = 0,
    HDF5A_EBAD_REQUEST = -1,
    HDF5A_EBAD_PATH = -2,
    HDF5A_EUNKNOWN_OP = -3,
    HDF5A_EPROTOCOL_ERROR = -4,
    HDF5A_ETOO_LARGE = -5,
    HDF5A_ENOT_FOUND = -6,
    HDF5A_EEXISTS = -7,
    HDF5A_ENOT_A_GROUP = -8,
    HDF5A_ENOT_A_DATASET = -9,
    HDF5A_ETYPE_MISMATCH = -10,
    HDF5A_ESHAPE_MISMATCH = -11,
    HDF5A_EOUT_OF_RANGE = -12,
    HDF5A_EUNSUPPORTED_TYPE = -13,
    HDF5A_EHDF5_ERROR = -14,
    HDF5A_ESHUTTING_DOWN = -15,
    HDF5A_EINTERNAL = -16,
    HDF5A_EUNAUTHENTICATED = -17,   /* no token or a bad one (see hdf5a_connect_opts) */
    HDF5A_EPERMISSION_DENIED = -18, /* the token's role or path prefixes forbid it */
    HDF5A_ENO_SPACE = -19,          /* the server's disk is full: the change was not applied */
    HDF5A_ESEQ_TOO_OLD = -20,       /* a resent request is older than the server remembers:
                                       it may have been applied; it was not applied again */
    HDF5A_EWRONG_NODE = -21,        /* [cluster]: another node owns the file (its address is in
                                       the message and hdf5a_wrong_node); nothing
                                       was applied */
    HDF5A_ELAST_SERVER = HDF5A_EWRONG_NODE, /* codes -1 .. this one come from the server */
    HDF5A_EIO = -100,      /* connect/send/receive failed; the connection is unusable */
    HDF5A_ETIMEOUT = -101, /* no answer in time; the connection is unusable */
    HDF5A_ECLOSED = -102,  /* the connection closed (or was freed) before the reply */
    HDF5A_EREPLY = -103,   /* the server's reply could not be understood */
    HDF5A_ENOMEM = -104,
    HDF5A_EINVAL = -105,   /* a bad argument to the library (caught before sending) */
    HDF5A_ETLS = -106      /* TLS failed: the server's certificate is not trusted or names
                              another host, the server does not speak TLS, a bad record */
};

/* "NOT_FOUND" for HDF5A_ENOT_FOUND, "IO" for HDF5A_EIO, "TLS" for HDF5A_ETLS, ... */
HDF5A_API const char *hdf5a_strerror(int code);

/* ---- arrays ----
 * Describes C-order element bytes. dtype is a NumPy type string ("<f8",
 * "<i4", "|b1", ">u2", "<c16", "|S10", "|V8"), a structured type as a JSON
 * descr list ("[[\"a\",\"<i4\"],[\"b\",\"<f8\",[3]],[\"\",\"|V4\"]]": name,
 * format, optional shape; "" names padding), or "str" / "bytes" for
 * variable-length UTF-8 / ASCII strings, whose data is then an array of
 * NUL-terminated `char *` (NULL is taken as ""). ndim 0 is a scalar (one
 * element). nbytes must equal the element count times the element size,
 * else the call fails with HDF5A_EINVAL before anything is sent.
 *
 * Arrays the library returns (reads) use the same forms: simple types as
 * numpy's dtype.str ("<f8", "|b1"), structured types as the JSON descr list
 * with padding entries, as numpy's dtype.descr writes it. Their data ends
 * on a 16-byte boundary and holds whole elements, so numeric data is
 * aligned for its type (an "<f8" array's data can be used as a double *).
 * An empty string array cannot be written (HDF5A_EINVAL: on the wire it
 * is an empty list, which the server stores as float64); one made by other
 * tools reads back as "str" (the reply cannot tell "str" from "bytes"). */
typedef struct hdf5a_array {
    const char *dtype;
    int ndim;
    const uint64_t *shape; /* ndim entries; may be NULL when ndim is 0 */
    const void *data;
    size_t nbytes; /* element bytes (for "str"/"bytes": nelems * sizeof(char *)) */
} hdf5a_array;

/* Free an array returned by hdf5a_read or found in an async reply that the
 * callback took with hdf5a_reply_take_array. NULL is fine. */
HDF5A_API void hdf5a_array_free(hdf5a_array *a);

/* Compression for write/append/insert/create_dataset: a NULL struct or
 * name means "the server's default", else "gzip", "lzf", "none", or the
 * filter plugins "lz4", "bzip2", "bitshuffle" when the server has them
 * (other names reach the server, which answers HDF5A_EBAD_REQUEST). level:
 * -1 for the filter's default, else gzip's level 0..9 (0 is a real level:
 * no compression inside the gzip filter), bzip2's block size 1..9, lz4's
 * block size in bytes; it is ignored for other names. */
typedef struct hdf5a_compression {
    const char *name;
    int level;
} hdf5a_compression;

/* ---- selections (read_slice, write_slice) ----
 * NumPy's basic indexing, one item per leading axis (fewer items than the
 * dataset has axes: the rest are whole), as docs/protocol.md describes:
 *  - HDF5A_INDEX(i): one index (negative counts from the end); the axis is
 *    dropped from the result, as NumPy drops it;
 *  - HDF5A_SLICE(start, stop, step): start:stop:step; HDF5A_DEFAULT for any
 *    of them takes NumPy's default (0, the axis' length, 1); out-of-range
 *    bounds are clamped as NumPy clamps them; the step must be positive
 *    (the server answers HDF5A_EBAD_REQUEST otherwise);
 *  - HDF5A_ALL: the whole axis (HDF5A_SLICE of three defaults);
 *  - HDF5A_ELLIPSIS: as many whole axes as the other items leave (once).
 * Example, x[10:20, ::2]:
 *     hdf5a_sel sel[] = {HDF5A_SLICE(10, 20, HDF5A_DEFAULT),
 *                        HDF5A_SLICE(HDF5A_DEFAULT, HDF5A_DEFAULT, 2)};
 *     hdf5a_read_slice(c, "/x", sel, 2, &arr); */
enum { HDF5A_SEL_INDEX, HDF5A_SEL_SLICE, HDF5A_SEL_ELLIPSIS };
#define HDF5A_DEFAULT INT64_MIN
typedef struct hdf5a_sel {
    int kind;      /* HDF5A_SEL_* */
    int64_t start; /* HDF5A_SEL_INDEX: the index */
    int64_t stop;
    int64_t step;
} hdf5a_sel;
#define HDF5A_INDEX(i) ((hdf5a_sel){HDF5A_SEL_INDEX, (i), 0, 0})
#define HDF5A_SLICE(a, b, s) ((hdf5a_sel){HDF5A_SEL_SLICE, (a), (b), (s)})
#define HDF5A_ALL HDF5A_SLICE(HDF5A_DEFAULT, HDF5A_DEFAULT, HDF5A_DEFAULT)
#define HDF5A_ELLIPSIS ((hdf5a_sel){HDF5A_SEL_ELLIPSIS, 0, 0, 0})

/* ---- create_dataset options ----
 * All zero (or a NULL pointer to them) means h5py's defaults: not
 * resizable, contiguous unless compression needs chunks, HDF5's fill
 * value, the server's default compression. */
#define HDF5A_UNLIMITED UINT64_MAX /* a maxshape entry: the axis can grow without bound */
enum {
    HDF5A_CHUNKS_DEFAULT = 0,   /* chunked only when maxshape/compression/shuffle need it */
    HDF5A_CHUNKS_AUTO = 1,      /* chunked, with h5py's chunk-shape guess */
    HDF5A_CHUNKS_CONTIGUOUS = 2 /* never chunked (an error when something needs it) */
};
typedef struct hdf5a_create_opts {
    const uint64_t *maxshape; /* ndim entries (HDF5A_UNLIMITED allowed); NULL: the shape */
    const uint64_t *chunks;   /* ndim entries: the chunk shape; NULL: see chunk_mode */
    int chunk_mode;           /* HDF5A_CHUNKS_*, used when chunks is NULL */
    const hdf5a_array *fillvalue; /* one element, converted to dtype; NULL: HDF5's (zeros) */
    const hdf5a_compression *comp; /* NULL: the server's default */
    int shuffle;              /* nonzero: byte shuffle before the compressor */
    int exist_ok;             /* nonzero: a dataset of this shape and dtype may exist */
} hdf5a_create_opts;

/* ---- listings and object descriptions ----
 * Results of list, walk, list_attrs and info: each is one owned object the
 * caller frees with its _free function; every pointer inside points into
 * it. Strings are NUL-terminated (a name holding a NUL byte cannot exist
 * in HDF5). dtype strings use hdf5a_array's forms ("<f8", a JSON descr
 * list, "str", "bytes") and are NULL for HDF5 types with no NumPy
 * equivalent. */

/* maxshape entries use HDF5A_UNLIMITED (above) for an axis that can grow
 * without limit. */

typedef struct hdf5a_entry {
    const char *name;     /* list: member name; walk: full path; list_attrs: attribute name */
    const char *kind;     /* "group", "dataset", "datatype", "soft_link", "external_link",
                             "user_link"; "attribute" for list_attrs */
    const char *dtype;    /* datasets, datatypes, attributes; else NULL */
    int ndim;             /* datasets, attributes: rank (0 = scalar); -1 when empty
                             (a null dataspace, h5py.Empty) or not applicable */
    const uint64_t *shape;    /* ndim entries */
    const uint64_t *maxshape; /* ndim entries; HDF5A_UNLIMITED where unlimited */
    const char *target;   /* soft_link: the link's value; external_link: the path in file */
    const char *file;     /* external_link: the file's name; else NULL */
} hdf5a_entry;

typedef struct hdf5a_listing {
    size_t count;
    const hdf5a_entry *entries;
    const char *next; /* list/walk: NULL when complete, else the `after` of the next page */
} hdf5a_listing;

HDF5A_API void hdf5a_listing_free(hdf5a_listing *l);

typedef struct hdf5a_filter {
    unsigned id; /* 1 deflate (gzip), 2 shuffle, 3 fletcher32, 32000 lzf, ... */
    const char *name;
    size_t ncd;
    const unsigned *cd_values;
} hdf5a_filter;

/* What info says about an object (links in its path followed). */
typedef struct hdf5a_objinfo {
    const char *kind; /* "dataset", "group" or "datatype" */
    uint64_t nattrs;
    uint64_t members; /* group: number of links in it */
    /* datasets (dtype and hdf5_class for datatypes too) */
    const char *dtype;
    const char *hdf5_class; /* "integer", "float", "string", "compound", "enum", ... */
    int ndim;               /* -1: empty (null dataspace) */
    const uint64_t *shape, *maxshape;
    const char *layout; /* "contiguous", "chunked", "compact", "virtual" */
    int chunk_ndim;     /* 0 unless chunked */
    const uint64_t *chunks;
    const char *compression; /* "gzip", "lzf", "szip", the plugins "lz4", "bzip2",
                                "bitshuffle" (as hdf5a_compression names them), or NULL */
    int compression_opts;    /* the gzip level, bzip2 block size, lz4 block bytes; else -1 */
    int shuffle, fletcher32;
    size_t nfilters;
    const hdf5a_filter *filters;
    const hdf5a_array *fillvalue; /* a 0-d array; NULL for variable-length strings and
                                     unmapped types */
    uint64_t storage_size;        /* bytes allocated in the file */
} hdf5a_objinfo;

HDF5A_API void hdf5a_objinfo_free(hdf5a_objinfo *i);

/* What an ok reply to a change promises (docs/durability.md): NONE =
 * applied, visible to every later request; FLUSH = survives the server
 * process dying; FSYNC = on disk, survives the machine dying. DEFAULT leaves
 * it to the server's `durability` config key. */
typedef enum hdf5a_durability {
    HDF5A_DURABILITY_DEFAULT = 0,
    HDF5A_DURABILITY_NONE,
    HDF5A_DURABILITY_FLUSH,
    HDF5A_DURABILITY_FSYNC
} hdf5a_durability;

/* ================= blocking API ================= */

typedef struct hdf5a_client hdf5a_client;

/* Connect (IPv4 addresses of host first, then the others); timeout_ms
 * bounds the connect and then every later call's round trip (0 = wait
 * forever). On failure returns NULL and, if err is not NULL, writes the
 * reason into err (errlen bytes).
 *
 * After HDF5A_EIO, HDF5A_ETIMEOUT, HDF5A_ECLOSED or HDF5A_EREPLY the
 * connection is closed and every later call returns HDF5A_ECLOSED; other
 * errors (the server's, HDF5A_EINVAL) leave it usable. */
HDF5A_API hdf5a_client *hdf5a_connect(const char *host, int port, int timeout_ms, char *err,
                                      size_t errlen);

/* ---- connect options: a token, TLS ----
 * For hdf5a_connect_ex and hdf5a_async_connect_ex. Fill with
 * hdf5a_connect_opts_init (or HDF5A_CONNECT_OPTS_INIT), then set what you
 * need: `size` lets later versions add fields at the end without breaking
 * programs built against this header.
 *
 *  - token: sent in an `auth` request right after connecting, before any
 *    other request (docs/protocol.md). A refused token fails the connect
 *    with HDF5A_EUNAUTHENTICATED and the server's message. A server without
 *    an auth_file accepts any token. NULL: no auth request (a server with an
 *    auth_file then refuses every request, unless a client certificate
 *    names a token).
 *  - tls: nonzero speaks TLS (1.2 or later, OpenSSL) to a server with
 *    tls_cert_file set. The tls_* fields below need it (HDF5A_EINVAL
 *    otherwise).
 *  - tls_ca_file: PEM file of the CAs that may sign the server's
 *    certificate; NULL: the system's default CAs.
 *  - tls_cert_file, tls_key_file: a client certificate (PEM, chain allowed)
 *    and its private key, both or neither; for a server with
 *    tls_client_auth, which takes the certificate's CN as a token's NAME.
 *  - tls_server_name: the name the server's certificate must carry (DNS
 *    name or IP address; also sent as SNI when it is a name); NULL: the
 *    host given to connect.
 *  - tls_insecure_skip_verify: nonzero accepts ANY certificate from ANY
 *    host: the connection is encrypted but anyone in the path can pose as
 *    the server and read everything, the token included. For tests only.
 *  - tls_ciphersuites: the TLS 1.3 cipher suites to offer, in preference
 *    order, as OpenSSL spells them ("TLS_CHACHA20_POLY1305_SHA256:
 *    TLS_AES_128_GCM_SHA256"); the server takes the client's order. NULL:
 *    OpenSSL's default (AES-GCM first). Which is faster depends on the CPU
 *    (`openssl speed -evp aes-256-gcm chacha20-poly1305` on both ends).
 *
 * Files are read when connecting (also by hdf5a_async_connect_ex, before it
 * returns), never inside the event loop (the system's CAs too, from
 * OpenSSL's bundle file; only where there is none does OpenSSL look CAs up
 * in its certificate directory during the handshake). The strings are not
 * used after the connect call returns (the client keeps copies when
 * reconnect is set).
 *
 *  - reconnect: nonzero makes the client survive a lost connection: every
 *    request carries a random client_id and a seq (docs/protocol.md,
 *    "Exactly-once requests"). The blocking client (hdf5a_connect_ex):
 *    when a call finds the connection lost (HDF5A_EIO, HDF5A_ECLOSED), it
 *    connects again with backoff (TLS and the token as at first) and sends
 *    the same request again, which the server applies at most once. The
 *    caller sees a delay; past reconnect_timeout_ms (0: 60000) the call
 *    returns the connection's error. The asynchronous client
 *    (hdf5a_async_connect_ex): see "Reconnect" there.
 *  - follow_wrong_node: [cluster] (docs/protocol.md section 4b). Nonzero
 *    makes the blocking client follow HDF5A_EWRONG_NODE: when a reply says
 *    another node owns the request's file, the client closes its
 *    connection, connects to that node (the error's `node`, "HOST:PORT";
 *    TLS, the connect's token -- not one given later to hdf5a_auth, as
 *    for reconnect -- and the timeout as at first) and sends the request
 *    there -- nothing was applied on the wrong node, so this is safe --
 *    at most HDF5A_MAX_WRONG_NODE_HOPS times per call. The client keeps one
 *    connection: it stays on the new node for later calls (a later call
 *    for a file of another node moves it again). A redirection back to a
 *    node already tried in the call (nodes whose lists differ) or one hop
 *    too many returns HDF5A_EWRONG_NODE with a message naming the nodes;
 *    a node that cannot be reached returns the connect's error and leaves
 *    the client connected to the node it came from (or closed, if that
 *    fails too). With tls_server_name set, every node's certificate must
 *    carry that name. Without it, HDF5A_EWRONG_NODE is returned and
 *    hdf5a_wrong_node tells the owner. The asynchronous client follows
 *    too: see "Following WRONG_NODE" at hdf5a_async_connect_ex.
 *  - cluster_nodes: [cluster] "HOST:PORT, HOST:PORT, ..." as the servers'
 *    config writes its nodes list (the same entries, spelled the same: the
 *    hash reads them as written), e.g. the [cluster] nodes value of the
 *    config the servers share. Set, the client sends every request to the
 *    owner of its file by that list (hdf5a_cluster_owner) instead of the
 *    node it is connected to: the blocking client moves its connection
 *    before a call whose file another node owns (the host and port given
 *    to connect are where it starts, e.g. the list's first entry; a
 *    failed move returns the connect's error, naming the owner), the
 *    asynchronous one when hdf5a_async_set_file names such a file (as for
 *    WRONG_NODE below: requests already sent are answered first). It
 *    implies follow_wrong_node, for a list that is stale (a list that
 *    disagrees with the servers' costs a move there and a redirection
 *    back for every such call: give the servers' list). A list that does
 *    not parse (an empty or malformed entry, one listed twice) makes the
 *    connect fail with HDF5A_EINVAL. */
typedef struct hdf5a_connect_opts {
    size_t size; /* sizeof(hdf5a_connect_opts) of the caller's header */
    const char *token;
    int tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_server_name;
    int tls_insecure_skip_verify;
    const char *tls_ciphersuites;
    int reconnect;
    int reconnect_timeout_ms;
    int follow_wrong_node;
    const char *cluster_nodes;
} hdf5a_connect_opts;

#define HDF5A_CONNECT_OPTS_INIT                                                             \
    {sizeof(hdf5a_connect_opts), NULL, 0, NULL, NULL, NULL, NULL, 0, NULL, 0, 0, 0, NULL}

/* Redirections hdf5a_connect_opts.follow_wrong_node follows in one call. */
#define HDF5A_MAX_WRONG_NODE_HOPS 4

/* Zeroes *o and sets o->size: no token, no TLS. */
HDF5A_API void hdf5a_connect_opts_init(hdf5a_connect_opts *o);

/* hdf5a_connect with options (opts NULL: none, as hdf5a_connect). *out gets
 * the client, or NULL; returns 0 or the failure's code: HDF5A_EINVAL (a bad
 * argument, an unreadable certificate, key or CA file), HDF5A_EIO (resolve,
 * connect), HDF5A_ETIMEOUT, HDF5A_ETLS (the handshake failed: err says why,
 * e.g. "the server's certificate was refused: hostname mismatch"),
 * HDF5A_EUNAUTHENTICATED (the token was refused), another server code (the
 * server refused the connection: a plaintext client on a TLS port gets
 * HDF5A_EPROTOCOL_ERROR "this port speaks TLS..."), HDF5A_ENOMEM.
 * timeout_ms bounds the connect, the TLS handshake and the auth request
 * together, then every later call. */
HDF5A_API int hdf5a_connect_ex(hdf5a_client **out, const char *host, int port, int timeout_ms,
                               const hdf5a_connect_opts *opts, char *err, size_t errlen);

/* Who the server took the connection for: the token's name and role
 * ("read", "write", "admin") from the auth reply; on a server without an
 * auth_file name is NULL and role "admin". Both NULL when no token was sent
 * (a client certificate may still have named a token: the server does not
 * say). Valid until hdf5a_close or the next hdf5a_auth. */
HDF5A_API void hdf5a_identity(const hdf5a_client *c, const char **name, const char **role);

/* Authenticates the connection (again) with token: the protocol's `auth`,
 * which the token option of hdf5a_connect_ex sends at connect. On success
 * hdf5a_identity tells the new identity; a refused token returns
 * HDF5A_EUNAUTHENTICATED and changes nothing, but the server closes the
 * connection after the third refused token on it. */
HDF5A_API int hdf5a_auth(hdf5a_client *c, const char *token);

/* Close the connection and free the client. NULL is fine. */
HDF5A_API void hdf5a_close(hdf5a_client *c);
/* Text of the last error on this client ("" after a success). Valid until
 * the next call on c. */
HDF5A_API const char *hdf5a_errstr(const hdf5a_client *c);

/* Progress of a blocking call, for a progress bar. While a call sends its
 * request, done/total are the request bytes sent so far / the request
 * frame's size (including the 4-byte length prefix); while it receives the
 * reply, the bytes received / the reply frame's size (likewise, known once
 * the prefix is in). The hook is called after about every 1 MiB moved and
 * once when a direction completes (done == total); done never decreases
 * within a direction, and a new direction starts again from a smaller done.
 * A request the server answers before taking all of it (e.g. one over its
 * max_message_size) gets no completion call. The hook runs on the calling
 * thread, inside the blocking call: it must be quick and must not call this
 * library (least of all on c). cb NULL disables it; it stays set for every
 * later blocking call on c. */
typedef void hdf5a_progress_cb(uint64_t done, uint64_t total, void *ud);
HDF5A_API void hdf5a_set_progress(hdf5a_client *c, hdf5a_progress_cb *cb, void *ud);

/* The durability every later change on c asks for: create_group, write,
 * append, insert, delete, write_slice, create_dataset, resize, set_attr,
 * delete_attr, create_link, move. Operations that change nothing (ping,
 * read, read_slice, get_attr, list_attrs, list, walk, info, exists) are
 * not affected. HDF5A_EINVAL for a value outside the enum. */
HDF5A_API int hdf5a_set_durability(hdf5a_client *c, hdf5a_durability d);
/* Barrier: returns once everything the server applied so far is durable at
 * level (FLUSH or FSYNC, else HDF5A_EINVAL). */
HDF5A_API int hdf5a_sync(hdf5a_client *c, hdf5a_durability level);
/* The file under the server's data_root every later request is for
 * (copied; NULL: the server's default file). HDF5A_ENOMEM or 0. With
 * cluster_nodes, the next call goes to the file's owner (see
 * hdf5a_connect_opts). */
HDF5A_API int hdf5a_set_file(hdf5a_client *c, const char *file);
/* [cluster] (docs/protocol.md section 4b): the index among nodes[0..n-1]
 * ("HOST:PORT" as the config's nodes list writes them) of the node that
 * serves file -- connect there; a server that does not own the file answers
 * HDF5A_EWRONG_NODE. -1 when n is 0. */
HDF5A_API int hdf5a_cluster_owner(const char *const *nodes, int n, const char *file);
/* The owner's address ("HOST:PORT", the error's `node`) when the last call
 * on c returned HDF5A_EWRONG_NODE, else NULL: connect there and send the
 * request again (or set follow_wrong_node, which does it). Valid until the
 * next call on c. */
HDF5A_API const char *hdf5a_wrong_node(const hdf5a_client *c);
/* The files under the server's data_root (docs/protocol.md, list_files):
 * each entry's name is the file's name relative to the root, kind "file",
 * and shape[0] (ndim 1) its size in bytes. Free with hdf5a_listing_free. */
HDF5A_API int hdf5a_list_files(hdf5a_client *c, hdf5a_listing **out);

HDF5A_API int hdf5a_ping(hdf5a_client *c);
HDF5A_API int hdf5a_create_group(hdf5a_client *c, const char *path);
/* write and update are the same operation. comp may be NULL (server default). */
HDF5A_API int hdf5a_write(hdf5a_client *c, const char *path, const hdf5a_array *a,
                          const hdf5a_compression *comp);
/* Appends along axis 0. new_len (may be NULL) receives the dataset's new length. */
HDF5A_API int hdf5a_append(hdf5a_client *c, const char *path, const hdf5a_array *a,
                           const hdf5a_compression *comp, uint64_t *new_len);
/* Inserts rows before index (negative counts from the end). */
HDF5A_API int hdf5a_insert(hdf5a_client *c, const char *path, int64_t index,
                           const hdf5a_array *a, const hdf5a_compression *comp,
                           uint64_t *new_len);
/* On success *out is a new array (free with hdf5a_array_free): one
 * allocation holding the reply; data points into it, not copied again. */
HDF5A_API int hdf5a_read(hdf5a_client *c, const char *path, hdf5a_array **out);
HDF5A_API int hdf5a_delete(hdf5a_client *c, const char *path);
/* Reads the selected part only (nsel items; nsel 0 is the whole dataset);
 * *out as hdf5a_read's, with NumPy's result shape. */
HDF5A_API int hdf5a_read_slice(hdf5a_client *c, const char *path, const hdf5a_sel *sel,
                               int nsel, hdf5a_array **out);
/* Writes a into the selected part of an existing dataset. a has the
 * selection's shape, or is a scalar (ndim 0) written to every element. */
HDF5A_API int hdf5a_write_slice(hdf5a_client *c, const char *path, const hdf5a_sel *sel,
                                int nsel, const hdf5a_array *a);
/* Creates a dataset of shape (ndim entries) and dtype (the forms of
 * hdf5a_array's dtype, "str"/"bytes" included) without data. opts may be
 * NULL. */
HDF5A_API int hdf5a_create_dataset(hdf5a_client *c, const char *path, int ndim,
                                   const uint64_t *shape, const char *dtype,
                                   const hdf5a_create_opts *opts);
/* Resizes a chunked dataset to shape (ndim entries, the dataset's rank). */
HDF5A_API int hdf5a_resize(hdf5a_client *c, const char *path, int ndim, const uint64_t *shape);
/* Resizes one axis (negative counts from the end) to size, the others as
 * they are; new_ndim/new_shape (NULL, or room for 32) get the new shape. */
HDF5A_API int hdf5a_resize_axis(hdf5a_client *c, const char *path, int axis, uint64_t size,
                                int *new_ndim, uint64_t *new_shape);

/* Attributes of the group, dataset or named datatype at path. set_attr
 * stores the value as h5py's obj.attrs[name] = value would, replacing an
 * attribute of that name; get_attr returns it as hdf5a_read would. */
HDF5A_API int hdf5a_set_attr(hdf5a_client *c, const char *path, const char *name,
                             const hdf5a_array *value);
HDF5A_API int hdf5a_get_attr(hdf5a_client *c, const char *path, const char *name,
                             hdf5a_array **out);
/* Entries of kind "attribute", in name order (next is NULL). */
HDF5A_API int hdf5a_list_attrs(hdf5a_client *c, const char *path, hdf5a_listing **out);
HDF5A_API int hdf5a_delete_attr(hdf5a_client *c, const char *path, const char *name);
/* One page of the members of a group, in name order: those after `after`
 * (NULL: from the start), at most `limit` (0: the server's default,
 * 10000). Page on with (*out)->next as `after` until it is NULL. */
HDF5A_API int hdf5a_list(hdf5a_client *c, const char *path, const char *after, uint64_t limit,
                         hdf5a_listing **out);
/* One page of everything below a group, depth first (h5ls -r order);
 * names are full paths. max_depth 0: no limit; 1: the members only. */
HDF5A_API int hdf5a_walk(hdf5a_client *c, const char *path, unsigned max_depth,
                         const char *after, uint64_t limit, hdf5a_listing **out);
HDF5A_API int hdf5a_info(hdf5a_client *c, const char *path, hdf5a_objinfo **out);
/* *exists: 1 when the last component of path names a link (a dangling
 * soft link too, as h5py's `in`), else 0. */
HDF5A_API int hdf5a_exists(hdf5a_client *c, const char *path, int *exists);
/* A soft link at path to target (absolute, or relative to the link's group). */
HDF5A_API int hdf5a_create_link(hdf5a_client *c, const char *path, const char *target);
/* Copy everything live into a fresh file put in the served file's place
 * (the online h5repack; admin role; the server does nothing else
 * meanwhile). *before and *after (may be NULL) get the file's size. */
HDF5A_API int hdf5a_compact(hdf5a_client *c, uint64_t *before, uint64_t *after);
/* Move (rename) the object or link at path to dest (which must not exist). */
HDF5A_API int hdf5a_move(hdf5a_client *c, const char *path, const char *dest);

/* ---- batches: several ops applied as one, all or nothing ----
 * Queue ops with the hdf5a_batch_* functions (the arguments of the
 * functions of the same names; the array bytes are copied at once), then
 * hdf5a_batch_send applies them in order as one `batch` request: either
 * all are applied, or none is and the call returns the failing op's error
 * with its position in *failed (docs/protocol.md, "batch"). After a
 * success hdf5a_batch_result_shape gives, for the ops whose function
 * returns a shape or a length (write, append, insert, resize), the
 * dataset's shape after that op. A batch may be sent again (its results
 * are replaced); hdf5a_batch_clear empties it. A batch applies to one file:
 * the connection's (hdf5a_set_file); its ops may not name another. */
typedef struct hdf5a_batch hdf5a_batch;
HDF5A_API hdf5a_batch *hdf5a_batch_new(void);
HDF5A_API void hdf5a_batch_free(hdf5a_batch *b);
HDF5A_API void hdf5a_batch_clear(hdf5a_batch *b);
HDF5A_API size_t hdf5a_batch_count(const hdf5a_batch *b);
/* Text of the last error of an hdf5a_batch_add_* call. */
HDF5A_API const char *hdf5a_batch_errstr(const hdf5a_batch *b);
HDF5A_API int hdf5a_batch_create_group(hdf5a_batch *b, const char *path);
HDF5A_API int hdf5a_batch_write(hdf5a_batch *b, const char *path, const hdf5a_array *a,
                                const hdf5a_compression *comp);
HDF5A_API int hdf5a_batch_append(hdf5a_batch *b, const char *path, const hdf5a_array *a,
                                 const hdf5a_compression *comp);
HDF5A_API int hdf5a_batch_insert(hdf5a_batch *b, const char *path, int64_t index,
                                 const hdf5a_array *a, const hdf5a_compression *comp);
HDF5A_API int hdf5a_batch_delete(hdf5a_batch *b, const char *path);
HDF5A_API int hdf5a_batch_resize(hdf5a_batch *b, const char *path, int ndim,
                                 const uint64_t *shape);
HDF5A_API int hdf5a_batch_set_attr(hdf5a_batch *b, const char *path, const char *name,
                                   const hdf5a_array *value);
HDF5A_API int hdf5a_batch_delete_attr(hdf5a_batch *b, const char *path, const char *name);
HDF5A_API int hdf5a_batch_create_link(hdf5a_batch *b, const char *path, const char *target);
HDF5A_API int hdf5a_batch_move(hdf5a_batch *b, const char *path, const char *dest);
/* Any op from its request as MessagePack (a map without id, as
 * docs/protocol.md describes; e.g. the CLI's batch command). */
HDF5A_API int hdf5a_batch_add_raw(hdf5a_batch *b, const void *msgpack_map, size_t len);
/* Send the batch. 0: all applied; else the error of the failing op (or of
 * the connection), its index in *failed (may be NULL; -1 when no op failed:
 * the batch itself was refused or the connection failed). */
HDF5A_API int hdf5a_batch_send(hdf5a_client *c, hdf5a_batch *b, long *failed);
/* The shape after op i (ndim 0 for ops without one): after a successful
 * send. HDF5A_EINVAL when i is out of range or nothing was sent. */
HDF5A_API int hdf5a_batch_result_shape(const hdf5a_batch *b, size_t i, int *ndim,
                                       uint64_t shape[32]);

/* ================= asynchronous API ================= */

typedef struct hdf5a_async hdf5a_async;

/* What a callback receives. Valid only during the callback. */
typedef struct hdf5a_reply {
    int status;            /* 0, a server error code, or HDF5A_ECLOSED (connection
                              failed or context freed before the reply), HDF5A_EREPLY
                              (reply not understood), HDF5A_ENOMEM, HDF5A_ETLS */
    const char *message;   /* error text, "" on success */
    const hdf5a_array *array; /* read, read_slice, get_attr: the value; NULL otherwise */
    int ndim;              /* write/append/insert/write_slice/create_dataset/resize:
                              the dataset's shape after the op (0 and NULL otherwise) */
    const uint64_t *shape;
    /* get_attr: the value is in `array`, as for read */
    const hdf5a_listing *listing; /* list, walk, list_attrs; NULL otherwise */
    const hdf5a_objinfo *info;    /* info; NULL otherwise */
    int exists;                   /* exists: 1 or 0 */
    uint64_t before, after;       /* compact: the file's size before and after */
    int has_index;                /* batch: an op of it failed (status is its error) */
    long index;                   /* ... which one */
} hdf5a_reply;

/* Fires exactly once per request: with the reply, or with status
 * HDF5A_ECLOSED when the connection fails or is freed first (HDF5A_ETLS or
 * the server's code when the TLS handshake or the connect's token failed:
 * see hdf5a_async_connect_ex). It may queue
 * new requests and may call hdf5a_async_free (the free then happens when
 * it returns); it must not call hdf5a_async_handle_read/_write. */
typedef void hdf5a_callback(hdf5a_async *ac, const hdf5a_reply *reply, void *privdata);

/* Keep the array of a read reply beyond the callback: returns it (caller
 * frees with hdf5a_array_free); the reply's array becomes NULL. */
HDF5A_API hdf5a_array *hdf5a_reply_take_array(const hdf5a_reply *reply);

/* Keep a listing / info beyond the callback (free with hdf5a_listing_free /
 * hdf5a_objinfo_free); the reply's pointer becomes NULL. */
HDF5A_API hdf5a_listing *hdf5a_reply_take_listing(const hdf5a_reply *reply);
HDF5A_API hdf5a_objinfo *hdf5a_reply_take_info(const hdf5a_reply *reply);

/* Event-loop hooks, filled in by an adapter (hiredis' model). The library
 * calls add_read/add_write when it wants readiness events for its socket
 * and del_* when it no longer does; cleanup when the context goes away
 * (from hdf5a_async_free, before the socket is closed). Any hook may be
 * NULL. */
typedef struct hdf5a_async_events {
    void *data;
    void (*add_read)(void *data);
    void (*del_read)(void *data);
    void (*add_write)(void *data);
    void (*del_write)(void *data);
    void (*cleanup)(void *data);
} hdf5a_async_events;

/* Start a non-blocking connect; requests may be queued at once and are
 * sent when it completes. host is resolved here (getaddrinfo, which may
 * block for a DNS name); IPv4 addresses are tried first, and the first
 * whose connect does not fail at once is used. Returns NULL only when out
 * of memory, the address is invalid or no socket can be made (err says
 * why). A connection that fails (now or later: a failed connect is
 * reported from the event loop too) fails every pending request with
 * HDF5A_ECLOSED, hdf5a_async_error and hdf5a_async_errstr say why, and
 * later requests are refused with HDF5A_ECLOSED; the context must still be
 * freed. There are no timeouts here: the caller's loop owns the clock. */
HDF5A_API hdf5a_async *hdf5a_async_connect(const char *host, int port, char *err, size_t errlen);
/* hdf5a_async_connect with options (see hdf5a_connect_opts; opts NULL:
 * none). *out gets the context or NULL; returns 0 or HDF5A_EINVAL (bad
 * options, unreadable certificate/key/CA files), HDF5A_EIO, HDF5A_ENOMEM.
 * Everything else happens in the event loop: the TLS handshake (no call in
 * it blocks), then the auth request, queued first so every request of the
 * caller's follows it. A failed handshake ends the connection with
 * HDF5A_ETLS, a refused token with HDF5A_EUNAUTHENTICATED (or the code the
 * server refused it with), as hdf5a_async_error says; every pending
 * callback then fires with that code and hdf5a_async_errstr's text (the
 * server's message for a refused token). hdf5a_async_pending counts the
 * auth request until its reply.
 *
 * Reconnect (opts->reconnect, once the first connection was made; a first
 * connect that fails is reported as without it): when the connection is
 * lost (EOF, reset, a send/receive error) no callback fires. The requests
 * without a reply are kept, each with a copy of its frame (so a pipeline
 * in flight costs its bytes twice until the replies come), and the context
 * connects again in the loop, never blocking it: waits of 1 ms, then 50 ms
 * doubling to 1 s between tries, to the address the first connection used
 * (no DNS lookup in the loop), TLS on a new session (the certificates
 * loaded at connect: no file is read again), the token's auth request
 * first, then every unanswered request again, in order, with the same
 * client_id and seq. The server applies each at most once and answers a
 * repeat with the first reply's result, so every callback still fires
 * once, with that result. hdf5a_async_error stays 0 meanwhile and
 * requests may be queued as usual. If no reply comes within
 * reconnect_timeout_ms (0: 60000) of the loss (or of the first request
 * queued while reconnecting), the connection is given up as without
 * reconnect: every pending callback gets HDF5A_ECLOSED, errstr says "...
 * lost and not regained within N ms: why". With nothing pending the
 * context keeps trying, without a limit. Limits: the time is checked when
 * a try fails or a wait ends, so a connect that the network never answers
 * (no RST, no ICMP) can outlast it until TCP gives up on its own; a
 * connection that goes silent without an error is not noticed (the async
 * API has no timeouts). A new connection authenticates with the
 * connect's token: an hdf5a_async_auth already answered is not repeated.
 * How the wait fits any loop: the adapter interface has no timer, and
 * rather than give every adapter one, the fd's number is kept
 * (hdf5a_async_fd) and what is behind it changes (dup3): during a wait it
 * is a timerfd (Linux), which the loop sees readable when the wait is over,
 * then the new socket. The context asks for no events (del_read and
 * del_write) before each change: an adapter must then stop watching the
 * fd (as the libuv and poll ones do: an epoll registration must go, since
 * it belongs to the old socket) and watch it anew on add_read/add_write.
 *
 * Following WRONG_NODE (opts->follow_wrong_node or cluster_nodes): every
 * request's frame is kept until its reply. A HDF5A_EWRONG_NODE reply fires
 * no callback (nothing was applied) and the connection moves: requests
 * queued from then on are held back, those already sent are answered by
 * the old node (their callbacks fire, or they are redirected too), then
 * the socket is replaced (the same fd number, as for reconnect) by one to
 * the node named for the oldest redirected request -- its "HOST:PORT"
 * resolved in the loop (getaddrinfo: an address costs nothing, a DNS name
 * may block), TLS on a new session checking that host (or
 * tls_server_name), the connect's token first -- and the requests
 * redirected to that node and the held-back ones are sent there in order;
 * requests named to another node wait for the next move, which follows
 * the same way. Each callback fires once,
 * with the owner's answer; a redirected request's callback comes after
 * those of requests sent after it that the old node answered (requests
 * for other files: one file's requests all take the same way, in order).
 * A request is redirected at most HDF5A_MAX_WRONG_NODE_HOPS times and
 * never back to a node it was sent to: then its callback gets
 * HDF5A_EWRONG_NODE, the message naming the nodes ("redirections loop
 * (a -> b -> a)"). A new node that cannot be reached fails the context as
 * a lost connection does (without reconnect: every pending callback gets
 * HDF5A_ECLOSED, hdf5a_async_error HDF5A_EIO, errstr naming the node;
 * with reconnect: retried there until reconnect_timeout_ms). The context
 * stays on the new node for later requests. */
HDF5A_API int hdf5a_async_connect_ex(hdf5a_async **out, const char *host, int port,
                                     const hdf5a_connect_opts *opts, char *err, size_t errlen);
/* As hdf5a_auth; the identity is updated before cb runs. A refused token
 * does not end the connection here (the server's third refusal does). */
HDF5A_API int hdf5a_async_auth(hdf5a_async *ac, const char *token, hdf5a_callback *cb,
                               void *privdata);
/* As hdf5a_identity, once the auth reply has arrived (both NULL before). */
HDF5A_API void hdf5a_async_identity(const hdf5a_async *ac, const char **name, const char **role);
/* The socket; its number stays the same and open until hdf5a_async_free
 * (with reconnect a new socket, or a timerfd during a wait, takes that
 * number: see hdf5a_async_connect_ex). */
HDF5A_API int hdf5a_async_fd(const hdf5a_async *ac);
/* Attach an event loop (once); the hooks are called at once for what the
 * context already wants. */
HDF5A_API void hdf5a_async_set_events(hdf5a_async *ac, const hdf5a_async_events *ev);
/* Text of the last error: a refused request's, or why the connection is gone. */
HDF5A_API const char *hdf5a_async_errstr(const hdf5a_async *ac);
/* 0 while the connection is usable (connecting or connected); once it is
 * gone, why: HDF5A_EIO (connect/send/receive failed), HDF5A_ECLOSED (the
 * server closed it), HDF5A_EREPLY (a reply did not fit its request),
 * HDF5A_ENOMEM, HDF5A_ETLS (see hdf5a_async_connect_ex), or the server's
 * code for a refused token (HDF5A_EUNAUTHENTICATED). */
HDF5A_API int hdf5a_async_error(const hdf5a_async *ac);
/* Called by adapters when the socket is readable / writable. */
HDF5A_API void hdf5a_async_handle_read(hdf5a_async *ac);
HDF5A_API void hdf5a_async_handle_write(hdf5a_async *ac);
/* Number of requests sent or queued whose callback has not fired yet. */
HDF5A_API size_t hdf5a_async_pending(const hdf5a_async *ac);
/* Fail every pending callback with HDF5A_ECLOSED, close, free (also from
 * inside a callback: the free then happens when the callback returns). */
HDF5A_API void hdf5a_async_free(hdf5a_async *ac);

/* Queue a request. The whole request, array bytes included, is encoded
 * into the context's output buffer before returning, so path and the array
 * may be freed right after (the copy is the price of that; the blocking API
 * sends array bytes from the caller's memory instead). The output buffer
 * has no bound: a caller that queues faster than the server reads should
 * watch hdf5a_async_pending. cb may be NULL. Returns 0; on a negative
 * return (HDF5A_EINVAL, HDF5A_EUNSUPPORTED_TYPE, HDF5A_ETOO_LARGE,
 * HDF5A_ENOMEM, HDF5A_ECLOSED once the connection is gone) the callback
 * will never be called (libuv's rule). */
HDF5A_API int hdf5a_async_ping(hdf5a_async *ac, hdf5a_callback *cb, void *privdata);
/* As hdf5a_set_durability / hdf5a_sync for the async context. */
HDF5A_API int hdf5a_async_set_durability(hdf5a_async *ac, hdf5a_durability d);
/* As hdf5a_set_file, for every later request of ac. With cluster_nodes,
 * the connection moves to the file's owner before later requests go
 * (see hdf5a_async_connect_ex). */
HDF5A_API int hdf5a_async_set_file(hdf5a_async *ac, const char *file);
HDF5A_API int hdf5a_async_sync(hdf5a_async *ac, hdf5a_durability level, hdf5a_callback *cb,
                               void *privdata);
HDF5A_API int hdf5a_async_create_group(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                       void *privdata);
HDF5A_API int hdf5a_async_write(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                const hdf5a_compression *comp, hdf5a_callback *cb,
                                void *privdata);
HDF5A_API int hdf5a_async_append(hdf5a_async *ac, const char *path, const hdf5a_array *a,
                                 const hdf5a_compression *comp, hdf5a_callback *cb,
                                 void *privdata);
HDF5A_API int hdf5a_async_insert(hdf5a_async *ac, const char *path, int64_t index,
                                 const hdf5a_array *a, const hdf5a_compression *comp,
                                 hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_read(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata);
HDF5A_API int hdf5a_async_delete(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata);
HDF5A_API int hdf5a_async_read_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                     int nsel, hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_write_slice(hdf5a_async *ac, const char *path, const hdf5a_sel *sel,
                                      int nsel, const hdf5a_array *a, hdf5a_callback *cb,
                                      void *privdata);
HDF5A_API int hdf5a_async_create_dataset(hdf5a_async *ac, const char *path, int ndim,
                                         const uint64_t *shape, const char *dtype,
                                         const hdf5a_create_opts *opts, hdf5a_callback *cb,
                                         void *privdata);
HDF5A_API int hdf5a_async_resize(hdf5a_async *ac, const char *path, int ndim,
                                 const uint64_t *shape, hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_resize_axis(hdf5a_async *ac, const char *path, int axis,
                                      uint64_t size, hdf5a_callback *cb, void *privdata);
/* The blocking functions' arguments; results in the reply (see hdf5a_reply). */
HDF5A_API int hdf5a_async_set_attr(hdf5a_async *ac, const char *path, const char *name,
                                   const hdf5a_array *value, hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_get_attr(hdf5a_async *ac, const char *path, const char *name,
                                   hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_list_attrs(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                     void *privdata);
HDF5A_API int hdf5a_async_delete_attr(hdf5a_async *ac, const char *path, const char *name,
                                      hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_list(hdf5a_async *ac, const char *path, const char *after,
                               uint64_t limit, hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_walk(hdf5a_async *ac, const char *path, unsigned max_depth,
                               const char *after, uint64_t limit, hdf5a_callback *cb,
                               void *privdata);
HDF5A_API int hdf5a_async_info(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                               void *privdata);
HDF5A_API int hdf5a_async_compact(hdf5a_async *ac, hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_exists(hdf5a_async *ac, const char *path, hdf5a_callback *cb,
                                 void *privdata);
HDF5A_API int hdf5a_async_create_link(hdf5a_async *ac, const char *path, const char *target,
                                      hdf5a_callback *cb, void *privdata);
HDF5A_API int hdf5a_async_move(hdf5a_async *ac, const char *path, const char *dest,
                               hdf5a_callback *cb, void *privdata);
/* Send a batch (hdf5a_batch_*) on an asynchronous context: the request is
 * copied at once; b must live until the callback, which fills its results
 * (hdf5a_batch_result_shape then works as after hdf5a_batch_send). On
 * failure the reply's status is the failing op's error, and has_index and
 * index say which op it was. */
HDF5A_API int hdf5a_async_batch_send(hdf5a_async *ac, hdf5a_batch *b, hdf5a_callback *cb,
                                     void *privdata);

#ifdef __cplusplus
}
#endif

#endif
