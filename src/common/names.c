/* Rules for paths and token names both sides check (names.h). */
#include "common/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int h5a_path_check(const char *p, size_t n, char *err, size_t errlen)
{
    if (n == 0) return fail(err, errlen, H5A_PATH_BAD, "path is empty");
    if (memchr(p, '\0', n)) return fail(err, errlen, H5A_PATH_BAD, "path contains a NUL byte");
    if (p[0] != '/')
        return fail(err, errlen, H5A_PATH_BAD, "path '%.*s' is relative: paths start with '/'",
                    (int)(n > 200 ? 200 : n), p);
    if (n == 1) return 0; /* the root */
    size_t start = 1, depth = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/') continue;
        if (++depth > H5A_MAX_PATH_DEPTH)
            return fail(err, errlen, H5A_PATH_TOO_DEEP,
                        "path is more than %d levels deep, the most a path may have "
                        "(HDF5 looks up every level): '%.60s...'",
                        H5A_MAX_PATH_DEPTH, p);
        size_t len = i - start;
        if (len == 0)
            return fail(err, errlen, H5A_PATH_BAD, "path '%.*s' has an empty component",
                        (int)(n > 200 ? 200 : n), p);
        if ((len == 1 && p[start] == '.') || (len == 2 && p[start] == '.' && p[start + 1] == '.'))
            return fail(err, errlen, H5A_PATH_BAD, "path '%.*s' has a '.' or '..' component",
                        (int)(n > 200 ? 200 : n), p);
        start = i + 1;
    }
    return 0;
}

bool h5a_token_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > H5A_TOKEN_NAME_MAX) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_.@-", *s)))
            return false;
    return true;
}
