#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "msgpack.h"

/* ---- decoding ---- */

typedef struct decoder {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    unsigned max_depth;
    size_t max_nodes;
    mp_doc *doc;
    char *err;
    size_t errlen;
} decoder;

/* Byte shifts rather than casts: the input has no alignment guarantee. */
static uint16_t rd16(const uint8_t *p) { return (uint16_t)((unsigned)p[0] << 8 | p[1]); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

/* Two's complement reinterpretation without relying on implementation-defined
 * unsigned-to-signed conversion. */
static int64_t as_signed(uint64_t u, unsigned bits)
{
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (u & sign)
        return -(int64_t)((~u & (sign - 1))) - 1;
    return (int64_t)u;
}

static size_t left(const decoder *d) { return d->len - d->pos; }

/* Appends one node and returns its index, or -1 with the error set. The
 * index, not a pointer, survives the realloc of later pushes. */
static long push_node(decoder *d, uint8_t type, int *rc)
{
    mp_doc *doc = d->doc;
    if (doc->count >= d->max_nodes) {
        *rc = h5a_fail(d->err, d->errlen, H5A_E_TOO_LARGE,
                       "message has more than %zu MessagePack values (at byte %zu)", d->max_nodes,
                       d->pos);
        return -1;
    }
    if (doc->count == doc->cap) {
        size_t ncap = doc->cap ? doc->cap * 2 : 64;
        mp_node *n = realloc(doc->nodes, ncap * sizeof *n);
        if (!n) {
            *rc = h5a_fail(d->err, d->errlen, H5A_E_INTERNAL, "out of memory decoding message");
            return -1;
        }
        doc->nodes = n;
        doc->cap = ncap;
    }
    mp_node *n = &doc->nodes[doc->count];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->span = 1;
    return (long)doc->count++;
}

static int truncated(decoder *d, const char *what, size_t at, size_t need)
{
    return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                    "truncated %s at byte %zu: needs %zu more bytes, %zu left", what, at, need,
                    left(d));
}

/* Reads the n-byte big-endian length or value that follows the type byte. */
static int read_uint(decoder *d, const char *what, size_t at, unsigned n, uint64_t *out)
{
    if (left(d) < n)
        return truncated(d, what, at, n);
    const uint8_t *p = d->buf + d->pos;
    switch (n) {
    case 1: *out = p[0]; break;
    case 2: *out = rd16(p); break;
    case 4: *out = rd32(p); break;
    default: *out = rd64(p); break;
    }
    d->pos += n;
    return 0;
}

/* depth is the number of containers around the value being decoded. */
static int decode_one(decoder *d, unsigned depth);

/* str, bin and ext payloads: the node points into the input. */
static int decode_bytes(decoder *d, uint8_t type, const char *what, size_t at, uint64_t n,
                        int8_t ext_type)
{
    if (left(d) < n)
        return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                        "truncated %s at byte %zu: declares %llu bytes, %zu left", what, at,
                        (unsigned long long)n, left(d));
    int rc = 0;
    long idx = push_node(d, type, &rc);
    if (idx < 0)
        return rc;
    mp_node *node = &d->doc->nodes[idx];
    node->len = (uint32_t)n;
    node->ext_type = ext_type;
    node->v.ptr = d->buf + d->pos;
    d->pos += (size_t)n;
    return 0;
}

static int decode_container(decoder *d, uint8_t type, const char *what, size_t at, uint64_t n,
                            unsigned depth)
{
    if (depth > d->max_depth)
        return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                        "nesting deeper than %u at byte %zu", d->max_depth, at);
    /* Every element takes at least one byte, so a count larger than what is
     * left is a lie; refusing it here bounds the node array by the message
     * size before anything is allocated. */
    uint64_t children = type == MP_MAP ? n * 2 : n;
    if (children > left(d))
        return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                        "truncated %s at byte %zu: declares %llu %s but only %zu bytes are left",
                        what, at, (unsigned long long)n, type == MP_MAP ? "pairs" : "elements",
                        left(d));
    int rc = 0;
    long idx = push_node(d, type, &rc);
    if (idx < 0)
        return rc;
    d->doc->nodes[idx].len = (uint32_t)n;
    for (uint64_t i = 0; i < children; i++) {
        rc = decode_one(d, depth);
        if (rc)
            return rc;
    }
    d->doc->nodes[idx].span = (uint32_t)(d->doc->count - (size_t)idx);
    return 0;
}

static int decode_int(decoder *d, uint64_t u, bool is_signed, unsigned bits)
{
    int rc = 0;
    int64_t i = is_signed ? as_signed(u, bits) : 0;
    long idx = push_node(d, is_signed && i < 0 ? MP_INT : MP_UINT, &rc);
    if (idx < 0)
        return rc;
    /* Non-negative values of the signed formats are MP_UINT so consumers see
     * one type per value, whatever encoding the sender picked. */
    if (is_signed && i < 0)
        d->doc->nodes[idx].v.i = i;
    else
        d->doc->nodes[idx].v.u = is_signed ? (uint64_t)i : u;
    return 0;
}

static int decode_one(decoder *d, unsigned depth)
{
    size_t at = d->pos;
    if (left(d) < 1)
        return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                        "truncated message: value expected at byte %zu", at);
    uint8_t c = d->buf[d->pos++];
    uint64_t n = 0;
    int rc = 0;
    long idx;

    if (c <= 0x7f)
        return decode_int(d, c, false, 8);
    if (c >= 0xe0)
        return decode_int(d, c, true, 8);
    if ((c & 0xf0) == 0x80)
        return decode_container(d, MP_MAP, "fixmap", at, c & 0x0f, depth + 1);
    if ((c & 0xf0) == 0x90)
        return decode_container(d, MP_ARRAY, "fixarray", at, c & 0x0f, depth + 1);
    if ((c & 0xe0) == 0xa0)
        return decode_bytes(d, MP_STR, "fixstr", at, c & 0x1f, 0);

    switch (c) {
    case 0xc0:
        idx = push_node(d, MP_NIL, &rc);
        return idx < 0 ? rc : 0;
    case 0xc2:
    case 0xc3:
        idx = push_node(d, MP_BOOL, &rc);
        if (idx < 0)
            return rc;
        d->doc->nodes[idx].v.b = c == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
        static const char *const names[] = {"bin8", "bin16", "bin32"};
        unsigned w = 1u << (c - 0xc4);
        if ((rc = read_uint(d, names[c - 0xc4], at, w, &n)))
            return rc;
        return decode_bytes(d, MP_BIN, names[c - 0xc4], at, n, 0);
    }
    case 0xc7:
    case 0xc8:
    case 0xc9: {
        static const char *const names[] = {"ext8", "ext16", "ext32"};
        unsigned w = 1u << (c - 0xc7);
        uint64_t t;
        if ((rc = read_uint(d, names[c - 0xc7], at, w, &n)) ||
            (rc = read_uint(d, names[c - 0xc7], at, 1, &t)))
            return rc;
        return decode_bytes(d, MP_EXT, names[c - 0xc7], at, n, (int8_t)as_signed(t, 8));
    }
    case 0xca:
    case 0xcb: {
        bool f32 = c == 0xca;
        if ((rc = read_uint(d, f32 ? "float32" : "float64", at, f32 ? 4 : 8, &n)))
            return rc;
        idx = push_node(d, MP_FLOAT, &rc);
        if (idx < 0)
            return rc;
        if (f32) {
            uint32_t u32 = (uint32_t)n;
            float f;
            memcpy(&f, &u32, sizeof f);
            d->doc->nodes[idx].v.f = f;
        } else {
            memcpy(&d->doc->nodes[idx].v.f, &n, sizeof(double));
        }
        return 0;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
        static const char *const names[] = {"uint8", "uint16", "uint32", "uint64"};
        unsigned w = 1u << (c - 0xcc);
        if ((rc = read_uint(d, names[c - 0xcc], at, w, &n)))
            return rc;
        return decode_int(d, n, false, w * 8);
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        static const char *const names[] = {"int8", "int16", "int32", "int64"};
        unsigned w = 1u << (c - 0xd0);
        if ((rc = read_uint(d, names[c - 0xd0], at, w, &n)))
            return rc;
        return decode_int(d, n, true, w * 8);
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
        static const char *const names[] = {"fixext1", "fixext2", "fixext4", "fixext8",
                                            "fixext16"};
        uint64_t t;
        if ((rc = read_uint(d, names[c - 0xd4], at, 1, &t)))
            return rc;
        return decode_bytes(d, MP_EXT, names[c - 0xd4], at, 1u << (c - 0xd4),
                            (int8_t)as_signed(t, 8));
    }
    case 0xd9:
    case 0xda:
    case 0xdb: {
        static const char *const names[] = {"str8", "str16", "str32"};
        unsigned w = 1u << (c - 0xd9);
        if ((rc = read_uint(d, names[c - 0xd9], at, w, &n)))
            return rc;
        return decode_bytes(d, MP_STR, names[c - 0xd9], at, n, 0);
    }
    case 0xdc:
    case 0xdd:
        if ((rc = read_uint(d, c == 0xdc ? "array16" : "array32", at, c == 0xdc ? 2 : 4, &n)))
            return rc;
        return decode_container(d, MP_ARRAY, c == 0xdc ? "array16" : "array32", at, n, depth + 1);
    case 0xde:
    case 0xdf:
        if ((rc = read_uint(d, c == 0xde ? "map16" : "map32", at, c == 0xde ? 2 : 4, &n)))
            return rc;
        return decode_container(d, MP_MAP, c == 0xde ? "map16" : "map32", at, n, depth + 1);
    default: /* 0xc1: never used */
        return h5a_fail(d->err, d->errlen, H5A_E_PROTOCOL_ERROR,
                        "invalid MessagePack type byte 0x%02x at byte %zu", c, at);
    }
}

int mp_decode(const uint8_t *buf, size_t len, const mp_limits *lim, mp_doc *doc, char *err,
              size_t errlen)
{
    /* A zero field means "not set" rather than "allow nothing": a limit of
     * zero nodes or zero depth could not carry a single request. */
    decoder d = {
        .buf = buf,
        .len = len,
        .max_depth = lim && lim->max_depth ? lim->max_depth : MP_DEFAULT_MAX_DEPTH,
        .max_nodes = lim && lim->max_nodes ? lim->max_nodes : MP_DEFAULT_MAX_NODES,
        .doc = doc,
        .err = err,
        .errlen = errlen,
    };
    /* span is 32 bits wide */
    if (d.max_nodes > UINT32_MAX)
        d.max_nodes = UINT32_MAX;
    doc->count = 0;
    int rc = decode_one(&d, 0);
    if (rc == 0 && d.pos != len)
        rc = h5a_fail(err, errlen, H5A_E_PROTOCOL_ERROR,
                      "%zu trailing bytes after the MessagePack object at byte %zu", len - d.pos,
                      d.pos);
    if (rc)
        doc->count = 0;
    return rc;
}

void mp_doc_free(mp_doc *doc)
{
    free(doc->nodes);
    doc->nodes = NULL;
    doc->count = doc->cap = 0;
}

bool mp_raw_eq(const mp_node *n, const char *s)
{
    /* byte by byte, stopping at the first difference: a request's keys and
     * op are looked up in tables of dozens of names, most of which differ
     * in their first byte (strlen + memcmp per name was a visible cost) */
    if (!mp_is_raw(n)) return false;
    const char *p = (const char *)n->v.ptr;
    for (size_t i = 0; i < n->len; i++)
        if (s[i] == '\0' || s[i] != p[i]) return false;
    return s[n->len] == '\0';
}

const char *mp_type_name(const mp_node *n)
{
    switch (n->type) {
    case MP_NIL: return "nil";
    case MP_BOOL: return "bool";
    case MP_INT:
    case MP_UINT: return "int";
    case MP_FLOAT: return "float";
    case MP_STR: return "str";
    case MP_BIN: return "bin";
    case MP_ARRAY: return "list";
    case MP_MAP: return "map";
    default: return "ext";
    }
}

const mp_node *mp_map_get(const mp_node *map, const char *key)
{
    if (!map || map->type != MP_MAP)
        return NULL;
    const mp_node *k = mp_first_child(map);
    for (uint32_t i = 0; i < map->len; i++) {
        const mp_node *v = mp_next(k);
        if (mp_raw_eq(k, key))
            return v;
        k = mp_next(v);
    }
    return NULL;
}

/* ---- encoding ---- */

void mp_buf_free(mp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void mp_buf_reserve(mp_buf *b, size_t extra)
{
    if (b->oom)
        return;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    uint8_t *p = realloc(b->data, ncap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->data = p;
    b->cap = ncap;
}

void mp_put_raw(mp_buf *b, const void *p, size_t n)
{
    mp_buf_reserve(b, n);
    if (b->oom || n == 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* A type byte followed by an n-byte big-endian value. */
static void put_tagged(mp_buf *b, uint8_t tag, uint64_t v, unsigned n)
{
    uint8_t tmp[9];
    tmp[0] = tag;
    for (unsigned i = 0; i < n; i++)
        tmp[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    mp_put_raw(b, tmp, 1 + n);
}

static void put_byte(mp_buf *b, uint8_t c) { mp_put_raw(b, &c, 1); }

void mp_put_nil(mp_buf *b) { put_byte(b, 0xc0); }

void mp_put_bool(mp_buf *b, bool v) { put_byte(b, v ? 0xc3 : 0xc2); }

void mp_put_uint(mp_buf *b, uint64_t v)
{
    if (v <= 0x7f)
        put_byte(b, (uint8_t)v);
    else if (v <= UINT8_MAX)
        put_tagged(b, 0xcc, v, 1);
    else if (v <= UINT16_MAX)
        put_tagged(b, 0xcd, v, 2);
    else if (v <= UINT32_MAX)
        put_tagged(b, 0xce, v, 4);
    else
        put_tagged(b, 0xcf, v, 8);
}

void mp_put_int(mp_buf *b, int64_t v)
{
    if (v >= 0) {
        mp_put_uint(b, (uint64_t)v);
        return;
    }
    /* The cast to uint64_t gives the two's complement bit pattern, and
     * put_tagged keeps only the low n bytes of it. */
    uint64_t u = (uint64_t)v;
    if (v >= -32)
        put_byte(b, (uint8_t)u);
    else if (v >= INT8_MIN)
        put_tagged(b, 0xd0, u, 1);
    else if (v >= INT16_MIN)
        put_tagged(b, 0xd1, u, 2);
    else if (v >= INT32_MIN)
        put_tagged(b, 0xd2, u, 4);
    else
        put_tagged(b, 0xd3, u, 8);
}

void mp_put_double(mp_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_tagged(b, 0xcb, u, 8);
}

/* Lengths past 32 bits have no MessagePack encoding; poisoning the buffer
 * like an allocation failure lets callers keep their single oom check. */
static bool len_ok(mp_buf *b, size_t n)
{
    if ((uint64_t)n > UINT32_MAX) {
        b->oom = true;
        return false;
    }
    return true;
}

void mp_put_str(mp_buf *b, const char *s, size_t n)
{
    if (!len_ok(b, n))
        return;
    if (n <= 31)
        put_byte(b, (uint8_t)(0xa0 | n));
    else if (n <= UINT8_MAX)
        put_tagged(b, 0xd9, n, 1);
    else if (n <= UINT16_MAX)
        put_tagged(b, 0xda, n, 2);
    else
        put_tagged(b, 0xdb, n, 4);
    mp_put_raw(b, s, n);
}

void mp_put_cstr(mp_buf *b, const char *s) { mp_put_str(b, s, strlen(s)); }

void mp_put_bin_header(mp_buf *b, size_t n)
{
    if (!len_ok(b, n))
        return;
    if (n <= UINT8_MAX)
        put_tagged(b, 0xc4, n, 1);
    else if (n <= UINT16_MAX)
        put_tagged(b, 0xc5, n, 2);
    else
        put_tagged(b, 0xc6, n, 4);
}

void mp_put_bin(mp_buf *b, const void *p, size_t n)
{
    mp_put_bin_header(b, n);
    if (!b->oom)
        mp_put_raw(b, p, n);
}

void mp_put_array_header(mp_buf *b, size_t n)
{
    if (!len_ok(b, n))
        return;
    if (n <= 15)
        put_byte(b, (uint8_t)(0x90 | n));
    else if (n <= UINT16_MAX)
        put_tagged(b, 0xdc, n, 2);
    else
        put_tagged(b, 0xdd, n, 4);
}

/* The smallest map header for n pairs (n within UINT32_MAX) into out;
 * returns its length. */
static size_t map_header(uint8_t out[5], size_t n)
{
    if (n <= 15) {
        out[0] = (uint8_t)(0x80 | n);
        return 1;
    }
    unsigned w = n <= UINT16_MAX ? 2 : 4;
    out[0] = w == 2 ? 0xde : 0xdf;
    for (unsigned i = 0; i < w; i++)
        out[1 + i] = (uint8_t)(n >> (8 * (w - 1 - i)));
    return 1 + w;
}

void mp_put_map_header(mp_buf *b, size_t n)
{
    if (!len_ok(b, n))
        return;
    uint8_t h[5];
    mp_put_raw(b, h, map_header(h, n));
}

size_t mp_map_begin(mp_buf *b)
{
    size_t at = b->len;
    put_byte(b, 0x80);
    return at;
}

void mp_map_end(mp_buf *b, size_t at, size_t n)
{
    if (b->oom || !len_ok(b, n))
        return;
    uint8_t h[5];
    size_t hl = map_header(h, n);
    if (hl > 1) {
        /* rare (no request has 16 fields): the pairs move up to make room */
        mp_buf_reserve(b, hl - 1);
        if (b->oom)
            return;
        memmove(b->data + at + hl, b->data + at + 1, b->len - at - 1);
        b->len += hl - 1;
    }
    memcpy(b->data + at, h, hl);
}
