/* Private to libhdf5async: the blocking client's insides, shared by
 * blocking.c (one round trip: send, receive, retry, follow a redirection),
 * blocking_connect.c (connecting, connecting again, moving to another node,
 * closing) and blocking_ops.c (the API's calls, each one request). Kept
 * apart so that each file is about one of those. */
#ifndef H5C_BLOCKING_H
#define H5C_BLOCKING_H

#include "client/client.h"

/* TLS: bytes of ciphertext staged per send or recv. Larger costs memory
 * per connection, smaller costs system calls. */
#define TLS_STAGE (128 * 1024)
/* TLS: room left for record overheads when filling a stage (a 16 KiB record
 * grows by at most 29 bytes) */
#define TLS_SLACK 1024

struct hdf5a_client {
    int fd;         /* -1 once the connection is unusable */
    int timeout_ms; /* per call; 0 waits forever */
    char peer[80];  /* "host:port", for messages */
    h5c_tls *tls;   /* NULL: plaintext */
    uint8_t *cin;   /* TLS: TLS_STAGE bytes of ciphertext received; also the
                       plaintext of a reply that came while sending (early_*),
                       which is taken before anything is received again */
    uint8_t *cout;  /* TLS: TLS_STAGE bytes of ciphertext being sent */
    size_t cout_pos, cout_len;
    size_t early_pos, early_len; /* in cin */
    h5c_identity ident; /* the auth reply's */
    uint64_t next_id;
    mp_buf hdr; /* request bytes except a write's data, reused */
    mp_doc doc; /* reply nodes, reused */
    char errstr[H5C_ERRLEN];
    hdf5a_progress_cb *progress; /* hdf5a_set_progress; NULL: none */
    void *progress_ud;
    hdf5a_durability durability; /* hdf5a_set_durability */
    char *file; /* hdf5a_set_file: every request's `file`; NULL: none */
    long last_index; /* the failing op of the last batch sent, -1: none */
    /* reconnect (hdf5a_connect_opts.reconnect): where and how to connect
     * again (copies of the options' strings), and exactly-once's ids */
    bool reconnect;
    int reconnect_timeout_ms;
    char *host;
    int port;
    h5c_opts ropts;
    char client_id[33];
    uint64_t next_seq;
    /* follow_wrong_node (also keeps host, port, ropts); moved_to: the last
     * reply's WRONG_NODE `node`, "" when it was not one */
    bool follow;
    char moved_to[256];
    h5c_nodes nodes; /* cluster_nodes: requests go to their file's owner first */
};

/* ---- blocking.c, for the others ---- */

/* The deadline timeout_ms from now (-1: none, for 0). */
int64_t h5c_blocking_deadline(int timeout_ms);
/* Waits for events on fd. 0, or HDF5A_ETIMEOUT / HDF5A_EIO. */
int h5c_blocking_wait_fd(int fd, short events, int64_t deadline, short *revents);
/* The TLS handshake on the new connection, within deadline. */
int h5c_blocking_handshake(hdf5a_client *c, int64_t deadline);
/* One round trip on the connection as it is (no reconnect, no follow). */
int h5c_blocking_call_by(hdf5a_client *c, const h5c_request *req, int64_t deadline, int *ndim,
                         uint64_t *shape, void *out);
/* One request as the API makes it: routed to its file's owner, sent again
 * after a lost connection, following WRONG_NODE, by the client's options.
 * out gets the op's result, ndim/shape a shape (see call_by in blocking.c). */
int h5c_blocking_call(hdf5a_client *c, const h5c_request *req, int *ndim, uint64_t *shape,
                      void *out);

/* ---- blocking_connect.c, for blocking.c ---- */

/* A new connection in place of the lost one: TCP, TLS, the token. */
int h5c_blocking_reconnect(hdf5a_client *c, char *err, size_t errlen);
/* The connection moved to the node at addr ("HOST:PORT"); on failure back
 * to the node it was on (or closed when that fails too). */
int h5c_blocking_switch_node(hdf5a_client *c, const char *addr, char *err, size_t errlen);

#endif
