/* The h5grove API (version 4, what h5web's H5GroveProvider consumes):
 * /api/meta, /api/data, /api/attr, /api/paths. Each is answered from
 * requests given to the storage thread like any client's (info, list,
 * read, list_attrs, walk), so the browser sees the file exactly as it
 * stands between two operations; the requests one endpoint needs at once
 * are given in one turn of the loop, so they are applied one right after
 * the other. The engine answers in MessagePack; this file turns that into
 * h5grove's JSON, raw bytes (bin) or .npy, the data streamed from the
 * storage thread's read buffer (/api/data: http_data.c).
 *
 * Where each response shape comes from (silx-kit/h5grove): content.py
 * (metadata of entities and links, sorted keys), utils.py
 * (get_type_metadata, parse_slice, LinkResolution, error messages),
 * encoders.py (json through orjson, bin = tobytes, npy = np.save),
 * docs/_static/api.yaml (parameters, 403/404/422/500). The tests are
 * tests/integration/test_http_h5grove.py. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "proto/errors.h"
#include "server/bigbuf.h"
#include "server/http_h5grove.h"
#include "server/http_int.h"
#include "server/net_int.h"

/* ---- helpers ---- */

h5a_request *h5g_mkreq(h5a_op op, const char *path)
{
    h5a_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->op = op;
    r->op_name = h5a_op_name(op);
    r->durability = -1;
    if (!(r->path = strdup(path))) {
        free(r);
        return NULL;
    }
    return r;
}

static int status_of(int code)
{
    if (code == H5A_E_NOT_FOUND || code == H5A_E_BAD_PATH) return 404;
    if (code == H5A_E_PERMISSION_DENIED || code == H5A_E_UNAUTHENTICATED) return 403;
    if (code == H5A_E_BAD_REQUEST || code == H5A_E_OUT_OF_RANGE || code == H5A_E_SHAPE_MISMATCH ||
        code == H5A_E_TOO_LARGE || code == H5A_E_TYPE_MISMATCH)
        return 422;
    if (code == H5A_E_SHUTTING_DOWN) return 503;
    return 500;
}

const char *h5g_default_name(const struct server *s)
{
    const char *f = s->cfg->file_path, *slash = strrchr(f, '/');
    if (s->cfg->data_root[0] && f[0] != '/') return f; /* its name under the root */
    return slash ? slash + 1 : f;
}

const char *h5g_file_name(const http_conn *c)
{
    const api_state *st = c->api;
    return st && st->file ? st->file : h5g_default_name(c->srv);
}

const char *h5g_request_file(const http_conn *c)
{
    const api_state *st = c->api;
    return st ? st->file : NULL;
}

int h5g_decode(h5a_request *r, reply *rp)
{
    memset(rp, 0, sizeof *rp);
    size_t len = r->reply.len - 4;
    const uint8_t *p = r->reply.data + 4;
    if (r->reply_data_len) {
        size_t n = r->reply_data_len, hdr = n <= 0xFF ? 2 : n <= 0xFFFF ? 3 : 5;
        if (!(rp->copy = malloc(len))) return -1;
        memcpy(rp->copy, p, len);
        len -= hdr - 2;
        rp->copy[len - 2] = 0xc4; /* bin8 of no bytes */
        rp->copy[len - 1] = 0;
        p = rp->copy;
        rp->data = r->reply_data;
        rp->data_len = n;
    }
    mp_limits lim = {.max_depth = 64, .max_nodes = (size_t)1 << 28};
    char err[128];
    if (mp_decode(p, len, &lim, &rp->doc, err, sizeof err)) return -1;
    const mp_node *root = &rp->doc.nodes[0];
    const mp_node *ok = mp_map_get(root, "ok");
    if (!ok) return -1;
    if (ok->v.b) {
        rp->result = mp_map_get(root, "result");
        if (rp->result && rp->data && rp->result->type == MP_MAP) {
            /* the data node is the bin8 we wrote: point it at the bytes */
            const mp_node *k = mp_first_child(rp->result);
            for (uint32_t i = 0; i < rp->result->len; i++, k = mp_next(mp_next(k)))
                if (mp_raw_eq(k, "data")) {
                    mp_node *v = (mp_node *)mp_next(k);
                    v->v.ptr = rp->data;
                    v->len = (uint32_t)(rp->data_len > UINT32_MAX ? 0 : rp->data_len);
                }
        }
        return rp->result ? 0 : -1;
    }
    const mp_node *e = mp_map_get(root, "error");
    const mp_node *code = e ? mp_map_get(e, "code") : NULL, *msg = e ? mp_map_get(e, "message") : NULL;
    rp->code = H5A_E_INTERNAL;
    for (int k = 1; code && k < (int)H5A_E_COUNT_PLUS_ONE; k++) {
        const char *name = h5a_strerror_code(-k);
        if (code->len == strlen(name) && memcmp(code->v.ptr, name, code->len) == 0) rp->code = -k;
    }
    static char msgbuf[1024];
    snprintf(msgbuf, sizeof msgbuf, "%.*s", msg ? (int)msg->len : 0, msg ? (const char *)msg->v.ptr : "");
    rp->msg = msgbuf;
    return 0;
}

void h5g_reply_free(reply *rp)
{
    mp_doc_free(&rp->doc);
    free(rp->copy);
}

const mp_node *h5g_get(const mp_node *map, const char *key)
{
    return map && map->type == MP_MAP ? mp_map_get(map, key) : NULL;
}

bool h5g_is(const mp_node *n, const char *s)
{
    return n && mp_is_raw(n) && mp_raw_eq(n, s);
}

/* An error reply as h5grove words it (h5web looks for "not a valid path",
 * "Cannot resolve", "Permission denied", "File not found"). */
void h5g_fail(http_conn *c, api_state *st, int code, const char *msg)
{
    int status = status_of(code);
    /* the named file is missing, or its name leads out of the root on disk
     * (a symlink): h5grove's answer to a file it cannot open, 404 "File not
     * found!" (open_file_with_error_fallback in h5grove's utils.py) */
    if ((st->file || c->srv->cfg->data_root[0]) &&
        ((code == H5A_E_NOT_FOUND && strncmp(msg, "no file '", 9) == 0) ||
         (code == H5A_E_BAD_REQUEST && strstr(msg, "file '")))) {
        hc_error(c, 404, "File not found! %s", msg);
        return;
    }
    if (status == 404)
        hc_error(c, 404, "%s is not a valid path in %s (%s)", st->path, h5g_file_name(c), msg);
    else if (status == 403) hc_error(c, 403, "Permission denied: %s", msg);
    else hc_error(c, status, "%s", msg);
}

/* ---- metadata (content.py's metadata(), keys sorted as sorted_dict) ---- */

static int put_attributes(hjson *j, const mp_node *attrs)
{
    j_lit(j, "[");
    const mp_node *a = attrs && attrs->type == MP_ARRAY ? mp_first_child(attrs) : NULL;
    for (uint32_t i = 0; a && i < attrs->len; i++, a = mp_next(a)) {
        if (i) j_lit(j, ", ");
        j_lit(j, "{\"name\": ");
        j_from_mp(j, h5g_get(a, "name"));
        j_lit(j, ", \"shape\": ");
        j_from_mp(j, h5g_get(a, "shape"));
        j_lit(j, ", \"type\": ");
        j_from_mp(j, h5g_get(a, "type"));
        j_lit(j, "}");
    }
    j_lit(j, "]");
    return 0;
}

static void put_link(hjson *j, const mp_node *link, const char *name, size_t nlen)
{
    const mp_node *kind = h5g_get(link, "kind");
    if (h5g_is(kind, "soft_link")) {
        j_lit(j, "{\"kind\": \"soft_link\", \"name\": ");
        j_str(j, name, nlen);
        j_lit(j, ", \"target_path\": ");
        j_from_mp(j, h5g_get(link, "target"));
        j_lit(j, "}");
    } else if (h5g_is(kind, "external_link")) {
        j_lit(j, "{\"kind\": \"external_link\", \"name\": ");
        j_str(j, name, nlen);
        j_lit(j, ", \"target_file\": ");
        j_from_mp(j, h5g_get(link, "file"));
        j_lit(j, ", \"target_path\": ");
        j_from_mp(j, h5g_get(link, "target"));
        j_lit(j, "}");
    } else {
        j_lit(j, "{\"kind\": \"other\", \"name\": ");
        j_str(j, name, nlen);
        j_lit(j, "}");
    }
}

/* An entity from its info; children (JSON text of the list) for the top
 * group only. */
static void put_entity(hjson *j, const mp_node *info, const char *name, size_t nlen,
                       const hjson *children)
{
    const mp_node *kind = h5g_get(info, "kind");
    if (h5g_is(kind, "group") || h5g_is(kind, "dataset") || h5g_is(kind, "datatype")) {
        j_lit(j, "{\"attributes\": ");
        put_attributes(j, h5g_get(info, "attrs"));
        if (h5g_is(kind, "dataset")) {
            j_lit(j, ", \"chunks\": ");
            j_from_mp(j, h5g_get(info, "chunks"));
            const mp_node *f = h5g_get(info, "filters");
            j_lit(j, ", \"filters\": ");
            if (!f || f->type != MP_ARRAY || f->len == 0) {
                j_lit(j, "null"); /* h5grove's get_filters: None without filters */
            } else {
                j_lit(j, "[");
                const mp_node *x = mp_first_child(f);
                for (uint32_t i = 0; i < f->len; i++, x = mp_next(x)) {
                    if (i) j_lit(j, ", ");
                    j_lit(j, "{\"id\": ");
                    j_from_mp(j, h5g_get(x, "id"));
                    j_lit(j, ", \"name\": ");
                    j_from_mp(j, h5g_get(x, "name"));
                    j_lit(j, "}");
                }
                j_lit(j, "]");
            }
        }
        if (children) {
            j_lit(j, ", \"children\": [");
            j_raw(j, children->p ? children->p : "", children->len);
            j_lit(j, "]");
        }
        j_lit(j, ", \"kind\": ");
        j_from_mp(j, kind);
        j_lit(j, ", \"name\": ");
        j_str(j, name, nlen);
        if (h5g_is(kind, "dataset")) {
            j_lit(j, ", \"shape\": ");
            j_from_mp(j, h5g_get(info, "shape"));
        }
        if (!h5g_is(kind, "group")) {
            j_lit(j, ", \"type\": ");
            j_from_mp(j, h5g_get(info, "type"));
        }
        j_lit(j, "}");
        return;
    }
    j_lit(j, "{\"kind\": \"other\", \"name\": ");
    j_str(j, name, nlen);
    j_lit(j, "}");
}

/* One page of a group's children (list with info); true when there are
 * more (a request for them was given). */
static bool add_children(http_conn *c, api_state *st, const mp_node *page, bool *failed)
{
    const mp_node *entries = h5g_get(page, "entries");
    const mp_node *e = entries && entries->type == MP_ARRAY ? mp_first_child(entries) : NULL;
    for (uint32_t i = 0; e && i < entries->len; i++, e = mp_next(e)) {
        const mp_node *nm = h5g_get(e, "name"), *info = h5g_get(e, "info");
        if (!nm || !mp_is_raw(nm)) continue;
        if (st->nchildren++) j_lit(&st->children, ", ");
        /* children are resolved as h5grove's create_content does by
         * default (only_valid) */
        if (info && info->type == MP_MAP)
            put_entity(&st->children, info, (const char *)nm->v.ptr, nm->len, NULL);
        else put_link(&st->children, e, (const char *)nm->v.ptr, nm->len);
    }
    const mp_node *next = h5g_get(page, "next");
    if (!next || !mp_is_raw(next)) return false;
    h5a_request *r = h5g_mkreq(OP_LIST, st->path);
    char err[512];
    int rc;
    if (!r || !(r->after = strndup((const char *)next->v.ptr, next->len))) {
        h5a_request_free(r);
        *failed = true;
        hc_error(c, 500, "out of memory");
        return false;
    }
    r->with_info = true;
    if ((rc = hc_submit(c, r, err, sizeof err))) {
        h5a_request_free(r);
        *failed = true;
        hc_error(c, rc, "%s", err);
        return false;
    }
    st->waiting++;
    return true;
}

static void meta_answer(http_conn *c, api_state *st)
{
    reply a, l;
    bool have_l = false;
    if (h5g_decode(st->info, &a)) {
        hc_error(c, 500, "cannot read the engine's reply");
        return;
    }
    if (!a.result) {
        h5g_fail(c, st, a.code, a.msg);
        h5g_reply_free(&a);
        return;
    }
    const mp_node *res = a.result, *kind = h5g_get(res, "kind");
    const mp_node *obj = res;
    bool link = h5g_is(kind, "soft_link") || h5g_is(kind, "external_link") || h5g_is(kind, "user_link");
    hjson j = {0};
    size_t nlen = strlen(st->name);
    if (link) {
        const mp_node *info = h5g_get(res, "info");
        bool resolved = info && info->type == MP_MAP;
        if (st->resolve == RESOLVE_NONE || (st->resolve == RESOLVE_ONLY_VALID && !resolved)) {
            put_link(&j, res, st->name, nlen);
            h5g_reply_free(&a);
            hc_json(c, 200, &j);
            return;
        }
        if (!resolved) {
            const mp_node *t = h5g_get(res, "target");
            hc_error(c, 404, "Cannot resolve %s link to %.*s at %s of %s",
                     h5g_is(kind, "soft_link") ? "soft" : "external", t ? (int)t->len : 0,
                     t ? (const char *)t->v.ptr : "", st->path, h5g_file_name(c));
            h5g_reply_free(&a);
            return;
        }
        obj = info;
    }
    if (h5g_is(h5g_get(obj, "kind"), "group")) {
        /* the first page of children came with it (applied right after) */
        if (st->list) {
            if (h5g_decode(st->list, &l) == 0 && l.result) {
                have_l = true;
                bool failed = false;
                if (add_children(c, st, l.result, &failed)) {
                    /* more pages: wait for them, keep the info reply */
                    h5g_reply_free(&l);
                    h5g_reply_free(&a);
                    h5a_request_free(st->list);
                    st->list = NULL;
                    st->child_group = true;
                    return;
                }
                if (failed) {
                    h5g_reply_free(&l);
                    h5g_reply_free(&a);
                    return;
                }
            }
        }
        put_entity(&j, obj, st->name, nlen, &st->children);
    } else {
        put_entity(&j, obj, st->name, nlen, NULL);
    }
    if (have_l) h5g_reply_free(&l);
    h5g_reply_free(&a);
    hc_json(c, 200, &j);
}

/* ---- /api/attr ---- */

static void attr_answer(http_conn *c, api_state *st, h5a_request *r)
{
    reply rp;
    if (h5g_decode(r, &rp)) {
        h5a_request_free(r);
        hc_error(c, 500, "cannot read the engine's reply");
        return;
    }
    if (!rp.result) {
        h5g_fail(c, st, rp.code, rp.msg);
        h5g_reply_free(&rp);
        h5a_request_free(r); /* the decoded nodes pointed into its reply */
        return;
    }
    hjson j = {0};
    j_lit(&j, "{");
    size_t n = 0;
    bool filter = false;
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].key, "attr_keys") == 0) filter = true;
    /* each asked key in turn (h5grove: attrs[key] for key in attr_keys) */
    int from = 0;
    for (;;) {
        const char *want = NULL;
        if (filter) {
            while (from < c->nparams && strcmp(c->params[from].key, "attr_keys") != 0) from++;
            if (from == c->nparams) break;
            want = c->params[from++].val;
        }
        bool found = false;
        const mp_node *a = rp.result->type == MP_ARRAY ? mp_first_child(rp.result) : NULL;
        for (uint32_t i = 0; a && i < rp.result->len; i++, a = mp_next(a)) {
            const mp_node *nm = h5g_get(a, "name");
            if (!nm || (want && !h5g_is(nm, want))) continue;
            found = true;
            if (n++) j_lit(&j, ", ");
            j_from_mp(&j, nm);
            j_lit(&j, ": ");
            if (j_from_mp(&j, h5g_get(a, "value"))) j_lit(&j, "null");
        }
        if (want && !found) {
            j_free(&j);
            h5g_reply_free(&rp);
        h5a_request_free(r); /* the decoded nodes pointed into its reply */
            hc_error(c, 404, "%s has no attribute '%s' in %s", st->path, want, h5g_file_name(c));
            return;
        }
        if (!filter) break;
    }
    j_lit(&j, "}");
    h5g_reply_free(&rp);
        h5a_request_free(r); /* the decoded nodes pointed into its reply */
    hc_json(c, 200, &j);
}

/* ---- /api/paths ---- */

/* resolve_links=all (content.get_list_of_paths: create_content of every
 * path with LinkResolution.ALL): a link that leads nowhere is 404 "Cannot
 * resolve". External links are never followed here, so each is such a
 * link; each soft link is checked by an info of its path (which follows
 * it), given while the walk goes on. The list is sent once all is known. */
static void paths_all_check(http_conn *c, api_state *st, const mp_node *e)
{
    const mp_node *kind = h5g_get(e, "kind"), *path = h5g_get(e, "path");
    if (st->unresolved || !path || !mp_is_raw(path)) return;
    if (h5g_is(kind, "external_link")) {
        const mp_node *t = h5g_get(e, "target"), *f = h5g_get(e, "file");
        char buf[8600];
        snprintf(buf, sizeof buf, "Cannot resolve <ExternalLink to \"%.*s\" in file \"%.*s\"> at %.*s of %s (external links are never followed)",
                 t ? (int)t->len : 0, t ? (const char *)t->v.ptr : "", f ? (int)f->len : 0,
                 f ? (const char *)f->v.ptr : "", (int)path->len, (const char *)path->v.ptr,
                 h5g_file_name(c));
        st->unresolved = strdup(buf);
        return;
    }
    if (!h5g_is(kind, "soft_link")) return;
    char p[4200];
    snprintf(p, sizeof p, "%.*s", (int)path->len, (const char *)path->v.ptr);
    h5a_request *r = h5g_mkreq(OP_INFO, p);
    char err[512];
    if (!r || hc_submit(c, r, err, sizeof err)) {
        h5a_request_free(r);
        st->unresolved = strdup("Cannot resolve a soft link (out of memory or permission)");
        return;
    }
    st->waiting++;
}

/* resolve_links=all: everything is known once the walk is done and no
 * check waits */
static void paths_all_finish(http_conn *c, api_state *st)
{
    if (!st->walked || st->waiting) return;
    if (st->unresolved) {
        hc_error(c, 404, "%s", st->unresolved);
        return;
    }
    hc_json(c, 200, &st->children);
}

static void paths_all_info(http_conn *c, api_state *st, h5a_request *r)
{
    reply rp;
    if (!st->unresolved && h5g_decode(r, &rp) == 0) {
        if (!rp.result) {
            char buf[8600];
            snprintf(buf, sizeof buf, "Cannot resolve <SoftLink> at %s of %s (%s)", r->path,
                     h5g_file_name(c), rp.msg);
            st->unresolved = strdup(buf);
        }
        h5g_reply_free(&rp);
    }
    h5a_request_free(r);
    paths_all_finish(c, st);
}

static void paths_answer(http_conn *c, api_state *st, h5a_request *r)
{
    reply rp;
    if (h5g_decode(r, &rp)) {
        h5a_request_free(r);
        hc_error(c, 500, "cannot read the engine's reply");
        return;
    }
    if (!rp.result) {
        if (rp.code == H5A_E_NOT_A_GROUP) hc_error(c, 500, "%s is not a group", st->path);
        else h5g_fail(c, st, rp.code, rp.msg);
        h5g_reply_free(&rp);
        h5a_request_free(r); /* the decoded nodes pointed into its reply */
        return;
    }
    bool all = st->resolve == RESOLVE_ALL;
    hjson j0 = {0}, *jp = all ? &st->children : &j0;
#define j (*jp)
    if (!st->started) {
        st->started = true;
        if (!all) hc_start(c, 200, "application/json", -1, NULL);
        j_lit(&j, "[");
        j_cstr(&j, st->path);
    }
    const mp_node *entries = h5g_get(rp.result, "entries");
    const mp_node *e = entries && entries->type == MP_ARRAY ? mp_first_child(entries) : NULL;
    for (uint32_t i = 0; e && i < entries->len; i++, e = mp_next(e)) {
        j_lit(&j, ", ");
        j_from_mp(&j, h5g_get(e, "path"));
        if (all) paths_all_check(c, st, e);
    }
    const mp_node *next = h5g_get(rp.result, "next");
    bool more = next && mp_is_raw(next);
    if (more) {
        h5a_request *w = h5g_mkreq(OP_WALK, st->path);
        char err[512];
        int rc = 0;
        if (!w || !(w->after = strndup((const char *)next->v.ptr, next->len)) ||
            (rc = hc_submit(c, w, err, sizeof err))) {
            h5a_request_free(w);
            more = false;
            j_free(&j);
            h5g_reply_free(&rp);
        h5a_request_free(r); /* the decoded nodes pointed into its reply */
            hc_error(c, rc ? rc : 500, "the listing stopped");
            return;
        }
        st->waiting++;
    } else {
        j_lit(&j, "]");
    }
#undef j
    h5g_reply_free(&rp);
    h5a_request_free(r); /* the decoded nodes pointed into its reply */
    if (all) {
        st->walked = !more;
        paths_all_finish(c, st);
        return;
    }
    if (j0.oom) {
        j_free(&j0);
        hc_error(c, 500, "out of memory");
        return;
    }
    hc_body(c, j0.p, j0.len, free, j0.p);
    if (!more) hc_end(c);
}

/* ---- requests ---- */

void h5g_free(http_conn *c)
{
    api_state *st = c->api;
    if (!st) return;
    if (st->held) hc_hold(c, -(int64_t)st->held);
    h5a_request_free(st->info);
    h5a_request_free(st->list);
    h5a_request_free(st->read);
    dtype_free(st->dt);
    free(st->inline_copy);
    j_free(&st->children);
    free(st->unresolved);
    free(st->file);
    free(st);
    c->api = NULL;
}

void h5g_on_done(http_conn *c, h5a_request *r)
{
    api_state *st = c->api;
    if (!st || c->ended) {
        h5a_request_free(r);
        return;
    }
    st->waiting--;
    if (st->api == API_META) {
        if (st->child_group) { /* a later page of children */
            reply l;
            bool failed = false;
            if (h5g_decode(r, &l) || !l.result) {
                h5a_request_free(r);
                if (l.doc.nodes) h5g_reply_free(&l);
                hc_error(c, 500, "the group changed while its children were listed");
                return;
            }
            bool more = add_children(c, st, l.result, &failed);
            h5g_reply_free(&l);
            h5a_request_free(r);
            if (more || failed) return;
            st->child_group = false;
            h5a_request *info = st->info;
            st->info = NULL;
            /* the info reply is kept: compose with the children now */
            st->info = info;
            reply a;
            if (h5g_decode(st->info, &a) || !a.result) {
                hc_error(c, 500, "cannot read the engine's reply");
                return;
            }
            const mp_node *obj = a.result;
            if (!h5g_is(h5g_get(obj, "kind"), "group")) obj = h5g_get(obj, "info");
            hjson j = {0};
            put_entity(&j, obj, st->name, strlen(st->name), &st->children);
            h5g_reply_free(&a);
            hc_json(c, 200, &j);
            return;
        }
        if (!st->info) st->info = r;
        else st->list = r;
        if (st->waiting == 0) meta_answer(c, st);
        return;
    }
    if (st->api == API_DATA) h5g_data_answer(c, st, r);
    else if (st->api == API_ATTR) attr_answer(c, st, r);
    else if (r->op == OP_INFO) paths_all_info(c, st, r);
    else paths_answer(c, st, r);
}

static int parse_resolve(const char *v, int *out)
{
    if (!v) return *out = RESOLVE_ONLY_VALID, 0;
    if (!strcasecmp(v, "true") || !strcasecmp(v, "all")) *out = RESOLVE_ALL;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "none")) *out = RESOLVE_NONE;
    else if (!strcasecmp(v, "only_valid")) *out = RESOLVE_ONLY_VALID;
    else return -1;
    return 0;
}

static bool parse_bool_arg(const char *v)
{
    return v && strcasecmp(v, "false") != 0; /* h5grove's parse_bool_arg */
}

/* Which file `file` names (issue 14's data_root): without data_root only
 * the served file's base name (as always); with it, any relative name under
 * the root, checked as the binary port checks `file` (file_name.c), and
 * the default file also by its base name when it lies outside the root.
 * A bad name is h5grove's 404 "File not found!" (h5grove joins the name to
 * its base folder and answers 404 to whatever it cannot open). 0, or -1
 * when it has answered. */
static int h5g_pick_file(http_conn *c, api_state *st, const char *file)
{
    const h5a_config *cfg = c->srv->cfg;
    const char *dflt = h5g_default_name(c->srv);
    if (strcmp(file, dflt) == 0) return 0; /* the default file: requests name none */
    if (!cfg->data_root[0]) {
        hc_error(c, 404, "File not found! This server serves '%s' only", dflt);
        return -1;
    }
    char why[512];
    if (h5a_file_name_validate(file, strlen(file), why, sizeof why)) {
        hc_error(c, 404, "File not found! %s", why);
        return -1;
    }
    if (!(st->file = strdup(file))) {
        hc_error(c, 500, "out of memory");
        return -1;
    }
    return 0;
}

void h5g_handle(http_conn *c, int api)
{
    h5g_free(c); /* the previous request's state, on a kept-alive connection */
    api_state *st = calloc(1, sizeof *st);
    if (!st) {
        hc_error(c, 500, "out of memory");
        return;
    }
    c->api = st;
    st->api = api;
    const char *file = hc_param(c, "file");
    if (!file) {
        hc_error(c, 422, "Missing argument file");
        return;
    }
    if (h5g_pick_file(c, st, file)) return;
    const char *path = hc_param(c, "path");
    if (!path || !*path) path = "/";
    /* h5py takes "a/b" as "/a/b", and "/a/" as "/a" */
    snprintf(st->path, sizeof st->path, "%s%s", path[0] == '/' ? "" : "/", path);
    size_t n = strlen(st->path);
    while (n > 1 && st->path[n - 1] == '/') st->path[--n] = '\0';
    const char *slash = strrchr(st->path, '/');
    st->name = slash[1] ? slash + 1 : "";
    char why[256];
    if (h5a_path_validate(st->path, n, why, sizeof why)) {
        hc_error(c, 404, "%s is not a valid path in %s (%s)", path, h5g_file_name(c), why);
        return;
    }
    if (parse_resolve(hc_param(c, "resolve_links"), &st->resolve)) {
        hc_error(c, 422,
                 "%s is not a valid value for link resolution. Accepted values are: all, none or "
                 "only_valid",
                 hc_param(c, "resolve_links"));
        return;
    }
    char err[512];
    int rc = 0;
    h5a_request *r = NULL, *r2 = NULL;
    if (api == API_META) {
        r = h5g_mkreq(OP_INFO, st->path);
        r2 = h5g_mkreq(OP_LIST, st->path);
        if (r) r->link = true;
        if (r2) r2->with_info = true;
    } else if (api == API_ATTR) {
        if ((r = h5g_mkreq(OP_LIST_ATTRS, st->path))) r->values = true;
    } else if (api == API_PATHS) {
        r = h5g_mkreq(OP_WALK, st->path);
    } else {
        const char *fmt = hc_param(c, "format"), *dt = hc_param(c, "dtype");
        if (!fmt || !strcmp(fmt, "json")) st->format = FMT_JSON;
        else if (!strcmp(fmt, "bin")) st->format = FMT_BIN;
        else if (!strcmp(fmt, "npy")) st->format = FMT_NPY;
        else {
            hc_error(c, 422, "Unsupported encoding %s (this server offers json, bin and npy)", fmt);
            return;
        }
        if (dt && strcmp(dt, "origin") != 0 && strcmp(dt, "safe") != 0) {
            hc_error(c, 422, "Unsupported dtype %s", dt);
            return;
        }
        st->safe = dt && !strcmp(dt, "safe");
        st->flatten = parse_bool_arg(hc_param(c, "flatten"));
        if (!(r = h5g_mkreq(OP_READ, st->path))) goto oom;
        const char *sel = hc_param(c, "selection");
        if (sel && *sel && h5g_parse_selection(sel, &r->sel, err, sizeof err)) {
            h5a_request_free(r);
            hc_error(c, 422, "%s", err);
            return;
        }
    }
    if (!r || (api == API_META && !r2)) goto oom;
    if ((rc = hc_submit(c, r, err, sizeof err))) {
        h5a_request_free(r);
        h5a_request_free(r2);
        hc_error(c, rc, "%s", err);
        return;
    }
    st->waiting++;
    if (r2) {
        if ((rc = hc_submit(c, r2, err, sizeof err))) h5a_request_free(r2);
        else st->waiting++;
    }
    return;
oom:
    h5a_request_free(r);
    h5a_request_free(r2);
    hc_error(c, 500, "out of memory");
}
