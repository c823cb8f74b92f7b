/* An event loop for one hdf5a_async context made of poll(2) alone, for
 * programs that have no loop of their own (tests, tools, simple clients).
 * Header-only, like hiredis' adapters.
 *
 *     hdf5a_async *ac = hdf5a_async_connect("127.0.0.1", 8888, err, sizeof err);
 *     hdf5a_poll p;
 *     hdf5a_poll_attach(ac, &p);
 *     hdf5a_async_ping(ac, on_pong, NULL);
 *     hdf5a_poll_run(&p, 5000);      // until every callback has fired
 *     hdf5a_async_free(ac);
 *
 * p belongs to the caller and must live until the context is freed; once
 * it is (also from inside a callback), p->ac is NULL and the run functions
 * return. */
#ifndef HDF5_ASYNC_ADAPTERS_POLL_H
#define HDF5_ASYNC_ADAPTERS_POLL_H

#include <errno.h>
#include <poll.h>

#include <hdf5_async.h>

typedef struct hdf5a_poll {
    hdf5a_async *ac; /* NULL once the context is freed */
    short events;    /* POLLIN / POLLOUT, as the context asks */
} hdf5a_poll;

static inline void hdf5a_poll_add_read(void *d) { ((hdf5a_poll *)d)->events |= POLLIN; }
static inline void hdf5a_poll_del_read(void *d) { ((hdf5a_poll *)d)->events &= ~POLLIN; }
static inline void hdf5a_poll_add_write(void *d) { ((hdf5a_poll *)d)->events |= POLLOUT; }
static inline void hdf5a_poll_del_write(void *d) { ((hdf5a_poll *)d)->events &= ~POLLOUT; }

static inline void hdf5a_poll_cleanup(void *d)
{
    hdf5a_poll *p = (hdf5a_poll *)d;
    p->ac = NULL;
    p->events = 0;
}

static inline void hdf5a_poll_attach(hdf5a_async *ac, hdf5a_poll *p)
{
    hdf5a_async_events ev;
    p->ac = ac;
    p->events = 0;
    ev.data = p;
    ev.add_read = hdf5a_poll_add_read;
    ev.del_read = hdf5a_poll_del_read;
    ev.add_write = hdf5a_poll_add_write;
    ev.del_write = hdf5a_poll_del_write;
    ev.cleanup = hdf5a_poll_cleanup;
    hdf5a_async_set_events(ac, &ev);
}

/* Waits up to timeout_ms (-1: forever) for the socket, then lets the
 * context read and write. Returns 1 when something happened (or poll was
 * interrupted by a signal), 0 on timeout or when nothing is wanted, -1 when
 * the context is gone or poll failed. */
static inline int hdf5a_poll_run_once(hdf5a_poll *p, int timeout_ms)
{
    struct pollfd pfd;
    int n;
    if (!p->ac)
        return -1;
    if (!p->events)
        return 0;
    pfd.fd = hdf5a_async_fd(p->ac);
    pfd.events = p->events;
    pfd.revents = 0;
    n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 1 : -1;
    if (n == 0)
        return 0;
    /* errors and hang-ups are found out by the read or write itself; the
     * context may be freed by a callback in between */
    if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
        hdf5a_async_handle_read(p->ac);
    if (p->ac && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
        hdf5a_async_handle_write(p->ac);
    return 1;
}

/* Runs until no request is pending (every callback has fired) or the
 * context is freed. timeout_ms bounds each wait, not the whole run
 * (-1: forever). Returns 0, HDF5A_ETIMEOUT when a wait timed out (the
 * requests stay pending), or HDF5A_EIO when poll failed. */
static inline int hdf5a_poll_run(hdf5a_poll *p, int timeout_ms)
{
    while (p->ac && hdf5a_async_pending(p->ac) > 0) {
        int rc = hdf5a_poll_run_once(p, timeout_ms);
        if (rc < 0)
            return p->ac ? HDF5A_EIO : 0;
        if (rc == 0)
            return HDF5A_ETIMEOUT;
    }
    return 0;
}

#endif
