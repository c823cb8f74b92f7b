/* The commands on the file's namespace, attributes and descriptions:
 * mkgroup, rm, ln, mv (one library call each), ls, tree, info, attr.
 * Listings are fetched a page at a time and printed as they come, so a
 * file with millions of objects never has to fit in memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "cli/nptype.h"
#include "cli/npy.h"

/* ---- mkgroup, rm, ln, mv ---- */

int cmd_mkgroup(hdf5a_client *c, const cli_args *a)
{
    int rc = hdf5a_create_group(c, a->pos[0]);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

int cmd_rm(hdf5a_client *c, const cli_args *a)
{
    int rc = hdf5a_delete(c, a->pos[0]);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

int check_ln(const cli_args *a)
{
    if (!a->soft) return cli_usage("only soft links can be made: give -s (ln -s TARGET PATH)");
    return 0;
}

int cmd_ln(hdf5a_client *c, const cli_args *a)
{
    int rc = hdf5a_create_link(c, a->pos[1], a->pos[0]);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

int cmd_mv(hdf5a_client *c, const cli_args *a)
{
    int rc = hdf5a_move(c, a->pos[0], a->pos[1]);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

/* ---- ls, tree ---- */

/* Names are padded to this width before what they are, as h5ls does. */
#define NAME_WIDTH 24

/* How a dtype reads: numpy's repr name ("float64", "'>i4'", "[('a',
 * '<i4')]"), "str"/"bytes" for variable-length strings, and a note when
 * the HDF5 type has no numpy equivalent. */
static void put_dtype(FILE *out, const char *dt)
{
    if (!dt) {
        fputs("(no numpy type)", out);
        return;
    }
    if (!strcmp(dt, "str") || !strcmp(dt, "bytes")) {
        fprintf(out, "%s (variable length)", dt);
        return;
    }
    char err[256];
    np_type *t = np_type_parse(dt, err, sizeof err);
    char *r = t ? np_type_repr(t) : NULL;
    fputs(r ? r : dt, out);
    free(r);
    np_type_free(t);
}

/* h5ls's dimensions: "{10/Inf, 4}", "{SCALAR}", "{NULL}". */
static void put_dims(FILE *out, int ndim, const uint64_t *shape, const uint64_t *max)
{
    if (ndim < 0) {
        fputs("{NULL}", out);
        return;
    }
    if (ndim == 0) {
        fputs("{SCALAR}", out);
        return;
    }
    fputc('{', out);
    for (int i = 0; i < ndim; i++) {
        fprintf(out, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        if (max && max[i] == HDF5A_UNLIMITED) fputs("/Inf", out);
        else if (max && max[i] != shape[i]) fprintf(out, "/%llu", (unsigned long long)max[i]);
    }
    fputc('}', out);
}

/* Python's spelling of a shape, None for unlimited: "(10,)", "(None, 3)". */
static void put_pyshape(FILE *out, int ndim, const uint64_t *d)
{
    if (ndim < 0) {
        fputs("None (empty)", out);
        return;
    }
    fputc('(', out);
    for (int i = 0; i < ndim; i++) {
        if (i) fputs(", ", out);
        if (d[i] == HDF5A_UNLIMITED) fputs("None", out);
        else fprintf(out, "%llu", (unsigned long long)d[i]);
    }
    fputs(ndim == 1 ? ",)" : ")", out);
}

/* One h5ls-like line: NAME, padding, what it is. */
static void put_entry(const hdf5a_entry *e, const char *name)
{
    size_t n = strlen(name);
    printf("%s%*s ", name, n < NAME_WIDTH ? (int)(NAME_WIDTH - n) : 0, "");
    if (!strcmp(e->kind, "group")) {
        fputs("Group", stdout);
    } else if (!strcmp(e->kind, "dataset")) {
        fputs("Dataset ", stdout);
        put_dims(stdout, e->ndim, e->shape, e->maxshape);
        fputc(' ', stdout);
        put_dtype(stdout, e->dtype);
    } else if (!strcmp(e->kind, "datatype")) {
        fputs("Type ", stdout);
        put_dtype(stdout, e->dtype);
    } else if (!strcmp(e->kind, "soft_link")) {
        printf("Soft Link {%s}", e->target ? e->target : "?");
    } else if (!strcmp(e->kind, "external_link")) {
        printf("External Link {%s/%s}", e->file ? e->file : "?", e->target ? e->target : "?");
    } else if (!strcmp(e->kind, "attribute")) {
        fputs("Attribute ", stdout);
        put_dims(stdout, e->ndim, e->shape, NULL);
        fputc(' ', stdout);
        put_dtype(stdout, e->dtype);
    } else if (!strcmp(e->kind, "user_link")) {
        fputs("User-defined Link", stdout);
    } else {
        fputs(e->kind, stdout);
    }
    fputc('\n', stdout);
}

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ls of something that is not a group: one line about it, as h5ls does. */
static int ls_object(hdf5a_client *c, const char *path)
{
    hdf5a_objinfo *i = NULL;
    int rc = hdf5a_info(c, path, &i);
    if (rc) return cli_lib_error(c, rc, 0);
    hdf5a_entry e = {.name = path, .kind = i->kind, .dtype = i->dtype, .ndim = i->ndim,
                     .shape = i->shape, .maxshape = i->maxshape};
    put_entry(&e, basename_of(path));
    hdf5a_objinfo_free(i);
    return EXIT_OK;
}

/* Page through list (walk when recursive), calling fn on each entry. */
typedef void entry_fn(const hdf5a_entry *e, void *ud);

static int each_entry(hdf5a_client *c, const char *path, int recursive, entry_fn *fn, void *ud)
{
    char *after = NULL;
    int rc;
    for (;;) {
        hdf5a_listing *l = NULL;
        rc = recursive ? hdf5a_walk(c, path, 0, after, 0, &l) : hdf5a_list(c, path, after, 0, &l);
        free(after);
        after = NULL;
        if (rc) return rc;
        for (size_t i = 0; i < l->count; i++) fn(&l->entries[i], ud);
        if (l->next && !(after = strdup(l->next))) {
            hdf5a_listing_free(l);
            return HDF5A_ENOMEM;
        }
        hdf5a_listing_free(l);
        if (!after) return 0;
    }
}

static void ls_line(const hdf5a_entry *e, void *ud)
{
    (void)ud;
    put_entry(e, e->name);
}

int cmd_ls(hdf5a_client *c, const cli_args *a)
{
    const char *path = a->npos ? a->pos[0] : "/";
    int rc = each_entry(c, path, a->recursive, ls_line, NULL);
    if (rc == HDF5A_ENOT_A_GROUP) return ls_object(c, path);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

typedef struct {
    size_t base; /* length of the walked path's prefix in entry paths */
} tree_ctx;

static void tree_line(const hdf5a_entry *e, void *ud)
{
    tree_ctx *t = ud;
    const char *rel = e->name + t->base;
    int depth = 0;
    for (const char *p = rel; *p; p++) depth += *p == '/';
    printf("%*s%s", 2 * (depth + 1), "", basename_of(e->name));
    if (!strcmp(e->kind, "group")) {
        fputs("/", stdout);
    } else if (!strcmp(e->kind, "dataset")) {
        fputs("  ", stdout);
        put_pyshape(stdout, e->ndim, e->shape);
        fputc(' ', stdout);
        put_dtype(stdout, e->dtype);
    } else if (!strcmp(e->kind, "datatype")) {
        fputs("  type ", stdout);
        put_dtype(stdout, e->dtype);
    } else if (!strcmp(e->kind, "soft_link")) {
        printf(" -> %s", e->target ? e->target : "?");
    } else if (!strcmp(e->kind, "external_link")) {
        printf(" -> %s:%s", e->file ? e->file : "?", e->target ? e->target : "?");
    } else {
        printf("  (%s)", e->kind);
    }
    fputc('\n', stdout);
}

int cmd_tree(hdf5a_client *c, const cli_args *a)
{
    const char *path = a->npos ? a->pos[0] : "/";
    /* entries are full paths: "/g/x" below "/g" is "x" at depth 0 */
    tree_ctx t = {strcmp(path, "/") == 0 ? 1 : strlen(path) + 1};
    printf("%s\n", path);
    fflush(stdout);
    int rc = each_entry(c, path, 1, tree_line, &t);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

/* ---- info ---- */

static void put_value(FILE *out, const hdf5a_array *v)
{
    char err[256];
    np_type *t = np_type_parse(v->dtype, err, sizeof err);
    if (!t || format_value(out, v, t) < 0) fputs("?\n", out);
    np_type_free(t);
}

int cmd_info(hdf5a_client *c, const cli_args *a)
{
    const char *path = a->pos[0];
    hdf5a_objinfo *i = NULL;
    int rc = hdf5a_info(c, path, &i);
    if (rc) return cli_lib_error(c, rc, 0);
    printf("%s: %s\n", path, i->kind);
    if (!strcmp(i->kind, "group")) {
        printf("  members      %llu\n", (unsigned long long)i->members);
    } else if (!strcmp(i->kind, "datatype")) {
        fputs("  dtype        ", stdout);
        put_dtype(stdout, i->dtype);
        printf("\n  hdf5 class   %s\n", i->hdf5_class ? i->hdf5_class : "?");
    } else if (!strcmp(i->kind, "dataset")) {
        fputs("  shape        ", stdout);
        put_pyshape(stdout, i->ndim, i->shape);
        fputs("\n  maxshape     ", stdout);
        put_pyshape(stdout, i->ndim, i->maxshape);
        fputs("\n  dtype        ", stdout);
        put_dtype(stdout, i->dtype);
        printf("\n  hdf5 class   %s\n", i->hdf5_class ? i->hdf5_class : "?");
        printf("  layout       %s\n", i->layout ? i->layout : "?");
        fputs("  chunks       ", stdout);
        if (i->chunk_ndim) put_pyshape(stdout, i->chunk_ndim, i->chunks);
        else fputs("None", stdout);
        fputs("\n  compression  ", stdout);
        if (!i->compression) fputs("None", stdout);
        /* the option in each filter's units (as put/create --level takes it) */
        else if (i->compression_opts >= 0 && !strcmp(i->compression, "bzip2"))
            printf("bzip2 (block size %d)", i->compression_opts);
        else if (i->compression_opts > 0 && !strcmp(i->compression, "lz4"))
            printf("lz4 (block size %d bytes)", i->compression_opts);
        else if (!strcmp(i->compression, "lz4"))
            fputs("lz4 (default block size)", stdout);
        else if (i->compression_opts >= 0)
            printf("%s (level %d)", i->compression, i->compression_opts);
        else fputs(i->compression, stdout);
        if (i->shuffle) fputs(", shuffle", stdout);
        if (i->fletcher32) fputs(", fletcher32", stdout);
        fputs("\n  filters      ", stdout);
        if (!i->nfilters) fputs("None", stdout);
        for (size_t k = 0; k < i->nfilters; k++) {
            const hdf5a_filter *f = &i->filters[k];
            printf("%s%s (%u)", k ? ", " : "", f->name && *f->name ? f->name : "?", f->id);
            for (size_t j = 0; j < f->ncd; j++) printf("%s%u", j ? " " : " [", f->cd_values[j]);
            if (f->ncd) fputc(']', stdout);
        }
        fputs("\n  fill value   ", stdout);
        if (i->fillvalue) put_value(stdout, i->fillvalue);
        else fputs("None\n", stdout);
        printf("  storage      %llu bytes\n", (unsigned long long)i->storage_size);
    }
    printf("  attributes   %llu\n", (unsigned long long)i->nattrs);
    hdf5a_objinfo_free(i);
    return EXIT_OK;
}

/* ---- attr ---- */

/* A VALUE from the command line as an array (see ATTR_HELP). The element
 * bytes live in buf (room for 1 string pointer or n 8-byte numbers). */
typedef struct cli_value {
    hdf5a_array a;
    uint64_t dim;
    void *buf;
    const char *str[1];
} cli_value;

static int whole_int(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return end != s && !*end && !errno;
}

static int whole_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && errno != ERANGE;
}

/* "[1, 2.5, 3]": 1-D numbers. -1 when it is not such a list. */
static int parse_list(const char *s, cli_value *v)
{
    size_t len = strlen(s);
    if (len < 2 || s[0] != '[' || s[len - 1] != ']') return -1;
    char *copy = strndup(s + 1, len - 2);
    if (!copy) return -1;
    size_t n = 0, cap = 8;
    double *d = malloc(cap * sizeof *d);
    long long *ll = malloc(cap * sizeof *ll);
    int all_int = 1, ok = d && ll;
    char *p = copy;
    while (ok && *(p += strspn(p, " \t"))) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (n == cap) {
            cap *= 2;
            double *nd = realloc(d, cap * sizeof *d);
            long long *nl = nd ? realloc(ll, cap * sizeof *ll) : NULL;
            if (nd) d = nd;
            if (nl) ll = nl;
            ok = nd && nl;
            if (!ok) break;
        }
        if (whole_int(p, &ll[n])) d[n] = (double)ll[n];
        else if (whole_double(p, &d[n])) all_int = 0;
        else ok = 0;
        n++;
        if (!comma) break;
        p = comma + 1;
        if (!*(p + strspn(p, " \t"))) ok = 0; /* a trailing comma */
    }
    free(copy);
    if (!ok) {
        free(d);
        free(ll);
        return -1;
    }
    if (all_int && n) {
        free(d);
        v->buf = ll;
        v->a.dtype = "<i8";
    } else {
        free(ll);
        v->buf = d;
        v->a.dtype = "<f8";
    }
    v->dim = n;
    v->a.ndim = 1;
    v->a.shape = &v->dim;
    v->a.data = v->buf;
    v->a.nbytes = n * 8;
    return 0;
}

/* 0, -1 when out of memory, or EXIT_USAGE (reported) for a bad VALUE. */
static int parse_value(const char *s, int force_str, cli_value *v)
{
    memset(v, 0, sizeof *v);
    long long i = 0;
    double d = 0;
    if (!force_str && (!strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "True") ||
                       !strcmp(s, "False"))) {
        unsigned char *b = malloc(1);
        if (!b) return -1;
        *b = s[0] == 't' || s[0] == 'T';
        v->buf = b;
        v->a = (hdf5a_array){"|b1", 0, NULL, b, 1};
        return 0;
    }
    int is_int = !force_str && whole_int(s, &i);
    if (is_int || (!force_str && whole_double(s, &d))) {
        void *p = malloc(8);
        if (!p) return -1;
        if (is_int) memcpy(p, &i, 8);
        else memcpy(p, &d, 8);
        v->buf = p;
        v->a = (hdf5a_array){is_int ? "<i8" : "<f8", 0, NULL, p, 8};
        return 0;
    }
    if (!force_str && s[0] == '[') {
        if (parse_list(s, v) == 0) return 0;
        return cli_usage("VALUE '%s': a list holds numbers only ([1, 2.5]); use --npy FILE.npy "
                     "for other arrays, or --string to store the text",
                     s);
    }
    v->str[0] = s;
    v->a = (hdf5a_array){"str", 0, NULL, v->str, sizeof v->str};
    return 0;
}

int cmd_attr(hdf5a_client *c, const cli_args *a)
{
    const char *const *pos = a->pos;
    const char *npy = a->npy, *output = a->output;
    int npos = a->npos, force_str = a->force_str;
    const char *sub = pos[0], *path = pos[1], *name = npos > 2 ? pos[2] : NULL;
    int want = !strcmp(sub, "ls") ? 2 : !strcmp(sub, "get") || !strcmp(sub, "rm") ? 3
               : !strcmp(sub, "set")                                                 ? (npy ? 3 : 4)
                                                                                     : -1;
    if (want < 0) return cli_usage("unknown attr subcommand '%s' (ls, get, set, rm)", sub);
    if (npos < want)
        return cli_usage("attr %s: missing %s", sub,
                         npos < 3 ? "NAME" : "VALUE (or --npy FILE.npy)");
    if (npos > want) return cli_usage("attr %s: unexpected argument '%s'", sub, pos[want]);
    if (output && strcmp(sub, "get")) return cli_usage("-o applies only to 'attr get'");
    if ((npy || force_str) && strcmp(sub, "set"))
        return cli_usage("--npy and --string apply only to 'attr set'");
    if (npy && force_str) return cli_usage("--string and --npy do not go together");

    int rc = 0;
    if (!strcmp(sub, "ls")) {
        hdf5a_listing *l = NULL;
        if ((rc = hdf5a_list_attrs(c, path, &l))) return cli_lib_error(c, rc, 0);
        for (size_t i = 0; i < l->count; i++) put_entry(&l->entries[i], l->entries[i].name);
        hdf5a_listing_free(l);
        return EXIT_OK;
    }
    if (!strcmp(sub, "rm")) {
        rc = hdf5a_delete_attr(c, path, name);
        return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
    }
    if (!strcmp(sub, "get")) {
        hdf5a_array *v = NULL;
        if ((rc = hdf5a_get_attr(c, path, name, &v))) return cli_lib_error(c, rc, 0);
        int status = EXIT_OK;
        char err[1024];
        if (output) {
            if (npy_save(output, v, err, sizeof err)) {
                cli_msg("%s", err);
                status = EXIT_FILE;
            }
        } else {
            np_type *t = np_type_parse(v->dtype, err, sizeof err);
            if (!t || format_value(stdout, v, t) < 0) {
                cli_msg("cannot show attribute %s of %s", name, path);
                status = EXIT_CONN;
            }
            np_type_free(t);
        }
        hdf5a_array_free(v);
        return status;
    }
    /* set */
    if (npy) {
        npy_array arr;
        char err[1024];
        memset(&arr, 0, sizeof arr);
        if (npy_load(npy, &arr, err, sizeof err)) {
            cli_msg("%s", err);
            return EXIT_FILE;
        }
        hdf5a_array h = {arr.dtype_str, arr.ndim, arr.shape, arr.data, arr.nbytes};
        rc = hdf5a_set_attr(c, path, name, &h);
        npy_free(&arr);
        return rc ? cli_lib_error(c, rc, 1) : EXIT_OK;
    }
    cli_value v;
    if ((rc = parse_value(pos[3], force_str, &v))) {
        if (rc > 0) return rc;
        cli_msg("out of memory");
        return EXIT_CONN;
    }
    rc = hdf5a_set_attr(c, path, name, &v.a);
    free(v.buf);
    return rc ? cli_lib_error(c, rc, 0) : EXIT_OK;
}

int cmd_ls_files(hdf5a_client *c, const cli_args *a)
{
    (void)a;
    hdf5a_listing *l = NULL;
    int rc = hdf5a_list_files(c, &l);
    if (rc) return cli_lib_error(c, rc, 0);
    for (size_t i = 0; i < l->count; i++)
        printf("%-40s %12llu\n", l->entries[i].name,
               (unsigned long long)(l->entries[i].ndim == 1 ? l->entries[i].shape[0] : 0));
    hdf5a_listing_free(l);
    return EXIT_OK;
}

int cmd_compact(hdf5a_client *c, const cli_args *a)
{
    (void)a;
    uint64_t before = 0, after = 0;
    int rc = hdf5a_compact(c, &before, &after);
    if (rc) return cli_lib_error(c, rc, 0);
    printf("compacted: %llu -> %llu bytes\n", (unsigned long long)before,
           (unsigned long long)after);
    return EXIT_OK;
}
