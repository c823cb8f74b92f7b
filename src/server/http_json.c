/* JSON text for the HTTP port, written by hand: the server only ever writes
 * JSON (it parses none), the values are few kinds (numbers, strings, lists,
 * maps from the engine's MessagePack), and a large array must be written a
 * piece at a time as the socket drains (jarray), which a document-building
 * library would not do without holding the whole text. Floats follow
 * orjson, which h5grove uses: the shortest text that reads back as the same
 * value of the float's own width, NaN and infinities as null. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "server/http_int.h"

static bool grow(hjson *j, size_t more)
{
    if (j->oom) return false;
    if (j->cap - j->len >= more) return true;
    size_t cap = j->cap ? j->cap * 2 : 256;
    while (cap - j->len < more) cap *= 2;
    char *p = realloc(j->p, cap);
    if (!p) {
        j->oom = true;
        return false;
    }
    j->p = p;
    j->cap = cap;
    return true;
}

void j_raw(hjson *j, const char *s, size_t n)
{
    if (!grow(j, n)) return;
    memcpy(j->p + j->len, s, n);
    j->len += n;
}

void j_lit(hjson *j, const char *s)
{
    j_raw(j, s, strlen(s));
}

void j_free(hjson *j)
{
    free(j->p);
    j->p = NULL;
    j->len = j->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    size_t k = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (k == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (k == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return k;
}

void j_str(hjson *j, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!grow(j, n + 2)) return;
    j->p[j->len++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            j_raw(j, e, 2);
            i++;
        } else if (ch < 0x20) {
            char e[8];
            int k = ch == '\n' ? snprintf(e, sizeof e, "\\n")
                    : ch == '\t' ? snprintf(e, sizeof e, "\\t")
                    : ch == '\r' ? snprintf(e, sizeof e, "\\r")
                                 : snprintf(e, sizeof e, "\\u%04x", ch);
            j_raw(j, e, (size_t)k);
            i++;
        } else {
            size_t k = utf8_len(s + i, n - i);
            if (k) j_raw(j, (const char *)s + i, k);
            else j_raw(j, "\xEF\xBF\xBD", 3); /* not UTF-8: U+FFFD, as errors="replace" */
            i += k ? k : 1;
        }
    }
    j_raw(j, "\"", 1);
}

void j_cstr(hjson *j, const char *s)
{
    j_str(j, s, strlen(s));
}

void j_int(hjson *j, int64_t v)
{
    char b[24];
    int k = snprintf(b, sizeof b, "%lld", (long long)v);
    j_raw(j, b, (size_t)k);
}

void j_uint(hjson *j, uint64_t v)
{
    char b[24];
    int k = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    j_raw(j, b, (size_t)k);
}

float j_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, f;
    if (exp == 0) {
        if (man == 0) f = sign;
        else { /* subnormal */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            f = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3FF) << 13;
        }
    } else if (exp == 31) {
        f = sign | 0x7F800000 | man << 13;
    } else {
        f = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float out;
    memcpy(&out, &f, sizeof out);
    return out;
}

void j_float(hjson *j, double v, int bits)
{
    char b[40];
    if (!isfinite(v)) {
        j_raw(j, "null", 4);
        return;
    }
    int k = 0;
    if (bits == 64) {
        /* any text that reads back exactly is the same double once parsed */
        for (int p = 15; p <= 17; p++) {
            k = snprintf(b, sizeof b, "%.*g", p, v);
            if (strtod(b, NULL) == v) break;
        }
    } else {
        /* shortest for the float's own width: a longer text would parse to
         * another double than orjson's */
        float f = (float)v;
        for (int p = 1; p <= 9; p++) {
            k = snprintf(b, sizeof b, "%.*g", p, (double)f);
            if (strtof(b, NULL) == f) break;
        }
    }
    /* orjson writes 1.0, not 1 */
    if (!strpbrk(b, ".eEn")) {
        b[k++] = '.';
        b[k++] = '0';
        b[k] = '\0';
    }
    j_raw(j, b, (size_t)k);
}

/* ---- elements ---- */

static uint64_t load_u(const uint8_t *p, size_t n, bool be)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

static double load_f(const uint8_t *p, size_t n, bool be)
{
    uint64_t u = load_u(p, n, be);
    if (n == 2) return j_half((uint16_t)u);
    if (n == 4) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void j_elem_sub(hjson *j, const dtype *t, const uint8_t *p, int ndim, const uint64_t *dims)
{
    if (ndim == 0) {
        j_elem(j, t, p);
        return;
    }
    size_t inner = t->itemsize;
    for (int k = 1; k < ndim; k++) inner *= dims[k];
    j_raw(j, "[", 1);
    for (uint64_t i = 0; i < dims[0]; i++) {
        if (i) j_raw(j, ",", 1);
        j_elem_sub(j, t, p + i * inner, ndim - 1, dims + 1);
    }
    j_raw(j, "]", 1);
}

void j_elem(hjson *j, const dtype *t, const uint8_t *p)
{
    bool be = t->order == '>';
    switch (t->kind) {
    case DT_BOOL: j_lit(j, p[0] ? "true" : "false"); break;
    case DT_INT: {
        uint64_t u = load_u(p, t->itemsize, be);
        int sh = 64 - 8 * (int)t->itemsize;
        j_int(j, sh ? (int64_t)(u << sh) >> sh : (int64_t)u);
        break;
    }
    case DT_UINT: j_uint(j, load_u(p, t->itemsize, be)); break;
    case DT_FLOAT: j_float(j, load_f(p, t->itemsize, be), (int)t->itemsize * 8); break;
    case DT_COMPLEX: {
        size_t h = t->itemsize / 2;
        j_raw(j, "[", 1);
        j_float(j, load_f(p, h, be), (int)h * 8);
        j_raw(j, ",", 1);
        j_float(j, load_f(p + h, h, be), (int)h * 8);
        j_raw(j, "]", 1);
        break;
    }
    case DT_BYTES:
    case DT_VOID: {
        size_t n = t->itemsize;
        if (t->kind == DT_BYTES)
            while (n && p[n - 1] == 0) n--; /* numpy's bytes_ drops trailing NULs */
        j_str(j, (const char *)p, n);
        break;
    }
    case DT_STRUCT:
        j_raw(j, "[", 1);
        for (size_t f = 0; f < t->nfields; f++) {
            const dt_field *fl = &t->fields[f];
            if (f) j_raw(j, ",", 1);
            j_elem_sub(j, fl->type, p + fl->offset, fl->ndim, fl->dims);
        }
        j_raw(j, "]", 1);
        break;
    case DT_VLSTR: {
        const char *s = *(const char *const *)p;
        if (s) j_cstr(j, s);
        else j_raw(j, "\"\"", 2);
        break;
    }
    }
}

/* ---- arrays a piece at a time ---- */

void jarray_init(jarray *a, const dtype *t, const uint8_t *data, int ndim, const uint64_t *dims)
{
    memset(a, 0, sizeof *a);
    a->t = t;
    a->data = data;
    a->ndim = ndim;
    a->n = 1;
    for (int i = 0; i < ndim; i++) a->n *= (a->dims[i] = dims[i]);
}

bool jarray_next(hjson *j, jarray *a, size_t budget)
{
    size_t start = j->len;
    if (a->n == 0) { /* nested empty lists: [] for (0,), [[], []] for (2, 0) */
        int lead = 0;
        while (lead < a->ndim && a->dims[lead]) lead++;
        uint64_t outer = 1;
        for (int k = 0; k < lead; k++) outer *= a->dims[k];
        if (lead == 0) {
            j_lit(j, "[]");
            return true;
        }
        /* written whole: as long as the leading axes' product */
        for (int k = 0; k < lead; k++) j_raw(j, "[", 1);
        for (uint64_t i = 0; i < outer; i++) {
            if (i) {
                int closes = 0;
                uint64_t P = 1;
                for (int k = lead - 1; k >= 1; k--) {
                    P *= a->dims[k];
                    if (i % P == 0) closes++;
                }
                for (int k = 0; k < closes; k++) j_raw(j, "]", 1);
                j_raw(j, ",", 1);
                for (int k = 0; k < closes; k++) j_raw(j, "[", 1);
            }
            j_lit(j, "[]");
        }
        for (int k = 0; k < lead; k++) j_raw(j, "]", 1);
        return true;
    }
    if (!a->started) {
        for (int k = 0; k < a->ndim; k++) j_raw(j, "[", 1);
        a->started = true;
    }
    size_t sz = a->t->itemsize;
    while (a->i < a->n && j->len - start < budget && !j->oom) {
        if (a->i) {
            int closes = 0;
            uint64_t P = 1;
            for (int k = a->ndim - 1; k >= 1; k--) {
                P *= a->dims[k];
                if (a->i % P == 0) closes++;
                else break;
            }
            for (int k = 0; k < closes; k++) j_raw(j, "]", 1);
            j_raw(j, ",", 1);
            for (int k = 0; k < closes; k++) j_raw(j, "[", 1);
        }
        j_elem(j, a->t, a->data + a->i * sz);
        a->i++;
    }
    if (a->i < a->n) return false;
    for (int k = 0; k < a->ndim; k++) j_raw(j, "]", 1);
    return true;
}

/* ---- MessagePack values ---- */

static const mp_node *bin_key(const mp_node *map, const char *key)
{
    const mp_node *k = mp_first_child(map);
    for (uint32_t i = 0; i < map->len; i++, k = mp_next(mp_next(k)))
        if (mp_is_raw(k) && mp_raw_eq(k, key)) return mp_next(k);
    return NULL;
}

int j_from_mp(hjson *j, const mp_node *n)
{
    switch (n->type) {
    case MP_NIL: j_lit(j, "null"); return 0;
    case MP_BOOL: j_lit(j, n->v.b ? "true" : "false"); return 0;
    case MP_INT: j_int(j, n->v.i); return 0;
    case MP_UINT: j_uint(j, n->v.u); return 0;
    case MP_FLOAT: j_float(j, n->v.f, 64); return 0;
    case MP_STR:
    case MP_BIN: j_str(j, (const char *)n->v.ptr, n->len); return 0;
    case MP_ARRAY: {
        j_raw(j, "[", 1);
        const mp_node *c = mp_first_child(n);
        for (uint32_t i = 0; i < n->len; i++, c = mp_next(c)) {
            if (i) j_raw(j, ",", 1);
            if (j_from_mp(j, c)) return -1;
        }
        j_raw(j, "]", 1);
        return 0;
    }
    case MP_MAP: {
        const mp_node *nd = bin_key(n, "nd");
        if (nd && nd->type == MP_BOOL && bin_key(n, "data")) { /* a msgpack-numpy value */
            h5a_array a;
            char err[256];
            if (h5a_array_from_node(n, &a, err, sizeof err)) return -1;
            if (a.ndim == 0) j_elem(j, a.type, a.data);
            else j_elem_sub(j, a.type, a.data, a.ndim, a.dims);
            h5a_array_clear(&a);
            return 0;
        }
        j_raw(j, "{", 1);
        const mp_node *k = mp_first_child(n);
        for (uint32_t i = 0; i < n->len; i++, k = mp_next(mp_next(k))) {
            if (i) j_raw(j, ", ", 2);
            if (!mp_is_raw(k)) return -1;
            j_str(j, (const char *)k->v.ptr, k->len);
            j_raw(j, ": ", 2);
            if (j_from_mp(j, mp_next(k))) return -1;
        }
        j_raw(j, "}", 1);
        return 0;
    }
    default: return -1;
    }
}
