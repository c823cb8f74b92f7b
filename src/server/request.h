/* One client request on its way through the server: parsed on the event
 * loop, executed on the storage thread, answered on the event loop. */
#ifndef H5A_REQUEST_H
#define H5A_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto/array.h"
#include "proto/msgpack.h"

typedef enum {
    OP_PING,
    OP_CREATE_GROUP,
    OP_WRITE, /* "update" too */
    OP_READ,
    OP_APPEND,
    OP_INSERT,
    OP_DELETE,
    /* attributes, listing, links: engine_meta.c */
    OP_SET_ATTR,
    OP_GET_ATTR,
    OP_LIST_ATTRS,
    OP_DELETE_ATTR,
    OP_LIST,
    OP_WALK,
    OP_INFO,
    OP_EXISTS,
    OP_CREATE_LINK,
    OP_MOVE,
    OP_NONE /* the request never got as far as naming a valid op */
} h5a_op;

typedef enum { COMP_DEFAULT, COMP_NONE, COMP_GZIP, COMP_LZF } h5a_comp;

typedef struct h5a_limits {
    uint64_t max_message_size;
    mp_limits mp;
} h5a_limits;

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
    h5a_array data;
    bool has_data;
    int64_t index;
    h5a_comp compression;
    int level; /* gzip level, -1 = default */
    /* attributes, listing, links (NUL-terminated copies; NULL when absent) */
    char *name;         /* attribute name */
    char *target;       /* create_link: the soft link's target */
    char *dest;         /* move: the new path, validated */
    char *after;        /* list/walk: continue after this member name / path */
    uint64_t limit;     /* list/walk: most entries in the reply (0 = default) */
    uint64_t max_depth; /* walk: 0 = no limit */

    /* set when parsing failed: storage answers with this error, untouched file */
    int err_code;
    char err_msg[256];
    bool close_after; /* the stream cannot be trusted: close once answered */

    /* output: frame bytes (length prefix included) plus an optional
     * zero-copy payload sent right after them */
    mp_buf reply;
    void *reply_data; /* from h5a_buf_alloc */
    size_t reply_data_len;
    bool reply_ok;

    uv_write_t write_req;
    uint64_t t_start; /* uv_hrtime at arrival, for debug logs */
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

/* Path checks shared with tests: 0 or H5A_E_BAD_PATH with err. */
int h5a_path_validate(const char *p, size_t n, char *err, size_t errlen);

const char *h5a_op_name(h5a_op op);

#endif
