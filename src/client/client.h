/* Private to libhdf5async: what the blocking (blocking.c) and asynchronous
 * (async.c) halves share. Requests are encoded and replies decoded here with
 * no I/O, on top of the project's codec in src/proto; sock.c holds the few
 * socket helpers. Nothing here is exported: the library is compiled with
 * -fvisibility=hidden and only HDF5A_API functions are visible. */
#ifndef H5C_CLIENT_H
#define H5C_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hdf5_async.h"
#include "proto/msgpack.h"
#include "proto/ops.h"

struct addrinfo;

/* Room for one error text; the server's messages are shorter than this. */
#define H5C_ERRLEN 1024

/* The ops of the list (src/proto/ops.h), in its order, then the client's
 * own variant. */
typedef enum {
#define H5C_X(ID, name, args, changes, perm, batch) H5C_##ID,
    H5A_OPS(H5C_X)
#undef H5C_X
    H5C_READ_SLICE /* "read" with a selection */
} h5c_op;

/* One request's arguments, as the public functions received them. */
typedef struct h5c_request {
    h5c_op op;
    const char *path;              /* unused for ping */
    const hdf5a_array *array;      /* write/append/insert/write_slice, set_attr */
    const hdf5a_compression *comp; /* NULL: server default */
    int64_t index;                 /* insert; resize's axis when has_axis */
    const hdf5a_sel *sel;          /* read_slice/write_slice: nsel items */
    int nsel;
    int ndim;                      /* create_dataset/resize: shape (for a resize along */
    const uint64_t *shape;         /* one axis: ndim 1, the size) */
    bool has_axis;
    const char *dtype;             /* create_dataset */
    const hdf5a_create_opts *opts; /* create_dataset; may be NULL */
    const char *name;              /* set/get/delete_attr */
    const char *target;            /* create_link */
    const char *dest;              /* move */
    const char *after;             /* list/walk; NULL: from the start */
    uint64_t limit;                /* list/walk; 0: the server's default */
    unsigned max_depth;            /* walk; 0: no limit */
    const char *token;             /* auth */
    hdf5a_durability durability;   /* DEFAULT: no key, the server decides */
    const char *file;              /* the file under the server's data_root; NULL: no key */
    const char *client_id;         /* exactly-once: with seq; NULL: none */
    uint64_t seq;
    bool no_id;                    /* an op of a batch: no "id" key */
    const uint8_t *ops;            /* batch: nops packed maps, ops_len bytes */
    size_t ops_len;
    uint32_t nops;
} h5c_request;

/* The durability a request of op carries, given the connection's setting:
 * only the ops that change the file (CHANGES in the op list) carry it. */
hdf5a_durability h5c_durability_for(h5c_op op, hdf5a_durability setting);

/* Appends one whole frame (length prefix included) to b. When the array's
 * element bytes can go to the socket straight from the caller's memory,
 * they are left out: *tail and *tail_len name them, and the length prefix
 * already counts them; otherwise *tail_len is 0. On error b is unchanged
 * and err says why (HDF5A_EINVAL, HDF5A_EUNSUPPORTED_TYPE, HDF5A_ETOO_LARGE,
 * HDF5A_ENOMEM). */
int h5c_encode_request(mp_buf *b, uint64_t id, const h5c_request *req, const void **tail,
                       size_t *tail_len, char *err, size_t errlen);

/* A decoded reply envelope; pointers go into the frame and doc. */
typedef struct h5c_reply {
    int status; /* 0, or the server's error code (HDF5A_ENOT_FOUND, ...) */
    const char *message;
    size_t message_len; /* not NUL-terminated */
    const mp_node *result;
    long index; /* a batch's failing op (the error's "index"), else -1 */
    const char *node; /* WRONG_NODE: the error's "node" (the owner), else NULL */
    size_t node_len;  /* not NUL-terminated */
} h5c_reply;

/* Decodes one reply frame payload for the request with id `id` (a nil id
 * is accepted: the server sends it when it could not read the request's,
 * and the reply is still the next one in order). Returns 0, or HDF5A_EREPLY
 * when the frame is not a reply to that request. */
int h5c_decode_reply(const uint8_t *payload, size_t len, mp_doc *doc, uint64_t id,
                     h5c_reply *out, char *err, size_t errlen);

/* Ops whose result is {"shape": [...]}. */
static inline bool h5c_op_gives_shape(h5c_op op)
{
    return op == H5C_WRITE || op == H5C_APPEND || op == H5C_INSERT || op == H5C_WRITE_SLICE ||
           op == H5C_CREATE_DATASET || op == H5C_RESIZE;
}

/* The result of write/append/insert: {"shape": [...]}. */
int h5c_result_shape(const mp_node *result, int *ndim, uint64_t *shape, char *err,
                     size_t errlen);

/* The result of read as a new array for the caller. When the array's data
 * stays in the frame, the array takes over *frame_block (the allocation
 * holding the frame) and sets it to NULL; otherwise *frame_block is left to
 * the caller to free. HDF5A_EREPLY or HDF5A_ENOMEM on failure. */
int h5c_result_array(const mp_node *result, void **frame_block, hdf5a_array **out, char *err,
                     size_t errlen);

/* Results of list/walk/list_attrs (meta.c): a new listing, or HDF5A_EREPLY
 * / HDF5A_ENOMEM. list_attrs' result is a bare array of entries. */
int h5c_result_listing(h5c_op op, const mp_node *result, hdf5a_listing **out, char *err,
                       size_t errlen);
int h5c_result_info(const mp_node *result, hdf5a_objinfo **out, char *err, size_t errlen);
/* compact's {"before", "after"} into out[0], out[1] */
int h5c_result_sizes(const mp_node *result, uint64_t out[2], char *err, size_t errlen);
int h5c_result_bool(const mp_node *result, int *out, char *err, size_t errlen);

/* A batch's result (batch.c): one shape per op into the batch. */
int h5c_result_batch(const mp_node *result, hdf5a_batch *b, char *err, size_t errlen);
/* Send a batch request on the blocking client (blocking_ops.c): the reply's
 * results into b; *failed the failing op's index or -1. */
int h5c_blocking_batch(hdf5a_client *c, const h5c_request *r, hdf5a_batch *b, long *failed);
/* The batch request of b (batch.c), for either client. */
int h5c_batch_request(hdf5a_batch *b, h5c_request *r);

/* Who an auth reply says the connection is: {"name": str or nil, "role"}. */
typedef struct h5c_identity {
    bool known; /* an auth reply came */
    bool has_name;
    char name[256];
    char role[16];
} h5c_identity;
int h5c_result_identity(const mp_node *result, h5c_identity *out, char *err, size_t errlen);
void h5c_identity_get(const h5c_identity *id, const char **name, const char **role);

/* Overwrite memory that held a secret (a token) so that it does not linger. */
void h5c_wipe(void *p, size_t n);
/* The same for a heap copy of a token: wipe *p, free it, set it NULL (a
 * NULL *p does nothing), so every holder of a copy lets it go one way. */
void h5c_wipe_str(char **p);

/* A buffer for a frame payload of len bytes, placed so that the payload
 * ends on a 16-byte boundary: a read's element bytes come last in the frame
 * and their size is a multiple of the element size, so the data the caller
 * gets is aligned for its type. *block is what to free. NULL when out of
 * memory. */
uint8_t *h5c_frame_alloc(size_t len, void **block);

static inline uint32_t h5c_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- JSON descr lists (json.c) ---- */

/* A JSON array of arrays, strings and non-negative integers into the same
 * MessagePack structure. HDF5A_EINVAL with the offset of the problem. */
int h5c_json_to_msgpack(const char *json, mp_buf *out, char *err, size_t errlen);
/* The inverse for a descr list from a reply; appends NUL-terminated text. */
int h5c_msgpack_to_json(const mp_node *n, mp_buf *out, char *err, size_t errlen);

/* ---- connect options and TLS (tls.c) ---- */

/* hdf5a_connect_opts, checked: the fields this version knows. */
typedef struct h5c_opts {
    const char *token; /* NULL: no auth request */
    bool tls;
    const char *ca_file, *cert_file, *key_file, *server_name, *ciphersuites; /* NULL: not given */
    bool insecure;
    bool reconnect;
    int reconnect_timeout_ms;
    bool follow_wrong_node;
    const char *cluster_nodes; /* NULL: none (follow_wrong_node is then implied) */
} h5c_opts;

/* in may be NULL (no options). HDF5A_EINVAL with err on a bad combination
 * or a size that does not fit. */
int h5c_opts_import(const hdf5a_connect_opts *in, h5c_opts *out, char *err, size_t errlen);

/* One client TLS session over two in-memory BIOs: no I/O, nothing waits. The
 * caller moves ciphertext: from the socket into h5c_tls_feed, and from
 * h5c_tls_take_out to the socket whenever h5c_tls_out_pending says so
 * (after a handshake step, a read or a write). Codes: HDF5A_ETLS (failed
 * handshake or record: err says why, the certificate's fault named),
 * HDF5A_ECLOSED (the server's close_notify), HDF5A_EINVAL (files or names
 * that cannot be used), HDF5A_ENOMEM. */
typedef struct h5c_tls h5c_tls;

/* A session for host (the name checked unless o->server_name), with the
 * certificates of o loaded. */
int h5c_tls_new(h5c_tls **out, const h5c_opts *o, const char *host, char *err, size_t errlen);
void h5c_tls_free(h5c_tls *t);
/* A new session on the same context (certificates already loaded), for a
 * new connection: the asynchronous client's reconnect. */
int h5c_tls_restart(h5c_tls *t, char *err, size_t errlen);
/* The same for a connection to another host (follow_wrong_node): its name
 * is checked, unless tls_server_name fixed the name for every node. */
int h5c_tls_restart_for(h5c_tls *t, const char *host, char *err, size_t errlen);
/* One handshake step: 1 done, 0 waiting for the server, or a code. */
int h5c_tls_handshake(h5c_tls *t, char *err, size_t errlen);
bool h5c_tls_handshake_done(const h5c_tls *t);
/* Ciphertext from the server: copied in (h5c_tls_feed), or received
 * straight into the session's input: h5c_tls_in_space gives at least want
 * bytes of room (*room: all there is; NULL: out of memory), then
 * h5c_tls_in_commit says how many of them were filled. */
uint8_t *h5c_tls_in_space(h5c_tls *t, size_t want, size_t *room);
void h5c_tls_in_commit(h5c_tls *t, size_t n);
int h5c_tls_feed(h5c_tls *t, const void *data, size_t n, char *err, size_t errlen);
/* Up to n bytes of plaintext into buf (*got; 0: more ciphertext needed),
 * finishing the handshake first. 0 or a code. */
int h5c_tls_read(h5c_tls *t, void *buf, size_t n, size_t *got, char *err, size_t errlen);
/* Ciphertext or plaintext held inside that h5c_tls_read has not given yet:
 * a level-triggered loop will not say the socket is readable for it. */
bool h5c_tls_has_input(const h5c_tls *t);
/* All n bytes of plaintext into records waiting in the output. */
int h5c_tls_write(h5c_tls *t, const void *data, size_t n, char *err, size_t errlen);
size_t h5c_tls_out_pending(const h5c_tls *t);
size_t h5c_tls_take_out(h5c_tls *t, void *buf, size_t n);
/* Queue a close_notify (then take it out and send it). */
void h5c_tls_close_notify(h5c_tls *t);

/* ---- [cluster] routing (cluster_route.c) ---- */

/* A node list as hdf5a_connect_opts.cluster_nodes gives it. */
typedef struct h5c_nodes {
    char **v; /* "HOST:PORT" as written, blanks around entries dropped */
    int n;
} h5c_nodes;

/* "HOST:PORT, HOST:PORT, ..." as the server reads [cluster] nodes: no empty
 * or malformed entry, none twice. HDF5A_EINVAL / HDF5A_ENOMEM with err. */
int h5c_nodes_parse(const char *list, h5c_nodes *out, char *err, size_t errlen);
void h5c_nodes_free(h5c_nodes *l);
/* The entry of file's owner (rendezvous.c); NULL with no list or no file. */
const char *h5c_nodes_owner(const h5c_nodes *l, const char *file);
/* "HOST:PORT" (or "[v6]:PORT") into host, *port; HDF5A_EREPLY when not. */
int h5c_parse_node(const char *addr, char *host, size_t hostlen, int *port);
/* Whether node is one of the entries of "a -> b -> c". */
bool h5c_path_has(const char *path, const char *node);

/* ---- sockets (sock.c) ---- */

/* getaddrinfo for TCP; HDF5A_EINVAL (bad arguments) or HDF5A_EIO. */
int h5c_resolve(const char *host, int port, struct addrinfo **list, char *err, size_t errlen);
/* Addresses in the order we try them: IPv4 first (pass 0), then the rest
 * (pass 1), because a server on the default 0.0.0.0 is IPv4 only while
 * "localhost" may resolve to ::1 first. */
bool h5c_addr_in_pass(const struct addrinfo *ai, int pass);
/* A non-blocking, close-on-exec socket with a connect to ai started.
 * Returns the fd (or -1 if no socket could be made, errno set); *error is 0
 * when the connect is done or in progress, else its errno. */
int h5c_connect_start(const struct addrinfo *ai, int *error);
/* Requests and replies are small and latency bound. */
void h5c_set_nodelay(int fd);
/* "host:port" or "[v6]:port" for messages. */
void h5c_addr_name(const struct addrinfo *ai, char *buf, size_t len);

#endif
