/* Private to the HTTP port (http.c, http_h5grove.c, http_json.c): one
 * connection, its one request at a time, the response writer and the JSON
 * text builder. */
#ifndef H5A_HTTP_INT_H
#define H5A_HTTP_INT_H

#include <http_parser.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/dtype.h"
#include "proto/msgpack.h"
#include "server/request.h"
#include "server/tls.h"

/* Bounds on one request: its URL (414 beyond), all its header lines (431),
 * an Authorization value; bodies are refused (413). */
#define HTTP_MAX_URL 8192
#define HTTP_MAX_HEADERS 16384
#define HTTP_MAX_AUTH 4200
/* Bytes a connection may have queued for the socket before a streamed
 * response waits for it to drain, and the size of one generated piece. */
#define HTTP_HIGH_WATER (256 * 1024)
#define HTTP_PIECE (64 * 1024)
/* An HTTP connection with nothing in flight is closed after this long
 * (idle_timeout when it is shorter). */
#define HTTP_IDLE_MS (300 * 1000)
/* A connection over max_connections that sends no request is closed after
 * this long (frame_timeout when it is shorter). */
#define HTTP_REJECTED_MS (10 * 1000)
/* Query parameters kept per request (attr_keys may repeat). */
#define HTTP_MAX_PARAMS 64

/* ---- JSON text (http_json.c) ---- */

typedef struct hjson {
    char *p;
    size_t len, cap;
    bool oom;
} hjson;

void j_raw(hjson *j, const char *s, size_t n);
void j_lit(hjson *j, const char *s); /* a NUL-terminated piece of JSON */
void j_str(hjson *j, const char *s, size_t n); /* a JSON string (UTF-8 checked) */
void j_cstr(hjson *j, const char *s);
void j_int(hjson *j, int64_t v);
void j_uint(hjson *j, uint64_t v);
/* A float as orjson writes it: the shortest text that reads back as the
 * same value of its own width (bits 16, 32 or 64); NaN and infinities as
 * null. */
void j_float(hjson *j, double v, int bits);
void j_free(hjson *j);
/* An IEEE half as a float (exact). */
float j_half(uint16_t h);
/* A MessagePack value as JSON: maps with str keys as objects, arrays,
 * numbers, str and bin as strings, nil as null, and msgpack-numpy values
 * ({b"nd": ...}) as the nested lists their elements make. Returns 0 or -1
 * (a value JSON cannot say). */
int j_from_mp(hjson *j, const mp_node *n);
/* One element of type t at p, as h5grove's orjson writes numpy's tolist()
 * of it: bools, numbers, complex as [re, im], fixed strings and opaque
 * bytes as strings (trailing NULs dropped), structs as arrays. */
void j_elem(hjson *j, const dtype *t, const uint8_t *p);

/* A numeric or struct array written as nested JSON lists, a piece at a
 * time (C order; `flatten` gives one list). */
typedef struct jarray {
    const dtype *t;
    const uint8_t *data;
    int ndim;
    uint64_t dims[H5A_MAX_DIMS];
    uint64_t n, i; /* elements, and the next one */
    bool started;
} jarray;
void jarray_init(jarray *a, const dtype *t, const uint8_t *data, int ndim, const uint64_t *dims);
/* Append up to about `budget` bytes of the text; true when it is complete. */
bool jarray_next(hjson *j, jarray *a, size_t budget);

/* ---- one connection ---- */

typedef struct http_param {
    char *key, *val; /* decoded, NUL-terminated, in the request's query buffer */
} http_param;

typedef struct http_conn http_conn;
/* A streamed body: called when the socket has room; writes more with
 * hc_body, and calls hc_end when it is done. */
typedef void (*http_gen_fn)(http_conn *c);

struct http_conn {
    uv_tcp_t tcp; /* first: a handle pointer is a connection pointer */
    struct server *srv;
    http_conn *prev, *next;
    uint64_t serial;
    char peer[64];
    bool loopback;
    http_parser parser;
    h5a_tls_conn *tls;
    bool tls_up, first_seen;

    /* plaintext not yet parsed (what came after a request while it is
     * answered) */
    char *in;
    size_t in_len, in_cap;

    /* the request being received */
    char url[HTTP_MAX_URL + 1];
    size_t url_len;
    size_t header_bytes;
    char field[32];
    size_t field_len;
    bool field_overflow;
    int hdr; /* which header's value is arriving: 0 other, 1 Authorization */
    char auth[HTTP_MAX_AUTH + 1];
    size_t auth_len;
    bool auth_overflow;
    int bad; /* a status (400, 413, 414, 431) to answer with, then close */
    bool in_request; /* between its first byte and its end */
    uint64_t request_start;

    /* the request being answered */
    bool busy;
    bool head; /* HEAD: headers only */
    bool keep_alive;
    int method;
    int endpoint;
    int status;
    char *qbuf; /* the decoded query */
    http_param params[HTTP_MAX_PARAMS];
    int nparams;
    const struct h5a_token *tok; /* with auth_file: the token presented */
    uint64_t t_begin;

    /* the response being written */
    bool chunked, headers_sent, ended;
    http_gen_fn gen;
    void *gen_state;
    void (*gen_free)(void *state);
    size_t out_bytes;   /* handed to the socket, not yet written */
    uint64_t sent_mark; /* bytes written when the sweep last looked */
    uint64_t sent;      /* bytes written */
    uint64_t stall_since;

    /* the h5grove handler's state (http_h5grove.c) */
    void *api;
    size_t in_storage; /* requests given to the storage thread, not answered */
    _Atomic bool gone; /* closed: the storage thread may skip its reads */

    uint64_t last_active;
    bool reading;
    bool closing;
    bool close_after; /* close once this response is out */
    /* over max_connections when it came: its request is read (closing on
     * unread bytes would reset the connection and lose the answer) and
     * answered 503; not counted in http_nconns */
    bool rejected;
};

/* Query parameter `key` (the first one), or NULL. */
const char *hc_param(const http_conn *c, const char *key);

/* Responses. A body's length is known (len >= 0: Content-Length) or not
 * (-1: chunked). extra: more header lines, each ending in \r\n, or NULL. */
void hc_start(http_conn *c, int status, const char *ctype, int64_t len, const char *extra);
/* Body bytes: copied when `owner` is NULL, else written from p in place
 * and owner given to free_fn once written. */
void hc_body(http_conn *c, const void *p, size_t n, void (*free_fn)(void *), void *owner);
void hc_end(http_conn *c);
/* A whole JSON response (takes j's text). */
void hc_json(http_conn *c, int status, hjson *j);
/* {"message": ...} with status. */
void hc_error(http_conn *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Stream a body: gen is called whenever the socket has room. */
void hc_stream(http_conn *c, http_gen_fn gen, void *state, void (*free_state)(void *));

/* Give a storage request of this connection to the storage thread, after
 * the access check (its token's role and prefixes). Returns 0, or an HTTP
 * status (403) with the reason in err; r is then not submitted. */
int hc_submit(http_conn *c, h5a_request *r, char *err, size_t errlen);
/* Bytes held for a response (storage replies, streamed pieces): counted in
 * max_buffered_bytes. */
void hc_hold(http_conn *c, int64_t bytes);
/* May HTTP responses hold `bytes` more? (Half of max_buffered_bytes is
 * theirs at most; past it /api/data answers 503.) */
bool hc_may_hold(http_conn *c, uint64_t bytes);

/* A parsed request (c->url, c->method, c->auth): answer it (http_route.c). */
void hc_route(http_conn *c);

/* ---- the h5grove endpoints (http_h5grove.c, http_data.c) ---- */

enum { API_META, API_DATA, API_ATTR, API_PATHS };
void h5g_handle(http_conn *c, int api);
/* A storage request this connection made is answered; r is the caller's
 * to free (h5a_request_free) unless kept. */
void h5g_on_done(http_conn *c, h5a_request *r);
/* The connection closes: free the handler's state. */
void h5g_free(http_conn *c);
/* The file the current request named under data_root (NULL: the default
 * file), which its storage requests carry. */
const char *h5g_request_file(const http_conn *c);
/* The default file's name as h5grove's `file` gives it: its name under
 * data_root, else its base name (what /health tells the viewer). */
const char *h5g_default_name(const struct server *s);

#endif
