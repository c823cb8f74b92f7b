/* What the h5grove endpoints share (http_h5grove.c: meta, attr, paths
 * and the requests; http_data.c: /api/data): one request's state, the
 * engine's replies decoded, h5grove's error wording. Private to those two
 * files. */
#ifndef H5A_HTTP_H5GROVE_H
#define H5A_HTTP_H5GROVE_H

#include "proto/array.h"
#include "server/http_int.h"

enum { RESOLVE_NONE, RESOLVE_ONLY_VALID, RESOLVE_ALL };
enum { FMT_JSON, FMT_BIN, FMT_NPY };

typedef struct api_state {
    int api;
    /* the request's `file` under data_root (malloc'd; every storage request
     * of this HTTP request carries it, hc_submit), NULL: the default file */
    char *file;
    char path[4200];
    const char *name; /* the path's last segment ("" for "/") */
    int resolve;
    int waiting;
    /* meta */
    h5a_request *info, *list;
    hjson children;
    size_t nchildren;
    bool child_group; /* the children are being paged in */
    /* data */
    int format;
    bool flatten, safe;
    h5a_request *read;
    dtype *dt;
    int ndim;
    uint64_t dims[H5A_MAX_DIMS];
    const uint8_t *data;
    size_t nbytes, done;
    size_t held;
    jarray ja;
    bool half_to_single; /* dtype=safe on float16: widened a piece at a time */
    uint8_t *inline_copy; /* a small array's bytes, copied out of the reply */
    /* paths */
    bool started;
    bool walked;           /* resolve_links=all: the last page came */
    char *unresolved;      /* resolve_links=all: the first link that leads nowhere */
} api_state;

/* The reply of r decoded: its result (0) or its error code and message. A
 * read's element bytes stay where they are (r->reply_data): the bin
 * header that announces them is rewritten in a copy of the small header to
 * announce none, and *data points at them. */
typedef struct reply {
    mp_doc doc;
    uint8_t *copy;
    const mp_node *result;
    int code;
    const char *msg;
    const uint8_t *data;
    size_t data_len;
} reply;

/* A request of this op at path, or NULL (out of memory). */
h5a_request *h5g_mkreq(h5a_op op, const char *path);
/* The served file's base name (h5grove's `file`). */
const char *h5g_file_name(const http_conn *c);
/* 0 (rp->result, or rp->code and rp->msg for an error reply) or -1. */
int h5g_decode(h5a_request *r, reply *rp);
void h5g_reply_free(reply *rp);
/* map[key] when map is a map, else NULL */
const mp_node *h5g_get(const mp_node *map, const char *key);
/* n is the str s */
bool h5g_is(const mp_node *n, const char *s);
/* An error reply as h5grove words it (h5web looks for "not a valid path",
 * "Cannot resolve", "Permission denied", "File not found"). */
void h5g_fail(http_conn *c, api_state *st, int code, const char *msg);

/* /api/data (http_data.c): h5grove's parse_slice; the read's answer. */
int h5g_parse_selection(const char *s, h5a_selection **out, char *err, size_t errlen);
void h5g_data_answer(http_conn *c, api_state *st, h5a_request *r);

#endif
