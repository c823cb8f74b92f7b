/* The exactly-once table (see dedup.h): clients by id in a hash table and a
 * least-recently-used list; per client its last results, by seq. Entries
 * travel as deltas with the log's commits and as a whole in "FILE.dedup",
 * written at checkpoints. Exists apart from the engine so that the table,
 * its encoding and its file are in one place, and the engine and storage.c
 * only call it. */
#include "server/dedup.h"
#include "server/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct entry {
    uint64_t seq;
    uint32_t len;
    bool not_kept;
    uint8_t data[];
} entry;

typedef struct client {
    struct client *hnext;            /* hash chain */
    struct client *newer, *older;    /* LRU list */
    uint64_t max_seq, last;          /* highest seq recorded; last use (unix seconds) */
    entry **ents;                    /* ents[start .. start+n), by seq */
    uint32_t start, n, cap;
    uint8_t idlen;
    char id[65];
} client;

struct h5a_dedup {
    h5a_dedup_limits lim;
    char *path;
    client **buckets;
    size_t nbuckets, nclients, nentries, bytes;
    client *newest, *oldest;
    uint8_t *pending; /* deltas since the last take */
    size_t plen, pcap;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

h5a_dedup *h5a_dedup_new(const h5a_dedup_limits *lim, const char *snapshot_path)
{
    h5a_dedup *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->lim = *lim;
    if (!d->lim.window) d->lim.window = 1;
    if (!d->lim.max_clients) d->lim.max_clients = 1;
    d->nbuckets = 1024;
    d->buckets = calloc(d->nbuckets, sizeof *d->buckets);
    d->path = strdup(snapshot_path);
    if (!d->buckets || !d->path) {
        h5a_dedup_free(d);
        return NULL;
    }
    return d;
}

static void client_free(h5a_dedup *d, client *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        d->bytes -= sizeof(entry) + c->ents[c->start + i]->len;
        free(c->ents[c->start + i]);
    }
    d->nentries -= c->n;
    d->bytes -= sizeof *c + c->cap * sizeof(entry *);
    free(c->ents);
    free(c);
}

static void forget_all(h5a_dedup *d)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        client *c = d->buckets[i];
        while (c) {
            client *next = c->hnext;
            client_free(d, c);
            c = next;
        }
        d->buckets[i] = NULL;
    }
    d->nclients = 0;
    d->newest = d->oldest = NULL;
}

void h5a_dedup_free(h5a_dedup *d)
{
    if (!d) return;
    if (d->buckets) forget_all(d);
    free(d->buckets);
    free(d->path);
    free(d->pending);
    free(d);
}

static client **slot_of(h5a_dedup *d, const char *id, size_t n)
{
    client **p = &d->buckets[fnv(id, n, FNV0) & (d->nbuckets - 1)];
    while (*p && !((*p)->idlen == n && memcmp((*p)->id, id, n) == 0)) p = &(*p)->hnext;
    return p;
}

static void lru_unlink(h5a_dedup *d, client *c)
{
    if (c->newer) c->newer->older = c->older;
    else d->newest = c->older;
    if (c->older) c->older->newer = c->newer;
    else d->oldest = c->newer;
    c->newer = c->older = NULL;
}

static void lru_push(h5a_dedup *d, client *c)
{
    c->older = d->newest;
    c->newer = NULL;
    if (d->newest) d->newest->newer = c;
    d->newest = c;
    if (!d->oldest) d->oldest = c;
}

static void forget(h5a_dedup *d, client *c)
{
    client **p = slot_of(d, c->id, c->idlen);
    *p = c->hnext;
    lru_unlink(d, c);
    d->nclients--;
    client_free(d, c);
}

static void grow_buckets(h5a_dedup *d)
{
    size_t n = d->nbuckets * 2;
    client **b = calloc(n, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < d->nbuckets; i++) {
        client *c = d->buckets[i];
        while (c) {
            client *next = c->hnext;
            size_t k = fnv(c->id, c->idlen, FNV0) & (n - 1);
            c->hnext = b[k];
            b[k] = c;
            c = next;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

/* Forget idle clients (the oldest first), and the oldest beyond max_clients. */
static void sweep(h5a_dedup *d, uint64_t now)
{
    while (d->oldest && (d->nclients > d->lim.max_clients ||
                         d->oldest->last + d->lim.idle_timeout < now ||
                         (d->bytes > d->lim.max_bytes && d->oldest != d->newest)))
        forget(d, d->oldest);
}

static bool below_window(const h5a_dedup *d, const client *c, uint64_t seq)
{
    return c->max_seq >= d->lim.window && seq <= c->max_seq - d->lim.window;
}

static entry *find(const client *c, uint64_t seq)
{
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        entry *e = c->ents[c->start + mid];
        if (e->seq == seq) return e;
        if (e->seq < seq) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

h5a_dedup_verdict h5a_dedup_check(h5a_dedup *d, const char *cid, size_t cidlen, uint64_t seq,
                                  const uint8_t **result, size_t *len)
{
    client *c = *slot_of(d, cid, cidlen);
    if (!c) return H5A_DEDUP_NEW;
    entry *e = find(c, seq);
    if (e) {
        *result = e->data;
        *len = e->len;
        return e->not_kept ? H5A_DEDUP_NOT_KEPT : H5A_DEDUP_REPEAT;
    }
    return below_window(d, c, seq) ? H5A_DEDUP_TOO_OLD : H5A_DEDUP_NEW;
}

/* Insert without a delta; idempotent (a replay of what is there changes
 * nothing). 0, or -1 out of memory. */
static int insert(h5a_dedup *d, const char *cid, size_t cidlen, uint64_t seq, uint64_t t,
                  bool not_kept, const uint8_t *res, size_t len)
{
    client **p = slot_of(d, cid, cidlen);
    client *c = *p;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return -1;
        memcpy(c->id, cid, cidlen);
        c->idlen = (uint8_t)cidlen;
        c->last = t;
        *p = c;
        lru_push(d, c);
        d->nclients++;
        d->bytes += sizeof *c;
        if (d->nclients > d->nbuckets) grow_buckets(d);
    } else {
        if (t > c->last) c->last = t;
        lru_unlink(d, c);
        lru_push(d, c);
    }
    if (below_window(d, c, seq) || find(c, seq)) return 0;
    /* room at the end: compact first, then grow */
    if (c->start + c->n == c->cap && c->start) {
        memmove(c->ents, c->ents + c->start, c->n * sizeof *c->ents);
        c->start = 0;
    }
    if (c->n == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : 4;
        entry **ne = realloc(c->ents, ncap * sizeof *ne);
        if (!ne) return -1;
        d->bytes += (ncap - c->cap) * sizeof *ne;
        c->ents = ne;
        c->cap = ncap;
    }
    entry *e = malloc(sizeof *e + len);
    if (!e) return -1;
    e->seq = seq;
    e->len = (uint32_t)len;
    e->not_kept = not_kept;
    if (len) memcpy(e->data, res, len);
    /* in seq order: almost always at the end */
    uint32_t at = c->n;
    while (at > 0 && c->ents[c->start + at - 1]->seq > seq) at--;
    memmove(c->ents + c->start + at + 1, c->ents + c->start + at, (c->n - at) * sizeof e);
    c->ents[c->start + at] = e;
    c->n++;
    d->nentries++;
    d->bytes += sizeof *e + len;
    if (seq > c->max_seq) c->max_seq = seq;
    while (c->n && below_window(d, c, c->ents[c->start]->seq)) {
        entry *old = c->ents[c->start++];
        c->n--;
        d->nentries--;
        d->bytes -= sizeof *old + old->len;
        free(old);
    }
    return 0;
}

/* ---- the encoding of an entry (deltas and the snapshot) ----
 * u8 idlen, id, u64 seq, u64 time, u8 flags (1: result not kept), u32 len,
 * result; integers little-endian. */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#define ENTRY_FIXED (1 + 8 + 8 + 1 + 4)

static size_t encode(uint8_t *out, const char *cid, size_t cidlen, uint64_t seq, uint64_t t,
                     bool not_kept, const uint8_t *res, size_t len)
{
    out[0] = (uint8_t)cidlen;
    memcpy(out + 1, cid, cidlen);
    uint8_t *p = out + 1 + cidlen;
    put_le(p, seq, 8);
    put_le(p + 8, t, 8);
    p[16] = not_kept;
    put_le(p + 17, len, 4);
    if (len) memcpy(p + 21, res, len);
    return ENTRY_FIXED + cidlen + len;
}

/* Decode and insert every entry of buf. -1: malformed (or no memory). */
static int decode_all(h5a_dedup *d, const uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t idlen = buf[off];
        if (idlen == 0 || idlen > 64 || n - off < ENTRY_FIXED + idlen) return -1;
        const uint8_t *p = buf + off + 1 + idlen;
        uint64_t len = get_le(p + 17, 4);
        if (n - off - ENTRY_FIXED - idlen < len) return -1;
        if (insert(d, (const char *)buf + off + 1, idlen, get_le(p, 8), get_le(p + 8, 8),
                   p[16] & 1, p + 21, len) < 0)
            return -1;
        off += ENTRY_FIXED + idlen + len;
    }
    return 0;
}

static int reserve(h5a_dedup *d, size_t more)
{
    if (d->plen + more <= d->pcap) return 0;
    size_t ncap = d->pcap ? d->pcap : 4096;
    while (ncap < d->plen + more) ncap *= 2;
    uint8_t *np = realloc(d->pending, ncap);
    if (!np) return -1;
    d->pending = np;
    d->pcap = ncap;
    return 0;
}

int h5a_dedup_record(h5a_dedup *d, const char *cid, size_t cidlen, uint64_t seq,
                     const uint8_t *result, size_t len)
{
    uint64_t now = (uint64_t)time(NULL);
    bool not_kept = len > H5A_DEDUP_MAX_RESULT;
    if (not_kept) len = 0;
    if (reserve(d, ENTRY_FIXED + cidlen + len) < 0) return -1;
    if (insert(d, cid, cidlen, seq, now, not_kept, result, len) < 0) return -1;
    d->plen += encode(d->pending + d->plen, cid, cidlen, seq, now, not_kept, result, len);
    sweep(d, now);
    return 0;
}

const uint8_t *h5a_dedup_pending(const h5a_dedup *d, size_t *len)
{
    *len = d->plen;
    return d->pending;
}

void h5a_dedup_clear_pending(h5a_dedup *d)
{
    d->plen = 0;
    if (d->pcap > ((size_t)1 << 20)) { /* a burst: give it back */
        free(d->pending);
        d->pending = NULL;
        d->pcap = 0;
    }
}

int h5a_dedup_replay(void *ctx, const void *data, size_t n)
{
    h5a_dedup *d = ctx;
    int rc = decode_all(d, data, n);
    sweep(d, (uint64_t)time(NULL));
    return rc;
}

/* ---- the snapshot: "H5ADEDUP" u32 version 1, entries, u64 fnv of all before ---- */

static const char MAGIC[8] = {'H', '5', 'A', 'D', 'E', 'D', 'U', 'P'};

static int write_all(int fd, const uint8_t *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int h5a_dedup_snapshot(void *ctx)
{
    h5a_dedup *d = ctx;
    if (d->nentries == 0) {
        /* nothing to remember: no snapshot (a file whose clients never
         * sent client_id leaves nothing beside it; an older snapshot only
         * held what has been forgotten since) */
        if (unlink(d->path) == 0) return h5a_wal_fsync_dir(d->path);
        return errno == ENOENT ? 0 : -1;
    }
    size_t cap = 12 + 8;
    for (client *c = d->oldest; c; c = c->newer)
        for (uint32_t i = 0; i < c->n; i++)
            cap += ENTRY_FIXED + c->idlen + c->ents[c->start + i]->len;
    uint8_t *buf = malloc(cap);
    if (!buf) return errno = ENOMEM, -1;
    memcpy(buf, MAGIC, 8);
    put_le(buf + 8, 1, 4);
    size_t off = 12;
    /* oldest client first: a reload rebuilds the same LRU order */
    for (client *c = d->oldest; c; c = c->newer)
        for (uint32_t i = 0; i < c->n; i++) {
            entry *e = c->ents[c->start + i];
            off += encode(buf + off, c->id, c->idlen, e->seq, c->last, e->not_kept, e->data,
                          e->len);
        }
    put_le(buf + off, fnv(buf, off, FNV0), 8);
    off += 8;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666);
    int rc = -1;
    if (fd >= 0) {
        rc = write_all(fd, buf, off) == 0 && fdatasync(fd) == 0 ? 0 : -1;
        int e = errno;
        close(fd);
        if (rc == 0) rc = rename(tmp, d->path) == 0 && h5a_wal_fsync_dir(d->path) == 0 ? 0 : -1;
        else unlink(tmp);
        errno = e;
    }
    free(buf);
    return rc;
}

int h5a_dedup_load(h5a_dedup *d, char *err, size_t errlen)
{
    forget_all(d);
    FILE *f = fopen(d->path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read '%s': %s", d->path, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) break;
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (!got) break;
        n += got;
    }
    fclose(f);
    int rc = -1;
    if (n >= 20 && memcmp(buf, MAGIC, 8) == 0 && get_le(buf + 8, 4) == 1 &&
        get_le(buf + n - 8, 8) == fnv(buf, n - 8, FNV0))
        rc = decode_all(d, buf + 12, n - 20);
    free(buf);
    if (rc < 0) {
        forget_all(d);
        snprintf(err, errlen, "'%s' is damaged (or memory ran out reading it)", d->path);
        return -1;
    }
    sweep(d, (uint64_t)time(NULL));
    return 0;
}

void h5a_dedup_reset(h5a_dedup *d)
{
    forget_all(d);
    d->plen = 0;
    unlink(d->path);
}

void h5a_dedup_get_stats(const h5a_dedup *d, h5a_dedup_stats *out)
{
    out->clients = d->nclients;
    out->entries = d->nentries;
    out->bytes = d->bytes + d->nbuckets * sizeof(client *) + d->pcap;
}
