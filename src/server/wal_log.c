/* h5a_wal, the log (see wal_int.h and docs/durability.md, "The log"): the
 * header and record format, appending records (commits and spills), and
 * recovery, which replays a left-over log into the data file. Uses the map
 * (wal_map.c) to hold the pages it writes or replays, and wal_io.c. */
#include "server/wal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define STAGE_BYTES ((size_t)1 << 20) /* records are written in pieces of this size */

/* 2 adds the file's id and first page to the header; 1 is still read */
#define VERSION 2
#define REC_PAGE 1
#define REC_COMMIT 2
#define REC_AUX 3 /* the commit's auxiliary bytes (h5a_wal_add_aux): type, length | bytes */
#define AUX_MAX ((uint64_t)1 << 30)
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

/* Fill a record's header r (REC_HDR bytes) for a record at log offset off
 * with this payload; its checksum. */
static uint64_t record_header(const wal_file *f, uint64_t off, unsigned char *r, uint32_t type,
                              uint32_t flags, uint64_t a, uint64_t b, uint64_t c, uint64_t d,
                              const void *payload, size_t plen)
{
    put32(r, type);
    put32(r + 4, flags);
    put64(r + 8, a);
    put64(r + 16, b);
    put64(r + 24, c);
    put64(r + 32, d);
    uint64_t sum = record_sum(f->gen, off, r, payload, plen);
    put64(r + 40, sum);
    return sum;
}

static int stage_record(wal_file *f, stage *st, uint32_t type, uint32_t flags, uint64_t a,
                        uint64_t b, uint64_t c, uint64_t d, const unsigned char *payload,
                        size_t plen)
{
    if (st->len + REC_HDR + plen > STAGE_BYTES && stage_flush(f, st) < 0) return -1;
    unsigned char *r = st->buf + st->len;
    uint64_t sum = record_header(f, st->off + st->len, r, type, flags, a, b, c, d, payload, plen);
    if (plen) memcpy(r + REC_HDR, payload, plen);
    st->len += REC_HDR + plen;
    if (type == REC_PAGE || type == REC_AUX) {
        st->chain = chain_next(st->chain, sum);
        st->nrec++;
    }
    return 0;
}

/* The auxiliary record: through the stage when it fits, else on its own. */
static int stage_aux(wal_file *f, stage *st)
{
    if (REC_HDR + f->aux_len <= STAGE_BYTES)
        return stage_record(f, st, REC_AUX, 0, f->aux_len, 0, 0, 0, f->aux, f->aux_len);
    if (stage_flush(f, st) < 0) return -1;
    unsigned char r[REC_HDR];
    uint64_t sum =
        record_header(f, st->off, r, REC_AUX, 0, f->aux_len, 0, 0, 0, f->aux, f->aux_len);
    if (pwrite_all(f->log_fd, r, REC_HDR, st->off) < 0 ||
        pwrite_all(f->log_fd, f->aux, f->aux_len, st->off + REC_HDR) < 0)
        return -1;
    st->off += REC_HDR + f->aux_len;
    st->chain = chain_next(st->chain, sum);
    st->nrec++;
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
    if (commit && f->aux_len && stage_aux(f, &st) < 0) return -1;
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
        f->aux_len = 0;
        f->seq++;
        f->chain = 0;
        f->nrec = 0;
    } else {
        f->chain = st.chain;
        f->nrec = st.nrec;
    }
    return 0;
}

int log_direct(wal_file *f, const uint64_t *pages, const unsigned char *const *src, size_t n)
{
    unsigned char hdr[DIRECT_BATCH][REC_HDR];
    struct iovec iov[2 * DIRECT_BATCH];
    if (n > DIRECT_BATCH) return errno = EINVAL, -1;
    /* every slot first: once the records are written, nothing may fail
     * before the map points at them */
    for (size_t i = 0; i < n; i++)
        if (!map_get(f, pages[i])) return errno = ENOMEM, -1;
    uint64_t chain = f->chain, off = f->log_end;
    for (size_t i = 0; i < n; i++) {
        uint64_t sum = record_header(f, off + i * REC_PAGE_BYTES, hdr[i], REC_PAGE, 0, pages[i],
                                     0, 0, 0, src[i], PAGE);
        chain = chain_next(chain, sum);
        iov[2 * i] = (struct iovec){hdr[i], REC_HDR};
        iov[2 * i + 1] = (struct iovec){(void *)src[i], PAGE};
    }
    if (pwritev_all(f->log_fd, iov, (int)(2 * n), off) < 0) return -1;
    for (size_t i = 0; i < n; i++) map_find(f, pages[i])->log_off = off + i * REC_PAGE_BYTES;
    f->log_end = off + n * REC_PAGE_BYTES;
    f->chain = chain;
    f->nrec += n;
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
 * writer; from version 2 the data file's id and a checksum of each sector
 * of its first page at the generation's start (what the log assumes the
 * file to be); then the header's checksum. All in the first 176 bytes of
 * the sector (version 1: 104). */
#define SUM_AT_V1 96
#define SUM_AT_V2 168
static void header_encode(const log_header *lh, unsigned char *h)
{
    memset(h, 0, HDR);
    memcpy(h, LOG_MAGIC, 8);
    put32(h + 8, lh->version);
    put32(h + 12, (uint32_t)PAGE);
    put64(h + 16, lh->gen);
    put64(h + 24, lh->base_eof);
    put64(h + 32, lh->start);
    put64(h + 40, lh->durable_seq);
    memcpy(h + 48, lh->boot, 47); /* boot ids are 36 characters */
    if (lh->version == 1) {
        put64(h + SUM_AT_V1, hash64(h, SUM_AT_V1, 0));
        return;
    }
    put64(h + 96, lh->file_id);
    for (int i = 0; i < PAGE_SECTORS; i++) put64(h + 104 + 8 * i, lh->base_sums[i]);
    put64(h + SUM_AT_V2, hash64(h, SUM_AT_V2, 0));
}

int header_decode(const unsigned char *h, size_t n, log_header *out)
{
    if (n < HDR || memcmp(h, LOG_MAGIC, 8) != 0) return 0;
    unsigned version = get32(h + 8);
    size_t at = version == 1 ? SUM_AT_V1 : version == VERSION ? SUM_AT_V2 : 0;
    if (!at) return -1; /* a later version: its checksum is elsewhere */
    if (get64(h + at) != hash64(h, at, 0)) return 0;
    if (get32(h + 12) != PAGE) return -1;
    memset(out, 0, sizeof *out);
    out->version = version;
    out->gen = get64(h + 16);
    out->base_eof = get64(h + 24);
    out->start = get64(h + 32);
    out->durable_seq = get64(h + 40);
    memcpy(out->boot, h + 48, 47);
    if (version >= 2) {
        out->file_id = get64(h + 96);
        for (int i = 0; i < PAGE_SECTORS; i++) out->base_sums[i] = get64(h + 104 + 8 * i);
    }
    return out->start >= HDR ? 1 : 0;
}

/* The data file's first page as it is on disk, zeros past its end. */
static int first_page(wal_file *f, unsigned char *out)
{
    size_t got = 0;
    if (f->phys && pread_all(f->fd, out, (size_t)umin(PAGE, f->phys), 0, &got) < 0) return -1;
    memset(out + got, 0, PAGE - got);
    return 0;
}

static void sector_sums(const unsigned char *page, uint64_t *sums)
{
    for (int i = 0; i < PAGE_SECTORS; i++) sums[i] = hash64(page + SECTOR * i, SECTOR, 0);
}

int log_reset(wal_file *f, uint64_t start, bool durable)
{
    unsigned char h[H5A_WAL_HEADER_BYTES];
    unsigned char page[H5A_WAL_PAGE];
    /* the data file holds the new generation's base state now (a
     * checkpoint or a recovery has just synced it, or nothing changed it
     * since the open) */
    if (first_page(f, page) < 0) return -1;
    log_header lh = {.version = VERSION,
                     .gen = ++f->gen,
                     .base_eof = f->base_eof,
                     .start = start,
                     .file_id = f->file_id};
    memcpy(lh.boot, f->boot, sizeof lh.boot - 1);
    sector_sums(page, lh.base_sums);
    header_encode(&lh, h);
    if (pwrite_all(f->log_fd, h, HDR, 0) < 0) return -1;
    if (durable && sync_retry(S->fdatasync, f->log_fd) < 0) return -1;
    f->log_start = f->log_end = start;
    f->seq = 0;
    f->chain = 0;
    f->nrec = 0;
    return 0;
}

/* ---- the file's id ---- */

/* At the start of the userblock, which HDF5 neither reads nor writes:
 * magic, version, id, checksum, and a line for whoever looks. */
static const unsigned char STAMP_MAGIC[8] = {'H', '5', 'A', 'F', 'I', 'L', 'E', '\n'};
static const char STAMP_TEXT[] = "hdf5-async file id: its log FILE.wal names it "
                                 "(docs/durability.md)\n";

void stamp_encode(uint64_t id, unsigned char *out)
{
    memset(out, 0, STAMP_BYTES);
    memcpy(out, STAMP_MAGIC, 8);
    put32(out + 8, 1);
    put64(out + 16, id);
    put64(out + 24, hash64(out, 24, 0));
    memcpy(out + 32, STAMP_TEXT, sizeof STAMP_TEXT - 1);
}

int stamp_decode(const unsigned char *page0, uint64_t *id)
{
    if (memcmp(page0, STAMP_MAGIC, 8) != 0 || get32(page0 + 8) != 1 ||
        get64(page0 + 24) != hash64(page0, 24, 0))
        return 0;
    *id = get64(page0 + 16);
    return *id != 0;
}

/* ---- recovery ---- */

typedef struct {
    uint32_t type, flags;
    uint64_t a, b, c, d, sum;
} record;

/* Read and check the record at off; payload (PAGE bytes) read into page
 * when it is a page record, an auxiliary record's into *aux (malloc'd, the
 * caller frees) when aux is not NULL. 1: valid; 0: end of the valid log. */
static int record_read(wal_file *f, uint64_t gen, uint64_t off, record *r, unsigned char *page,
                       unsigned char **aux)
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
    } else if (r->type == REC_AUX) {
        if (r->a > AUX_MAX) return 0;
        unsigned char *b = malloc(r->a ? r->a : 1);
        if (!b) return errno = ENOMEM, -1;
        if (pread_all(f->log_fd, b, r->a, off + REC_HDR, &got) < 0) return free(b), -1;
        int ok = got == r->a && record_sum(gen, off, h, b, r->a) == r->sum;
        if (ok && aux) *aux = b;
        else free(b);
        return ok;
    } else if (r->type != REC_COMMIT) {
        return 0;
    }
    return record_sum(gen, off, h, page, plen) == r->sum;
}

/* To the log's last commit (process crash: the log was written since this
 * boot) or its last HARD commit (machine crash); the caller then starts a
 * new generation, durably (see the doc for why it must be). */
/* Is the data file the one the log was written for? Its id, when both
 * have one, must be the log's; each sector of its first page must be as
 * the generation began, or as a record of the log has it (a checkpoint or
 * an earlier recovery may have written it, whole or torn at a sector); its
 * size at least the generation's base, or at least some commit's end of
 * file (a checkpoint or a recovery truncates to one, and the next
 * generation, whose header a machine crash may have lost, writes new space
 * past it). */
typedef struct {
    uint64_t sums[PAGE_SECTORS];
    unsigned unmatched; /* sectors not yet found as the log expects them */
    bool stamped, size_ok;
    uint64_t id;
} identity;

static int identity_start(wal_file *f, const log_header *lh, identity *id)
{
    unsigned char page[H5A_WAL_PAGE];
    if (first_page(f, page) < 0) return -1;
    memset(id, 0, sizeof *id);
    sector_sums(page, id->sums);
    id->stamped = stamp_decode(page, &id->id);
    for (int i = 0; i < PAGE_SECTORS && lh->version >= 2; i++)
        if (id->sums[i] != lh->base_sums[i]) id->unmatched |= 1u << i;
    id->size_ok = f->phys >= lh->base_eof;
    return 0;
}

static void identity_see_page0(identity *id, const unsigned char *page)
{
    for (int i = 0; i < PAGE_SECTORS && id->unmatched; i++)
        if ((id->unmatched & (1u << i)) && hash64(page + SECTOR * i, SECTOR, 0) == id->sums[i])
            id->unmatched &= ~(1u << i);
}

static int identity_check(wal_file *f, const log_header *lh, const identity *id)
{
    char why[160];
    if (lh->file_id && id->stamped && id->id != lh->file_id)
        snprintf(why, sizeof why,
                 "it was written for the file with id %016llx, this one has id %016llx",
                 (unsigned long long)lh->file_id, (unsigned long long)id->id);
    else if (id->unmatched)
        snprintf(why, sizeof why, "the file's first page is not what the log expects");
    else if (!id->size_ok)
        snprintf(why, sizeof why, "the file is %llu bytes, shorter than the log expects",
                 (unsigned long long)f->phys);
    else
        return 0;
    errno = EPROTO;
    PUSH(H5E_CANTOPENFILE,
         "'%s' is not the log of '%s' (%s): refusing to replay it into this file. If '%s' is the "
         "file to serve, move the log away (it may hold another file's commits) and start "
         "again; if the log is this file's, restore the file it was written for",
         f->log_path, f->path, why, f->path);
    return -2;
}

int recover(wal_file *f, const log_header *lh, h5a_wal_recovery *rep)
{
    identity id;
    if (identity_start(f, lh, &id) < 0) return -1;
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
    while ((rc = record_read(f, lh->gen, off, &r, page, NULL)) == 1) {
        if (r.type == REC_AUX) {
            nrec++;
            chain = chain_next(chain, r.sum);
            off += REC_HDR + r.a;
            continue;
        }
        if (r.type == REC_PAGE) {
            if (r.a > (uint64_t)INT64_MAX / PAGE) break;
            if (r.a == 0) identity_see_page0(&id, page);
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
        if (r.b <= f->phys) id.size_ok = true;
        eof_all = r.b;
        n_all++;
        if ((r.flags & FLAG_HARD) || seq <= lh->durable_seq) {
            end_hard = off;
            eof_hard = r.b;
            n_hard = n_all;
        }
    }
    if (rc < 0) goto fail;
    if ((rc = identity_check(f, lh, &id)) < 0) {
        free(page);
        return rc;
    }
    struct stat lst;
    if (S->fstat(f->log_fd, &lst) == 0 && (uint64_t)lst.st_size > end_all)
        rep->ignored = (uint64_t)lst.st_size - end_all;
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
        log_header durable = *lh;
        durable.durable_seq = seq;
        header_encode(&durable, h);
        if (sync_retry(S->fdatasync, f->log_fd) < 0 || pwrite_all(f->log_fd, h, HDR, 0) < 0 ||
            sync_retry(S->fdatasync, f->log_fd) < 0)
            goto fail;
    }
    /* pass 2: the latest record of each page among the applied commits */
    for (off = lh->start; off < end;) {
        unsigned char *aux = NULL;
        if (record_read(f, lh->gen, off, &r, page, &aux) != 1) {
            errno = EIO; /* it was valid a moment ago */
            goto fail;
        }
        if (r.type == REC_AUX) {
            int arc = f->opt.aux_replay ? f->opt.aux_replay(f->opt.aux_ctx, aux, r.a) : 0;
            free(aux);
            if (arc < 0) {
                errno = EPROTO;
                goto fail;
            }
            off += REC_HDR + r.a;
        } else if (r.type == REC_PAGE) {
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
