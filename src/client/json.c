/* Structured dtypes cross the C API as the JSON text of numpy's descr list
 * ([["a","<i4"],["b","<f8",[3]]]) and the wire as the same list in
 * MessagePack. Only that subset of JSON is needed: arrays, strings and
 * non-negative integers. */
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "proto/errors.h"

/* Deeper than any descr the server accepts (32 nested structs, two JSON
 * arrays each), shallow enough to keep the recursion harmless. */
#define MAX_DEPTH 80

typedef struct jparse {
    const char *s;
    size_t pos;
    mp_buf *out;
    char *err;
    size_t errlen;
} jparse;

static int fail(jparse *p, const char *what)
{
    return h5a_fail(p->err, p->errlen, HDF5A_EINVAL, "dtype JSON at offset %zu: %s", p->pos,
                    what);
}

static void skip_ws(jparse *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static int hex4(jparse *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return fail(p, "bad \\u escape");
        *v = *v << 4 | d;
    }
    p->pos += 4;
    return 0;
}

static void put_utf8(mp_buf *b, unsigned cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    mp_put_raw(b, u, n);
}

/* The decoded bytes go to a scratch buffer first: a MessagePack str header
 * needs the length up front. */
static int parse_string(jparse *p)
{
    mp_buf text = {0};
    int rc = 0;
    p->pos++; /* the opening quote */
    for (;;) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c == '\0') {
            rc = fail(p, "unterminated string");
            goto out;
        }
        if (c < 0x20) {
            rc = fail(p, "control character in a string");
            goto out;
        }
        if (c != '\\') {
            mp_put_raw(&text, &c, 1);
            p->pos++;
            continue;
        }
        char e = p->s[++p->pos];
        p->pos++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            mp_put_raw(&text, &to[k - from], 1);
            continue;
        }
        if (e != 'u') {
            p->pos--;
            rc = fail(p, "bad escape in a string");
            goto out;
        }
        unsigned cp, lo;
        if ((rc = hex4(p, &cp)))
            goto out;
        if (cp >= 0xd800 && cp < 0xdc00) {
            /* a UTF-16 surrogate pair spells one code point above U+FFFF */
            if (p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                rc = fail(p, "lone UTF-16 surrogate");
                goto out;
            }
            p->pos += 2;
            if ((rc = hex4(p, &lo)))
                goto out;
            if (lo < 0xdc00 || lo > 0xdfff) {
                rc = fail(p, "bad UTF-16 surrogate pair");
                goto out;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            rc = fail(p, "lone UTF-16 surrogate");
            goto out;
        }
        if (cp == 0) {
            rc = fail(p, "NUL character in a string");
            goto out;
        }
        put_utf8(&text, cp);
    }
    mp_put_str(p->out, (const char *)text.data, text.len);
out:
    mp_buf_free(&text);
    return rc;
}

static int parse_value(jparse *p, int depth);

static int parse_array(jparse *p, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(p, "nested too deeply");
    p->pos++;
    /* array32 with the count patched in at the end; MessagePack allows the
     * longer form and this buffer is only decoded here */
    size_t at = p->out->len;
    mp_put_raw(p->out, "\xdd\0\0\0\0", 5);
    uint32_t count = 0;
    skip_ws(p);
    if (p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        int rc = parse_value(p, depth + 1);
        if (rc)
            return rc;
        count++;
        skip_ws(p);
        char c = p->s[p->pos];
        if (c == ']') {
            p->pos++;
            break;
        }
        if (c != ',')
            return fail(p, "expected ',' or ']'");
        p->pos++;
    }
    if (!p->out->oom) {
        p->out->data[at + 1] = (uint8_t)(count >> 24);
        p->out->data[at + 2] = (uint8_t)(count >> 16);
        p->out->data[at + 3] = (uint8_t)(count >> 8);
        p->out->data[at + 4] = (uint8_t)count;
    }
    return 0;
}

static int parse_value(jparse *p, int depth)
{
    skip_ws(p);
    char c = p->s[p->pos];
    if (c == '[')
        return parse_array(p, depth);
    if (c == '"')
        return parse_string(p);
    if (c >= '0' && c <= '9') {
        uint64_t v = 0;
        if (c == '0' && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
            return fail(p, "leading zero in a number");
        while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            unsigned d = (unsigned)(p->s[p->pos] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return fail(p, "number too large");
            v = v * 10 + d;
            p->pos++;
        }
        if (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E')
            return fail(p, "only non-negative integers are allowed");
        mp_put_uint(p->out, v);
        return 0;
    }
    if (c == '\0')
        return fail(p, "unexpected end");
    return fail(p, "expected '[', a string or a non-negative integer");
}

int h5c_json_to_msgpack(const char *json, mp_buf *out, char *err, size_t errlen)
{
    jparse p = {json, 0, out, err, errlen};
    skip_ws(&p);
    if (json[p.pos] != '[')
        return fail(&p, "a descr must be a JSON array");
    int rc = parse_value(&p, 0);
    if (rc)
        return rc;
    skip_ws(&p);
    if (json[p.pos] != '\0')
        return fail(&p, "trailing characters");
    if (out->oom)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    return 0;
}

/* ---- the other way ---- */

static void put_text(mp_buf *b, const char *s) { mp_put_raw(b, s, strlen(s)); }

static void put_json_string(mp_buf *b, const uint8_t *s, size_t n)
{
    put_text(b, "\"");
    for (size_t i = 0; i < n; i++) {
        char esc[8];
        if (s[i] == '"' || s[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)s[i];
            mp_put_raw(b, esc, 2);
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", s[i]);
            put_text(b, esc);
        } else {
            mp_put_raw(b, &s[i], 1); /* UTF-8 passes through */
        }
    }
    put_text(b, "\"");
}

static int put_json(mp_buf *b, const mp_node *n, char *err, size_t errlen)
{
    char num[32];
    switch (n->type) {
    case MP_ARRAY: {
        put_text(b, "[");
        const mp_node *c = mp_first_child(n);
        for (uint32_t i = 0; i < n->len; i++, c = mp_next(c)) {
            if (i)
                put_text(b, ",");
            int rc = put_json(b, c, err, errlen);
            if (rc)
                return rc;
        }
        put_text(b, "]");
        return 0;
    }
    case MP_STR:
    case MP_BIN: put_json_string(b, n->v.ptr, n->len); return 0;
    case MP_UINT:
        snprintf(num, sizeof num, "%llu", (unsigned long long)n->v.u);
        put_text(b, num);
        return 0;
    default:
        return h5a_fail(err, errlen, HDF5A_EREPLY,
                        "reply's structured dtype holds something other than lists, strings "
                        "and non-negative ints");
    }
}

int h5c_msgpack_to_json(const mp_node *n, mp_buf *out, char *err, size_t errlen)
{
    if (!n)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply's array has no dtype");
    int rc = put_json(out, n, err, errlen);
    mp_put_raw(out, "", 1);
    if (!rc && out->oom)
        rc = h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    return rc;
}
