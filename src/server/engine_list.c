/* The metadata operations that list a group: list (its members, a page at
 * a time) and walk (everything below it, depth first). Soft and external
 * links are listed, not followed; pages are cut by count and by size so
 * that a reply stays far below the frame limit. */
#include <stdlib.h>
#include <string.h>

#include "server/engine_describe.h"
#include "server/engine_ops.h"
#include "server/engine_path.h"

/* list and walk: entries per reply when the request names no limit, and
 * the size after which a page ends whatever the limit, so that a reply
 * stays far below the 4 GiB frame limit even with 64 KiB names. */
#define PAGE_DEFAULT 10000
#define PAGE_BYTES (16u * 1024 * 1024)
/* walk: deepest nesting below the walked group (each level is a C and an
 * HDF5 stack frame; real files are never near this). */
#define WALK_MAX_DEPTH H5A_MAX_PATH_DEPTH

/* One member of a group, for list (key "name") and walk (key "path"):
 * {key, "kind", and per kind: dataset "shape", "maxshape", "dtype";
 * datatype "dtype"; soft_link "target"; external_link "file", "target"}.
 * otype is what a hard link leads to. */
static int put_entry(mp_buf *b, hid_t g, const char *name, const H5L_info_t *li, H5O_type_t otype,
                     const char *key, const char *keyval, h5a_err *err)
{
    if (li->type == H5L_TYPE_SOFT || li->type == H5L_TYPE_EXTERNAL) {
        char *val = malloc(li->u.val_size + 1);
        if (!val) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
        if (H5Lget_val(g, name, val, li->u.val_size, H5P_DEFAULT) < 0) {
            free(val);
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the link '%s'", keyval);
        }
        val[li->u.val_size] = '\0';
        bool soft = li->type == H5L_TYPE_SOFT;
        const char *fname = NULL, *oname = val;
        unsigned flags;
        if (!soft && H5Lunpack_elink_val(val, li->u.val_size, &flags, &fname, &oname) < 0) {
            free(val);
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot read the external link '%s'", keyval);
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
        if (d < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the dataset '%s'", keyval);
        hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
        mp_put_map_header(b, 5);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "dataset");
        h5a_put_shapes(b, sp);
        mp_put_cstr(b, "dtype");
        h5a_put_dtype(b, t);
        H5Sclose(sp);
        H5Tclose(t);
        H5Dclose(d);
        return 0;
    }
    if (otype == H5O_TYPE_NAMED_DATATYPE) {
        hid_t t = H5Topen2(g, name, H5P_DEFAULT);
        if (t < 0)
            return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the datatype '%s'", keyval);
        mp_put_map_header(b, 3);
        mp_put_cstr(b, key);
        mp_put_cstr(b, keyval);
        mp_put_cstr(b, "kind");
        mp_put_cstr(b, "datatype");
        mp_put_cstr(b, "dtype");
        h5a_put_dtype(b, t);
        H5Tclose(t);
        return 0;
    }
    mp_put_map_header(b, 2);
    mp_put_cstr(b, key);
    mp_put_cstr(b, keyval);
    mp_put_cstr(b, "kind");
    mp_put_cstr(b, h5a_otype_name(otype));
    return 0;
}

/* list with `info`: the entry written at mark gets "info", what info says
 * about the object its link leads to (hard links; soft links that lead
 * somewhere), nil for the others (external links are never followed). The
 * entry is a map of at most 5 keys, so its header is the one byte of a
 * fixmap, counted up here. */
static int put_entry_info(mp_buf *b, size_t mark, hid_t g, const char *name, const H5L_info_t *li,
                          h5a_err *err)
{
    if (b->oom) return 0;
    b->data[mark]++;
    mp_put_cstr(b, "info");
    H5O_info_t oi;
    if (li->type == H5L_TYPE_HARD ||
        (li->type == H5L_TYPE_SOFT &&
         H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0))
        return h5a_put_info(b, g, name, err);
    H5Eclear2(H5E_DEFAULT);
    mp_put_nil(b);
    return 0;
}

/* ---- pages ---- */

typedef struct page {
    mp_buf entries; /* the entries, without their array header */
    size_t count;
    uint64_t limit;
    bool more;  /* stopped before the end: "next" is `last` */
    bool info;  /* list with `info`: each entry with its object's info */
    char *last; /* name / path of the last entry in the page */
    int rc;
    h5a_err *err;
} page;

static bool page_full(const page *p)
{
    return p->count >= p->limit || p->entries.len >= PAGE_BYTES;
}

static int page_add(page *p, hid_t g, const char *name, const H5L_info_t *li, H5O_type_t otype,
                    const char *key, const char *keyval)
{
    char *copy = strdup(keyval);
    if (!copy) return p->rc = h5a_err_set(p->err, H5A_E_INTERNAL, "out of memory");
    size_t mark = p->entries.len;
    if ((p->rc = put_entry(&p->entries, g, name, li, otype, key, keyval, p->err))) {
        free(copy);
        return p->rc;
    }
    if (p->info && (p->rc = put_entry_info(&p->entries, mark, g, name, li, p->err))) {
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
static int member_type(hid_t g, const char *name, const H5L_info_t *li, H5O_type_t *t,
                       h5a_err *err)
{
    *t = H5O_TYPE_UNKNOWN;
    if (li->type != H5L_TYPE_HARD) return 0;
    H5O_info_t info;
    if (H5Oget_info_by_name2(g, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look at the member '%s'", name);
    *t = info.type;
    return 0;
}

/* Open the group at path for list/walk: NOT_A_GROUP for anything else. */
static int open_group(hid_t file, const char *path, hid_t *g, h5a_err *err)
{
    H5O_type_t t;
    int rc = h5a_path_object(file, path, &t, err);
    if (rc) return rc;
    if (t != H5O_TYPE_GROUP)
        return h5a_err_set(err, H5A_E_NOT_A_GROUP, "'%s' is a %s, not a group", path,
                           h5a_otype_name(t));
    if ((*g = H5Gopen2(file, path, H5P_DEFAULT)) < 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the group '%s'", path);
    return 0;
}

/* ---- list ---- */

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

/* Members in HDF5's name order (byte-wise, like strcmp and h5ls), a page
 * at a time: those after r->after, at most limit of them. */
int h5a_op_LIST(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    hid_t g;
    int rc = open_group(e->file, r->path, &g, err);
    if (rc) return rc;
    page p = {.limit = r->limit ? r->limit : PAGE_DEFAULT, .info = r->with_info, .err = err};
    list_ctx c = {&p, r->after};
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &c) < 0 && !p.rc)
        p.rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot list the members of '%s'", r->path);
    H5Eclear2(H5E_DEFAULT);
    H5Gclose(g);
    if (!p.rc) page_reply(&r->reply, &p);
    page_free(&p);
    return p.rc;
}

/* ---- walk ----
 * list, recursively, depth first, each group's members in name order and
 * each group's contents right after it (what h5ls -r shows). The cursor
 * `after` is the path of the last entry of the previous page; everything up
 * to it in this order is skipped without being described, and groups that
 * come wholly before it are not entered. */

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
        if (!np) return h5a_err_set(w->p->err, H5A_E_INTERNAL, "out of memory");
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
            p->rc = h5a_err_h5(p->err, H5A_E_HDF5_ERROR, "cannot open the group '%s'", w->path);
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
        p->rc = h5a_err_h5(p->err, H5A_E_HDF5_ERROR, "cannot look at the group '%s'", w->path);
        return -1;
    }
    /* a hard link to a group on the way down would loop forever: list it, do not enter it */
    for (size_t i = 0; i < depth; i++)
        if (w->stack[i] == info.addr) return 0;
    if (depth > WALK_MAX_DEPTH) {
        p->rc = h5a_err_set(p->err, H5A_E_TOO_LARGE,
                            "'%s' is nested more than %d groups deep below the walked group; walk "
                            "it separately or give max_depth",
                            w->path, WALK_MAX_DEPTH);
        return -1;
    }
    w->stack[depth] = info.addr;
    walk_level lv = {w, depth, on_cursor};
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, walk_cb, &lv);
    if (rc < 0 && !p->rc)
        p->rc = h5a_err_h5(p->err, H5A_E_HDF5_ERROR, "cannot list the members of '%s'", w->path);
    H5Eclear2(H5E_DEFAULT);
    return p->rc ? -1 : rc > 0 ? 1 : 0;
}

int h5a_op_WALK(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    page p = {.limit = r->limit ? r->limit : PAGE_DEFAULT, .info = r->with_info, .err = err};
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
            rc = h5a_err_set(err, H5A_E_BAD_REQUEST, "'after' ('%.300s') is not a path inside '%s'",
                             r->after, r->path);
            goto out;
        }
        cur = strdup(r->after + (root ? 1 : n + 1));
        w.cur = calloc(strlen(r->after) / 2 + 1, sizeof *w.cur);
        if (!cur || !w.cur) {
            rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
            goto out;
        }
        for (char *s = cur, *slash;; s = slash + 1) {
            w.cur[w.ncur++] = s;
            if (!(slash = strchr(s, '/'))) break;
            *slash = '\0';
        }
    }
    if ((rc = open_group(e->file, r->path, &g, err))) goto out;
    w.pcap = strlen(r->path) + 256;
    if (!(w.path = malloc(w.pcap))) {
        rc = h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
        goto out;
    }
    strcpy(w.path, r->path);
    w.plen = strlen(r->path);
    if (walk_group(&w, g, 0, w.ncur > 0) < 0) rc = p.rc;
    if (!rc) page_reply(&r->reply, &p);
out:
    h5a_close_id(&g, H5Gclose);
    page_free(&p);
    free(w.path);
    free(w.cur);
    free(cur);
    return rc;
}
