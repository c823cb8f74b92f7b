/* Reading and writing .npy files (npy.h). */
#include "cli/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/strbuf.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define ARRAY_ALIGN 64
/* numpy leaves room after the shape so the header can be rewritten in
 * place when an array grows; we do the same so our files match numpy's */
#define GROWTH_AXIS_MAX_DIGITS 21

static int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void npy_free(npy_array *a)
{
    np_type_free(a->dt);
    free(a->dtype_str);
    free(a->data);
    free(a->strings);
    memset(a, 0, sizeof *a);
}

/* Reads exactly n bytes; returns bytes read (short only at EOF) or -1. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        ssize_t r = read(fd, (char *)buf + got, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static uint32_t ucs4_at(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static size_t utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

static char *utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* 'U' has no HDF5 type; like the Python client, send it as variable-length
 * UTF-8 strings. numpy pads with NULs, so trailing NULs are not content. */
static int unicode_to_str(npy_array *a, const char *path, char *err, size_t errlen)
{
    /* strings travel as nested MessagePack lists, and an empty list carries
     * neither shape nor type: the server would store float64 of shape (0,) */
    if (a->count == 0)
        return errf(err, errlen,
                    "%s: an empty unicode ('U') array cannot be stored faithfully (the protocol "
                    "sends strings as nested lists; an empty one arrives as float64, shape (0,))",
                    path);
    size_t nchars = a->dt->size / 4;
    int big = a->dt->order == '>';
    const unsigned char *src = a->data;
    size_t total = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        const unsigned char *e = src + i * a->dt->size;
        size_t len = nchars;
        while (len && ucs4_at(e + 4 * (len - 1), big) == 0) len--;
        for (size_t j = 0; j < len; j++) {
            uint32_t cp = ucs4_at(e + 4 * j, big);
            if (cp == 0)
                return errf(err, errlen,
                            "%s: element %llu holds a NUL character inside the string, which "
                            "variable-length HDF5 strings cannot store",
                            path, (unsigned long long)i);
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return errf(err, errlen, "%s: element %llu holds an invalid code point 0x%X", path,
                            (unsigned long long)i, (unsigned)cp);
            total += utf8_len(cp);
        }
        total += 1;
    }
    char *strings = malloc(total ? total : 1);
    char **ptrs = malloc(a->count ? a->count * sizeof *ptrs : 1);
    if (!strings || !ptrs) {
        free(strings);
        free(ptrs);
        return errf(err, errlen, "%s: out of memory converting unicode strings", path);
    }
    char *o = strings;
    for (uint64_t i = 0; i < a->count; i++) {
        const unsigned char *e = src + i * a->dt->size;
        size_t len = nchars;
        while (len && ucs4_at(e + 4 * (len - 1), big) == 0) len--;
        ptrs[i] = o;
        for (size_t j = 0; j < len; j++) o = utf8_put(o, ucs4_at(e + 4 * j, big));
        *o++ = '\0';
    }
    free(a->data);
    a->data = ptrs;
    a->strings = strings;
    a->nbytes = a->count * sizeof *ptrs;
    free(a->dtype_str);
    a->dtype_str = strdup("str");
    if (!a->dtype_str) return errf(err, errlen, "out of memory");
    return 0;
}

/* numpy stores fortran_order arrays with the first axis varying fastest;
 * the library (and HDF5) want C order, so copy element by element. */
static int fortran_to_c(npy_array *a, char *err, size_t errlen)
{
    if (a->ndim < 2 || a->count < 2) return 0;
    size_t isz = a->dt->size;
    unsigned char *dst = malloc(a->nbytes);
    if (!dst) return errf(err, errlen, "out of memory transposing a Fortran-ordered array");
    size_t fstride[NP_MAX_NDIM];
    size_t idx[NP_MAX_NDIM] = {0};
    fstride[0] = isz;
    for (int k = 1; k < a->ndim; k++) fstride[k] = fstride[k - 1] * (size_t)a->shape[k - 1];
    const unsigned char *src = a->data;
    size_t off = 0;
    int last = a->ndim - 1;
    size_t n_last = (size_t)a->shape[last];
    unsigned char *o = dst;
    for (uint64_t done = 0; done < a->count; done += n_last) {
        size_t s = off;
        for (size_t j = 0; j < n_last; j++, s += fstride[last], o += isz) memcpy(o, src + s, isz);
        for (int k = last - 1; k >= 0; k--) {
            if (++idx[k] < a->shape[k]) {
                off += fstride[k];
                break;
            }
            off -= fstride[k] * (idx[k] - 1);
            idx[k] = 0;
        }
    }
    free(a->data);
    a->data = dst;
    return 0;
}

static int parse_header(npy_array *a, const char *path, const char *text, size_t len, int latin1,
                        int *fortran, char *err, size_t errlen)
{
    char perr[256];
    lit *h = lit_parse(text, len, latin1, perr, sizeof perr);
    if (!h) return errf(err, errlen, "%s: corrupt .npy header: %s", path, perr);
    int rc = -1;
    if (h->kind != LIT_DICT) {
        errf(err, errlen, "%s: corrupt .npy header: not a dict", path);
        goto out;
    }
    for (size_t i = 0; i < h->n; i += 2) {
        const lit *k = h->items[i];
        if (k->kind != LIT_STR ||
            (strcmp(k->s, "descr") && strcmp(k->s, "fortran_order") && strcmp(k->s, "shape"))) {
            errf(err, errlen, "%s: corrupt .npy header: unexpected key %s%s%s", path,
                 k->kind == LIT_STR ? "'" : "", k->kind == LIT_STR ? k->s : "(not a string)",
                 k->kind == LIT_STR ? "'" : "");
            goto out;
        }
        for (size_t j = 0; j < i; j += 2) {
            if (h->items[j]->kind == LIT_STR && strcmp(h->items[j]->s, k->s) == 0) {
                errf(err, errlen, "%s: corrupt .npy header: key '%s' twice", path, k->s);
                goto out;
            }
        }
    }
    const lit *descr = lit_dict_get(h, "descr");
    const lit *fo = lit_dict_get(h, "fortran_order");
    const lit *shape = lit_dict_get(h, "shape");
    if (!descr || !fo || !shape) {
        errf(err, errlen, "%s: corrupt .npy header: missing '%s'", path,
             !descr ? "descr" : !fo ? "fortran_order" : "shape");
        goto out;
    }
    if (fo->kind != LIT_BOOL) {
        errf(err, errlen, "%s: corrupt .npy header: fortran_order is not True or False", path);
        goto out;
    }
    *fortran = fo->b;
    if (shape->kind != LIT_TUPLE && shape->kind != LIT_LIST) {
        errf(err, errlen, "%s: corrupt .npy header: shape is not a tuple", path);
        goto out;
    }
    if (shape->n > NP_MAX_NDIM) {
        errf(err, errlen, "%s: shape has %zu dimensions, more than %d", path, shape->n,
             NP_MAX_NDIM);
        goto out;
    }
    a->ndim = (int)shape->n;
    a->count = 1;
    int zero = 0;
    for (size_t i = 0; i < shape->n; i++) {
        const lit *d = shape->items[i];
        if (d->kind != LIT_INT || d->neg) {
            errf(err, errlen, "%s: corrupt .npy header: shape entry %zu is not a non-negative integer",
                 path, i);
            goto out;
        }
        a->shape[i] = d->u;
        if (d->u == 0) zero = 1;
    }
    /* with a zero dim, the other dims may still be huge but hold nothing */
    for (size_t i = 0; i < shape->n && !zero; i++) {
        if (a->shape[i] && a->count > UINT64_MAX / a->shape[i]) {
            errf(err, errlen, "%s: shape product overflows", path);
            goto out;
        }
        a->count *= a->shape[i];
    }
    if (zero) a->count = 0;
    char derr[256];
    a->dt = np_type_from_lit(descr, derr, sizeof derr);
    if (!a->dt) {
        errf(err, errlen, "%s: %s", path, derr);
        goto out;
    }
    if (np_type_has_object(a->dt)) {
        errf(err, errlen,
             "%s: dtype has Python objects ('O'), which .npy stores pickled; they cannot be "
             "sent (convert the array to a numeric, bytes or str dtype first)",
             path);
        goto out;
    }
    if (a->count && a->dt->size > SIZE_MAX / a->count) {
        errf(err, errlen, "%s: array size overflows (%llu elements of %zu bytes)", path,
             (unsigned long long)a->count, a->dt->size);
        goto out;
    }
    a->nbytes = (size_t)a->count * a->dt->size;
    rc = 0;
out:
    lit_free(h);
    return rc;
}

int npy_load(const char *path, npy_array *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    int use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    int fd = use_stdin ? 0 : open(path, O_RDONLY);
    if (fd < 0) return errf(err, errlen, "%s: %s", path, strerror(errno));
    char *text = NULL;
    int rc = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errf(err, errlen, "%s: %s", name, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        errf(err, errlen, "%s: is a directory", name);
        goto out;
    }
    int regular = S_ISREG(st.st_mode);
    unsigned char pre[12];
    ssize_t got = read_full(fd, pre, 10);
    if (got < 0) {
        errf(err, errlen, "%s: %s", name, strerror(errno));
        goto out;
    }
    if (got < 10 || memcmp(pre, MAGIC, MAGIC_LEN) != 0) {
        errf(err, errlen, "%s: not a .npy file (no \\x93NUMPY magic%s)", name,
             got < 10 ? ", file too short" : "");
        goto out;
    }
    int major = pre[6], minor = pre[7];
    size_t prefix, hlen;
    if (major == 1) {
        prefix = 10;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (read_full(fd, pre + 10, 2) != 2) {
            errf(err, errlen, "%s: truncated .npy header", name);
            goto out;
        }
        prefix = 12;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        errf(err, errlen, "%s: unsupported .npy format version %d.%d (known: 1.0, 2.0, 3.0)", name,
             major, minor);
        goto out;
    }
    if (minor != 0) {
        errf(err, errlen, "%s: unsupported .npy format version %d.%d (known: 1.0, 2.0, 3.0)", name,
             major, minor);
        goto out;
    }
    a->version = major;
    if (hlen > NPY_MAX_HEADER) {
        errf(err, errlen, "%s: .npy header length %zu is larger than the %u bytes accepted", name,
             hlen, NPY_MAX_HEADER);
        goto out;
    }
    if (regular && (uint64_t)st.st_size < prefix + hlen) {
        errf(err, errlen, "%s: .npy header length %zu runs past the end of the file (%lld bytes)",
             name, hlen, (long long)st.st_size);
        goto out;
    }
    text = malloc(hlen + 1);
    if (!text) {
        errf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    got = read_full(fd, text, hlen);
    if (got < 0 || (size_t)got != hlen) {
        errf(err, errlen, "%s: truncated .npy header", name);
        goto out;
    }
    text[hlen] = '\0';
    if (memchr(text, '\0', hlen)) {
        errf(err, errlen, "%s: corrupt .npy header: contains a NUL byte", name);
        goto out;
    }
    int fortran = 0;
    /* 1.0 and 2.0 headers are Latin-1, 3.0 is UTF-8 (numpy's rule) */
    if (parse_header(a, name, text, hlen, major < 3, &fortran, err, errlen)) goto out;
    if (regular) {
        uint64_t have = (uint64_t)st.st_size - prefix - hlen;
        if (have != a->nbytes) {
            errf(err, errlen,
                 "%s: the header declares %llu elements of %zu bytes (%zu bytes of data) but "
                 "the file holds %llu bytes of data%s",
                 name, (unsigned long long)a->count, a->dt->size, a->nbytes,
                 (unsigned long long)have, have < a->nbytes ? " (truncated file?)" : "");
            goto out;
        }
    }
    /* a pipe's size is unknown: grow the buffer as data arrives, so a lying
     * header cannot make us allocate more than was actually sent */
    size_t cap = regular ? a->nbytes : (a->nbytes < (1u << 20) ? a->nbytes : (1u << 20));
    a->data = malloc(cap ? cap : 1);
    if (!a->data) {
        errf(err, errlen, "%s: cannot allocate %zu bytes for the array", name, a->nbytes);
        goto out;
    }
    size_t have = 0;
    while (have < a->nbytes) {
        if (have == cap) {
            cap = cap * 2 < a->nbytes ? cap * 2 : a->nbytes;
            void *nd = realloc(a->data, cap);
            if (!nd) {
                errf(err, errlen, "%s: cannot allocate %zu bytes for the array", name, a->nbytes);
                goto out;
            }
            a->data = nd;
        }
        got = read_full(fd, (char *)a->data + have, cap - have);
        if (got < 0) {
            errf(err, errlen, "%s: %s", name, strerror(errno));
            goto out;
        }
        have += (size_t)got;
        if (have < cap) break;
    }
    if (have != a->nbytes) {
        errf(err, errlen, "%s: truncated .npy data: %zu of %zu bytes", name, have, a->nbytes);
        goto out;
    }
    if (!regular) {
        char extra;
        if (read_full(fd, &extra, 1) == 1) {
            errf(err, errlen, "%s: unexpected bytes after the array data", name);
            goto out;
        }
    }
    if (fortran && fortran_to_c(a, err, errlen)) goto out;
    if (a->dt->kind == NP_UNICODE) {
        if (unicode_to_str(a, name, err, errlen)) goto out;
    } else {
        a->dtype_str = a->dt->kind == NP_STRUCT ? np_type_to_json(a->dt) : strdup(a->dt->str);
        if (!a->dtype_str) {
            errf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    free(text);
    if (!use_stdin) close(fd);
    if (rc) npy_free(a);
    return rc;
}

/* ---- writing ---- */

/* The header from the magic through the newline; malloc'd, length in *len. */
static char *npy_header(const char *pydescr, int ndim, const uint64_t *shape, size_t *len)
{
    strbuf sb = {0};
    sb_puts(&sb, "{'descr': ");
    sb_puts(&sb, pydescr);
    sb_puts(&sb, ", 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) sb_printf(&sb, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    sb_puts(&sb, ndim == 1 ? ",), }" : "), }");
    if (ndim > 0) {
        char d0[24];
        int w = snprintf(d0, sizeof d0, "%llu", (unsigned long long)shape[0]);
        for (int i = w; i < GROWTH_AXIS_MAX_DIGITS; i++) sb_add(&sb, " ", 1);
    }
    if (sb.oom) {
        free(sb.b);
        return NULL;
    }
    /* numpy's rule: Latin-1 text in 1.0 while the length fits in 2 bytes,
     * else 2.0; 3.0 (UTF-8) only when some character is not Latin-1 */
    int latin1 = 1;
    for (const unsigned char *q = (const unsigned char *)sb.b; *q; q++)
        if (*q >= 0xC4 && (*q & 0xC0) == 0xC0) latin1 = 0; /* a lead byte above U+00FF */
    if (latin1) {
        size_t o = 0;
        for (size_t i = 0; i < sb.n; i++) {
            unsigned char c = (unsigned char)sb.b[i];
            if (c >= 0xC0 && i + 1 < sb.n) {
                sb.b[o++] = (char)(((c & 0x03) << 6) | ((unsigned char)sb.b[i + 1] & 0x3F));
                i++;
            } else {
                sb.b[o++] = (char)c;
            }
        }
        sb.n = o;
    }
    size_t body = sb.n + 1; /* + '\n' */
    int version = latin1 ? 1 : 3;
    size_t lenbytes = 2;
    size_t pad = ARRAY_ALIGN - (MAGIC_LEN + 2 + lenbytes + body) % ARRAY_ALIGN;
    if (pad == ARRAY_ALIGN) pad = 0;
    if (version == 1 && body + pad > 65535) version = 2;
    if (version != 1) {
        lenbytes = 4;
        pad = ARRAY_ALIGN - (MAGIC_LEN + 2 + lenbytes + body) % ARRAY_ALIGN;
        if (pad == ARRAY_ALIGN) pad = 0;
    }
    size_t hl = body + pad;
    size_t total = MAGIC_LEN + 2 + lenbytes + hl;
    char *out = malloc(total);
    if (!out) {
        free(sb.b);
        return NULL;
    }
    memcpy(out, MAGIC, MAGIC_LEN);
    out[6] = (char)version;
    out[7] = 0;
    for (size_t i = 0; i < lenbytes; i++) out[8 + i] = (char)((hl >> (8 * i)) & 0xFF);
    char *p = out + 8 + lenbytes;
    memcpy(p, sb.b, sb.n);
    memset(p + sb.n, ' ', pad);
    p[sb.n + pad] = '\n';
    free(sb.b);
    *len = total;
    return out;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Decodes one UTF-8 sequence; invalid bytes become U+FFFD, one each, as
 * Python's errors="replace" would (HDF5 does not validate what it stores). */
static uint32_t utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t cp;
    size_t n;
    if (p[0] < 0x80) n = 1, cp = p[0];
    else if ((p[0] & 0xE0) == 0xC0) n = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0) n = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0) n = 4, cp = p[0] & 0x07;
    else n = 0, cp = 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            n = 0;
            break;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (n == 0 || (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *pp = p + 1;
        return 0xFFFD;
    }
    *pp = p + n;
    return cp;
}

/* Variable-length strings become fixed-width numpy arrays: "str" -> '<U n'
 * (n = most code points in any element), "bytes" -> '|S n'. */
static int vlen_to_fixed(const hdf5a_array *a, uint64_t count, int is_str, void **out,
                         size_t *nbytes, char *descr, size_t descrlen, char *err, size_t errlen)
{
    char *const *s = a->data;
    size_t maxlen = 1;
    for (uint64_t i = 0; i < count; i++) {
        size_t n = 0;
        if (!s[i]) continue;
        if (is_str) {
            for (const unsigned char *p = (const unsigned char *)s[i]; *p; n++) utf8_next(&p);
        } else {
            n = strlen(s[i]);
        }
        if (n > maxlen) maxlen = n;
    }
    size_t isz = is_str ? maxlen * 4 : maxlen;
    if (is_str && maxlen > SIZE_MAX / 4) return errf(err, errlen, "strings too long");
    if (count && isz > SIZE_MAX / count) return errf(err, errlen, "array too large");
    unsigned char *buf = calloc(count ? count : 1, isz);
    if (!buf) return errf(err, errlen, "out of memory");
    for (uint64_t i = 0; i < count; i++) {
        unsigned char *e = buf + i * isz;
        if (!s[i]) continue;
        if (is_str) {
            size_t j = 0;
            for (const unsigned char *p = (const unsigned char *)s[i]; *p; j++) {
                uint32_t cp = utf8_next(&p);
                e[4 * j] = (unsigned char)(cp & 0xFF);
                e[4 * j + 1] = (unsigned char)((cp >> 8) & 0xFF);
                e[4 * j + 2] = (unsigned char)((cp >> 16) & 0xFF);
                e[4 * j + 3] = (unsigned char)(cp >> 24);
            }
        } else {
            memcpy(e, s[i], strlen(s[i]));
        }
    }
    snprintf(descr, descrlen, is_str ? "'<U%zu'" : "'|S%zu'", maxlen);
    *out = buf;
    *nbytes = count * isz;
    return 0;
}

int npy_save(const char *path, const hdf5a_array *a, char *err, size_t errlen)
{
    uint64_t count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] && count > UINT64_MAX / a->shape[i]) return errf(err, errlen, "shape overflows");
        count *= a->shape[i];
    }
    char derr[256];
    np_type *t = np_type_parse(a->dtype, derr, sizeof derr);
    if (!t) return errf(err, errlen, "cannot write %s: %s", path, derr);
    void *conv = NULL;
    const void *data = a->data;
    size_t nbytes = a->nbytes;
    char *descr = NULL;
    char fixed[64];
    int rc = -1, fd = -1;
    char *tmp = NULL, *hdr = NULL;
    if (t->kind == NP_VSTR || t->kind == NP_VBYTES) {
        if (vlen_to_fixed(a, count, t->kind == NP_VSTR, &conv, &nbytes, fixed, sizeof fixed, err,
                          errlen))
            goto out;
        data = conv;
        descr = strdup(fixed);
    } else {
        if (count && t->size != a->nbytes / count) {
            errf(err, errlen, "cannot write %s: %zu bytes for %llu elements of dtype %s", path,
                 a->nbytes, (unsigned long long)count, a->dtype);
            goto out;
        }
        descr = np_type_to_pydescr(t);
    }
    size_t hlen;
    if (!descr || !(hdr = npy_header(descr, a->ndim, a->shape, &hlen))) {
        errf(err, errlen, "out of memory");
        goto out;
    }
    if (strcmp(path, "-") == 0) {
        if (write_full(1, hdr, hlen) || write_full(1, data, nbytes)) {
            errf(err, errlen, "<stdout>: %s", strerror(errno));
            goto out;
        }
        rc = 0;
        goto out;
    }
    size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp) {
        errf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        errf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    /* mkstemp makes 0600; a saved array should get the usual umask mode */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0 || write_full(fd, hdr, hlen) || write_full(fd, data, nbytes) ||
        fsync(fd) != 0) {
        errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
out:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(hdr);
    free(descr);
    free(conv);
    np_type_free(t);
    return rc;
}
