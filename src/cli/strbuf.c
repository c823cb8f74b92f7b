/* A growable string and Python's repr of str and bytes: what the CLI's
 * type names, .npy headers and printed values are built in. */
#include "cli/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
