#include <stdarg.h>
#include <stdio.h>

#include "errors.h"

static const char *const error_names[] = {
    "OK",
#define H5A_X_NAME(name) #name,
    H5A_ERROR_LIST(H5A_X_NAME)
#undef H5A_X_NAME
};

const char *h5a_strerror_code(int code)
{
    /* Code 0 is success, not an error: a caller that asks for its wire string
     * has a bug, and INTERNAL is the honest answer. */
    if (code >= 0 || code <= -(int)H5A_E_COUNT_PLUS_ONE)
        return "INTERNAL";
    return error_names[-code];
}

int h5a_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
