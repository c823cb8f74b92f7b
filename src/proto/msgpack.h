/* A small MessagePack decoder and encoder with no I/O.
 *
 * Decoding turns one complete message (the payload of one frame) into a flat
 * array of nodes in pre-order. Strings, binaries and ext payloads are not
 * copied: their nodes point into the input buffer, which must outlive the
 * document. Every input is bounded: nesting depth, node count, and a
 * container may not declare more elements than there are bytes left (each
 * element needs at least one byte), so a hostile header cannot make us
 * allocate more than the message could describe.
 *
 * Encoding appends to a growable buffer; on allocation failure the buffer
 * remembers it (oom) and later calls do nothing, so callers check once. */
#ifndef H5A_MSGPACK_H
#define H5A_MSGPACK_H

#include <string.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MP_NIL,
    MP_BOOL,
    MP_INT,   /* negative integer, value in v.i */
    MP_UINT,  /* non-negative integer, value in v.u */
    MP_FLOAT, /* float 32 or 64, value in v.f */
    MP_STR,   /* v.ptr, len bytes, not NUL-terminated */
    MP_BIN,   /* v.ptr, len bytes */
    MP_ARRAY, /* len children follow */
    MP_MAP,   /* len key/value pairs follow: 2*len children */
    MP_EXT    /* v.ptr, len bytes, ext_type */
} mp_type;

typedef struct mp_node {
    uint8_t type;     /* mp_type */
    int8_t ext_type;  /* MP_EXT only */
    uint32_t len;     /* bytes (str/bin/ext) or element count (array/map pairs) */
    uint32_t span;    /* nodes in this subtree including itself: next sibling is this + span */
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        const uint8_t *ptr;
    } v;
} mp_node;

typedef struct mp_limits {
    unsigned max_depth; /* containers nested deeper than this are refused */
    size_t max_nodes;   /* total nodes in one message */
} mp_limits;

#define MP_DEFAULT_MAX_DEPTH 32
#define MP_DEFAULT_MAX_NODES (4u * 1024 * 1024)

typedef struct mp_doc {
    mp_node *nodes; /* nodes[0] is the root */
    size_t count;
    size_t cap;
} mp_doc;

/* Decode exactly len bytes as one MessagePack object. Returns 0, or
 * H5A_E_PROTOCOL_ERROR (malformed, truncated, trailing bytes, too deep) or
 * H5A_E_TOO_LARGE (node limit) with text in err. doc must be zeroed or
 * previously used (its array is reused); free with mp_doc_free. */
int mp_decode(const uint8_t *buf, size_t len, const mp_limits *lim, mp_doc *doc, char *err,
              size_t errlen);
void mp_doc_free(mp_doc *doc);

/* Navigation. Children of an array/map node n are n+1, then each next one is
 * child + child->span. */
static inline const mp_node *mp_first_child(const mp_node *n) { return n + 1; }
static inline const mp_node *mp_next(const mp_node *n) { return n + n->span; }
/* Value of a map entry whose key is a str or bin equal to key; NULL if absent
 * or n is not a map. */
const mp_node *mp_map_get(const mp_node *map, const char *key);
/* What a node is, in words for error messages ("int", "list", "map", ...). */
const char *mp_type_name(const mp_node *n);
/* str or bin node equal to the C string s */
bool mp_raw_eq(const mp_node *n, const char *s);
/* str or bin node (numpy's msgpack may send either for text) */
static inline bool mp_is_raw(const mp_node *n) { return n->type == MP_STR || n->type == MP_BIN; }
/* str or bin node equal to the sl bytes at s: for names whose length is
 * known (tables, literals through MP_RAW_EQ_LIT), a length compare first */
static inline bool mp_raw_eqn(const mp_node *n, const char *s, size_t sl)
{
    return mp_is_raw(n) && n->len == sl && memcmp(n->v.ptr, s, sl) == 0;
}
#define MP_RAW_EQ_LIT(n, lit) mp_raw_eqn((n), "" lit, sizeof(lit) - 1)

/* ---- encoding ---- */
typedef struct mp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} mp_buf;

void mp_buf_free(mp_buf *b);
void mp_buf_reserve(mp_buf *b, size_t extra);
void mp_put_raw(mp_buf *b, const void *p, size_t n); /* bytes as they are (no header) */
void mp_put_nil(mp_buf *b);
void mp_put_bool(mp_buf *b, bool v);
void mp_put_int(mp_buf *b, int64_t v);   /* smallest encoding */
void mp_put_uint(mp_buf *b, uint64_t v); /* smallest encoding */
void mp_put_double(mp_buf *b, double v);
void mp_put_str(mp_buf *b, const char *s, size_t n);
void mp_put_cstr(mp_buf *b, const char *s);
void mp_put_bin_header(mp_buf *b, size_t n); /* caller sends the n bytes itself (zero copy) */
void mp_put_bin(mp_buf *b, const void *p, size_t n);
void mp_put_array_header(mp_buf *b, size_t n);
void mp_put_map_header(mp_buf *b, size_t n);
/* A map whose pairs are counted while they are written: mp_map_begin keeps
 * one byte for the header and returns where it is; mp_map_end(b, at, n)
 * writes there the header mp_put_map_header would have written for n pairs
 * (moving the pairs up when it takes more than the byte kept). */
size_t mp_map_begin(mp_buf *b);
void mp_map_end(mp_buf *b, size_t at, size_t n);

#endif
