/* A structure-aware libFuzzer mutator for MessagePack requests, shared by
 * both targets (header-only: each target includes it once).
 *
 * Byte-level mutations mostly break the MessagePack framing (most of them
 * end in PROTOCOL_ERROR before reaching any op). This one decodes the
 * payload with the project's own decoder, changes ONE node of the tree --
 * a number to an interesting value, a string to a protocol token (op, path,
 * dtype string, compression), bytes through libFuzzer's own mutator, a
 * container losing, duplicating or swapping children, any node replaced by
 * a ready-made value (descr lists, shapes, plain lists, numpy maps) -- and
 * encodes the tree again. A second pass then resizes the "data" of every
 * msgpack-numpy map to what its "type" and "shape" need, so that changed
 * shapes and types reach the engine instead of stopping at the byte-count
 * check. Undecodable payloads fall back to libFuzzer's byte mutations. */
#ifndef H5A_FUZZ_MP_MUTATOR_H
#define H5A_FUZZ_MP_MUTATOR_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "proto/dtype.h"
#include "proto/msgpack.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

typedef struct {
    uint64_t s;
} mm_rng;

static uint64_t mm_next(mm_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}
static size_t mm_below(mm_rng *r, size_t n) { return n ? (size_t)(mm_next(r) % n) : 0; }

static const char *const mm_tokens[] = {
    /* keys */
    "id", "op", "path", "data", "index", "compression", "compression_opts", "nd", "type", "kind",
    "shape", "complex", "",
    /* ops */
    "ping", "create_group", "write", "update", "read", "append", "insert", "delete",
    /* paths: few names, so that requests meet each other's objects */
    "/", "/a", "/b", "/a/b", "/a/b/c", "/b/a", "/a/x", "/g", "/g/x", "/t", "/new", "/s", "/r",
    /* compression */
    "gzip", "lzf", "none",
    /* dtype strings */
    "|b1", "|i1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8", "|u1", "<u2", ">u2", "<u4", ">u4",
    "<u8", ">u8", "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16", ">c16", "|S1",
    "|S3", "|S8", "|V1", "|V4", "|V16", "=i4", "<U2", "|O", "<M8", "V", "", "r", "i", "(1+2j)",
    "j", "-inf-nanj",
};

static const uint64_t mm_uints[] = {0,      1,          2,          3,          4,
                                    5,      7,          8,          16,         31,
                                    32,     33,         127,        128,        255,
                                    256,    1024,       65535,      65536,      0xFFFFFFFFull,
                                    1ull << 32,         (1ull << 62), INT64_MAX,
                                    (uint64_t)INT64_MAX + 1,        UINT64_MAX};
static const int64_t mm_ints[] = {-1, -2, -3, -32, -33, -128, -129, -32768, INT32_MIN, INT64_MIN};

/* Ready-made values that a mutation may put anywhere (mostly as "type",
 * "shape" or "data"). Built once. */
static mp_buf mm_snips[24];
static size_t mm_nsnips;

static void mm_put_descr_field(mp_buf *b, const char *name, const char *fmt, int dim)
{
    mp_put_array_header(b, dim ? 3 : 2);
    mp_put_cstr(b, name);
    mp_put_cstr(b, fmt);
    if (dim) {
        mp_put_array_header(b, 1);
        mp_put_uint(b, (uint64_t)dim);
    }
}

static void mm_init_snips(void)
{
    if (mm_nsnips) return;
    mp_buf *b;
    /* descr lists */
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 2), mm_put_descr_field(b, "a", "<i4", 0), mm_put_descr_field(b, "b", "<f8", 0);
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 3), mm_put_descr_field(b, "a", "|i1", 0), mm_put_descr_field(b, "", "|V7", 0),
        mm_put_descr_field(b, "b", "<f8", 2);
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 2), mm_put_descr_field(b, "r", "<f8", 0), mm_put_descr_field(b, "i", "<f8", 0);
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 1), mm_put_descr_field(b, "", "|V3", 0);
    b = &mm_snips[mm_nsnips++]; /* nested struct */
    mp_put_array_header(b, 2);
    mp_put_array_header(b, 2), mp_put_cstr(b, "p");
    mp_put_array_header(b, 2), mm_put_descr_field(b, "x", "<i2", 0), mm_put_descr_field(b, "y", ">u2", 0);
    mm_put_descr_field(b, "ok", "|b1", 3);
    b = &mm_snips[mm_nsnips++]; /* struct with a subarray of a complex */
    mp_put_array_header(b, 2), mm_put_descr_field(b, "c", "<c8", 2), mm_put_descr_field(b, "s", "|S3", 0);
    /* shapes */
    static const int shapes[][4] = {{0}, {1, 1}, {1, 3}, {2, 2, 3}, {2, 0, 4}, {3, 1, 1, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        b = &mm_snips[mm_nsnips++];
        mp_put_array_header(b, (size_t)shapes[i][0]);
        for (int k = 1; k <= shapes[i][0]; k++) mp_put_uint(b, (uint64_t)shapes[i][k]);
    }
    /* plain values */
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 2), mp_put_cstr(b, "x"), mp_put_cstr(b, "yz");
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 2), mp_put_array_header(b, 2), mp_put_int(b, -1), mp_put_uint(b, 2),
        mp_put_array_header(b, 2), mp_put_double(b, 0.5), mp_put_bool(b, true);
    b = &mm_snips[mm_nsnips++];
    mp_put_array_header(b, 0);
    b = &mm_snips[mm_nsnips++];
    mp_put_map_header(b, 0);
    /* numpy maps (data fixed up by the second pass) */
    b = &mm_snips[mm_nsnips++];
    mp_put_map_header(b, 5), mp_put_cstr(b, "nd"), mp_put_bool(b, true), mp_put_cstr(b, "type"),
        mp_put_cstr(b, "<i4"), mp_put_cstr(b, "kind"), mp_put_cstr(b, ""), mp_put_cstr(b, "shape"),
        mp_put_array_header(b, 1), mp_put_uint(b, 2), mp_put_cstr(b, "data"), mp_put_bin(b, "\1\0\0\0\2\0\0\0", 8);
    b = &mm_snips[mm_nsnips++];
    mp_put_map_header(b, 3), mp_put_cstr(b, "nd"), mp_put_bool(b, false), mp_put_cstr(b, "type"),
        mp_put_cstr(b, "<f8"), mp_put_cstr(b, "data"), mp_put_bin(b, "\0\0\0\0\0\0\xf0\x3f", 8);
    b = &mm_snips[mm_nsnips++];
    mp_put_map_header(b, 2), mp_put_cstr(b, "complex"), mp_put_bool(b, true), mp_put_cstr(b, "data"),
        mp_put_cstr(b, "(1-2j)");
}

/* ---- re-encoding a decoded tree with one change ---- */

typedef struct mm_ctx {
    mm_rng *rng;
    const mp_node *target; /* the node to change (NULL: none) */
    const mp_node *resize; /* a bin node to resize to resize_to bytes */
    size_t resize_to;
} mm_ctx;

static const mp_node *mm_emit(mp_buf *b, const mp_node *n, mm_ctx *c);

static void mm_emit_plain(mp_buf *b, const mp_node *n)
{
    switch (n->type) {
    case MP_NIL: mp_put_nil(b); break;
    case MP_BOOL: mp_put_bool(b, n->v.b); break;
    case MP_INT: mp_put_int(b, n->v.i); break;
    case MP_UINT: mp_put_uint(b, n->v.u); break;
    case MP_FLOAT: mp_put_double(b, n->v.f); break;
    case MP_STR: mp_put_str(b, (const char *)n->v.ptr, n->len); break;
    case MP_BIN: mp_put_bin(b, n->v.ptr, n->len); break;
    case MP_EXT: {
        uint8_t h[6] = {0xc9, (uint8_t)(n->len >> 24), (uint8_t)(n->len >> 16), (uint8_t)(n->len >> 8),
                        (uint8_t)n->len, (uint8_t)n->ext_type};
        mp_put_raw(b, h, sizeof h);
        mp_put_raw(b, n->v.ptr, n->len);
        break;
    }
    default: break;
    }
}

/* children of container n, emitted normally; returns the node after n */
static const mp_node *mm_emit_children(mp_buf *b, const mp_node *n, mm_ctx *c, size_t skip_from)
{
    size_t kids = n->type == MP_MAP ? 2 * (size_t)n->len : n->len;
    const mp_node *k = mp_first_child(n);
    for (size_t i = 0; i < kids; i++) {
        if (i >= skip_from) k = mp_next(k);
        else k = mm_emit(b, k, c);
    }
    return n + n->span;
}

static void mm_mutate_bytes(mp_buf *b, const mp_node *n, mm_ctx *c, bool as_str)
{
    size_t max = (size_t)n->len * 2 + 16;
    uint8_t *tmp = malloc(max);
    if (!tmp) abort();
    if (n->len) memcpy(tmp, n->v.ptr, n->len);
    size_t len = LLVMFuzzerMutate(tmp, n->len, max);
    if (as_str) mp_put_str(b, (const char *)tmp, len);
    else mp_put_bin(b, tmp, len);
    free(tmp);
}

static void mm_put_token(mp_buf *b, mm_ctx *c)
{
    mp_put_cstr(b, mm_tokens[mm_below(c->rng, sizeof mm_tokens / sizeof mm_tokens[0])]);
}

static const mp_node *mm_emit_changed(mp_buf *b, const mp_node *n, mm_ctx *c)
{
    const mp_node *after = n + n->span;
    unsigned pick = (unsigned)mm_below(c->rng, 16);
    if (pick == 0) { /* anything becomes a ready-made value */
        const mp_buf *s = &mm_snips[mm_below(c->rng, mm_nsnips)];
        mp_put_raw(b, s->data, s->len);
        return after;
    }
    if (pick == 1) { /* or a token string */
        mm_put_token(b, c);
        return after;
    }
    switch (n->type) {
    case MP_UINT:
        if (pick < 10) mp_put_uint(b, mm_uints[mm_below(c->rng, sizeof mm_uints / sizeof mm_uints[0])]);
        else if (pick < 13) mp_put_uint(b, n->v.u + 1 - 2 * (uint64_t)mm_below(c->rng, 2));
        else mp_put_int(b, mm_ints[mm_below(c->rng, sizeof mm_ints / sizeof mm_ints[0])]);
        return after;
    case MP_INT:
        if (pick < 10) mp_put_int(b, mm_ints[mm_below(c->rng, sizeof mm_ints / sizeof mm_ints[0])]);
        else mp_put_uint(b, mm_uints[mm_below(c->rng, sizeof mm_uints / sizeof mm_uints[0])]);
        return after;
    case MP_STR:
        if (pick < 11) mm_put_token(b, c);
        else mm_mutate_bytes(b, n, c, pick < 15);
        return after;
    case MP_BIN:
        if (pick < 12) mm_mutate_bytes(b, n, c, false);
        else if (pick < 14) mp_put_str(b, (const char *)n->v.ptr, n->len);
        else mm_put_token(b, c);
        return after;
    case MP_BOOL: mp_put_bool(b, !n->v.b); return after;
    case MP_NIL:
        if (pick & 1) mp_put_bool(b, true);
        else mp_put_uint(b, 1);
        return after;
    case MP_FLOAT: {
        const double fl[] = {0.0, -0.0, 1.0, -1.5, 1e300, 5e-324, INFINITY, -INFINITY, NAN};
        if (pick < 12) mp_put_double(b, fl[mm_below(c->rng, sizeof fl / sizeof fl[0])]);
        else mp_put_uint(b, 3);
        return after;
    }
    case MP_ARRAY:
    case MP_MAP: {
        bool map = n->type == MP_MAP;
        size_t per = map ? 2 : 1;
        if (pick < 7 && n->len > 0) { /* drop the last child / pair */
            if (map) mp_put_map_header(b, n->len - 1);
            else mp_put_array_header(b, n->len - 1);
            return mm_emit_children(b, n, c, per * (n->len - 1));
        }
        if (pick < 12 && n->len > 0) { /* duplicate a child / pair at the end */
            size_t dup = mm_below(c->rng, n->len);
            if (map) mp_put_map_header(b, n->len + 1);
            else mp_put_array_header(b, n->len + 1);
            const mp_node *k = mp_first_child(n), *d = NULL;
            for (size_t i = 0; i < n->len; i++) {
                if (i == dup) d = k;
                k = mm_emit(b, k, c);
                if (map) k = mm_emit(b, k, c);
            }
            k = mm_emit(b, d, c);
            if (map) mm_emit(b, k, c);
            return after;
        }
        if (n->len >= 2 && !map) { /* swap the first two children */
            mp_put_array_header(b, n->len);
            const mp_node *k0 = mp_first_child(n), *k1 = mp_next(k0);
            mm_emit(b, k1, c);
            mm_emit(b, k0, c);
            const mp_node *k = mp_next(k1);
            for (size_t i = 2; i < n->len; i++) k = mm_emit(b, k, c);
            return after;
        }
        /* grow an empty container or fall through to a token */
        if (!map && n->len == 0) {
            mp_put_array_header(b, 1);
            mp_put_uint(b, mm_uints[mm_below(c->rng, 8)]);
            return after;
        }
        mm_put_token(b, c);
        return after;
    }
    default: mm_put_token(b, c); return after;
    }
}

static const mp_node *mm_emit(mp_buf *b, const mp_node *n, mm_ctx *c)
{
    if (n == c->target) return mm_emit_changed(b, n, c);
    if (n == c->resize) {
        size_t have = n->len, want = c->resize_to;
        uint8_t *tmp = calloc(1, want ? want : 1);
        if (!tmp) abort();
        memcpy(tmp, n->v.ptr, have < want ? have : want);
        for (size_t i = have; i < want; i++) tmp[i] = (uint8_t)mm_next(c->rng);
        mp_put_bin(b, tmp, want);
        free(tmp);
        return n + 1;
    }
    if (n->type == MP_ARRAY) {
        mp_put_array_header(b, n->len);
        return mm_emit_children(b, n, c, SIZE_MAX);
    }
    if (n->type == MP_MAP) {
        mp_put_map_header(b, n->len);
        return mm_emit_children(b, n, c, SIZE_MAX);
    }
    mm_emit_plain(b, n);
    return n + 1;
}

static const mp_limits mm_limits = {.max_depth = MP_DEFAULT_MAX_DEPTH, .max_nodes = 1u << 16};

/* The first numpy map whose "data" length disagrees with its type and
 * shape: that data node, and the length it needs (small ones only). */
static const mp_node *mm_bad_data(const mp_doc *doc, size_t *need)
{
    char err[256];
    for (size_t i = 0; i < doc->count; i++) {
        const mp_node *m = &doc->nodes[i];
        if (m->type != MP_MAP) continue;
        const mp_node *nd = mp_map_get(m, "nd"), *ty = mp_map_get(m, "type"),
                      *data = mp_map_get(m, "data"), *shape = mp_map_get(m, "shape");
        if (!nd || nd->type != MP_BOOL || !ty || !data || data->type != MP_BIN) continue;
        uint64_t n = 1;
        if (nd->v.b) {
            if (!shape || shape->type != MP_ARRAY || shape->len > H5A_MAX_DIMS) continue;
            const mp_node *d = mp_first_child(shape);
            bool ok = true;
            for (uint32_t k = 0; k < shape->len && ok; k++, d = mp_next(d)) {
                ok = d->type == MP_UINT && d->v.u <= 4096 && (d->v.u == 0 || n <= 4096 / d->v.u);
                if (ok) n *= d->v.u;
            }
            if (!ok) continue;
        }
        dtype *t = NULL;
        if (dtype_parse_node(ty, &t, err, sizeof err) != 0) continue;
        size_t sz = t->itemsize;
        dtype_free(t);
        if (sz > 4096 || n * sz > 4096 || n * sz == data->len) continue;
        *need = (size_t)(n * sz);
        return data;
    }
    return NULL;
}

/* Mutates one MessagePack payload in place (buf holds max bytes). Returns
 * the new size, or 0 when the payload does not decode (caller falls back). */
static size_t mm_mutate_payload(uint8_t *buf, size_t size, size_t max, mm_rng *rng)
{
    mm_init_snips();
    mp_doc doc = {0};
    char err[256];
    if (size == 0 || mp_decode(buf, size, &mm_limits, &doc, err, sizeof err) != 0) {
        mp_doc_free(&doc);
        return 0;
    }
    mp_buf out = {0};
    mm_ctx c = {.rng = rng, .target = &doc.nodes[mm_below(rng, doc.count)]};
    mm_emit(&out, &doc.nodes[0], &c);
    /* fix data lengths, a few maps at most */
    for (int round = 0; round < 4 && !out.oom; round++) {
        mp_doc d2 = {0};
        if (mp_decode(out.data, out.len, &mm_limits, &d2, err, sizeof err) != 0) {
            mp_doc_free(&d2);
            break;
        }
        size_t need;
        const mp_node *bad = mm_bad_data(&d2, &need);
        if (!bad) {
            mp_doc_free(&d2);
            break;
        }
        mp_buf fixed = {0};
        mm_ctx fc = {.rng = rng, .resize = bad, .resize_to = need};
        mm_emit(&fixed, &d2.nodes[0], &fc);
        mp_doc_free(&d2);
        mp_buf_free(&out);
        out = fixed;
    }
    size_t n = 0;
    if (!out.oom && out.len <= max && out.len > 0) {
        memcpy(buf, out.data, out.len);
        n = out.len;
    }
    mp_buf_free(&out);
    mp_doc_free(&doc);
    return n;
}

#endif
