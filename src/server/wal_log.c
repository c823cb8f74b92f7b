/* h5a_wal, the log (see wal_int.h and docs/durability.md, "The log"): the
 * header and record format, appending records (commits and spills), and
 * recovery, which replays a left-over log into the data file. Uses the map
 * (wal_map.c) to hold the pages it writes or replays, and wal_io.c. */
#include "server/wal_int.h"

#include <stdlib.h>
#include <string.h>

#define STAGE_BYTES ((size_t)1 << 20) /* records are written in pieces of this size */

#define VERSION 1
#define REC_PAGE 1
#define REC_COMMIT 2
#define FLAG_HARD 1
static const unsigned char LOG_MAGIC[8] = {'H', '5', 'A', 'W', 'A', 'L', '\r', '\n'};

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

/* ---- appending ---- */

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

/* On success the slots point at their records; on failure nothing changes
 * (the next attempt writes at the same place). */
int log_append(wal_file *f, bool commit, bool hard)
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

/* No commit record: a crash before the next commit discards these pages;
 * reads and the checkpoint take them from the log meanwhile. */
int spill(wal_file *f)
{
    if (log_append(f, false, false) < 0) return -1;
    map_drop_buffers(f);
    return 0;
}

/* ---- the header ---- */

/* Magic, version, page size, generation, base_eof (the data file's
 * committed size at the generation's start), start (offset of its first
 * record), durable_seq (commits up to this one are on disk whatever their
 * kind: set by a recovery that replays SOFT commits), boot id of the
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

int log_reset(wal_file *f, uint64_t start, bool durable)
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

int header_decode(const unsigned char *h, size_t n, log_header *out)
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

/* ---- recovery ---- */

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

/* To the log's last commit (process crash: the log was written since this
 * boot) or its last HARD commit (machine crash); the caller then starts a
 * new generation, durably (see the doc for why it must be). */
int recover(wal_file *f, const log_header *lh, h5a_wal_recovery *rep)
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
        if (map_read_logged(f, s, page) < 0 || pwrite_all(f->fd, page, PAGE, s->page * PAGE) < 0)
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
