/* Attributes, listing and inspection, links: the operations that look at or
 * rearrange the tree rather than move dataset bytes. Storage thread only,
 * like the rest of the engine (engine.c); wire formats in docs/protocol.md.
 *
 * Paths are followed the way h5py's f[path] follows them: soft and external
 * links in any component lead to what they point at. Only `delete`, `move`
 * and `create_link` look at the last component as a link (a soft link is
 * moved or removed, not its target). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/engine_int.h"
#include "server/h5types.h"
#include "server/lzf_filter.h"

#define ERRLEN H5A_ENGINE_ERRLEN
#define FAIL(code, ...) h5a_fail(err, ERRLEN, code, __VA_ARGS__)
#define H5FAIL(code, ...) h5a_engine_h5fail(err, code, __VA_ARGS__)

/* list and walk: entries per reply when the request names no limit, and
 * the size after which a page ends whatever the limit, so that a reply
 * stays far below the 4 GiB frame limit even with 64 KiB names. */
#define PAGE_DEFAULT 10000
#define PAGE_BYTES (16u * 1024 * 1024)
/* walk: deepest nesting below the walked group (each level is a C and an
 * HDF5 stack frame; real files are never near this). */
#define WALK_MAX_DEPTH H5A_MAX_PATH_DEPTH

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

static hid_t lcpl_intermediate(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

static const char *otype_name(H5O_type_t t)
{
    switch (t) {
    case H5O_TYPE_GROUP: return "group";
    case H5O_TYPE_DATASET: return "dataset";
    case H5O_TYPE_NAMED_DATATYPE: return "datatype";
    default: return "unknown";
    }
}

/* ---- finding things ---- */

int h5a_meta_dangling(hid_t file, const char *name, const char *path, char *err)
{
    H5Eclear2(H5E_DEFAULT);
    H5L_info_t li;
    char *val = NULL;
    int rc;
    if (H5Lget_info(file, name, &li, H5P_DEFAULT) < 0 || li.type == H5L_TYPE_HARD ||
        !(val = malloc(li.u.val_size + 1)) ||
        H5Lget_val(file, name, val, li.u.val_size, H5P_DEFAULT) < 0) {
        rc = H5FAIL(H5A_E_NOT_FOUND, "'%s' is a link that cannot be followed, so '%s' is not found",
                    name, path);
    } else if (li.type == H5L_TYPE_SOFT) {
        val[li.u.val_size] = '\0';
        rc = FAIL(H5A_E_NOT_FOUND, "'%s' is a soft link to '%.300s', which does not exist", name, val);
    } else {
        const char *fname = "?", *oname = "?";
        unsigned flags;
        if (li.type == H5L_TYPE_EXTERNAL)
            H5Lunpack_elink_val(val, li.u.val_size, &flags, &fname, &oname);
        rc = FAIL(H5A_E_NOT_FOUND,
                  "'%s' is an external link to '%.300s' in file '%.300s', which cannot be opened",
                  name, oname, fname);
    }
    free(val);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

/* Walk the components of path. Each one before the last must lead to a
 * group. The last is followed too when follow_last (then *otype says what
 * it is), else only looked at as a link (*ltype). *missing: some component
 * does not exist (not an error here). */
static int lookup(hid_t file, const char *path, bool follow_last, bool *missing,
                  H5O_type_t *otype, H5L_type_t *ltype, char *err)
{
    *missing = false;
    *otype = H5O_TYPE_GROUP;
    *ltype = H5L_TYPE_HARD;
    if (strcmp(path, "/") == 0) return 0;
    size_t n = strlen(path);
    char *buf = strdup(path);
    if (!buf) return FAIL(H5A_E_INTERNAL, "out of memory");
    int rc = 0;
    for (size_t i = 1; i <= n && !rc; i++) {
        if (i < n && buf[i] != '/') continue;
        buf[i] = '\0';
        bool last = i == n;
        htri_t ex = H5Lexists(file, buf, H5P_DEFAULT);
        if (ex < 0) {
            rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot look up '%s'", buf);
        } else if (ex == 0) {
            *missing = true;
            break;
        } else if (last && !follow_last) {
            H5L_info_t li;
            if (H5Lget_info(file, buf, &li, H5P_DEFAULT) < 0)
                rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot look up the link '%s'", buf);
            else
                *ltype = li.type;
        } else if (H5Oexists_by_name(file, buf, H5P_DEFAULT) <= 0) {
            rc = h5a_meta_dangling(file, buf, path, err);
        } else {
            H5O_info_t info;
            if (H5Oget_info_by_name2(file, buf, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
                rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot look at '%s'", buf);
            else if (!last && info.type != H5O_TYPE_GROUP)
                rc = FAIL(H5A_E_NOT_A_GROUP, "'%s' is a %s, not a group, so '%s' cannot exist", buf,
                          otype_name(info.type), path);
            else if (last)
                *otype = info.type;
        }
        buf[i] = '/';
    }
    free(buf);
    return rc;
}

/* The object at path, links followed: NOT_FOUND when there is none. */
static int resolve(hid_t file, const char *path, H5O_type_t *otype, char *err)
{
    bool missing;
    H5L_type_t lt;
    int rc = lookup(file, path, true, &missing, otype, &lt, err);
    if (!rc && missing) rc = FAIL(H5A_E_NOT_FOUND, "no object at '%s'", path);
    return rc;
}

int h5a_meta_link_kind(h5a_engine *e, const char *path, int *kind, char *err)
{
    bool missing;
    H5O_type_t ot;
    H5L_type_t lt;
    int rc = lookup(h5a_engine_file(e), path, false, &missing, &ot, &lt, err);
    *kind = missing                      ? H5A_LINK_NONE
            : lt == H5L_TYPE_HARD        ? H5A_LINK_HARD
            : lt == H5L_TYPE_SOFT        ? H5A_LINK_SOFT
            : lt == H5L_TYPE_EXTERNAL    ? H5A_LINK_EXTERNAL
                                         : H5A_LINK_OTHER;
    return rc;
}

/* ---- describing things ---- */

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "vlen";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

/* The dtype as reads describe the values: a type string, a descr list for
 * structs, "str" / "bytes" for variable-length UTF-8 / ASCII strings, nil
 * when the type has no NumPy mapping (reading it is UNSUPPORTED_TYPE). */
static void put_dtype(mp_buf *b, hid_t type)
{
    dtype *dt = NULL;
    char why[256];
    if (h5t_to_dtype(type, &dt, why, sizeof why)) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
        return;
    }
    if (dt->kind == DT_VLSTR) {
        mp_put_cstr(b, dt->utf8 ? "str" : "bytes");
    } else {
        size_t mark = b->len;
        if (dtype_encode(b, dt) && !b->oom) {
            b->len = mark;
            mp_put_nil(b);
        }
    }
    dtype_free(dt);
}

static void put_dims(mp_buf *b, int n, const hsize_t *d, bool max)
{
    mp_put_array_header(b, (size_t)n);
    for (int i = 0; i < n; i++) {
        if (max && d[i] == H5S_UNLIMITED) mp_put_nil(b);
        else mp_put_uint(b, d[i]);
    }
}

/* "shape" and "maxshape" (two map entries) of a dataspace, as h5py gives
 * them: nil for a null dataspace (h5py.Empty), [] for a scalar, nil in
 * maxshape for an unlimited axis. */
static void put_shapes(mp_buf *b, hid_t space)
{
    hsize_t dims[H5S_MAX_RANK], max[H5S_MAX_RANK];
    int n = H5Sget_simple_extent_ndims(space);
    bool null = H5Sget_simple_extent_type(space) == H5S_NULL || n < 0 || n > H5S_MAX_RANK;
    if (!null) H5Sget_simple_extent_dims(space, dims, max);
    mp_put_cstr(b, "shape");
    if (null) mp_put_nil(b);
    else put_dims(b, n, dims, false);
    mp_put_cstr(b, "maxshape");
    if (null) mp_put_nil(b);
    else put_dims(b, n, max, true);
}

/* One member of a group, for list (key "name") and walk (key "path"):
 * {key, "kind", and per kind: dataset "shape", "maxshape", "dtype";
 * datatype "dtype"; soft_link "target"; external_link "file", "target"}.
 * otype is what a hard link leads to. */
static int put_entry(mp_buf *b, hid_t g, const char *name, const H5L_info_t *li, H5O_type_t otype,
                     const char *key, const char *keyval, char *err)
{
    if (li->type == H5L_TYPE_SOFT || li->type == H5L_TYPE_EXTERNAL) {
        char *val = malloc(li->u.val_size + 1);
        if (!val) return FAIL(H5A_E_INTERNAL, "out of memory");
        if (H5Lget_val(g, name, val, li->u.val_size, H5P_DEFAULT) < 0) {
            free(val);
            return H5FAIL(H5A_E_HDF5_ERROR, "cannot read the link '%s'", keyval);
        }
        val[li->u.val_size] = '\0';
        bool soft = li->type == H5L_TYPE_SOFT;
        const char *fname = NULL, *oname = val;
        unsigned flags;
        if (!soft && H5Lunpack_elink_val(val, li->u.val_size, &flags, &fname, &oname) < 0) {
            free(val);
            return H5FAIL(H5A_E_HDF5_ERROR, "cannot read the external link '%s'", keyval);
        }
        mp_put_map_header(b, soft ? 3 : 4);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, soft ? "soft_link" : "external_link");
        if (!soft) {
            mp_put_cstr(b, "file");
            mp_put_cstr(b, fname);
        }
        mp_put_cstr(b, "target");
        mp_put_cstr(b, oname);
        free(val);
        return 0;
    }
    if (li->type != H5L_TYPE_HARD) {
        mp_put_map_header(b, 2);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "user_link");
        return 0;
    }
    if (otype == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
        if (d < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot open the dataset '%s'", keyval);
        hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
        mp_put_map_header(b, 5);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "dataset");
        put_shapes(b, sp);
        mp_put_cstr(b, "dtype");
        put_dtype(b, t);
        H5Sclose(sp);
        H5Tclose(t);
        H5Dclose(d);
        return 0;
    }
    if (otype == H5O_TYPE_NAMED_DATATYPE) {
        hid_t t = H5Topen2(g, name, H5P_DEFAULT);
        if (t < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot open the datatype '%s'", keyval);
        mp_put_map_header(b, 3);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "datatype");
        mp_put_cstr(b, "dtype");
        put_dtype(b, t);
        H5Tclose(t);
        return 0;
    }
    mp_put_map_header(b, 2);
    mp_put_cstr(b, key);
    mp_put_cstr(b, keyval);
    mp_put_cstr(b, "kind");
    mp_put_cstr(b, otype_name(otype));
    return 0;
}

/* ---- list and walk ---- */

typedef struct page {
    mp_buf entries; /* the entries, without their array header */
    size_t count;
    uint64_t limit;
    bool more;  /* stopped before the end: "next" is `last` */
    char *last; /* name / path of the last entry in the page */
    int rc;
    char *err;
} page;

static bool page_full(const page *p)
{
    return p->count >= p->limit || p->entries.len >= PAGE_BYTES;
}

static int page_add(page *p, hid_t g, const char *name, const H5L_info_t *li, H5O_type_t otype,
                    const char *key, const char *keyval)
{
    char *copy = strdup(keyval);
    if (!copy) return p->rc = h5a_fail(p->err, ERRLEN, H5A_E_INTERNAL, "out of memory");
    if ((p->rc = put_entry(&p->entries, g, name, li, otype, key, keyval, p->err))) {
        free(copy);
        return p->rc;
    }
    free(p->last);
    p->last = copy;
    p->count++;
    return 0;
}

/* {"entries": [...], "next": last or nil} */
static void page_reply(mp_buf *b, page *p)
{
    mp_put_map_header(b, 2);
    mp_put_cstr(b, "entries");
    mp_put_array_header(b, p->count);
    mp_put_raw(b, p->entries.data, p->entries.len);
    mp_put_cstr(b, "next");
    if (p->more) mp_put_cstr(b, p->last);
    else mp_put_nil(b);
}

static void page_free(page *p)
{
    mp_buf_free(&p->entries);
    free(p->last);
}

/* What a hard link leads to (other links: H5O_TYPE_UNKNOWN). */
static int member_type(hid_t g, const char *name, const H5L_info_t *li, H5O_type_t *t, char *err)
{
    *t = H5O_TYPE_UNKNOWN;
    if (li->type != H5L_TYPE_HARD) return 0;
    H5O_info_t info;
    if (H5Oget_info_by_name2(g, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return H5FAIL(H5A_E_HDF5_ERROR, "cannot look at the member '%s'", name);
    *t = info.type;
    return 0;
}

typedef struct {
    page *p;
    const char *after;
} list_ctx;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *li, void *ud)
{
    list_ctx *c = ud;
    page *p = c->p;
    if (c->after && strcmp(name, c->after) <= 0) return 0; /* in an earlier page */
    if (page_full(p)) {
        p->more = true;
        return 1;
    }
    H5O_type_t t;
    if ((p->rc = member_type(g, name, li, &t, p->err))) return -1;
    return page_add(p, g, name, li, t, "name", name) ? -1 : 0;
}

/* Open the group at path for list/walk: NOT_A_GROUP for anything else. */
static int open_group(hid_t file, const char *path, hid_t *g, char *err)
{
    H5O_type_t t;
    int rc = resolve(file, path, &t, err);
    if (rc) return rc;
    if (t != H5O_TYPE_GROUP) return FAIL(H5A_E_NOT_A_GROUP, "'%s' is a %s, not a group", path, otype_name(t));
    if ((*g = H5Gopen2(file, path, H5P_DEFAULT)) < 0)
        return H5FAIL(H5A_E_HDF5_ERROR, "cannot open the group '%s'", path);
    return 0;
}

/* Members in HDF5's name order (byte-wise, like strcmp and h5ls), a page
 * at a time: those after r->after, at most limit of them. */
static int op_list(hid_t file, h5a_request *r, mp_buf *b, char *err)
{
    hid_t g;
    int rc = open_group(file, r->path, &g, err);
    if (rc) return rc;
    page p = {.limit = r->limit ? r->limit : PAGE_DEFAULT, .err = err};
    list_ctx c = {&p, r->after};
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &c) < 0 && !p.rc)
        p.rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot list the members of '%s'", r->path);
    H5Eclear2(H5E_DEFAULT);
    H5Gclose(g);
    if (!p.rc) page_reply(b, &p);
    page_free(&p);
    return p.rc;
}

/* walk: list, recursively, depth first, each group's members in name order
 * and each group's contents right after it (what h5ls -r shows). Soft and
 * external links are listed, not followed. The cursor `after` is the path
 * of the last entry of the previous page; everything up to it in this
 * order is skipped without being described, and groups that come wholly
 * before it are not entered. */
typedef struct walker {
    page *p;
    uint64_t max_depth; /* 0 = no limit */
    char **cur;         /* the cursor's components below the walked group */
    size_t ncur;
    haddr_t stack[WALK_MAX_DEPTH + 1]; /* groups being walked: no loops */
    char *path;                        /* of the group being walked, grown as needed */
    size_t plen, pcap;
} walker;

typedef struct {
    walker *w;
    size_t depth;   /* level of the members being iterated: 0 = the walked group's */
    bool on_cursor; /* this group is on the way to the cursor's entry */
} walk_level;

static int walk_group(walker *w, hid_t g, size_t depth, bool on_cursor);

static int path_push(walker *w, const char *name, size_t *saved)
{
    size_t n = strlen(name), need = w->plen + 1 + n + 1;
    if (need > w->pcap) {
        size_t cap = w->pcap * 2 > need ? w->pcap * 2 : need;
        char *np = realloc(w->path, cap);
        if (!np) return h5a_fail(w->p->err, ERRLEN, H5A_E_INTERNAL, "out of memory");
        w->path = np;
        w->pcap = cap;
    }
    *saved = w->plen;
    if (!(w->plen == 1 && w->path[0] == '/')) w->path[w->plen++] = '/';
    memcpy(w->path + w->plen, name, n + 1);
    w->plen += n;
    return 0;
}

static herr_t walk_cb(hid_t g, const char *name, const H5L_info_t *li, void *ud)
{
    walk_level *lv = ud;
    walker *w = lv->w;
    page *p = w->p;
    bool emit = true, child_on_cursor = false;
    if (lv->on_cursor) {
        int c = strcmp(name, w->cur[lv->depth]);
        if (c < 0) return 0; /* it and all below it were in earlier pages */
        if (c == 0) {
            emit = false; /* the cursor's entry itself, or on the way to it */
            child_on_cursor = lv->depth + 1 < w->ncur;
        }
    }
    if (emit && page_full(p)) {
        p->more = true;
        return 1;
    }
    H5O_type_t t;
    size_t saved = 0;
    if ((p->rc = member_type(g, name, li, &t, p->err)) || (p->rc = path_push(w, name, &saved)))
        return -1;
    int rc = 0;
    if (emit && page_add(p, g, name, li, t, "path", w->path)) rc = -1;
    size_t level = lv->depth + 1; /* of this member's members */
    if (!rc && t == H5O_TYPE_GROUP && (!w->max_depth || level < w->max_depth)) {
        hid_t child = H5Gopen2(g, name, H5P_DEFAULT);
        if (child < 0) {
            p->rc = h5a_engine_h5fail(p->err, H5A_E_HDF5_ERROR, "cannot open the group '%s'", w->path);
            rc = -1;
        } else {
            rc = walk_group(w, child, level, child_on_cursor);
            H5Gclose(child);
        }
    }
    w->plen = saved;
    w->path[saved] = '\0';
    return rc;
}

/* Returns 0 (done), 1 (page full) or -1 (error in p->rc). */
static int walk_group(walker *w, hid_t g, size_t depth, bool on_cursor)
{
    page *p = w->p;
    H5O_info_t info;
    if (H5Oget_info2(g, &info, H5O_INFO_BASIC) < 0) {
        p->rc = h5a_engine_h5fail(p->err, H5A_E_HDF5_ERROR, "cannot look at the group '%s'", w->path);
        return -1;
    }
    /* a hard link to a group on the way down would loop forever: list it, do not enter it */
    for (size_t i = 0; i < depth; i++)
        if (w->stack[i] == info.addr) return 0;
    if (depth > WALK_MAX_DEPTH) {
        p->rc = h5a_fail(p->err, ERRLEN, H5A_E_TOO_LARGE,
                         "'%s' is nested more than %d groups deep below the walked group; walk "
                         "it separately or give max_depth",
                         w->path, WALK_MAX_DEPTH);
        return -1;
    }
    w->stack[depth] = info.addr;
    walk_level lv = {w, depth, on_cursor};
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_cb, &lv);
    if (rc < 0 && !p->rc)
        p->rc = h5a_engine_h5fail(p->err, H5A_E_HDF5_ERROR, "cannot list the members of '%s'", w->path);
    H5Eclear2(H5E_DEFAULT);
    return p->rc ? -1 : rc > 0 ? 1 : 0;
}

static int op_walk(hid_t file, h5a_request *r, mp_buf *b, char *err)
{
    page p = {.limit = r->limit ? r->limit : PAGE_DEFAULT, .err = err};
    walker w = {.p = &p, .max_depth = r->max_depth};
    char *cur = NULL;
    hid_t g = H5I_INVALID_HID;
    int rc = 0;
    if (r->after) {
        /* the cursor must be strictly inside the walked group */
        size_t n = strlen(r->path);
        bool root = strcmp(r->path, "/") == 0;
        if (root ? strcmp(r->after, "/") == 0
                 : strncmp(r->after, r->path, n) != 0 || r->after[n] != '/') {
            rc = FAIL(H5A_E_BAD_REQUEST, "'after' ('%.300s') is not a path inside '%s'", r->after,
                      r->path);
            goto out;
        }
        cur = strdup(r->after + (root ? 1 : n + 1));
        w.cur = calloc(strlen(r->after) / 2 + 1, sizeof *w.cur);
        if (!cur || !w.cur) {
            rc = FAIL(H5A_E_INTERNAL, "out of memory");
            goto out;
        }
        for (char *s = cur, *slash;; s = slash + 1) {
            w.cur[w.ncur++] = s;
            if (!(slash = strchr(s, '/'))) break;
            *slash = '\0';
        }
    }
    if ((rc = open_group(file, r->path, &g, err))) goto out;
    w.pcap = strlen(r->path) + 256;
    if (!(w.path = malloc(w.pcap))) {
        rc = FAIL(H5A_E_INTERNAL, "out of memory");
        goto out;
    }
    strcpy(w.path, r->path);
    w.plen = strlen(r->path);
    if (walk_group(&w, g, 0, w.ncur > 0) < 0) rc = p.rc;
    if (!rc) page_reply(b, &p);
out:
    close_id(&g, H5Gclose);
    page_free(&p);
    free(w.path);
    free(w.cur);
    free(cur);
    return rc;
}

/* ---- info and exists ---- */

static void put_filters(mp_buf *b, hid_t dcpl)
{
    int n = H5Pget_nfilters(dcpl);
    if (n < 0) n = 0;
    const char *comp = NULL;
    int level = -1;
    bool shuffle = false, fletcher = false;
    mp_buf list = {0};
    for (int i = 0; i < n; i++) {
        unsigned flags, cd[16], config;
        size_t ncd = 16;
        char name[128] = "";
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, &config);
        if (f < 0) continue;
        if (ncd > 16) ncd = 16;
        if (f == H5Z_FILTER_DEFLATE) comp = "gzip", level = ncd ? (int)cd[0] : 4;
        else if (f == H5A_LZF_FILTER) comp = "lzf";
        else if (f == H5Z_FILTER_SZIP) comp = "szip";
        /* the plugins by the names the compression argument gives them,
         * with their one option (lz4: block bytes, bzip2: block size) */
        else if (f == FILTER_LZ4) comp = "lz4", level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BZIP2) comp = "bzip2", level = ncd ? (int)cd[0] : -1;
        else if (f == FILTER_BITSHUFFLE) comp = "bitshuffle";
        else if (f == H5Z_FILTER_SHUFFLE) shuffle = true;
        else if (f == H5Z_FILTER_FLETCHER32) fletcher = true;
        mp_put_map_header(&list, 3);
        mp_put_cstr(&list, "id");
        mp_put_uint(&list, (uint64_t)f);
        mp_put_cstr(&list, "name");
        mp_put_cstr(&list, name);
        mp_put_cstr(&list, "cd_values");
        mp_put_array_header(&list, ncd);
        for (size_t k = 0; k < ncd; k++) mp_put_uint(&list, cd[k]);
    }
    H5Eclear2(H5E_DEFAULT);
    mp_put_cstr(b, "compression");
    if (comp) mp_put_cstr(b, comp);
    else mp_put_nil(b);
    mp_put_cstr(b, "compression_opts");
    if (level >= 0) mp_put_uint(b, (uint64_t)level);
    else mp_put_nil(b);
    mp_put_cstr(b, "shuffle");
    mp_put_bool(b, shuffle);
    mp_put_cstr(b, "fletcher32");
    mp_put_bool(b, fletcher);
    mp_put_cstr(b, "filters");
    mp_put_array_header(b, (size_t)n);
    if (list.oom) b->oom = true;
    else mp_put_raw(b, list.data, list.len);
    mp_buf_free(&list);
}

/* The fill value as a scalar value like a read's, nil for types reads
 * cannot describe and for variable-length strings (whose fill value is a
 * pointer, not a value). */
static void put_fill(mp_buf *b, hid_t dcpl, hid_t type)
{
    dtype *dt = NULL;
    char why[256];
    void *buf = NULL;
    if (h5t_to_dtype(type, &dt, why, sizeof why) || dt->kind == DT_VLSTR ||
        !(buf = calloc(1, dt->itemsize)) || H5Pget_fill_value(dcpl, type, buf) < 0) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
    } else {
        h5a_array a = {.type = dt, .ndim = 0, .data = buf, .nbytes = dt->itemsize};
        bool follows;
        size_t mark = b->len;
        if (h5a_array_encode(b, &a, &follows, why, sizeof why) && !b->oom) {
            b->len = mark;
            mp_put_nil(b);
        }
    }
    free(buf);
    dtype_free(dt);
}

static void put_nattrs(mp_buf *b, hid_t obj)
{
    H5O_info_t info;
    mp_put_cstr(b, "nattrs");
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) < 0) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
    } else {
        mp_put_uint(b, info.num_attrs);
    }
}

static int info_dataset(hid_t file, const char *path, mp_buf *b, char *err)
{
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot open the dataset '%s'", path);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    mp_put_map_header(b, 15);
    mp_put_cstr(b, "kind");
    mp_put_cstr(b, "dataset");
    put_shapes(b, sp);
    mp_put_cstr(b, "dtype");
    put_dtype(b, t);
    mp_put_cstr(b, "hdf5_class");
    mp_put_cstr(b, class_name(H5Tget_class(t)));
    mp_put_cstr(b, "layout");
    mp_put_cstr(b, layout == H5D_COMPACT      ? "compact"
                   : layout == H5D_CONTIGUOUS ? "contiguous"
                   : layout == H5D_CHUNKED    ? "chunked"
                   : layout == H5D_VIRTUAL    ? "virtual"
                                              : "unknown");
    mp_put_cstr(b, "chunks");
    hsize_t chunk[H5S_MAX_RANK];
    int nc = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk) : -1;
    if (nc >= 0) put_dims(b, nc, chunk, false);
    else mp_put_nil(b);
    put_filters(b, dcpl); /* 5 entries */
    mp_put_cstr(b, "fillvalue");
    put_fill(b, dcpl, t);
    mp_put_cstr(b, "storage_size");
    mp_put_uint(b, H5Dget_storage_size(d));
    put_nattrs(b, d);
    H5Eclear2(H5E_DEFAULT);
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return 0;
}

static int op_info(hid_t file, h5a_request *r, mp_buf *b, char *err)
{
    H5O_type_t t;
    int rc = resolve(file, r->path, &t, err);
    if (rc) return rc;
    if (t == H5O_TYPE_DATASET) return info_dataset(file, r->path, b, err);
    hid_t obj = H5Oopen(file, r->path, H5P_DEFAULT);
    if (obj < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot open '%s'", r->path);
    if (t == H5O_TYPE_GROUP) {
        H5G_info_t gi;
        if (H5Gget_info(obj, &gi) < 0) {
            H5Oclose(obj);
            return H5FAIL(H5A_E_HDF5_ERROR, "cannot look at the group '%s'", r->path);
        }
        mp_put_map_header(b, 3);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "group");
        mp_put_cstr(b, "members");
        mp_put_uint(b, gi.nlinks);
    } else if (t == H5O_TYPE_NAMED_DATATYPE) {
        mp_put_map_header(b, 4);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "datatype");
        mp_put_cstr(b, "dtype");
        put_dtype(b, obj);
        mp_put_cstr(b, "hdf5_class");
        mp_put_cstr(b, class_name(H5Tget_class(obj)));
    } else {
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, otype_name(t));
    }
    put_nattrs(b, obj);
    H5Oclose(obj);
    return 0;
}

/* As h5py's `path in file`: is there a link of that name (the parents
 * followed)? A dangling soft link exists (it takes the name); a missing
 * parent, or one that is not a group or leads nowhere, makes it false. */
static int op_exists(hid_t file, h5a_request *r, mp_buf *b, char *err)
{
    bool missing;
    H5O_type_t ot;
    H5L_type_t lt;
    int rc = lookup(file, r->path, false, &missing, &ot, &lt, err);
    if (rc == H5A_E_NOT_FOUND || rc == H5A_E_NOT_A_GROUP) rc = 0, missing = true;
    if (rc) return rc;
    mp_put_bool(b, !missing);
    return 0;
}

/* ---- links ---- */

static int op_create_link(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    hid_t file = h5a_engine_file(e);
    int kind, rc;
    if (strcmp(r->path, "/") == 0) return FAIL(H5A_E_BAD_PATH, "'/' is the root group; it cannot be a link");
    if ((rc = h5a_meta_link_kind(e, r->path, &kind, err))) return rc;
    if (kind != H5A_LINK_NONE) return FAIL(H5A_E_EXISTS, "'%s' already exists", r->path);
    hid_t lcpl = lcpl_intermediate();
    herr_t hr = H5Lcreate_soft(r->target, file, r->path, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (hr < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot create the soft link '%s'", r->path);
    h5a_engine_mark_dirty(e);
    mp_put_nil(b);
    return 0;
}

static int op_move(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    hid_t file = h5a_engine_file(e);
    int kind, rc;
    if (strcmp(r->path, "/") == 0) return FAIL(H5A_E_BAD_PATH, "the root group '/' cannot be moved");
    if (strcmp(r->dest, "/") == 0) return FAIL(H5A_E_BAD_PATH, "'/' is the root group; nothing can be moved there");
    if ((rc = h5a_meta_link_kind(e, r->path, &kind, err))) return rc;
    if (kind == H5A_LINK_NONE) return FAIL(H5A_E_NOT_FOUND, "no object at '%s' to move", r->path);
    size_t n = strlen(r->path);
    if (strncmp(r->dest, r->path, n) == 0 && r->dest[n] == '/')
        return FAIL(H5A_E_BAD_REQUEST, "cannot move '%s' into itself ('%s')", r->path, r->dest);
    if ((rc = h5a_meta_link_kind(e, r->dest, &kind, err))) return rc;
    if (kind != H5A_LINK_NONE) return FAIL(H5A_E_EXISTS, "'%s' already exists", r->dest);
    /* cached datasets are found by path: under the old one they are gone */
    h5a_engine_forget_paths(e);
    hid_t lcpl = lcpl_intermediate();
    herr_t hr = H5Lmove(file, r->path, file, r->dest, lcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (hr < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot move '%s' to '%s'", r->path, r->dest);
    h5a_engine_mark_dirty(e);
    mp_put_nil(b);
    return 0;
}

/* ---- attributes ---- */

static int open_object(hid_t file, const char *path, hid_t *obj, char *err)
{
    H5O_type_t t;
    int rc = resolve(file, path, &t, err);
    if (rc) return rc;
    if ((*obj = H5Oopen(file, path, H5P_DEFAULT)) < 0)
        return H5FAIL(H5A_E_HDF5_ERROR, "cannot open '%s'", path);
    return 0;
}

static int attr_exists(hid_t obj, const char *path, const char *name, bool *ex, char *err)
{
    htri_t e = H5Aexists(obj, name);
    if (e < 0) return H5FAIL(H5A_E_HDF5_ERROR, "cannot look up attribute '%s' of '%s'", name, path);
    *ex = e > 0;
    return 0;
}

/* Stored as a dataset of the same value would be (the same HDF5 type and
 * shape, h5py's mapping). An existing attribute of that name is replaced:
 * the new one is made under a temporary name first, so a failure leaves
 * the old one as it was. */
static int op_set_attr(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    hid_t obj, mt = H5I_INVALID_HID, sp = H5I_INVALID_HID, att = H5I_INVALID_HID;
    int rc = open_object(h5a_engine_file(e), r->path, &obj, err);
    if (rc) return rc;
    const h5a_array *a = &r->data;
    char tmp[64] = "";
    bool exists = false;
    if ((rc = attr_exists(obj, r->path, r->name, &exists, err))) goto out;
    if ((mt = h5t_from_dtype(a->type, err, ERRLEN)) < 0) {
        rc = H5A_E_UNSUPPORTED_TYPE;
        goto out;
    }
    if (a->ndim) {
        hsize_t dims[H5A_MAX_DIMS];
        for (int i = 0; i < a->ndim; i++) dims[i] = a->dims[i];
        sp = H5Screate_simple(a->ndim, dims, NULL);
    } else {
        sp = H5Screate(H5S_SCALAR);
    }
    for (unsigned i = 0; exists && !tmp[0]; i++) {
        bool taken = false;
        snprintf(tmp, sizeof tmp, ".hdf5-async-tmp-%u", i);
        if ((rc = attr_exists(obj, r->path, tmp, &taken, err))) goto out;
        if (taken) tmp[0] = '\0';
    }
    const char *made = exists ? tmp : r->name;
    if ((att = H5Acreate2(obj, made, mt, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot create attribute '%s' of '%s'", r->name, r->path);
        goto out;
    }
    h5a_engine_mark_dirty(e);
    uint64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->dims[i];
    if (n && H5Awrite(att, mt, a->data) < 0) {
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot write attribute '%s' of '%s'", r->name, r->path);
        close_id(&att, H5Aclose);
        H5Adelete(obj, made);
        H5Eclear2(H5E_DEFAULT);
        goto out;
    }
    close_id(&att, H5Aclose);
    if (exists && (H5Adelete(obj, r->name) < 0 || H5Arename(obj, tmp, r->name) < 0)) {
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot replace attribute '%s' of '%s'", r->name, r->path);
        goto out;
    }
    mp_put_nil(b);
out:
    close_id(&att, H5Aclose);
    close_id(&sp, H5Sclose);
    close_id(&mt, H5Tclose);
    H5Oclose(obj);
    return rc;
}

static int open_attr(hid_t obj, const h5a_request *r, hid_t *att, char *err)
{
    bool ex = false;
    int rc = attr_exists(obj, r->path, r->name, &ex, err);
    if (rc) return rc;
    if (!ex) return FAIL(H5A_E_NOT_FOUND, "'%s' has no attribute '%s'", r->path, r->name);
    if ((*att = H5Aopen(obj, r->name, H5P_DEFAULT)) < 0)
        return H5FAIL(H5A_E_HDF5_ERROR, "cannot open attribute '%s' of '%s'", r->name, r->path);
    return 0;
}

/* The value encoded as a read encodes a dataset's (zero copy for arrays). */
static int op_get_attr(hid_t file, h5a_request *r, char *err)
{
    hid_t obj, att = H5I_INVALID_HID, ft = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    dtype *dt = NULL;
    void *buf = NULL;
    int rc = open_object(file, r->path, &obj, err);
    if (rc) return rc;
    if ((rc = open_attr(obj, r, &att, err))) goto out;
    ft = H5Aget_type(att);
    sp = H5Aget_space(att);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (H5Sget_simple_extent_type(sp) == H5S_NULL) {
        rc = FAIL(H5A_E_UNSUPPORTED_TYPE,
                  "attribute '%s' of '%s' is empty (a null dataspace, h5py.Empty): it has no value",
                  r->name, r->path);
        goto out;
    }
    if (nd < 0 || nd > H5A_MAX_DIMS) {
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot read the shape of attribute '%s'", r->name);
        goto out;
    }
    if ((rc = h5t_to_dtype(ft, &dt, err, ERRLEN))) goto out;
    hsize_t dims[H5A_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    h5a_array a = {.type = dt, .ndim = nd};
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) n *= (a.dims[i] = dims[i]);
    size_t size = H5Tget_size(ft);
    if (n && size > (0xFFFFFFFFull - 65536) / n) {
        rc = FAIL(H5A_E_TOO_LARGE, "attribute '%s' of '%s' is larger than one reply frame (4 GiB)",
                  r->name, r->path);
        goto out;
    }
    a.nbytes = (size_t)n * size;
    if (!(buf = h5a_buf_alloc(a.nbytes ? a.nbytes : 1))) {
        rc = FAIL(H5A_E_INTERNAL, "out of memory for %zu bytes", a.nbytes);
        goto out;
    }
    if (n && H5Aread(att, ft, buf) < 0) {
        h5a_buf_free(buf);
        buf = NULL;
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot read attribute '%s' of '%s'", r->name, r->path);
        goto out;
    }
    a.data = buf;
    bool follows = false;
    if ((rc = h5a_array_encode(&r->reply, &a, &follows, err, ERRLEN))) goto out;
    if (follows) {
        r->reply_data = buf;
        r->reply_data_len = a.nbytes;
        buf = NULL;
    }
out:
    if (buf) {
        if (dt && dt->kind == DT_VLSTR) H5Dvlen_reclaim(ft, sp, H5P_DEFAULT, buf);
        h5a_buf_free(buf);
    }
    dtype_free(dt);
    close_id(&sp, H5Sclose);
    close_id(&ft, H5Tclose);
    close_id(&att, H5Aclose);
    H5Oclose(obj);
    return rc;
}

typedef struct {
    mp_buf entries;
    size_t count;
    int rc;
    char *err;
} attr_list;

static herr_t list_attrs_cb(hid_t obj, const char *name, const H5A_info_t *ai, void *ud)
{
    attr_list *l = ud;
    hid_t att = H5Aopen(obj, name, H5P_DEFAULT);
    if (att < 0) {
        l->rc = h5a_engine_h5fail(l->err, H5A_E_HDF5_ERROR, "cannot open attribute '%s'", name);
        return -1;
    }
    hid_t t = H5Aget_type(att), sp = H5Aget_space(att);
    mp_put_map_header(&l->entries, 4);
    mp_put_cstr(&l->entries, "name");
    mp_put_cstr(&l->entries, name);
    put_shapes(&l->entries, sp); /* 2 entries */
    mp_put_cstr(&l->entries, "dtype");
    put_dtype(&l->entries, t);
    l->count++;
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(att);
    return 0;
}

/* [{"name", "shape", "maxshape", "dtype"}, ...] in name order. */
static int op_list_attrs(hid_t file, h5a_request *r, mp_buf *b, char *err)
{
    hid_t obj;
    int rc = open_object(file, r->path, &obj, err);
    if (rc) return rc;
    attr_list l = {.err = err};
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, list_attrs_cb, &l) < 0 && !l.rc)
        l.rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot list the attributes of '%s'", r->path);
    H5Eclear2(H5E_DEFAULT);
    H5Oclose(obj);
    if (!l.rc) {
        mp_put_array_header(b, l.count);
        if (l.entries.oom) b->oom = true;
        else mp_put_raw(b, l.entries.data, l.entries.len);
    }
    mp_buf_free(&l.entries);
    return l.rc;
}

static int op_delete_attr(h5a_engine *e, h5a_request *r, mp_buf *b, char *err)
{
    hid_t obj;
    int rc = open_object(h5a_engine_file(e), r->path, &obj, err);
    if (rc) return rc;
    bool ex = false;
    if (!(rc = attr_exists(obj, r->path, r->name, &ex, err)) && !ex)
        rc = FAIL(H5A_E_NOT_FOUND, "'%s' has no attribute '%s'", r->path, r->name);
    if (!rc && H5Adelete(obj, r->name) < 0)
        rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot delete attribute '%s' of '%s'", r->name, r->path);
    if (!rc) {
        h5a_engine_mark_dirty(e);
        mp_put_nil(b);
    }
    H5Oclose(obj);
    return rc;
}

typedef struct {
    hid_t to;
    int rc;
    char *err;
} attr_copy;

static herr_t copy_attr_cb(hid_t from, const char *name, const H5A_info_t *ai, void *ud)
{
    attr_copy *c = ud;
    hid_t src = H5Aopen(from, name, H5P_DEFAULT), t = H5I_INVALID_HID, sp = H5I_INVALID_HID,
          dst = H5I_INVALID_HID;
    void *buf = NULL;
    int ok = src >= 0 && (t = H5Aget_type(src)) >= 0 && (sp = H5Aget_space(src)) >= 0;
    hssize_t n = ok ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t size = ok ? H5Tget_size(t) : 0;
    ok = ok && n >= 0 && size && (buf = calloc((size_t)n ? (size_t)n : 1, size)) &&
         (dst = H5Acreate2(c->to, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
         (n == 0 || (H5Aread(src, t, buf) >= 0 && H5Awrite(dst, t, buf) >= 0));
    if (!ok)
        c->rc = h5a_engine_h5fail(c->err, H5A_E_HDF5_ERROR, "cannot copy attribute '%s'", name);
    /* variable-length members were allocated by H5Aread */
    if (buf && n > 0 && sp >= 0 && (H5Tdetect_class(t, H5T_VLEN) > 0 ||
                                    (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0)))
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
    free(buf);
    close_id(&dst, H5Aclose);
    close_id(&sp, H5Sclose);
    close_id(&t, H5Tclose);
    close_id(&src, H5Aclose);
    return ok ? 0 : -1;
}

int h5a_meta_copy_attrs(hid_t from, hid_t to, char *err)
{
    attr_copy c = {to, 0, err};
    hsize_t idx = 0;
    if (H5Aiterate2(from, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr_cb, &c) < 0 && !c.rc)
        c.rc = H5FAIL(H5A_E_HDF5_ERROR, "cannot copy the attributes");
    H5Eclear2(H5E_DEFAULT);
    return c.rc;
}

int h5a_meta_execute(h5a_engine *e, h5a_request *r, char *err)
{
    hid_t file = h5a_engine_file(e);
    mp_buf *b = &r->reply;
    switch (r->op) {
    case OP_SET_ATTR: return op_set_attr(e, r, b, err);
    case OP_GET_ATTR: return op_get_attr(file, r, err);
    case OP_LIST_ATTRS: return op_list_attrs(file, r, b, err);
    case OP_DELETE_ATTR: return op_delete_attr(e, r, b, err);
    case OP_LIST: return op_list(file, r, b, err);
    case OP_WALK: return op_walk(file, r, b, err);
    case OP_INFO: return op_info(file, r, b, err);
    case OP_EXISTS: return op_exists(file, r, b, err);
    case OP_CREATE_LINK: return op_create_link(e, r, b, err);
    case OP_MOVE: return op_move(e, r, b, err);
    default: return FAIL(H5A_E_INTERNAL, "op %d is not an attribute, listing or link op", (int)r->op);
    }
}
