/* The server-wide budget (max_buffered_bytes): bytes of frames being
 * received, requests not yet answered and replies not yet written, over all
 * connections of both ports, and what the server does past it. Split from
 * conn.c, whose frame reading it restarts. Event loop thread only. */
#include <stdio.h>

#include "server/http.h"
#include "server/net_int.h"

/*
 * Bytes of frames being received, requests not yet answered and replies not
 * yet written, over all connections. Past the budget, until it drops below
 * 90% of it (the hysteresis keeps the walk over every connection rare): no
 * new large frame is started (its header waits in rbuf), a connection
 * holding HEAVY_BYTES or more of unanswered requests or unsent replies is not
 * read, and of the large frames already arriving one at a time goes on
 * (frame_owner), so that each finishes, runs and frees its memory. Small
 * requests still flow, replies still go out; a frame that stops arriving
 * ends by frame_timeout, a client that stops reading by
 * slow_client_timeout, so the budget always drains. */

static void budget_check(server *s)
{
    uint64_t limit = s->cfg->max_buffered_bytes;
    if (!s->over_budget && s->buffered > limit) {
        s->over_budget = true;
        fprintf(stderr,
                "hdf5-async-server: %.1f MiB buffered for clients, over max_buffered_bytes "
                "(%.1f MiB): reading paused until replies drain\n",
                s->buffered / 1048576.0, limit / 1048576.0);
    } else if (s->over_budget && s->buffered < limit / 10 * 9) {
        s->over_budget = false;
        fprintf(stderr, "hdf5-async-server: back under max_buffered_bytes: reading resumed\n");
        for (conn *c = s->conns, *next; c && !s->over_budget; c = next) {
            next = c->next;
            if (c->big_waits) { /* its header is in rbuf: start that frame now */
                c->big_waits = false;
                conn_parse_frames(c);
            }
            if (!c->closing) conn_maybe_read(c);
        }
        if (!s->over_budget) http_resume_all(s);
    }
}

/* Bytes of large frames still arriving: counted in the budget, and apart */
void net_frames_add(server *s, uint64_t n)
{
    s->frames_bytes += n;
    net_budget_add(s, n);
}

void net_frames_sub(server *s, uint64_t n)
{
    s->frames_bytes -= n;
    net_budget_sub(s, n);
}

void net_budget_add(server *s, uint64_t n)
{
    s->buffered += n;
    if (!s->over_budget && s->buffered > s->cfg->max_buffered_bytes) budget_check(s);
}

static void wake_a_frame(server *s, conn *skip)
{
    for (conn *o = s->conns; o && !s->frame_owner; o = o->next)
        if (o != skip && o->big && !o->closing) conn_maybe_read(o);
}

void net_budget_sub(server *s, uint64_t n)
{
    s->buffered = s->buffered > n ? s->buffered - n : 0;
    if (!s->over_budget) return;
    budget_check(s);
    /* still over, and only arriving frames hold it: let one go on */
    if (s->over_budget && !s->frame_owner && s->frames_bytes &&
        s->buffered - s->frames_bytes < s->cfg->max_buffered_bytes / 10)
        wake_a_frame(s, NULL);
}

/* The frame owner finished its frame or went: let the next one go on. */
void net_frame_owner_done(server *s, conn *c)
{
    if (s->frame_owner != c) return;
    s->frame_owner = NULL;
    if (s->over_budget) wake_a_frame(s, c);
}

