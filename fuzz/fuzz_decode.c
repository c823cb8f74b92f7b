/* libFuzzer target: one frame payload through the server's request parser,
 * then round trips of what it parsed.
 *
 *   payload --h5a_request_parse (server limits: depth 32, 4 Mi nodes)-->
 *     parsed array --h5a_array_encode--> msgpack-numpy bytes --mp_decode +
 *     h5a_array_from_node--> array again: must equal the first (type, shape,
 *     bytes; variable-length strings compared as strings)
 *     dtype --dtype_encode--> bytes --dtype_parse_node--> dtype: must equal,
 *     and encoding it again must give the same bytes.
 *
 * Every "type" value found in the document (even in a request that failed
 * to validate) goes through the dtype round trip too, so the dtype parser
 * is fuzzed on its own and not only behind a valid request. Any mismatch
 * aborts. No HDF5 here: this target needs only src/proto and request.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "proto/dtype.h"
#include "proto/errors.h"
#include "proto/msgpack.h"
#include "server/request.h"
#include "mp_mutator.h"

#define FAIL_IF(cond, ...)                                                                 \
    do {                                                                                   \
        if (cond) {                                                                        \
            fprintf(stderr, "fuzz_decode: %s:%d: check failed: %s\n  ", __FILE__, __LINE__, \
                    #cond);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* The limits net.c gives the parser. */
static const h5a_limits server_limits = {
    .max_message_size = 1ull << 30,
    .mp = {.max_depth = MP_DEFAULT_MAX_DEPTH, .max_nodes = MP_DEFAULT_MAX_NODES},
};

/* Encoded replies nest one level deeper than requests can (the reply map
 * around a 32-dimensional nested list of strings): decode them the way a
 * client would, with room to spare. */
static const mp_limits reply_limits = {.max_depth = 2 * H5A_MAX_DIMS + 2, .max_nodes = 0};

static void dtype_roundtrip(const dtype *t)
{
    mp_buf b1 = {0}, b2 = {0};
    mp_doc doc = {0};
    dtype *back = NULL;
    char err[512];

    int rc = dtype_encode(&b1, t);
    if (t->kind == DT_VLSTR) {
        FAIL_IF(rc != H5A_E_UNSUPPORTED_TYPE, "dtype_encode(VLSTR) gave %d", rc);
        goto out;
    }
    FAIL_IF(rc != 0, "dtype_encode failed (%d) on a type dtype_parse_node accepted", rc);
    rc = mp_decode(b1.data, b1.len, &reply_limits, &doc, err, sizeof err);
    FAIL_IF(rc != 0, "dtype_encode wrote undecodable MessagePack: %s", err);
    rc = dtype_parse_node(&doc.nodes[0], &back, err, sizeof err);
    FAIL_IF(rc != 0, "dtype_parse_node refused what dtype_encode wrote: %s", err);
    FAIL_IF(!dtype_equal(t, back), "dtype changed in an encode/parse round trip");
    rc = dtype_encode(&b2, back);
    FAIL_IF(rc != 0 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0,
            "dtype encodes differently after a round trip (%zu vs %zu bytes)", b1.len, b2.len);
out:
    dtype_free(back);
    mp_doc_free(&doc);
    mp_buf_free(&b1);
    mp_buf_free(&b2);
}

static const char *vlstr_at(const h5a_array *a, uint64_t i)
{
    const char *s;
    memcpy(&s, (const char *)a->data + i * sizeof(char *), sizeof s);
    return s ? s : "";
}

static void arrays_equal(const h5a_array *a, const h5a_array *b)
{
    FAIL_IF(!dtype_equal(a->type, b->type), "array type changed in a round trip");
    FAIL_IF(a->ndim != b->ndim, "rank %d became %d", a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++)
        FAIL_IF(a->dims[i] != b->dims[i], "dim %d: %llu became %llu", i,
                (unsigned long long)a->dims[i], (unsigned long long)b->dims[i]);
    FAIL_IF(a->nbytes != b->nbytes, "nbytes %zu became %zu", a->nbytes, b->nbytes);
    uint64_t n;
    FAIL_IF(!h5a_nelems(a->ndim, a->dims, &n), "parsed array has a bad shape");
    if (a->type->kind == DT_VLSTR) {
        FAIL_IF(a->type->utf8 != b->type->utf8, "string cset changed");
        for (uint64_t i = 0; i < n; i++)
            FAIL_IF(strcmp(vlstr_at(a, i), vlstr_at(b, i)) != 0, "string %llu changed",
                    (unsigned long long)i);
    } else {
        FAIL_IF(n * a->type->itemsize != a->nbytes, "nbytes %zu != %llu * %zu", a->nbytes,
                (unsigned long long)n, a->type->itemsize);
        FAIL_IF(a->nbytes && memcmp(a->data, b->data, a->nbytes) != 0, "array bytes changed");
    }
}

static void array_roundtrip(const h5a_array *a)
{
    mp_buf b = {0};
    mp_doc doc = {0};
    h5a_array back;
    char err[512];
    bool follows = false;

    int rc = h5a_array_encode(&b, a, &follows, err, sizeof err);
    FAIL_IF(rc != 0, "h5a_array_encode failed on a parsed array: %s", err);
    if (follows) mp_put_raw(&b, a->data, a->nbytes); /* what the server sends after it */
    FAIL_IF(b.oom, "out of memory");
    rc = mp_decode(b.data, b.len, &reply_limits, &doc, err, sizeof err);
    FAIL_IF(rc != 0, "h5a_array_encode wrote undecodable MessagePack: %s", err);
    rc = h5a_array_from_node(&doc.nodes[0], &back, err, sizeof err);
    FAIL_IF(rc != 0, "h5a_array_from_node refused what h5a_array_encode wrote: %s", err);
    arrays_equal(a, &back);
    h5a_array_clear(&back);
    mp_doc_free(&doc);
    mp_buf_free(&b);
}

/* Values the parser would meet as "type" or "data" anywhere in the
 * document: bounded, so a large input does not make each run quadratic. */
#define MAX_EXTRA 16

static void explore_doc(const mp_doc *doc)
{
    char err[512];
    unsigned types = 0, datas = 0;
    for (size_t i = 0; i < doc->count && (types < MAX_EXTRA || datas < MAX_EXTRA); i++) {
        const mp_node *n = &doc->nodes[i];
        if (n->type != MP_MAP) continue;
        const mp_node *t = mp_map_get(n, "type");
        if (t && types < MAX_EXTRA) {
            types++;
            dtype *dt = NULL;
            if (dtype_parse_node(t, &dt, err, sizeof err) == 0) {
                dtype_roundtrip(dt);
                dtype_free(dt);
            } else {
                FAIL_IF(dt != NULL, "dtype_parse_node failed but left a type behind");
            }
        }
        const mp_node *d = mp_map_get(n, "data");
        if (d && datas < MAX_EXTRA) {
            datas++;
            h5a_array a;
            if (h5a_array_from_node(d, &a, err, sizeof err) == 0) {
                array_roundtrip(&a);
                dtype_roundtrip(a.type);
            } else {
                FAIL_IF(a.type || a.owned || a.data, "failed h5a_array_from_node left data");
            }
            h5a_array_clear(&a);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0; /* net.c answers a zero-length frame itself */

    /* the request owns its frame (release_input frees it): an exact-size
     * heap copy also lets ASan see any read past the payload */
    h5a_request *req = calloc(1, sizeof *req);
    uint8_t *frame = malloc(size);
    if (!req || !frame) abort();
    memcpy(frame, data, size);
    req->frame = frame;
    req->frame_len = size;

    h5a_request_parse(req, &server_limits);

    FAIL_IF(req->err_code > 0 || req->err_code < H5A_E_INTERNAL, "bad error code %d",
            req->err_code);
    if (req->err_code) {
        FAIL_IF(req->err_msg[0] == '\0', "error %s without a message",
                h5a_strerror_code(req->err_code));
        FAIL_IF(memchr(req->err_msg, '\0', sizeof req->err_msg) == NULL, "unterminated message");
        FAIL_IF(req->err_code == H5A_E_INTERNAL, "INTERNAL from the parser: %s", req->err_msg);
    } else {
        FAIL_IF(req->op == OP_NONE, "parsed without an op");
        FAIL_IF(!req->has_id, "parsed without an id");
        if (req->op != OP_PING) {
            FAIL_IF(!req->path, "op %s parsed without a path", req->op_name);
            FAIL_IF(h5a_path_validate(req->path, strlen(req->path), NULL, 0) != 0,
                    "accepted path '%s' is not valid", req->path);
        }
        bool wants_data = req->op == OP_WRITE || req->op == OP_APPEND || req->op == OP_INSERT ||
                          req->op == OP_WRITE_SLICE || req->op == OP_SET_ATTR;
        FAIL_IF(wants_data != req->has_data, "op %s: has_data %d", req->op_name, req->has_data);
        FAIL_IF(req->op == OP_WRITE_SLICE && !req->sel, "write_slice parsed without a selection");
        FAIL_IF(req->sel && (req->op != OP_READ && req->op != OP_WRITE_SLICE),
                "op %s parsed a selection", req->op_name);
        FAIL_IF(req->sel && (req->sel->n < 0 || req->sel->n > H5A_MAX_SEL),
                "selection of %d items", req->sel->n);
        bool wants_dset = req->op == OP_CREATE_DATASET || req->op == OP_RESIZE;
        FAIL_IF(wants_dset != (req->dset != NULL), "op %s: dset %p", req->op_name,
                (void *)req->dset);
        FAIL_IF(req->op == OP_CREATE_DATASET && !req->dset->type,
                "create_dataset parsed without a dtype");
        bool wants_name = req->op == OP_SET_ATTR || req->op == OP_GET_ATTR ||
                          req->op == OP_DELETE_ATTR;
        FAIL_IF(wants_name != (req->name != NULL), "op %s: name %p", req->op_name,
                (void *)req->name);
        FAIL_IF((req->op == OP_CREATE_LINK) != (req->target != NULL), "op %s: target %p",
                req->op_name, (void *)req->target);
        FAIL_IF((req->op == OP_MOVE) != (req->dest != NULL), "op %s: dest %p", req->op_name,
                (void *)req->dest);
        FAIL_IF(req->dest && h5a_path_validate(req->dest, strlen(req->dest), NULL, 0) != 0,
                "accepted dest '%s' is not valid", req->dest);
        if (req->sel)
            for (int i = 0; i < req->sel->n; i++)
                FAIL_IF(req->sel->item[i].kind == SEL_SLICE && req->sel->item[i].step <= 0,
                        "a slice with step %lld was accepted", (long long)req->sel->item[i].step);
        if (req->has_data) {
            FAIL_IF(!req->data.type, "parsed data without a type");
            array_roundtrip(&req->data);
            dtype_roundtrip(req->data.type);
        }
    }

    if (req->doc.count) explore_doc(&req->doc);

    h5a_request_free(req);
    return 0;
}

/* Two thirds of the mutations change the decoded MessagePack tree (see
 * mp_mutator.h), the rest are libFuzzer's byte mutations. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    mm_rng r = {(uint64_t)seed * 0x9E3779B97F4A7C15ull + 1};
    if (size > max_size) size = max_size; /* -minimize_crash asks for shorter inputs */
    if (mm_below(&r, 3) != 0) {
        size_t n = mm_mutate_payload(data, size, max_size, &r);
        if (n) return n;
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
