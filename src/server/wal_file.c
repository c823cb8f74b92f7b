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
            if (map_read_logged(f, s, tmp) < 0)
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
     * three. */
    if (!hard || f->seq == 0 ||
        (!force_checkpoint && f->log_end - f->log_start <= f->opt.checkpoint_bytes))
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
    return random64() >> 1;
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
static int recover_for_reader(const wal_file *rf, h5a_wal_recovery *rep)
{
    int probe = S->open(rf->log_path, O_RDONLY, 0);
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
        PUSH(H5E_CANTLOCKFILE, "'%s' is in use (open in another process or handle)", f->path);
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
    if (S->unlink(f->log_path) < 0 || fsync_dir(f->log_path) < 0) goto out;
    rc = 0;
out:
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    free_file(f);
    return rc;
}

static void set_options(wal_file *f, const h5a_wal_options *opt)
{
    if (opt) f->opt = *opt;
    if (!f->opt.map_bytes) f->opt.map_bytes = MAP_BYTES;
    if (!f->opt.log_restart_bytes) f->opt.log_restart_bytes = LOG_RESTART_BYTES;
    if (!f->opt.checkpoint_bytes) f->opt.checkpoint_bytes = CHECKPOINT_BYTES;
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
    if (opt && opt->report) *opt->report = rep;
    return f;
nomem:
    PUSH(H5E_CANTALLOC, "out of memory");
fail:
    if (f->log_fd >= 0) S->close(f->log_fd);
    if (f->fd >= 0) S->close(f->fd);
    if (opt && opt->report) *opt->report = rep;
    free_file(f);
    return NULL;
}

int wal_close(wal_file *f)
{
    int ret = 0;
    unlist(f);
    if (f->rw && f->log_fd >= 0) {
        char err[512];
        /* a clean close: everything durable, then no log is needed */
        if (wal_commit(f, true, true, err, sizeof err) < 0) {
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
