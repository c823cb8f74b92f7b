/* Attach an hdf5a_async context to a libuv loop, like hiredis'
 * adapters/libuv.h: one uv_poll_t on the context's socket. Header-only;
 * build with $(pkg-config --cflags --libs libuv).
 *
 *     hdf5a_async *ac = hdf5a_async_connect("127.0.0.1", 8888, err, sizeof err);
 *     hdf5a_libuv_attach(ac, loop);
 *     hdf5a_async_read(ac, "/x", on_read, NULL);
 *     uv_run(loop, UV_RUN_DEFAULT);
 *
 * hdf5a_async_free closes the poll handle; its memory goes back to the heap
 * in the close callback, so the loop must run once more after the free
 * (uv_run does that on its own when it is running). */
#ifndef HDF5_ASYNC_ADAPTERS_LIBUV_H
#define HDF5_ASYNC_ADAPTERS_LIBUV_H

#include <stdlib.h>
#include <uv.h>

#include <hdf5_async.h>

typedef struct hdf5a_libuv {
    hdf5a_async *ac; /* NULL once the context is freed */
    uv_poll_t handle;
    int events;
} hdf5a_libuv;

static inline void hdf5a_libuv_on_poll(uv_poll_t *handle, int status, int events)
{
    hdf5a_libuv *p = (hdf5a_libuv *)handle->data;
    /* on an error libuv reports no events; let the context find out what
     * went wrong by trying what it wanted */
    int ev = status ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        hdf5a_async_handle_read(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        hdf5a_async_handle_write(p->ac);
}

static inline void hdf5a_libuv_update(hdf5a_libuv *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, hdf5a_libuv_on_poll);
    else
        uv_poll_stop(&p->handle);
}

static inline void hdf5a_libuv_add_read(void *d)
{
    hdf5a_libuv *p = (hdf5a_libuv *)d;
    p->events |= UV_READABLE;
    hdf5a_libuv_update(p);
}

static inline void hdf5a_libuv_del_read(void *d)
{
    hdf5a_libuv *p = (hdf5a_libuv *)d;
    p->events &= ~UV_READABLE;
    hdf5a_libuv_update(p);
}

static inline void hdf5a_libuv_add_write(void *d)
{
    hdf5a_libuv *p = (hdf5a_libuv *)d;
    p->events |= UV_WRITABLE;
    hdf5a_libuv_update(p);
}

static inline void hdf5a_libuv_del_write(void *d)
{
    hdf5a_libuv *p = (hdf5a_libuv *)d;
    p->events &= ~UV_WRITABLE;
    hdf5a_libuv_update(p);
}

static inline void hdf5a_libuv_on_close(uv_handle_t *handle) { free(handle->data); }

static inline void hdf5a_libuv_cleanup(void *d)
{
    hdf5a_libuv *p = (hdf5a_libuv *)d;
    p->ac = NULL; /* the context is going away: no more calls into it */
    uv_close((uv_handle_t *)&p->handle, hdf5a_libuv_on_close);
}

/* Returns 0, or a negative libuv error (UV_ENOMEM, or uv_poll_init's);
 * then nothing is attached. */
static inline int hdf5a_libuv_attach(hdf5a_async *ac, uv_loop_t *loop)
{
    hdf5a_async_events ev;
    hdf5a_libuv *p = (hdf5a_libuv *)calloc(1, sizeof *p);
    int rc;
    if (!p)
        return UV_ENOMEM;
    rc = uv_poll_init_socket(loop, &p->handle, hdf5a_async_fd(ac));
    if (rc) {
        free(p);
        return rc;
    }
    p->ac = ac;
    p->handle.data = p;
    ev.data = p;
    ev.add_read = hdf5a_libuv_add_read;
    ev.del_read = hdf5a_libuv_del_read;
    ev.add_write = hdf5a_libuv_add_write;
    ev.del_write = hdf5a_libuv_del_write;
    ev.cleanup = hdf5a_libuv_cleanup;
    hdf5a_async_set_events(ac, &ev);
    return 0;
}

#endif
