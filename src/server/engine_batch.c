/* Exactly-once requests and batches, the engine's side (engine.h).
 *
 * Exactly-once: a request with client_id and seq that changes the file is
 * looked up in the table (dedup.c) before it is applied; a repeat gets the
 * first reply's result again, without being applied. What is applied is
 * remembered, and the table's new entries go to the log driver before each
 * commit, so they are committed with the changes they describe.
 *
 * Batches: op "batch" applies its ops in order, all or nothing. It commits
 * what came before (so the last commit is exactly the state before the
 * batch), applies the ops one by one, and when one fails rolls back: the
 * log driver drops everything since that commit (h5a_wal_drop), the file is
 * closed and opened again, and the open recovers the last commit as it
 * would after a crash. A crash in the middle of a batch is the same case:
 * no commit happens inside a batch, so a restart finds the state before
 * it. docs/design.md, "Exactly-once and batches", says why this holds.
 *
 * Layer 8, beside engine.c: it calls h5a_engine_execute and the state. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errors.h"
#include "server/dedup.h"
#include "server/engine.h"
#include "server/engine_ops.h"
#include "server/engine_state.h"
#include "server/wal.h"

/* ---- exactly-once ---- */

static bool wants_dedup(const h5a_request *r)
{
    return r->has_seq && !r->err_code && h5a_op_info_of(r->op)->changes;
}

bool h5a_engine_answer_repeat(h5a_engine *e, h5a_request *r)
{
    if (!wants_dedup(r)) return false;
    const uint8_t *res = NULL;
    size_t len = 0;
    h5a_dedup_verdict v = h5a_dedup_check(e->dedup, r->client_id, r->client_id_len, r->seq,
                                          &res, &len);
    if (v == H5A_DEDUP_NEW) return false;
    r->repeat = true;
    h5a_err err = {0, ""};
    size_t mark = h5a_reply_begin(r);
    int rc = 0;
    if (v == H5A_DEDUP_REPEAT)
        mp_put_raw(&r->reply, res, len);
    else if (v == H5A_DEDUP_NOT_KEPT)
        rc = h5a_err_set(&err, H5A_E_SEQ_TOO_OLD,
                         "seq %llu of client_id '%s' was applied once already; its result was "
                         "too large to keep, so it cannot be sent again (not applied again)",
                         (unsigned long long)r->seq, r->client_id);
    else
        rc = h5a_err_set(&err, H5A_E_SEQ_TOO_OLD,
                         "seq %llu of client_id '%s' is older than the %llu the server "
                         "remembers (dedup_window): it may have been applied, and was not "
                         "applied again",
                         (unsigned long long)r->seq, r->client_id,
                         (unsigned long long)e->cfg->dedup_window);
    h5a_reply_finish(r, mark, rc, &err);
    return true;
}

void h5a_engine_remember(h5a_engine *e, h5a_request *r)
{
    if (!wants_dedup(r) || r->repeat || !r->reply_ok) return;
    size_t at = H5A_REPLY_RESULT_AT(r);
    if (r->reply.len < at) return;
    size_t len = r->reply.len - at;
    /* a result with a payload apart (a read's) is not kept */
    if (r->reply_data_len) len = H5A_DEDUP_MAX_RESULT + 1;
    if (h5a_dedup_record(e->dedup, r->client_id, r->client_id_len, r->seq, r->reply.data + at,
                         len) < 0) {
        fprintf(stderr, "hdf5-async-server: out of memory: the result of seq %llu of client_id "
                        "'%s' is not remembered\n",
                (unsigned long long)r->seq, r->client_id);
        return;
    }
    h5a_state_mark_dirty(e); /* its entry must be committed */
}

int h5a_engine_hand_aux(h5a_engine *e)
{
    size_t n = 0;
    const uint8_t *p = h5a_dedup_pending(e->dedup, &n);
    if (!n) return 0;
    if (h5a_wal_add_aux(e->file, p, n) < 0) return -1;
    h5a_dedup_clear_pending(e->dedup);
    return 0;
}

void h5a_engine_dedup_stats(const h5a_engine *e, size_t *clients, size_t *entries, size_t *bytes)
{
    h5a_dedup_stats s = {0, 0, 0};
    if (e->dedup) h5a_dedup_get_stats(e->dedup, &s); /* a bare engine has none */
    *clients = s.clients;
    *entries = s.entries;
    *bytes = s.bytes;
}

/* ---- batches ---- */

/* Back to the last commit: the driver drops what HDF5 still has to say, the
 * file is closed, and opened again, which recovers the last commit. */
static int rollback(h5a_engine *e, h5a_err *err)
{
    h5a_cache_clear(e);
    if (h5a_wal_drop(e->file) < 0)
        return h5a_err_set(err, H5A_E_INTERNAL, "rollback: the file is not the log driver's");
    ssize_t open_objs = H5Fget_obj_count(e->file, H5F_OBJ_ALL);
    if (open_objs > 1)
        fprintf(stderr, "hdf5-async-server: rollback: %zd objects still open in the file\n",
                open_objs - 1);
    H5Fclose(e->file);
    H5Eclear2(H5E_DEFAULT);
    e->file = H5I_INVALID_HID;
    return h5a_engine_reopen(e, err);
}

/* Copy sub's result (its reply after "result", and its payload apart) into
 * b: the batch's list of results. */
static void put_result(mp_buf *b, const h5a_request *sub)
{
    size_t at = H5A_REPLY_RESULT_AT(sub);
    mp_put_raw(b, sub->reply.data + at, sub->reply.len - at);
    if (sub->reply_data_len) mp_put_raw(b, sub->reply_data, sub->reply_data_len);
}

int h5a_op_BATCH(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    char cerr[1024];
    /* the last commit must be the state before the batch */
    if (h5a_engine_pending(e) == H5A_DUR_FLUSH && h5a_engine_commit(e, H5A_DUR_FLUSH, cerr,
                                                                     sizeof cerr) != 0)
        return h5a_err_set(err, H5A_E_HDF5_ERROR,
                           "batch not applied: committing what came before it failed: %s", cerr);
    for (uint32_t i = 0, next = 0; i < r->nsub; i++) {
        h5a_request *sub = r->sub[i];
        if (i >= next) {
            /* a run of appends to one dataset: one write, as outside a
             * batch (each still gets its own answer; a failure is found
             * by the one-by-one fallback, and the whole batch rolled back) */
            next = i + 1;
            while (next < r->nsub && next - i < 4096 && h5a_engine_can_group(sub, r->sub[next]))
                next++;
            h5a_engine_execute_appends(e, &r->sub[i], next - i);
        }
        if (sub->reply_ok && !sub->reply.oom) continue;
        /* the error of op i, as the batch's */
        int code = sub->reply_code ? sub->reply_code : H5A_E_INTERNAL;
        char msg[600];
        mp_doc doc = {0};
        const char *why = "unknown error";
        int wl = 13;
        if (mp_decode(sub->reply.data + 4, sub->reply.len - 4, NULL, &doc, msg, sizeof msg) == 0) {
            const mp_node *er = mp_map_get(&doc.nodes[0], "error");
            const mp_node *m = er ? mp_map_get(er, "message") : NULL;
            if (m && mp_is_raw(m)) why = (const char *)m->v.ptr, wl = (int)m->len;
        }
        snprintf(msg, sizeof msg, "batch op %u (%s) failed: %.*s; nothing of the batch was "
                                  "applied", (unsigned)i, sub->op_name, wl, why);
        mp_doc_free(&doc);
        h5a_err rb;
        if (i > 0 || e->dirty) { /* something may have changed: back to the commit */
            if (rollback(e, &rb))
                fprintf(stderr, "hdf5-async-server: rollback of a batch failed: %s\n", rb.msg);
        }
        r->has_err_index = true;
        r->err_index = i;
        return h5a_err_set(err, code, "%s", msg);
    }
    mp_buf *b = &r->reply;
    mp_put_array_header(b, r->nsub);
    for (uint32_t i = 0; i < r->nsub; i++) put_result(b, r->sub[i]);
    return 0;
}
