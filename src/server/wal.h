/* h5a_wal: an HDF5 virtual file driver that makes a file crash-safe with a
 * redo log (write-ahead log) in "<path>.wal".
 *
 * Between commits, bytes of the last committed state are never overwritten
 * in the data file: changed pages are kept in memory (spilled to the log when
 * large) and only new space past the committed end is written directly. A
 * commit appends the changed pages and a commit record to the log; a HARD
 * commit also fsyncs. Once the log has grown past a few MiB, and at close,
 * a HARD commit also copies the pages into the data file (checkpoint) and
 * starts the log afresh.
 * Opening a file through this driver first replays or discards what a crash
 * left in the log, so the file always comes back as its last commit: every
 * commit after a process crash (kill -9), every HARD commit after a machine
 * crash. The log names the file it belongs to (an id in the file's
 * userblock, its first page and size): a log that is another file's, a
 * symbolic link, or damaged makes the open fail rather than be replayed.
 * The open locks the file and the log, so a second opener is refused even
 * after the path was given to another file. docs/durability.md has the
 * whole design and why it holds; wal_int.h the layers of the code.
 *
 * Use: fapl = h5a_wal_fapl(&options); H5Fopen/H5Fcreate(path, ..., fapl);
 * after each H5Fflush(file, H5F_SCOPE_GLOBAL) call h5a_wal_commit(file,
 * level, ...).
 * H5Fclose does a HARD commit and removes the log. Files must be created
 * with non-persistent free-space tracking (the default fcpl): with
 * persistent free-space managers the image after H5Fflush is not a
 * consistent file, so no commit of it could be.
 *
 * Not thread-safe beyond what HDF5 already serializes: call everything for a
 * file on the thread that does its HDF5 calls. */
#ifndef H5A_WAL_H
#define H5A_WAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

/* What an open found in the log (h5a_wal_options.report), to be logged. */
typedef struct {
    bool found_log;    /* a log was left over: the file was not closed cleanly */
    bool same_boot;    /* the log was written since the last boot (process crash) */
    unsigned commits;  /* commits replayed into the file */
    unsigned dropped;  /* complete commits not replayed: soft ones after a machine crash */
    uint64_t pages;    /* distinct 4 KiB pages written into the file */
    uint64_t eof;      /* file size afterwards */
    uint64_t ignored;  /* log bytes after the last complete commit: an
                          incomplete commit, or a damaged log */
    char message[512]; /* one line for a log; empty when there was nothing to do */
} h5a_wal_recovery;

/* What a file is opened with; a zero field takes its default. */
typedef struct {
    /* Page copies held in memory before the changed ones are spilled into
     * the log and dropped (default 64 MiB). */
    size_t map_bytes;
    /* A checkpoint normally starts the log's next generation where the last
     * one ended; past this log size it restarts the log at its top
     * (default 64 MiB). */
    uint64_t log_restart_bytes;
    /* A HARD commit checkpoints once the log holds this much since the last
     * checkpoint (default 8 MiB), and the close always does. */
    uint64_t checkpoint_bytes;
    /* A write of at least this many bytes (an in-place rewrite of a large
     * dataset) logs its changed whole pages straight from HDF5's buffer,
     * without a page copy in memory; smaller ones are kept in the map until
     * the commit (default 1 MiB). */
    size_t direct_bytes;
    /* When set, each open through the fapl fills it in (also when the open
     * fails). It must stay valid while the fapl is used to open files. */
    h5a_wal_recovery *report;
    /* A left-over log whose header is damaged (cut, flipped bits, not a
     * log) makes the open fail, since the commits it may hold cannot be
     * replayed. With this set the open moves it aside to "FILE.wal.damaged"
     * instead and goes on with the file as of its last checkpoint. */
    bool discard_damaged;
    /* Give the file an id the log can recognise it by: when the file has a
     * blank userblock (H5Pset_userblock(fcpl, 512) or more at creation, or
     * an old file converted with h5jam), its first commit writes a random
     * id into the userblock's first bytes, which HDF5 never reads or
     * writes. Files without a userblock are recognised by their first page
     * and size alone (docs/durability.md, "Which log is whose"). */
    bool file_id;
    /* When set (H5A_WAL_CLOSE_ERRLEN bytes), a close that could not make the file clean
     * (a full disk: its last commit stays in the log, for the next open to
     * recover) writes why here, and is otherwise a success: HDF5 cannot
     * cope with a driver whose close fails after freeing the file (it
     * closed it again at exit: SIGSEGV). Empty after a clean close. */
    char *close_error;
    /* Auxiliary bytes committed with the pages (the exactly-once table's
     * deltas, dedup.h): what h5a_wal_add_aux gave since the last commit
     * goes into the next commit, as one record covered by its chain, so it
     * is recovered exactly when the pages of that commit are. A recovery
     * calls aux_replay with each replayed commit's bytes, in order; every
     * checkpoint (and a recovery, before it starts the log afresh) first
     * calls aux_checkpoint, which must make everything given so far durable
     * elsewhere (the log's records before it are then gone). Either may be
     * NULL; a negative return fails the open or the checkpoint. */
    void *aux_ctx;
    int (*aux_replay)(void *ctx, const void *data, size_t n);
    int (*aux_checkpoint)(void *ctx);
} h5a_wal_options;

/* A new file access property list using the driver (the caller closes it).
 * It also sets HDF5's "clear_status_flags": a crash leaves the superblock
 * marked "open for write", and what the driver restores is a committed,
 * consistent image, so clearing the mark (what h5clear does) is safe here.
 * opt: NULL for the defaults; it is copied. Returns a negative id if the
 * driver cannot be registered. */
hid_t h5a_wal_fapl(const h5a_wal_options *opt);

typedef enum {
    H5A_COMMIT_SOFT, /* survives a process crash (written to the log, no fsync) */
    H5A_COMMIT_HARD  /* survives a machine crash (fsynced) */
} h5a_commit_level;

/* Make the file's current bytes the state a crash comes back to. Call right
 * after H5Fflush(file, H5F_SCOPE_GLOBAL): only what HDF5 has handed to the
 * driver is committed. Returns 0, or -1 with a message in err. After an I/O
 * error during a HARD commit the file refuses further writes (reopening it
 * recovers the last commit).
 * Returns H5A_WAL_E_GONE, committing nothing, once the file's path (or its
 * log's) no longer names the file the driver holds: deleted, or replaced by
 * a rename. Whatever is committed after that could not be found by a
 * restart, so every later commit fails the same way; the close still makes
 * everything durable in the file held, and removes the log only if the log
 * path still names it. */
int h5a_wal_commit(hid_t file, h5a_commit_level level, char *err, size_t errlen);
#define H5A_WAL_E_GONE (-2)
#define H5A_WAL_CLOSE_ERRLEN 1024

/* Add n bytes to the next commit's auxiliary record (see aux_replay).
 * 0, or -1 (not a file of this driver, or out of memory). */
int h5a_wal_add_aux(hid_t file, const void *data, size_t n);

/* Make the file forget everything since its last commit, for a rollback:
 * from now on the driver ignores HDF5's writes, and its close neither
 * commits nor removes the log, exactly as if the process had died. The
 * caller then closes the file (H5Fclose) and opens it again, and the open
 * recovers the last commit, as after a crash. 0, or -1. */
int h5a_wal_drop(hid_t file);

/* errno of the last write to a file or a log that failed, and forget it
 * (0: none since the last call). ENOSPC or EDQUOT: the disk is full. */
int h5a_wal_take_write_errno(void);

/* What the driver holds for an open file, for the memory report. */
typedef struct {
    size_t map_bytes;   /* changed pages kept in memory (spilled past the map limit) */
    size_t index_bytes; /* the page map's own index */
    uint64_t log_bytes; /* the log file's size */
} h5a_wal_stats;
int h5a_wal_get_stats(hid_t file, h5a_wal_stats *out);

/* fsync the folder that holds path, so a file created, renamed or removed
 * in it stays so after a crash. Through the system-call table below (the
 * crash tests see it); the dedup snapshot and compact use it too. 0 or -1. */
int h5a_wal_fsync_dir(const char *path);

#define H5A_WAL_PAGE 4096
/* The log header fills the first 512-byte sector alone: rewriting it is then
 * a one-sector write, which disks do atomically (the assumption PostgreSQL
 * makes for pg_control). */
#define H5A_WAL_HEADER_BYTES 512

/* ---- testing only ----
 * Every system call the driver makes on its files goes through this table,
 * so a test can simulate a machine crash (lose or tear writes not yet
 * fsynced) and a reboot (another boot id). Production code never calls
 * h5a_wal_set_sys. boot_id writes a NUL-terminated id into out[64]. */
typedef struct {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*fstat)(int fd, struct stat *st);
    int (*flock)(int fd, int op);
    int (*unlink)(const char *path);
    int (*boot_id)(char *out);
    int (*stat)(const char *path, struct stat *st);
    int (*rename)(const char *from, const char *to);
    /* NULL: done as one pwrite per piece (what a test's table sets unless
     * it wants to see the pieces together) */
    ssize_t (*pwritev)(int fd, const struct iovec *iov, int n, off_t off);
} h5a_wal_sys;

/* Replace the table (NULL: the real system calls). */
void h5a_wal_set_sys(const h5a_wal_sys *sys);
/* The real system calls, for a test's table to pass through to. */
const h5a_wal_sys *h5a_wal_real_sys(void);

#endif
