/* h5a_wal, a file's life (see wal_int.h): opening it (the lock, then the
 * log: replayed if one was left over, else created), commits and
 * checkpoints, and the clean close that leaves a plain HDF5 file and no log.
 * Uses the log (wal_log.c), the map and wal_io.c. */
#include "server/wal_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define FILE_MAGIC 0x6835615f77616c31ull /* marks a live wal_file */

/* Defaults of h5a_wal_options (wal.h says what each one bounds). */
#define MAP_BYTES ((size_t)64 << 20)
#define DIRECT_BYTES ((size_t)1 << 20)
#define LOG_RESTART_BYTES ((uint64_t)64 << 20)
#define CHECKPOINT_BYTES ((uint64_t)8 << 20)

/* Open files, so that h5a_wal_commit can tell a handle of this driver from
 * another driver's. */
static wal_file *open_files;

wal_file *wal_find_open(const void *h)
{
    for (wal_file *o = open_files; o; o = o->next_open)
        if ((const void *)o == h && o->magic == FILE_MAGIC) return o;
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

/* ---- the file's id ---- */

/* An HDF5 signature where a blank userblock of 512, 1024 or 2048 bytes
 * would end, nothing before it: 1, the file has room for an id; 0, it has
 * not; -1, HDF5 has not written that far yet. */
static int userblock_room(const unsigned char *page0, uint64_t eof)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t i = 0; i < STAMP_BYTES; i++)
        if (page0[i]) return 0;
    for (size_t at = 512; at <= 2048; at *= 2) {
        if (at + 8 > eof) return -1;
        if (memcmp(page0 + at, sig, 8) == 0) return 1;
        for (size_t i = at; i < 2 * at && i < PAGE; i++)
            if (page0[i]) return 0;
    }
    return 0;
}

/* Called by a commit while the file has no id: once HDF5 has written its
 * superblock, give the file one if it has a blank userblock, through the
 * map like any change (the next checkpoint's header then names it). */
static int stamp_if_room(wal_file *f)
{
    unsigned char page0[H5A_WAL_PAGE];
    if (read_range(f, 0, PAGE, page0) < 0) return -1;
    int room = userblock_room(page0, f->eof);
    if (room < 0) return 0; /* try again at the next commit */
    f->stamp_pending = false;
    if (!room) return 0;
    unsigned char stamp[STAMP_BYTES];
    uint64_t id = random64() | 1;
    stamp_encode(id, stamp);
    if (put_range(f, 0, STAMP_BYTES, stamp) < 0) return -1;
    f->file_id = id;
    f->changed = true;
    return 0;
}

/* ---- commit and checkpoint ---- */

static int fail_msg(char *err, size_t errlen, const wal_file *f, const char *what)
{
    if (err && errlen) snprintf(err, errlen, "%s '%s': %s", what, f->path, strerror(errno));
    return -1;
}

static int by_page(const void *a, const void *b)
{
    uint64_t x = (*(slot *const *)a)->page, y = (*(slot *const *)b)->page;
    return x < y ? -1 : x > y;
}

/* Pages list[0..n) (consecutive page numbers) into the data file with one
 * pwrite; those only in the log read back with one pread of the records'
 * span when it is small enough (records of a run are usually adjacent),
 * else one by one. A large rewrite is then a few dozen system calls per
 * 64 MiB, not two per 4 KiB page. *span is the buffer for that pread,
 * malloc'd here on first need (NULL before) and kept for the next runs: a
 * checkpoint whose pages are all still in memory never pays for 4 MiB. */
#define CKPT_RUN_PAGES 256
#define CKPT_SPAN_MAX ((uint64_t)4 << 20)
static int checkpoint_run(wal_file *f, slot **list, size_t n, unsigned char *run,
                          unsigned char **span)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i]->buf) continue;
        lo = umin(lo, list[i]->log_off);
        hi = umax(hi, list[i]->log_off + REC_PAGE_BYTES);
    }
    bool spanned = hi > lo && hi - lo <= CKPT_SPAN_MAX;
    if (spanned) {
        if (!*span && !(*span = malloc(CKPT_SPAN_MAX))) return errno = ENOMEM, -1;
        size_t got = 0;
        if (pread_all(f->log_fd, *span, (size_t)(hi - lo), lo, &got) < 0) return -1;
        if (got != hi - lo) return errno = EIO, -1;
    }
    for (size_t i = 0; i < n; i++) {
        slot *s = list[i];
        unsigned char *dst = run + i * PAGE;
        if (s->buf) memcpy(dst, s->buf, PAGE);
        else if (spanned) memcpy(dst, *span + (s->log_off - lo) + REC_HDR, PAGE);
        else if (map_read_logged(f, s, dst) < 0) return -1;
    }
    uint64_t at = list[0]->page * PAGE;
    if (pwrite_all(f->fd, run, n * PAGE, at) < 0) return -1;
    f->phys = umax(f->phys, at + n * PAGE);
    return 0;
}

/* Copy every page of the map into the data file, cut it to eof, fsync it,
 * and start the next generation of the log. */
static int checkpoint(wal_file *f, char *err, size_t errlen)
{
    /* a page never logged is the data file's own (below eof) */
    size_t n = 0;
    slot **list = f->count ? malloc(f->count * sizeof *list) : NULL;
    unsigned char *run = f->count ? malloc(CKPT_RUN_PAGES * PAGE) : NULL;
    unsigned char *span = NULL; /* checkpoint_run's, on first need */
    if (f->count && (!list || !run)) {
        free(list), free(run);
        errno = ENOMEM;
        return fail_msg(err, errlen, f, "checkpoint: out of memory for");
    }
    for (size_t i = 0; i < f->cap; i++) {
        slot *s = &f->slots[i];
        if (s->page == NO_PAGE || !s->log_off || s->page * PAGE >= f->eof) continue;
        list[n++] = s;
    }
    if (n) qsort(list, n, sizeof *list, by_page);
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (i + k < n && k < CKPT_RUN_PAGES && list[i + k]->page == list[i]->page + k) k++;
        if (checkpoint_run(f, list + i, k, run, &span) < 0) {
            free(list), free(run), free(span);
            return fail_msg(err, errlen, f, "checkpoint: cannot copy the logged pages into");
        }
        i += k;
    }
    free(list), free(run), free(span);
    if (f->phys != f->eof) {
        if (S->ftruncate(f->fd, (off_t)f->eof) < 0)
            return fail_msg(err, errlen, f, "checkpoint: cannot truncate");
        f->phys = f->eof;
    }
    if (sync_retry(S->fdatasync, f->fd) < 0)
        return fail_msg(err, errlen, f, "checkpoint: fdatasync failed on");
    f->data_unsynced = false;
    /* the log's records are about to go: what they carried besides pages
     * must be durable elsewhere first */
    if (f->opt.aux_checkpoint && f->opt.aux_checkpoint(f->opt.aux_ctx) < 0)
        return fail_msg(err, errlen, f, "checkpoint: cannot save the auxiliary table of");
    map_clear(f);
    f->base_eof = f->protect = f->commit_eof = f->eof;
    /* A new generation's records normally start where the last ones ended
     * (no fsync needed, see the doc); past log_restart_bytes the log
     * restarts at its top instead, which costs one fsync. */
    bool restart = f->log_end > f->opt.log_restart_bytes;
    if (log_reset(f, restart ? HDR : f->log_end, restart) < 0)
        return fail_msg(err, errlen, f, "checkpoint: cannot reset the log of");
    if (restart && S->ftruncate(f->log_fd, (off_t)HDR) < 0)
        return fail_msg(err, errlen, f, "checkpoint: cannot truncate the log of");
    return 0;
}

int wal_commit(wal_file *f, bool hard, bool force_checkpoint, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!f->rw) return snprintf(err, errlen, "'%s' is open read-only", f->path), -1;
    if (f->broken) {
        errno = f->broken;
        return fail_msg(err, errlen, f, "an earlier I/O error left unknown state in");
    }
    if (f->stamp_pending && stamp_if_room(f) < 0)
        return fail_msg(err, errlen, f, "cannot give an id to");
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
    /* Checkpoints (one more fdatasync) only once the log has grown past
     * checkpoint_bytes: that bounds the replay time and the log's size,
     * and the HARD commits in between cost one or two fdatasyncs, not
     * three. Except from an empty base: page 0 reaches the data file only
     * at a checkpoint, and until one the file on disk is no HDF5 file. */
    if (!hard || f->seq == 0 ||
        (!force_checkpoint && f->base_eof > 0 &&
         f->log_end - f->log_start <= f->opt.checkpoint_bytes))
        return 0;
    if (checkpoint(f, err, errlen) < 0) {
        f->broken = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* ---- open and close ---- */

static void free_file(wal_file *f)
{
    if (!f) return;
    map_clear(f);
    free(f->aux);
    free(f->dirty_pages);
    free(f->stage);
    free(f->prefetch);
    free(f->path);
    free(f->log_path);
    free(f);
}

/* A generation number for a log started from nothing: picked anew, so no
 * leftover of an older log can pass for current. */
static uint64_t new_generation(void)
{
    return random64() >> 1;
}

static void push_locked(const char *path, const char *log_path, int fd)
{
    char who[160];
    lock_holder(fd, who, sizeof who);
    if (log_path)
        PUSH(H5E_CANTLOCKFILE,
             "'%s' is in use: its log '%s' is locked by %s, so a server still holds this path "
             "(the file may have been replaced while it runs); stop that one first",
             path, log_path, who);
    else
        PUSH(H5E_CANTLOCKFILE, "'%s' is in use: locked by %s; stop that one first", path, who);
}

/* Open the log for writing and lock it, before anything is changed: the
 * lock on the data file covers one inode, the log's covers the path, so a
 * second opener is refused even after the file was replaced by a rename.
 * Never through a symbolic link, nor into a file with other names: writing
 * would change a file that is not this log. -2: refused (pushed). */
static int log_lock_open(wal_file *f, bool *created)
{
    *created = false;
    int fd = S->open(f->log_path, O_RDWR | O_NOFOLLOW, 0);
    if (fd < 0 && errno == ENOENT) {
        fd = S->open(f->log_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
        *created = fd >= 0;
    }
    if (fd < 0) {
        if (errno == ELOOP)
            PUSH(H5E_CANTOPENFILE,
                 "'%s' is a symbolic link: the log of '%s' must be a regular file next to it and "
                 "is never followed; remove the link (and look at what it points to)",
                 f->log_path, f->path);
        else
            PUSH(H5E_CANTOPENFILE, "cannot open the write-ahead log '%s': %s", f->log_path,
                 strerror(errno));
        return -2;
    }
    f->log_fd = fd;
    struct stat st;
    if (S->fstat(fd, &st) < 0) return -1;
    if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
        PUSH(H5E_CANTOPENFILE,
             "'%s' is %s: writing it as the log of '%s' would change another file; move it away",
             f->log_path,
             S_ISREG(st.st_mode) ? "a file with other hard links" : "not a regular file", f->path);
        return -2;
    }
    if (S->flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) push_locked(f->path, f->log_path, fd);
        else PUSH(H5E_CANTLOCKFILE, "cannot lock '%s': %s", f->log_path, strerror(errno));
        return -2;
    }
    f->log_dev = st.st_dev;
    f->log_ino = st.st_ino;
    return 0;
}

static bool all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

/* A left-over log whose header is damaged, or that ends before the records
 * its header points to, may have held commits nobody can replay: refuse,
 * unless told to discard it (then it is kept aside). start: the header's,
 * when it is sound. */
static int discard_damaged(wal_file *f, uint64_t size, uint64_t start, h5a_wal_recovery *rep,
                           bool *created)
{
    const char *how = start        ? "cut before the records its header points to"
                      : size < HDR ? "cut inside its header"
                                   : "its header does not check out";
    size_t n = strlen(f->log_path) + 9;
    char *aside = malloc(n);
    if (!aside) return errno = ENOMEM, -1;
    snprintf(aside, n, "%s.damaged", f->log_path);
    int rc = -2;
    if (!f->opt.discard_damaged) {
        PUSH(H5E_CANTOPENFILE,
             "'%s' has a damaged header (%s; %llu bytes): the commits it may hold since the last "
             "checkpoint cannot be replayed. To start with '%s' as of its last checkpoint, losing "
             "them, set wal_discard_damaged = yes (or pass --wal-discard-damaged) once; the log "
             "is then kept as '%s'",
             f->log_path, how, (unsigned long long)size, f->path, aside);
        goto out;
    }
    rc = -1;
    if (S->rename(f->log_path, aside) < 0) goto out;
    S->close(f->log_fd);
    f->log_fd = -1;
    if ((rc = log_lock_open(f, created)) < 0) goto out;
    snprintf(rep->message, sizeof rep->message,
             "%s: discarded a log with a damaged header (%s), kept as '%s'; the file is as of "
             "its last checkpoint",
             f->log_path, how, aside);
out:
    free(aside);
    return rc;
}

/* The log of a file opened for writing, locked (log_lock_open): replay it
 * if it holds anything, then start its next generation. fresh: the data
 * file is new or truncated, and whatever the log holds is an earlier
 * file's. */
static int log_start(wal_file *f, bool fresh, bool *created, h5a_wal_recovery *rep)
{
    log_header lh;
    bool replay = false;
    if (!fresh) {
        struct stat st;
        unsigned char h[H5A_WAL_HEADER_BYTES];
        size_t got = 0;
        if (S->fstat(f->log_fd, &st) < 0 || pread_all(f->log_fd, h, HDR, 0, &got) < 0)
            return -1;
        rep->found_log = true;
        int ok = header_decode(h, got, &lh);
        if (ok < 0) {
            errno = EPROTO;
            PUSH(H5E_CANTOPENFILE,
                 "'%s' has a log of another version or page size; refusing to touch it",
                 f->log_path);
            return -2;
        }
        if (ok == 0 && all_zero(h, got) && (uint64_t)st.st_size <= HDR) {
            /* the header is fsynced before the data file is first changed:
             * a log that never got one never held anything */
            snprintf(rep->message, sizeof rep->message,
                     "%s: left-over log is empty; nothing to replay", f->log_path);
        } else if (ok == 0 || (uint64_t)st.st_size < lh.start) {
            /* (the records before `start` are synced before a header
             * naming it is written: a log that ends before it was cut) */
            int rc = discard_damaged(f, (uint64_t)st.st_size, ok ? lh.start : 0, rep, created);
            if (rc < 0) return rc;
        } else {
            replay = true;
        }
    }
    if (replay) {
        int rc = recover(f, &lh, rep);
        if (rc < 0) return rc;
        if (f->opt.aux_checkpoint && f->opt.aux_checkpoint(f->opt.aux_ctx) < 0) return -1;
        f->gen = lh.gen;
        char tail[160] = "";
        if (rep->ignored)
            snprintf(tail, sizeof tail,
                     "; ignored %llu byte(s) after the last complete commit (one not finished, "
                     "or a damaged log)",
                     (unsigned long long)rep->ignored);
        snprintf(rep->message, sizeof rep->message,
                 "%s: recovered after a %s: replayed %u commit(s), %llu page(s), dropped %u "
                 "soft commit(s); size %llu bytes%s%s",
                 f->path,
                 rep->same_boot ? "process crash" : "machine crash (log from an earlier boot)",
                 rep->commits, (unsigned long long)rep->pages, rep->dropped,
                 (unsigned long long)rep->eof, tail,
                 lh.version < 2 ? " (a log of an earlier version: not checked against the file)"
                                : "");
    } else {
        f->gen = new_generation();
    }
    /* the file's id as the data file has it now; a file without one gets
     * one at a commit, when it has room */
    unsigned char page0[H5A_WAL_PAGE];
    size_t got = 0;
    if (f->phys && pread_all(f->fd, page0, (size_t)umin(PAGE, f->phys), 0, &got) < 0) return -1;
    memset(page0 + got, 0, PAGE - got);
    if (!stamp_decode(page0, &f->file_id)) {
        f->file_id = 0;
        f->stamp_pending = f->opt.file_id;
    }
    /* the next generation: a new header (synced), then the old records cut
     * off; should the cut be lost, they are of another generation */
    f->base_eof = f->eof;
    if (log_reset(f, HDR, true) < 0) return -1;
    if (S->ftruncate(f->log_fd, (off_t)HDR) < 0) return -1;
    if (*created && h5a_wal_fsync_dir(f->log_path) < 0) return -1;
    return 0;
}

/* Unlink the log at close, if its path still names it. */
static int log_remove(wal_file *f)
{
    struct stat st;
    if (S->stat(f->log_path, &st) < 0) return errno == ENOENT ? 0 : -1;
    if (st.st_dev != f->log_dev || st.st_ino != f->log_ino) return 0; /* someone else's now */
    if (S->unlink(f->log_path) < 0) return errno == ENOENT ? 0 : -1;
    return h5a_wal_fsync_dir(f->log_path);
}

/* A read-only open of a file with a leftover log: replay it (needs write
 * access once), then remove the log, as a clean close would. */
static int recover_for_reader(const wal_file *rf, h5a_wal_recovery *rep)
{
    int probe = S->open(rf->log_path, O_RDONLY | O_NOFOLLOW, 0);
    if (probe < 0 && errno == ELOOP) {
        PUSH(H5E_CANTOPENFILE,
             "'%s' is a symbolic link: the log of '%s' must be a regular file next to it and is "
             "never followed; remove the link (and look at what it points to)",
             rf->log_path, rf->path);
        return -2;
    }
    if (probe < 0) return errno == ENOENT ? 0 : -1;
    S->close(probe);
    wal_file *f = calloc(1, sizeof *f);
    if (!f) return errno = ENOMEM, -1;
    f->log_fd = -1;
    f->path = strdup(rf->path);
    f->log_path = strdup(rf->log_path);
    f->opt = rf->opt;
    f->fd = -1;
    int rc = -1;
    if (!f->path || !f->log_path) {
        errno = ENOMEM;
        goto out;
    }
    S->boot_id(f->boot);
    f->fd = S->open(f->path, O_RDWR, 0);
    if (f->fd < 0) {
        PUSH(H5E_CANTOPENFILE,
             "'%s' was not closed cleanly and must be recovered, which needs write access: %s",
             f->path, strerror(errno));
        rc = -2;
        goto out;
    }
    if (S->flock(f->fd, LOCK_EX | LOCK_NB) < 0) {
        push_locked(f->path, NULL, f->fd);
        rc = -2;
        goto out;
    }
    bool created;
    if ((rc = log_lock_open(f, &created)) < 0) goto out;
    rc = -1;
    struct stat st;
    if (S->fstat(f->fd, &st) < 0) goto out;
    f->phys = f->eof = (uint64_t)st.st_size;
    f->rw = true;
    if (!created && (rc = log_start(f, false, &created, rep)) < 0) goto out;
    rc = log_remove(f) < 0 ? -1 : 0;
out:
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    free_file(f);
    return rc;
}

static void set_options(wal_file *f, const h5a_wal_options *opt)
{
    if (opt) f->opt = *opt;
    f->opt.report = NULL; /* filled in by wal_open only */
    if (!f->opt.map_bytes) f->opt.map_bytes = MAP_BYTES;
    if (!f->opt.log_restart_bytes) f->opt.log_restart_bytes = LOG_RESTART_BYTES;
    if (!f->opt.checkpoint_bytes) f->opt.checkpoint_bytes = CHECKPOINT_BYTES;
    if (!f->opt.direct_bytes) f->opt.direct_bytes = DIRECT_BYTES;
    f->log_pages = log_direct;
}

/* Open the data file; *created when this call made it (so that a failed
 * open can take it back). */
static int data_open(const char *name, int oflags, bool *created)
{
    *created = false;
    if ((oflags & O_CREAT) && !(oflags & O_EXCL)) {
        int fd = S->open(name, oflags | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST) {
            *created = fd >= 0;
            return fd;
        }
    }
    int fd = S->open(name, oflags, 0666);
    *created = fd >= 0 && (oflags & O_EXCL);
    return fd;
}

wal_file *wal_open(const char *name, unsigned flags, const h5a_wal_options *opt)
{
    h5a_wal_recovery rep;
    memset(&rep, 0, sizeof rep);
    if (opt && opt->report) *opt->report = rep;
    wal_file *f = calloc(1, sizeof *f);
    char *log_path = malloc(strlen(name) + 5);
    if (!f || !log_path) {
        free(f);
        free(log_path);
        PUSH(H5E_CANTALLOC, "out of memory");
        return NULL;
    }
    sprintf(log_path, "%s.wal", name);
    set_options(f, opt);
    f->fd = f->log_fd = -1;
    f->path = strdup(name);
    f->log_path = log_path;
    f->rw = (flags & H5F_ACC_RDWR) != 0;
    f->magic = FILE_MAGIC;
    bool created = false, log_created = false;
    if (!f->path) goto nomem;
    S->boot_id(f->boot);
    bool fresh = f->rw && (flags & (H5F_ACC_TRUNC | H5F_ACC_EXCL));
    int rc;
    if (!f->rw && (rc = recover_for_reader(f, &rep)) != 0) {
        if (rc == -1) PUSH(H5E_CANTOPENFILE, "cannot recover '%s': %s", name, strerror(errno));
        goto fail;
    }
    int oflags = f->rw ? O_RDWR : O_RDONLY;
    if (f->rw && (flags & H5F_ACC_CREAT)) oflags |= O_CREAT;
    if (f->rw && (flags & H5F_ACC_EXCL)) oflags |= O_EXCL;
    /* no O_TRUNC: truncate only once the locks are ours */
    f->fd = data_open(name, oflags, &created);
    if (f->fd < 0) {
        PUSH(H5E_CANTOPENFILE, "unable to open file '%s': %s", name, strerror(errno));
        goto fail;
    }
    if (S->flock(f->fd, (f->rw ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) push_locked(name, NULL, f->fd);
        else PUSH(H5E_CANTLOCKFILE, "cannot lock '%s': %s", name, strerror(errno));
        goto fail;
    }
    if (f->rw && (rc = log_lock_open(f, &log_created)) < 0) {
        if (rc == -1) PUSH(H5E_CANTOPENFILE, "cannot open '%s': %s", log_path, strerror(errno));
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
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->phys = f->eof = (uint64_t)st.st_size;
    if (f->rw && (flags & H5F_ACC_CREAT) && st.st_size == 0) fresh = true;
    if (f->rw) {
        rc = log_start(f, fresh || log_created, &log_created, &rep);
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
    if (opt && opt->report) *opt->report = rep;
    return f;
nomem:
    PUSH(H5E_CANTALLOC, "out of memory");
fail:
    /* what this open created held nothing yet: take it back */
    if (log_created) S->unlink(log_path);
    if (created) S->unlink(name);
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    if (opt && opt->report) *opt->report = rep;
    free_file(f);
    return NULL;
}

/* Does path still name that inode? Yes too when the system cannot tell
 * (a stat failing for another reason than the name being gone). */
static bool names(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    if (S->stat(path, &st) < 0) return errno != ENOENT && errno != ENOTDIR;
    return st.st_dev == dev && st.st_ino == ino;
}

int wal_check_paths(wal_file *f, char *err, size_t errlen)
{
    if (!f->gone && f->rw) {
        if (!names(f->path, f->dev, f->ino)) f->gone = 1;
        else if (!names(f->log_path, f->log_dev, f->log_ino)) f->gone = 2;
    }
    if (!f->gone) return 0;
    if (f->gone == 1)
        snprintf(err, errlen,
                 "'%s' was deleted or replaced while served: the path no longer names the file "
                 "the server holds, so a restart would not find what is committed now; changes "
                 "are refused from now on. Stop the server, decide which file is the right one, "
                 "and start it again",
                 f->path);
    else
        snprintf(err, errlen,
                 "the log '%s' was deleted or replaced while served, so a restart would not find "
                 "what is committed now; changes are refused from now on. Stop the server (its "
                 "file is then complete) and start it again",
                 f->log_path);
    return H5A_WAL_E_GONE;
}

int wal_close(wal_file *f)
{
    int ret = 0;
    char msg[H5A_WAL_CLOSE_ERRLEN] = "";
    unlist(f);
    if (f->rw && f->log_fd >= 0 && !f->dropping) {
        char err[512];
        /* A clean close: everything durable in the file held (even if its
         * path names another file now), then no log is needed. */
        if (wal_commit(f, true, true, err, sizeof err) < 0) {
            snprintf(msg, sizeof msg, "closing: %s (the log is kept; reopening recovers)", err);
            ret = -1;
        } else if (log_remove(f) < 0) {
            snprintf(msg, sizeof msg, "closing: cannot remove the log '%s': %s", f->log_path,
                     strerror(errno));
            ret = -1;
        }
    }
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (S->close(f->fd) < 0 && ret == 0) {
        snprintf(msg, sizeof msg, "closing '%s': %s", f->path, strerror(errno));
        ret = -1;
    }
    char *close_error = f->opt.close_error;
    f->magic = 0;
    free_file(f);
    if (close_error) { /* said there, and a success to HDF5 (see wal.h) */
        memcpy(close_error, msg, sizeof msg);
        return 0;
    }
    if (ret < 0) PUSH(H5E_CANTCLOSEFILE, "%s", msg);
    return ret;
}
