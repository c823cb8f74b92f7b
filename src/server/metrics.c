/* The server's counters and their Prometheus text (metrics.h). */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

h5a_metrics_loop h5a_mloop;
h5a_metrics_storage h5a_mstorage;
h5a_counter h5a_msubmitted;

/* seconds; the last bucket is +Inf */
static const double bounds[H5A_METRICS_BUCKETS - 1] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};

void h5a_hist_add(h5a_hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < H5A_METRICS_BUCKETS - 1 && s > bounds[i]) i++;
    h5a_count(&h->bucket[i], 1);
    h5a_count(&h->count, 1);
    h5a_count(&h->sum_ns, ns);
}

void h5a_metrics_request(const h5a_request *r, uint64_t wait_ns, uint64_t apply_ns)
{
    int op = (unsigned)r->op <= OP_NONE ? (int)r->op : OP_NONE;
    int code = r->reply_code < 0 && -r->reply_code < H5A_METRICS_CODES ? -r->reply_code : 0;
    h5a_count(&h5a_mstorage.requests[op][code], 1);
    h5a_hist_add(&h5a_mstorage.wait[op], wait_ns);
    h5a_hist_add(&h5a_mstorage.apply[op], apply_ns);
}

int h5a_metrics_status_index(int status)
{
    static const int st[] = {200, 204, 304, 400, 401, 403, 404, 405, 408, 413, 414, 422, 431, 500, 503};
    for (int i = 0; i < (int)(sizeof st / sizeof st[0]); i++)
        if (st[i] == status) return i;
    return H5A_ST_OTHER;
}

/* ---- text ---- */

typedef struct out {
    char *p;
    size_t len, cap;
    bool oom;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n + 1;
        char *q = realloc(o->p, cap);
        if (!q) {
            o->oom = true;
            return;
        }
        o->p = q;
        o->cap = cap;
    }
}

static uint64_t get(const h5a_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void head(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series, under `labels` ("op=\"read\"" or ""). */
static void hist(out *o, const char *name, const char *labels, const h5a_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < H5A_METRICS_BUCKETS; i++) {
        cum += get(&h->bucket[i]);
        if (i < H5A_METRICS_BUCKETS - 1)
            put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                (unsigned long long)cum);
        else
            put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    }
    /* the count is the +Inf bucket, so that both agree in one scrape */
    put(o, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (double)get(&h->sum_ns) / 1e9);
    put(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)cum);
}

static const char *op_label(int op)
{
    return op == OP_NONE ? "none" : h5a_op_name((h5a_op)op);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

char *h5a_metrics_render(const h5a_metrics_view *v, size_t *len)
{
    out o = {.cap = 16384};
    if (!(o.p = malloc(o.cap))) return NULL;
    static const char *ports[H5A_PORTS] = {"main", "http"};
    const h5a_metrics_storage *m = &h5a_mstorage;

    head(&o, "hdf5_async_requests_total", "counter",
         "Requests applied by the storage thread, by op and result code (OK or the error code).");
    for (int op = 0; op <= OP_NONE; op++)
        for (int c = 0; c < H5A_METRICS_CODES; c++) {
            uint64_t n = get(&m->requests[op][c]);
            if (n || (c == 0 && op != OP_NONE))
                put(&o, "hdf5_async_requests_total{op=\"%s\",code=\"%s\"} %llu\n", op_label(op),
                    c ? h5a_strerror_code(-c) : "OK", (unsigned long long)n);
        }
    head(&o, "hdf5_async_request_queue_wait_seconds", "histogram",
         "Time from a request's arrival in the storage queue to the start of its application.");
    char labels[64];
    for (int op = 0; op <= OP_NONE; op++) {
        if (!get(&m->wait[op].count)) continue;
        snprintf(labels, sizeof labels, "op=\"%s\"", op_label(op));
        hist(&o, "hdf5_async_request_queue_wait_seconds", labels, &m->wait[op]);
    }
    head(&o, "hdf5_async_request_apply_seconds", "histogram",
         "Time the storage thread spent applying a request (a grouped run of appends: its share).");
    for (int op = 0; op <= OP_NONE; op++) {
        if (!get(&m->apply[op].count)) continue;
        snprintf(labels, sizeof labels, "op=\"%s\"", op_label(op));
        hist(&o, "hdf5_async_request_apply_seconds", labels, &m->apply[op]);
    }
    head(&o, "hdf5_async_received_bytes_total", "counter", "Bytes received from clients, by port.");
    for (int p = 0; p < H5A_PORTS; p++)
        put(&o, "hdf5_async_received_bytes_total{port=\"%s\"} %llu\n", ports[p],
            (unsigned long long)get(&h5a_mloop.bytes_in[p]));
    head(&o, "hdf5_async_sent_bytes_total", "counter", "Bytes sent to clients, by port.");
    for (int p = 0; p < H5A_PORTS; p++)
        put(&o, "hdf5_async_sent_bytes_total{port=\"%s\"} %llu\n", ports[p],
            (unsigned long long)get(&h5a_mloop.bytes_out[p]));
    head(&o, "hdf5_async_connections", "gauge", "Open client connections, by port.");
    for (int p = 0; p < H5A_PORTS; p++)
        put(&o, "hdf5_async_connections{port=\"%s\"} %llu\n", ports[p],
            (unsigned long long)v->conns[p]);
    head(&o, "hdf5_async_connections_accepted_total", "counter", "Connections accepted, by port.");
    for (int p = 0; p < H5A_PORTS; p++)
        put(&o, "hdf5_async_connections_accepted_total{port=\"%s\"} %llu\n", ports[p],
            (unsigned long long)get(&h5a_mloop.accepted[p]));
    head(&o, "hdf5_async_queue_depth", "gauge",
         "Requests given to the storage thread and not yet applied.");
    uint64_t sub = get(&h5a_msubmitted), done = get(&m->applied);
    put(&o, "hdf5_async_queue_depth %llu\n", (unsigned long long)(sub > done ? sub - done : 0));
    head(&o, "hdf5_async_buffered_bytes", "gauge",
         "Bytes of frames being received, requests not yet answered and replies or HTTP responses "
         "not yet sent (what max_buffered_bytes bounds).");
    put(&o, "hdf5_async_buffered_bytes %llu\n", (unsigned long long)v->buffered);
    head(&o, "hdf5_async_storage_busy_seconds_total", "counter",
         "Time the storage thread spent applying requests and committing.");
    put(&o, "hdf5_async_storage_busy_seconds_total %.9f\n", (double)get(&m->busy_ns) / 1e9);
    head(&o, "hdf5_async_commits_total", "counter",
         "Commits: flush (HDF5's caches written and logged) and fsync (the log made durable).");
    put(&o, "hdf5_async_commits_total{level=\"flush\"} %llu\n",
        (unsigned long long)get(&m->commits[0]));
    put(&o, "hdf5_async_commits_total{level=\"fsync\"} %llu\n",
        (unsigned long long)get(&m->commits[1]));
    head(&o, "hdf5_async_fsync_seconds", "histogram",
         "Time of each fsync commit: writing the log's commit and fdatasync.");
    hist(&o, "hdf5_async_fsync_seconds", "", &m->fsync);
    head(&o, "hdf5_async_wal_bytes", "gauge", "Size of the write-ahead log FILE.wal.");
    char wal[4200];
    snprintf(wal, sizeof wal, "%s.wal", v->file_path ? v->file_path : "");
    put(&o, "hdf5_async_wal_bytes %llu\n", (unsigned long long)file_size(wal));
    head(&o, "hdf5_async_file_bytes", "gauge", "Size of the HDF5 file served.");
    put(&o, "hdf5_async_file_bytes %llu\n", (unsigned long long)file_size(v->file_path));
    head(&o, "hdf5_async_auth_failures_total", "counter",
         "Unknown tokens presented (auth requests and HTTP Authorization headers).");
    put(&o, "hdf5_async_auth_failures_total %llu\n", (unsigned long long)v->auth_failures);
    head(&o, "hdf5_async_http_requests_total", "counter",
         "HTTP requests answered, by endpoint and status.");
    static const char *eps[H5A_EP_COUNT] = {"meta",   "data",   "attr",   "paths",
                                            "metrics", "health", "viewer", "other"};
    static const char *sts[H5A_ST_COUNT] = {"200", "204", "304", "400", "401", "403",
                                            "404", "405", "408", "413", "414", "422",
                                            "431", "500", "503", "other"};
    for (int e = 0; e < H5A_EP_COUNT; e++)
        for (int s = 0; s < H5A_ST_COUNT; s++) {
            uint64_t n = get(&h5a_mloop.http[e][s]);
            if (n) put(&o, "hdf5_async_http_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n",
                       eps[e], sts[s], (unsigned long long)n);
        }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
