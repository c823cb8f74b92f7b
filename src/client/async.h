/* Private to libhdf5async: the asynchronous context's insides, shared by
 * async.c (the connection, requests, replies) and the files kept apart so
 * that async.c stays about the one connection: async_connect.c (making the
 * context), async_ops.c (the API's requests), async_reconnect.c (riding
 * over a lost connection) and async_follow.c (moving to another node). */
#ifndef H5C_ASYNC_H
#define H5C_ASYNC_H

#include "client/client.h"

/* Replies up to this size are cut out of the shared input buffer; larger
 * ones, and every read's, get a buffer of their own that is filled straight
 * from the socket (a read's array then keeps it). */
#define IBUF_SIZE (64 * 1024)
/* An output buffer grown past this by a large write is given back once it
 * has drained. */
#define OBUF_KEEP (1024 * 1024)
/* recv calls per readiness event, so one busy connection cannot hold the
 * caller's loop forever (libuv stops at 32 as well) */
#define READS_PER_EVENT 32
/* TLS: ciphertext bytes per send or recv, and the room kept for record
 * overheads when a stage is filled (as in blocking.h) */
#define TLS_STAGE (128 * 1024)
#define TLS_SLACK 1024

/* ST_BACKOFF: reconnecting (async_reconnect.c), waiting before the next
 * try; fd is then a timerfd that becomes readable when the wait is over. */
enum { ST_CONNECTING, ST_HANDSHAKE, ST_CONNECTED, ST_DISCONNECTED, ST_BACKOFF };

typedef struct pending_cb {
    struct pending_cb *next;
    hdf5a_callback *fn;
    void *privdata;
    uint64_t id;
    h5c_op op;
    bool connect_auth; /* the connect's auth request: a refusal ends the connection */
    void *out;         /* batch: the hdf5a_batch its results go into */
    uint8_t *frame;    /* reconnect, follow: the request's whole frame, to send again */
    size_t frame_len;
    /* follow (async_follow.c): redirect: a WRONG_NODE came, the frame goes
     * to `want`, the node it named; unsent: queued while the connection
     * moves, not sent on it; path: the nodes it was sent to ("a -> b";
     * NULL: only the one the connection is on); hops: redirections so far */
    bool redirect, unsent;
    unsigned char hops;
    char *path, *want;
} pending_cb;

struct hdf5a_async {
    int fd; /* open until hdf5a_async_free, so adapters can always unwatch it;
               with reconnect the same number gets a new socket (dup3) */
    int state;
    int connect_error; /* errno of a connect that failed at once */
    char peer[80];
    int err; /* 0 while usable, else why the connection is gone */
    char errstr[H5C_ERRLEN];

    hdf5a_async_events ev;
    bool have_ev;
    bool reading, writing; /* what we asked the loop for */

    hdf5a_durability durability; /* hdf5a_async_set_durability */
    char *file; /* hdf5a_async_set_file: every request's `file`; NULL: none */
    mp_buf out; /* encoded requests not yet sent (TLS: encrypted), from out_pos on */
    size_t out_pos;
    size_t secret_len; /* the auth request's bytes at the start of out, wiped once sent */

    h5c_tls *tls;  /* NULL: plaintext */
    uint8_t *cin;  /* TLS: TLS_STAGE bytes of ciphertext received */
    uint8_t *cout; /* TLS: TLS_STAGE bytes of ciphertext being sent */
    size_t cout_pos, cout_len;
    h5c_identity ident; /* the auth reply's */

    uint8_t *in; /* IBUF_SIZE bytes, replies from in_start to in_end */
    size_t in_start, in_end;
    uint8_t *big; /* a reply being read into its own buffer */
    void *big_block;
    size_t big_len, big_have;

    mp_doc doc;
    char msg[H5C_ERRLEN]; /* the current reply's error text */

    pending_cb *head, *tail;
    size_t pending;
    uint64_t next_id;

    int in_callback;
    bool freeing;
    struct h5c_arc *rc; /* reconnect's state (async_reconnect.c); NULL: off */
    struct h5c_afw *fw; /* follow_wrong_node's state (async_follow.c); NULL: off */
    /* follow: the last of the requests at the queue's start that wait for
     * a move (redirected or held back), so that finding the one the next
     * reply answers does not walk them all each time; NULL: from the head.
     * A hint: reset to NULL whenever one of them leaves or changes. */
    pending_cb *held_last;
    bool rc_up;         /* reconnect: connected once, so a lost connection is retried */
};

/* ---- events ---- */

static inline void want_read(hdf5a_async *ac, bool on)
{
    if (ac->reading == on)
        return;
    ac->reading = on;
    if (!ac->have_ev)
        return;
    if (on && ac->ev.add_read)
        ac->ev.add_read(ac->ev.data);
    else if (!on && ac->ev.del_read)
        ac->ev.del_read(ac->ev.data);
}

static inline void want_write(hdf5a_async *ac, bool on)
{
    if (ac->writing == on)
        return;
    ac->writing = on;
    if (!ac->have_ev)
        return;
    if (on && ac->ev.add_write)
        ac->ev.add_write(ac->ev.data);
    else if (!on && ac->ev.del_write)
        ac->ev.del_write(ac->ev.data);
}


/* ---- async.c, for the others ---- */

/* The connection is gone for good with code: every pending callback fires
 * with HDF5A_ECLOSED (why in errstr). True: stop (the context may be gone). */
bool h5c_async_fail(hdf5a_async *ac, int code, const char *why);
/* Frees what the context holds, then the context (its queue already
 * empty, the loop already told): hdf5a_async_free's end, and a failed
 * connect's. */
void h5c_async_release(hdf5a_async *ac);
/* The state is ST_CONNECTED (after TCP, and TLS when on). */
void h5c_async_connected(hdf5a_async *ac);
/* Queue one request (async_ops.c builds them): encoded into the output,
 * its callback at the queue's end; out is a batch's hdf5a_batch. 0, or a
 * code with errstr (the callback will never fire). */
int h5c_async_submit(hdf5a_async *ac, const h5c_request *req, hdf5a_callback *fn,
                     void *privdata, void *out);

/* The callback the next reply on the connection answers: the head, or with
 * follow the first request neither redirected nor held back. */
pending_cb *h5c_afw_waiting(hdf5a_async *ac);
static inline pending_cb *answering(hdf5a_async *ac)
{
    return ac->fw ? h5c_afw_waiting(ac) : ac->head;
}

/* ---- async_follow.c ----
 * Only called when ac->fw is set (follow_wrong_node or cluster_nodes). */

/* At connect: the node as given ("host:port"), the token, the node list.
 * HDF5A_ENOMEM / HDF5A_EINVAL with why. */
int h5c_afw_new(hdf5a_async *ac, const char *host, int port, const h5c_opts *o, char *why,
                size_t whylen);
void h5c_afw_free(hdf5a_async *ac);
/* The request just encoded into ac->out from mark on: keep its frame (if
 * reconnect did not), and hold it back while the connection moves. */
int h5c_afw_keep(hdf5a_async *ac, pending_cb *cb, size_t mark);
/* A WRONG_NODE reply for cb (r's node): true when cb is redirected (its
 * callback waits for the owner's reply); false when it is final (a loop,
 * too many hops, no node named): ac->msg then says why. */
bool h5c_afw_wrong_node(hdf5a_async *ac, pending_cb *cb, const h5c_reply *r);
/* After a reply: once every request sent on a connection that must move
 * is answered, the connection moves. True: stop reading (moved, or failed:
 * the context may be gone). */
bool h5c_afw_step(hdf5a_async *ac);
/* reconnect resends everything: nothing is redirected or held back now */
void h5c_afw_reset(hdf5a_async *ac);
/* cluster_nodes: the file of later requests changed (hdf5a_async_set_file) */
void h5c_afw_file_changed(hdf5a_async *ac);

/* ---- async_reconnect.c ----
 * Only called when ac->rc is set (hdf5a_connect_opts.reconnect). */

/* At connect: keep the address, the token and a random client_id.
 * HDF5A_ENOMEM / HDF5A_EIO with why. */
int h5c_arc_new(hdf5a_async *ac, const struct addrinfo *ai, const char *token, int timeout_ms,
                char *why, size_t whylen);
void h5c_arc_free(hdf5a_async *ac);
/* The request just encoded into ac->out from mark on goes out with
 * client_id/seq set by h5c_arc_stamp; keep its frame in cb. 0 or
 * HDF5A_ENOMEM (nothing kept, the caller undoes the request). */
void h5c_arc_stamp(hdf5a_async *ac, h5c_request *r);
int h5c_arc_keep(hdf5a_async *ac, pending_cb *cb, size_t mark);
/* The connection failed with code (HDF5A_EIO / HDF5A_ECLOSED): true when
 * a reconnect is under way instead (nothing fails); false to fail for good
 * (why then says so when the time is up). */
bool h5c_arc_lost(hdf5a_async *ac, int code, char *why, size_t whylen);
/* The loop says fd is readable in ST_BACKOFF: the wait is over. */
void h5c_arc_timer(hdf5a_async *ac);
/* A reply came: the connection works, the next loss gets a fresh timeout. */
void h5c_arc_replied(hdf5a_async *ac);
/* follow moved the connection: later reconnects go to ai. */
void h5c_arc_retarget(hdf5a_async *ac, const struct addrinfo *ai);
/* nfd in place of what ac->fd is (then closed), with the loop told to
 * watch nothing first. 0, or -1 with errno. */
int h5c_async_replace_fd(hdf5a_async *ac, int nfd);

#endif
