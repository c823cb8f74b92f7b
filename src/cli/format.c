/* A port of the parts of numpy's arrayprint.py (1.24) that decide how
 * elements look -- integer widths, the positional/scientific float modes
 * with shortest round-trip digits, complex, bool, bytes, structured
 * tuples -- and how rows wrap at 75 columns, so `get` output reads like
 * what a numpy user expects. */
#include "cli/format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LINE_WIDTH 75
#define FLOAT_PRECISION 8

/* ---- element access ---- */

static void load(const np_type *t, const unsigned char *p, unsigned char *out)
{
    char native = np_host_little_endian() ? '<' : '>';
    if (t->order == native || t->order == '|') {
        memcpy(out, p, t->size);
    } else {
        for (size_t i = 0; i < t->size; i++) out[i] = p[t->size - 1 - i];
    }
}

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1F;
    double m = h & 0x3FF;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Round to nearest even, as numpy converts to float16. */
static uint16_t double_to_half(double d)
{
    if (isnan(d)) return 0x7E00;
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    d = fabs(d);
    if (d >= 65520.0) return sign | 0x7C00;
    if (d < 0x1p-14) return sign | (uint16_t)nearbyint(d * 0x1p24);
    int e;
    double f = frexp(d, &e);
    double r = nearbyint((f * 2 - 1) * 1024);
    int ex = e - 1 + 15;
    if (r == 1024) r = 0, ex++;
    if (ex >= 31) return sign | 0x7C00;
    return (uint16_t)(sign | ex << 10 | (uint16_t)r);
}

/* Float sizes we can format; others fall back to their bytes. */
static int float_ok(size_t size) { return size == 2 || size == 4 || size == 8; }

static double get_float(size_t size, const unsigned char *b)
{
    if (size == 2) {
        uint16_t h;
        memcpy(&h, b, 2);
        return half_to_double(h);
    }
    if (size == 4) {
        float f;
        memcpy(&f, b, 4);
        return f;
    }
    double d;
    memcpy(&d, b, 8);
    return d;
}

static int roundtrips(const char *s, double x, size_t size)
{
    if (size == 4) return strtof(s, NULL) == (float)x;
    double y = strtod(s, NULL);
    if (size == 2) return double_to_half(y) == double_to_half(x);
    return y == x;
}

/* Shortest decimal digits that read back as x in its own precision (what
 * numpy's dragon4 "unique" mode gives): digits without the point, and the
 * decimal exponent of the first digit. x is finite. */
static void shortest(double x, size_t size, char *digits, int *exp10, int *neg)
{
    char buf[40];
    int maxp = size == 2 ? 4 : size == 4 ? 8 : 16;
    for (int p = 0; p <= maxp; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, x);
        if (p == maxp || roundtrips(buf, x, size)) break;
    }
    char *s = buf;
    *neg = *s == '-';
    if (*neg) s++;
    size_t n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[n++] = *s;
    while (n > 1 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
    *exp10 = atoi(s + 1);
}

/* Positional text of x, at most FLOAT_PRECISION fractional digits, trailing
 * zeros dropped but the point kept ("1.", "0.25"). */
static void positional(double x, size_t size, int plus, char *out, size_t outlen)
{
    char d[40];
    int e, neg;
    shortest(x, size, d, &e, &neg);
    int nd = (int)strlen(d);
    char body[400];
    int frac = nd - 1 - e;
    if (frac > FLOAT_PRECISION) {
        snprintf(body, sizeof body, "%.*f", FLOAT_PRECISION, fabs(x));
        size_t n = strlen(body);
        while (body[n - 1] == '0') body[--n] = '\0';
    } else if (e >= 0) {
        size_t n = 0;
        for (int i = 0; i <= e; i++) body[n++] = i < nd ? d[i] : '0';
        body[n++] = '.';
        for (int i = e + 1; i < nd; i++) body[n++] = d[i];
        body[n] = '\0';
    } else {
        size_t n = 0;
        body[n++] = '0';
        body[n++] = '.';
        for (int i = 0; i < -e - 1; i++) body[n++] = '0';
        for (int i = 0; i < nd; i++) body[n++] = d[i];
        body[n] = '\0';
    }
    snprintf(out, outlen, "%s%s", neg ? "-" : plus ? "+" : "", body);
}

/* Scientific text: mantissa digits as needed (at most FLOAT_PRECISION after
 * the point, at least min_frac), exponent with at least exp_digits digits. */
static void scientific(double x, size_t size, int plus, int min_frac, int exp_digits, char *out,
                       size_t outlen)
{
    char d[40];
    int e, neg;
    shortest(x, size, d, &e, &neg);
    int nd = (int)strlen(d);
    if (nd - 1 > FLOAT_PRECISION) {
        char buf[40];
        snprintf(buf, sizeof buf, "%.*e", FLOAT_PRECISION, fabs(x));
        size_t n = 0;
        char *s = buf;
        for (; *s && *s != 'e'; s++)
            if (*s != '.') d[n++] = *s;
        while (n > 1 && d[n - 1] == '0') n--;
        d[n] = '\0';
        e = atoi(s + 1);
        nd = (int)n;
    }
    char mant[64];
    size_t n = 0;
    mant[n++] = d[0];
    mant[n++] = '.';
    for (int i = 1; i < nd; i++) mant[n++] = d[i];
    for (int i = nd - 1; i < min_frac; i++) mant[n++] = '0';
    mant[n] = '\0';
    if (exp_digits < 2) exp_digits = 2;
    if (exp_digits > 5) exp_digits = 5; /* float64 exponents have 3 digits */
    snprintf(out, outlen, "%s%se%c%0*d", neg ? "-" : plus ? "+" : "", mant, e < 0 ? '-' : '+',
             exp_digits, abs(e));
}

/* Python's repr(float): positional for 1e-4 <= |x| < 1e16, else
 * scientific; always distinguishable as a float ("3.0", "1e-05"). */
static void py_float(double x, size_t size, int strip_zero, char *out, size_t outlen)
{
    if (isnan(x)) {
        snprintf(out, outlen, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, outlen, "%sinf", x < 0 ? "-" : "");
        return;
    }
    char d[40];
    int e, neg;
    shortest(x, size, d, &e, &neg);
    int nd = (int)strlen(d);
    char body[400];
    size_t n = 0;
    if (x != 0 && (e < -4 || e >= 16)) {
        body[n++] = d[0];
        if (nd > 1) {
            body[n++] = '.';
            for (int i = 1; i < nd; i++) body[n++] = d[i];
        }
        n += (size_t)snprintf(body + n, sizeof body - n, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    } else if (e >= 0) {
        for (int i = 0; i <= e; i++) body[n++] = i < nd ? d[i] : '0';
        if (nd - 1 > e) {
            body[n++] = '.';
            for (int i = e + 1; i < nd; i++) body[n++] = d[i];
        } else if (!strip_zero) {
            body[n++] = '.';
            body[n++] = '0';
        }
    } else {
        body[n++] = '0';
        body[n++] = '.';
        for (int i = 0; i < -e - 1; i++) body[n++] = '0';
        for (int i = 0; i < nd; i++) body[n++] = d[i];
    }
    body[n] = '\0';
    snprintf(out, outlen, "%s%s", neg ? "-" : "", body);
}

/* ---- formatters (numpy's *Format classes) ---- */

typedef struct ffmt {
    size_t size;
    int plus;       /* '+' sign (imaginary parts) */
    int has_finite, has_nonzero, has_neginf, has_nonfinite;
    double minabs, maxabs;
    int exp_mode;
    int pad_left, pad_right, precision, exp_size;
} ffmt;

typedef struct fmt {
    const np_type *t;
    int width;              /* integers */
    int64_t imin, imax;
    uint64_t umax;
    int any;
    ffmt re, im;            /* floats use re; complex both */
    struct fmt *fields;     /* structs: one per field */
    int scalar;             /* a 0-d value: no bool padding */
} fmt;

static int fmt_init(fmt *f, const np_type *t, int scalar)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->scalar = scalar;
    if (t->kind == NP_FLOAT) f->re.size = t->size;
    if (t->kind == NP_COMPLEX) {
        f->re.size = f->im.size = t->size / 2;
        f->im.plus = 1;
    }
    if (t->kind == NP_STRUCT) {
        f->fields = calloc(t->nfields ? t->nfields : 1, sizeof *f->fields);
        if (!f->fields) return -1;
        for (size_t i = 0; i < t->nfields; i++)
            if (fmt_init(&f->fields[i], t->fields[i].type, scalar)) return -1;
    }
    return 0;
}

static void fmt_free(fmt *f)
{
    if (f->fields) {
        for (size_t i = 0; i < f->t->nfields; i++) fmt_free(&f->fields[i]);
        free(f->fields);
    }
}

static void ffmt_scan1(ffmt *f, double x)
{
    if (!isfinite(x)) {
        f->has_nonfinite = 1;
        if (isinf(x) && x < 0) f->has_neginf = 1;
        return;
    }
    f->has_finite = 1;
    double a = fabs(x);
    if (a == 0) return;
    if (!f->has_nonzero || a < f->minabs) f->minabs = a;
    if (!f->has_nonzero || a > f->maxabs) f->maxabs = a;
    f->has_nonzero = 1;
}

static void ffmt_mode(ffmt *f)
{
    f->exp_mode = f->has_nonzero &&
                  (f->maxabs >= 1e8 || f->minabs < 1e-4 || f->maxabs / f->minabs > 1e3);
    f->exp_size = -1;
}

static void ffmt_scan2(ffmt *f, double x)
{
    if (!isfinite(x)) return;
    char s[450];
    if (f->exp_mode) {
        scientific(x, f->size, f->plus, 0, 0, s, sizeof s);
        char *dot = strchr(s, '.'), *e = strchr(s, 'e');
        int il = (int)(dot - s), fl = (int)(e - dot - 1), el = (int)strlen(e + 1) - 1;
        if (il > f->pad_left) f->pad_left = il;
        if (fl > f->precision) f->precision = fl;
        if (el > f->exp_size) f->exp_size = el;
    } else {
        positional(x, f->size, f->plus, s, sizeof s);
        char *dot = strchr(s, '.');
        int il = (int)(dot - s), fl = (int)strlen(dot + 1);
        if (il > f->pad_left) f->pad_left = il;
        if (fl > f->pad_right) f->pad_right = fl;
    }
}

static void ffmt_finish(ffmt *f)
{
    if (f->exp_mode && f->has_finite) f->pad_right = f->exp_size + 2 + f->precision;
    if (!f->has_finite) f->pad_left = f->pad_right = 0;
    if (f->has_nonfinite) {
        int neginf = f->plus || f->has_neginf;
        int offset = f->pad_right + 1;
        if (3 - offset > f->pad_left) f->pad_left = 3 - offset;
        if (3 + neginf - offset > f->pad_left) f->pad_left = 3 + neginf - offset;
    }
}

static void ffmt_print(const ffmt *f, double x, strbuf *sb)
{
    char s[450];
    if (!isfinite(x)) {
        snprintf(s, sizeof s, "%s%s", isnan(x) ? (f->plus ? "+" : "") : x < 0 ? "-" : f->plus ? "+" : "",
                 isnan(x) ? "nan" : "inf");
        int w = f->pad_left + f->pad_right + 1 - (int)strlen(s);
        for (int i = 0; i < w; i++) sb_add(sb, " ", 1);
        sb_puts(sb, s);
        return;
    }
    int il, tail = 0;
    if (f->exp_mode) {
        scientific(x, f->size, f->plus, f->precision, f->exp_size, s, sizeof s);
        il = (int)(strchr(s, '.') - s);
    } else {
        positional(x, f->size, f->plus, s, sizeof s);
        char *dot = strchr(s, '.');
        il = (int)(dot - s);
        tail = f->pad_right - (int)strlen(dot + 1);
    }
    for (int i = il; i < f->pad_left; i++) sb_add(sb, " ", 1);
    sb_puts(sb, s);
    for (int i = 0; i < tail; i++) sb_add(sb, " ", 1);
}

static int int_len_i(int64_t v)
{
    char b[24];
    return snprintf(b, sizeof b, "%lld", (long long)v);
}

typedef void elem_fn(fmt *f, const unsigned char *p, int pass);

/* Visits every leaf value of the element at p (subarray items, fields). */
static void visit(fmt *f, const unsigned char *p, int pass)
{
    const np_type *t = f->t;
    unsigned char b[16];
    switch (t->kind) {
    case NP_INT:
    case NP_UINT: {
        load(t, p, b);
        int64_t v = 0;
        uint64_t u = 0;
        if (t->kind == NP_INT) {
            if (t->size == 1) v = *(int8_t *)b;
            else if (t->size == 2) { int16_t x; memcpy(&x, b, 2); v = x; }
            else if (t->size == 4) { int32_t x; memcpy(&x, b, 4); v = x; }
            else memcpy(&v, b, 8);
            if (!f->any || v < f->imin) f->imin = v;
            if (!f->any || v > f->imax) f->imax = v;
        } else {
            if (t->size == 1) u = b[0];
            else if (t->size == 2) { uint16_t x; memcpy(&x, b, 2); u = x; }
            else if (t->size == 4) { uint32_t x; memcpy(&x, b, 4); u = x; }
            else memcpy(&u, b, 8);
            if (u > f->umax) f->umax = u;
        }
        f->any = 1;
        break;
    }
    case NP_FLOAT:
        if (!float_ok(t->size)) break;
        load(t, p, b);
        if (pass == 1) ffmt_scan1(&f->re, get_float(t->size, b));
        else ffmt_scan2(&f->re, get_float(t->size, b));
        break;
    case NP_COMPLEX: {
        size_t h = t->size / 2;
        if (!float_ok(h)) break;
        /* each half is stored in the type's byte order */
        np_type half = *t;
        half.size = h;
        load(&half, p, b);
        load(&half, p + h, b + h);
        double re = get_float(h, b), im = get_float(h, b + h);
        if (pass == 1) ffmt_scan1(&f->re, re), ffmt_scan1(&f->im, im);
        else ffmt_scan2(&f->re, re), ffmt_scan2(&f->im, im);
        break;
    }
    case NP_STRUCT:
        for (size_t i = 0; i < t->nfields; i++) {
            const np_field *fd = &t->fields[i];
            for (size_t j = 0; j < fd->count; j++)
                visit(&f->fields[i], p + fd->offset + j * fd->type->size, pass);
        }
        break;
    default:
        break;
    }
}

static void fmt_mode(fmt *f)
{
    if (f->t->kind == NP_FLOAT) ffmt_mode(&f->re);
    if (f->t->kind == NP_COMPLEX) ffmt_mode(&f->re), ffmt_mode(&f->im);
    for (size_t i = 0; f->fields && i < f->t->nfields; i++) fmt_mode(&f->fields[i]);
}

static void fmt_finish(fmt *f)
{
    const np_type *t = f->t;
    if (t->kind == NP_INT) {
        int a = int_len_i(f->imin), b = int_len_i(f->imax);
        f->width = a > b ? a : b;
    } else if (t->kind == NP_UINT) {
        char buf[24];
        f->width = snprintf(buf, sizeof buf, "%llu", (unsigned long long)f->umax);
    }
    if (t->kind == NP_FLOAT) ffmt_finish(&f->re);
    if (t->kind == NP_COMPLEX) ffmt_finish(&f->re), ffmt_finish(&f->im);
    for (size_t i = 0; f->fields && i < t->nfields; i++) fmt_finish(&f->fields[i]);
}

/* numpy shows void (and unknown) elements with every byte escaped */
static void raw_bytes(const unsigned char *p, size_t n, strbuf *sb)
{
    sb_puts(sb, "b'");
    for (size_t i = 0; i < n; i++) sb_printf(sb, "\\x%02x", p[i]);
    sb_puts(sb, "'");
}

static void print_elem(const fmt *f, const unsigned char *p, strbuf *sb);

static void print_subarray(const fmt *f, const np_field *fd, const unsigned char *p, int dim,
                           size_t *k, strbuf *sb)
{
    sb_add(sb, "[", 1);
    for (uint64_t i = 0; i < fd->shape[dim]; i++) {
        if (i) sb_add(sb, ", ", 2);
        if (dim + 1 < fd->ndim) {
            print_subarray(f, fd, p, dim + 1, k, sb);
        } else {
            print_elem(f, p + *k * fd->type->size, sb);
            (*k)++;
        }
    }
    sb_add(sb, "]", 1);
}

static void print_elem(const fmt *f, const unsigned char *p, strbuf *sb)
{
    const np_type *t = f->t;
    unsigned char b[16];
    switch (t->kind) {
    case NP_BOOL:
        sb_puts(sb, p[0] ? (f->scalar ? "True" : " True") : "False");
        return;
    case NP_INT:
    case NP_UINT: {
        load(t, p, b);
        if (t->kind == NP_INT) {
            int64_t v;
            if (t->size == 1) v = *(int8_t *)b;
            else if (t->size == 2) { int16_t x; memcpy(&x, b, 2); v = x; }
            else if (t->size == 4) { int32_t x; memcpy(&x, b, 4); v = x; }
            else memcpy(&v, b, 8);
            sb_printf(sb, "%*lld", f->width, (long long)v);
        } else {
            uint64_t u;
            if (t->size == 1) u = b[0];
            else if (t->size == 2) { uint16_t x; memcpy(&x, b, 2); u = x; }
            else if (t->size == 4) { uint32_t x; memcpy(&x, b, 4); u = x; }
            else memcpy(&u, b, 8);
            sb_printf(sb, "%*llu", f->width, (unsigned long long)u);
        }
        return;
    }
    case NP_FLOAT:
        if (!float_ok(t->size)) break;
        load(t, p, b);
        ffmt_print(&f->re, get_float(t->size, b), sb);
        return;
    case NP_COMPLEX: {
        size_t h = t->size / 2;
        if (!float_ok(h)) break;
        np_type half = *t;
        half.size = h;
        load(&half, p, b);
        load(&half, p + h, b + h);
        ffmt_print(&f->re, get_float(h, b), sb);
        /* numpy: the 'j' goes right after the digits, padding after it */
        strbuf im = {0};
        ffmt_print(&f->im, get_float(h, b + h), &im);
        if (im.oom || !im.b) {
            sb->oom = 1;
            free(im.b);
            return;
        }
        size_t n = im.n;
        while (n && im.b[n - 1] == ' ') n--;
        sb_add(sb, im.b, n);
        sb_add(sb, "j", 1);
        for (size_t i = n; i < im.n; i++) sb_add(sb, " ", 1);
        free(im.b);
        return;
    }
    case NP_BYTES: {
        size_t n = t->size;
        while (n && p[n - 1] == 0) n--; /* numpy drops S padding */
        sb_pybytes(sb, p, n);
        return;
    }
    case NP_VSTR:
    case NP_VBYTES: {
        const char *s;
        memcpy(&s, p, sizeof s);
        if (!s) s = "";
        if (t->kind == NP_VSTR) sb_pystr(sb, s, strlen(s));
        else sb_pybytes(sb, (const unsigned char *)s, strlen(s));
        return;
    }
    case NP_STRUCT: {
        sb_add(sb, "(", 1);
        size_t shown = 0;
        for (size_t i = 0; i < t->nfields; i++) {
            const np_field *fd = &t->fields[i];
            if (!fd->name[0]) continue; /* padding is not a field */
            if (shown++) sb_add(sb, ", ", 2);
            if (fd->ndim) {
                size_t k = 0;
                print_subarray(&f->fields[i], fd, p + fd->offset, 0, &k, sb);
            } else {
                print_elem(&f->fields[i], p + fd->offset, sb);
            }
        }
        if (shown == 1) sb_add(sb, ",", 1);
        sb_add(sb, ")", 1);
        return;
    }
    default:
        break;
    }
    raw_bytes(p, t->size, sb);
}

/* ---- layout (numpy's _formatArray) ---- */

typedef struct layout {
    const hdf5a_array *a;
    const fmt *f;
    size_t isz;
    size_t stride[NP_MAX_NDIM];
    strbuf word;
} layout;

/* Python's len(): code points, not bytes. */
static size_t ulen(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static void extend_line(strbuf *s, strbuf *line, const char *word, size_t wlen, size_t width,
                        const char *indent, size_t indent_len)
{
    size_t ll = ulen(line->b ? line->b : "", line->n);
    int wrap = ll + ulen(word, wlen) > width;
    if (ll <= indent_len) wrap = 0;
    if (wrap) {
        size_t n = line->n;
        while (n && line->b[n - 1] == ' ') n--;
        sb_add(s, line->b, n);
        sb_add(s, "\n", 1);
        line->n = 0;
        sb_add(line, indent, indent_len);
    }
    sb_add(line, word, wlen);
}

static void recurse(layout *L, const unsigned char *p, int axis, size_t indent_len, size_t width,
                    strbuf *out)
{
    const hdf5a_array *a = L->a;
    int axes_left = a->ndim - axis;
    char indent[NP_MAX_NDIM + 16];
    memset(indent, ' ', indent_len);
    indent[indent_len] = '\0';
    uint64_t n = a->shape[axis];
    /* like numpy, every row starts with the indent; the first one's is
     * replaced by the bracket below */
    strbuf s = {0};
    if (axes_left == 1) {
        strbuf line = {0};
        sb_add(&line, indent, indent_len);
        for (uint64_t i = 0; i < n; i++) {
            L->word.n = 0;
            print_elem(L->f, p + i * L->stride[axis], &L->word);
            if (L->word.oom) {
                out->oom = 1;
                break;
            }
            extend_line(&s, &line, L->word.b, L->word.n, width - 1, indent, indent_len);
            if (i + 1 < n) sb_add(&line, ", ", 2);
        }
        if (line.b) sb_add(&s, line.b, line.n);
        if (line.oom) s.oom = 1;
        free(line.b);
    } else {
        for (uint64_t i = 0; i < n; i++) {
            strbuf nested = {0};
            recurse(L, p + i * L->stride[axis], axis + 1, indent_len + 1, width - 1, &nested);
            sb_add(&s, indent, indent_len);
            if (nested.b) sb_add(&s, nested.b, nested.n);
            if (nested.oom) s.oom = 1;
            free(nested.b);
            if (i + 1 < n) {
                sb_add(&s, ",", 1);
                for (int k = 0; k < axes_left - 1; k++) sb_add(&s, "\n", 1);
            }
        }
    }
    sb_add(out, "[", 1);
    if (s.b && s.n > indent_len) sb_add(out, s.b + indent_len, s.n - indent_len);
    sb_add(out, "]", 1);
    if (s.oom) out->oom = 1;
    free(s.b);
}

void format_shape(strbuf *sb, int ndim, const uint64_t *shape)
{
    sb_add(sb, "(", 1);
    for (int i = 0; i < ndim; i++) sb_printf(sb, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    if (ndim == 1) sb_add(sb, ",", 1);
    sb_add(sb, ")", 1);
}

static int build_fmt(fmt *f, const np_type *t, const unsigned char *data, uint64_t count, int scalar)
{
    if (fmt_init(f, t, scalar)) return -1;
    for (uint64_t i = 0; i < count; i++) visit(f, data + i * t->size, 1);
    fmt_mode(f);
    for (uint64_t i = 0; i < count; i++) visit(f, data + i * t->size, 2);
    fmt_finish(f);
    return 0;
}

/* A 0-d value the way Python's print() shows it. */
static int print_scalar(FILE *out, const hdf5a_array *a, const np_type *t)
{
    const unsigned char *p = a->data;
    strbuf sb = {0};
    unsigned char b[16];
    if (t->kind == NP_VSTR || t->kind == NP_VBYTES) {
        const char *s;
        memcpy(&s, p, sizeof s);
        fprintf(out, "%s\n", s ? s : "");
        return 0;
    }
    if (t->kind == NP_BYTES) {
        size_t n = t->size;
        while (n && p[n - 1] == 0) n--;
        fwrite(p, 1, n, out);
        fputc('\n', out);
        return 0;
    }
    if (t->kind == NP_FLOAT && float_ok(t->size)) {
        char s[450];
        load(t, p, b);
        py_float(get_float(t->size, b), t->size, 0, s, sizeof s);
        fprintf(out, "%s\n", s);
        return 0;
    }
    if (t->kind == NP_COMPLEX && float_ok(t->size / 2)) {
        size_t h = t->size / 2;
        np_type half = *t;
        half.size = h;
        load(&half, p, b);
        load(&half, p + h, b + h);
        double re = get_float(h, b), im = get_float(h, b + h);
        char rs[450], is[450];
        py_float(re, h, 1, rs, sizeof rs);
        py_float(im, h, 1, is, sizeof is);
        int plus = is[0] != '-';
        /* Python's complex repr: "2j" when the real part is +0, else "(1+2j)" */
        if (re == 0 && !signbit(re)) fprintf(out, "%sj\n", is);
        else fprintf(out, "(%s%s%sj)\n", rs, plus ? "+" : "", is);
        return 0;
    }
    fmt f;
    if (build_fmt(&f, t, p, 1, 1)) {
        fmt_free(&f);
        return -1;
    }
    print_elem(&f, p, &sb);
    fmt_free(&f);
    if (sb.oom) {
        free(sb.b);
        return -1;
    }
    fprintf(out, "%s\n", sb.b ? sb.b : "");
    free(sb.b);
    return 0;
}

int format_value(FILE *out, const hdf5a_array *a, const np_type *t)
{
    uint64_t count = 1;
    for (int i = 0; i < a->ndim; i++) count *= a->shape[i];
    if (count && (t->size == 0 || a->nbytes / t->size != count || !a->data)) return -1;
    if (a->ndim == 0) return print_scalar(out, a, t);
    char *dname = np_type_repr(t);
    if (!dname) return -1;
    strbuf sb = {0};
    if (count > FORMAT_MAX_ELEMS) {
        sb_puts(&sb, "shape ");
        format_shape(&sb, a->ndim, a->shape);
        sb_printf(&sb, ", dtype %s, %llu elements", dname, (unsigned long long)count);
        if (t->kind != NP_VSTR && t->kind != NP_VBYTES) sb_printf(&sb, ", %zu bytes", a->nbytes);
        free(dname);
        if (sb.oom) {
            free(sb.b);
            return -1;
        }
        fprintf(out, "%s\n", sb.b);
        free(sb.b);
        return 1;
    }
    fmt f;
    int rc = -1;
    if (build_fmt(&f, t, a->data, count, 0)) goto out;
    sb_puts(&sb, "array(");
    if (count == 0) {
        sb_puts(&sb, "[]");
    } else {
        layout L = {a, &f, t->size, {0}, {0}};
        L.stride[a->ndim - 1] = t->size;
        for (int k = a->ndim - 2; k >= 0; k--) L.stride[k] = L.stride[k + 1] * (size_t)a->shape[k + 1];
        /* numpy: width 75 less the "," that follows, rows indented past "array(" */
        recurse(&L, a->data, 0, 1 + strlen("array("), LINE_WIDTH - 1, &sb);
        if (L.word.oom) sb.oom = 1;
        free(L.word.b);
    }
    sb_add(&sb, ",", 1);
    strbuf tail = {0};
    sb_puts(&tail, "shape=");
    format_shape(&tail, a->ndim, a->shape);
    sb_printf(&tail, ", dtype=%s)", dname);
    if (sb.oom || tail.oom) {
        free(tail.b);
        goto out;
    }
    const char *nl = strrchr(sb.b, '\n');
    size_t last = ulen(nl ? nl + 1 : sb.b, strlen(nl ? nl + 1 : sb.b));
    if (last + ulen(tail.b, tail.n) + 1 > LINE_WIDTH) sb_puts(&sb, "\n      ");
    else sb_puts(&sb, " ");
    sb_add(&sb, tail.b, tail.n);
    free(tail.b);
    if (sb.oom) goto out;
    fprintf(out, "%s\n", sb.b);
    rc = 0;
out:
    fmt_free(&f);
    free(sb.b);
    free(dname);
    return rc;
}
