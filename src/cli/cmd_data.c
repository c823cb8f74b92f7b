/* The commands that move data or make datasets: ping, put, append, get,
 * create, resize; and put's, append's and get's preparation before
 * connecting (the selection parsed, the .npy file read). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "cli/nptype.h"
#include "cli/npy.h"
#include "cli/opts.h"
#include "cli/progress.h"
#include "cli/sel.h"

/* ---- before connecting ---- */

static int parse_slice(cli_args *a)
{
    char err[512];
    if (a->slice && cli_parse_selection(a->slice, a->sel, &a->nsel, err, sizeof err))
        return cli_usage("--slice: %s", err);
    return 0;
}

static int load_npy(cli_args *a)
{
    char err[1024];
    if (npy_load(a->pos[1], &a->arr, err, sizeof err)) {
        cli_msg("%s", err);
        return EXIT_FILE;
    }
    return 0;
}

int prepare_put(cli_args *a)
{
    int rc = parse_slice(a);
    return rc ? rc : load_npy(a);
}

int prepare_append(cli_args *a) { return load_npy(a); }

int prepare_get(cli_args *a) { return parse_slice(a); }

/* ---- the commands ---- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int cmd_ping(hdf5a_client *c, const cli_args *a)
{
    hdf5a_durability d = a->durability;
    double t0 = now_ms();
    /* a ping that asks for durability is the library's sync barrier */
    int rc = d == HDF5A_DURABILITY_FLUSH || d == HDF5A_DURABILITY_FSYNC ? hdf5a_sync(c, d)
                                                                        : hdf5a_ping(c);
    double t1 = now_ms();
    if (rc) return cli_lib_error(c, rc, 0);
    printf("pong %.3f ms\n", t1 - t0);
    return EXIT_OK;
}

/* put and append: the array was loaded by prepare_put/prepare_append */
static int transfer(hdf5a_client *c, int append, const cli_args *a)
{
    const char *path = a->pos[0];
    const npy_array *arr = &a->arr;
    hdf5a_array h = {arr->dtype_str, arr->ndim, arr->shape, arr->data, arr->nbytes};
    hdf5a_compression comp = {a->compression, (int)a->level};
    uint64_t payload = arr->count * arr->dt->size;
    progress *pg = payload > PROGRESS_MIN_BYTES
                       ? progress_start(c, append ? "append" : "put", path)
                       : NULL;
    uint64_t new_len = 0;
    int rc;
    if (a->slice)
        rc = hdf5a_write_slice(c, path, a->sel, a->nsel, &h);
    else
        rc = append ? hdf5a_append(c, path, &h, a->compression ? &comp : NULL, &new_len)
                    : hdf5a_write(c, path, &h, a->compression ? &comp : NULL);
    progress_end(pg, c, rc == 0, payload);
    if (rc) return cli_lib_error(c, rc, 1);
    if (append) printf("%llu\n", (unsigned long long)new_len);
    return EXIT_OK;
}

int cmd_put(hdf5a_client *c, const cli_args *a) { return transfer(c, 0, a); }

int cmd_append(hdf5a_client *c, const cli_args *a) { return transfer(c, 1, a); }

static uint64_t value_bytes(const hdf5a_array *v)
{
    if (strcmp(v->dtype, "str") && strcmp(v->dtype, "bytes")) return v->nbytes;
    uint64_t n = 1, total = 0;
    for (int i = 0; i < v->ndim; i++) n *= v->shape[i];
    char *const *s = v->data;
    for (uint64_t i = 0; i < n; i++) total += s[i] ? strlen(s[i]) : 0;
    return total;
}

int cmd_get(hdf5a_client *c, const cli_args *a)
{
    const char *path = a->pos[0];
    hdf5a_array *v = NULL;
    /* the bar appears once the reply's size is known to be over
     * PROGRESS_MIN_BYTES */
    progress *pg = progress_start(c, "get", path);
    int rc = a->slice ? hdf5a_read_slice(c, path, a->sel, a->nsel, &v) : hdf5a_read(c, path, &v);
    progress_end(pg, c, rc == 0, rc == 0 && v ? value_bytes(v) : 0);
    if (rc) return cli_lib_error(c, rc, 0);
    if (!v) {
        cli_msg("REPLY: the library returned no array for %s", path);
        return EXIT_CONN;
    }
    int status = EXIT_OK;
    char err[1024];
    if (a->output) {
        if (npy_save(a->output, v, err, sizeof err)) {
            cli_msg("%s", err);
            status = EXIT_FILE;
        }
        hdf5a_array_free(v);
        return status;
    }
    np_type *t = np_type_parse(v->dtype, err, sizeof err);
    if (!t) {
        cli_msg("cannot show %s: %s", path, err);
        hdf5a_array_free(v);
        return EXIT_CONN;
    }
    int r = format_value(stdout, v, t);
    if (r < 0) {
        cli_msg("cannot show %s: out of memory, or data that does not match dtype %s", path,
                v->dtype);
        status = EXIT_CONN;
    } else if (r == 1) {
        fprintf(stderr, "(too large to print; use '" PROG " get %s%s%s%s -o FILE.npy' to save it)\n",
                path, a->slice ? " --slice '" : "", a->slice ? a->slice : "", a->slice ? "'" : "");
    }
    np_type_free(t);
    hdf5a_array_free(v);
    return status;
}

/* Python's spelling of a shape: "()", "(3,)", "(2, 3)". */
static void print_shape(int ndim, const uint64_t *shape)
{
    putchar('(');
    for (int i = 0; i < ndim; i++)
        printf("%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    printf(ndim == 1 ? ",)\n" : ")\n");
}

/* --fill: a number (an integer as int64, else a double), true/false, or
 * text (a variable-length string); the server converts numbers to the
 * dataset's type. */
typedef struct fill_value {
    int64_t i;
    double d;
    uint8_t b;
    const char *s;
    hdf5a_array arr;
} fill_value;

static void parse_fill(const char *text, fill_value *f)
{
    char *end;
    errno = 0;
    long long i = strtoll(text, &end, 0);
    if (*text && !*end && !errno) {
        f->i = i;
        f->arr = (hdf5a_array){"<i8", 0, NULL, &f->i, sizeof f->i};
        return;
    }
    double d = strtod(text, &end);
    if (*text && !*end) {
        f->d = d;
        f->arr = (hdf5a_array){"<f8", 0, NULL, &f->d, sizeof f->d};
        return;
    }
    if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "false") ||
        !strcmp(text, "False")) {
        f->b = text[0] == 't' || text[0] == 'T';
        f->arr = (hdf5a_array){"|b1", 0, NULL, &f->b, 1};
        return;
    }
    f->s = text;
    f->arr = (hdf5a_array){"str", 0, NULL, &f->s, sizeof f->s};
}

int cmd_create(hdf5a_client *c, const cli_args *a)
{
    char err[512], type[256];
    uint64_t shape[32], maxshape[32], chunks[32];
    int ndim, nd;
    if (!a->shape) return cli_usage("missing --shape (e.g. --shape 100,3; '()' for a scalar)");
    if (cli_parse_dims(a->shape, false, &ndim, shape, err, sizeof err))
        return cli_usage("--shape: %s", err);
    hdf5a_create_opts o = {.shuffle = a->shuffle, .exist_ok = a->exist_ok};
    if (a->maxshape) {
        if (cli_parse_dims(a->maxshape, true, &nd, maxshape, err, sizeof err))
            return cli_usage("--maxshape: %s", err);
        if (nd != ndim)
            return cli_usage("--maxshape has %d entries but --shape has %d", nd, ndim);
        o.maxshape = maxshape;
    }
    if (a->chunks) {
        if (!strcmp(a->chunks, "auto") || !strcmp(a->chunks, "true")) {
            o.chunk_mode = HDF5A_CHUNKS_AUTO;
        } else if (!strcmp(a->chunks, "none") || !strcmp(a->chunks, "false")) {
            o.chunk_mode = HDF5A_CHUNKS_CONTIGUOUS;
        } else {
            if (cli_parse_dims(a->chunks, false, &nd, chunks, err, sizeof err))
                return cli_usage("--chunks: %s (or auto, none)", err);
            if (nd != ndim)
                return cli_usage("--chunks has %d entries but --shape has %d", nd, ndim);
            o.chunks = chunks;
        }
    }
    fill_value fv;
    if (a->fill) {
        parse_fill(a->fill, &fv);
        o.fillvalue = &fv.arr;
    }
    hdf5a_compression comp = {a->compression, (int)a->level};
    if (a->compression) o.comp = &comp;
    cli_dtype_name(a->dtype ? a->dtype : "f4", type, sizeof type);
    int rc = hdf5a_create_dataset(c, a->pos[0], ndim, shape, type, &o);
    /* the library checks the dtype before sending: a bad one is the user's */
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

int cmd_resize(hdf5a_client *c, const cli_args *a)
{
    char err[512];
    uint64_t shape[32];
    int ndim, rc;
    if (cli_parse_dims(a->pos[1], false, &ndim, shape, err, sizeof err))
        return cli_usage("SHAPE: %s", err);
    if (a->axis) {
        long axis;
        if (cli_parse_long(a->axis, -32, 31, &axis))
            return cli_usage("--axis: '%s' is not an axis", a->axis);
        if (ndim != 1) return cli_usage("with --axis, SHAPE is one size");
        int nd = 0;
        uint64_t ns[32];
        rc = hdf5a_resize_axis(c, a->pos[0], (int)axis, shape[0], &nd, ns);
        if (rc) return cli_lib_error(c, rc, 0);
        print_shape(nd, ns);
        return EXIT_OK;
    }
    rc = hdf5a_resize(c, a->pos[0], ndim, shape);
    if (rc) return cli_lib_error(c, rc, 0);
    print_shape(ndim, shape);
    return EXIT_OK;
}

