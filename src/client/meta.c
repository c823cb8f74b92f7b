/* Listings and object descriptions out of replies (list, walk, list_attrs,
 * info, exists). Each result the caller gets is one owned object built in a
 * small arena of its own -- a handful of malloc'd blocks whose addresses
 * never move -- so every string and array inside it is freed by one call,
 * and a listing of 10000 entries costs a few allocations, not 50000. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "proto/errors.h"

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
} chunk;

typedef struct arena {
    chunk *head;
    bool oom;
} arena;

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)
#define CHUNK_MIN 4096

static void *arena_alloc(arena *a, size_t n)
{
    n = ALIGN16(n ? n : 1);
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : (c && c->cap * 2 > CHUNK_MIN ? c->cap * 2 : CHUNK_MIN);
        if (cap > (size_t)1 << 24 && cap > n)
            cap = n > (size_t)1 << 24 ? n : (size_t)1 << 24;
        c = malloc(ALIGN16(sizeof(chunk)) + cap);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c + ALIGN16(sizeof(chunk)) + c->used;
    c->used += n;
    return p;
}

static void arena_free(arena *a)
{
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->head = NULL;
}

/* A str node as a NUL-terminated copy; nil (or an absent key) is NULL. */
static int get_str(arena *a, const mp_node *n, const char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!n || n->type == MP_NIL)
        return 0;
    if (!mp_is_raw(n))
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply has a %s where a string belongs",
                        mp_type_name(n));
    char *s = arena_alloc(a, n->len + 1);
    if (s) {
        memcpy(s, n->v.ptr, n->len);
        s[n->len] = '\0';
    }
    *out = s;
    return 0;
}

/* A dtype description: a string as it is, a descr list as JSON text. */
static int get_dtype(arena *a, const mp_node *n, const char **out, char *err, size_t errlen)
{
    if (!n || n->type != MP_ARRAY)
        return get_str(a, n, out, err, errlen);
    mp_buf json = {0};
    int rc = h5c_msgpack_to_json(n, &json, err, errlen);
    if (!rc) {
        char *s = arena_alloc(a, json.len);
        if (s)
            memcpy(s, json.data, json.len); /* NUL included */
        *out = s;
    }
    mp_buf_free(&json);
    return rc;
}

/* A shape (list of uints; nil entries, allowed when `max`, are unlimited
 * axes); nil is ndim -1. */
static int get_dims(arena *a, const mp_node *n, bool max, int *ndim, const uint64_t **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (!n || n->type == MP_NIL) {
        *ndim = -1;
        return 0;
    }
    if (n->type != MP_ARRAY || n->len > 32)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply has a malformed shape");
    uint64_t *d = arena_alloc(a, n->len * sizeof *d);
    const mp_node *x = mp_first_child(n);
    for (uint32_t i = 0; i < n->len; i++, x = mp_next(x)) {
        if (x->type != MP_UINT && !(max && x->type == MP_NIL))
            return h5a_fail(err, errlen, HDF5A_EREPLY, "reply has a malformed shape");
        if (d)
            d[i] = x->type == MP_NIL ? HDF5A_UNLIMITED : x->v.u;
    }
    *ndim = (int)n->len;
    *out = d;
    return 0;
}

static uint64_t get_uint(const mp_node *n) { return n && n->type == MP_UINT ? n->v.u : 0; }

/* ---- listings ---- */

typedef struct owned_listing {
    hdf5a_listing pub;
    arena a; /* holds this struct too: copy it out before freeing */
} owned_listing;

HDF5A_API void hdf5a_listing_free(hdf5a_listing *l)
{
    if (!l)
        return;
    arena a = ((owned_listing *)l)->a;
    arena_free(&a);
}

int h5c_result_listing(h5c_op op, const mp_node *result, hdf5a_listing **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    const mp_node *list = result, *next = NULL;
    if (op == H5C_LIST_FILES) {
        list = mp_map_get(result, "files");
    } else if (op != H5C_LIST_ATTRS) {
        list = mp_map_get(result, "entries");
        next = mp_map_get(result, "next");
    }
    if (!list || list->type != MP_ARRAY)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "reply has no list of entries");
    arena a = {0};
    owned_listing *o = arena_alloc(&a, sizeof *o);
    hdf5a_entry *es = arena_alloc(&a, list->len * sizeof *es);
    int rc = 0;
    if (!o || !es)
        goto out;
    memset(es, 0, list->len * sizeof *es);
    const char *namekey = op == H5C_WALK ? "path" : "name";
    const mp_node *e = mp_first_child(list);
    for (uint32_t i = 0; i < list->len && !rc && !a.oom; i++, e = mp_next(e)) {
        hdf5a_entry *x = &es[i];
        int mndim;
        if (e->type != MP_MAP)
            return arena_free(&a), h5a_fail(err, errlen, HDF5A_EREPLY, "an entry is not a map");
        if ((rc = get_str(&a, mp_map_get(e, namekey), &x->name, err, errlen)))
            break;
        if (op == H5C_LIST_FILES) { /* a file: its size as a 1-d shape */
            uint64_t *size = arena_alloc(&a, sizeof *size);
            if (size) *size = get_uint(mp_map_get(e, "size"));
            x->kind = "file";
            x->ndim = 1;
            x->shape = x->maxshape = size;
            if (!x->name) {
                rc = h5a_fail(err, errlen, HDF5A_EREPLY, "a file entry lacks its name");
                break;
            }
            continue;
        }
        if (op == H5C_LIST_ATTRS)
            x->kind = "attribute";
        else if ((rc = get_str(&a, mp_map_get(e, "kind"), &x->kind, err, errlen)))
            break;
        if (!x->name || !x->kind) {
            rc = h5a_fail(err, errlen, HDF5A_EREPLY, "an entry lacks its %s or kind", namekey);
            break;
        }
        if ((rc = get_dtype(&a, mp_map_get(e, "dtype"), &x->dtype, err, errlen)) ||
            (rc = get_dims(&a, mp_map_get(e, "shape"), false, &x->ndim, &x->shape, err, errlen)) ||
            (rc = get_dims(&a, mp_map_get(e, "maxshape"), true, &mndim, &x->maxshape, err,
                           errlen)) ||
            (rc = get_str(&a, mp_map_get(e, "target"), &x->target, err, errlen)) ||
            (rc = get_str(&a, mp_map_get(e, "file"), &x->file, err, errlen)))
            break;
        if (mndim != x->ndim) {
            rc = h5a_fail(err, errlen, HDF5A_EREPLY, "an entry's shape and maxshape differ in rank");
            break;
        }
    }
    if (!rc && o)
        rc = get_str(&a, next, &o->pub.next, err, errlen);
out:
    if (!rc && a.oom)
        rc = h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory for a listing");
    if (rc) {
        arena_free(&a);
        return rc;
    }
    o->pub.count = list->len;
    o->pub.entries = es;
    o->a = a;
    *out = &o->pub;
    return 0;
}

/* ---- info ---- */

typedef struct owned_info {
    hdf5a_objinfo pub;
    hdf5a_array *fill; /* its own allocation */
    arena a;
} owned_info;

HDF5A_API void hdf5a_objinfo_free(hdf5a_objinfo *i)
{
    if (!i)
        return;
    owned_info *o = (owned_info *)i;
    hdf5a_array_free(o->fill);
    arena a = o->a;
    arena_free(&a);
}

int h5c_result_info(const mp_node *r, hdf5a_objinfo **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!r || r->type != MP_MAP)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "info result is not a map");
    arena a = {0};
    owned_info *o = arena_alloc(&a, sizeof *o);
    if (!o)
        return h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory");
    memset(o, 0, sizeof *o);
    hdf5a_objinfo *i = &o->pub;
    int rc, mndim;
    i->compression_opts = -1;
    const mp_node *co = mp_map_get(r, "compression_opts"), *sh = mp_map_get(r, "shuffle"),
                  *fl = mp_map_get(r, "fletcher32"), *filters = mp_map_get(r, "filters"),
                  *fill = mp_map_get(r, "fillvalue");
    if ((rc = get_str(&a, mp_map_get(r, "kind"), &i->kind, err, errlen)) ||
        (rc = get_dtype(&a, mp_map_get(r, "dtype"), &i->dtype, err, errlen)) ||
        (rc = get_str(&a, mp_map_get(r, "hdf5_class"), &i->hdf5_class, err, errlen)) ||
        (rc = get_dims(&a, mp_map_get(r, "shape"), false, &i->ndim, &i->shape, err, errlen)) ||
        (rc = get_dims(&a, mp_map_get(r, "maxshape"), true, &mndim, &i->maxshape, err, errlen)) ||
        (rc = get_str(&a, mp_map_get(r, "layout"), &i->layout, err, errlen)) ||
        (rc = get_dims(&a, mp_map_get(r, "chunks"), false, &i->chunk_ndim, &i->chunks, err,
                       errlen)) ||
        (rc = get_str(&a, mp_map_get(r, "compression"), &i->compression, err, errlen)))
        goto fail;
    if (!i->kind || mndim != i->ndim) {
        rc = h5a_fail(err, errlen, HDF5A_EREPLY, "info result lacks a kind or has bad shapes");
        goto fail;
    }
    if (i->chunk_ndim < 0)
        i->chunk_ndim = 0;
    /* a gzip level, a bzip2 block size or an lz4 block size in bytes */
    if (co && co->type == MP_UINT && co->v.u <= INT_MAX)
        i->compression_opts = (int)co->v.u;
    i->shuffle = sh && sh->type == MP_BOOL && sh->v.b;
    i->fletcher32 = fl && fl->type == MP_BOOL && fl->v.b;
    i->nattrs = get_uint(mp_map_get(r, "nattrs"));
    i->members = get_uint(mp_map_get(r, "members"));
    i->storage_size = get_uint(mp_map_get(r, "storage_size"));
    if (filters && filters->type == MP_ARRAY) {
        hdf5a_filter *fs = arena_alloc(&a, filters->len * sizeof *fs);
        const mp_node *f = mp_first_child(filters);
        for (uint32_t k = 0; fs && k < filters->len; k++, f = mp_next(f)) {
            const mp_node *cd = mp_map_get(f, "cd_values");
            fs[k].id = (unsigned)get_uint(mp_map_get(f, "id"));
            if ((rc = get_str(&a, mp_map_get(f, "name"), &fs[k].name, err, errlen)))
                goto fail;
            fs[k].ncd = cd && cd->type == MP_ARRAY ? cd->len : 0;
            unsigned *v = arena_alloc(&a, fs[k].ncd * sizeof *v);
            const mp_node *x = fs[k].ncd ? mp_first_child(cd) : NULL;
            for (size_t j = 0; v && j < fs[k].ncd; j++, x = mp_next(x))
                v[j] = (unsigned)get_uint(x);
            fs[k].cd_values = v;
        }
        i->nfilters = filters->len;
        i->filters = fs;
    }
    if (fill && fill->type != MP_NIL) {
        void *no_frame = NULL; /* the array copies its bytes: the frame is not kept */
        if ((rc = h5c_result_array(fill, &no_frame, &o->fill, err, errlen)))
            goto fail;
        i->fillvalue = o->fill;
    }
    if (a.oom) {
        rc = h5a_fail(err, errlen, HDF5A_ENOMEM, "out of memory for an info result");
        goto fail;
    }
    o->a = a;
    *out = i;
    return 0;
fail:
    hdf5a_array_free(o->fill);
    arena_free(&a);
    return rc;
}

int h5c_result_bool(const mp_node *result, int *out, char *err, size_t errlen)
{
    if (!result || result->type != MP_BOOL)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "result is not a bool");
    *out = result->v.b;
    return 0;
}

int h5c_result_sizes(const mp_node *result, uint64_t out[2], char *err, size_t errlen)
{
    const mp_node *b = result ? mp_map_get(result, "before") : NULL;
    const mp_node *a = result ? mp_map_get(result, "after") : NULL;
    if (!b || !a || b->type != MP_UINT || a->type != MP_UINT)
        return h5a_fail(err, errlen, HDF5A_EREPLY, "compact result is not {\"before\", \"after\"}");
    out[0] = b->v.u;
    out[1] = a->v.u;
    return 0;
}

int h5c_result_identity(const mp_node *result, h5c_identity *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const mp_node *name = mp_map_get(result, "name");
    const mp_node *role = mp_map_get(result, "role");
    if (!result || result->type != MP_MAP || !name || !role || !mp_is_raw(role) ||
        role->len >= sizeof out->role || (name->type != MP_NIL && !mp_is_raw(name)) ||
        (mp_is_raw(name) && name->len >= sizeof out->name))
        return h5a_fail(err, errlen, HDF5A_EREPLY,
                        "auth result is not {\"name\": str or nil, \"role\": str}");
    if (memchr(role->v.ptr, 0, role->len) || (mp_is_raw(name) && memchr(name->v.ptr, 0, name->len)))
        return h5a_fail(err, errlen, HDF5A_EREPLY, "auth result holds a NUL byte");
    memcpy(out->role, role->v.ptr, role->len);
    if (mp_is_raw(name)) {
        memcpy(out->name, name->v.ptr, name->len);
        out->has_name = true;
    }
    out->known = true;
    return 0;
}

void h5c_identity_get(const h5c_identity *id, const char **name, const char **role)
{
    if (name)
        *name = id && id->known && id->has_name ? id->name : NULL;
    if (role)
        *role = id && id->known ? id->role : NULL;
}
