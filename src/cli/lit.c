/* The literal parser for .npy headers and JSON descr lists (lit.h). */
#include "cli/lit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep enough for any real structured dtype, shallow enough that a hostile
 * header cannot exhaust the stack. */
#define MAX_DEPTH 64

struct parser {
    const unsigned char *p, *end, *start;
    int latin1;
    char *err;
    size_t errlen;
    int failed;
};

static void fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->failed) return;
    ps->failed = 1;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s at offset %zu", msg, (size_t)(ps->p - ps->start));
}

void lit_free(lit *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) lit_free(v->items[i]);
    free(v->items);
    free(v->s);
    free(v);
}

static lit *new_lit(struct parser *ps, lit_kind k)
{
    lit *v = calloc(1, sizeof *v);
    if (!v) fail(ps, "out of memory");
    else v->kind = k;
    return v;
}

static int isalnum_ascii(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\f'))
        ps->p++;
}

struct sbuf {
    char *b;
    size_t n, cap;
};

static int sb_put(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->n + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 32;
        while (cap < sb->n + n + 1) cap *= 2;
        char *nb = realloc(sb->b, cap);
        if (!nb) return -1;
        sb->b = nb;
        sb->cap = cap;
    }
    memcpy(sb->b + sb->n, s, n);
    sb->n += n;
    sb->b[sb->n] = '\0';
    return 0;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    uint32_t cp;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xE0) == 0xC0) n = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0) n = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0) n = 4, cp = p[0] & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex(struct parser *ps, int ndigits, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < ndigits; i++) {
        if (ps->p >= ps->end || hexval(*ps->p) < 0) {
            fail(ps, "bad hex escape in string");
            return -1;
        }
        v = v * 16 + (uint32_t)hexval(*ps->p++);
    }
    *out = v;
    return 0;
}

/* Python str/bytes literals (optional u/b/r prefix) and JSON strings. */
static lit *parse_string(struct parser *ps)
{
    int raw = 0;
    while (ps->p < ps->end && *ps->p && strchr("uUbBrR", *ps->p)) {
        if (*ps->p == 'r' || *ps->p == 'R') raw = 1;
        ps->p++;
    }
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) {
        fail(ps, "expected a string");
        return NULL;
    }
    unsigned char q = *ps->p++;
    struct sbuf sb = {0};
    if (sb_put(&sb, "", 0)) goto oom;
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            goto err;
        }
        unsigned char c = *ps->p;
        if (c == q) {
            ps->p++;
            break;
        }
        if (c == '\n') {
            fail(ps, "newline inside a string");
            goto err;
        }
        char u8[4];
        if (c == '\\' && !raw) {
            ps->p++;
            if (ps->p >= ps->end) {
                fail(ps, "unterminated string");
                goto err;
            }
            unsigned char e = *ps->p++;
            uint32_t cp;
            switch (e) {
            case 'n': cp = '\n'; break;
            case 't': cp = '\t'; break;
            case 'r': cp = '\r'; break;
            case 'a': cp = 7; break;
            case 'b': cp = 8; break;
            case 'f': cp = 12; break;
            case 'v': cp = 11; break;
            case '\\': case '\'': case '"': case '/': cp = e; break;
            case 'x': if (read_hex(ps, 2, &cp)) goto err; break;
            case 'u':
                if (read_hex(ps, 4, &cp)) goto err;
                /* JSON writes astral characters as surrogate pairs */
                if (cp >= 0xD800 && cp <= 0xDBFF && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
                    ps->p[1] == 'u') {
                    const unsigned char *save = ps->p;
                    uint32_t lo;
                    ps->p += 2;
                    if (read_hex(ps, 4, &lo)) goto err;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else ps->p = save;
                }
                break;
            case 'U': if (read_hex(ps, 8, &cp)) goto err; break;
            case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
                cp = e - '0';
                for (int i = 0; i < 2 && ps->p < ps->end && *ps->p >= '0' && *ps->p <= '7'; i++)
                    cp = cp * 8 + (uint32_t)(*ps->p++ - '0');
                break;
            case '\n': continue; /* line continuation */
            default:
                ps->p--;
                fail(ps, "unknown escape '\\%c' in string", e);
                goto err;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                fail(ps, "invalid character U+%04X in string", (unsigned)cp);
                goto err;
            }
            if (cp == 0) {
                fail(ps, "NUL character in string");
                goto err;
            }
            if (sb_put(&sb, u8, utf8_encode(cp, u8))) goto oom;
            continue;
        }
        if (c < 0x80) {
            if (sb_put(&sb, (const char *)ps->p, 1)) goto oom;
            ps->p++;
        } else if (ps->latin1) {
            if (sb_put(&sb, u8, utf8_encode(c, u8))) goto oom;
            ps->p++;
        } else {
            size_t n = utf8_valid(ps->p, ps->end);
            if (!n) {
                fail(ps, "invalid UTF-8 in string");
                goto err;
            }
            if (sb_put(&sb, (const char *)ps->p, n)) goto oom;
            ps->p += n;
        }
    }
    lit *v = new_lit(ps, LIT_STR);
    if (!v) goto err;
    v->s = sb.b;
    v->slen = sb.n;
    return v;
oom:
    fail(ps, "out of memory");
err:
    free(sb.b);
    return NULL;
}

static lit *parse_int(struct parser *ps)
{
    int neg = 0;
    if (*ps->p == '-' || *ps->p == '+') neg = *ps->p++ == '-';
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
        fail(ps, "expected a number");
        return NULL;
    }
    uint64_t u = 0;
    while (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '_')) {
        if (*ps->p == '_') { ps->p++; continue; }
        unsigned d = (unsigned)(*ps->p - '0');
        if (u > (UINT64_MAX - d) / 10) {
            fail(ps, "integer too large");
            return NULL;
        }
        u = u * 10 + d;
        ps->p++;
    }
    /* Python 2 wrote shapes as (3L, 4L) */
    if (ps->p < ps->end && (*ps->p == 'L' || *ps->p == 'l')) ps->p++;
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
        fail(ps, "expected an integer, found a float");
        return NULL;
    }
    lit *v = new_lit(ps, LIT_INT);
    if (v) v->u = u, v->neg = neg && u != 0;
    return v;
}

static lit *parse_value(struct parser *ps, int depth);

static int push(struct parser *ps, lit *v, lit *item, size_t *cap)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        lit **ni = realloc(v->items, nc * sizeof *ni);
        if (!ni) {
            fail(ps, "out of memory");
            return -1;
        }
        v->items = ni;
        *cap = nc;
    }
    v->items[v->n++] = item;
    return 0;
}

/* Lists, tuples and dicts; trailing commas allowed as in Python. */
static lit *parse_container(struct parser *ps, int depth)
{
    unsigned char open = *ps->p++;
    unsigned char close = open == '[' ? ']' : open == '(' ? ')' : '}';
    lit *v = new_lit(ps, open == '[' ? LIT_LIST : open == '(' ? LIT_TUPLE : LIT_DICT);
    if (!v) return NULL;
    size_t cap = 0;
    int need_sep = 0;
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end) {
            fail(ps, "unterminated '%c'", open);
            goto err;
        }
        if (*ps->p == close) {
            ps->p++;
            break;
        }
        if (need_sep) {
            fail(ps, "expected ',' or '%c'", close);
            goto err;
        }
        lit *item = parse_value(ps, depth + 1);
        if (!item) goto err;
        if (push(ps, v, item, &cap)) {
            lit_free(item);
            goto err;
        }
        if (v->kind == LIT_DICT) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected ':' after a dict key");
                goto err;
            }
            ps->p++;
            item = parse_value(ps, depth + 1);
            if (!item) goto err;
            if (push(ps, v, item, &cap)) {
                lit_free(item);
                goto err;
            }
        }
        skip_ws(ps);
        need_sep = 1;
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            need_sep = 0;
        }
    }
    return v;
err:
    lit_free(v);
    return NULL;
}

static int word(struct parser *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return 0;
    const unsigned char *after = ps->p + n;
    if (after < ps->end && (isalnum_ascii(*after) || *after == '_')) return 0;
    ps->p += n;
    return 1;
}

static lit *parse_value(struct parser *ps, int depth)
{
    if (depth > MAX_DEPTH) {
        fail(ps, "nesting deeper than %d", MAX_DEPTH);
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of text");
        return NULL;
    }
    unsigned char c = *ps->p;
    if (c == '[' || c == '(' || c == '{') return parse_container(ps, depth);
    if (c == '\'' || c == '"') return parse_string(ps);
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return parse_int(ps);
    /* string prefixes: u'..', b'..', r'..', combinations */
    if (c && strchr("uUbBrR", c)) {
        const unsigned char *q = ps->p;
        while (q < ps->end && *q && strchr("uUbBrR", *q)) q++;
        if (q < ps->end && (*q == '\'' || *q == '"') && q - ps->p <= 2) return parse_string(ps);
    }
    lit *v;
    if (word(ps, "True") || word(ps, "true")) {
        if ((v = new_lit(ps, LIT_BOOL))) v->b = 1;
        return v;
    }
    if (word(ps, "False") || word(ps, "false")) return new_lit(ps, LIT_BOOL);
    if (word(ps, "None") || word(ps, "null")) return new_lit(ps, LIT_NONE);
    if (c >= 0x20 && c < 0x7F) fail(ps, "unexpected character '%c'", c);
    else fail(ps, "unexpected byte 0x%02x", c);
    return NULL;
}

lit *lit_parse(const char *text, size_t len, int latin1, char *err, size_t errlen)
{
    struct parser ps = {(const unsigned char *)text, (const unsigned char *)text + len,
                        (const unsigned char *)text, latin1, err, errlen, 0};
    lit *v = parse_value(&ps, 0);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "unexpected text after the value");
        lit_free(v);
        return NULL;
    }
    return v;
}

const lit *lit_dict_get(const lit *dict, const char *key)
{
    if (!dict || dict->kind != LIT_DICT) return NULL;
    for (size_t i = 0; i + 1 < dict->n; i += 2)
        if (dict->items[i]->kind == LIT_STR && strcmp(dict->items[i]->s, key) == 0)
            return dict->items[i + 1];
    return NULL;
}
