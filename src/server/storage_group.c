/* Runs of appends grouped by dataset (storage.c's batch loop calls
 * storage_apply_appends): appends to different datasets commute, so a run
 * of them is sorted by file and path and each dataset's rows are applied
 * as one write. Apart from storage.c so that each stays a readable size;
 * the queue, the hand-overs and the commits are storage.c's. Storage
 * thread only. */
#include <stdlib.h>
#include <string.h>

#include "server/engine.h"
#include "server/files.h"
#include "server/storage_int.h"

/* Does r repeat (client_id, seq-or-earlier) of a request before it in the
 * segment being gathered? Then the segment must end before it: it is to be
 * looked up once the earlier one is applied and remembered. */
static bool repeats_in_segment(h5a_storage *st, h5a_request *r, size_t idx)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < r->client_id_len; i++)
        h = (h ^ (uint8_t)r->client_id[i]) * 0x100000001b3ull;
    for (size_t k = h % DUP_SLOTS;; k = (k + 1) % DUP_SLOTS) {
        if (st->dup[k].gen != st->dup_gen) {
            st->dup[k].gen = st->dup_gen;
            st->dup[k].idx = (uint32_t)idx;
            return false;
        }
        h5a_request *o = st->seg[st->dup[k].idx];
        if (o->client_id_len == r->client_id_len &&
            memcmp(o->client_id, r->client_id, r->client_id_len) == 0) {
            if (r->seq <= o->seq) return true;
            st->dup[k].idx = (uint32_t)idx;
            return false;
        }
    }
}

/* A group of appends to one dataset of one file (h5a_engine_can_group). */
static void execute_group(h5a_storage *st, h5a_request **group, size_t g)
{
    h5a_file *f;
    bool created;
    h5a_engine *eng = storage_engine_of(st, group[0], &f, &created);
    if (!eng) { /* the same error for every one */
        for (size_t k = 1; k < g; k++) storage_execute(st, group[k]);
        return;
    }
    if (f && f->gone) {
        for (size_t k = 0; k < g; k++) storage_execute(st, group[k]);
        return;
    }
    h5a_engine_execute_appends(eng, group, g);
    bool any_ok = false;
    for (size_t k = 0; k < g; k++) {
        any_ok |= group[k]->reply_ok;
        if (group[k]->has_seq) h5a_engine_remember(eng, group[k]); /* in its file's table */
    }
    if (created && !any_ok) h5a_files_discard(st->files, f);
}

bool storage_is_plain_append(const h5a_request *r)
{
    return r->op == OP_APPEND && !r->err_code && r->has_data;
}

/* strcmp with '/' sorting before every other byte, so that the paths under
 * "/a" come right after "/a" itself (before "/a-b"). */
static int path_cmp(const char *a, const char *b)
{
    for (; *a && *a == *b; a++, b++) {}
    unsigned char x = *a == '/' ? 1 : (unsigned char)*a, y = *b == '/' ? 1 : (unsigned char)*b;
    return (x > y) - (x < y);
}

/* Requests for the default file (file NULL) first, then by file name. */
static int file_cmp(const char *a, const char *b)
{
    if (!a || !b) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static bool same_file(const h5a_request *a, const h5a_request *b)
{
    return file_cmp(a->file, b->file) == 0;
}

static int cmp_by_path(const void *a, const void *b)
{
    const struct by_path *x = a, *y = b;
    int c = file_cmp(x->r->file, y->r->file);
    if (!c) c = path_cmp(x->r->path, y->r->path);
    return c ? c : (x->idx < y->idx ? -1 : 1);
}

/* Is q inside the group p ("/a/b" inside "/a")? */
static bool nested(const char *p, const char *q)
{
    size_t n = strlen(p);
    return strncmp(p, q, n) == 0 && q[n] == '/';
}

/* Apply the run of appends that starts the batch. Appends to different
 * datasets commute, so within a run of appends (and nothing else) the ones
 * to each dataset are gathered -- keeping their own order -- and applied as
 * one H5Dset_extent and one H5Dwrite. With many clients appending to many
 * datasets this turns a row per HDF5 call into many rows per call. The
 * requests go back in seg[] in arrival order (replies keep each
 * connection's order); returns the rest of the batch. */
h5a_request *storage_apply_appends(h5a_storage *st, h5a_request *r, size_t *count)
{
    h5a_request **seg = st->seg, **group = st->group;
    struct by_path *byp = st->byp;
    size_t n = 0, m = 0, bytes = 0;
    if (++st->dup_gen == 0) { /* wrapped: forget every stamp */
        memset(st->dup, 0, sizeof st->dup);
        st->dup_gen = 1;
    }
    for (; r && n < SEGMENT_MAX && bytes < SEGMENT_BYTES && storage_is_plain_append(r); r = r->next) {
        if (r->has_seq && n > 0 && repeats_in_segment(st, r, n)) break;
        if (r->has_seq && n == 0) (void)repeats_in_segment(st, r, n);
        seg[n] = r;
        bytes += r->frame_len;
        n++;
        /* answered from the exactly-once table: not applied */
        if (storage_answer_repeat(st, r)) continue;
        byp[m].r = r;
        byp[m].idx = n - 1;
        m++;
    }
    size_t total = n;
    n = m;
    /* already in order (one dataset, or each client's appends in turn
     * arriving sorted): no sort, one compare per request */
    bool sorted = true;
    for (size_t i = 1; sorted && i < n; i++) sorted = cmp_by_path(&byp[i - 1], &byp[i]) < 0;
    if (!sorted) qsort(byp, n, sizeof byp[0], cmp_by_path);
    /* One append creating "/a" and another creating "/a/b" do not commute:
     * with nested paths in the segment keep arrival order (runs of
     * consecutive appends to one dataset are still applied as one). With
     * '/' sorting first, a nested path comes right after its parent. */
    for (size_t i = 1; i < n; i++) {
        if (same_file(byp[i - 1].r, byp[i].r) && nested(byp[i - 1].r->path, byp[i].r->path)) {
            /* back to arrival order (which the indexes keep) */
            for (size_t k = 0, j = 0; k < total; k++)
                if (!seg[k]->repeat) byp[j].r = seg[k], byp[j].idx = k, j++;
            break;
        }
    }
    for (size_t i = 0, j; i < n; i = j) {
        size_t g = 0;
        group[g++] = byp[i].r;
        for (j = i + 1; j < n && h5a_engine_can_group(byp[i].r, byp[j].r); j++)
            group[g++] = byp[j].r;
        if (g == 1 || st->no_space)
            for (size_t k = 0; k < g; k++) storage_execute(st, group[k]);
        else execute_group(st, group, g);
    }
    *count = total;
    return r;
}
