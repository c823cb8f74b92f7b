/* The bench's rows for exactly-once requests and batches (bench.c prints
 * them): pipelined appends with and without client_id/seq, and one batch
 * of K appends against K pipelined appends. Frames are made by hand on a
 * raw socket, so that both sides of each ratio cost the client the same
 * and the difference is the server's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_exactly.h"

#define ROWVALS 16

typedef struct {
    uint8_t *d;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->d = realloc(b->d, b->cap);
        if (!b->d) {
            fprintf(stderr, "hdf5-async-bench: out of memory\n");
            exit(1);
        }
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
}
static void put1(buf *b, uint8_t c) { put(b, &c, 1); }
static void put_be(buf *b, uint8_t tag, uint64_t v, int n)
{
    put1(b, tag);
    for (int i = n - 1; i >= 0; i--) put1(b, (uint8_t)(v >> (8 * i)));
}
static void str(buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) put1(b, (uint8_t)(0xa0 | n));
    else put_be(b, 0xd9, n, 1);
    put(b, s, n);
}
static void uint_(buf *b, uint64_t v) { put_be(b, 0xcf, v, 8); }

/* {"op": "append", "path": path, "data": 1 x 16 f8} without its map
 * header (extra keys may precede: the caller counts them) */
static void append_fields(buf *b, const char *path, double first)
{
    double row[ROWVALS] = {first};
    str(b, "op");
    str(b, "append");
    str(b, "path");
    str(b, path);
    str(b, "data");
    put1(b, 0x85);
    str(b, "nd");
    put1(b, 0xc3);
    str(b, "type");
    str(b, "<f8");
    str(b, "kind");
    str(b, "");
    str(b, "shape");
    put1(b, 0x92);
    put1(b, 1);
    put1(b, ROWVALS);
    str(b, "data");
    put_be(b, 0xc4, sizeof row, 1);
    put(b, row, sizeof row);
}

/* A whole frame: length, map {id, [client_id, seq], append...}. */
static void append_frame(buf *b, uint64_t id, const char *cid, uint64_t seq, const char *path)
{
    size_t at = b->len;
    put(b, "\0\0\0\0", 4);
    put1(b, (uint8_t)(0x80 | (cid ? 6 : 4)));
    str(b, "id");
    uint_(b, id);
    if (cid) {
        str(b, "client_id");
        str(b, cid);
        str(b, "seq");
        uint_(b, seq);
    }
    append_fields(b, path, (double)id);
    uint32_t n = (uint32_t)(b->len - at - 4);
    for (int i = 0; i < 4; i++) b->d[at + i] = (uint8_t)(n >> (24 - 8 * i));
}

/* {"id", "op": "batch", "ops": [k appends]} */
static void batch_frame(buf *b, uint64_t id, size_t k, const char *path)
{
    size_t at = b->len;
    put(b, "\0\0\0\0", 4);
    put1(b, 0x83);
    str(b, "id");
    uint_(b, id);
    str(b, "op");
    str(b, "batch");
    str(b, "ops");
    put_be(b, 0xdc, k, 2);
    for (size_t i = 0; i < k; i++) {
        put1(b, 0x83);
        append_fields(b, path, (double)i);
    }
    uint32_t n = (uint32_t)(b->len - at - 4);
    for (int i = 0; i < 4; i++) b->d[at + i] = (uint8_t)(n >> (24 - 8 * i));
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("hdf5-async-bench: connect");
        exit(1);
    }
    return fd;
}

/* Send frames [from, to) of the frame buffer f (offsets in off[]) and read
 * `replies` replies, all failing the run unless "ok": true. */
typedef struct {
    int fd;
    uint8_t rbuf[1 << 16];
    size_t rlen;
} conn;

static size_t take_replies(conn *c)
{
    size_t got = 0, at = 0;
    while (c->rlen - at >= 4) {
        uint32_t n = (uint32_t)c->rbuf[at] << 24 | (uint32_t)c->rbuf[at + 1] << 16 |
                     (uint32_t)c->rbuf[at + 2] << 8 | c->rbuf[at + 3];
        if (n > sizeof c->rbuf - 4) {
            fprintf(stderr, "hdf5-async-bench: reply of %u bytes\n", n);
            exit(1);
        }
        if (c->rlen - at - 4 < n) break;
        if (!memmem(c->rbuf + at + 4, n, "\xa2ok\xc3", 4)) {
            fprintf(stderr, "hdf5-async-bench: an error reply: %.*s\n", (int)n, c->rbuf + at + 4);
            exit(1);
        }
        at += 4 + n;
        got++;
    }
    memmove(c->rbuf, c->rbuf + at, c->rlen - at);
    c->rlen -= at;
    return got;
}

/* Keep `window` frames in flight until all nframes are answered. */
static void run_frames(conn *c, const buf *f, const size_t *off, size_t nframes, size_t window)
{
    size_t sent = 0, done = 0, pos = 0;
    while (done < nframes) {
        size_t upto = sent + (window - (sent - done));
        if (upto > nframes) upto = nframes;
        if (upto > sent) {
            size_t end = upto < nframes ? off[upto] : f->len;
            while (pos < end) {
                ssize_t w = send(c->fd, f->d + pos, end - pos, MSG_NOSIGNAL);
                if (w <= 0) {
                    perror("hdf5-async-bench: send");
                    exit(1);
                }
                pos += (size_t)w;
            }
            sent = upto;
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
        if (r <= 0) {
            perror("hdf5-async-bench: recv");
            exit(1);
        }
        c->rlen += (size_t)r;
        done += take_replies(c);
    }
}

double bx_pipelined_appends(int port, size_t n, size_t window, bool with_seq, const char *path)
{
    buf f = {0};
    size_t *off = malloc(n * sizeof *off);
    /* a client_id of its own per run: seqs start at 1 each time */
    char cid[64];
    snprintf(cid, sizeof cid, "bench-%08x%08x", (unsigned)getpid(), (unsigned)rand());
    for (size_t i = 0; i < n; i++) {
        off[i] = f.len;
        append_frame(&f, i + 1, with_seq ? cid : NULL, i + 1, path);
    }
    conn *c = calloc(1, sizeof *c);
    c->fd = dial(port);
    double t = now_s();
    run_frames(c, &f, off, n, window);
    double rate = (double)n / (now_s() - t);
    close(c->fd);
    free(c);
    free(off);
    free(f.d);
    return rate;
}

double bx_rounds(int port, size_t rounds, size_t k, bool as_batch, const char *path)
{
    buf f = {0};
    size_t per = as_batch ? 1 : k, nf = rounds * per;
    size_t *off = malloc(nf * sizeof *off);
    for (size_t r = 0, i = 0; r < rounds; r++) {
        if (as_batch) {
            off[i++] = f.len;
            batch_frame(&f, r + 1, k, path);
        } else {
            for (size_t j = 0; j < k; j++, i++) {
                off[i] = f.len;
                append_frame(&f, i + 1, NULL, 0, path);
            }
        }
    }
    conn *c = calloc(1, sizeof *c);
    c->fd = dial(port);
    double t = now_s();
    /* one round at a time: its k appends (or its batch) in flight, then
     * the next once all are answered */
    for (size_t r = 0; r < rounds; r++) {
        buf one = {f.d + off[r * per], (r + 1 < rounds ? off[(r + 1) * per] : f.len) - off[r * per], 0};
        size_t *o = malloc(per * sizeof *o);
        for (size_t j = 0; j < per; j++) o[j] = off[r * per + j] - off[r * per];
        run_frames(c, &one, o, per, per);
        free(o);
    }
    double rate = (double)(rounds * k) / (now_s() - t);
    close(c->fd);
    free(c);
    free(off);
    free(f.d);
    return rate;
}
