/* make bench's HTTP row (--only http): what a person watching an
 * acquisition in the browser costs the writers. 64 clients append rows of
 * 1x16 f8 (pipelined, as the pipe64 row) to one growing dataset of a server
 * with http_port, while a browser-like poller asks the HTTP port 20 times a
 * second for that dataset's metadata (/api/meta: its shape, as h5web's
 * refresh does) and then its last 1000 rows (/api/data, selection
 * "N-1000:N,:", format=bin, dtype=safe: what h5web fetches to plot a
 * slice). A browser does not wait for one answer to ask the next when its
 * timer fires: the poller is 4 connections, each polling every 200 ms,
 * 50 ms apart (each answer waits its turn behind the writers' queued
 * appends). Writer throughput with the poller against without it, phases
 * alternating on the same server in the same run (pairs of phases in the
 * order without, with, with, without, ...; medians of each, and the median
 * of the ratios pair by pair); goal
 * >= 0.9x. The poller's figures (polls/s reached, latency) are printed
 * under the row. Kept apart from bench.c to keep that file readable. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define POLL_HZ 20
#define POLL_CONNS 4
#define TAIL_ROWS 1000
#define ROW_BYTES (16 * 8)
#define MAX_POLLS 100000
#define MAX_PAIRS 16

typedef struct poller {
    int port;
    char path[64];
    atomic_bool *stop;
    double start; /* its first poll */
    int fd;
    char *buf;
    size_t cap;
    size_t polls, errors;
    double *lat; /* ms, one per poll */
} poller;

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("cannot connect to the HTTP port: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* GET url on the kept-alive connection; the status, the body in p->buf
 * (*len bytes). Responses here all have a Content-Length. */
static int http_get(poller *p, const char *url, size_t *len)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", url);
    if (p->fd < 0) p->fd = http_connect(p->port);
    if (send(p->fd, req, (size_t)n, MSG_NOSIGNAL) != n) die("HTTP send: %s", strerror(errno));
    size_t have = 0, hdr_end = 0;
    for (;;) {
        if (have + 65536 > p->cap) {
            p->cap = (have + 65536) * 2;
            if (!(p->buf = realloc(p->buf, p->cap))) die("%s", "out of memory");
        }
        ssize_t k = recv(p->fd, p->buf + have, p->cap - have - 1, 0);
        if (k <= 0) die("HTTP recv: %s", k == 0 ? "the server closed the connection" : strerror(errno));
        have += (size_t)k;
        p->buf[have] = '\0';
        char *e = strstr(p->buf, "\r\n\r\n");
        if (e) {
            hdr_end = (size_t)(e - p->buf) + 4;
            break;
        }
    }
    int status = atoi(p->buf + 9);
    char *cl = strcasestr(p->buf, "\r\nContent-Length:");
    if (!cl || cl > p->buf + hdr_end) die("HTTP response without Content-Length: %.200s", p->buf);
    size_t body = strtoull(cl + 17, NULL, 10);
    if (hdr_end + body + 1 > p->cap) {
        p->cap = hdr_end + body + 1;
        if (!(p->buf = realloc(p->buf, p->cap))) die("%s", "out of memory");
    }
    while (have < hdr_end + body) {
        ssize_t k = recv(p->fd, p->buf + have, hdr_end + body - have, 0);
        if (k <= 0) die("HTTP recv: %s", k == 0 ? "the server closed the connection" : strerror(errno));
        have += (size_t)k;
    }
    memmove(p->buf, p->buf + hdr_end, body);
    p->buf[body] = '\0';
    *len = body;
    return status;
}

static void sleep_until(double t)
{
    double d = t - now();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static void *poll_loop(void *arg)
{
    poller *p = arg;
    char url[512];
    double next = p->start;
    sleep_until(next);
    while (!atomic_load(p->stop)) {
        double t = now();
        size_t len;
        snprintf(url, sizeof url, "/api/meta?file=server-http.h5&path=%s", p->path);
        int st = http_get(p, url, &len);
        if (st == 200) {
            char *shape = strstr(p->buf, "\"shape\": [");
            unsigned long long rows = shape ? strtoull(shape + 10, NULL, 10) : 0;
            unsigned long long from = rows > TAIL_ROWS ? rows - TAIL_ROWS : 0;
            if (rows) {
                snprintf(url, sizeof url,
                         "/api/data?file=server-http.h5&path=%s&selection=%llu:%llu,:&format=bin"
                         "&dtype=safe",
                         p->path, from, rows);
                st = http_get(p, url, &len);
                if (st != 200 || len != (rows - from) * ROW_BYTES) p->errors++;
            }
        } else if (st != 404) { /* 404: no row appended yet */
            p->errors++;
        }
        if (p->polls < MAX_POLLS) p->lat[p->polls] = (now() - t) * 1e3;
        p->polls++;
        next += (double)POLL_CONNS / POLL_HZ;
        if (next < now()) next = now(); /* behind: no burst to catch up */
        sleep_until(next);
    }
    return NULL;
}

void bench_http(const char *bin, const char *dir, size_t rows, int npairs)
{
    char cfg[4096], file[4096];
    snprintf(cfg, sizeof cfg, "%s/http.ini", dir);
    FILE *f = fopen(cfg, "w");
    if (!f) die("cannot write %s", cfg);
    fprintf(f, "[server]\nhttp_port = 0\n");
    fclose(f);
    snprintf(file, sizeof file, "%s/server-http.h5", dir);
    unlink(file);
    pid_t pid;
    int http_port, port = spawn_server_http(bin, file, cfg, &pid, &http_port);

    poller ps[POLL_CONNS];
    atomic_bool stop;
    for (int i = 0; i < POLL_CONNS; i++) {
        ps[i] = (poller){.port = http_port, .fd = -1, .stop = &stop};
        ps[i].lat = calloc(MAX_POLLS, sizeof *ps[i].lat);
    }
    if (npairs > MAX_PAIRS) npairs = MAX_PAIRS;
    double without[MAX_PAIRS], with[MAX_PAIRS], ratio[MAX_PAIRS], poll_s = 0;
    char path[64];
    pipe_one_path = path;
    /* pairs of phases, each pair's two next to each other (the machine's
     * load drifts less within a pair than across the run), in the order
     * without, with, with, without, without, with, ...: neither goes first
     * more often (a later phase may find the file warmer) */
    int nwith = 0, nwithout = 0;
    for (int phase = 0; phase < 2 * npairs; phase++) {
        bool polling = (phase + phase / 2) % 2 == 1;
        snprintf(path, sizeof path, "/http/phase%d", phase);
        pthread_t th[POLL_CONNS];
        if (polling) {
            atomic_store(&stop, false);
            double t0 = now();
            for (int i = 0; i < POLL_CONNS; i++) {
                snprintf(ps[i].path, sizeof ps[i].path, "%s", path);
                ps[i].start = t0 + (double)i / POLL_HZ;
                if (pthread_create(&th[i], NULL, poll_loop, &ps[i])) die("%s", "pthread_create");
            }
        }
        double t = now();
        double rate = bench_pipelined_to(port, 64, rows, 256);
        if (polling) {
            poll_s += now() - t;
            atomic_store(&stop, true);
            for (int i = 0; i < POLL_CONNS; i++) pthread_join(th[i], NULL);
            with[nwith++] = rate;
        } else {
            without[nwithout++] = rate;
        }
    }
    pipe_one_path = NULL;
    for (int k = 0; k < npairs; k++) ratio[k] = with[k] / without[k];
    printf("%-46s %12s %12s %-6s %8s  %s\n",
           "HTTP: a browser polls meta + last 1000 rows 20/s", "no browser", "browser", "unit",
           "ratio", "goal");
    row("append 1x16 f8, 64 clients, one dataset", "rows/s", percentile(without, (size_t)npairs, 0.5),
        percentile(with, (size_t)npairs, 0.5), true, ">= 0.9x");
    printf("%-46s median %.2fx, from %.2fx to %.2fx over %d pairs of phases\n",
           "  with/without, pair by pair", percentile(ratio, (size_t)npairs, 0.5),
           percentile(ratio, (size_t)npairs, 0.0), percentile(ratio, (size_t)npairs, 1.0), npairs);
    size_t polls = 0, errors = 0, nl = 0;
    double *lat = calloc((size_t)POLL_CONNS * MAX_POLLS, sizeof *lat);
    for (int i = 0; i < POLL_CONNS; i++) {
        size_t k = ps[i].polls < MAX_POLLS ? ps[i].polls : MAX_POLLS;
        memcpy(lat + nl, ps[i].lat, k * sizeof *lat);
        nl += k;
        polls += ps[i].polls;
        errors += ps[i].errors;
        if (ps[i].fd >= 0) close(ps[i].fd);
        free(ps[i].buf);
        free(ps[i].lat);
    }
    printf("%-46s %zu polls in %.1f s (%.1f/s; asked %d/s on %d connections), latency p50 "
           "%.1f ms, p99 %.1f ms, %zu bad answers\n",
           "  the browser", polls, poll_s, (double)polls / poll_s, POLL_HZ, POLL_CONNS,
           nl ? percentile(lat, nl, 0.5) : 0, nl ? percentile(lat, nl, 0.99) : 0, errors);
    free(lat);
    if (errors) die("%s", "the poller got wrong answers");
    stop_server(pid);
    /* 6 phases of rows x 128 bytes: not left behind in the bench directory */
    unlink(file);
    char wal[sizeof file + 8];
    snprintf(wal, sizeof wal, "%s.wal", file);
    unlink(wal);
}
