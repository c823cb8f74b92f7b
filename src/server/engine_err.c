/* The error object and HDF5's error stack (engine_err.h). HDF5 reports why
 * it failed on a per-thread stack that it would print to stderr; the engine
 * turns printing off (h5a_engine_open) and puts the innermost entries into
 * the reply's message instead, which is where a client can see them. */
#include "server/engine_err.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void err_vset(h5a_err *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    if (vsnprintf(err->msg, sizeof err->msg, fmt, ap) < 0) err->msg[0] = '\0';
}

int h5a_err_set(h5a_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int h5a_err_append(h5a_err *err, const char *fmt, ...)
{
    size_t n = strlen(err->msg);
    va_list ap;
    va_start(ap, fmt);
    if (n + 1 < sizeof err->msg) vsnprintf(err->msg + n, sizeof err->msg - n, fmt, ap);
    va_end(ap);
    return err->code;
}

int h5a_err_code(h5a_err *err, int code)
{
    err->code = code;
    return code;
}

struct stack_walk {
    h5a_err *err;
    size_t used;
    int n;
};

/* The two innermost entries: past those HDF5 repeats the same failure in
 * the words of each function that passed it up. */
static herr_t stack_cb(unsigned n, const H5E_error2_t *e, void *ud)
{
    struct stack_walk *w = ud;
    size_t len = sizeof w->err->msg;
    if (w->n >= 2 || w->used >= len) return 0;
    int k = snprintf(w->err->msg + w->used, len - w->used, "%s%s (%s)", w->n ? "; " : ": ",
                     e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
    if (k > 0) w->used += (size_t)k < len - w->used ? (size_t)k : len - w->used - 1;
    w->n++;
    (void)n;
    return 0;
}

int h5a_err_h5(h5a_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
    struct stack_walk w = {err, strlen(err->msg), 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, stack_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return code;
}
