/* h5a_wal, the HDF5 driver itself (see wal.h, and wal_int.h for the
 * layers below): the H5FD callbacks HDF5 calls, which turn into reads and
 * writes through the page map and the file's open, commit and close;
 * h5a_wal_fapl and h5a_wal_commit. The design, the crash cases and why each
 * one ends in a committed state are in docs/durability.md, "Crash safety:
 * the write-ahead log". */
#include "server/wal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

/* ---- the H5FD callbacks ---- */

static H5FD_t *cb_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    if (!name || !*name) {
        PUSH(H5E_BADVALUE, "invalid file name");
        return NULL;
    }
    if (maxaddr == 0 || maxaddr == HADDR_UNDEF) {
        PUSH(H5E_BADRANGE, "bogus maxaddr");
        return NULL;
    }
    wal_file *f = wal_open(name, flags, H5Pget_driver_info(fapl));
    return f ? &f->pub : NULL;
}

static herr_t cb_close(H5FD_t *file)
{
    return wal_close((wal_file *)file);
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
    if (f->dropping) return 0; /* rolled back: HDF5's last words are dropped */
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
    if (f->buffered > f->opt.map_bytes) (void)spill(f);
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
    if (!f->rw || f->eoa == f->eof || f->dropping) return 0;
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
    .fapl_size = sizeof(h5a_wal_options), /* HDF5 copies the options with the fapl */
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

hid_t h5a_wal_fapl(const h5a_wal_options *opt)
{
    h5a_wal_options none;
    if (!opt) {
        memset(&none, 0, sizeof none);
        opt = &none;
    }
    hid_t id = driver();
    if (id < 0) return H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return H5I_INVALID_HID;
    hbool_t clear = 1;
    if (H5Pset_driver(fapl, id, opt) < 0 || H5Pset(fapl, "clear_status_flags", &clear) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static wal_file *wal_of(hid_t file)
{
    void *h = NULL;
    return H5Fget_vfd_handle(file, H5P_DEFAULT, &h) >= 0 ? wal_find_open(h) : NULL;
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
    int rc = wal_check_paths(f, err, errlen);
    return rc ? rc : wal_commit(f, level == H5A_COMMIT_HARD, false, err, errlen);
}

int h5a_wal_add_aux(hid_t file, const void *data, size_t n)
{
    wal_file *f = wal_of(file);
    if (!f) return H5Eclear2(H5E_DEFAULT), -1;
    if (f->aux_len + n > f->aux_cap) {
        size_t cap = f->aux_cap ? f->aux_cap : 4096;
        while (cap < f->aux_len + n) cap *= 2;
        unsigned char *na = realloc(f->aux, cap);
        if (!na) return -1;
        f->aux = na;
        f->aux_cap = cap;
    }
    memcpy(f->aux + f->aux_len, data, n);
    f->aux_len += n;
    f->changed = true;
    return 0;
}

int h5a_wal_drop(hid_t file)
{
    wal_file *f = wal_of(file);
    if (!f) return H5Eclear2(H5E_DEFAULT), -1;
    f->dropping = true;
    return 0;
}
