/* Reconnect for the asynchronous client (hdf5a_connect_opts.reconnect), as
 * the blocking client does it (blocking.c) but without ever blocking the
 * caller's loop. Kept apart from async.c, which is about one connection.
 *
 * Every request of the caller carries client_id and seq (docs/protocol.md,
 * "Exactly-once requests") and keeps a copy of its whole frame until its
 * reply. When the connection is lost (EOF, reset, a send/recv/connect
 * error) nothing fails: the buffers are dropped, and after a backoff (1 ms,
 * 50 ms, doubling to 1 s) a new connection is started to the address the
 * first one used (no DNS in the loop), TLS on a new session of the same
 * context (no file read again), then the token's auth request first and
 * every unanswered frame again, in order, with the same client_id/seq: the
 * server applies each at most once and answers a repeat with the first
 * reply's result, so every callback fires once, with that result.
 *
 * The wait needs a clock in the caller's loop, and the adapter interface
 * (hdf5a_async_events) only watches one fd. Rather than a timer hook that
 * every adapter would have to grow, the context's fd number is kept and
 * what is behind it changes (dup3): during a wait it is a timerfd, which
 * the loop sees readable when the wait is over, then the new socket. The
 * context asks the loop for no events before each swap, so an epoll-based
 * adapter (libuv's) has dropped the old registration when it adds the new
 * one. This is Linux's (timerfd).
 *
 * The time limit (reconnect_timeout_ms, 0: 60000) runs from the loss while
 * something is pending (or from the first request queued meanwhile) until a
 * reply comes; past it the connection is given up as without reconnect:
 * every pending callback gets HDF5A_ECLOSED, hdf5a_async_error the lost
 * connection's code. With nothing pending the client keeps trying (every
 * second) without a limit. */
#define _GNU_SOURCE /* dup3 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "client/async.h"
#include "proto/errors.h"

#define FIRST_WAIT_MS 50
#define MAX_WAIT_MS 1000

typedef struct h5c_arc {
    struct sockaddr_storage addr; /* where the first connection went */
    struct addrinfo ai;           /* ai_addr points at addr */
    char *token;                  /* NULL: no auth request */
    int timeout_ms;
    char client_id[33];
    uint64_t next_seq;
    int64_t give_up; /* monotonic ms; -1: no limit running */
    int wait_ms;     /* the next backoff; 0: try at once */
    int code;        /* the last failure's: HDF5A_EIO or HDF5A_ECLOSED */
    char why[H5C_ERRLEN];
} h5c_arc;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int h5c_arc_new(hdf5a_async *ac, const struct addrinfo *ai, const char *token, int timeout_ms,
                char *why, size_t whylen)
{
    h5c_arc *a = calloc(1, sizeof *a);
    if (!a || (token && !(a->token = strdup(token)))) {
        free(a);
        return h5a_fail(why, whylen, HDF5A_ENOMEM, "out of memory");
    }
    a->ai = *ai;
    memcpy(&a->addr, ai->ai_addr, ai->ai_addrlen);
    a->ai.ai_addr = (struct sockaddr *)&a->addr;
    a->ai.ai_next = NULL;
    a->ai.ai_canonname = NULL;
    a->timeout_ms = timeout_ms ? timeout_ms : 60000;
    a->give_up = -1;
    unsigned char rnd[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, rnd, sizeof rnd) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof rnd) { /* no /dev/urandom: the clock, the pid, the address */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)a;
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            rnd[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(a->client_id + 2 * i, 3, "%02x", rnd[i]);
    ac->rc = a;
    return 0;
}

void h5c_arc_free(hdf5a_async *ac)
{
    h5c_arc *a = ac->rc;
    h5c_wipe_str(&a->token);
    free(a);
    ac->rc = NULL;
}

void h5c_arc_stamp(hdf5a_async *ac, h5c_request *r)
{
    r->client_id = ac->rc->client_id;
    r->seq = ++ac->rc->next_seq;
}

/* Down (waiting or connecting again) after a first connection: a request
 * queued now starts the time limit. */
static bool reconnecting(const hdf5a_async *ac)
{
    return ac->rc_up && ac->state != ST_CONNECTED;
}

int h5c_arc_keep(hdf5a_async *ac, pending_cb *cb, size_t mark)
{
    h5c_arc *a = ac->rc;
    size_t n = ac->out.len - mark;
    if (!(cb->frame = malloc(n)))
        return HDF5A_ENOMEM;
    memcpy(cb->frame, ac->out.data + mark, n);
    cb->frame_len = n;
    if (ac->state == ST_BACKOFF)
        ac->out.len = mark; /* the output is made anew from the frames */
    if (a->give_up < 0 && reconnecting(ac))
        a->give_up = now_ms() + a->timeout_ms;
    return 0;
}

void h5c_arc_retarget(hdf5a_async *ac, const struct addrinfo *ai)
{
    h5c_arc *a = ac->rc;
    a->ai = *ai;
    memcpy(&a->addr, ai->ai_addr, ai->ai_addrlen);
    a->ai.ai_addr = (struct sockaddr *)&a->addr;
    a->ai.ai_next = NULL;
    a->ai.ai_canonname = NULL;
}

void h5c_arc_replied(hdf5a_async *ac)
{
    ac->rc->give_up = -1;
    ac->rc->wait_ms = 0;
}

int h5c_async_replace_fd(hdf5a_async *ac, int nfd)
{
    want_read(ac, false);
    want_write(ac, false);
    int r;
    while ((r = dup3(nfd, ac->fd, O_CLOEXEC)) < 0 && (errno == EINTR || errno == EBUSY))
        ;
    int e = errno;
    close(nfd);
    errno = e;
    return r < 0 ? -1 : 0;
}

/* The wait before the next try, in ST_BACKOFF. False when no timer could
 * be made (why in a->why). */
static bool start_wait(hdf5a_async *ac, int64_t now)
{
    h5c_arc *a = ac->rc;
    int64_t wait = a->wait_ms;
    a->wait_ms = !a->wait_ms ? FIRST_WAIT_MS
                 : a->wait_ms * 2 > MAX_WAIT_MS ? MAX_WAIT_MS : a->wait_ms * 2;
    if (a->give_up >= 0 && a->give_up - now < wait)
        wait = a->give_up - now;
    if (wait < 1)
        wait = 1; /* a zero it_value would disarm the timer */
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {{0, 0}, {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L}};
    bool ok = t >= 0;
    if (ok && timerfd_settime(t, 0, &its, NULL) < 0) {
        int e = errno;
        close(t);
        errno = e;
        ok = false;
    }
    if (!ok || h5c_async_replace_fd(ac, t) < 0) { /* replace_fd closes t either way */
        snprintf(a->why, sizeof a->why, "cannot wait to reconnect (timerfd): %s",
                 strerror(errno));
        return false;
    }
    ac->state = ST_BACKOFF;
    want_read(ac, true);
    return true;
}

bool h5c_arc_lost(hdf5a_async *ac, int code, char *why, size_t whylen)
{
    h5c_arc *a = ac->rc;
    if (!ac->rc_up || ac->freeing)
        return false; /* the first connection was never made: as without reconnect */
    int64_t now = now_ms();
    a->code = code;
    if (why != a->why)
        snprintf(a->why, sizeof a->why, "%s", why);
    if (a->give_up < 0 && ac->pending > 0)
        a->give_up = now + a->timeout_ms;
    if (a->give_up >= 0 && now >= a->give_up) {
        char last[H5C_ERRLEN];
        snprintf(last, sizeof last, "%s", a->why);
        snprintf(why, whylen, "connection to %.80s lost and not regained within %d ms: %.800s",
                 ac->peer, a->timeout_ms, last);
        return false;
    }
    /* the old connection's bytes are worth nothing now */
    ac->in_start = ac->in_end = 0;
    free(ac->big_block);
    ac->big_block = NULL;
    ac->big = NULL;
    ac->cout_pos = ac->cout_len = 0;
    if (ac->secret_len)
        h5c_wipe(ac->out.data, ac->secret_len);
    ac->secret_len = 0;
    ac->out.len = ac->out_pos = 0;
    if (!start_wait(ac, now)) {
        snprintf(why, whylen, "%s", a->why);
        return false;
    }
    return true;
}

/* The output for a new connection: the token first (a new auth request in
 * place of an unanswered one), then every unanswered frame in order. */
static int requeue(hdf5a_async *ac)
{
    h5c_arc *a = ac->rc;
    ac->out.len = ac->out_pos = 0;
    while (ac->head && ac->head->connect_auth) {
        pending_cb *cb = ac->head;
        ac->head = cb->next;
        if (!ac->head)
            ac->tail = NULL;
        ac->pending--;
        free(cb->frame);
        free(cb);
    }
    if (a->token) {
        pending_cb *cb = calloc(1, sizeof *cb);
        h5c_request r = {.op = H5C_AUTH, .token = a->token};
        const void *tail;
        size_t tail_len;
        if (!cb || h5c_encode_request(&ac->out, ac->next_id + 1, &r, &tail, &tail_len, a->why,
                                      sizeof a->why)) {
            free(cb);
            return h5a_fail(a->why, sizeof a->why, HDF5A_ENOMEM, "out of memory");
        }
        cb->id = ++ac->next_id;
        cb->op = H5C_AUTH;
        cb->connect_auth = true;
        cb->next = ac->head;
        ac->head = cb;
        if (!ac->tail)
            ac->tail = cb;
        ac->pending++;
        ac->secret_len = ac->out.len;
    }
    if (ac->fw)
        h5c_afw_reset(ac);
    for (pending_cb *cb = ac->head; cb; cb = cb->next)
        if (cb->frame)
            mp_put_raw(&ac->out, cb->frame, cb->frame_len);
    if (ac->out.oom) {
        ac->out.oom = false;
        return h5a_fail(a->why, sizeof a->why, HDF5A_ENOMEM, "out of memory resending");
    }
    return 0;
}

void h5c_arc_timer(hdf5a_async *ac)
{
    h5c_arc *a = ac->rc;
    int64_t now = now_ms();
    if (a->give_up >= 0 && now >= a->give_up) {
        h5c_async_fail(ac, a->code, a->why); /* h5c_arc_lost says the time is up */
        return;
    }
    int rc = requeue(ac);
    if (rc) {
        h5c_async_fail(ac, rc, a->why);
        return;
    }
    if (ac->tls && (rc = h5c_tls_restart(ac->tls, a->why, sizeof a->why))) {
        h5c_async_fail(ac, rc, a->why);
        return;
    }
    int error = 0;
    int s = h5c_connect_start(&a->ai, &error);
    if (s < 0 || h5c_async_replace_fd(ac, s) < 0) {
        snprintf(a->why, sizeof a->why, "socket: %s", strerror(errno));
        a->code = HDF5A_EIO;
        if (!start_wait(ac, now))
            h5c_async_fail(ac, HDF5A_EIO, a->why);
        return;
    }
    ac->connect_error = error;
    ac->state = ST_CONNECTING;
    want_read(ac, true);
    want_write(ac, true);
}
