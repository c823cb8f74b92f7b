/* h5a_wal, the page map (see wal_int.h): which pages of the committed
 * region HDF5 has changed since the last checkpoint, and where their
 * current bytes are (a buffer in memory, the log, or still the data file).
 * read_range and put_range are what HDF5's reads and writes become:
 * committed pages through the map (only the pages whose bytes change),
 * new space straight to the data file.
 * Uses wal_io.c only; reads a spilled page from the log at the offset its
 * slot records, and hands a large write's pages to the log only through
 * f->log_pages (set by wal_file.c), never by calling wal_log.c. */
#include "server/wal_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- the map: open addressing on the page number ---- */

static size_t slot_index(const wal_file *f, uint64_t page)
{
    return (size_t)((page * 0x9E3779B97F4A7C15ull) >> 17) & (f->cap - 1);
}

slot *map_find(const wal_file *f, uint64_t page)
{
    if (!f->count) return NULL;
    for (size_t i = slot_index(f, page);; i = (i + 1) & (f->cap - 1)) {
        if (f->slots[i].page == page) return &f->slots[i];
        if (f->slots[i].page == NO_PAGE) return NULL;
    }
}

static int map_grow(wal_file *f)
{
    size_t ncap = f->cap ? f->cap * 2 : 256;
    slot *ns = malloc(ncap * sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < ncap; i++) ns[i] = (slot){NO_PAGE, NULL, 0, false};
    slot *old = f->slots;
    size_t ocap = f->cap;
    f->slots = ns;
    f->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].page == NO_PAGE) continue;
        size_t j = slot_index(f, old[i].page);
        while (ns[j].page != NO_PAGE) j = (j + 1) & (ncap - 1);
        ns[j] = old[i];
    }
    free(old);
    return 0;
}

slot *map_get(wal_file *f, uint64_t page)
{
    slot *s = map_find(f, page);
    if (s) return s;
    if ((f->count + 1) * 2 > f->cap && map_grow(f) < 0) return NULL;
    size_t i = slot_index(f, page);
    while (f->slots[i].page != NO_PAGE) i = (i + 1) & (f->cap - 1);
    f->slots[i] = (slot){page, NULL, 0, false};
    f->count++;
    return &f->slots[i];
}

void map_clear(wal_file *f)
{
    for (size_t i = 0; i < f->cap; i++) free(f->slots[i].buf);
    free(f->slots);
    f->slots = NULL;
    f->cap = f->count = f->buffered = f->ndirty = 0;
}

void map_drop_buffers(wal_file *f)
{
    for (size_t i = 0; i < f->cap; i++) {
        if (f->slots[i].buf) {
            free(f->slots[i].buf);
            f->slots[i].buf = NULL;
        }
    }
    f->buffered = 0;
}

static int mark_dirty(wal_file *f, slot *s)
{
    if (s->dirty) return 0;
    if (f->ndirty == f->dirty_cap) {
        size_t ncap = f->dirty_cap ? f->dirty_cap * 2 : 64;
        uint64_t *n = realloc(f->dirty_pages, ncap * sizeof *n);
        if (!n) return errno = ENOMEM, -1;
        f->dirty_pages = n;
        f->dirty_cap = ncap;
    }
    f->dirty_pages[f->ndirty++] = s->page;
    s->dirty = true;
    return 0;
}

/* ---- reading pages ---- */

/* Data file bytes [off, off+n); zeros past its physical end (as sec2). */
static int data_read(wal_file *f, uint64_t off, size_t n, unsigned char *out)
{
    size_t got = 0;
    if (off < f->phys && pread_all(f->fd, out, (size_t)umin(n, f->phys - off), off, &got) < 0)
        return -1;
    if (got < n) memset(out + got, 0, n - got);
    return 0;
}

int map_read_logged(wal_file *f, const slot *s, unsigned char *out)
{
    size_t got = 0;
    if (pread_all(f->log_fd, out, PAGE, s->log_off + REC_HDR, &got) < 0) return -1;
    if (got != PAGE) return errno = EIO, -1;
    return 0;
}

/* The page as readers see it, for a slot that has no buffer. */
static int page_fill(wal_file *f, slot *s, unsigned char *out)
{
    if (s->log_off) return map_read_logged(f, s, out);
    uint64_t at = s->page * PAGE;
    if (data_read(f, at, PAGE, out) < 0) return -1;
    if (at + PAGE > f->eof) {
        uint64_t keep = f->eof > at ? f->eof - at : 0;
        memset(out + keep, 0, PAGE - keep);
    }
    return 0;
}

/* ---- what HDF5 reads and writes ---- */

/* How many of pages page, page+1, ... (at most max, the first one given)
 * have no buffer and their log records one after another from log_off. */
#define LOGGED_RUN_MAX 64
static size_t logged_run(const wal_file *f, uint64_t page, uint64_t max, uint64_t log_off)
{
    size_t k = 1;
    while (k < max && k < LOGGED_RUN_MAX) {
        const slot *t = map_find(f, page + k);
        if (!t || t->buf || t->log_off != log_off + k * REC_PAGE_BYTES) break;
        k++;
    }
    return k;
}

/* The pages of k adjacent log records from log_off into out (k pages). */
static int read_logged_run(wal_file *f, uint64_t log_off, size_t k, unsigned char *out)
{
    size_t want = k * REC_PAGE_BYTES, got = 0;
    if (want > f->prefetch_cap) { /* put_range's buffer: not in use during a read */
        unsigned char *p = realloc(f->prefetch, want);
        if (!p) return errno = ENOMEM, -1;
        f->prefetch = p;
        f->prefetch_cap = want;
    }
    unsigned char *recs = f->prefetch;
    if (pread_all(f->log_fd, recs, want, log_off, &got) < 0) return -1;
    if (got != want) return errno = EIO, -1;
    for (size_t i = 0; i < k; i++) memcpy(out + i * PAGE, recs + i * REC_PAGE_BYTES + REC_HDR, PAGE);
    return 0;
}

int read_range(wal_file *f, uint64_t addr, size_t n, unsigned char *out)
{
    uint64_t end = addr + n;
    if (end > f->eof) {
        uint64_t z = umax(addr, f->eof);
        memset(out + (z - addr), 0, end - z);
        end = z;
    }
    uint64_t bnd = boundary(f), pos = addr;
    if (f->count && pos < bnd) {
        uint64_t run = pos; /* start of pages to read from the data file */
        uint64_t stop = umin(end, bnd);
        while (pos < stop) {
            uint64_t page = pos / PAGE, pend = umin((page + 1) * PAGE, stop);
            slot *s = map_find(f, page);
            if (s && (s->buf || s->log_off)) {
                if (run < pos && data_read(f, run, pos - run, out + (run - addr)) < 0) return -1;
                size_t in = (size_t)(pos - page * PAGE);
                if (s->buf) {
                    memcpy(out + (pos - addr), s->buf + in, pend - pos);
                } else if (in == 0 && pend - pos == PAGE) {
                    /* whole pages whose records follow each other in the
                     * log (a large write spilled in order): one pread */
                    size_t k = logged_run(f, page, (stop - pos) / PAGE, s->log_off);
                    if (read_logged_run(f, s->log_off, k, out + (pos - addr)) < 0) return -1;
                    pend = pos + k * PAGE;
                } else {
                    unsigned char tmp[H5A_WAL_PAGE];
                    if (map_read_logged(f, s, tmp) < 0) return -1;
                    memcpy(out + (pos - addr), tmp + in, pend - pos);
                }
                run = pend;
            }
            pos = pend;
        }
        if (run < pos && data_read(f, run, pos - run, out + (run - addr)) < 0) return -1;
    }
    if (pos < end && data_read(f, pos, end - pos, out + (pos - addr)) < 0) return -1;
    return 0;
}

/* Largest write whose committed pages are compared against one read of the
 * data file (put_range). */
#define PREFETCH_MAX ((size_t)1 << 20)

/* The data file's bytes of pages [from, to) (page-aligned) in f->prefetch,
 * as page_fill would give them; NULL when the span is too large (or out of
 * memory: the caller goes page by page) or on a read error (*failed). */
static const unsigned char *prefetch(wal_file *f, uint64_t from, uint64_t to, bool *failed)
{
    size_t span = (size_t)(to - from);
    if (span > PREFETCH_MAX) return NULL;
    if (span > f->prefetch_cap) {
        unsigned char *p = realloc(f->prefetch, span);
        if (!p) return NULL;
        f->prefetch = p;
        f->prefetch_cap = span;
    }
    if (data_read(f, from, span, f->prefetch) < 0) return *failed = true, NULL;
    if (to > f->eof) { /* zeros at and past eof, as page_fill */
        uint64_t z = umax(from, f->eof);
        memset(f->prefetch + (z - from), 0, (size_t)(to - z));
    }
    return f->prefetch;
}

/* Give s a buffer holding a copy of the page at bytes. */
static int slot_fill(wal_file *f, slot *s, const unsigned char *bytes)
{
    unsigned char *b = malloc(PAGE);
    if (!b) return errno = ENOMEM, -1;
    memcpy(b, bytes, PAGE);
    s->buf = b;
    f->buffered += PAGE;
    return 0;
}

/* Writes of at least opt.direct_bytes (an in-place rewrite of a big dataset
 * or chunk) put their changed whole pages that have no buffer straight into
 * the log, DIRECT_BATCH at a time (f->log_pages, log_direct), instead of
 * copying each into a buffer of its own: a malloc and a page fault per
 * 4 KiB, and a second copy into the log at the commit or at a spill, took
 * ~40% of the storage thread's time in a 64 MiB rewrite. Smaller writes (metadata, small
 * chunks, a growing last chunk) are buffered: they are often written again
 * before the commit, and a buffer is logged once. */
typedef struct {
    uint64_t pages[DIRECT_BATCH];
    const unsigned char *src[DIRECT_BATCH];
    size_t n;
} direct_batch;

static int direct_add(wal_file *f, direct_batch *b, uint64_t page, const unsigned char *src)
{
    b->pages[b->n] = page;
    b->src[b->n++] = src;
    if (b->n < DIRECT_BATCH) return 0;
    b->n = 0;
    return f->log_pages(f, b->pages, b->src, DIRECT_BATCH);
}

int put_range(wal_file *f, uint64_t addr, size_t n, const unsigned char *in)
{
    uint64_t end = addr + n, bnd = boundary(f), pos = addr;
    /* HDF5's flush rewrites every dirty chunk whole, most of its pages
     * unchanged. A page that is still only in the data file (no buffer, no
     * log copy) is compared with the data file's bytes, read once for the
     * whole write (1 MiB at a time): an unchanged one then needs neither a
     * buffer nor a read of its own, and stays out of the map as before. */
    const unsigned char *old = NULL;
    uint64_t old_from = 0, old_to = 0; /* the window of the data file in old */
    bool failed = false;
    direct_batch batch;
    batch.n = 0;
    const bool direct = f->log_pages && n >= f->opt.direct_bytes;
    /* A large write whose first PREFETCH_MAX of compared pages all changed
     * is a rewrite: the rest is logged without reading the data file to
     * compare (logging a page that did not change is only a few bytes of
     * log more; reading every page first cost as much as logging it). */
    size_t compared = 0, same = 0;
    bool trust = false;
    for (; pos < end && pos < bnd;) {
        uint64_t page = pos / PAGE, pend = umin((page + 1) * PAGE, end);
        size_t o = (size_t)(pos - page * PAGE), k = (size_t)(pend - pos);
        const unsigned char *src = in + (pos - addr);
        slot *s = map_find(f, page);
        if (direct && k == PAGE && (!s || !s->buf) && (trust || (s && s->log_off))) {
            /* a whole page over one whose bytes are in the log, or in a
             * rewrite: reading them back only to compare costs more than
             * logging the page again if it happens to be unchanged */
            if (direct_add(f, &batch, page, src) < 0) return -1;
            pos = pend;
            continue;
        }
        if ((!s || (!s->buf && !s->log_off)) && (page * PAGE < old_from || page * PAGE >= old_to)) {
            /* a window of at most PREFETCH_MAX, moved on as the write goes */
            old_from = page * PAGE;
            old_to = umin((umin(end, bnd) + PAGE - 1) / PAGE * PAGE, old_from + PREFETCH_MAX);
            old = prefetch(f, old_from, old_to, &failed);
            if (failed) return -1;
        }
        if ((!s || (!s->buf && !s->log_off)) && old) {
            const unsigned char *cur = old + (page * PAGE - old_from);
            compared++;
            if (pend <= f->eof && memcmp(cur + o, src, k) == 0) { /* unchanged */
                same++;
                pos = pend;
                continue;
            }
            trust = direct && !same && compared >= PREFETCH_MAX / PAGE;
            if (direct && k == PAGE) {
                if (direct_add(f, &batch, page, src) < 0) return -1;
                pos = pend;
                continue;
            }
            if (!s && !(s = map_get(f, page))) return errno = ENOMEM, -1;
            if (slot_fill(f, s, cur) < 0 || mark_dirty(f, s) < 0) return -1;
            memcpy(s->buf + o, src, k);
            pos = pend;
            continue;
        }
        if (!s) s = map_get(f, page);
        if (!s) return errno = ENOMEM, -1;
        if (!s->buf && k == PAGE && s->log_off) {
            /* a whole page over one whose bytes are in the log (a small
             * write; see the direct case above): not read back to compare */
            if (slot_fill(f, s, src) < 0 || mark_dirty(f, s) < 0) return -1;
            pos = pend;
            continue;
        }
        if (!s->buf) {
            unsigned char *b = malloc(PAGE);
            if (!b) return errno = ENOMEM, -1;
            if (page_fill(f, s, b) < 0) {
                free(b);
                return -1;
            }
            s->buf = b;
            f->buffered += PAGE;
        }
        /* HDF5 rewrites whole chunks and metadata blocks at every flush, most
         * of them unchanged: only pages whose bytes change are logged. Bytes
         * at or past eof read as zeros but may differ on disk, so a write
         * there always counts as a change. */
        if (pend > f->eof || memcmp(s->buf + o, src, k) != 0) {
            if (mark_dirty(f, s) < 0) return -1;
            memcpy(s->buf + o, src, k);
        }
        pos = pend;
    }
    if (batch.n && f->log_pages(f, batch.pages, batch.src, batch.n) < 0) return -1;
    if (pos < end) {
        f->data_unsynced = true;
        if (pwrite_all(f->fd, in + (pos - addr), end - pos, pos) < 0) return -1;
        f->phys = umax(f->phys, end);
    }
    return 0;
}

/* Bytes past the logical eof may still hold old content: bytes of the data
 * file kept for a rollback, and pages of the map. Before eof grows over
 * [from, to), they are overwritten with zeros, so that readers see zeros
 * there as with sec2. Protected pages past the physical end that are not in
 * the map already read as zeros. */
int zero_stale(wal_file *f, uint64_t from, uint64_t to)
{
    static const unsigned char zeros[H5A_WAL_PAGE];
    to = umin(to, umax(f->phys, boundary(f)));
    while (from < to) {
        uint64_t n = umin(to - from, PAGE - from % PAGE);
        bool stale = from < f->phys || map_find(f, from / PAGE);
        if (stale && put_range(f, from, (size_t)n, zeros) < 0) return -1;
        from += n;
    }
    return 0;
}
