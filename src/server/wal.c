/* h5a_wal: the crash-safe HDF5 file driver (see wal.h). The design, the
 * crash cases and why each one ends in a committed state are in
 * docs/durability.md, "Crash safety: the write-ahead log"; the comments
 * here say what the code does and point there for why.
 *
 * Terms: the data file is the HDF5 file; eof is its logical size (what HDF5
 * sees); phys its size on disk, which may be larger (bytes a rollback still
 * needs are kept); `protect` is the largest eof of any state a recovery may
 * roll back to since the last checkpoint. Pages below round_up(protect) are
 * never written in the data file before a checkpoint: they live in the page
 * map (and the log). Pages at or above it are new space, written directly. */
#include "server/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define PAGE ((uint64_t)H5A_WAL_PAGE)
#define HDR ((uint64_t)H5A_WAL_HEADER_BYTES)
/* Page buffers held in memory before the changed ones are spilled into the
 * log (without a commit record) and dropped. */
#define MAP_LIMIT ((size_t)64 << 20)
static size_t map_limit = MAP_LIMIT;
/* A checkpoint normally starts the next generation's records where the last
 * ones ended (no fsync needed, see the doc); past this size it restarts the
 * log at its top instead, which costs one fsync. */
#define LOG_RESTART_AT ((uint64_t)64 << 20)
static uint64_t log_restart_at = LOG_RESTART_AT;
/* A HARD commit checkpoints (copies the pages into the data file: one more
 * fdatasync) only once the log holds this much since the last checkpoint,
 * and at close. This bounds the replay time and the log's size; the HARD
 * commits in between cost one or two fdatasyncs instead of three. */
#define CHECKPOINT_AT ((uint64_t)8 << 20)
static uint64_t checkpoint_at = CHECKPOINT_AT;
#define STAGE_BYTES ((size_t)1 << 20) /* records are written in pieces of this size */

#define VERSION 1
#define REC_HDR 48
#define REC_PAGE_BYTES (REC_HDR + PAGE)
#define REC_PAGE 1
#define REC_COMMIT 2
#define FLAG_HARD 1
#define NO_PAGE UINT64_MAX
#define FILE_MAGIC 0x6835615f77616c31ull /* marks a live wal_file */
static const unsigned char LOG_MAGIC[8] = {'H', '5', 'A', 'W', 'A', 'L', '\r', '\n'};

/* ---- system calls (replaceable by tests, see wal.h) ---- */

static int real_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags | O_CLOEXEC, mode);
}
static int real_boot_id(char *out)
{
    out[0] = '\0';
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!fp) return -1;
    char *ok = fgets(out, 64, fp);
    fclose(fp);
    if (!ok) return out[0] = '\0', -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

static const h5a_wal_sys real_sys = {real_open, close,     pread, pwrite,  fdatasync, fsync,
                                     ftruncate, fstat,     flock, unlink,  real_boot_id};
static const h5a_wal_sys *S = &real_sys;

void h5a_wal_set_sys(const h5a_wal_sys *sys)
{
    S = sys ? sys : &real_sys;
}

const h5a_wal_sys *h5a_wal_real_sys(void)
{
    return &real_sys;
}

void h5a_wal_set_limits(size_t map_bytes, uint64_t log_restart_bytes, uint64_t checkpoint_bytes)
{
    map_limit = map_bytes ? map_bytes : MAP_LIMIT;
    log_restart_at = log_restart_bytes ? log_restart_bytes : LOG_RESTART_AT;
    checkpoint_at = checkpoint_bytes ? checkpoint_bytes : CHECKPOINT_AT;
}

/* ---- little-endian fields and the checksum ---- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A 64-bit hash in the style of XXH64 (same primes and mixing; not meant to
 * match its outputs). Detects torn and stale records; not cryptographic. */
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}
static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v); /* the log is little-endian everywhere */
#endif
    return v;
}
static uint64_t hround(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    return rotl(acc, 31) * P1;
}
static uint64_t hmerge(uint64_t acc, uint64_t v)
{
    acc ^= hround(0, v);
    return acc * P1 + P4;
}

static uint64_t hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data, *end = p + n;
    uint64_t h;
    if (n >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        do {
            v1 = hround(v1, rd64(p));
            v2 = hround(v2, rd64(p + 8));
            v3 = hround(v3, rd64(p + 16));
            v4 = hround(v4, rd64(p + 24));
            p += 32;
        } while (end - p >= 32);
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = hmerge(hmerge(hmerge(hmerge(h, v1), v2), v3), v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)n;
    for (; end - p >= 8; p += 8) h = rotl(h ^ hround(0, rd64(p)), 27) * P1 + P4;
    for (; p < end; p++) h = rotl(h ^ (*p * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* A record's checksum covers the generation and its own offset in the log,
 * so a record left from another generation, or found at another place,
 * never passes for a current one. */
static uint64_t record_sum(uint64_t gen, uint64_t off, const unsigned char *hdr40,
                           const void *payload, size_t plen)
{
    unsigned char seedbuf[16];
    put64(seedbuf, gen);
    put64(seedbuf + 8, off);
    uint64_t h = hash64(hdr40, 40, hash64(seedbuf, 16, 0));
    return plen ? hash64(payload, plen, h) : h;
}

/* The commit record carries a chain over its records' checksums. */
static uint64_t chain_next(uint64_t chain, uint64_t sum)
{
    unsigned char b[16];
    put64(b, chain);
    put64(b + 8, sum);
    return hash64(b, 16, 0);
}

/* ---- the driver's file ---- */

/* A page of the map. buf without log_off and not dirty: a clean copy of
 * the data file's page (kept to compare HDF5's rewrites against). No buf
 * and no log_off: nothing, the data file has the page. */
typedef struct {
    uint64_t page;      /* NO_PAGE: empty slot */
    unsigned char *buf; /* the page, or NULL while only its log copy exists */
    uint64_t log_off;   /* offset of its latest record in the log, 0 = none */
    bool dirty;         /* changed since that record (listed in dirty_pages) */
} slot;

typedef struct wal_file {
    H5FD_t pub; /* first: HDF5 sees this */
    uint64_t magic;
    struct wal_file *next_open; /* list of open files: h5a_wal_commit checks handles */
    int fd, log_fd;             /* log_fd < 0 when opened read-only */
    char *path, *log_path;
    bool rw;
    haddr_t eoa;
    uint64_t eof, phys, protect, commit_eof;
    uint64_t gen, base_eof, log_start, log_end, seq; /* seq: commits in this generation */
    uint64_t chain, nrec; /* records since the last commit record */
    bool changed;         /* written or resized since the last commit */
    bool soft_pending;    /* a SOFT commit since the last HARD one */
    bool data_unsynced;   /* the data file changed since its last fdatasync */
    int broken;           /* errno of a failure after which writes are refused */
    slot *slots;
    size_t cap, count, buffered;
    uint64_t *dirty_pages; /* pages with dirty set, in the order they changed */
    size_t ndirty, dirty_cap;
    unsigned char *stage; /* STAGE_BYTES for writing records, allocated on first use */
    char boot[64];
} wal_file;

static wal_file *open_files;
static _Thread_local h5a_wal_recovery last_recovery;

void h5a_wal_last_recovery(h5a_wal_recovery *out)
{
    *out = last_recovery;
}

#define PUSH(min, ...)                                                                   \
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL, min,      \
             __VA_ARGS__)

static uint64_t boundary(const wal_file *f)
{
    return (f->protect + PAGE - 1) / PAGE * PAGE;
}

static uint64_t umin(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}
static uint64_t umax(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* ---- page map: open addressing on the page number ---- */

static size_t slot_index(const wal_file *f, uint64_t page)
{
    return (size_t)((page * 0x9E3779B97F4A7C15ull) >> 17) & (f->cap - 1);
}

static slot *map_find(const wal_file *f, uint64_t page)
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

/* The slot of page, created empty (no buffer, no log copy) if missing. */
static slot *map_get(wal_file *f, uint64_t page)
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

static void map_clear(wal_file *f)
{
    for (size_t i = 0; i < f->cap; i++) free(f->slots[i].buf);
    free(f->slots);
    f->slots = NULL;
    f->cap = f->count = f->buffered = f->ndirty = 0;
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

/* ---- raw I/O ---- */

static int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = S->pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        done += (size_t)k;
    }
    if (got) *got = done;
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = S->pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k == 0 ? (errno = EIO, -1) : -1;
        done += (size_t)k;
    }
    return 0;
}

static int sync_retry(int (*fn)(int), int fd)
{
    int rc;
    do rc = fn(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/* Data file bytes [off, off+n); zeros past its physical end (as sec2). */
static int data_read(wal_file *f, uint64_t off, size_t n, unsigned char *out)
{
    size_t got = 0;
    if (off < f->phys && pread_all(f->fd, out, (size_t)umin(n, f->phys - off), off, &got) < 0)
        return -1;
    if (got < n) memset(out + got, 0, n - got);
    return 0;
}

static int log_read_page(wal_file *f, const slot *s, unsigned char *out)
{
    size_t got = 0;
    if (pread_all(f->log_fd, out, PAGE, s->log_off + REC_HDR, &got) < 0) return -1;
    if (got != PAGE) return errno = EIO, -1;
    return 0;
}

/* The page as readers see it, for a slot that has no buffer. */
static int page_fill(wal_file *f, slot *s, unsigned char *out)
{
    if (s->log_off) return log_read_page(f, s, out);
    uint64_t at = s->page * PAGE;
    if (data_read(f, at, PAGE, out) < 0) return -1;
    if (at + PAGE > f->eof) {
        uint64_t keep = f->eof > at ? f->eof - at : 0;
        memset(out + keep, 0, PAGE - keep);
    }
    return 0;
}

/* What HDF5 reads at [addr, addr+n): the map over the data file, zeros at
 * and past the logical eof. */
static int read_range(wal_file *f, uint64_t addr, size_t n, unsigned char *out)
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
                } else {
                    unsigned char tmp[H5A_WAL_PAGE];
                    if (log_read_page(f, s, tmp) < 0) return -1;
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

/* Put bytes at [addr, addr+n): committed pages into the map, new space
 * straight into the data file. Does not move eof (callers do, after). */
static int put_range(wal_file *f, uint64_t addr, size_t n, const unsigned char *in)
{
    uint64_t end = addr + n, bnd = boundary(f), pos = addr;
    for (; pos < end && pos < bnd;) {
        uint64_t page = pos / PAGE, pend = umin((page + 1) * PAGE, end);
        size_t o = (size_t)(pos - page * PAGE), k = (size_t)(pend - pos);
        const unsigned char *src = in + (pos - addr);
        slot *s = map_get(f, page);
        if (!s) return errno = ENOMEM, -1;
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
static int zero_stale(wal_file *f, uint64_t from, uint64_t to)
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

/* ---- the log ---- */

typedef struct {
    unsigned char *buf;
    size_t len;
    uint64_t off; /* log offset of buf[0] */
    uint64_t chain, nrec;
} stage;

static int stage_flush(wal_file *f, stage *st)
{
    if (st->len && pwrite_all(f->log_fd, st->buf, st->len, st->off) < 0) return -1;
    st->off += st->len;
    st->len = 0;
    return 0;
}

static int stage_record(wal_file *f, stage *st, uint32_t type, uint32_t flags, uint64_t a,
                        uint64_t b, uint64_t c, uint64_t d, const unsigned char *payload,
                        size_t plen)
{
    if (st->len + REC_HDR + plen > STAGE_BYTES && stage_flush(f, st) < 0) return -1;
    unsigned char *r = st->buf + st->len;
    put32(r, type);
    put32(r + 4, flags);
    put64(r + 8, a);
    put64(r + 16, b);
    put64(r + 24, c);
    put64(r + 32, d);
    uint64_t sum = record_sum(f->gen, st->off + st->len, r, payload, plen);
    put64(r + 40, sum);
    if (plen) memcpy(r + REC_HDR, payload, plen);
    st->len += REC_HDR + plen;
    if (type == REC_PAGE) {
        st->chain = chain_next(st->chain, sum);
        st->nrec++;
    }
    return 0;
}

/* Append a record of every changed page that has a buffer, then (when
 * commit) the commit record. On success the slots point at their records;
 * on failure nothing changes (the next attempt writes at the same place). */
static int log_append(wal_file *f, bool commit, bool hard)
{
    if (!f->stage && !(f->stage = malloc(STAGE_BYTES))) return errno = ENOMEM, -1;
    stage st = {f->stage, 0, f->log_end, f->chain, f->nrec};
    uint64_t first = st.off;
    for (size_t i = 0; i < f->ndirty; i++) {
        slot *s = map_find(f, f->dirty_pages[i]);
        if (stage_record(f, &st, REC_PAGE, 0, s->page, 0, 0, 0, s->buf, PAGE) < 0) return -1;
    }
    if (commit && stage_record(f, &st, REC_COMMIT, hard ? FLAG_HARD : 0, f->seq + 1, f->eof,
                               st.nrec, st.chain, NULL, 0) < 0)
        return -1;
    if (stage_flush(f, &st) < 0) return -1;
    /* records went out in list order, one REC_PAGE_BYTES each */
    for (size_t i = 0; i < f->ndirty; i++) {
        slot *s = map_find(f, f->dirty_pages[i]);
        s->log_off = first + i * REC_PAGE_BYTES;
        s->dirty = false;
    }
    f->ndirty = 0;
    f->log_end = st.off;
    if (commit) {
        f->seq++;
        f->chain = 0;
        f->nrec = 0;
    } else {
        f->chain = st.chain;
        f->nrec = st.nrec;
    }
    return 0;
}

/* Spill: changed pages go to the log (no commit record: a crash before the
 * next commit discards them) and every buffer is dropped; reads and the
 * checkpoint then take the pages from the log. */
static int spill(wal_file *f)
{
    if (log_append(f, false, false) < 0) return -1;
    for (size_t i = 0; i < f->cap; i++) {
        if (f->slots[i].buf) {
            free(f->slots[i].buf);
            f->slots[i].buf = NULL;
        }
    }
    f->buffered = 0;
    return 0;
}

/* The header: magic, version, page size, generation, base_eof (the data
 * file's committed size at the generation's start), start (offset of its
 * first record), durable_seq (commits up to this one are on disk whatever
 * their kind: set by a recovery that replays SOFT commits), boot id of the
 * writer, checksum. All in the first 104 bytes of the sector. */
static void header_encode(uint64_t gen, uint64_t base_eof, uint64_t start, uint64_t durable_seq,
                          const char *boot, unsigned char *h)
{
    memset(h, 0, HDR);
    memcpy(h, LOG_MAGIC, 8);
    put32(h + 8, VERSION);
    put32(h + 12, (uint32_t)PAGE);
    put64(h + 16, gen);
    put64(h + 24, base_eof);
    put64(h + 32, start);
    put64(h + 40, durable_seq);
    memcpy(h + 48, boot, 48); /* boot ids are 36 characters */
    h[95] = '\0';
    put64(h + 96, hash64(h, 96, 0));
}

/* Start generation gen+1 with records at `start`. durable: fsync the header
 * before anything can overwrite older records (see the doc for when that is
 * needed). */
static int log_reset(wal_file *f, uint64_t start, bool durable)
{
    unsigned char h[H5A_WAL_HEADER_BYTES];
    f->gen++;
    header_encode(f->gen, f->base_eof, start, 0, f->boot, h);
    if (pwrite_all(f->log_fd, h, HDR, 0) < 0) return -1;
    if (durable && sync_retry(S->fdatasync, f->log_fd) < 0) return -1;
    f->log_start = f->log_end = start;
    f->seq = 0;
    f->chain = 0;
    f->nrec = 0;
    return 0;
}

static int fsync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = S->open(dir, O_RDONLY | O_DIRECTORY, 0);
    free(dir);
    if (fd < 0) return -1;
    int rc = sync_retry(S->fsync, fd);
    S->close(fd);
    return rc;
}

/* ---- commit and checkpoint ---- */

static int fail_msg(char *err, size_t errlen, const wal_file *f, const char *what)
{
    if (err && errlen) snprintf(err, errlen, "%s '%s': %s", what, f->path, strerror(errno));
    return -1;
}

/* Copy every page of the map into the data file, cut it to eof, fsync it,
 * and start the next generation of the log. */
static int checkpoint(wal_file *f, char *err, size_t errlen)
{
    unsigned char tmp[H5A_WAL_PAGE];
    for (size_t i = 0; i < f->cap; i++) {
        slot *s = &f->slots[i];
        /* a page never logged is the data file's own (below eof) */
        if (s->page == NO_PAGE || !s->log_off || s->page * PAGE >= f->eof) continue;
        const unsigned char *src = s->buf;
        if (!src) {
            if (log_read_page(f, s, tmp) < 0)
                return fail_msg(err, errlen, f, "checkpoint: cannot read the log of");
            src = tmp;
        }
        if (pwrite_all(f->fd, src, PAGE, s->page * PAGE) < 0)
            return fail_msg(err, errlen, f, "checkpoint: cannot write");
        f->phys = umax(f->phys, (s->page + 1) * PAGE);
    }
    if (f->phys != f->eof) {
        if (S->ftruncate(f->fd, (off_t)f->eof) < 0)
            return fail_msg(err, errlen, f, "checkpoint: cannot truncate");
        f->phys = f->eof;
    }
    if (sync_retry(S->fdatasync, f->fd) < 0)
        return fail_msg(err, errlen, f, "checkpoint: fdatasync failed on");
    f->data_unsynced = false;
    map_clear(f);
    f->base_eof = f->protect = f->commit_eof = f->eof;
    bool restart = f->log_end > log_restart_at;
    if (log_reset(f, restart ? HDR : f->log_end, restart) < 0)
        return fail_msg(err, errlen, f, "checkpoint: cannot reset the log of");
    if (restart && S->ftruncate(f->log_fd, (off_t)HDR) < 0)
        return fail_msg(err, errlen, f, "checkpoint: cannot truncate the log of");
    return 0;
}

/* checkpoint: after a HARD commit, checkpoint now (close) rather than
 * when the log has grown past checkpoint_at. */
static int commit(wal_file *f, bool hard, bool force_checkpoint, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!f->rw) return snprintf(err, errlen, "'%s' is open read-only", f->path), -1;
    if (f->broken) {
        errno = f->broken;
        return fail_msg(err, errlen, f, "an earlier I/O error left unknown state in");
    }
    /* nothing new (a HARD one still has work if a SOFT one is not durable) */
    if (f->changed || (hard && f->soft_pending)) {
        /* new space written directly must be on disk before a durable
         * commit record covers it */
        if (hard && f->data_unsynced) {
            if (sync_retry(S->fdatasync, f->fd) < 0) {
                f->broken = errno;
                return fail_msg(err, errlen, f, "fdatasync failed on");
            }
            f->data_unsynced = false;
        }
        if (log_append(f, true, hard) < 0) {
            int e = errno;
            fail_msg(err, errlen, f, "cannot write the log of");
            errno = e;
            return -1;
        }
        f->commit_eof = f->eof;
        f->protect = umax(f->protect, f->eof);
        f->changed = false;
        f->soft_pending = !hard;
        if (!hard) return 0;
        if (sync_retry(S->fdatasync, f->log_fd) < 0) {
            f->broken = errno;
            return fail_msg(err, errlen, f, "fdatasync failed on the log of");
        }
    }
    if (!hard || f->seq == 0 ||
        (!force_checkpoint && f->log_end - f->log_start <= checkpoint_at))
        return 0;
    if (checkpoint(f, err, errlen) < 0) {
        f->broken = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* ---- recovery ---- */

typedef struct {
    uint64_t gen, base_eof, start, durable_seq;
    char boot[48];
} log_header;

/* 1: valid; 0: no usable header (torn, empty or not ours); -1: unsupported. */
static int header_decode(const unsigned char *h, size_t n, log_header *out)
{
    if (n < 104 || memcmp(h, LOG_MAGIC, 8) != 0) return 0;
    if (get64(h + 96) != hash64(h, 96, 0)) return 0;
    if (get32(h + 8) != VERSION || get32(h + 12) != PAGE) return -1;
    out->gen = get64(h + 16);
    out->base_eof = get64(h + 24);
    out->start = get64(h + 32);
    out->durable_seq = get64(h + 40);
    memcpy(out->boot, h + 48, 48);
    out->boot[47] = '\0';
    return out->start >= HDR ? 1 : 0;
}

typedef struct {
    uint32_t type, flags;
    uint64_t a, b, c, d, sum;
} record;

/* Read and check the record at off; payload (PAGE bytes) read into page
 * when it is a page record. 1: valid; 0: end of the valid log. */
static int record_read(wal_file *f, uint64_t gen, uint64_t off, record *r, unsigned char *page)
{
    unsigned char h[REC_HDR];
    size_t got = 0;
    if (pread_all(f->log_fd, h, REC_HDR, off, &got) < 0) return -1;
    if (got != REC_HDR) return 0;
    r->type = get32(h);
    r->flags = get32(h + 4);
    r->a = get64(h + 8);
    r->b = get64(h + 16);
    r->c = get64(h + 24);
    r->d = get64(h + 32);
    r->sum = get64(h + 40);
    size_t plen = 0;
    if (r->type == REC_PAGE) {
        plen = PAGE;
        if (pread_all(f->log_fd, page, PAGE, off + REC_HDR, &got) < 0) return -1;
        if (got != PAGE) return 0;
    } else if (r->type != REC_COMMIT) {
        return 0;
    }
    return record_sum(gen, off, h, page, plen) == r->sum;
}

/* Roll the data file forward to the log's last commit (process crash: the
 * log was written since this boot) or its last HARD commit (machine crash),
 * then start a new generation, durably (see the doc for why it must be). */
static int recover(wal_file *f, const log_header *lh, h5a_wal_recovery *rep)
{
    unsigned char *page = malloc(PAGE);
    if (!page) return errno = ENOMEM, -1;
    rep->same_boot = f->boot[0] && strcmp(lh->boot, f->boot) == 0;
    /* pass 1: find where the complete commits end */
    uint64_t off = lh->start, nrec = 0, chain = 0, seq = 0;
    uint64_t end_all = lh->start, end_hard = lh->start, eof_all = lh->base_eof,
             eof_hard = lh->base_eof;
    unsigned n_all = 0, n_hard = 0;
    record r;
    int rc;
    while ((rc = record_read(f, lh->gen, off, &r, page)) == 1) {
        if (r.type == REC_PAGE) {
            if (r.a > (uint64_t)INT64_MAX / PAGE) break;
            nrec++;
            chain = chain_next(chain, r.sum);
            off += REC_PAGE_BYTES;
            continue;
        }
        if (r.a != seq + 1 || r.c != nrec || r.d != chain || r.b > (uint64_t)INT64_MAX) break;
        off += REC_HDR;
        seq++;
        nrec = 0;
        chain = 0;
        end_all = off;
        eof_all = r.b;
        n_all++;
        if ((r.flags & FLAG_HARD) || seq <= lh->durable_seq) {
            end_hard = off;
            eof_hard = r.b;
            n_hard = n_all;
        }
    }
    if (rc < 0) goto fail;
    uint64_t end = rep->same_boot ? end_all : end_hard;
    uint64_t eof = rep->same_boot ? eof_all : eof_hard;
    rep->commits = rep->same_boot ? n_all : n_hard;
    rep->dropped = n_all - rep->commits;
    if (rep->commits > n_hard) {
        /* About to put SOFT commits into the data file. Should the machine
         * die before this recovery ends, the next one (another boot) must
         * replay them too, not stop at the last HARD commit: make them
         * durable and say so in the header. */
        unsigned char h[H5A_WAL_HEADER_BYTES];
        header_encode(lh->gen, lh->base_eof, lh->start, seq, lh->boot, h);
        if (sync_retry(S->fdatasync, f->log_fd) < 0 || pwrite_all(f->log_fd, h, HDR, 0) < 0 ||
            sync_retry(S->fdatasync, f->log_fd) < 0)
            goto fail;
    }
    /* pass 2: the latest record of each page among the applied commits */
    for (off = lh->start; off < end;) {
        if (record_read(f, lh->gen, off, &r, page) != 1) {
            errno = EIO; /* it was valid a moment ago */
            goto fail;
        }
        if (r.type == REC_PAGE) {
            slot *s = map_get(f, r.a);
            if (!s) goto fail_nomem;
            s->log_off = off;
            off += REC_PAGE_BYTES;
        } else {
            off += REC_HDR;
        }
    }
    for (size_t i = 0; i < f->cap; i++) {
        slot *s = &f->slots[i];
        if (s->page == NO_PAGE) continue;
        if (log_read_page(f, s, page) < 0 || pwrite_all(f->fd, page, PAGE, s->page * PAGE) < 0)
            goto fail;
        rep->pages++;
    }
    if (S->ftruncate(f->fd, (off_t)eof) < 0 || sync_retry(S->fdatasync, f->fd) < 0) goto fail;
    map_clear(f);
    free(page);
    f->phys = f->eof = f->protect = f->commit_eof = f->base_eof = eof;
    rep->eof = eof;
    return 0;
fail_nomem:
    errno = ENOMEM;
fail:
    map_clear(f);
    free(page);
    return -1;
}

/* ---- open and close ---- */

static void free_file(wal_file *f)
{
    if (!f) return;
    map_clear(f);
    free(f->dirty_pages);
    free(f->stage);
    free(f->path);
    free(f->log_path);
    free(f);
}

/* A generation number for a log started from nothing: picked anew, so no
 * leftover of an older log can pass for current. */
static uint64_t new_generation(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned char b[16];
    put64(b, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    put64(b + 8, (uint64_t)getpid());
    return hash64(b, 16, 0) >> 1;
}

/* Create a fresh log for the current state. */
static int log_create(wal_file *f)
{
    f->log_fd = S->open(f->log_path, O_RDWR | O_CREAT | O_TRUNC, 0666);
    if (f->log_fd < 0) return -1;
    f->gen = new_generation();
    f->base_eof = f->eof;
    if (log_reset(f, HDR, true) < 0) return -1;
    return fsync_dir(f->log_path);
}

/* Open the log of a file opened for writing: replay it if one was left
 * over, else create one. */
static int log_open(wal_file *f, bool fresh, h5a_wal_recovery *rep)
{
    if (fresh) {
        if (S->unlink(f->log_path) < 0 && errno != ENOENT) return -1;
        return log_create(f);
    }
    f->log_fd = S->open(f->log_path, O_RDWR, 0);
    if (f->log_fd < 0) return errno == ENOENT ? log_create(f) : -1;
    rep->found_log = true;
    unsigned char h[H5A_WAL_HEADER_BYTES];
    size_t got = 0;
    log_header lh;
    if (pread_all(f->log_fd, h, HDR, 0, &got) < 0) return -1;
    int ok = header_decode(h, got, &lh);
    if (ok < 0) {
        errno = EPROTO;
        PUSH(H5E_CANTOPENFILE,
             "'%s' has a log of another version or page size; refusing to touch it", f->log_path);
        return -2;
    }
    if (ok == 0) {
        /* written at creation and fsynced before any change, so a log
         * without a valid header never had anything to replay */
        snprintf(rep->message, sizeof rep->message,
                 "%s: left-over log without a valid header (%s); nothing to replay", f->log_path,
                 got ? "torn or foreign" : "empty");
        f->gen = new_generation();
    } else {
        if (recover(f, &lh, rep) < 0) return -1;
        f->gen = lh.gen;
        snprintf(rep->message, sizeof rep->message,
                 "%s: recovered after a %s: replayed %u commit(s), %llu page(s), dropped %u "
                 "soft commit(s); size %llu bytes",
                 f->path,
                 rep->same_boot ? "process crash" : "machine crash (log from an earlier boot)",
                 rep->commits, (unsigned long long)rep->pages, rep->dropped,
                 (unsigned long long)rep->eof);
    }
    f->base_eof = f->eof;
    if (log_reset(f, HDR, true) < 0) return -1;
    if (S->ftruncate(f->log_fd, (off_t)HDR) < 0) return -1;
    return 0;
}

/* A read-only open of a file with a leftover log: replay it (needs write
 * access once), then remove the log, as a clean close would. */
static int recover_for_reader(const char *path, const char *log_path, h5a_wal_recovery *rep)
{
    int probe = S->open(log_path, O_RDONLY, 0);
    if (probe < 0) return errno == ENOENT ? 0 : -1;
    S->close(probe);
    wal_file *f = calloc(1, sizeof *f);
    if (!f) return errno = ENOMEM, -1;
    f->log_fd = -1;
    f->path = strdup(path);
    f->log_path = strdup(log_path);
    f->fd = -1;
    int rc = -1;
    if (!f->path || !f->log_path) {
        errno = ENOMEM;
        goto out;
    }
    S->boot_id(f->boot);
    f->fd = S->open(path, O_RDWR, 0);
    if (f->fd < 0) {
        PUSH(H5E_CANTOPENFILE,
             "'%s' was not closed cleanly and must be recovered, which needs write access: %s",
             path, strerror(errno));
        rc = -2;
        goto out;
    }
    if (S->flock(f->fd, LOCK_EX | LOCK_NB) < 0) {
        PUSH(H5E_CANTLOCKFILE, "'%s' is in use (open in another process or handle)", path);
        rc = -2;
        goto out;
    }
    struct stat st;
    if (S->fstat(f->fd, &st) < 0) goto out;
    f->phys = f->eof = (uint64_t)st.st_size;
    f->rw = true;
    int lrc = log_open(f, false, rep);
    if (lrc < 0) {
        rc = lrc;
        goto out;
    }
    if (S->unlink(log_path) < 0 || fsync_dir(log_path) < 0) goto out;
    rc = 0;
out:
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    free_file(f);
    return rc;
}

static wal_file *wal_open(const char *name, unsigned flags)
{
    h5a_wal_recovery rep;
    memset(&rep, 0, sizeof rep);
    last_recovery = rep;
    wal_file *f = calloc(1, sizeof *f);
    char *log_path = malloc(strlen(name) + 5);
    if (!f || !log_path) {
        free(f);
        free(log_path);
        PUSH(H5E_CANTALLOC, "out of memory");
        return NULL;
    }
    sprintf(log_path, "%s.wal", name);
    f->fd = f->log_fd = -1;
    f->path = strdup(name);
    f->log_path = log_path;
    f->rw = (flags & H5F_ACC_RDWR) != 0;
    f->magic = FILE_MAGIC;
    if (!f->path) goto nomem;
    S->boot_id(f->boot);
    bool fresh = f->rw && (flags & (H5F_ACC_TRUNC | H5F_ACC_EXCL));
    int rc;
    if (!f->rw && (rc = recover_for_reader(name, log_path, &rep)) != 0) {
        if (rc == -1) PUSH(H5E_CANTOPENFILE, "cannot recover '%s': %s", name, strerror(errno));
        goto fail;
    }
    int oflags = f->rw ? O_RDWR : O_RDONLY;
    if (f->rw && (flags & H5F_ACC_CREAT)) oflags |= O_CREAT;
    if (f->rw && (flags & H5F_ACC_EXCL)) oflags |= O_EXCL;
    /* no O_TRUNC: truncate only once the lock is ours */
    f->fd = S->open(name, oflags, 0666);
    if (f->fd < 0) {
        PUSH(H5E_CANTOPENFILE, "unable to open file '%s': %s", name, strerror(errno));
        goto fail;
    }
    if (S->flock(f->fd, (f->rw ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            PUSH(H5E_CANTLOCKFILE, "'%s' is in use (open in another process or handle)", name);
        else
            PUSH(H5E_CANTLOCKFILE, "cannot lock '%s': %s", name, strerror(errno));
        goto fail;
    }
    if (f->rw && (flags & H5F_ACC_TRUNC) && S->ftruncate(f->fd, 0) < 0) {
        PUSH(H5E_CANTOPENFILE, "cannot truncate '%s': %s", name, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (S->fstat(f->fd, &st) < 0) {
        PUSH(H5E_CANTOPENFILE, "cannot stat '%s': %s", name, strerror(errno));
        goto fail;
    }
    f->phys = f->eof = (uint64_t)st.st_size;
    if (f->rw && (flags & H5F_ACC_CREAT) && st.st_size == 0) fresh = true;
    if (f->rw) {
        rc = log_open(f, fresh, &rep);
        if (rc < 0) {
            if (rc == -1)
                PUSH(H5E_CANTOPENFILE, "cannot set up the write-ahead log '%s': %s", log_path,
                     strerror(errno));
            goto fail;
        }
    }
    f->protect = f->commit_eof = f->base_eof = f->eof;
    /* what the file held at open may not be on disk yet (written by a tool
     * that did not fsync): the first HARD commit makes sure it is */
    f->data_unsynced = f->rw;
    f->next_open = open_files;
    open_files = f;
    last_recovery = rep;
    return f;
nomem:
    PUSH(H5E_CANTALLOC, "out of memory");
fail:
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    last_recovery = rep;
    free_file(f);
    return NULL;
}

static void unlist(wal_file *f)
{
    for (wal_file **p = &open_files; *p; p = &(*p)->next_open) {
        if (*p == f) {
            *p = f->next_open;
            return;
        }
    }
}

/* ---- the H5FD callbacks ---- */

static H5FD_t *cb_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    (void)fapl;
    if (!name || !*name) {
        PUSH(H5E_BADVALUE, "invalid file name");
        return NULL;
    }
    if (maxaddr == 0 || maxaddr == HADDR_UNDEF) {
        PUSH(H5E_BADRANGE, "bogus maxaddr");
        return NULL;
    }
    wal_file *f = wal_open(name, flags);
    return f ? &f->pub : NULL;
}

static herr_t cb_close(H5FD_t *file)
{
    wal_file *f = (wal_file *)file;
    herr_t ret = 0;
    unlist(f);
    if (f->rw && f->log_fd >= 0) {
        char err[512];
        /* a clean close: everything durable, then no log is needed */
        if (commit(f, true, true, err, sizeof err) < 0) {
            PUSH(H5E_CANTCLOSEFILE, "closing: %s (the log is kept; reopening recovers)", err);
            ret = -1;
        } else if (S->unlink(f->log_path) < 0 || fsync_dir(f->log_path) < 0) {
            PUSH(H5E_CANTCLOSEFILE, "closing: cannot remove the log '%s': %s", f->log_path,
                 strerror(errno));
            ret = -1;
        }
    }
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (S->close(f->fd) < 0 && ret == 0) {
        PUSH(H5E_CANTCLOSEFILE, "closing '%s': %s", f->path, strerror(errno));
        ret = -1;
    }
    f->magic = 0;
    free_file(f);
    return ret;
}

static herr_t cb_query(const H5FD_t *file, unsigned long *flags)
{
    (void)file;
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA;
    return 0;
}

static haddr_t cb_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const wal_file *)file)->eoa;
}

static herr_t cb_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
    (void)type;
    ((wal_file *)file)->eoa = addr;
    return 0;
}

static haddr_t cb_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const wal_file *)file)->eof;
}

static herr_t cb_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
    (void)fapl;
    if (!handle) {
        PUSH(H5E_BADVALUE, "file handle not valid");
        return -1;
    }
    *handle = file; /* the driver's own struct: see h5a_wal_commit */
    return 0;
}

static herr_t cb_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                      void *buf)
{
    (void)type;
    (void)dxpl;
    wal_file *f = (wal_file *)file;
    if (addr == HADDR_UNDEF || addr + size < addr) {
        PUSH(H5E_OVERFLOW, "bad read address %llu", (unsigned long long)addr);
        return -1;
    }
    if (read_range(f, addr, size, buf) < 0) {
        PUSH(H5E_READERROR, "read of '%s' failed: %s", f->path, strerror(errno));
        return -1;
    }
    return 0;
}

static herr_t cb_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                       const void *buf)
{
    (void)type;
    (void)dxpl;
    wal_file *f = (wal_file *)file;
    if (addr == HADDR_UNDEF || addr + size < addr) {
        PUSH(H5E_OVERFLOW, "bad write address %llu", (unsigned long long)addr);
        return -1;
    }
    if (!f->rw || f->broken) {
        PUSH(H5E_WRITEERROR, "'%s' %s", f->path,
             f->rw ? "refuses writes after an I/O error (reopen it to recover)" : "is read-only");
        return -1;
    }
    if (size == 0) return 0;
    uint64_t end = addr + size;
    if ((addr > f->eof && zero_stale(f, f->eof, addr) < 0) ||
        put_range(f, addr, size, buf) < 0) {
        PUSH(H5E_WRITEERROR, "write to '%s' failed: %s", f->path, strerror(errno));
        return -1;
    }
    f->eof = umax(f->eof, end);
    f->changed = true;
    /* a failed spill is retried at the next write; the next commit, which
     * writes the same log, reports the error */
    if (f->buffered > map_limit) (void)spill(f);
    return 0;
}

static herr_t cb_flush(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
    (void)file;
    (void)dxpl;
    (void)closing;
    return 0; /* durability is h5a_wal_commit's job */
}

/* HDF5 makes eof = eoa at every flush. eof is logical: the data file keeps
 * bytes a rollback may need (below round_up(protect)); only new space past
 * that is given back to the file system. */
static herr_t cb_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
    (void)dxpl;
    (void)closing;
    wal_file *f = (wal_file *)file;
    if (!f->rw || f->eoa == f->eof) return 0;
    if (f->broken) {
        PUSH(H5E_WRITEERROR, "'%s' refuses writes after an I/O error", f->path);
        return -1;
    }
    uint64_t target = f->eoa;
    if (target > f->eof) {
        if (zero_stale(f, f->eof, target) < 0) goto fail;
    } else {
        uint64_t keep = umax(target, umin(f->phys, boundary(f)));
        if (keep < f->phys) {
            f->data_unsynced = true;
            if (S->ftruncate(f->fd, (off_t)keep) < 0) goto fail;
            f->phys = keep;
        }
    }
    f->eof = target;
    f->changed = true;
    return 0;
fail:
    PUSH(H5E_WRITEERROR, "resizing '%s' failed: %s", f->path, strerror(errno));
    return -1;
}

static herr_t cb_lock(H5FD_t *file, hbool_t rw)
{
    wal_file *f = (wal_file *)file;
    /* the open already holds this lock (exclusive when writing); asking
     * again on the same descriptor is a no-op or a downgrade-free retry */
    if (S->flock(f->fd, (rw || f->rw ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        PUSH(H5E_CANTLOCKFILE, "'%s' is in use (open in another process or handle)", f->path);
        return -1;
    }
    return 0;
}

static herr_t cb_unlock(H5FD_t *file)
{
    /* Kept until close: the lock is what makes a leftover log mean "crash"
     * and keeps a second process from replaying a live log. */
    (void)file;
    return 0;
}

static const H5FD_class_t wal_class = {
    .name = "h5a_wal",
    .maxaddr = (haddr_t)INT64_MAX,
    .fc_degree = H5F_CLOSE_WEAK,
    /* no cmp: HDF5 then opens the file once, with the real flags, instead
     * of a tentative open (which would replay the log of a file it is about
     * to truncate); the lock already refuses a second open of one file. */
    .open = cb_open,
    .close = cb_close,
    .query = cb_query,
    .get_eoa = cb_get_eoa,
    .set_eoa = cb_set_eoa,
    .get_eof = cb_get_eof,
    .get_handle = cb_get_handle,
    .read = cb_read,
    .write = cb_write,
    .flush = cb_flush,
    .truncate = cb_truncate,
    .lock = cb_lock,
    .unlock = cb_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

static hid_t driver_id = H5I_INVALID_HID;

static hid_t driver(void)
{
    if (driver_id < 0 || H5Iis_valid(driver_id) <= 0) driver_id = H5FDregister(&wal_class);
    return driver_id;
}

hid_t h5a_wal_fapl(void)
{
    hid_t id = driver();
    if (id < 0) return H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return H5I_INVALID_HID;
    hbool_t clear = 1;
    if (H5Pset_driver(fapl, id, NULL) < 0 || H5Pset(fapl, "clear_status_flags", &clear) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static wal_file *wal_of(hid_t file)
{
    void *h = NULL;
    wal_file *f = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &h) >= 0)
        for (wal_file *o = open_files; o; o = o->next_open)
            if ((void *)o == h && o->magic == FILE_MAGIC) f = o;
    return f;
}

int h5a_wal_get_stats(hid_t file, h5a_wal_stats *out)
{
    memset(out, 0, sizeof *out);
    wal_file *f = wal_of(file);
    if (!f) return H5Eclear2(H5E_DEFAULT), -1;
    out->map_bytes = f->buffered;
    out->index_bytes = f->cap * sizeof(slot) + f->dirty_cap * sizeof(uint64_t);
    out->log_bytes = f->log_end;
    return 0;
}

int h5a_wal_commit(hid_t file, h5a_commit_level level, char *err, size_t errlen)
{
    wal_file *f = wal_of(file);
    if (!f) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(err, errlen, "commit: the file is not open through the h5a_wal driver");
        return -1;
    }
    return commit(f, level == H5A_COMMIT_HARD, false, err, errlen);
}
