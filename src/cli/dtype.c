#include "cli/dtype.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dt_host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ---- strbuf ---- */

void sb_add(strbuf *sb, const char *s, size_t n)
{
    if (sb->oom) return;
    if (sb->n + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->n + n + 1) cap *= 2;
        char *nb = realloc(sb->b, cap);
        if (!nb) {
            sb->oom = 1;
            return;
        }
        sb->b = nb;
        sb->cap = cap;
    }
    memcpy(sb->b + sb->n, s, n);
    sb->n += n;
    sb->b[sb->n] = '\0';
}

void sb_puts(strbuf *sb, const char *s) { sb_add(sb, s, strlen(s)); }

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(sb, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        sb->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(sb, big, (size_t)n);
    free(big);
}

static void sb_escape(strbuf *sb, unsigned char c, char quote)
{
    switch (c) {
    case '\\': sb_puts(sb, "\\\\"); return;
    case '\n': sb_puts(sb, "\\n"); return;
    case '\r': sb_puts(sb, "\\r"); return;
    case '\t': sb_puts(sb, "\\t"); return;
    default: break;
    }
    if (c == (unsigned char)quote) {
        char e[2] = {'\\', quote};
        sb_add(sb, e, 2);
    } else if (c < 0x20 || c == 0x7F) {
        sb_printf(sb, "\\x%02x", c);
    } else {
        char ch = (char)c;
        sb_add(sb, &ch, 1);
    }
}

/* Python picks double quotes only when the text has ' and no ". */
static char pick_quote(const unsigned char *s, size_t n)
{
    int sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    return sq && !dq ? '"' : '\'';
}

void sb_pystr(strbuf *sb, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char q = pick_quote(u, n);
    sb_add(sb, &q, 1);
    for (size_t i = 0; i < n; i++) {
        if (u[i] >= 0x80) {
            /* printable non-ASCII text stays as it is, like Python's repr */
            sb_add(sb, s + i, 1);
        } else {
            sb_escape(sb, u[i], q);
        }
    }
    sb_add(sb, &q, 1);
}

void sb_pybytes(strbuf *sb, const unsigned char *s, size_t n)
{
    char q = pick_quote(s, n);
    sb_add(sb, "b", 1);
    sb_add(sb, &q, 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x80) sb_printf(sb, "\\x%02x", s[i]);
        else sb_escape(sb, s[i], q);
    }
    sb_add(sb, &q, 1);
}

/* ---- parsing ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void dt_free(dtype *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nfields; i++) {
        free(t->fields[i].name);
        dt_free(t->fields[i].type);
    }
    free(t->fields);
    free(t);
}

static int parse_size(const char *p, const char **end, size_t *out)
{
    size_t v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        size_t d = (size_t)(*p - '0');
        if (v > (SIZE_MAX / 4 - d) / 10) return -1; /* U<n> multiplies by 4 */
        v = v * 10 + d;
        p++;
    }
    *end = p;
    *out = v;
    return 0;
}

static dtype *dt_from_string(const char *s, char *err, size_t errlen)
{
    const char *p = s;
    char order = '=';
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=') order = *p++;
    char k = *p ? *p++ : '\0';
    size_t n = 0;
    const char *end = p;
    int has_size = *p >= '0' && *p <= '9';
    if (has_size && parse_size(p, &end, &n)) {
        set_err(err, errlen, "dtype '%s': size too large", s);
        return NULL;
    }
    dtype *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    const char *unit = "";
    if (!has_size) {
        /* numpy's one-letter codes that carry their size */
        switch (k) {
        case '?': k = 'b', n = 1; break;
        case 'b': k = 'i', n = 1; break;
        case 'B': k = 'u', n = 1; break;
        case 'O': case 'M': case 'm': n = 8; break;
        default: goto bad;
        }
    }
    switch (k) {
    case 'b': t->kind = DT_BOOL; break;
    case 'i': t->kind = DT_INT; break;
    case 'u': t->kind = DT_UINT; break;
    case 'f': t->kind = DT_FLOAT; break;
    case 'c': t->kind = DT_COMPLEX; break;
    case 'a': /* numpy's old spelling of S */
    case 'S': t->kind = DT_BYTES; k = 'S'; break;
    case 'V': t->kind = DT_VOID; break;
    case 'U': t->kind = DT_UNICODE; break;
    case 'O': t->kind = DT_OBJECT; break;
    case 'M': case 'm':
        t->kind = DT_OTHER;
        if (*end == '[') {
            unit = end;
            end = strchr(end, ']');
            if (!end || end - unit > 16) goto bad;
            end++;
        }
        break;
    default: goto bad;
    }
    if (*end != '\0') goto bad;
    if (n == 0) {
        set_err(err, errlen, "dtype '%s' has size 0, which is not supported", s);
        dt_free(t);
        return NULL;
    }
    if ((t->kind == DT_BOOL && n != 1) || ((t->kind == DT_INT || t->kind == DT_UINT) && n != 1 &&
                                           n != 2 && n != 4 && n != 8))
        goto bad;
    t->size = t->kind == DT_UNICODE ? n * 4 : n;
    /* numpy's own spelling: '|' where byte order cannot matter, and '='
     * made explicit, so the server sees what numpy's dtype.str would be */
    if (order == '=') order = dt_host_little_endian() ? '<' : '>';
    if (t->kind == DT_BYTES || t->kind == DT_VOID || t->kind == DT_BOOL || t->kind == DT_OBJECT ||
        ((t->kind == DT_INT || t->kind == DT_UINT) && n == 1))
        order = '|';
    else if (order == '|' && t->size > 1 && t->kind != DT_OTHER)
        order = dt_host_little_endian() ? '<' : '>';
    t->order = order;
    size_t ulen = end - (*unit ? unit : end);
    snprintf(t->str, sizeof t->str, "%c%c%zu%.*s", order, k, n, (int)ulen, unit);
    return t;
bad:
    set_err(err, errlen, "unsupported dtype '%s'", s);
    dt_free(t);
    return NULL;
}

static int get_name(const lit *v, const char **name)
{
    if (v->kind == LIT_STR) {
        *name = v->s;
        return 0;
    }
    /* (title, name): numpy's titled fields; the title has no HDF5 meaning */
    if ((v->kind == LIT_TUPLE || v->kind == LIT_LIST) && v->n == 2 && v->items[1]->kind == LIT_STR) {
        *name = v->items[1]->s;
        return 0;
    }
    return -1;
}

static dtype *from_lit(const lit *d, int depth, char *err, size_t errlen)
{
    if (d->kind == LIT_STR) return dt_from_string(d->s, err, errlen);
    if (d->kind != LIT_LIST && d->kind != LIT_TUPLE) {
        set_err(err, errlen, "descr must be a string or a list of fields");
        return NULL;
    }
    if (depth > 16) {
        set_err(err, errlen, "structured dtype nested too deeply");
        return NULL;
    }
    if (d->n == 0) {
        set_err(err, errlen, "structured dtype with no fields");
        return NULL;
    }
    dtype *t = calloc(1, sizeof *t);
    if (t) t->fields = calloc(d->n, sizeof *t->fields);
    if (!t || !t->fields) {
        free(t);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    t->kind = DT_STRUCT;
    t->order = '|';
    size_t off = 0;
    for (size_t i = 0; i < d->n; i++) {
        const lit *e = d->items[i];
        const char *name;
        if ((e->kind != LIT_TUPLE && e->kind != LIT_LIST) || e->n < 2 || e->n > 3 ||
            get_name(e->items[0], &name)) {
            set_err(err, errlen, "field %zu of the structured dtype is not (name, format[, shape])",
                    i);
            goto fail;
        }
        for (size_t j = 0; j < t->nfields; j++) {
            if (*name && strcmp(t->fields[j].name, name) == 0) {
                set_err(err, errlen, "duplicate field name '%s'", name);
                goto fail;
            }
        }
        dt_field *f = &t->fields[t->nfields];
        f->name = strdup(name);
        if (!f->name) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
        t->nfields++;
        f->type = from_lit(e->items[1], depth + 1, err, errlen);
        if (!f->type) goto fail;
        f->count = 1;
        if (e->n == 3) {
            const lit *sh = e->items[2];
            if (sh->kind == LIT_INT) {
                f->ndim = 1;
                if (sh->neg) goto badshape;
                f->shape[0] = sh->u;
            } else if (sh->kind == LIT_TUPLE || sh->kind == LIT_LIST) {
                if (sh->n > DT_MAX_NDIM) goto badshape;
                f->ndim = (int)sh->n;
                for (size_t k = 0; k < sh->n; k++) {
                    if (sh->items[k]->kind != LIT_INT || sh->items[k]->neg) goto badshape;
                    f->shape[k] = sh->items[k]->u;
                }
            } else {
                goto badshape;
            }
            for (int k = 0; k < f->ndim; k++) {
                if (f->shape[k] > SIZE_MAX || (f->shape[k] && f->count > SIZE_MAX / f->shape[k]))
                    goto toobig;
                f->count *= (size_t)f->shape[k];
            }
        }
        if (f->count && f->type->size > SIZE_MAX / 4 / f->count) goto toobig;
        f->offset = off;
        size_t fsize = f->type->size * f->count;
        if (off > SIZE_MAX / 4 - fsize) goto toobig;
        off += fsize;
    }
    t->size = off;
    return t;
badshape:
    set_err(err, errlen, "field %zu: bad subarray shape", t->nfields - 1);
    goto fail;
toobig:
    set_err(err, errlen, "structured dtype too large");
fail:
    dt_free(t);
    return NULL;
}

dtype *dt_from_lit(const lit *descr, char *err, size_t errlen)
{
    return from_lit(descr, 0, err, errlen);
}

dtype *dt_parse(const char *s, char *err, size_t errlen)
{
    if (strcmp(s, "str") == 0 || strcmp(s, "bytes") == 0) {
        dtype *t = calloc(1, sizeof *t);
        if (!t) {
            set_err(err, errlen, "out of memory");
            return NULL;
        }
        t->kind = s[0] == 's' ? DT_VSTR : DT_VBYTES;
        t->order = '|';
        t->size = sizeof(char *);
        snprintf(t->str, sizeof t->str, "%s", s);
        return t;
    }
    const char *p = s;
    while (*p == ' ') p++;
    if (*p != '[') return dt_from_string(s, err, errlen);
    char perr[200];
    lit *v = lit_parse(s, strlen(s), 0, perr, sizeof perr);
    if (!v) {
        set_err(err, errlen, "cannot parse dtype %s: %s", s, perr);
        return NULL;
    }
    dtype *t = dt_from_lit(v, err, errlen);
    lit_free(v);
    return t;
}

int dt_has_object(const dtype *t)
{
    if (t->kind == DT_OBJECT) return 1;
    for (size_t i = 0; i < t->nfields; i++)
        if (dt_has_object(t->fields[i].type)) return 1;
    return 0;
}

/* ---- output ---- */

static void json_str(strbuf *sb, const char *s)
{
    sb_add(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_add(sb, e, 2);
        } else if (*p < 0x20) {
            sb_printf(sb, "\\u%04x", *p);
        } else {
            sb_add(sb, (const char *)p, 1);
        }
    }
    sb_add(sb, "\"", 1);
}

static void to_json(strbuf *sb, const dtype *t)
{
    if (t->kind != DT_STRUCT) {
        json_str(sb, t->str);
        return;
    }
    sb_add(sb, "[", 1);
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (i) sb_add(sb, ",", 1);
        sb_add(sb, "[", 1);
        json_str(sb, f->name);
        sb_add(sb, ",", 1);
        to_json(sb, f->type);
        if (f->ndim) {
            sb_add(sb, ",[", 2);
            for (int k = 0; k < f->ndim; k++) sb_printf(sb, "%s%llu", k ? "," : "", (unsigned long long)f->shape[k]);
            sb_add(sb, "]", 1);
        }
        sb_add(sb, "]", 1);
    }
    sb_add(sb, "]", 1);
}

static char *finish(strbuf *sb)
{
    if (sb->oom) {
        free(sb->b);
        return NULL;
    }
    if (!sb->b) return strdup("");
    return sb->b;
}

char *dt_to_json(const dtype *t)
{
    strbuf sb = {0};
    to_json(&sb, t);
    return finish(&sb);
}

static void to_py(strbuf *sb, const dtype *t)
{
    if (t->kind != DT_STRUCT) {
        sb_pystr(sb, t->str, strlen(t->str));
        return;
    }
    sb_add(sb, "[", 1);
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (i) sb_add(sb, ", ", 2);
        sb_add(sb, "(", 1);
        sb_pystr(sb, f->name, strlen(f->name));
        sb_add(sb, ", ", 2);
        to_py(sb, f->type);
        if (f->ndim) {
            sb_add(sb, ", (", 3);
            for (int k = 0; k < f->ndim; k++)
                sb_printf(sb, "%s%llu", k ? ", " : "", (unsigned long long)f->shape[k]);
            if (f->ndim == 1) sb_add(sb, ",", 1);
            sb_add(sb, ")", 1);
        }
        sb_add(sb, ")", 1);
    }
    sb_add(sb, "]", 1);
}

char *dt_to_pydescr(const dtype *t)
{
    strbuf sb = {0};
    to_py(&sb, t);
    return finish(&sb);
}

/* numpy's _construction_repr(short=True) for a field's type. */
static void short_repr(strbuf *sb, const dtype *t);

static int is_packed(const dtype *t)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (!t->fields[i].name[0]) return 0;
    return 1;
}

/* numpy's str() of a structured dtype: a list of tuples when the fields
 * are packed, else the dict form with offsets and itemsize. */
static void struct_str(strbuf *sb, const dtype *t)
{
    if (is_packed(t)) {
        sb_add(sb, "[", 1);
        for (size_t i = 0; i < t->nfields; i++) {
            const dt_field *f = &t->fields[i];
            if (i) sb_add(sb, ", ", 2);
            sb_add(sb, "(", 1);
            sb_pystr(sb, f->name, strlen(f->name));
            sb_add(sb, ", ", 2);
            short_repr(sb, f->type);
            if (f->ndim) {
                sb_add(sb, ", ", 2);
                for (int k = 0; k < f->ndim; k++)
                    sb_printf(sb, "%s%llu", k ? ", " : "(", (unsigned long long)f->shape[k]);
                sb_puts(sb, f->ndim == 1 ? ",)" : ")");
            }
            sb_add(sb, ")", 1);
        }
        sb_add(sb, "]", 1);
        return;
    }
    size_t shown = 0;
    sb_puts(sb, "{'names': [");
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (!f->name[0]) continue;
        if (shown++) sb_add(sb, ", ", 2);
        sb_pystr(sb, f->name, strlen(f->name));
    }
    sb_puts(sb, "], 'formats': [");
    shown = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (!f->name[0]) continue;
        if (shown++) sb_add(sb, ", ", 2);
        if (f->ndim) sb_add(sb, "(", 1);
        short_repr(sb, f->type);
        if (f->ndim) {
            sb_add(sb, ", ", 2);
            for (int k = 0; k < f->ndim; k++)
                sb_printf(sb, "%s%llu", k ? ", " : "(", (unsigned long long)f->shape[k]);
            sb_puts(sb, f->ndim == 1 ? ",))" : "))");
        }
    }
    sb_puts(sb, "], 'offsets': [");
    shown = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const dt_field *f = &t->fields[i];
        if (!f->name[0]) continue;
        sb_printf(sb, "%s%zu", shown++ ? ", " : "", f->offset);
    }
    sb_printf(sb, "], 'itemsize': %zu}", t->size);
}

static void short_repr(strbuf *sb, const dtype *t)
{
    switch (t->kind) {
    case DT_STRUCT: struct_str(sb, t); return;
    case DT_BOOL: sb_puts(sb, "'?'"); return;
    case DT_BYTES: sb_printf(sb, "'S%zu'", t->size); return;
    case DT_VOID: sb_printf(sb, "'V%zu'", t->size); return;
    case DT_OBJECT: case DT_VSTR: case DT_VBYTES: sb_puts(sb, "'O'"); return;
    default: break;
    }
    /* '|' is how numpy spells "no byte order": the short form drops it */
    const char *s = t->str[0] == '|' ? t->str + 1 : t->str;
    sb_pystr(sb, s, strlen(s));
}

char *dt_repr(const dtype *t)
{
    strbuf sb = {0};
    char native = dt_host_little_endian() ? '<' : '>';
    const char *name = NULL;
    char buf[32];
    if (t->kind == DT_VSTR || t->kind == DT_VBYTES || t->kind == DT_OBJECT) {
        name = "object";
    } else if (t->kind == DT_BOOL) {
        name = "bool";
    } else if ((t->order == native || t->order == '|') &&
               (t->kind == DT_INT || t->kind == DT_UINT || t->kind == DT_FLOAT ||
                t->kind == DT_COMPLEX)) {
        const char *base = t->kind == DT_INT ? "int" : t->kind == DT_UINT ? "uint"
                         : t->kind == DT_FLOAT ? "float" : "complex";
        snprintf(buf, sizeof buf, "%s%zu", base, t->size * 8);
        name = buf;
    }
    if (name) sb_puts(&sb, name);
    else if (t->kind == DT_STRUCT) struct_str(&sb, t);
    else sb_pystr(&sb, t->str, strlen(t->str));
    return finish(&sb);
}
