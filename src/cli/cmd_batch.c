/* The batch command: requests read from a file (or standard input), one
 * JSON object per line, sent as one `batch` request (hdf5a_batch_*), so
 * that they are applied all or nothing. Holds the small JSON-to-MessagePack
 * converter it needs (objects, arrays, strings, numbers, true, false,
 * null): the requests are the protocol's maps, written as JSON. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cli/cli.h"

#define JSON_DEPTH 32

/* MessagePack out (the library keeps its encoder to itself). */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    bool oom;
} mp_buf;

static void mp_buf_free(mp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void mp_put_raw(mp_buf *b, const void *p, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_be(mp_buf *b, unsigned char tag, uint64_t v, int bytes)
{
    unsigned char t[9];
    t[0] = tag;
    for (int i = 0; i < bytes; i++) t[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    mp_put_raw(b, t, (size_t)bytes + 1);
}

static void mp_put_nil(mp_buf *b) { mp_put_raw(b, "\xc0", 1); }
static void mp_put_bool(mp_buf *b, bool v) { mp_put_raw(b, v ? "\xc3" : "\xc2", 1); }

static void mp_put_uint(mp_buf *b, uint64_t v)
{
    if (v < 128) {
        unsigned char c = (unsigned char)v;
        mp_put_raw(b, &c, 1);
    } else put_be(b, 0xcf, v, 8);
}

static void mp_put_int(mp_buf *b, int64_t v)
{
    if (v >= 0) mp_put_uint(b, (uint64_t)v);
    else put_be(b, 0xd3, (uint64_t)v, 8);
}

static void mp_put_double(mp_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_be(b, 0xcb, u, 8);
}

static void mp_put_str(mp_buf *b, const char *s, size_t n)
{
    put_be(b, 0xdb, n, 4);
    mp_put_raw(b, s, n);
}

static void mp_put_array_header(mp_buf *b, uint32_t n) { put_be(b, 0xdd, n, 4); }
static void mp_put_map_header(mp_buf *b, uint32_t n) { put_be(b, 0xdf, n, 4); }

typedef struct {
    const char *p, *end;
    mp_buf *out;
    char err[160];
} jp;

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int jfail(jp *j, const char *what)
{
    if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s", what);
    return -1;
}

static void put_utf8(mp_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    mp_put_raw(b, u, n);
}

static int hex4(jp *j, unsigned *out)
{
    if (j->end - j->p < 4) return jfail(j, "a cut \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99);
        if (v > 0xFFFF) return jfail(j, "a bad \\u escape");
    }
    *out = v;
    return 0;
}

static int string(jp *j)
{
    j->p++; /* the quote */
    mp_buf s = {0};
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if ((unsigned char)c < 0x20) return mp_buf_free(&s), jfail(j, "a control character in a string");
        if (c != '\\') {
            mp_put_raw(&s, &c, 1);
            continue;
        }
        if (j->p >= j->end) break;
        c = *j->p++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = strchr(from, c);
        if (c && k) {
            mp_put_raw(&s, &to[k - from], 1);
        } else if (c == 'u') {
            unsigned cp, lo;
            if (hex4(j, &cp)) return mp_buf_free(&s), -1;
            if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u') {
                j->p += 2;
                if (hex4(j, &lo)) return mp_buf_free(&s), -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(&s, cp);
        } else {
            return mp_buf_free(&s), jfail(j, "a bad escape in a string");
        }
    }
    if (j->p >= j->end) return mp_buf_free(&s), jfail(j, "a string without its closing quote");
    j->p++;
    mp_put_str(j->out, (const char *)s.data, s.len);
    mp_buf_free(&s);
    return 0;
}

static int number(jp *j)
{
    char buf[64];
    size_t n = 0;
    bool real = false;
    while (j->p < j->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", *j->p)) {
        if (strchr(".eE", *j->p)) real = true;
        buf[n++] = *j->p++;
    }
    buf[n] = '\0';
    char *e;
    errno = 0;
    if (!real && buf[0] == '-') {
        long long v = strtoll(buf, &e, 10);
        if (*e || errno || n == 1) return jfail(j, "a bad number");
        mp_put_int(j->out, v);
    } else if (!real) {
        unsigned long long v = strtoull(buf, &e, 10);
        if (*e || errno || !n) return jfail(j, "a bad number");
        mp_put_uint(j->out, v);
    } else {
        double v = strtod(buf, &e);
        if (*e || !isfinite(v)) return jfail(j, "a bad number");
        mp_put_double(j->out, v);
    }
    return 0;
}

static int value(jp *j, int depth);

/* An array or an object: its items counted, written after its header. */
static int container(jp *j, int depth, bool object)
{
    char close = object ? '}' : ']';
    j->p++;
    mp_buf *outer = j->out;
    mp_buf items = {0};
    j->out = &items;
    uint32_t n = 0;
    int rc = 0;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
    } else {
        for (;;) {
            ws(j);
            if (object) {
                if (j->p >= j->end || *j->p != '"') { rc = jfail(j, "an object key must be a string"); break; }
                if ((rc = string(j))) break;
                ws(j);
                if (j->p >= j->end || *j->p++ != ':') { rc = jfail(j, "':' expected after a key"); break; }
            }
            if ((rc = value(j, depth + 1))) break;
            n++;
            ws(j);
            if (j->p < j->end && *j->p == ',') { j->p++; continue; }
            if (j->p < j->end && *j->p == close) { j->p++; break; }
            rc = jfail(j, object ? "',' or '}' expected" : "',' or ']' expected");
            break;
        }
    }
    j->out = outer;
    if (!rc) {
        if (object) mp_put_map_header(outer, n);
        else mp_put_array_header(outer, n);
        mp_put_raw(outer, items.data, items.len);
    }
    mp_buf_free(&items);
    return rc;
}

static int value(jp *j, int depth)
{
    ws(j);
    if (depth > JSON_DEPTH) return jfail(j, "nested too deep");
    if (j->p >= j->end) return jfail(j, "a value expected");
    char c = *j->p;
    if (c == '{' || c == '[') return container(j, depth, c == '{');
    if (c == '"') return string(j);
    static const struct { const char *w; int kind; } words[] = {{"true", 1}, {"false", 0}, {"null", 2}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].w);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i].w, n) == 0) {
            j->p += n;
            if (words[i].kind == 2) mp_put_nil(j->out);
            else mp_put_bool(j->out, words[i].kind);
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(j);
    return jfail(j, "not JSON");
}

/* One line's JSON object into out (MessagePack). */
static int json_line(const char *s, size_t n, mp_buf *out, char *err, size_t errlen)
{
    jp j = {s, s + n, out, ""};
    ws(&j);
    if (j.p >= j.end || *j.p != '{') {
        snprintf(err, errlen, "a request must be a JSON object");
        return -1;
    }
    if (value(&j, 0) == 0) {
        ws(&j);
        if (j.p == j.end && !out->oom) return 0;
        jfail(&j, out->oom ? "out of memory" : "text after the object");
    }
    snprintf(err, errlen, "%s at column %zu", j.err, (size_t)(j.p - s) + 1);
    return -1;
}

int prepare_batch(cli_args *a)
{
    const char *name = a->npos ? a->pos[0] : "-";
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
    if (!f) {
        cli_msg("cannot open %s: %s", name, strerror(errno));
        return EXIT_FILE;
    }
    if (!(a->batch = hdf5a_batch_new())) {
        if (f != stdin) fclose(f);
        cli_msg("out of memory");
        return EXIT_FILE;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    mp_buf m = {0};
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)n && strchr(" \t\r\n", line[k])) k++;
        if (k == (size_t)n || line[k] == '#') continue; /* blank or a comment */
        char why[256];
        m.len = 0;
        if (json_line(line, (size_t)n, &m, why, sizeof why)) {
            cli_msg("%s line %ld: %s", strcmp(name, "-") ? name : "standard input", lineno, why);
            rc = EXIT_FILE;
            break;
        }
        if (hdf5a_batch_add_raw(a->batch, m.data, m.len)) {
            cli_msg("%s line %ld: %s", name, lineno, hdf5a_batch_errstr(a->batch));
            rc = EXIT_FILE;
            break;
        }
    }
    free(line);
    mp_buf_free(&m);
    if (f != stdin) fclose(f);
    if (!rc && hdf5a_batch_count(a->batch) == 0) {
        cli_msg("%s holds no request (one JSON object per line)", name);
        rc = EXIT_FILE;
    }
    return rc;
}

int cmd_batch(hdf5a_client *c, const cli_args *a)
{
    long failed = -1;
    int rc = hdf5a_batch_send(c, a->batch, &failed);
    if (rc) return cli_lib_error(c, rc, 0);
    size_t n = hdf5a_batch_count(a->batch);
    printf("batch: %zu op%s applied\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        int nd = 0;
        uint64_t sh[32];
        if (hdf5a_batch_result_shape(a->batch, i, &nd, sh) || nd == 0) continue;
        printf("  %zu: shape (", i);
        for (int d = 0; d < nd; d++) printf("%s%llu", d ? ", " : "", (unsigned long long)sh[d]);
        printf("%s)\n", nd == 1 ? "," : "");
    }
    return EXIT_OK;
}
