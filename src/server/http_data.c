/* /api/data of the h5grove API (http_h5grove.c has the others): one read
 * given to the storage thread, its answer as h5grove's encoders.py writes
 * it -- json (orjson: numbers, NaN as null, generated a piece at a time as
 * the socket drains), bin (tobytes: the read buffer itself goes to the
 * socket) or npy (np.save's header, then the same bytes) -- with
 * utils.py's parse_slice (selection), flatten and dtype=safe
 * (_sanitize_dtype). A response may hold data only while HTTP responses
 * hold under half of max_buffered_bytes (hc_may_hold): else 503. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/http_h5grove.h"
#include "server/net_int.h"

/* ---- /api/data ---- */

/* h5grove's parse_slice: "0, 2:5, ::2" */
int h5g_parse_selection(const char *s, h5a_selection **out, char *err, size_t errlen)
{
    h5a_selection *sel = calloc(1, sizeof *sel);
    if (!sel) return snprintf(err, errlen, "out of memory"), -1;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (sel->n == H5A_MAX_SEL - 1) goto bad;
        h5a_sel_item *it = &sel->item[sel->n++];
        char part[3][64];
        int np = 0;
        size_t start = 0;
        for (size_t i = 0; i <= n; i++)
            if (i == n || p[i] == ':') {
                if (np == 3 || i - start >= sizeof part[0]) goto bad;
                memcpy(part[np], p + start, i - start);
                part[np][i - start] = '\0';
                np++;
                start = i + 1;
            }
        int64_t v[3];
        bool has[3];
        for (int k = 0; k < np; k++) {
            char *q = part[k], *end;
            while (isspace((unsigned char)*q)) q++;
            size_t m = strlen(q);
            while (m && isspace((unsigned char)q[m - 1])) q[--m] = '\0';
            has[k] = m > 0;
            if (!has[k]) continue;
            errno = 0;
            long long x = strtoll(q, &end, 10);
            if (errno || *end) goto bad;
            v[k] = x;
        }
        if (np == 1) {
            if (!has[0]) goto bad;
            it->kind = SEL_INDEX;
            it->start = v[0];
        } else {
            it->kind = SEL_SLICE;
            it->has_start = has[0];
            it->start = has[0] ? v[0] : 0;
            it->has_stop = has[1];
            it->stop = has[1] ? v[1] : 0;
            it->step = np == 3 && has[2] ? v[2] : 1;
        }
        if (!comma) break;
        p = comma + 1;
    }
    *out = sel;
    return 0;
bad:
    free(sel);
    snprintf(err, errlen, "%s is not a valid selection (NumPy's basic indexing: \"0, 2:5, ::2\")", s);
    return -1;
}

static bool numeric(const dtype *t)
{
    return t->kind == DT_BOOL || t->kind == DT_INT || t->kind == DT_UINT || t->kind == DT_FLOAT ||
           t->kind == DT_COMPLEX;
}

static void free_read(http_conn *c, api_state *st)
{
    if (st->held) hc_hold(c, -(int64_t)st->held);
    st->held = 0;
    h5a_request_free(st->read);
    st->read = NULL;
    dtype_free(st->dt);
    st->dt = NULL;
    free(st->inline_copy);
    st->inline_copy = NULL;
}

/* JSON of a numeric or struct array, a piece at a time */
static void gen_json(http_conn *c)
{
    api_state *st = c->api;
    hjson j = {0};
    bool done = jarray_next(&j, &st->ja, HTTP_PIECE);
    if (j.oom) {
        j_free(&j);
        hc_error(c, 500, "out of memory");
        return;
    }
    hc_body(c, j.p, j.len, free, j.p);
    if (done) {
        hc_end(c);
        free_read(c, st);
    }
}

/* float16 widened to float32 (dtype=safe), a piece at a time */
static void gen_half(http_conn *c)
{
    api_state *st = c->api;
    size_t n = (st->nbytes - st->done) / 2;
    if (n > HTTP_PIECE / 4) n = HTTP_PIECE / 4;
    float *out = malloc(n * 4 + 1);
    if (!out) {
        hc_error(c, 500, "out of memory");
        return;
    }
    bool be = st->dt->order == '>';
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = st->data + st->done + 2 * i;
        out[i] = j_half(be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]));
    }
    st->done += n * 2;
    hc_body(c, out, n * 4, free, out);
    if (st->done >= st->nbytes) {
        hc_end(c);
        free_read(c, st);
    }
}

static void swap_bytes(uint8_t *p, size_t nbytes, size_t w)
{
    for (size_t i = 0; i + w <= nbytes; i += w)
        for (size_t a = 0, b = w - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* np.save's header: version 1.0, padded to a multiple of 64 bytes */
static size_t npy_header(char *h, size_t cap, const char *descr, int ndim, const uint64_t *dims)
{
    char shape[1024];
    size_t n = 0;
    n += (size_t)snprintf(shape + n, sizeof shape - n, "(");
    for (int i = 0; i < ndim && n < sizeof shape; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%llu%s", (unsigned long long)dims[i],
                              ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    if (n < sizeof shape) snprintf(shape + n, sizeof shape - n, ")");
    char dict[1200];
    int d = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    size_t total = 10 + (size_t)d + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hl = (size_t)d + pad + 1;
    if (10 + hl > cap || hl > 0xFFFF) return 0;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(hl & 0xFF);
    h[9] = (char)(hl >> 8);
    memcpy(h + 10, dict, (size_t)d);
    memset(h + 10 + d, ' ', pad);
    h[10 + hl - 1] = '\n';
    return 10 + hl;
}

/* The leaves of nested lists, in order, comma-separated. */
static void put_leaves(hjson *j, const mp_node *n, size_t *k)
{
    if (n->type != MP_ARRAY) {
        if ((*k)++) j_lit(j, ",");
        j_from_mp(j, n);
        return;
    }
    const mp_node *x = mp_first_child(n);
    for (uint32_t i = 0; i < n->len; i++, x = mp_next(x)) put_leaves(j, x, k);
}

void h5g_data_answer(http_conn *c, api_state *st, h5a_request *r)
{
    reply rp;
    st->read = r;
    if (h5g_decode(r, &rp)) {
        hc_error(c, 500, "cannot read the engine's reply");
        return;
    }
    if (!rp.result && rp.code == H5A_E_UNSUPPORTED_TYPE && strstr(rp.msg, "null dataspace")) {
        /* h5py.Empty: h5grove's json is null (orjson_default); it has no
         * bytes for bin or npy */
        h5g_reply_free(&rp);
        if (st->format != FMT_JSON || st->safe) {
            hc_error(c, 422, "Unsupported encoding for an empty dataset (h5py.Empty)");
            return;
        }
        hjson j = {0};
        j_lit(&j, "null");
        hc_json(c, 200, &j);
        return;
    }
    if (!rp.result) {
        h5g_fail(c, st, rp.code, rp.msg);
        h5g_reply_free(&rp);
        return;
    }
    const mp_node *res = rp.result;
    const mp_node *nd = res->type == MP_MAP ? h5g_get(res, "nd") : NULL;
    if (!nd) {
        /* variable-length strings: str/bin or nested lists of them */
        if (st->safe || st->format != FMT_JSON) {
            hc_error(c, 422, "Unsupported %s for non-numeric data",
                     st->safe ? "dtype safe" : st->format == FMT_BIN ? "encoding bin" : "encoding npy");
            h5g_reply_free(&rp);
            return;
        }
        hjson j = {0};
        if (st->flatten && res->type == MP_ARRAY) {
            /* np.ravel of the nested lists: the leaves in order */
            j_lit(&j, "[");
            size_t k = 0;
            put_leaves(&j, res, &k);
            j_lit(&j, "]");
        } else if (j_from_mp(&j, res)) {
            j_free(&j);
            h5g_reply_free(&rp);
            hc_error(c, 500, "a value JSON cannot hold");
            return;
        }
        h5g_reply_free(&rp);
        hc_json(c, 200, &j);
        return;
    }
    char err[256];
    const mp_node *type = h5g_get(res, "type"), *shape = h5g_get(res, "shape"), *data = h5g_get(res, "data");
    if (!type || !data || dtype_parse_node(type, &st->dt, err, sizeof err)) {
        h5g_reply_free(&rp);
        hc_error(c, 500, "cannot read the engine's reply: %s", err);
        return;
    }
    st->ndim = 0;
    if (nd->v.b && shape && shape->type == MP_ARRAY) {
        const mp_node *x = mp_first_child(shape);
        for (uint32_t i = 0; i < shape->len && i < H5A_MAX_DIMS; i++, x = mp_next(x))
            st->dims[st->ndim++] = x->v.u;
    }
    uint64_t nel = 1;
    for (int i = 0; i < st->ndim; i++) nel *= st->dims[i];
    /* the bytes: in the read buffer (arrays), or in the reply (scalars) */
    uint8_t *bytes = rp.data ? (uint8_t *)r->reply_data : NULL;
    uint8_t *scalar = NULL;
    if (!bytes && nel == 0) { /* an empty array: no bytes at all */
        static uint8_t none[16];
        bytes = none;
    }
    if (!bytes && nd->v.b) {
        if (!(scalar = malloc(data->len + 1))) { /* an array small enough to be inline */
            h5g_reply_free(&rp);
            hc_error(c, 500, "out of memory");
            return;
        }
        memcpy(scalar, data->v.ptr, data->len);
        bytes = scalar;
        /* not a scalar: streamed as an array from this copy */
    }
    if (!bytes) {
        if (!(scalar = malloc(data->len + 1))) {
            h5g_reply_free(&rp);
            hc_error(c, 500, "out of memory");
            return;
        }
        memcpy(scalar, data->v.ptr, data->len);
        bytes = scalar;
    }
    size_t nbytes = rp.data ? rp.data_len : nel == 0 ? 0 : data->len;
    bool in_read_buffer = rp.data != NULL;
    bool is_scalar = !nd->v.b;
    h5g_reply_free(&rp);
    if (!hc_may_hold(c, nbytes)) {
        /* browsers that do not read their answers hold half the budget
         * already: this one would put writers at risk of waiting */
        free(scalar);
        free_read(c, st);
        hc_error(c, 503,
                 "Service Unavailable: %.1f MiB of data would wait for browsers, over half of "
                 "max_buffered_bytes; try again",
                 (double)nbytes / 1048576.0);
        return;
    }
    const dtype *t = st->dt;
    if ((st->safe || st->format == FMT_NPY) && !numeric(t)) {
        free(scalar);
        hc_error(c, 422, "Unsupported %s for non-numeric content",
                 st->safe ? "dtype safe" : "encoding npy");
        return;
    }
    if (st->flatten && st->ndim > 0) { /* np.ravel; scalars stay scalars */
        st->dims[0] = nel;
        st->ndim = 1;
    }
    st->data = bytes;
    st->nbytes = nbytes;
    /* dtype=safe (h5grove's _sanitize_dtype): float16 -> float32, other
     * big-endian types -> little-endian (swapped in place: the buffer is
     * ours), float128 never occurs here */
    char descr[32];
    dtype_str(t, descr, sizeof descr);
    if (st->safe && t->kind == DT_FLOAT && t->itemsize == 2) {
        st->half_to_single = true;
        snprintf(descr, sizeof descr, "<f4");
    } else if (st->safe && t->order == '>') {
        swap_bytes(bytes, nbytes, t->kind == DT_COMPLEX ? t->itemsize / 2 : t->itemsize);
        descr[0] = '<';
    }
    if (st->format == FMT_JSON) {
        if (is_scalar) {
            hjson j = {0};
            j_elem(&j, t, bytes);
            free(scalar);
            hc_json(c, 200, &j);
            return;
        }
        st->held = nbytes;
        hc_hold(c, (int64_t)nbytes);
        if (scalar) { /* the inline copy is what the stream reads: keep it */
            st->inline_copy = scalar;
            bytes = scalar;
        }
        jarray_init(&st->ja, t, bytes, st->ndim, st->dims);
        hc_start(c, 200, "application/json", -1, NULL);
        hc_stream(c, gen_json, NULL, NULL);
        return;
    }
    size_t out_len = st->half_to_single ? nbytes * 2 : nbytes;
    char hdr[1400];
    size_t hl = 0;
    if (st->format == FMT_NPY) {
        if (!(hl = npy_header(hdr, sizeof hdr, descr, st->ndim, st->dims))) {
            free(scalar);
            hc_error(c, 500, "cannot describe the array in .npy");
            return;
        }
    }
    hc_start(c, 200, "application/octet-stream", (int64_t)(hl + out_len),
             st->format == FMT_NPY ? "Content-Disposition: attachment; filename=\"data.npy\"\r\n"
                                   : NULL);
    if (hl) hc_body(c, hdr, hl, NULL, NULL);
    if (st->half_to_single && scalar && is_scalar) {
        float f = j_half(t->order == '>' ? (uint16_t)(scalar[0] << 8 | scalar[1])
                                         : (uint16_t)(scalar[1] << 8 | scalar[0]));
        free(scalar);
        hc_body(c, &f, sizeof f, NULL, NULL);
        hc_end(c);
        free_read(c, st);
        return;
    }
    if (st->half_to_single) {
        if (scalar) st->inline_copy = scalar, st->data = scalar;
        st->held = nbytes;
        hc_hold(c, (int64_t)nbytes);
        hc_stream(c, gen_half, NULL, NULL);
        return;
    }
    if (scalar) {
        hc_body(c, scalar, nbytes, free, scalar);
    } else if (!in_read_buffer) {
        hc_body(c, bytes, nbytes, NULL, NULL); /* nothing (an empty array) */
    } else {
        /* the read buffer itself goes to the socket; the request is freed
         * once it is written */
        r->reply_data = NULL;
        r->reply_data_len = 0;
        st->read = NULL;
        h5a_request_free(r);
        hc_body(c, bytes, nbytes, h5a_buf_free, bytes);
    }
    hc_end(c);
    free_read(c, st);
}

