/* --slice, --shape and --dtype as typed on the command line (sel.h). */
#include "cli/sel.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (isspace((unsigned char)*p)) p++;
    return p;
}

/* [start, end) without surrounding blanks, and one pair of enclosing
 * brackets or parentheses */
static void trim(const char **start, const char **end)
{
    const char *a = skip_ws(*start), *b = *end;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    if (b - a >= 2 && ((*a == '[' && b[-1] == ']') || (*a == '(' && b[-1] == ')'))) {
        a = skip_ws(a + 1);
        b--;
        while (b > a && isspace((unsigned char)b[-1])) b--;
    }
    *start = a;
    *end = b;
}

/* an integer filling [a, b) exactly */
static int parse_i64(const char *a, const char *b, int64_t *out)
{
    char buf[32];
    size_t n = (size_t)(b - a);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, a, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || isspace((unsigned char)buf[0])) return -1;
    *out = v;
    return 0;
}

int cli_parse_selection(const char *s, hdf5a_sel *out, int *n, char *err, size_t errlen)
{
    const char *a = s, *end = s + strlen(s);
    trim(&a, &end);
    *n = 0;
    if (a == end) return 0;
    while (a <= end) {
        const char *comma = memchr(a, ',', (size_t)(end - a));
        const char *ie = comma ? comma : end, *ia = a;
        while (ia < ie && isspace((unsigned char)*ia)) ia++;
        while (ie > ia && isspace((unsigned char)ie[-1])) ie--;
        if (ia == ie) {
            /* "5," is a tuple of one, as in Python; an empty item elsewhere is not */
            if (!comma && *n > 0) break;
            snprintf(err, errlen, "selection '%s': an empty item", s);
            return -1;
        }
        if (*n >= CLI_MAX_SEL) {
            snprintf(err, errlen, "selection '%s': more than %d items", s, CLI_MAX_SEL);
            return -1;
        }
        hdf5a_sel *it = &out[(*n)++];
        if (ie - ia == 3 && memcmp(ia, "...", 3) == 0) {
            *it = HDF5A_ELLIPSIS;
        } else if (memchr(ia, ':', (size_t)(ie - ia))) {
            int colons = 0;
            for (const char *p = ia; p < ie; p++) colons += *p == ':';
            if (colons > 2) {
                snprintf(err, errlen, "selection '%s': a slice has at most two ':'", s);
                return -1;
            }
            /* start:stop:step, each part optional */
            int64_t v[3] = {HDF5A_DEFAULT, HDF5A_DEFAULT, HDF5A_DEFAULT};
            const char *p = ia;
            for (int k = 0; k <= colons; k++) {
                const char *q = k < colons ? memchr(p, ':', (size_t)(ie - p)) : ie;
                const char *pa = p, *pb = q;
                while (pa < pb && isspace((unsigned char)*pa)) pa++;
                while (pb > pa && isspace((unsigned char)pb[-1])) pb--;
                if (pa < pb && parse_i64(pa, pb, &v[k])) {
                    snprintf(err, errlen, "selection '%s': '%.*s' is not an integer", s,
                             (int)(pb - pa), pa);
                    return -1;
                }
                p = q + 1;
            }
            *it = HDF5A_SLICE(v[0], v[1], v[2]);
        } else {
            int64_t v;
            if (parse_i64(ia, ie, &v)) {
                snprintf(err, errlen,
                         "selection '%s': '%.*s' is not an index, a slice (start:stop:step) "
                         "or '...'", s, (int)(ie - ia), ia);
                return -1;
            }
            *it = HDF5A_INDEX(v);
        }
        if (!comma) break;
        a = comma + 1;
    }
    return 0;
}

int cli_parse_dims(const char *s, bool nil_ok, int *ndim, uint64_t *dims, char *err,
                   size_t errlen)
{
    const char *a = s, *end = s + strlen(s);
    trim(&a, &end);
    *ndim = 0;
    while (a < end) {
        const char *comma = memchr(a, ',', (size_t)(end - a));
        const char *ie = comma ? comma : end, *ia = a;
        while (ia < ie && isspace((unsigned char)*ia)) ia++;
        while (ie > ia && isspace((unsigned char)ie[-1])) ie--;
        if (ia == ie && !comma) break; /* a trailing comma */
        if (*ndim >= 32) {
            snprintf(err, errlen, "'%s': more than 32 dimensions", s);
            return -1;
        }
        size_t len = (size_t)(ie - ia);
        int64_t v;
        if (nil_ok && ((len == 4 && (!memcmp(ia, "None", 4) || !memcmp(ia, "none", 4))) ||
                       (len == 9 && !memcmp(ia, "unlimited", 9)) || (len == 1 && *ia == '*'))) {
            dims[(*ndim)++] = HDF5A_UNLIMITED;
        } else if (parse_i64(ia, ie, &v) == 0 && v >= 0) {
            dims[(*ndim)++] = (uint64_t)v;
        } else {
            snprintf(err, errlen, "'%s': '%.*s' is not a size%s", s, (int)len, ia,
                     nil_ok ? " or None (unlimited)" : "");
            return -1;
        }
        if (!comma) break;
        a = comma + 1;
    }
    return 0;
}

void cli_dtype_name(const char *in, char *out, size_t outlen)
{
    static const struct {
        const char *name, *str;
    } names[] = {
        {"bool", "|b1"},     {"int8", "|i1"},     {"uint8", "|u1"},      {"int16", "<i2"},
        {"uint16", "<u2"},   {"int32", "<i4"},    {"uint32", "<u4"},     {"int64", "<i8"},
        {"uint64", "<u8"},   {"int", "<i8"},      {"float16", "<f2"},    {"float32", "<f4"},
        {"float64", "<f8"},  {"float", "<f8"},    {"complex64", "<c8"},  {"complex128", "<c16"},
        {"complex", "<c16"}, {"double", "<f8"},   {"str", "str"},        {"bytes", "bytes"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(in, names[i].name) == 0) {
            snprintf(out, outlen, "%s", names[i].str);
            return;
        }
    /* "f8", "i4", "S10": numpy's shorthand without a byte order */
    if (strchr("biufcSV", in[0]) && isdigit((unsigned char)in[1])) {
        bool one = strchr("bSV", in[0]) || strcmp(in + 1, "1") == 0;
        snprintf(out, outlen, "%c%s", one ? '|' : '<', in);
        return;
    }
    snprintf(out, outlen, "%s", in);
}
