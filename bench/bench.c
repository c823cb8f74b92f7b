/* hdf5-async-bench: where the server stands against the limit.
 *
 * In one run it starts the real server on a temporary file, drives it
 * through libhdf5async, does the same workloads in-process with libhdf5 on
 * the same disk (the limit a network server can only approach), measures
 * loopback TCP bandwidth (the other limit), and prints one table of figures
 * and ratios. Timings are for reading, never for asserting: the machines are
 * noisy. Usage: hdf5-async-bench [--server PATH] [--dir DIR] [--quick]
 * [--only WORKLOAD] [--tls-ciphersuites LIST]. The TLS rows compare a second
 * server speaking TLS with the plaintext one, in the same run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "hdf5_async.h"
#include "bench.h"
#include "bench_exactly.h"

#define ROW 16 /* float64 values per appended row */

double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "hdf5-async-bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ---- the table ---- */

void row(const char *name, const char *unit, double inproc, double server,
                bool higher_better, const char *goal)
{
    double ratio = higher_better ? server / inproc : inproc / server;
    printf("%-46s %12.1f %12.1f %-6s %7.2fx  %s\n", name, inproc, server, unit, ratio, goal);
    fflush(stdout);
}

/* ---- the server ---- */

static pid_t server_pid;
static int server_port;

/* Starts bin on file (config: a config file, or NULL for the defaults);
 * returns its port once it listens, and (http_port not NULL: the config
 * sets http_port) its HTTP port from the "http listening on" line. */
int spawn_server_http(const char *bin, const char *file, const char *config, pid_t *pid,
                      int *http_port)
{
    int out[2];
    if (pipe(out)) die("pipe: %s", strerror(errno));
    *pid = fork();
    if (*pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (config)
            execl(bin, bin, "--config", config, "--port", "0", "--host", "127.0.0.1", "--file",
                  file, (char *)NULL);
        else
            execl(bin, bin, "--port", "0", "--host", "127.0.0.1", "--file", file, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256];
    if (!f || !fgets(line, sizeof line, f)) die("server %s did not start", bin);
    char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) die("unexpected server output: %s", line);
    int port = atoi(colon + 1);
    if (http_port) {
        if (!fgets(line, sizeof line, f) || strncmp(line, "http listening on ", 18) != 0 ||
            !(colon = strrchr(line, ':')))
            die("server %s printed no 'http listening on' line", bin);
        *http_port = atoi(colon + 1);
    }
    /* keep the pipe open (the server may print nothing more); leak f on purpose */
    return port;
}

static int spawn_server(const char *bin, const char *file, const char *config, pid_t *pid)
{
    return spawn_server_http(bin, file, config, pid, NULL);
}

static void server_start(const char *bin, const char *file)
{
    server_port = spawn_server(bin, file, NULL, &server_pid);
}

static long server_rss_kb(const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)server_pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) kb = atol(line + n + 1);
    if (f) fclose(f);
    return kb;
}

void stop_server(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "hdf5-async-bench: server exited abnormally (status %d)\n", status);
}

static void server_stop(void) { stop_server(server_pid); }

/* The durability the server-side workloads ask for. NONE unless a
 * workload says otherwise: the in-process baseline does not flush either,
 * so like is compared with like; bench_durability prices the other levels. */
static hdf5a_durability bench_durability = HDF5A_DURABILITY_NONE;

/* Connect options of the clients: NULL (plaintext), or TLS (bench_tls). */
static const hdf5a_connect_opts *bench_opts;

static hdf5a_client *client_to(int port)
{
    char err[512];
    hdf5a_client *c = NULL;
    if (hdf5a_connect_ex(&c, "127.0.0.1", port, 30000, bench_opts, err, sizeof err))
        die("connect: %s", err);
    hdf5a_set_durability(c, bench_durability);
    return c;
}

static hdf5a_client *client(void) { return client_to(server_port); }

/* ---- in-process baseline: the server's own layout choices ---- */

static hid_t inproc_file(const char *path)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 0, 1);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (f < 0) die("cannot create %s", path);
    return f;
}

/* A growable dataset of rows of ROW float64 with 256 KiB chunks, as the
 * server makes for append. */
static hid_t inproc_growable(hid_t f, const char *name)
{
    hsize_t dims[2] = {0, ROW}, maxd[2] = {H5S_UNLIMITED, ROW}, chunk[2] = {2048, ROW};
    hid_t sp = H5Screate_simple(2, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Sclose(sp);
    H5Pclose(dcpl);
    return d;
}

/* One append of one row, the way a program without our server would do it:
 * grow, select the new row, write. */
static void inproc_append_row(hid_t d, hsize_t *len, const double *row)
{
    hsize_t dims[2] = {*len + 1, ROW}, start[2] = {*len, 0}, count[2] = {1, ROW};
    H5Dset_extent(d, dims);
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(2, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, row);
    H5Sclose(fs);
    H5Sclose(ms);
    (*len)++;
}

/* ---- workloads ---- */

/* the server's p50 and p99 of the last bench_sequential, for the Redis row */
static double seq_p50, seq_p99;

static void bench_sequential(const char *dir, size_t n)
{
    double row_data[ROW] = {0}, *lat = malloc(n * sizeof *lat), *lat2 = malloc(n * sizeof *lat2);
    char path[4096];
    snprintf(path, sizeof path, "%s/inproc-seq.h5", dir);
    hid_t f = inproc_file(path), d = inproc_growable(f, "seq");
    hsize_t len = 0;
    for (size_t i = 0; i < n; i++) {
        row_data[0] = (double)i;
        double t = now();
        inproc_append_row(d, &len, row_data);
        lat[i] = (now() - t) * 1e6;
    }
    H5Dclose(d);
    H5Fclose(f);

    hdf5a_client *c = client();
    uint64_t shape[2] = {1, ROW};
    hdf5a_array a = {"<f8", 2, shape, row_data, sizeof row_data};
    for (size_t i = 0; i < n; i++) {
        row_data[0] = (double)i;
        double t = now();
        if (hdf5a_append(c, "/seq", &a, NULL, NULL)) die("append: %s", hdf5a_errstr(c));
        lat2[i] = (now() - t) * 1e6;
    }
    hdf5a_close(c);
    seq_p50 = percentile(lat2, n, 0.5);
    seq_p99 = percentile(lat2, n, 0.99);
    row("append 1x16 f8, 1 client, sequential: p50", "us", percentile(lat, n, 0.5),
        percentile(lat2, n, 0.5), false, "server p50 < 50 us");
    row("append 1x16 f8, 1 client, sequential: p99", "us", percentile(lat, n, 0.99),
        percentile(lat2, n, 0.99), false, "");
    free(lat);
    free(lat2);
}

/* ---- one-at-a-time latency next to Redis ----
 * Debian's redis-server, persistence off, on a free loopback port; SET of a
 * 128-byte value (the size of our 16 x f8 row) through hiredis, blocking,
 * one request in flight: the same loop as bench_sequential's. */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &len))
        die("free port: %s", strerror(errno));
    close(s);
    return ntohs(a.sin_port);
}

static void bench_redis(size_t n)
{
    const char *bin = "/usr/bin/redis-server";
    if (access(bin, X_OK) != 0) {
        printf("%-46s %s\n", "Redis SET, 1 client, sequential", "(skipped: no redis-server; "
               "scripts/install-deps.sh installs it)");
        return;
    }
    int port = free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(bin, bin, "--port", ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--protected-mode", "yes", (char *)NULL);
        _exit(127);
    }
    redisContext *rc = NULL;
    for (int tries = 0; tries < 500; tries++) { /* until it accepts, 5 s at most */
        rc = redisConnect("127.0.0.1", port);
        if (rc && !rc->err) break;
        if (rc) redisFree(rc);
        rc = NULL;
        usleep(10000);
    }
    if (!rc) die("redis-server on port %s did not start", ports);
    char value[128];
    memset(value, 'x', sizeof value);
    double *lat = malloc(n * sizeof *lat);
    for (size_t i = 0; i < n; i++) {
        double t = now();
        redisReply *r = redisCommand(rc, "SET k%d %b", (int)(i % 1024), value, sizeof value);
        lat[i] = (now() - t) * 1e6;
        if (!r || r->type == REDIS_REPLY_ERROR) die("redis SET failed%s", "");
        freeReplyObject(r);
    }
    redisFree(rc);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    row("one-at-a-time p50: Redis SET vs our append", "us", percentile(lat, n, 0.5), seq_p50, false,
        ">= 0.77x (p50 at most 1.3x Redis's)");
    row("one-at-a-time p99: Redis SET vs our append", "us", percentile(lat, n, 0.99), seq_p99, false,
        "");
    free(lat);
}

/* The server's CPU over `seconds` of doing nothing: spinning must stop. */
static void bench_idle_cpu(double seconds)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)server_pid);
    unsigned long long t0 = 0, t1 = 0;
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(path, "r");
        if (!f || !fgets(buf, sizeof buf, f)) die("cannot read %s", path);
        fclose(f);
        /* fields 14 and 15 (utime, stime) after the ")" that ends the name */
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, stt = 0;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
            die("cannot parse %s", path);
        if (k == 0) {
            t0 = ut + stt;
            usleep((useconds_t)(seconds * 1e6));
        } else {
            t1 = ut + stt;
        }
    }
    double pct = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / seconds * 100;
    printf("%-46s %12s %12.1f %-6s %8s  %s\n", "idle server, CPU over 2 s after the load", "", pct,
           "%", "", "~0 %");
    fflush(stdout);
}

/* in-process rows/s for one H5Dwrite per row over `ndsets` datasets */
static double inproc_rows_per_s(const char *dir, size_t n, int ndsets)
{
    char path[4096], name[32];
    snprintf(path, sizeof path, "%s/inproc-rate-%d.h5", dir, ndsets);
    hid_t f = inproc_file(path);
    hid_t *d = calloc((size_t)ndsets, sizeof *d);
    hsize_t *len = calloc((size_t)ndsets, sizeof *len);
    for (int i = 0; i < ndsets; i++) {
        snprintf(name, sizeof name, "r%d", i);
        d[i] = inproc_growable(f, name);
    }
    double row_data[ROW] = {0};
    double t = now();
    for (size_t i = 0; i < n; i++) {
        row_data[0] = (double)i;
        inproc_append_row(d[i % (size_t)ndsets], &len[i % (size_t)ndsets], row_data);
    }
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    double rate = (double)n / (now() - t);
    for (int i = 0; i < ndsets; i++) H5Dclose(d[i]);
    H5Fclose(f);
    free(d);
    free(len);
    return rate;
}

/* Many async contexts in one poll() loop: each keeps `window` appends in
 * flight until it has sent its share. */
typedef struct pipe_client {
    hdf5a_async *ac;
    bool want_read, want_write;
    size_t sent, done, total;
    char path[64];
} pipe_client;

static void ev_add_read(void *p) { ((pipe_client *)p)->want_read = true; }
static void ev_del_read(void *p) { ((pipe_client *)p)->want_read = false; }
static void ev_add_write(void *p) { ((pipe_client *)p)->want_write = true; }
static void ev_del_write(void *p) { ((pipe_client *)p)->want_write = false; }
static void ev_cleanup(void *p) { (void)p; }

static size_t pipe_failures;
/* Where bench_pipelined_to's clients append: NULL, each its own dataset
 * (/pipeN/cI); else all of them to this one (bench_http.c). */
const char *pipe_one_path;

static void on_append(hdf5a_async *ac, const hdf5a_reply *r, void *priv)
{
    pipe_client *pc = priv;
    (void)ac;
    if (r->status) {
        if (pipe_failures++ < 3) fprintf(stderr, "append failed: %s\n", r->message);
    }
    pc->done++;
}

double bench_pipelined_to(int port, int nclients, size_t total, size_t window)
{
    pipe_client *pcs = calloc((size_t)nclients, sizeof *pcs);
    struct pollfd *pfd = calloc((size_t)nclients, sizeof *pfd);
    char err[512];
    double row_data[ROW] = {0};
    uint64_t shape[2] = {1, ROW};
    hdf5a_array a = {"<f8", 2, shape, row_data, sizeof row_data};
    for (int i = 0; i < nclients; i++) {
        pipe_client *pc = &pcs[i];
        if (hdf5a_async_connect_ex(&pc->ac, "127.0.0.1", port, bench_opts, err, sizeof err))
            die("async connect: %s", err);
        hdf5a_async_events ev = {pc, ev_add_read, ev_del_read, ev_add_write, ev_del_write,
                                 ev_cleanup};
        hdf5a_async_set_events(pc->ac, &ev);
        hdf5a_async_set_durability(pc->ac, bench_durability);
        pc->total = total / (size_t)nclients;
        if (pipe_one_path) snprintf(pc->path, sizeof pc->path, "%s", pipe_one_path);
        else snprintf(pc->path, sizeof pc->path, "/pipe%d/c%d", nclients, i);
    }
    double t = now();
    for (;;) {
        bool all_done = true;
        for (int i = 0; i < nclients; i++) {
            pipe_client *pc = &pcs[i];
            while (pc->sent < pc->total && pc->sent - pc->done < window) {
                row_data[0] = (double)pc->sent;
                if (hdf5a_async_append(pc->ac, pc->path, &a, NULL, on_append, pc))
                    die("queue append: %s", hdf5a_async_errstr(pc->ac));
                pc->sent++;
            }
            if (pc->done < pc->total) all_done = false;
            pfd[i].fd = hdf5a_async_fd(pc->ac);
            pfd[i].events = (short)((pc->want_read ? POLLIN : 0) | (pc->want_write ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        if (all_done) break;
        if (poll(pfd, (nfds_t)nclients, 30000) <= 0) die("poll: %s", "timeout or error");
        for (int i = 0; i < nclients; i++) {
            if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) hdf5a_async_handle_read(pcs[i].ac);
            if (pfd[i].revents & POLLOUT) hdf5a_async_handle_write(pcs[i].ac);
        }
    }
    double rate = (double)(pcs[0].total * (size_t)nclients) / (now() - t);
    for (int i = 0; i < nclients; i++) hdf5a_async_free(pcs[i].ac);
    free(pcs);
    free(pfd);
    if (pipe_failures) die("%s appends failed", "some");
    return rate;
}

static double bench_pipelined(int nclients, size_t total, size_t window)
{
    return bench_pipelined_to(server_port, nclients, total, window);
}

/* ---- durability ---- */

/* What durability costs: each level against a program that makes the same
 * promise in-process -- H5Fflush after each append for "flush" (its data is
 * then in the kernel, so it survives the program dying... except that plain
 * HDF5 may leave a file that needs h5clear, or worse, if it dies during a
 * flush), and H5Fflush + fdatasync for "fsync". */
static void bench_durability_levels(const char *dir, size_t n, size_t piped)
{
    static const char *names[] = {NULL, NULL, "flush", "fsync"};
    double row_data[ROW] = {0}, *lat = malloc(n * sizeof *lat), *lat2 = malloc(n * sizeof *lat2);
    for (int level = HDF5A_DURABILITY_FLUSH; level <= HDF5A_DURABILITY_FSYNC; level++) {
        char path[4096], dset[64], label[96];
        snprintf(path, sizeof path, "%s/inproc-dur-%s.h5", dir, names[level]);
        hid_t f = inproc_file(path), d = inproc_growable(f, "seq");
        int *fdp = NULL;
        H5Fget_vfd_handle(f, H5P_DEFAULT, (void **)&fdp);
        hsize_t len = 0;
        for (size_t i = 0; i < n; i++) {
            row_data[0] = (double)i;
            double t = now();
            inproc_append_row(d, &len, row_data);
            H5Fflush(f, H5F_SCOPE_GLOBAL);
            if (level == HDF5A_DURABILITY_FSYNC && fdp) fdatasync(*fdp);
            lat[i] = (now() - t) * 1e6;
        }
        H5Dclose(d);
        H5Fclose(f);

        bench_durability = (hdf5a_durability)level;
        hdf5a_client *c = client();
        uint64_t shape[2] = {1, ROW};
        hdf5a_array a = {"<f8", 2, shape, row_data, sizeof row_data};
        snprintf(dset, sizeof dset, "/dur-%s", names[level]);
        for (size_t i = 0; i < n; i++) {
            row_data[0] = (double)i;
            double t = now();
            if (hdf5a_append(c, dset, &a, NULL, NULL)) die("append: %s", hdf5a_errstr(c));
            lat2[i] = (now() - t) * 1e6;
        }
        hdf5a_close(c);
        snprintf(label, sizeof label, "append 1x16 f8 sequential, %s: p50", names[level]);
        row(label, "us", percentile(lat, n, 0.5), percentile(lat2, n, 0.5), false, "");

        /* 64 clients pipelining: the server commits once per batch (group
         * commit); a program that fsyncs after each row cannot */
        double t = now();
        f = inproc_file(path);
        d = inproc_growable(f, "r");
        H5Fget_vfd_handle(f, H5P_DEFAULT, (void **)&fdp);
        len = 0;
        size_t inproc_rows = n; /* per-row fsync: as many as the latency run */
        for (size_t i = 0; i < inproc_rows; i++) {
            inproc_append_row(d, &len, row_data);
            H5Fflush(f, H5F_SCOPE_GLOBAL);
            if (level == HDF5A_DURABILITY_FSYNC && fdp) fdatasync(*fdp);
        }
        double in_rate = (double)inproc_rows / (now() - t);
        H5Dclose(d);
        H5Fclose(f);
        double s64 = bench_pipelined(64, piped, 256);
        snprintf(label, sizeof label, "append 1x16 f8, 64 clients pipelined, %s", names[level]);
        row(label, "rows/s", in_rate, s64, true, "");
        bench_durability = HDF5A_DURABILITY_NONE;
    }
    free(lat);
    free(lat2);
}

/* ---- large arrays ---- */

struct sink {
    int fd;
    size_t bytes;
};

static void *tcp_sink(void *arg)
{
    struct sink *s = arg;
    char *buf = malloc(1 << 20);
    ssize_t n;
    while ((n = read(s->fd, buf, 1 << 20)) > 0) s->bytes += (size_t)n;
    free(buf);
    return NULL;
}

/* Loopback TCP bandwidth: the ceiling for any network transfer here. */
static double tcp_mb_per_s(size_t bytes)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&sa, &sl);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa)) die("loopback connect: %s", strerror(errno));
    struct sink s = {accept(l, NULL, NULL), 0};
    pthread_t th;
    pthread_create(&th, NULL, tcp_sink, &s);
    char *buf = calloc(1, 1 << 20);
    double t = now();
    for (size_t sent = 0; sent < bytes;) {
        ssize_t n = write(c, buf, 1 << 20);
        if (n <= 0) die("loopback write: %s", strerror(errno));
        sent += (size_t)n;
    }
    shutdown(c, SHUT_WR);
    pthread_join(th, NULL);
    double rate = (double)s.bytes / (now() - t) / 1e6;
    close(c);
    close(s.fd);
    close(l);
    free(buf);
    return rate;
}

static void bench_large(const char *dir, int reps)
{
    const size_t n = 8u << 20; /* 8 Mi float64 = 64 MiB */
    const size_t bytes = n * sizeof(double);
    double *data = malloc(bytes);
    for (size_t i = 0; i < n; i++) data[i] = (double)i * 0.5;
    double best_w_in = 0, best_r_in = 0, best_w_srv = 0, best_r_srv = 0;

    char path[4096];
    snprintf(path, sizeof path, "%s/inproc-large.h5", dir);
    hid_t f = inproc_file(path);
    hsize_t dims[1] = {n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "big", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double *back = malloc(bytes);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < n; i++) data[i] = (double)i * 0.5 + r + 1;
        double t = now();
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
        double w = (double)bytes / (now() - t) / 1e6;
        t = now();
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
        double rd = (double)bytes / (now() - t) / 1e6;
        if (w > best_w_in) best_w_in = w;
        if (rd > best_r_in) best_r_in = rd;
    }
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    free(back);

    hdf5a_client *c = client();
    uint64_t shape[1] = {n};
    hdf5a_array a = {"<f8", 1, shape, data, bytes};
    for (int r = 0; r < reps; r++) {
        /* every rewrite changes every value (a rewrite of the same bytes
         * would skip the log: the driver logs only pages that change) */
        for (size_t i = 0; i < n; i++) data[i] = (double)i * 0.5 + r + 1;
        double t = now();
        if (hdf5a_write(c, "/big", &a, NULL)) die("write: %s", hdf5a_errstr(c));
        double w = (double)bytes / (now() - t) / 1e6;
        hdf5a_array *got = NULL;
        t = now();
        if (hdf5a_read(c, "/big", &got)) die("read: %s", hdf5a_errstr(c));
        double rd = (double)bytes / (now() - t) / 1e6;
        if (got->nbytes != bytes || memcmp(got->data, data, bytes) != 0) die("%s", "read back differs");
        hdf5a_array_free(got);
        if (w > best_w_srv) best_w_srv = w;
        if (rd > best_r_srv) best_r_srv = rd;
    }
    hdf5a_close(c);
    free(data);

    printf("%-46s %12.1f %12s %-6s\n", "in-process H5Dwrite 64 MiB f8", best_w_in, "", "MB/s");
    printf("%-46s %12.1f %12s %-6s\n", "in-process H5Dread 64 MiB f8", best_r_in, "", "MB/s");
    double tcp = tcp_mb_per_s(1u << 30);
    printf("%-46s %12s %12.1f %-6s\n", "loopback TCP bandwidth (the network limit)", "", tcp, "MB/s");
    double lim_w = best_w_in < tcp ? best_w_in : tcp, lim_r = best_r_in < tcp ? best_r_in : tcp;
    row("write 64 MiB f8 (vs min(in-process, TCP))", "MB/s", lim_w, best_w_srv, true, ">= 0.8x");
    row("read 64 MiB f8 (vs min(in-process, TCP))", "MB/s", lim_r, best_r_srv, true, ">= 0.8x");
}

/* ---- TLS against plaintext ---- */

/* A second server speaking TLS (a throwaway CA and certificate made with
 * the openssl command), next to the plaintext one, each on its own file on
 * the same disk: the same workloads through both, alternated, best of each. */
static int tls_server_start(const char *bin, const char *dir, pid_t *pid, char *ca, size_t calen)
{
    char cmd[4096], path[4096], file[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile server.ext; } >openssl.log 2>&1",
             dir);
    if (system(cmd) != 0) die("cannot make certificates with openssl (see %s/openssl.log)", dir);
    snprintf(path, sizeof path, "%s/tls.ini", dir);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s", path);
    fprintf(f, "[server]\ntls_cert_file = %s/server.pem\ntls_key_file = %s/server.key\n", dir,
            dir);
    fclose(f);
    snprintf(ca, calen, "%s/ca.pem", dir);
    snprintf(file, sizeof file, "%s/server-tls.h5", dir);
    unlink(file);
    return spawn_server(bin, file, path, pid);
}

/* CPU time (user + system, in clock ticks) pid has used so far. */
static long long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces; fields 3.. follow ')' */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* Let both servers finish what a timed phase left behind before the next
 * one starts, so that no phase is timed while either server works in the
 * background. A server that answered a rewrite still owes a checkpoint
 * (the "fsync" commit that copies the logged pages into the file, at most
 * HARD_INTERVAL_NS = 1 s after the last one, storage.c) and then trims its
 * heap after 1 s idle; on one disk those ran into the other server's timed
 * phases, which is why the figures swung 5x between runs. So: wait past
 * that second, then until neither server has used CPU for 300 ms (capped
 * at 10 s), then sync() so that neither's dirty pages are being written
 * back during the next phase. Costs ~1.5 s a phase; never part of a timing. */
static void settle(pid_t a, pid_t b)
{
    struct timespec tick = {0, 100 * 1000 * 1000};
    struct timespec first = {1, 200 * 1000 * 1000};
    nanosleep(&first, NULL);
    long long ca = proc_cpu_ticks(a), cb = proc_cpu_ticks(b);
    for (int still = 0, i = 0; still < 3 && i < 100; i++) {
        nanosleep(&tick, NULL);
        long long na = proc_cpu_ticks(a), nb = proc_cpu_ticks(b);
        still = na == ca && nb == cb ? still + 1 : 0;
        ca = na, cb = nb;
    }
    sync();
}

/* One read of /tlsbig at c: MB/s, the data checked. */
static double large_read(hdf5a_client *c, const double *data, size_t bytes)
{
    hdf5a_array *got = NULL;
    double t = now();
    if (hdf5a_read(c, "/tlsbig", &got)) die("read: %s", hdf5a_errstr(c));
    double rate = (double)bytes / (now() - t) / 1e6;
    if (got->nbytes != bytes || memcmp(got->data, data, bytes) != 0) die("%s", "read back differs");
    hdf5a_array_free(got);
    return rate;
}

/* MB/s of writing 64 MiB (a rewrite in place once the dataset exists) or
 * of reading it back at port, each phase timed alone after settle(). A
 * read phase times two reads: the first after the idle second of settle()
 * (warm NULL: only that one), when the server has given its free heap and
 * read buffers back, so that both processes fault in a fresh 64 MiB buffer
 * (on this VM a page fault costs ~10 us: ~0.2 s for 64 MiB, as much as the
 * transfer); and at once again (*warm), the steady state of a client that
 * keeps reading, which is where what TLS itself costs shows. */
static double large_phase(int port, const double *data, size_t bytes, bool write, pid_t pa,
                          pid_t pb, double *warm)
{
    hdf5a_client *c = client_to(port);
    uint64_t shape[1] = {bytes / sizeof(double)};
    hdf5a_array a = {"<f8", 1, shape, data, bytes};
    settle(pa, pb);
    double rate;
    if (write) {
        double t = now();
        if (hdf5a_write(c, "/tlsbig", &a, NULL)) die("write: %s", hdf5a_errstr(c));
        rate = (double)bytes / (now() - t) / 1e6;
    } else {
        rate = large_read(c, data, bytes);
        if (warm) *warm = large_read(c, data, bytes);
    }
    hdf5a_close(c);
    return rate;
}

static double median(double *v, size_t n) { return percentile(v, n, 0.5); }

#define TLS_MAX_ROUNDS 32

/* One comparison: plaintext against TLS with opts. Each phase (write,
 * read, pipelined appends) is timed on one server while the other is idle
 * and neither has background work left (settle); the servers take turns,
 * the first one alternating between rounds (ABBA) so that neither always
 * follows the other; the rows give the median of the rounds and the range
 * of the per-round ratios (TLS against the plaintext phase next to it). */
static void tls_rows(int tls_port, pid_t tls_pid, const hdf5a_connect_opts *tls, const char *label,
                     int reps, size_t piped)
{
    const size_t bytes = 64u << 20;
    double *data = malloc(bytes);
    for (size_t i = 0; i < bytes / sizeof(double); i++) data[i] = (double)i * 0.25;
    if (reps > TLS_MAX_ROUNDS) reps = TLS_MAX_ROUNDS;
    double pw[TLS_MAX_ROUNDS], pr[TLS_MAX_ROUNDS], tw[TLS_MAX_ROUNDS], tr[TLS_MAX_ROUNDS];
    double pa[TLS_MAX_ROUNDS], ta[TLS_MAX_ROUNDS], pp[TLS_MAX_ROUNDS], tp[TLS_MAX_ROUNDS];
    double rw[TLS_MAX_ROUNDS], rr[TLS_MAX_ROUNDS], ra[TLS_MAX_ROUNDS], rp[TLS_MAX_ROUNDS];
    pid_t sp = server_pid;
    /* the first write of each makes the dataset; the timed ones rewrite it */
    bench_opts = NULL;
    large_phase(server_port, data, bytes, true, sp, tls_pid, NULL);
    bench_opts = tls;
    large_phase(tls_port, data, bytes, true, sp, tls_pid, NULL);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            bool plain = (k == 0) == (r % 2 == 0);
            bench_opts = plain ? NULL : tls;
            int port = plain ? server_port : tls_port;
            double w = large_phase(port, data, bytes, true, sp, tls_pid, NULL), warm = 0;
            double rd = large_phase(port, data, bytes, false, sp, tls_pid, &warm);
            *(plain ? &pw[r] : &tw[r]) = w;
            *(plain ? &pr[r] : &tr[r]) = rd;
            *(plain ? &pa[r] : &ta[r]) = warm;
        }
        rw[r] = tw[r] / pw[r];
        rr[r] = tr[r] / pr[r];
        ra[r] = ta[r] / pa[r];
    }
    free(data);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            bool plain = (k == 0) == (r % 2 == 0);
            bench_opts = plain ? NULL : tls;
            settle(sp, tls_pid);
            double x = bench_pipelined_to(plain ? server_port : tls_port, 1, piped, 4096);
            *(plain ? &pp[r] : &tp[r]) = x;
        }
        rp[r] = tp[r] / pp[r];
    }
    bench_opts = NULL;
    size_t n = (size_t)reps;
    printf("%-46s %12s %12s %-6s %8s  %s\n", label, "plaintext", "TLS", "unit", "ratio", "goal");
    row("write 64 MiB f8 (rewrite in place)", "MB/s", median(pw, n), median(tw, n), true, ">= 0.7x");
    printf("%-46s per-round ratios %.2fx-%.2fx, median %.2fx\n", "", percentile(rw, n, 0),
           percentile(rw, n, 1), median(rw, n));
    row("read 64 MiB f8, first after idle", "MB/s", median(pr, n), median(tr, n), true, ">= 0.7x");
    printf("%-46s per-round ratios %.2fx-%.2fx, median %.2fx\n", "", percentile(rr, n, 0),
           percentile(rr, n, 1), median(rr, n));
    row("read 64 MiB f8, again at once (warm)", "MB/s", median(pa, n), median(ta, n), true, ">= 0.7x");
    printf("%-46s per-round ratios %.2fx-%.2fx, median %.2fx\n", "", percentile(ra, n, 0),
           percentile(ra, n, 1), median(ra, n));
    row("append 1x16 f8, 1 client pipelined", "rows/s", median(pp, n), median(tp, n), true, ">= 0.9x");
    printf("%-46s per-round ratios %.2fx-%.2fx, median %.2fx\n", "", percentile(rp, n, 0),
           percentile(rp, n, 1), median(rp, n));
    printf("%-46s (medians of %d rounds, each phase timed alone)\n", "", reps);
}

/* suites: the clients' tls_ciphersuites (NULL: OpenSSL's default) */
static void bench_tls(const char *bin, const char *dir, int reps, size_t piped,
                      const char *suites)
{
    pid_t tls_pid;
    char ca[4096], label[128];
    int tls_port = tls_server_start(bin, dir, &tls_pid, ca, sizeof ca);
    hdf5a_connect_opts tls;
    hdf5a_connect_opts_init(&tls);
    tls.tls = 1;
    tls.tls_ca_file = ca;
    tls.tls_ciphersuites = suites;
    snprintf(label, sizeof label, "TLS (%.80s) against plaintext", suites ? suites : "OpenSSL's default suites");
    tls_rows(tls_port, tls_pid, &tls, label, reps, piped);
    stop_server(tls_pid);
}

/* ---- many connections ---- */

static void bench_connections(size_t nconn)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < nconn + 64) {
        printf("%-46s skipped: open-files limit %llu\n", "connections", (unsigned long long)rl.rlim_cur);
        return;
    }
    hdf5a_client **cs = calloc(nconn, sizeof *cs);
    double row_data[ROW] = {0};
    uint64_t shape[2] = {1, ROW};
    hdf5a_array a = {"<f8", 2, shape, row_data, sizeof row_data};
    size_t ok = 0;
    double t = now();
    for (size_t i = 0; i < nconn; i++) cs[i] = client();
    long rss_open = server_rss_kb("VmRSS");
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < nconn; i++) {
            row_data[0] = (double)i;
            if (hdf5a_append(cs[i], "/many", &a, NULL, NULL) == 0) ok++;
        }
    long rss = server_rss_kb("VmRSS"), hwm = server_rss_kb("VmHWM");
    for (size_t i = 0; i < nconn; i++) hdf5a_close(cs[i]);
    free(cs);
    printf("%-46s %zu/%zu appends ok in %.1f s; server RSS %.1f MB idle-open, %.1f MB after, "
           "peak %.1f MB (goal < 64 MB)\n",
           "10,000 connections open at once, 3 appends each", ok, nconn * 3, now() - t,
           (double)rss_open / 1024, (double)rss / 1024, (double)hwm / 1024);
}

int main(int argc, char **argv)
{
    const char *bin = "build/hdf5-async-server", *dir = NULL, *only = NULL, *suites = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) bin = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--tls-ciphersuites") == 0 && i + 1 < argc) suites = argv[++i];
        else {
            fprintf(stderr, "usage: hdf5-async-bench [--server PATH] [--dir DIR] [--quick] "
                            "[--only seq|redis|pipe1|pipe64|exactly|large|tls|http|dur|conn] "
                            "[--tls-ciphersuites LIST]\n");
            return 2;
        }
    }
    char tmpl[] = "/tmp/hdf5-async-bench.XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl))) die("mkdtemp: %s", strerror(errno));
    char file[4096];
    snprintf(file, sizeof file, "%s/server.h5", dir);
    unlink(file);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* The in-process side reuses one read buffer; give the client side the
     * same chance: without this glibc maps each 64 MiB reply afresh and the
     * figure measures page faults. (The server tunes its own malloc.) */
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    server_start(bin, file);

    size_t seq = quick ? 2000 : 20000, piped = quick ? 50000 : 500000;
    printf("hdf5-async-bench: files in %s (same disk for both sides)%s\n", dir,
           quick ? ", --quick" : "");
    printf("%-46s %12s %12s %-6s %8s  %s\n", "workload", "in-process", "server", "unit", "ratio",
           "goal");
#define RUN(name) (!only || strcmp(only, name) == 0)
    if (RUN("seq") || RUN("redis")) {
        bench_sequential(dir, seq);
        bench_redis(seq);
        bench_idle_cpu(2.0);
    }
    if (RUN("pipe1")) {
        double in1 = inproc_rows_per_s(dir, piped, 1);
        double s1 = bench_pipelined(1, piped, 4096);
        row("append 1x16 f8, 1 client pipelined", "rows/s", in1, s1, true, ">= 1.0x");
    }
    if (RUN("pipe64")) {
        double in64 = inproc_rows_per_s(dir, piped, 64);
        double s64 = bench_pipelined(64, piped, 256);
        row("append 1x16 f8, 64 clients pipelined", "rows/s", in64, s64, true, ">= 1.0x");
    }
    if (RUN("exactly")) {
        /* exactly-once costs the server a lookup and a remembered result
         * per change; a batch saves the per-request work of K requests
         * (both against the plain pipelined appends, same raw client).
         * Alternated three times, the best of each: the machine is shared. */
        size_t n = quick ? 20000 : 100000, rounds = quick ? 200 : 1000;
        double plain = 0, tagged = 0, piped100 = 0, batch = 0;
        for (int k = 0; k < 3; k++) {
            char p1[32], p2[32], p3[32], p4[32];
            snprintf(p1, sizeof p1, "/x/plain%d", k);
            snprintf(p2, sizeof p2, "/x/seq%d", k);
            snprintf(p3, sizeof p3, "/x/piped%d", k);
            snprintf(p4, sizeof p4, "/x/batch%d", k);
            double r = bx_pipelined_appends(server_port, n, 256, false, p1);
            if (r > plain) plain = r;
            if ((r = bx_pipelined_appends(server_port, n, 256, true, p2)) > tagged) tagged = r;
            if ((r = bx_rounds(server_port, rounds, 100, false, p3)) > piped100) piped100 = r;
            if ((r = bx_rounds(server_port, rounds, 100, true, p4)) > batch) batch = r;
        }
        row("pipelined appends: client_id/seq vs none", "rows/s", plain, tagged, true,
            "goal >= 0.9x");
        row("one batch of 100 appends vs 100 pipelined", "rows/s", piped100, batch, true,
            "goal >= 1.0x");
    }
    if (RUN("large")) bench_large(dir, quick ? 2 : 5);
    if (RUN("tls")) bench_tls(bin, dir, quick ? 3 : 5, piped, suites);
    if (RUN("http")) bench_http(bin, dir, quick ? 200000 : 500000, quick ? 3 : 5);
    if (RUN("dur")) bench_durability_levels(dir, quick ? 500 : 3000, quick ? 20000 : 100000);
    if (RUN("conn")) {
        /* on a server of its own, so its RSS is what the connections cost */
        server_stop();
        snprintf(file, sizeof file, "%s/server-conn.h5", dir);
        unlink(file);
        server_start(bin, file);
        bench_connections(quick ? 1000 : 10000);
    }
    server_stop();
    return 0;
}
