/* Inside the h5a_wal driver (see wal.h; the design is docs/durability.md,
 * "Crash safety: the write-ahead log"). Not for use outside src/server/wal*.
 *
 * The driver is five layers; each file uses only the ones below it:
 *
 *   wal.c       the HDF5 driver: callbacks, h5a_wal_fapl, h5a_wal_commit,
 *               h5a_wal_get_stats
 *   wal_file.c  a file's life: open (locks, identity, recovery), commit,
 *               checkpoint, close
 *   wal_log.c   the log: header and record format, appending, spilling,
 *               reading back, recovery
 *   wal_map.c   the page map, and what HDF5 reads and writes through it
 *   wal_io.c    system calls (replaceable by tests), whole reads and
 *               writes, little-endian fields, the hash, random numbers
 *
 * Terms: the data file is the HDF5 file; eof is its logical size (what HDF5
 * sees); phys its size on disk, which may be larger (bytes a rollback still
 * needs are kept); `protect` is the largest eof of any state a recovery may
 * roll back to since the last checkpoint. Pages below boundary() are never
 * written in the data file before a checkpoint: they live in the page map
 * (and the log). Pages at or above it are new space, written directly. */
#ifndef H5A_WAL_INT_H
#define H5A_WAL_INT_H

#include "server/wal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define PAGE ((uint64_t)H5A_WAL_PAGE)
#define HDR ((uint64_t)H5A_WAL_HEADER_BYTES)
#define REC_HDR 48 /* every record starts with this much: type, fields, checksum */
#define REC_PAGE_BYTES (REC_HDR + PAGE)
#define NO_PAGE UINT64_MAX
#define SECTOR 512
#define PAGE_SECTORS (H5A_WAL_PAGE / SECTOR)
/* The file id's stamp at the start of the userblock (see wal_log.c). */
#define STAMP_BYTES SECTOR

#define PUSH(min, ...)                                                                   \
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL, min,      \
             __VA_ARGS__)

/* ---- wal_io.c ---- */

extern const h5a_wal_sys *S; /* the system calls in use */

void put32(unsigned char *p, uint32_t v);
void put64(unsigned char *p, uint64_t v);
uint32_t get32(const unsigned char *p);
uint64_t get64(const unsigned char *p);
/* A 64-bit hash in the style of XXH64; detects torn and stale bytes, not
 * attacks. */
uint64_t hash64(const void *data, size_t n, uint64_t seed);
/* A number no earlier log or file can have picked (clock, pid, counter). */
uint64_t random64(void);

/* Whole reads and writes, retried on EINTR and short counts. pread_all
 * stops at the end of the file and says how much it got. */
int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got);
int pwrite_all(int fd, const void *buf, size_t n, uint64_t off);
/* Write the n pieces one after another from off (iov is changed). */
int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off);
int sync_retry(int (*fn)(int), int fd);
/* Who holds the flock on fd's file, for a message: "another process (pid
 * 42, hdf5-async-serv)", "this process (...)", or that the system does not
 * say. */
void lock_holder(int fd, char *out, size_t n);

static inline uint64_t umin(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}
static inline uint64_t umax(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* ---- the state of an open file (used by every layer above wal_io.c) ---- */

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
    h5a_wal_options opt; /* the tunables, 0s replaced by the defaults */
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
    unsigned char *prefetch; /* put_range: the data file under a write (PREFETCH_MAX at most) */
    size_t prefetch_cap;
    char boot[64];
    /* what the log knows the file by (docs/durability.md, "Which log is
     * whose"): the id in its userblock (0: none yet) */
    uint64_t file_id;
    bool stamp_pending; /* give the file an id at the next commit if it has room */
    /* the inodes held, to notice the paths naming others (h5a_wal_commit) */
    dev_t dev, log_dev;
    ino_t ino, log_ino;
    int gone; /* 0, or which path no longer names what is held: 1 file, 2 log */
    /* auxiliary bytes for the next commit record (h5a_wal_add_aux) */
    unsigned char *aux;
    size_t aux_len, aux_cap;
    bool dropping; /* h5a_wal_drop: writes ignored, the close is a crash */
    /* log_direct (wal_log.c), through which put_range hands the log a large
     * write's pages: the map sits below the log and does not call it by
     * name. Set by wal_open; NULL (no direct logging) in other handles. */
    int (*log_pages)(struct wal_file *f, const uint64_t *pages, const unsigned char *const *src,
                     size_t n);
} wal_file;

/* The first page at or above which the data file may be written directly.
 * Page 0 is always below it: the superblock page changes only at
 * checkpoints and recoveries, which is what lets a log check that a data
 * file is the one it belongs to (its first page as the log expects). */
static inline uint64_t boundary(const wal_file *f)
{
    return umax((f->protect + PAGE - 1) / PAGE * PAGE, PAGE);
}

/* ---- wal_map.c ---- */

/* Pages a large write hands to f->log_pages at a time. */
#define DIRECT_BATCH 256

slot *map_find(const wal_file *f, uint64_t page);
/* The slot of page, created empty (no buffer, no log copy) if missing. */
slot *map_get(wal_file *f, uint64_t page);
void map_clear(wal_file *f);
/* Drop every page buffer (the pages' log copies stay). */
void map_drop_buffers(wal_file *f);
/* The page's latest log copy (s->log_off set). */
int map_read_logged(wal_file *f, const slot *s, unsigned char *out);
/* What HDF5 reads at [addr, addr+n): the map over the data file, zeros at
 * and past the logical eof. */
int read_range(wal_file *f, uint64_t addr, size_t n, unsigned char *out);
/* Put bytes at [addr, addr+n): committed pages into the map, new space
 * straight into the data file. Does not move eof (callers do, after). */
int put_range(wal_file *f, uint64_t addr, size_t n, const unsigned char *in);
/* Overwrite with zeros what the data file or the map still holds in
 * [from, to) past eof, before eof grows over it. */
int zero_stale(wal_file *f, uint64_t from, uint64_t to);

/* ---- wal_log.c ---- */

/* What a log header says. */
typedef struct {
    unsigned version; /* 1: written by builds before the file id */
    uint64_t gen, base_eof, start, durable_seq;
    char boot[48];
    uint64_t file_id; /* 2: the data file's id when the generation began, 0: none */
    /* 2: each sector of the data file's first page when the generation
     * began (zeros past its end) */
    uint64_t base_sums[PAGE_SECTORS];
} log_header;

/* Decode the first n bytes of a log: 1 valid, 0 no usable header (torn,
 * cut, flipped bits, not a log), -1 a header of another version or page
 * size. */
int header_decode(const unsigned char *h, size_t n, log_header *out);
/* The id stamp at the start of a file's first page: 1 and *id if there is
 * one. */
int stamp_decode(const unsigned char *page0, uint64_t *id);
void stamp_encode(uint64_t id, unsigned char *out);
/* Start generation gen+1 with records at `start`; durable: fsync the
 * header (see the doc for when that is needed). */
int log_reset(wal_file *f, uint64_t start, bool durable);
/* Append a record of every changed page that has a buffer, then (when
 * commit) the commit record. On failure nothing changes. */
int log_append(wal_file *f, bool commit, bool hard);
/* Log the changed pages without a commit record and drop every buffer. */
int spill(wal_file *f);
/* Log n (at most DIRECT_BATCH) whole pages straight from the caller's bytes
 * (pages[i] from src[i]) without a commit record, as a spill would: for
 * pages that have no buffer (put_range, a large write, through
 * f->log_pages). One pwritev. On success their slots point at the records;
 * on failure the log is as it was (the slots may exist, empty). */
int log_direct(wal_file *f, const uint64_t *pages, const unsigned char *const *src, size_t n);
/* Roll the data file forward to what the log lh heads can replay, then
 * leave the map empty and eof = phys = the recovered size. -2 (pushed)
 * when the data file is not the one the log was written for. */
int recover(wal_file *f, const log_header *lh, h5a_wal_recovery *rep);

/* ---- wal_file.c ---- */

/* Open (and recover) the file; NULL with the reason on HDF5's error stack.
 * opt may be NULL. */
wal_file *wal_open(const char *name, unsigned flags, const h5a_wal_options *opt);
/* A HARD commit and a checkpoint, remove the log, free f. 0 or -1 (pushed). */
int wal_close(wal_file *f);
/* checkpoint: after a HARD commit, checkpoint now rather than once the log
 * has grown past opt.checkpoint_bytes. 0, or -1 with err. */
int wal_commit(wal_file *f, bool hard, bool force_checkpoint, char *err, size_t errlen);
/* 0, or H5A_WAL_E_GONE with err once the file's path or its log's names
 * another file or none (stays so). */
int wal_check_paths(wal_file *f, char *err, size_t errlen);
/* The open file whose HDF5 handle is h, or NULL. */
wal_file *wal_find_open(const void *h);

#endif
