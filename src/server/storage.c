#include "server/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/engine.h"

struct h5a_storage {
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    h5a_request *in_head, *in_tail; /* waiting for the storage thread */
    h5a_request *out_head, *out_tail; /* finished, waiting for the loop */
    bool stop_requested;
    bool dirty; /* storage thread only: requests applied since the last flush */
    bool stopped; /* thread is done, file closed */
    bool stopped_reported;

    uv_async_t async;
    h5a_done_cb done;
    h5a_flush_cb flush;
    h5a_stopped_cb on_stopped;
    void *ud;

    const h5a_config *cfg;
    h5a_engine *engine;
    uv_sem_t opened;
    int open_rc;
    char open_err[1024];
};

static void push(h5a_request **head, h5a_request **tail, h5a_request *r)
{
    r->next = NULL;
    if (*tail) (*tail)->next = r;
    else *head = r;
    *tail = r;
}

/* Bounds on one group of appends applied together. */
#define GROUP_MAX 4096
#define GROUP_BYTES (64u * 1024 * 1024)
/* How long the queue must stay empty before we flush HDF5's caches. */
#define IDLE_FLUSH_NS (2 * 1000 * 1000)

static void storage_main(void *arg)
{
    h5a_storage *st = arg;
    static h5a_request *group[GROUP_MAX]; /* only this thread uses it */
    st->open_rc = h5a_engine_open(&st->engine, st->cfg, st->open_err, sizeof st->open_err);
    uv_sem_post(&st->opened);
    if (st->open_rc) return;

    for (;;) {
        uv_mutex_lock(&st->mu);
        /* Idle and something unflushed: wait a little for more work first,
         * so a client doing one request at a time does not pay for a flush
         * per request; flush once the queue has stayed empty that long. */
        while (!st->in_head && !st->stop_requested && st->dirty) {
            if (uv_cond_timedwait(&st->cv, &st->mu, IDLE_FLUSH_NS) == UV_ETIMEDOUT &&
                !st->in_head) {
                uv_mutex_unlock(&st->mu);
                h5a_engine_flush(st->engine);
                uv_mutex_lock(&st->mu);
                st->dirty = false;
            }
        }
        while (!st->in_head && !st->stop_requested) uv_cond_wait(&st->cv, &st->mu);
        /* take the whole queue at once: one lock round trip per batch */
        h5a_request *batch = st->in_head;
        st->in_head = st->in_tail = NULL;
        bool stop = st->stop_requested && !batch;
        uv_mutex_unlock(&st->mu);
        if (stop) break;

        while (batch) {
            /* a run of appends to one dataset is applied as one write */
            size_t n = 0, bytes = 0;
            h5a_request *r = batch;
            do {
                group[n++] = r;
                bytes += r->frame_len;
                r = r->next;
            } while (r && n < GROUP_MAX && bytes < GROUP_BYTES && h5a_engine_can_group(batch, r));
            batch = r;
            if (n == 1) h5a_engine_execute(st->engine, group[0]);
            else h5a_engine_execute_appends(st->engine, group, n);
            uv_mutex_lock(&st->mu);
            for (size_t i = 0; i < n; i++) {
                /* free big frames before the reply is even sent */
                h5a_request_release_input(group[i]);
                push(&st->out_head, &st->out_tail, group[i]);
            }
            uv_mutex_unlock(&st->mu);
            uv_async_send(&st->async); /* coalesces while the loop is busy */
        }
        st->dirty = true; /* the engine knows whether anything really changed */
    }
    h5a_engine_close(st->engine);
    st->engine = NULL;
    uv_mutex_lock(&st->mu);
    st->stopped = true;
    uv_mutex_unlock(&st->mu);
    uv_async_send(&st->async);
}

static void on_async(uv_async_t *h)
{
    h5a_storage *st = h->data;
    uv_mutex_lock(&st->mu);
    h5a_request *list = st->out_head;
    st->out_head = st->out_tail = NULL;
    bool stopped = st->stopped;
    uv_mutex_unlock(&st->mu);
    while (list) {
        h5a_request *r = list;
        list = list->next;
        st->done(r, st->ud);
    }
    st->flush(st->ud);
    if (stopped && !st->stopped_reported) {
        st->stopped_reported = true;
        st->on_stopped(st->ud);
    }
}

int h5a_storage_start(h5a_storage **out, uv_loop_t *loop, const h5a_config *cfg,
                      h5a_done_cb done, h5a_flush_cb flush, h5a_stopped_cb stopped, void *ud,
                      char *err, size_t errlen)
{
    h5a_storage *st = calloc(1, sizeof *st);
    if (!st) return snprintf(err, errlen, "out of memory"), -1;
    st->cfg = cfg;
    st->done = done;
    st->flush = flush;
    st->on_stopped = stopped;
    st->ud = ud;
    uv_mutex_init(&st->mu);
    uv_cond_init(&st->cv);
    uv_sem_init(&st->opened, 0);
    uv_async_init(loop, &st->async, on_async);
    st->async.data = st;
    if (uv_thread_create(&st->thread, storage_main, st) != 0) {
        snprintf(err, errlen, "cannot start the storage thread");
        return -1; /* the process exits; nothing to clean */
    }
    uv_sem_wait(&st->opened);
    if (st->open_rc) {
        uv_thread_join(&st->thread);
        snprintf(err, errlen, "%s", st->open_err);
        uv_close((uv_handle_t *)&st->async, NULL);
        return -1;
    }
    *out = st;
    return 0;
}

void h5a_storage_submit(h5a_storage *st, h5a_request *req)
{
    uv_mutex_lock(&st->mu);
    push(&st->in_head, &st->in_tail, req);
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

void h5a_storage_stop(h5a_storage *st)
{
    uv_mutex_lock(&st->mu);
    st->stop_requested = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

static void free_after_close(uv_handle_t *h)
{
    h5a_storage *st = h->data;
    uv_mutex_destroy(&st->mu);
    uv_cond_destroy(&st->cv);
    uv_sem_destroy(&st->opened);
    free(st);
}

void h5a_storage_free(h5a_storage *st)
{
    uv_thread_join(&st->thread);
    uv_close((uv_handle_t *)&st->async, free_after_close);
}
