/* A growable string for the CLI's formatting code, and Python's repr of
 * str and bytes written into one. */
#ifndef H5A_CLI_STRBUF_H
#define H5A_CLI_STRBUF_H

#include <stddef.h>

/* Out of memory sets oom and makes every later call a no-op, so a caller
 * checks once at the end. */
typedef struct strbuf {
    char *b;
    size_t n, cap;
    int oom;
} strbuf;
void sb_add(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Python repr of a str (UTF-8 in) or of bytes. */
void sb_pystr(strbuf *sb, const char *s, size_t n);
void sb_pybytes(strbuf *sb, const unsigned char *s, size_t n);

#endif
