/* libFuzzer target: sequences of whole requests through the parser, the
 * validation and a REAL storage engine on a temporary HDF5 file.
 *
 * Input format (see fuzz/README.md, fuzz/make_corpus.py):
 *
 *   byte 0      flags: bit 0  server default compression (use_compression)
 *                      bit 1  group consecutive appends the way storage.c
 *                             does (h5a_engine_can_group, then
 *                             h5a_engine_execute_appends)
 *                      bit 2  a flush commit after every request (an idle server)
 *                      bit 3  read the path before and after every write,
 *                             append and insert, and check the difference
 *                             (off by default: the extra reads change the
 *                             engine's dataset cache, so both ways are fuzzed)
 *   the rest    frame payloads separated by the 4 bytes C1 C1 C1 C1 (0xc1
 *               is the one byte MessagePack never uses as a type byte, so a
 *               separator rarely sits inside a request and survives the
 *               mutations of the bytes around it better than a length
 *               prefix would). An EMPTY frame (two separators in a row) is
 *               not sent: it closes the engine and opens the file again,
 *               so later requests run on what the file really holds.
 *
 * Every input starts on a new, empty file, so a crash reproduces from its
 * input alone. Per request: h5a_request_parse with the server's limits,
 * execution as storage.c does it (input released right after, before the
 * reply is looked at, as the storage thread does), then checks:
 *   - the reply frame: 4-byte BE length = header bytes - 4 + zero-copy bytes,
 *     one well-formed MessagePack map {"id", "ok", "result"|"error"} in that
 *     order, echoing the id, ok matching reply_ok, a known error code with a
 *     str message, never INTERNAL;
 *   - ok results have the documented shapes ({"shape": [...]}, nil, "pong",
 *     a decodable value for read);
 *   - after each successful write, a read of the same path must give back
 *     the same value (type, shape, bytes), modulo the mappings the protocol
 *     documents (h5py's complex-like compounds);
 *   - with flag bit 3: a failed write/append/insert changed nothing; a
 *     successful append/insert (or chain of grouped appends) kept the rows
 *     before the insertion point, put the sent rows there (byte for byte
 *     when no numeric conversion applies) and moved the tail intact.
 * At the end of each input the engine is closed and the file opened again
 * (it must open), and the heap must not grow from one run of the input to
 * the next (a handle the engine forgot to close; see live_bytes). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <sanitizer/allocator_interface.h>

#include "proto/array.h"
#include "proto/dtype.h"
#include "proto/errors.h"
#include "proto/msgpack.h"
#include "server/config.h"
#include "server/engine.h"
#include "server/request.h"
#include "mp_mutator.h"

#define MAX_FRAMES 48
#define GROUP_MAX 64
static const uint8_t SEP[4] = {0xc1, 0xc1, 0xc1, 0xc1};

static const h5a_limits server_limits = {
    .max_message_size = 1ull << 30,
    .mp = {.max_depth = MP_DEFAULT_MAX_DEPTH, .max_nodes = MP_DEFAULT_MAX_NODES},
};
/* A read reply nests one level deeper than any request can (reply map
 * around a 32-d nested list of strings); decode replies as clients do. */
static const mp_limits reply_limits = {.max_depth = 2 * H5A_MAX_DIMS + 2, .max_nodes = 0};

static char tmpdir[256];
static h5a_config cfg;
static h5a_engine *eng;
static bool verbose;
static bool vlen_seen; /* this input moved variable-length strings (see live_bytes) */
/* this input made a soft link: a moved link with a relative target leads
 * somewhere else, so the move oracle stands down */
static bool links_made;
static uint64_t n_inputs, n_requests, n_ok, n_err[32];

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_engine: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) fatal("%s:%d: check failed: %s: %s", __FILE__, __LINE__, #cond, \
                           check_msg(__VA_ARGS__));                                           \
    } while (0)

static const char *check_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *check_msg(const char *fmt, ...)
{
    static char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

static void engine_open(void)
{
    char err[2048];
    if (h5a_engine_open(&eng, &cfg, err, sizeof err) != 0)
        fatal("h5a_engine_open('%s') failed: %s", cfg.file_path, err);
}

static void engine_close(void)
{
    h5a_engine_close(eng);
    eng = NULL;
}

static void cleanup(void)
{
    if (eng) engine_close();
    unlink(cfg.file_path);
    rmdir(tmpdir);
    if (verbose) {
        fprintf(stderr, "fuzz_engine: %llu inputs, %llu requests, %llu ok; errors:",
                (unsigned long long)n_inputs, (unsigned long long)n_requests,
                (unsigned long long)n_ok);
        for (int i = 1; i < 32; i++)
            if (n_err[i]) fprintf(stderr, " %s=%llu", h5a_strerror_code(-i), (unsigned long long)n_err[i]);
        fputc('\n', stderr);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    verbose = getenv("H5A_FUZZ_VERBOSE") != NULL;
    /* tmpfs when there is one: every input creates a file */
    struct stat st;
    const char *base = getenv("H5A_FUZZ_TMPDIR");
    if (!base) base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                          ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/h5a-fuzz-XXXXXX", base);
    if (!mkdtemp(tmpdir)) fatal("mkdtemp(%s): %s", tmpdir, strerror(errno));
    h5a_config_defaults(&cfg);
    /* The limits on the work of one request, scaled down so that one input
     * (up to 48 requests, under ASan) stays far below -timeout: with the
     * server's defaults a single resize may legitimately take ~2 s. The
     * code that enforces them is the same at any size. */
    cfg.max_chunks = 1u << 16;
    cfg.max_op_bytes = 16u << 20;
    snprintf(cfg.file_path, sizeof cfg.file_path, "%s/fuzz.h5", tmpdir);
    atexit(cleanup);
    return 0;
}

/* ---- reply checks ---- */

static const char *known_codes[] = {
    "BAD_REQUEST", "BAD_PATH",      "UNKNOWN_OP",     "PROTOCOL_ERROR",   "TOO_LARGE",
    "NOT_FOUND",   "EXISTS",        "NOT_A_GROUP",    "NOT_A_DATASET",    "TYPE_MISMATCH",
    "SHAPE_MISMATCH", "OUT_OF_RANGE", "UNSUPPORTED_TYPE", "HDF5_ERROR", "SHUTTING_DOWN",
    "INTERNAL"};

static int code_index(const mp_node *n)
{
    for (int i = 0; i < (int)(sizeof known_codes / sizeof known_codes[0]); i++)
        if (n->type == MP_STR && mp_raw_eq(n, known_codes[i])) return i + 1;
    return 0;
}

/* What the harness remembers about a request after its input is released. */
typedef struct {
    h5a_request *req;
    bool has_id;
    uint64_t id;
    h5a_op op;
    int parse_err;
    int ndim; /* data's, for write results */
    uint64_t dims[H5A_MAX_DIMS];
} pending;

static void note(pending *p, h5a_request *r)
{
    memset(p, 0, sizeof *p);
    p->req = r;
    p->has_id = r->has_id;
    p->id = r->id;
    p->op = r->op;
    p->parse_err = r->err_code;
    if (r->has_data) {
        p->ndim = r->data.ndim;
        memcpy(p->dims, r->data.dims, sizeof p->dims);
    }
}

/* exact: the shape written; else, for appends/inserts (any_rank false),
 * at least one axis; create_dataset, resize and write_slice (any_rank)
 * may answer any shape. */
static void check_shape_result(const mp_node *res, const pending *p, bool exact)
{
    bool any_rank = p->op == OP_CREATE_DATASET || p->op == OP_RESIZE || p->op == OP_WRITE_SLICE;
    CHECK(res->type == MP_MAP && res->len == 1, "%s result is not a 1-entry map",
          h5a_op_name(p->op));
    const mp_node *shape = mp_map_get(res, "shape");
    CHECK(shape && shape->type == MP_ARRAY, "%s result has no shape list", h5a_op_name(p->op));
    const mp_node *d = mp_first_child(shape);
    for (uint32_t i = 0; i < shape->len; i++, d = mp_next(d)) CHECK(d->type == MP_UINT, "shape entry %u not uint", i);
    if (exact) {
        CHECK((int)shape->len == p->ndim, "write of rank %d answered rank %u", p->ndim, shape->len);
        d = mp_first_child(shape);
        for (uint32_t i = 0; i < shape->len; i++, d = mp_next(d))
            CHECK(d->v.u == p->dims[i], "write dim %u: sent %llu, answered %llu", i,
                  (unsigned long long)p->dims[i], (unsigned long long)d->v.u);
    } else if (!any_rank) {
        CHECK(shape->len >= 1, "%s answered a scalar shape", h5a_op_name(p->op));
    }
}

/* Checks the reply frame of p->req; returns the decoded reply (caller frees
 * doc and buf) so a read's result can be looked at. */
static void check_reply(const pending *p, mp_doc *doc, uint8_t **bufout, const mp_node **result)
{
    h5a_request *r = p->req;
    const mp_buf *b = &r->reply;
    char err[512];
    *result = NULL;
    *bufout = NULL;
    CHECK(!b->oom, "reply buffer out of memory");
    CHECK(b->len >= 5, "reply frame of %zu bytes", b->len);
    CHECK(r->reply_data_len == 0 || r->reply_data, "reply_data_len without reply_data");
    uint64_t want = (uint64_t)b->len - 4 + r->reply_data_len;
    uint64_t got = (uint64_t)b->data[0] << 24 | (uint64_t)b->data[1] << 16 |
                   (uint64_t)b->data[2] << 8 | b->data[3];
    CHECK(want <= 0xFFFFFFFFull && got == want, "length prefix %llu, frame holds %llu",
          (unsigned long long)got, (unsigned long long)want);
    uint8_t *buf = malloc(want ? want : 1);
    if (!buf) abort();
    memcpy(buf, b->data + 4, b->len - 4);
    if (r->reply_data_len) memcpy(buf + b->len - 4, r->reply_data, r->reply_data_len);
    int rc = mp_decode(buf, want, &reply_limits, doc, err, sizeof err);
    CHECK(rc == 0, "reply is not one MessagePack value: %s", err);
    *bufout = buf;

    const mp_node *root = &doc->nodes[0];
    CHECK(root->type == MP_MAP && root->len == 3, "reply is not a 3-entry map");
    const mp_node *k = mp_first_child(root), *v = mp_next(k);
    CHECK(k->type == MP_STR && mp_raw_eq(k, "id"), "first reply key is not str \"id\"");
    if (p->has_id)
        CHECK(v->type == MP_UINT && v->v.u == p->id, "reply id does not echo %llu",
              (unsigned long long)p->id);
    else
        CHECK(v->type == MP_NIL, "reply id is not nil for a request without id");
    k = mp_next(v), v = mp_next(k);
    CHECK(k->type == MP_STR && mp_raw_eq(k, "ok") && v->type == MP_BOOL, "second key is not ok: bool");
    bool ok = v->v.b;
    CHECK(ok == r->reply_ok, "ok=%d but reply_ok=%d", ok, r->reply_ok);
    k = mp_next(v), v = mp_next(k);
    if (!ok) {
        CHECK(k->type == MP_STR && mp_raw_eq(k, "error"), "third key of a failure is not \"error\"");
        CHECK(r->reply_data_len == 0, "failure with zero-copy bytes");
        CHECK(v->type == MP_MAP && v->len == 2, "error is not a 2-entry map");
        const mp_node *code = mp_map_get(v, "code"), *msg = mp_map_get(v, "message");
        CHECK(code && msg && msg->type == MP_STR && msg->len > 0, "error lacks code/message");
        int ci = code_index(code);
        CHECK(ci > 0, "unknown error code '%.*s'", (int)code->len, (const char *)code->v.ptr);
        if (p->parse_err) CHECK(ci == -p->parse_err, "parse error %s answered as %s",
                                h5a_strerror_code(p->parse_err), known_codes[ci - 1]);
        CHECK(strcmp(known_codes[ci - 1], "INTERNAL") != 0, "INTERNAL error for op %s: %.*s",
              h5a_op_name(p->op), (int)msg->len, (const char *)msg->v.ptr);
        n_err[ci]++;
        if (verbose)
            fprintf(stderr, "  [%s] %s: %.*s\n", h5a_op_name(p->op), known_codes[ci - 1],
                    (int)msg->len, (const char *)msg->v.ptr);
        return;
    }
    n_ok++;
    CHECK(p->parse_err == 0, "a request that failed to parse was answered ok");
    CHECK(k->type == MP_STR && mp_raw_eq(k, "result"), "third key of a success is not \"result\"");
    *result = v;
    switch (p->op) {
    case OP_PING: CHECK(v->type == MP_STR && mp_raw_eq(v, "pong"), "ping did not answer pong"); break;
    case OP_CREATE_GROUP:
    case OP_DELETE: CHECK(v->type == MP_NIL, "%s result is not nil", h5a_op_name(p->op)); break;
    case OP_WRITE: check_shape_result(v, p, true); break;
    case OP_APPEND:
    case OP_INSERT:
    case OP_WRITE_SLICE:
    case OP_CREATE_DATASET:
    case OP_RESIZE: check_shape_result(v, p, false); break;
    case OP_READ: {
        h5a_array a;
        rc = h5a_array_from_node(v, &a, err, sizeof err);
        CHECK(rc == 0, "read result is not a value the protocol can carry back: %s", err);
        if (a.type->kind == DT_VLSTR) vlen_seen = true;
        h5a_array_clear(&a);
        break;
    }
    case OP_SET_ATTR:
    case OP_DELETE_ATTR:
    case OP_CREATE_LINK:
    case OP_MOVE: CHECK(v->type == MP_NIL, "%s result is not nil", h5a_op_name(p->op)); break;
    case OP_GET_ATTR: {
        h5a_array a;
        rc = h5a_array_from_node(v, &a, err, sizeof err);
        CHECK(rc == 0, "get_attr result is not a value the protocol can carry back: %s", err);
        h5a_array_clear(&a);
        break;
    }
    case OP_EXISTS: CHECK(v->type == MP_BOOL, "exists result is not a bool"); break;
    case OP_LIST_ATTRS: CHECK(v->type == MP_ARRAY, "list_attrs result is not an array"); break;
    case OP_LIST:
    case OP_WALK: {
        const mp_node *e = mp_map_get(v, "entries"), *nx = mp_map_get(v, "next");
        CHECK(v->type == MP_MAP && v->len == 2 && e && e->type == MP_ARRAY && nx &&
                  (nx->type == MP_NIL || nx->type == MP_STR),
              "%s result is not {entries, next}", h5a_op_name(p->op));
        const mp_node *x = mp_first_child(e);
        for (uint32_t i = 0; i < e->len; i++, x = mp_next(x)) {
            const mp_node *kind = mp_map_get(x, "kind");
            CHECK(kind && kind->type == MP_STR, "%s entry without a kind", h5a_op_name(p->op));
        }
        break;
    }
    case OP_INFO: {
        const mp_node *kind = mp_map_get(v, "kind");
        CHECK(v->type == MP_MAP && kind && kind->type == MP_STR, "info result has no kind");
        break;
    }
    default: fatal("ok reply for op %d", p->op);
    }
}

/* ---- oracles: what a read gives back after writes, appends, inserts ---- */

static const char *vlstr_at(const h5a_array *a, uint64_t i)
{
    const char *s;
    memcpy(&s, (const char *)a->data + i * sizeof(char *), sizeof s);
    return s ? s : "";
}

/* h5py (and so the server) reads a compound {r, i} of two equal IEEE floats
 * as complex: a struct of that exact form comes back as c8/c16. */
static bool complex_like(const dtype *st, const dtype *cx)
{
    if (st->kind != DT_STRUCT || cx->kind != DT_COMPLEX || st->nfields != 2) return false;
    const dt_field *r = &st->fields[0], *i = &st->fields[1];
    return strcmp(r->name, "r") == 0 && strcmp(i->name, "i") == 0 && r->ndim == 0 &&
           i->ndim == 0 && r->type->kind == DT_FLOAT && dtype_equal(r->type, i->type) &&
           r->offset == 0 && i->offset == r->type->itemsize &&
           st->itemsize == 2 * r->type->itemsize && cx->itemsize == st->itemsize;
}

/* sent and read describe the same stored type: equal, or equal but for
 * {r, i} structs (at any depth) that read back as complex. */
static bool same_stored_type(const dtype *sent, const dtype *read)
{
    if (dtype_equal(sent, read) || complex_like(sent, read)) return true;
    if (sent->kind != DT_STRUCT || read->kind != DT_STRUCT || sent->nfields != read->nfields ||
        sent->itemsize != read->itemsize)
        return false;
    for (size_t i = 0; i < sent->nfields; i++) {
        const dt_field *a = &sent->fields[i], *b = &read->fields[i];
        if (strcmp(a->name, b->name) != 0 || a->offset != b->offset || a->ndim != b->ndim ||
            memcmp(a->dims, b->dims, sizeof a->dims[0] * (size_t)a->ndim) != 0 ||
            !same_stored_type(a->type, b->type))
            return false;
    }
    return true;
}

/* A read through a real read request: the reply buffer and document stay
 * alive with it because the array may point into them. */
typedef struct {
    int code; /* 0 = ok, else index into known_codes (1-based) */
    h5a_array a;
    mp_doc doc;
    uint8_t *buf;
} snapshot;

static uint64_t next_oracle_id = 1ull << 62;

static void snap_free(snapshot *s)
{
    h5a_array_clear(&s->a);
    mp_doc_free(&s->doc);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static void snap_read(const char *path, snapshot *s)
{
    memset(s, 0, sizeof *s);
    mp_buf q = {0};
    mp_put_map_header(&q, 3);
    mp_put_cstr(&q, "id");
    mp_put_uint(&q, next_oracle_id++);
    mp_put_cstr(&q, "op");
    mp_put_cstr(&q, "read");
    mp_put_cstr(&q, "path");
    mp_put_cstr(&q, path);
    if (q.oom) abort();
    h5a_request *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->frame = q.data; /* the request owns it now */
    r->frame_len = q.len;
    h5a_request_parse(r, &server_limits);
    CHECK(r->err_code == 0, "the harness's own read of '%s' did not parse: %s", path, r->err_msg);
    pending p;
    note(&p, r);
    h5a_engine_execute(eng, r);
    h5a_request_release_input(r);
    const mp_node *res;
    check_reply(&p, &s->doc, &s->buf, &res);
    if (res) {
        char err[512];
        CHECK(h5a_array_from_node(res, &s->a, err, sizeof err) == 0, "read of '%s': %s", path, err);
    } else {
        const mp_node *e = mp_map_get(&s->doc.nodes[0], "error");
        s->code = code_index(mp_map_get(e, "code"));
    }
    h5a_request_free(r);
}


/* Elements [ia, ia+n) of a equal elements [ib, ib+n) of b (same type). */
static bool elems_equal(const h5a_array *a, uint64_t ia, const h5a_array *b, uint64_t ib, uint64_t n)
{
    if (a->type->kind == DT_VLSTR) {
        for (uint64_t i = 0; i < n; i++)
            if (strcmp(vlstr_at(a, ia + i), vlstr_at(b, ib + i)) != 0) return false;
        return true;
    }
    size_t es = a->type->itemsize;
    return n == 0 || memcmp((const uint8_t *)a->data + ia * es, (const uint8_t *)b->data + ib * es, n * es) == 0;
}

static void compare_arrays(const char *what, const char *path, const h5a_array *want,
                           const h5a_array *got)
{
    char ws[64] = "", gs[64] = "";
    dtype_str(want->type, ws, sizeof ws);
    dtype_str(got->type, gs, sizeof gs);
    CHECK(same_stored_type(want->type, got->type),
          "%s '%s': expected type %s (kind %d, itemsize %zu), read %s (kind %d, itemsize %zu)", what,
          path, ws, want->type->kind, want->type->itemsize, gs, got->type->kind, got->type->itemsize);
    CHECK(want->ndim == got->ndim, "%s '%s': expected rank %d, read rank %d", what, path,
          want->ndim, got->ndim);
    for (int i = 0; i < want->ndim; i++)
        CHECK(want->dims[i] == got->dims[i], "%s '%s': dim %d expected %llu, read %llu", what, path,
              i, (unsigned long long)want->dims[i], (unsigned long long)got->dims[i]);
    uint64_t n = 0;
    h5a_nelems(want->ndim, want->dims, &n);
    if (want->type->kind == DT_VLSTR) {
        CHECK(want->type->utf8 == got->type->utf8, "%s '%s': string cset changed", what, path);
        for (uint64_t i = 0; i < n; i++)
            CHECK(strcmp(vlstr_at(want, i), vlstr_at(got, i)) == 0, "%s '%s': string %llu changed",
                  what, path, (unsigned long long)i);
        return;
    }
    CHECK(want->nbytes == got->nbytes, "%s '%s': expected %zu bytes, read %zu", what, path,
          want->nbytes, got->nbytes);
    if (want->nbytes && memcmp(want->data, got->data, want->nbytes) != 0) {
        size_t i = 0;
        while (((const uint8_t *)want->data)[i] == ((const uint8_t *)got->data)[i]) i++;
        fatal("%s '%s': bytes read differ from the expected ones, first at byte %zu (%02x, "
              "expected %02x) of %zu (type %s kind %d itemsize %zu)",
              what, path, i, ((const uint8_t *)got->data)[i], ((const uint8_t *)want->data)[i],
              want->nbytes, ws, want->type->kind, want->type->itemsize);
    }
}

/* "On any error nothing changes": the dataset reads as before. */
static void check_unchanged(const char *what, const char *path, const snapshot *pre,
                            const snapshot *post)
{
    CHECK(pre->code == post->code, "failed %s changed '%s': read gave %s before, %s after", what,
          path, pre->code ? known_codes[pre->code - 1] : "ok",
          post->code ? known_codes[post->code - 1] : "ok");
    if (!pre->code) compare_arrays(what, path, &pre->a, &post->a);
}

/* After successful appends/inserts of reqs (all at one path) at row `at` of
 * what pre held: the rows before `at` are as they were, then the new rows
 * (byte for byte when no type conversion happened), then the old tail. */
static void check_grown(const char *path, const snapshot *pre, h5a_request **reqs, size_t n,
                        uint64_t at, const snapshot *post)
{
    const h5a_array *g = &post->a;
    CHECK(post->code == 0, "'%s' grew but cannot be read: %s", path, known_codes[post->code - 1]);
    CHECK(g->ndim >= 1, "'%s' grew but reads as a scalar", path);
    uint64_t row = 1, k = 0;
    for (int i = 1; i < g->ndim; i++) row *= g->dims[i];
    for (size_t j = 0; j < n; j++) {
        const h5a_array *d = &reqs[j]->data;
        k += d->ndim == g->ndim ? d->dims[0] : 1;
    }
    uint64_t len = 0;
    if (pre->code == 0) {
        const h5a_array *p = &pre->a;
        CHECK(p->ndim == g->ndim, "'%s' changed rank from %d to %d", path, p->ndim, g->ndim);
        for (int i = 1; i < g->ndim; i++)
            CHECK(p->dims[i] == g->dims[i], "'%s' row shape changed (axis %d)", path, i);
        CHECK(same_stored_type(p->type, g->type), "'%s' changed type when it grew", path);
        len = p->dims[0];
        CHECK(g->dims[0] == len + k, "'%s' has %llu rows after adding %llu to %llu", path,
              (unsigned long long)g->dims[0], (unsigned long long)k, (unsigned long long)len);
        CHECK(elems_equal(p, 0, g, 0, at * row), "'%s': rows before %llu changed", path,
              (unsigned long long)at);
        CHECK(elems_equal(p, at * row, g, (at + k) * row, (len - at) * row),
              "'%s': the rows after the insertion point (%llu) did not move intact", path,
              (unsigned long long)at);
    } else {
        CHECK(g->dims[0] == k, "new '%s' has %llu rows, %llu were sent", path,
              (unsigned long long)g->dims[0], (unsigned long long)k);
    }
    uint64_t r0 = at;
    for (size_t j = 0; j < n; j++) {
        const h5a_array *d = &reqs[j]->data;
        uint64_t rows = d->ndim == g->ndim ? d->dims[0] : 1;
        if (same_stored_type(d->type, g->type))
            CHECK(elems_equal(d, 0, g, r0 * row, rows * row),
                  "'%s': request %zu's rows are not what was sent (rows %llu..%llu)", path, j,
                  (unsigned long long)r0, (unsigned long long)(r0 + rows));
        r0 += rows;
    }
}

static bool mutates(const h5a_request *r)
{
    return !r->err_code && (r->op == OP_WRITE || r->op == OP_APPEND || r->op == OP_INSERT ||
                            r->op == OP_WRITE_SLICE || r->op == OP_CREATE_DATASET ||
                            r->op == OP_RESIZE);
}

/* Where insert/append r puts its rows in a dataset of len rows. */
static uint64_t insertion_row(const h5a_request *r, const snapshot *pre)
{
    uint64_t len = pre->code == 0 && pre->a.ndim >= 1 ? pre->a.dims[0] : 0;
    if (r->op != OP_INSERT) return len;
    int64_t idx = r->index < 0 ? r->index + (int64_t)len : r->index;
    return (uint64_t)idx; /* it succeeded, so it was in range */
}

static void finish(pending *p)
{
    h5a_request *r = p->req;
    /* as storage.c: the input goes before the reply is sent */
    h5a_request_release_input(r);
    mp_doc doc = {0};
    uint8_t *buf;
    const mp_node *res;
    check_reply(p, &doc, &buf, &res);
    mp_doc_free(&doc);
    free(buf);
    h5a_request_free(r);
}

/* Executes reqs[0..n): one request, or a chain of appends to one path. With
 * `oracle`, mutating requests are bracketed by reads of their path. */
static void execute(h5a_request **reqs, size_t n, bool oracle)
{
    pending p[GROUP_MAX];
    h5a_request *r = reqs[0];
    char *path = mutates(r) ? strdup(r->path) : NULL;
    snapshot pre = {0}, post = {0};
    if (oracle && path) snap_read(path, &pre);
    for (size_t j = 0; j < n; j++) {
        note(&p[j], reqs[j]);
        if (reqs[j]->has_data && reqs[j]->data.type->kind == DT_VLSTR) vlen_seen = true;
    }
    /* move: what was at the source is then, unchanged, at the destination */
    snapshot moved = {0};
    bool moving = oracle && r->op == OP_MOVE && !r->err_code && !links_made;
    if (moving) snap_read(r->path, &moved);
    if (n == 1) h5a_engine_execute(eng, r);
    else h5a_engine_execute_appends(eng, reqs, n);
    if (r->op == OP_CREATE_LINK && r->reply_ok) links_made = true;
    if (moving && r->reply_ok && moved.code == 0) {
        snapshot at = {0};
        snap_read(r->dest, &at);
        check_unchanged("move", r->dest, &moved, &at);
        snap_free(&at);
    }
    snap_free(&moved);
    bool all_ok = true, all_failed = true;
    for (size_t j = 0; j < n; j++) {
        all_ok = all_ok && reqs[j]->reply_ok;
        all_failed = all_failed && !reqs[j]->reply_ok;
    }
    if (path && (oracle || (r->op == OP_WRITE && r->reply_ok))) {
        /* the requests' data is still there: their input is not released */
        snap_read(path, &post);
        if (r->op == OP_WRITE && r->reply_ok) {
            CHECK(post.code == 0, "'%s' was written but reads as %s", path, known_codes[post.code - 1]);
            compare_arrays("written", path, &r->data, &post.a);
        } else if (oracle && all_failed) {
            check_unchanged(h5a_op_name(r->op), path, &pre, &post);
        } else if (oracle && all_ok && (r->op == OP_APPEND || r->op == OP_INSERT) &&
                   (pre.code == 0 || strcmp(known_codes[pre.code - 1], "NOT_FOUND") == 0)) {
            check_grown(path, &pre, reqs, n, insertion_row(r, &pre), &post);
        }
        /* a group that partly failed was executed one by one: in between */
    }
    snap_free(&pre);
    snap_free(&post);
    free(path);
    for (size_t j = 0; j < n; j++) finish(&p[j]);
}

static h5a_request *make_request(const uint8_t *payload, size_t len)
{
    h5a_request *r = calloc(1, sizeof *r);
    uint8_t *frame = malloc(len);
    if (!r || !frame) abort();
    memcpy(frame, payload, len);
    r->frame = frame;
    r->frame_len = len;
    h5a_request_parse(r, &server_limits);
    return r;
}

/* Runs reqs[0..n) in order, grouping appends as storage.c does when asked. */
static void run_batch(h5a_request **reqs, size_t n, uint8_t flags)
{
    size_t i = 0;
    while (i < n) {
        size_t k = 1;
        if (flags & 2)
            while (i + k < n && k < GROUP_MAX && h5a_engine_can_group(reqs[i], reqs[i + k])) k++;
        n_requests += k;
        execute(reqs + i, k, flags & 8);
        if (flags & 4) {
            /* what storage.c does when the queue goes idle */
            char cerr[1024];
            if (h5a_engine_commit(eng, H5A_DUR_FLUSH, cerr, sizeof cerr) != 0)
                fatal("h5a_engine_commit failed: %s", cerr);
        }
        i += k;
    }
}

static void run_input(const uint8_t *data, size_t size)
{
    uint8_t flags = data[0];
    data++, size--;

    cfg.use_compression = flags & 1;
    unlink(cfg.file_path);
    links_made = false;
    engine_open();

    h5a_request *reqs[MAX_FRAMES];
    size_t nreq = 0, frames = 0;
    size_t pos = 0;
    while (pos <= size && frames < MAX_FRAMES) {
        const uint8_t *start = data + pos;
        const uint8_t *sep = size - pos >= sizeof SEP ? memmem(start, size - pos, SEP, sizeof SEP) : NULL;
        size_t len = sep ? (size_t)(sep - start) : size - pos;
        frames++;
        if (len == 0) {
            if (!sep) break; /* a trailing separator: nothing more */
            /* reopen: run what came before, close, open the file again */
            run_batch(reqs, nreq, flags);
            nreq = 0;
            engine_close();
            engine_open();
        } else {
            reqs[nreq++] = make_request(start, len);
        }
        if (!sep) break;
        pos += len + sizeof SEP;
    }
    run_batch(reqs, nreq, flags);

    /* the file must still open after everything */
    engine_close();
    engine_open();
    engine_close();
}

/* ---- leaks LeakSanitizer cannot see ----
 * A forgotten H5Tclose/H5Sclose/H5Pclose/H5Dclose is no leak to LSan: the
 * object stays reachable from libhdf5's identifier registry (and H5close
 * frees it at exit), yet a long-running server grows with it. So, with the
 * engine closed after each input and libhdf5's free lists emptied
 * (H5garbage_collect), the heap must not keep growing: ASan's count of live
 * bytes may rise on the first run of an input (libhdf5 sets up some state
 * lazily, on the first use of a feature) but not when the same input runs
 * again, twice more. (H5Inmembers cannot count the library's own kinds of
 * identifiers; the live-byte count sees every one of them.)
 *
 * Not checked: inputs that move variable-length strings. libhdf5 keeps a
 * type-conversion path for each (file, vlen type, direction) in a global
 * table that it never prunes (H5T_cmp tells vlen types of different open
 * files apart), about 1.7 KiB each; every input here opens new files, so
 * those inputs grow the heap by design. The server opens its one file once,
 * so this does not grow there. */
static size_t live_bytes(void)
{
    H5garbage_collect();
    return __sanitizer_get_current_allocated_bytes();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    n_inputs++;
    size_t b[4];
    vlen_seen = false;
    b[0] = live_bytes();
    run_input(data, size);
    b[1] = live_bytes();
    if (b[1] <= b[0] || vlen_seen) return 0;
    for (int i = 2; i < 4; i++) {
        run_input(data, size);
        b[i] = live_bytes();
        if (b[i] <= b[i - 1]) return 0;
    }
    fatal("heap grows by %zu, %zu, %zu bytes on three runs of the same input, with the "
          "engine closed: something (an HDF5 identifier?) is never released",
          b[1] - b[0], b[2] - b[1], b[3] - b[2]);
}

/* ---- structure-aware mutations: frames, flags, then one request's tree ---- */

typedef struct {
    size_t off, len;
} frame_ref;

/* The frames of data[1..size) exactly as LLVMFuzzerTestOneInput cuts them. */
static size_t split_frames(const uint8_t *data, size_t size, frame_ref *f, size_t maxf)
{
    size_t n = 0, pos = 1;
    while (pos <= size && n < maxf) {
        const uint8_t *start = data + pos;
        const uint8_t *sep = size - pos >= sizeof SEP ? memmem(start, size - pos, SEP, sizeof SEP) : NULL;
        size_t len = sep ? (size_t)(sep - start) : size - pos;
        f[n].off = pos, f[n].len = len, n++;
        if (!sep) break;
        pos += len + sizeof SEP;
    }
    return n;
}

/* data = flags byte + frames[order[0..n)] joined by SEP, when it fits. */
static size_t join_frames(uint8_t *data, size_t max, const uint8_t *src, const frame_ref *f,
                          const size_t *order, size_t n)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += f[order[i]].len + (i ? sizeof SEP : 0);
    if (total > max) return 0;
    uint8_t *tmp = malloc(total);
    if (!tmp) abort();
    tmp[0] = src[0];
    size_t o = 1;
    for (size_t i = 0; i < n; i++) {
        if (i) memcpy(tmp + o, SEP, sizeof SEP), o += sizeof SEP;
        memcpy(tmp + o, src + f[order[i]].off, f[order[i]].len), o += f[order[i]].len;
    }
    memcpy(data, tmp, total);
    free(tmp);
    return total;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    mm_rng r = {(uint64_t)seed * 0x9E3779B97F4A7C15ull + 1};
    if (size > max_size) size = max_size; /* -minimize_crash asks for shorter inputs */
    if (size < 2 || max_size < 2) return LLVMFuzzerMutate(data, size, max_size);
    unsigned pick = (unsigned)mm_below(&r, 16);
    if (pick == 0) { /* flags */
        data[0] ^= (uint8_t)(1u << mm_below(&r, 4));
        return size;
    }
    if (pick <= 3) return LLVMFuzzerMutate(data, size, max_size);

    frame_ref f[MAX_FRAMES + 1];
    size_t order[MAX_FRAMES + 2];
    size_t n = split_frames(data, size, f, MAX_FRAMES);
    if (pick <= 6) { /* frame level: duplicate, drop, swap, add a reopen */
        uint8_t *src = malloc(size);
        if (!src) abort();
        memcpy(src, data, size);
        size_t m = 0, a = mm_below(&r, n), b = mm_below(&r, n);
        for (size_t i = 0; i < n; i++) order[m++] = i;
        size_t out = 0;
        switch (mm_below(&r, 4)) {
        case 0: /* duplicate frame a right after frame b */
            if (m < MAX_FRAMES) {
                memmove(order + b + 2, order + b + 1, (m - b - 1) * sizeof order[0]);
                order[b + 1] = a, m++;
            }
            break;
        case 1: /* drop frame a */
            if (m > 1) memmove(order + a, order + a + 1, (m - a - 1) * sizeof order[0]), m--;
            break;
        case 2: { /* swap a and b */
            size_t t = order[a];
            order[a] = order[b], order[b] = t;
            break;
        }
        default: /* an empty frame (reopen the file) before frame a */
            if (m < MAX_FRAMES) {
                f[n].off = 0, f[n].len = 0;
                memmove(order + a + 1, order + a, (m - a) * sizeof order[0]);
                order[a] = n, m++;
            }
            break;
        }
        out = join_frames(data, max_size, src, f, order, m);
        free(src);
        return out ? out : LLVMFuzzerMutate(data, size, max_size);
    }
    /* one frame's MessagePack tree */
    size_t k = mm_below(&r, n);
    size_t room = max_size - (size - f[k].len);
    uint8_t *fr = malloc(room ? room : 1);
    if (!fr) abort();
    memcpy(fr, data + f[k].off, f[k].len);
    size_t len = mm_mutate_payload(fr, f[k].len, room, &r);
    if (!len) len = LLVMFuzzerMutate(fr, f[k].len, room);
    size_t total = size - f[k].len + len;
    if (total <= max_size && (len < sizeof SEP || !memmem(fr, len, SEP, sizeof SEP))) {
        memmove(data + f[k].off + len, data + f[k].off + f[k].len, size - f[k].off - f[k].len);
        memcpy(data + f[k].off, fr, len);
        free(fr);
        return total;
    }
    free(fr);
    return LLVMFuzzerMutate(data, size, max_size);
}
