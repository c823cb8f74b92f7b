/* The CLI's NumPy dtype model, np_type (nptype.h): parsed from numpy's
 * descr or the library's dtype strings, written back as either, and named
 * as numpy's repr names it. */
#include "cli/nptype.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/strbuf.h"

int np_host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
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

void np_type_free(np_type *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nfields; i++) {
        free(t->fields[i].name);
        np_type_free(t->fields[i].type);
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

static np_type *from_string(const char *s, char *err, size_t errlen)
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
    np_type *t = calloc(1, sizeof *t);
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
    case 'b': t->kind = NP_BOOL; break;
    case 'i': t->kind = NP_INT; break;
    case 'u': t->kind = NP_UINT; break;
    case 'f': t->kind = NP_FLOAT; break;
    case 'c': t->kind = NP_COMPLEX; break;
    case 'a': /* numpy's old spelling of S */
    case 'S': t->kind = NP_BYTES; k = 'S'; break;
    case 'V': t->kind = NP_VOID; break;
    case 'U': t->kind = NP_UNICODE; break;
    case 'O': t->kind = NP_OBJECT; break;
    case 'M': case 'm':
        t->kind = NP_OTHER;
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
        np_type_free(t);
        return NULL;
    }
    if ((t->kind == NP_BOOL && n != 1) || ((t->kind == NP_INT || t->kind == NP_UINT) && n != 1 &&
                                           n != 2 && n != 4 && n != 8))
        goto bad;
    t->size = t->kind == NP_UNICODE ? n * 4 : n;
    /* numpy's own spelling: '|' where byte order cannot matter, and '='
     * made explicit, so the server sees what numpy's dtype.str would be */
    if (order == '=') order = np_host_little_endian() ? '<' : '>';
    if (t->kind == NP_BYTES || t->kind == NP_VOID || t->kind == NP_BOOL || t->kind == NP_OBJECT ||
        ((t->kind == NP_INT || t->kind == NP_UINT) && n == 1))
        order = '|';
    else if (order == '|' && t->size > 1 && t->kind != NP_OTHER)
        order = np_host_little_endian() ? '<' : '>';
    t->order = order;
    size_t ulen = end - (*unit ? unit : end);
    snprintf(t->str, sizeof t->str, "%c%c%zu%.*s", order, k, n, (int)ulen, unit);
    return t;
bad:
    set_err(err, errlen, "unsupported dtype '%s'", s);
    np_type_free(t);
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

static np_type *from_lit(const lit *d, int depth, char *err, size_t errlen)
{
    if (d->kind == LIT_STR) return from_string(d->s, err, errlen);
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
    np_type *t = calloc(1, sizeof *t);
    if (t) t->fields = calloc(d->n, sizeof *t->fields);
    if (!t || !t->fields) {
        free(t);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    t->kind = NP_STRUCT;
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
        np_field *f = &t->fields[t->nfields];
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
                if (sh->n > NP_MAX_NDIM) goto badshape;
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
    np_type_free(t);
    return NULL;
}

np_type *np_type_from_lit(const lit *descr, char *err, size_t errlen)
{
    return from_lit(descr, 0, err, errlen);
}

np_type *np_type_parse(const char *s, char *err, size_t errlen)
{
    if (strcmp(s, "str") == 0 || strcmp(s, "bytes") == 0) {
        np_type *t = calloc(1, sizeof *t);
        if (!t) {
            set_err(err, errlen, "out of memory");
            return NULL;
        }
        t->kind = s[0] == 's' ? NP_VSTR : NP_VBYTES;
        t->order = '|';
        t->size = sizeof(char *);
        snprintf(t->str, sizeof t->str, "%s", s);
        return t;
    }
    const char *p = s;
    while (*p == ' ') p++;
    if (*p != '[') return from_string(s, err, errlen);
    char perr[200];
    lit *v = lit_parse(s, strlen(s), 0, perr, sizeof perr);
    if (!v) {
        set_err(err, errlen, "cannot parse dtype %s: %s", s, perr);
        return NULL;
    }
    np_type *t = np_type_from_lit(v, err, errlen);
    lit_free(v);
    return t;
}

int np_type_has_object(const np_type *t)
{
    if (t->kind == NP_OBJECT) return 1;
    for (size_t i = 0; i < t->nfields; i++)
        if (np_type_has_object(t->fields[i].type)) return 1;
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

static void to_json(strbuf *sb, const np_type *t)
{
    if (t->kind != NP_STRUCT) {
        json_str(sb, t->str);
        return;
    }
    sb_add(sb, "[", 1);
    for (size_t i = 0; i < t->nfields; i++) {
        const np_field *f = &t->fields[i];
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

char *np_type_to_json(const np_type *t)
{
    strbuf sb = {0};
    to_json(&sb, t);
    return finish(&sb);
}

static void to_py(strbuf *sb, const np_type *t)
{
    if (t->kind != NP_STRUCT) {
        sb_pystr(sb, t->str, strlen(t->str));
        return;
    }
    sb_add(sb, "[", 1);
    for (size_t i = 0; i < t->nfields; i++) {
        const np_field *f = &t->fields[i];
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

char *np_type_to_pydescr(const np_type *t)
{
    strbuf sb = {0};
    to_py(&sb, t);
    return finish(&sb);
}

/* numpy's _construction_repr(short=True) for a field's type. */
static void short_repr(strbuf *sb, const np_type *t);

static int is_packed(const np_type *t)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (!t->fields[i].name[0]) return 0;
    return 1;
}

/* numpy's str() of a structured dtype: a list of tuples when the fields
 * are packed, else the dict form with offsets and itemsize. */
static void struct_str(strbuf *sb, const np_type *t)
{
    if (is_packed(t)) {
        sb_add(sb, "[", 1);
        for (size_t i = 0; i < t->nfields; i++) {
            const np_field *f = &t->fields[i];
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
        const np_field *f = &t->fields[i];
        if (!f->name[0]) continue;
        if (shown++) sb_add(sb, ", ", 2);
        sb_pystr(sb, f->name, strlen(f->name));
    }
    sb_puts(sb, "], 'formats': [");
    shown = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const np_field *f = &t->fields[i];
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
        const np_field *f = &t->fields[i];
        if (!f->name[0]) continue;
        sb_printf(sb, "%s%zu", shown++ ? ", " : "", f->offset);
    }
    sb_printf(sb, "], 'itemsize': %zu}", t->size);
}

static void short_repr(strbuf *sb, const np_type *t)
{
    switch (t->kind) {
    case NP_STRUCT: struct_str(sb, t); return;
    case NP_BOOL: sb_puts(sb, "'?'"); return;
    case NP_BYTES: sb_printf(sb, "'S%zu'", t->size); return;
    case NP_VOID: sb_printf(sb, "'V%zu'", t->size); return;
    case NP_OBJECT: case NP_VSTR: case NP_VBYTES: sb_puts(sb, "'O'"); return;
    default: break;
    }
    /* '|' is how numpy spells "no byte order": the short form drops it */
    const char *s = t->str[0] == '|' ? t->str + 1 : t->str;
    sb_pystr(sb, s, strlen(s));
}

char *np_type_repr(const np_type *t)
{
    strbuf sb = {0};
    char native = np_host_little_endian() ? '<' : '>';
    const char *name = NULL;
    char buf[32];
    if (t->kind == NP_VSTR || t->kind == NP_VBYTES || t->kind == NP_OBJECT) {
        name = "object";
    } else if (t->kind == NP_BOOL) {
        name = "bool";
    } else if ((t->order == native || t->order == '|') &&
               (t->kind == NP_INT || t->kind == NP_UINT || t->kind == NP_FLOAT ||
                t->kind == NP_COMPLEX)) {
        const char *base = t->kind == NP_INT ? "int" : t->kind == NP_UINT ? "uint"
                         : t->kind == NP_FLOAT ? "float" : "complex";
        snprintf(buf, sizeof buf, "%s%zu", base, t->size * 8);
        name = buf;
    }
    if (name) sb_puts(&sb, name);
    else if (t->kind == NP_STRUCT) struct_str(&sb, t);
    else sb_pystr(&sb, t->str, strlen(t->str));
    return finish(&sb);
}
