/* A small parser for the literal values found in .npy headers (Python
 * dicts, tuples, lists, str, int, True/False/None) and in the client
 * library's JSON descr lists: one grammar covers both, so the same code
 * reads numpy's header and the library's structured dtypes. */
#ifndef H5A_CLI_LIT_H
#define H5A_CLI_LIT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LIT_STR, LIT_INT, LIT_BOOL, LIT_NONE, LIT_LIST, LIT_TUPLE, LIT_DICT } lit_kind;

typedef struct lit {
    lit_kind kind;
    char *s;            /* LIT_STR: UTF-8, NUL-terminated (may hold no NUL itself) */
    size_t slen;
    uint64_t u;         /* LIT_INT: magnitude */
    int neg;            /* LIT_INT: negative */
    int b;              /* LIT_BOOL */
    size_t n;           /* number of items; a DICT holds n/2 pairs: items[2k] key, items[2k+1] value */
    struct lit **items;
} lit;

/* Parses exactly one value spanning text[0..len) (surrounding whitespace
 * allowed). latin1: bytes >= 0x80 outside escapes are Latin-1 characters
 * (npy 1.0/2.0 headers); otherwise the text must be UTF-8. Returns NULL
 * with a message in err on failure. */
lit *lit_parse(const char *text, size_t len, int latin1, char *err, size_t errlen);
void lit_free(lit *v);
/* The value of key in a dict, or NULL. */
const lit *lit_dict_get(const lit *dict, const char *key);

#endif
