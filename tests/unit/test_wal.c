/* test_wal: the crash-safe file driver (src/server/wal.c).
 *
 * 1. round trip through HDF5 with the driver, files readable by sec2/h5py;
 * 2. process crashes: a child works on the file and is SIGKILLed at a random
 *    moment; reopening must give exactly the state of a commit at or after
 *    the last acknowledged one;
 * 3. machine crashes: the child's system calls go through a fake that keeps
 *    only a random part of what was not fsynced (writes torn at 512-byte
 *    sectors), at a random system call; reopening on another "boot" must
 *    give the state of a HARD commit at or after the last acknowledged one
 *    (a third of the rounds keep everything and the same boot: a process
 *    crash at an exact system call, mid-commit or mid-checkpoint);
 * 4. unit cases: torn and garbage logs, stale generations, empty logs, a
 *    file created next to a stale log, a second open, a machine crash in
 *    the middle of a recovery, the logical end of file (H5FD calls), a log
 *    next to another file (with and without ids), a log that is a
 *    symbolic link, the file deleted or replaced while open;
 * and a small benchmark of commit costs (printed, never asserted).
 *
 * H5A_WAL_ROUNDS=N sets the number of rounds of 2 and 3 (default 200),
 * H5A_WAL_SEED=N picks other random rounds, H5A_WAL_NO_BENCH=1 skips the
 * benchmark (the test named `bench`). */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/wal.h"

#include "../check.h"

static char dir[64];
static char err[1024];

/* ---- small helpers ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    uint64_t s = h ^ (v * 0x9E3779B97F4A7C15ull);
    return splitmix(&s);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static bool wal_exists(const char *p)
{
    char w[600];
    snprintf(w, sizeof w, "%s.wal", p);
    return exists(w);
}

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *fp = fopen(p, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, fp);
    fclose(fp);
    return b;
}

static void spit(const char *p, const unsigned char *b, size_t n)
{
    FILE *fp = fopen(p, "wb");
    if (!fp) abort();
    if (n) fwrite(b, 1, n, fp);
    fclose(fp);
}

/* Innermost messages of HDF5's error stack (what the engine reports). */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ud)
{
    char *out = ud;
    size_t used = strlen(out);
    if (used < 900) snprintf(out + used, 1024 - used, "%s; ", e->desc ? e->desc : "?");
    (void)n;
    return 0;
}

static const char *h5_error(void)
{
    static char msg[1024];
    msg[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, msg);
    H5Eclear2(H5E_DEFAULT);
    return msg;
}

/* What fapl_wal() opens files with (the tests change the limits), and the
 * recovery report of its last open. */
static h5a_wal_options wopt;
static h5a_wal_recovery last_rep;

static void set_limits(size_t map_bytes, uint64_t log_restart_bytes, uint64_t checkpoint_bytes)
{
    wopt.map_bytes = map_bytes;
    wopt.log_restart_bytes = log_restart_bytes;
    wopt.checkpoint_bytes = checkpoint_bytes;
    wopt.direct_bytes = 0;
}

/* One fapl while the options stay the same: closing it right after a
 * failed open would clear the error stack (every API call does) before it
 * is read. */
static hid_t fapl_wal(void)
{
    static hid_t fapl = H5I_INVALID_HID;
    static h5a_wal_options made;
    wopt.report = &last_rep;
    if (fapl >= 0 && memcmp(&made, &wopt, sizeof wopt) != 0) {
        H5Pclose(fapl);
        fapl = H5I_INVALID_HID;
    }
    if (fapl < 0) {
        made = wopt;
        fapl = h5a_wal_fapl(&wopt);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    }
    return fapl;
}

/* wal_create makes files with a 512-byte userblock (room for an id) */
static bool with_userblock;

static hid_t wal_create(const char *p)
{
    if (!with_userblock)
        return H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl_wal()); /* default fcpl: persist=0 */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, 512);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, fcpl, fapl_wal());
    H5Pclose(fcpl);
    return f;
}

static hid_t wal_open(const char *p, unsigned flags)
{
    return H5Fopen(p, flags, fapl_wal());
}

static int commit(hid_t f, h5a_commit_level level)
{
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) return -1;
    int rc = h5a_wal_commit(f, level, err, sizeof err);
    if (rc) fprintf(stderr, "commit: %s\n", err);
    return rc;
}

static bool h5py_reads(const char *p)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py,sys\n"
             "f=h5py.File(sys.argv[1],'r')\n"
             "f.visititems(lambda n,o: o[()] if isinstance(o,h5py.Dataset) else None)\" '%s'",
             p);
    return system(cmd) == 0;
}

/* ---- the workload: datasets with known content ---- */

#define NNAMES 8
#define COLS 4
static const char *const NAMES[NNAMES] = {"/d0",      "/d1",      "/d2",      "/g0/d3",
                                          "/g0/d4",   "/g1/s/d5", "/g1/s/d6", "/d7"};

typedef struct {
    bool exists, chunked;
    size_t n; /* elements (contiguous, 1-D) or rows of COLS (chunked, growable) */
    int64_t *v;
} mds;

typedef struct {
    mds d[NNAMES];
} model;

enum { OP_CREATE, OP_APPEND, OP_OVERWRITE, OP_DELETE, OP_DELGROUP };

typedef struct {
    int kind, name;
    h5a_commit_level level;
    bool chunked;
    size_t a, b; /* CREATE: n; APPEND: rows; OVERWRITE: [a, b) */
    uint64_t seed;
} op_t;

static size_t width(const mds *d)
{
    return d->chunked ? COLS : 1;
}

static void fill(int64_t *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) v[i] = (int64_t)mix(seed, i);
}

static void model_free(model *m)
{
    for (int i = 0; i < NNAMES; i++) free(m->d[i].v);
    memset(m, 0, sizeof *m);
}

static void model_copy(model *dst, const model *src)
{
    *dst = *src;
    for (int i = 0; i < NNAMES; i++) {
        if (!src->d[i].exists) continue;
        size_t bytes = src->d[i].n * width(&src->d[i]) * sizeof(int64_t);
        dst->d[i].v = malloc(bytes ? bytes : 1);
        memcpy(dst->d[i].v, src->d[i].v, bytes);
    }
}

static const char *group_of(int name)
{
    const char *s = NAMES[name];
    return strncmp(s, "/g0/", 4) == 0 ? "/g0" : strncmp(s, "/g1/", 4) == 0 ? "/g1" : NULL;
}

static op_t gen_op(uint64_t *rng, const model *m)
{
    op_t o;
    memset(&o, 0, sizeof o);
    o.name = (int)(splitmix(rng) % NNAMES);
    o.seed = splitmix(rng);
    o.level = splitmix(rng) % 4 == 0 ? H5A_COMMIT_HARD : H5A_COMMIT_SOFT;
    const mds *d = &m->d[o.name];
    uint64_t r = splitmix(rng);
    if (!d->exists) {
        o.kind = OP_CREATE;
        o.chunked = r % 2;
        o.a = o.chunked ? 1 + r / 2 % 300 : 1 + r / 2 % 5000;
        if (r / 1000 % 10 == 0) o.a *= 10;
        return o;
    }
    int pick = (int)(r % 10);
    if (d->chunked && d->n > 3000) pick = 7;
    if (pick <= 3 && d->chunked) {
        o.kind = OP_APPEND;
        o.a = 1 + r / 16 % 100;
    } else if (pick <= 6 || (pick <= 3 && !d->chunked)) {
        o.kind = OP_OVERWRITE;
        o.a = r / 16 % d->n;
        o.b = o.a + 1 + r / 65536 % (d->n - o.a);
    } else if (pick == 9 && group_of(o.name)) {
        o.kind = OP_DELGROUP;
    } else {
        o.kind = OP_DELETE;
    }
    return o;
}

static void apply_model(model *m, const op_t *o)
{
    mds *d = &m->d[o->name];
    switch (o->kind) {
    case OP_CREATE:
        d->exists = true;
        d->chunked = o->chunked;
        d->n = o->a;
        d->v = malloc(d->n * width(d) * sizeof(int64_t));
        fill(d->v, d->n * width(d), o->seed);
        break;
    case OP_APPEND:
        d->v = realloc(d->v, (d->n + o->a) * COLS * sizeof(int64_t));
        fill(d->v + d->n * COLS, o->a * COLS, o->seed);
        d->n += o->a;
        break;
    case OP_OVERWRITE:
        fill(d->v + o->a * width(d), (o->b - o->a) * width(d), o->seed);
        break;
    case OP_DELGROUP: {
        const char *g = group_of(o->name);
        for (int i = 0; i < NNAMES; i++) {
            if (group_of(i) && strcmp(group_of(i), g) == 0) {
                free(m->d[i].v);
                memset(&m->d[i], 0, sizeof m->d[i]);
            }
        }
        break;
    }
    default:
        free(d->v);
        memset(d, 0, sizeof *d);
    }
}

/* rows [a, a+n) of a dataset, written from v */
static int write_rows(hid_t ds, const mds *d, size_t a, size_t n, const int64_t *v)
{
    hsize_t off[2] = {a, 0}, cnt[2] = {n, COLS};
    int rank = d->chunked ? 2 : 1;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, cnt, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (rc >= 0) rc = H5Dwrite(ds, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, v);
    H5Sclose(fs);
    H5Sclose(ms);
    return rc < 0 ? -1 : 0;
}

/* Do o on the file (m is the state before o). */
static int apply_file(hid_t f, const model *m, const op_t *o)
{
    const mds *d = &m->d[o->name];
    const char *name = NAMES[o->name];
    int rc = 0;
    if (o->kind == OP_CREATE) {
        mds nd = {true, o->chunked, o->a, NULL};
        size_t cnt = nd.n * width(&nd);
        int64_t *v = malloc(cnt * sizeof *v);
        fill(v, cnt, o->seed);
        hsize_t dims[2] = {nd.n, COLS}, maxd[2] = {H5S_UNLIMITED, COLS}, chunk[2] = {64, COLS};
        hid_t sp = H5Screate_simple(nd.chunked ? 2 : 1, dims, nd.chunked ? maxd : NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        if (nd.chunked) H5Pset_chunk(dcpl, 2, chunk);
        hid_t ds = H5Dcreate2(f, name, H5T_STD_I64LE, sp, lcpl, dcpl, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
            rc = -1;
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(sp);
        H5Pclose(dcpl);
        H5Pclose(lcpl);
        free(v);
        return rc;
    }
    if (o->kind == OP_DELETE) return H5Ldelete(f, name, H5P_DEFAULT) < 0 ? -1 : 0;
    if (o->kind == OP_DELGROUP) return H5Ldelete(f, group_of(o->name), H5P_DEFAULT) < 0 ? -1 : 0;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    size_t a = o->kind == OP_APPEND ? d->n : o->a;
    size_t n = o->kind == OP_APPEND ? o->a : o->b - o->a;
    int64_t *v = malloc(n * width(d) * sizeof *v);
    fill(v, n * width(d), o->seed);
    if (o->kind == OP_APPEND) {
        hsize_t nd[2] = {d->n + n, COLS};
        rc = H5Dset_extent(ds, nd) < 0 ? -1 : 0;
    }
    if (rc == 0) rc = write_rows(ds, d, a, n, v);
    free(v);
    H5Dclose(ds);
    return rc;
}

static uint64_t digest_values(uint64_t h, const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) h = mix(h, (uint64_t)v[i]);
    return h;
}

static uint64_t digest_model(const model *m)
{
    uint64_t h = 1;
    for (int i = 0; i < NNAMES; i++) {
        const mds *d = &m->d[i];
        h = mix(h, d->exists);
        if (d->exists) h = digest_values(mix(mix(h, d->chunked), d->n), d->v, d->n * width(d));
    }
    return h;
}

static bool link_exists(hid_t f, const char *path)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t ex = H5Lexists(f, buf, H5P_DEFAULT);
            *p = c;
            if (ex <= 0) return false;
            if (c == '\0') return true;
        }
    }
}

/* The same digest, of the file; reads every dataset in full. 0 on error. */
static uint64_t digest_file(hid_t f)
{
    uint64_t h = 1;
    for (int i = 0; i < NNAMES; i++) {
        bool ex = link_exists(f, NAMES[i]);
        h = mix(h, ex);
        if (!ex) continue;
        hid_t ds = H5Dopen2(f, NAMES[i], H5P_DEFAULT);
        if (ds < 0) return 0;
        hid_t sp = H5Dget_space(ds);
        hsize_t dims[2] = {0, 0};
        int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp);
        size_t cnt = rank == 2 ? dims[0] * dims[1] : dims[0];
        int64_t *v = malloc((cnt ? cnt : 1) * sizeof *v);
        herr_t rc = H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(ds);
        if (rc < 0 || rank < 1) {
            free(v);
            return 0;
        }
        h = digest_values(mix(mix(h, rank == 2), dims[0]), v, cnt);
        free(v);
    }
    return h ? h : 1;
}

/* ---- a fake of the driver's system calls: a machine that can crash ----
 * Every regular file the driver opens is shadowed: the bytes known to be on
 * disk (as of its last fsync) and the writes and truncations since. A crash
 * writes back, for each file, its durable bytes plus a random part of the
 * pending operations (writes maybe torn at 512-byte sectors), then _exits. */

typedef struct {
    uint64_t off, len; /* a write, or a truncation to off when data is NULL */
    unsigned char *data;
} pend_t;

typedef struct {
    char path[600];
    bool live;
    unsigned char *img;
    size_t len;
    pend_t *p;
    size_t np, pcap;
} shadow_t;

enum { KEEP_RANDOM, KEEP_ALL, KEEP_CUSTOM };
static struct {
    shadow_t sh[8];
    int nsh;
    int fd_sh[1024];
    long events, crash_at;
    int mode;
    bool (*keep)(const shadow_t *s, const pend_t *p);
    uint64_t rng;
    char boot[64];
    const char *crash_after_sync_of; /* crash right after this file's first fsync */
} fk;

static const h5a_wal_sys *R; /* the real calls */

static void img_resize(shadow_t *s, size_t n)
{
    s->img = realloc(s->img, n ? n : 1);
    if (n > s->len) memset(s->img + s->len, 0, n - s->len);
    s->len = n;
}

static void img_write(shadow_t *s, uint64_t off, const unsigned char *d, uint64_t n)
{
    if (off + n > s->len) img_resize(s, off + n);
    memcpy(s->img + off, d, n);
}

static shadow_t *shadow_find(const char *path)
{
    for (int i = 0; i < fk.nsh; i++)
        if (fk.sh[i].live && strcmp(fk.sh[i].path, path) == 0) return &fk.sh[i];
    return NULL;
}

static void pend_add(shadow_t *s, uint64_t off, const void *data, uint64_t len)
{
    if (s->np == s->pcap) {
        s->pcap = s->pcap ? s->pcap * 2 : 64;
        s->p = realloc(s->p, s->pcap * sizeof *s->p);
    }
    pend_t *p = &s->p[s->np++];
    p->off = off;
    p->len = len;
    p->data = NULL;
    if (data) {
        p->data = malloc(len ? len : 1);
        memcpy(p->data, data, len);
    }
}

static void pend_apply(shadow_t *s, const pend_t *p, bool torn)
{
    if (!p->data) {
        img_resize(s, p->off);
        return;
    }
    if (!torn) {
        img_write(s, p->off, p->data, p->len);
        return;
    }
    for (uint64_t at = p->off; at < p->off + p->len;) {
        uint64_t next = (at / 512 + 1) * 512, end = next < p->off + p->len ? next : p->off + p->len;
        if (splitmix(&fk.rng) % 2) img_write(s, at, p->data + (at - p->off), end - at);
        at = end;
    }
}

static void sync_shadow(shadow_t *s)
{
    for (size_t i = 0; i < s->np; i++) {
        pend_apply(s, &s->p[i], false);
        free(s->p[i].data);
    }
    s->np = 0;
}

static void fake_crash(void)
{
    if (fk.mode != KEEP_ALL) {
        for (int i = 0; i < fk.nsh; i++) {
            shadow_t *s = &fk.sh[i];
            if (!s->live) continue;
            for (size_t k = 0; k < s->np; k++) {
                const pend_t *p = &s->p[k];
                bool keep = fk.mode == KEEP_CUSTOM ? fk.keep(s, p) : splitmix(&fk.rng) % 2;
                if (keep)
                    pend_apply(s, p, fk.mode == KEEP_RANDOM && p->len > 512 &&
                                         splitmix(&fk.rng) % 3 == 0);
            }
            spit(s->path, s->img, s->len);
        }
    }
    _exit(42);
}

static void tick(void)
{
    if (fk.crash_at > 0 && ++fk.events >= fk.crash_at) fake_crash();
}

static shadow_t *shadow_of(int fd)
{
    return fd >= 0 && fd < 1024 && fk.fd_sh[fd] >= 0 ? &fk.sh[fk.fd_sh[fd]] : NULL;
}

static int fake_open(const char *path, int flags, mode_t mode)
{
    struct stat st;
    bool existed = stat(path, &st) == 0;
    shadow_t *s = shadow_find(path);
    bool load = !s && existed && S_ISREG(st.st_mode);
    size_t n = 0;
    unsigned char *before = load ? slurp(path, &n) : NULL;
    int fd = R->open(path, flags, mode);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fd >= 1024) {
        free(before);
        return fd;
    }
    if (!s) {
        if (fk.nsh == 8) abort();
        s = &fk.sh[fk.nsh++];
        memset(s, 0, sizeof *s);
        snprintf(s->path, sizeof s->path, "%s", path);
        s->live = true;
        s->img = before ? before : malloc(1);
        s->len = n;
    } else {
        free(before);
    }
    if ((flags & O_TRUNC) && existed) pend_add(s, 0, NULL, 0);
    fk.fd_sh[fd] = (int)(s - fk.sh);
    return fd;
}

static int fake_close(int fd)
{
    if (fd >= 0 && fd < 1024) fk.fd_sh[fd] = -1;
    return R->close(fd);
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    tick();
    ssize_t k = R->pwrite(fd, buf, n, off);
    shadow_t *s = shadow_of(fd);
    if (s && k > 0) pend_add(s, (uint64_t)off, buf, (uint64_t)k);
    return k;
}

static int fake_ftruncate(int fd, off_t len)
{
    tick();
    int rc = R->ftruncate(fd, len);
    shadow_t *s = shadow_of(fd);
    if (s && rc == 0) pend_add(s, (uint64_t)len, NULL, 0);
    return rc;
}

static int fake_sync(int fd)
{
    tick();
    shadow_t *s = shadow_of(fd);
    if (s) sync_shadow(s);
    if (s && fk.crash_after_sync_of && strcmp(s->path, fk.crash_after_sync_of) == 0) fake_crash();
    return 0; /* the real disk need not be bothered */
}

static int fake_unlink(const char *path)
{
    tick();
    int rc = R->unlink(path);
    shadow_t *s = shadow_find(path);
    if (rc == 0 && s) s->live = false; /* directory changes count as durable at once */
    return rc;
}

static int fake_boot_id(char *out)
{
    snprintf(out, 64, "%s", fk.boot);
    return 0;
}

static h5a_wal_sys fake_sys;

/* Install the fake (in a child). crash_at: system call to crash at (0:
 * only when fake_crash is called). */
static void fake_install(uint64_t seed, long crash_at, int mode, bool other_boot)
{
    R = h5a_wal_real_sys();
    memset(&fk, 0, sizeof fk);
    for (int i = 0; i < 1024; i++) fk.fd_sh[i] = -1;
    fk.rng = seed;
    fk.crash_at = crash_at;
    fk.mode = mode;
    if (other_boot)
        snprintf(fk.boot, sizeof fk.boot, "00000000-fake-boot-%016llx", (unsigned long long)seed);
    else R->boot_id(fk.boot);
    fake_sys = *R;
    fake_sys.open = fake_open;
    fake_sys.close = fake_close;
    fake_sys.pwrite = fake_pwrite;
    fake_sys.pwritev = NULL; /* through fake_pwrite, piece by piece */
    fake_sys.ftruncate = fake_ftruncate;
    fake_sys.fdatasync = fake_sync;
    fake_sys.fsync = fake_sync;
    fake_sys.unlink = fake_unlink;
    fake_sys.boot_id = fake_boot_id;
    h5a_wal_set_sys(&fake_sys);
}

/* ---- crash rounds (tests 2 and 3) ---- */

typedef struct {
    int32_t op;  /* op number acknowledged, or -1: closed */
    int32_t level;
} ack_t;

/* In a child: nops operations of round `seed` on p, each flushed,
 * committed and acknowledged on ackfd; then close. Never returns. */
static void child_work(const char *p, model *m, uint64_t seed, int nops, int ackfd)
{
    hid_t f = wal_open(p, H5F_ACC_RDWR);
    if (f < 0) _exit(3);
    uint64_t rng = seed;
    for (int i = 1; i <= nops; i++) {
        op_t o = gen_op(&rng, m);
        if (apply_file(f, m, &o) < 0) _exit(4);
        apply_model(m, &o);
        if (commit(f, o.level) < 0) _exit(5);
        ack_t a = {i, o.level};
        if (write(ackfd, &a, sizeof a) != sizeof a) _exit(6);
    }
    if (H5Fclose(f) < 0) _exit(7);
    ack_t a = {-1, H5A_COMMIT_HARD};
    if (write(ackfd, &a, sizeof a) != sizeof a) _exit(6);
}

/* After a crash: open p through the driver (which recovers), require the
 * state to be one of the allowed prefixes of the round's operations, and
 * carry the model forward to it. Returns the prefix, or -1. */
static int check_round(const char *p, model *m, uint64_t seed, int nops, const bool *allowed,
                       bool with_h5py)
{
    uint64_t dig[64];
    model t;
    model_copy(&t, m);
    dig[0] = digest_model(&t);
    uint64_t rng = seed;
    for (int i = 1; i <= nops; i++) {
        op_t o = gen_op(&rng, &t);
        apply_model(&t, &o);
        dig[i] = digest_model(&t);
    }
    model_free(&t);
    hid_t f = wal_open(p, H5F_ACC_RDWR);
    CHECK(f >= 0);
    if (f < 0) {
        fprintf(stderr, "  reopen failed: %s\n", h5_error());
        return -1;
    }
    uint64_t got = digest_file(f);
    CHECK(H5Fclose(f) >= 0);
    CHECK(!wal_exists(p));
    int j = -1;
    for (int i = nops; i >= 0 && j < 0; i--)
        if (allowed[i] && dig[i] == got) j = i;
    CHECK(j >= 0);
    if (j < 0) {
        fprintf(stderr, "  state matches no allowed prefix (0..%d:", nops);
        for (int i = 0; i <= nops; i++)
            if (dig[i] == got) fprintf(stderr, " it is prefix %d (not allowed)", i);
        for (int i = 0; i <= nops; i++)
            if (allowed[i]) fprintf(stderr, " %d", i);
        fprintf(stderr, ")\n");
        return -1;
    }
    /* closed cleanly: plain sec2 reads the same */
    hid_t g = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(g >= 0 && digest_file(g) == got);
    if (g >= 0) H5Fclose(g);
    if (with_h5py) CHECK(h5py_reads(p));
    rng = seed;
    for (int i = 1; i <= j; i++) {
        op_t o = gen_op(&rng, m);
        apply_model(m, &o);
    }
    return j;
}

/* Limits for a round: 0 the defaults (checkpoints only at close here), 1
 * a checkpoint at every HARD commit, 2 that and tiny spill and log-restart
 * sizes, 3 tiny spill size with the default checkpoints; 1 and 3 also log
 * every write of 2 pages or more straight from HDF5's buffer (the rounds'
 * writes are smaller than the default 1 MiB). */
static void set_mode(int mode)
{
    static const uint64_t lim[4][4] = {{0, 0, 0, 0},
                                       {0, 0, 1, 2 * 4096},
                                       {16 * 4096, 64 * 1024, 1, 0},
                                       {16 * 4096, 0, 0, 2 * 4096}};
    set_limits((size_t)lim[mode][0], lim[mode][1], lim[mode][2]);
    wopt.direct_bytes = (size_t)lim[mode][3];
}

static int rounds(void)
{
    const char *s = getenv("H5A_WAL_ROUNDS");
    return s ? atoi(s) : 200;
}

/* H5A_WAL_SEED=N varies the rounds (a failing round prints its seeds). */
static uint64_t base_seed(uint64_t dflt)
{
    const char *s = getenv("H5A_WAL_SEED");
    return s ? dflt ^ strtoull(s, NULL, 0) * 0x9E3779B97F4A7C15ull : dflt;
}

static void fresh_file(const char *p)
{
    hid_t f = wal_create(p);
    CHECK(f >= 0);
    CHECK(commit(f, H5A_COMMIT_HARD) == 0);
    CHECK(H5Fclose(f) >= 0);
}

/* 2: kill -9 at a random moment */
/* Auxiliary bytes (h5a_wal_add_aux) travel with their commit: replayed by
 * a recovery exactly when the commit is, in order, never when their commit
 * did not happen; and every checkpoint (and a recovery) first asks for
 * them to be saved (aux_checkpoint). */
typedef struct {
    char got[256];
    size_t len;
    int replays, checkpoints;
} aux_seen;

static int aux_replay_cb(void *ctx, const void *data, size_t n)
{
    aux_seen *a = ctx;
    if (a->len + n < sizeof a->got) memcpy(a->got + a->len, data, n), a->len += n;
    a->replays++;
    return 0;
}

static int aux_checkpoint_cb(void *ctx)
{
    ((aux_seen *)ctx)->checkpoints++;
    return 0;
}

static hid_t aux_open(const char *p, aux_seen *a, bool create)
{
    h5a_wal_options o;
    memset(&o, 0, sizeof o);
    o.aux_ctx = a;
    o.aux_replay = aux_replay_cb;
    o.aux_checkpoint = aux_checkpoint_cb;
    hid_t fapl = h5a_wal_fapl(&o);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    hid_t f = create ? H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5Fopen(p, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    return f;
}

static int aux_commit(hid_t f, const char *bytes, h5a_commit_level level)
{
    char why[256];
    if (bytes && h5a_wal_add_aux(f, bytes, strlen(bytes)) < 0) return -1;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) return -1;
    return h5a_wal_commit(f, level, why, sizeof why);
}

static void test_aux_records(void)
{
    check_detail = "auxiliary records";
    char p[512];
    path_in(p, sizeof p, "aux.h5");
    aux_seen a;
    memset(&a, 0, sizeof a);
    hid_t f = aux_open(p, &a, true);
    CHECK(f >= 0);
    if (f < 0) return;
    CHECK(aux_commit(f, NULL, H5A_COMMIT_HARD) == 0); /* the empty file, checkpointed */
    int base = a.checkpoints;
    CHECK(base >= 1);
    CHECK(aux_commit(f, "one;", H5A_COMMIT_SOFT) == 0);
    CHECK(aux_commit(f, "two;", H5A_COMMIT_SOFT) == 0);
    CHECK(h5a_wal_add_aux(f, "lost;", 5) == 0); /* never committed */
    /* a process crash: nothing after the last commit reaches the file */
    CHECK(h5a_wal_drop(f) == 0);
    H5Fclose(f);
    CHECK(wal_exists(p));
    memset(&a, 0, sizeof a);
    f = aux_open(p, &a, false);
    CHECK(f >= 0);
    if (f < 0) return;
    CHECK(a.len == 8 && memcmp(a.got, "one;two;", 8) == 0);
    CHECK(a.replays == 2 && a.checkpoints == 1); /* saved before the log was reset */
    /* a clean close checkpoints (asking first) and removes the log */
    CHECK(aux_commit(f, "three;", H5A_COMMIT_SOFT) == 0);
    H5Fclose(f);
    CHECK(!wal_exists(p) && a.checkpoints == 2);
    memset(&a, 0, sizeof a);
    f = aux_open(p, &a, false);
    CHECK(f >= 0 && a.replays == 0 && a.len == 0);
    /* a large one, past the log's staging buffer */
    static char big[3 << 20];
    memset(big, 'x', sizeof big - 1);
    CHECK(aux_commit(f, big, H5A_COMMIT_SOFT) == 0);
    CHECK(h5a_wal_drop(f) == 0);
    H5Fclose(f);
    memset(&a, 0, sizeof a);
    f = aux_open(p, &a, false);
    CHECK(f >= 0 && a.replays == 1);
    if (f >= 0) H5Fclose(f);
}

static void test_process_crash(void)
{
    check_detail = "process crash rounds";
    char p[512];
    path_in(p, sizeof p, "kill.h5");
    fresh_file(p);
    model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = base_seed(12345);
    int n = rounds(), killed = 0, hist[3] = {0, 0, 0};
    for (int r = 0; r < n; r++) {
        uint64_t seed = splitmix(&rng);
        int nops = 1 + (int)(splitmix(&rng) % 12);
        useconds_t delay = (useconds_t)(splitmix(&rng) % 12000);
        int mode = (int)(splitmix(&rng) % 4);
        int fds[2];
        if (pipe(fds) < 0) abort();
        fflush(stdout); /* a child must not repeat our buffered output */
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            set_mode(mode);
            child_work(p, &m, seed, nops, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        usleep(delay);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st)) killed++;
        CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
        int last = 0;
        bool closed = false;
        ack_t a;
        while (read(fds[0], &a, sizeof a) == sizeof a) {
            if (a.op < 0) closed = true;
            else last = a.op;
        }
        close(fds[0]);
        /* every commit survives a process crash: the last acknowledged
         * one, or the next if it was done but not yet acknowledged */
        bool allowed[64] = {false};
        allowed[last] = !closed;
        if (last < nops) allowed[last + 1] = true;
        if (closed) allowed[nops] = true;
        int j = check_round(p, &m, seed, nops, allowed, r % 50 == 49);
        if (j < 0) {
            fprintf(stderr, "  round %d (seed %llu, %d ops, acked %d%s)\n", r,
                    (unsigned long long)seed, nops, last, closed ? ", closed" : "");
            break;
        }
        hist[closed ? 2 : j > last ? 1 : 0]++;
    }
    model_free(&m);
    printf("process crash: %d rounds, %d killed; recovered to the last ack %d, to a commit "
           "done but not acked %d, after a clean close %d\n",
           n, killed, hist[0], hist[1], hist[2]);
}

static h5a_wal_sys other_boot_sys;
static int other_boot_id(char *out)
{
    snprintf(out, 64, "11111111-after-the-reboot");
    return 0;
}

/* 3: machine crashes (and process crashes at an exact system call) */
static void test_machine_crash(void)
{
    check_detail = "machine crash rounds";
    char p[512];
    path_in(p, sizeof p, "power.h5");
    /* a file with an id, so that every recovery checks it too (the
     * process crash rounds check a file without) */
    with_userblock = wopt.file_id = true;
    fresh_file(p);
    model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = base_seed(777);
    int n = rounds(), machine = 0, at_close = 0, doubled = 0;
    other_boot_sys = *h5a_wal_real_sys();
    other_boot_sys.boot_id = other_boot_id;
    for (int r = 0; r < n; r++) {
        uint64_t seed = splitmix(&rng), fseed = splitmix(&rng);
        int nops = 1 + (int)(splitmix(&rng) % 10);
        bool power = splitmix(&rng) % 3 != 0; /* else: a process crash */
        long crash_at = 1 + (long)(splitmix(&rng) % (uint64_t)(12 * nops + 10));
        int mode = (int)(splitmix(&rng) % 4);
        /* a process crash, then a machine crash during its recovery */
        bool twice = !power && splitmix(&rng) % 2 == 0;
        long crash_at2 = 1 + (long)(splitmix(&rng) % 24);
        int fds[2];
        if (pipe(fds) < 0) abort();
        fflush(stdout); /* a child must not repeat our buffered output */
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            set_mode(mode);
            fake_install(fseed, crash_at, power ? KEEP_RANDOM : KEEP_ALL, power);
            child_work(p, &m, seed, nops, fds[1]);
            fake_crash(); /* after the close: still lose what was not fsynced */
        }
        close(fds[1]);
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
        int last = 0, last_hard = 0;
        bool closed = false;
        ack_t a;
        while (read(fds[0], &a, sizeof a) == sizeof a) {
            if (a.op < 0) {
                closed = true;
                continue;
            }
            last = a.op;
            if (a.level == H5A_COMMIT_HARD) last_hard = a.op;
        }
        close(fds[0]);
        bool allowed[64] = {false};
        if (power) {
            /* only HARD commits survive: the last acknowledged one, or a
             * later one done but not acknowledged (the close is one too) */
            model t;
            model_copy(&t, &m);
            uint64_t g = seed;
            for (int i = 1; i <= nops; i++) {
                op_t o = gen_op(&g, &t);
                apply_model(&t, &o);
                allowed[i] = i >= last_hard && (o.level == H5A_COMMIT_HARD || i == nops);
            }
            model_free(&t);
            allowed[0] = last_hard == 0;
            if (closed) {
                memset(allowed, 0, sizeof allowed);
                allowed[nops] = true;
            }
            machine++;
        } else if (!twice) {
            allowed[last] = !closed;
            if (last < nops) allowed[last + 1] = true;
            if (closed) allowed[nops] = true;
        } else {
            /* The recovery on the same boot replays every commit; a machine
             * crash during it leaves either those (if it had made them
             * durable) or the last HARD one. */
            for (int i = last_hard; i <= nops && i <= last + 1; i++) allowed[i] = !closed;
            if (closed) allowed[nops] = true;
            fflush(stdout);
            pid = fork();
            if (pid == 0) {
                fake_install(fseed ^ 1, crash_at2, KEEP_RANDOM, false);
                hid_t f = wal_open(p, H5F_ACC_RDWR);
                if (f >= 0) H5Fclose(f);
                fake_crash();
            }
            waitpid(pid, &st, 0);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
            doubled++;
            h5a_wal_set_sys(&other_boot_sys); /* the check runs after the reboot */
        }
        if (last == nops && !closed) at_close++;
        int j = check_round(p, &m, seed, nops, allowed, r % 50 == 49);
        h5a_wal_set_sys(NULL);
        if (j < 0) {
            fprintf(stderr,
                    "  round %d (%s, seed %llu/%llu, %d ops, crash at call %ld, acked %d, hard "
                    "%d%s, mode %d)\n",
                    r,
                    power   ? "machine"
                    : twice ? "process, then machine during recovery"
                            : "process",
                    (unsigned long long)seed,
                    (unsigned long long)fseed, nops, crash_at, last, last_hard,
                    closed ? ", closed" : "", mode);
            break;
        }
    }
    model_free(&m);
    with_userblock = wopt.file_id = false;
    printf("machine crash: %d rounds (%d machine, %d process at a system call, %d of them then "
           "a machine crash during the recovery; %d during the close)\n",
           n, machine, n - machine, doubled, at_close);
}

/* ---- 1: round trip ---- */

static int64_t *read_all(hid_t f, const char *name, size_t *cnt)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return NULL;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {1, 1};
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    *cnt = rank == 2 ? dims[0] * dims[1] : dims[0];
    int64_t *v = malloc((*cnt ? *cnt : 1) * sizeof *v);
    if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
    }
    H5Dclose(ds);
    return v;
}

static void test_round_trip(void)
{
    check_detail = "round trip";
    char p[512];
    path_in(p, sizeof p, "trip.h5");
    hid_t f = wal_create(p);
    CHECK(f >= 0);
    CHECK(wal_exists(p));
    model m;
    memset(&m, 0, sizeof m);
    /* a fixed sequence touching every kind of op, commits of both kinds */
    op_t ops[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_CREATE, 1, H5A_COMMIT_SOFT, true, 100, 0, 2},
        {OP_CREATE, 3, H5A_COMMIT_HARD, true, 10, 0, 3},
        {OP_APPEND, 1, H5A_COMMIT_SOFT, false, 500, 0, 4},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 10, 2000, 5},
        {OP_CREATE, 5, H5A_COMMIT_SOFT, false, 40000, 0, 6},
        {OP_DELETE, 0, H5A_COMMIT_HARD, false, 0, 0, 0},
        {OP_APPEND, 3, H5A_COMMIT_SOFT, false, 1000, 0, 7},
        {OP_CREATE, 0, H5A_COMMIT_SOFT, true, 7, 0, 8},
        {OP_CREATE, 4, H5A_COMMIT_SOFT, false, 5, 0, 9},
        {OP_DELGROUP, 5, H5A_COMMIT_SOFT, false, 0, 0, 0},
        {OP_OVERWRITE, 1, H5A_COMMIT_SOFT, false, 50, 550, 10},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        CHECK(apply_file(f, &m, &ops[i]) == 0);
        apply_model(&m, &ops[i]);
        CHECK(commit(f, ops[i].level) == 0);
        CHECK(digest_file(f) == digest_model(&m));
    }
    /* uncommitted changes are there for readers, and made durable by close */
    op_t more = {OP_APPEND, 1, H5A_COMMIT_SOFT, false, 77, 0, 11};
    CHECK(apply_file(f, &m, &more) == 0);
    apply_model(&m, &more);
    CHECK(digest_file(f) == digest_model(&m));
    CHECK(H5Fclose(f) >= 0);
    CHECK(!wal_exists(p));
    uint64_t want = digest_model(&m);

    f = wal_open(p, H5F_ACC_RDWR);
    CHECK(f >= 0 && digest_file(f) == want);
    h5a_wal_recovery rep;
    rep = last_rep;
    CHECK(!rep.found_log && rep.message[0] == '\0');
    CHECK(H5Fclose(f) >= 0);
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT); /* plain sec2 */
    CHECK(f >= 0 && digest_file(f) == want);
    H5Fclose(f);
    f = wal_open(p, H5F_ACC_RDONLY);
    CHECK(f >= 0 && digest_file(f) == want);
    CHECK(!wal_exists(p)); /* readers make no log */
    H5Fclose(f);
    CHECK(h5py_reads(p));
    /* h5py sees the exact values */
    size_t cnt = 0;
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t *v = read_all(f, "/d1", &cnt);
    H5Fclose(f);
    CHECK(v && cnt == m.d[1].n * COLS);
    if (v) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import h5py,sys\n"
                 "f=h5py.File(sys.argv[1],'r'); a=f['d1'][()]\n"
                 "sys.exit(0 if a.shape==(%zu,%d) and int(a[0,0])==%lld"
                 " and int(a[-1,-1])==%lld else 1)\" '%s'",
                 m.d[1].n, COLS, (long long)v[0], (long long)v[cnt - 1], p);
        CHECK(system(cmd) == 0);
    }
    free(v);

    /* past the memory limit, changed pages are spilled to the log and read
     * back from there, before and after the commit */
    check_detail = "round trip, spilling";
    set_limits(8 * 4096, 0, 0);
    f = wal_open(p, H5F_ACC_RDWR);
    op_t big = {OP_CREATE, 7, H5A_COMMIT_HARD, false, 200000, 0, 12};
    CHECK(apply_file(f, &m, &big) == 0);
    apply_model(&m, &big);
    CHECK(commit(f, H5A_COMMIT_HARD) == 0);
    for (uint64_t s = 0; s < 3; s++) {
        op_t ow = {OP_OVERWRITE, 7, H5A_COMMIT_SOFT, false, 1000 * s, 150000 + s, 20 + s};
        CHECK(apply_file(f, &m, &ow) == 0);
        apply_model(&m, &ow);
        CHECK(digest_file(f) == digest_model(&m));
        CHECK(commit(f, H5A_COMMIT_SOFT) == 0);
    }
    CHECK(digest_file(f) == digest_model(&m));
    CHECK(H5Fclose(f) >= 0);
    set_limits(0, 0, 0);
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0 && digest_file(f) == digest_model(&m));
    H5Fclose(f);

    /* commit refuses files of other drivers */
    check_detail = "round trip, other driver";
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(h5a_wal_commit(f, H5A_COMMIT_SOFT, err, sizeof err) == -1 && strstr(err, "h5a_wal"));
    H5Fclose(f);
    model_free(&m);
}

/* ---- 4: unit cases ---- */

/* A child does ops (each committed at its level) on a fresh file at p and
 * dies without closing; logsz[i] = size of the log after commit i. */
static model crash_after_commits(const char *p, op_t *ops, int n, long *logsz)
{
    model m;
    memset(&m, 0, sizeof m);
    fresh_file(p);
    int fds[2];
    if (pipe(fds) < 0) abort();
    fflush(stdout); /* a child must not repeat our buffered output */
    pid_t pid = fork();
    if (pid == 0) {
        hid_t f = wal_open(p, H5F_ACC_RDWR);
        char w[600];
        snprintf(w, sizeof w, "%s.wal", p);
        for (int i = 0; i < n; i++) {
            if (apply_file(f, &m, &ops[i]) < 0 || commit(f, ops[i].level) < 0) _exit(3);
            apply_model(&m, &ops[i]);
            struct stat st;
            stat(w, &st);
            long sz = (long)st.st_size;
            if (write(fds[1], &sz, sizeof sz) != sizeof sz) _exit(4);
        }
        _exit(0); /* as kill -9: no close */
    }
    close(fds[1]);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < n; i++) CHECK(read(fds[0], &logsz[i], sizeof logsz[i]) == sizeof logsz[i]);
    close(fds[0]);
    return m;
}

/* digest of the model after the first k ops */
static uint64_t prefix_digest(op_t *ops, int k)
{
    model m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < k; i++) apply_model(&m, &ops[i]);
    uint64_t d = digest_model(&m);
    model_free(&m);
    return d;
}

static uint64_t recovered_digest(const char *p, h5a_wal_recovery *rep)
{
    hid_t f = wal_open(p, H5F_ACC_RDWR);
    *rep = last_rep;
    if (f < 0) {
        fprintf(stderr, "  open failed: %s\n", h5_error());
        return 0;
    }
    uint64_t d = digest_file(f);
    if (H5Fclose(f) < 0) return 0;
    return d;
}

static void test_torn_tail(void)
{
    check_detail = "torn and garbage log tails";
    char p[512], w[600];
    path_in(p, sizeof p, "torn.h5");
    snprintf(w, sizeof w, "%s.wal", p);
    op_t ops[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 100, 1200, 2},
        {OP_CREATE, 1, H5A_COMMIT_SOFT, true, 50, 0, 3},
    };
    long logsz[3];
    model m = crash_after_commits(p, ops, 3, logsz);
    model_free(&m);
    size_t dn, ln;
    unsigned char *data = slurp(p, &dn), *log = slurp(w, &ln);
    CHECK(data && log && (long)ln == logsz[2]);
    h5a_wal_recovery rep;

    /* intact: all three commits */
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3));
    CHECK(rep.found_log && rep.same_boot && rep.commits == 3 && rep.dropped == 0);
    CHECK(strstr(rep.message, "process crash") != NULL);

    /* garbage appended after the last commit: ignored */
    unsigned char *g = malloc(ln + 9000);
    memcpy(g, log, ln);
    uint64_t s = 99;
    for (size_t i = ln; i < ln + 9000; i++) g[i] = (unsigned char)splitmix(&s);
    spit(p, data, dn);
    spit(w, g, ln + 9000);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3) && rep.commits == 3);

    /* the last commit record torn: the last commit is dropped */
    spit(p, data, dn);
    spit(w, log, ln - 20);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 2) && rep.commits == 2);

    /* a byte flipped in a page record of the last commit */
    spit(p, data, dn);
    memcpy(g, log, ln);
    g[logsz[1] + 200] ^= 0x40;
    spit(w, g, ln);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 2) && rep.commits == 2);

    /* everything after the first commit zeroed (blocks never written) */
    spit(p, data, dn);
    memcpy(g, log, ln);
    memset(g + logsz[0], 0, ln - (size_t)logsz[0]);
    spit(w, g, ln);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 1) && rep.commits == 1);

    /* a read-only open recovers too, and removes the log */
    spit(p, data, dn);
    spit(w, log, ln);
    hid_t f = wal_open(p, H5F_ACC_RDONLY);
    CHECK(f >= 0 && digest_file(f) == prefix_digest(ops, 3));
    rep = last_rep;
    CHECK(rep.found_log && rep.commits == 3);
    CHECK(!wal_exists(p));
    if (f >= 0) H5Fclose(f);

    /* a file created next to a stale log: the log belongs to the old file */
    check_detail = "file created next to a stale log";
    char q[512], qw[600];
    path_in(q, sizeof q, "newfile.h5");
    snprintf(qw, sizeof qw, "%s.wal", q);
    spit(qw, log, ln);
    f = wal_create(q);
    CHECK(f >= 0);
    rep = last_rep;
    CHECK(!rep.found_log);
    model e;
    memset(&e, 0, sizeof e);
    op_t one = {OP_CREATE, 2, H5A_COMMIT_SOFT, false, 10, 0, 50};
    CHECK(apply_file(f, &e, &one) == 0);
    apply_model(&e, &one);
    CHECK(H5Fclose(f) >= 0);
    CHECK(!wal_exists(q));
    CHECK(recovered_digest(q, &rep) == digest_model(&e) && !rep.found_log);
    /* ... also with H5F_ACC_EXCL on a new name */
    unlink(q);
    spit(qw, log, ln);
    f = H5Fcreate(q, H5F_ACC_EXCL, H5P_DEFAULT, fapl_wal());
    CHECK(f >= 0);
    if (f >= 0) H5Fclose(f);
    CHECK(!wal_exists(q));
    f = wal_open(q, H5F_ACC_RDONLY);
    CHECK(f >= 0 && digest_file(f) == digest_model(&(model){0}));
    if (f >= 0) H5Fclose(f);
    model_free(&e);

    /* an empty log, and one of garbage: nothing to replay, file intact */
    check_detail = "empty and garbage logs";
    spit(p, data, dn);
    spit(w, log, ln);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3)); /* a clean state */
    spit(w, (const unsigned char *)"", 0);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3));
    CHECK(rep.found_log && rep.commits == 0 && strstr(rep.message, "empty"));
    CHECK(!wal_exists(p));
    /* 512 zero bytes: a header that never reached the disk, nothing else */
    memset(g, 0, 512);
    spit(w, g, 512);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3));
    CHECK(rep.found_log && rep.commits == 0 && strstr(rep.message, "empty"));

    /* A damaged header (garbage, a log cut inside its first sector) may
     * hide commits: refused, until told to discard it (kept aside). */
    check_detail = "damaged log headers";
    char aside[700];
    snprintf(aside, sizeof aside, "%s.damaged", w);
    for (int cut = 0; cut < 2; cut++) {
        spit(p, data, dn);
        if (cut) spit(w, log, 300);
        else spit(w, g + 100, 3000);
        f = wal_open(p, H5F_ACC_RDWR);
        CHECK(f < 0 && strstr(h5_error(), "damaged header") != NULL);
        f = wal_open(p, H5F_ACC_RDONLY);
        CHECK(f < 0 && strstr(h5_error(), "wal_discard_damaged") != NULL);
        size_t n2;
        unsigned char *d2 = slurp(p, &n2);
        CHECK(d2 && n2 == dn && memcmp(d2, data, dn) == 0 && wal_exists(p));
        free(d2);
        wopt.discard_damaged = true;
        CHECK(recovered_digest(p, &rep) != 0); /* the last checkpoint's state */
        CHECK(rep.found_log && rep.commits == 0 && strstr(rep.message, "discarded"));
        CHECK(exists(aside) && !wal_exists(p));
        wopt.discard_damaged = false;
        unlink(aside);
    }
    free(g);
    free(data);
    free(log);
}

/* Crash policies for the generation cases. */
static const char *gen_log_path;
static bool drop_log_header(const shadow_t *s, const pend_t *p)
{
    return !(strcmp(s->path, gen_log_path) == 0 && p->data && p->off == 0);
}
static bool drop_log_truncate(const shadow_t *s, const pend_t *p)
{
    return !(strcmp(s->path, gen_log_path) == 0 && !p->data);
}

/* In a child with the fake: ops with their commits, then a crash that keeps
 * every pending write the policy keeps. Returns the child's exit status. */
static int crash_child(const char *p, op_t *ops, int n,
                       bool (*keep)(const shadow_t *, const pend_t *), bool other_boot,
                       uint64_t restart_at, uint64_t checkpoint_at)
{
    fflush(stdout); /* a child must not repeat our buffered output */
    pid_t pid = fork();
    if (pid == 0) {
        set_limits(0, restart_at, checkpoint_at);
        fake_install(5, 0, KEEP_CUSTOM, other_boot);
        fk.keep = keep;
        model m;
        memset(&m, 0, sizeof m);
        hid_t f = wal_open(p, H5F_ACC_RDWR);
        if (f < 0) _exit(3);
        for (int i = 0; i < n; i++) {
            if (apply_file(f, &m, &ops[i]) < 0 || commit(f, ops[i].level) < 0) _exit(4);
            apply_model(&m, &ops[i]);
        }
        fake_crash();
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_generations(void)
{
    char p[512], w[600];
    path_in(p, sizeof p, "gen.h5");
    snprintf(w, sizeof w, "%s.wal", p);
    gen_log_path = w;
    h5a_wal_recovery rep;

    /* The header of the next generation is not fsynced at a checkpoint. A
     * machine crash can keep the records written after it but lose the
     * header itself: the old header must not take those records (nor stop
     * short of its own last HARD commit, already in the data file). */
    check_detail = "future generation's records after an old header";
    op_t ops[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_CREATE, 1, H5A_COMMIT_HARD, true, 80, 0, 2},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 0, 2500, 3},
        {OP_APPEND, 1, H5A_COMMIT_SOFT, false, 90, 0, 4},
    };
    fresh_file(p);
    CHECK(crash_child(p, ops, 4, drop_log_header, true, 0, 1) == 42);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 2));
    CHECK(rep.found_log && !rep.same_boot && rep.commits == 2);

    /* A checkpoint that restarts the log at its top fsyncs the new header,
     * then truncates: if the truncation is lost, the old generation's
     * records follow the new header and must be ignored. */
    check_detail = "old generation's records after a new header";
    op_t ops2[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 5, 2900, 2},
        {OP_CREATE, 1, H5A_COMMIT_HARD, true, 80, 0, 3},
    };
    fresh_file(p);
    CHECK(crash_child(p, ops2, 3, drop_log_truncate, true, 1, 1) == 42);
    size_t ln;
    unsigned char *log = slurp(w, &ln);
    CHECK(log && ln > 3 * 4096); /* the old records are still there */
    free(log);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops2, 3));
    CHECK(rep.found_log && rep.commits == 0);
    fresh_file(p);
    CHECK(crash_child(p, ops2, 3, drop_log_truncate, false, 1, 1) == 42); /* same boot */
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops2, 3));
    CHECK(rep.found_log && rep.same_boot && rep.commits == 0);

    /* A machine crash drops soft commits that did reach the disk. */
    check_detail = "soft commits dropped after a machine crash";
    fresh_file(p);
    CHECK(crash_child(p, ops, 4, drop_log_truncate /* keeps every write */, true, 0, 1) == 42);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 2));
    CHECK(rep.found_log && !rep.same_boot && rep.commits == 0 && rep.dropped == 2);
    CHECK(strstr(rep.message, "machine crash") != NULL);

    /* Without a checkpoint at each HARD commit, one generation holds
     * several: a machine crash replays up to the last HARD one. */
    check_detail = "several HARD commits in one generation";
    op_t ops3[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_CREATE, 1, H5A_COMMIT_HARD, true, 80, 0, 2},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 0, 2500, 3},
        {OP_APPEND, 1, H5A_COMMIT_HARD, false, 90, 0, 4},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 7, 8, 5},
    };
    fresh_file(p);
    CHECK(crash_child(p, ops3, 5, drop_log_truncate, true, 0, 0) == 42);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops3, 4));
    CHECK(rep.found_log && !rep.same_boot && rep.commits == 4 && rep.dropped == 1);
    fresh_file(p);
    CHECK(crash_child(p, ops3, 5, drop_log_truncate, false, 0, 0) == 42); /* process crash */
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops3, 5));
    CHECK(rep.found_log && rep.same_boot && rep.commits == 5 && rep.dropped == 0);
}

static bool all_bytes(const unsigned char *b, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return false;
    return true;
}

/* Straight through the driver (H5FD calls): eof is logical, and bytes the
 * data file keeps past it (for a rollback) read as zeros once the file
 * grows over them again, as a new extension does with sec2. */
static void test_driver_level(void)
{
    check_detail = "driver level: logical eof";
    char p[512];
    path_in(p, sizeof p, "raw.h5");
    static unsigned char buf[8192];
    H5FD_t *d = H5FDopen(p, H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC, fapl_wal(), HADDR_MAX);
    CHECK(d != NULL);
    if (!d) return;
    memset(buf, 0xAB, sizeof buf);
    CHECK(H5FDset_eoa(d, H5FD_MEM_DEFAULT, 8192) >= 0);
    CHECK(H5FDwrite(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, 8192, buf) >= 0);
    CHECK(H5FDclose(d) >= 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == 8192 && !wal_exists(p));

    d = H5FDopen(p, H5F_ACC_RDWR, fapl_wal(), HADDR_MAX);
    CHECK(d != NULL);
    if (!d) return;
    CHECK(H5FDget_eof(d, H5FD_MEM_DEFAULT) == 8192);
    H5FDset_eoa(d, H5FD_MEM_DEFAULT, 100);
    CHECK(H5FDtruncate(d, H5P_DEFAULT, 0) >= 0 && H5FDget_eof(d, H5FD_MEM_DEFAULT) == 100);
    CHECK(stat(p, &st) == 0 && st.st_size == 8192); /* kept: the committed state */
    H5FDset_eoa(d, H5FD_MEM_DEFAULT, 8192);
    CHECK(H5FDtruncate(d, H5P_DEFAULT, 0) >= 0 && H5FDget_eof(d, H5FD_MEM_DEFAULT) == 8192);
    memset(buf, 1, sizeof buf);
    CHECK(H5FDread(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, 8192, buf) >= 0);
    CHECK(all_bytes(buf, 100, 0xAB) && all_bytes(buf + 100, 8092, 0));
    /* shrink again, then a write past eof leaves a gap of zeros */
    H5FDset_eoa(d, H5FD_MEM_DEFAULT, 50);
    CHECK(H5FDtruncate(d, H5P_DEFAULT, 0) >= 0);
    H5FDset_eoa(d, H5FD_MEM_DEFAULT, 8192);
    memset(buf, 0xCD, 100);
    CHECK(H5FDwrite(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 6000, 100, buf) >= 0);
    CHECK(H5FDget_eof(d, H5FD_MEM_DEFAULT) == 6100);
    memset(buf, 1, sizeof buf);
    CHECK(H5FDread(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, 8192, buf) >= 0);
    CHECK(all_bytes(buf, 50, 0xAB) && all_bytes(buf + 50, 5950, 0) &&
          all_bytes(buf + 6000, 100, 0xCD) && all_bytes(buf + 6100, 2092, 0));
    CHECK(H5FDclose(d) >= 0);
    size_t n = 0;
    unsigned char *img = slurp(p, &n);
    CHECK(img && n == 6100 && all_bytes(img, 50, 0xAB) && all_bytes(img + 50, 5950, 0) &&
          all_bytes(img + 6000, 100, 0xCD));
    free(img);
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Bytes b[i] = (i * 7 + tag) % 251 at [0, n): a pattern per tag. */
static void pattern(unsigned char *b, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)((i * 7 + tag) % 251);
}

static bool is_pattern(const unsigned char *b, size_t n, size_t from, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(((from + i) * 7 + tag) % 251)) return false;
    return true;
}

/* A write of direct_bytes or more over committed pages goes to the log as
 * it happens (no page copies held for the commit); reads see it, a close
 * checkpoints it, a crash before its commit drops it; after a checkpoint
 * a rewrite of the same bytes logs nothing (it is compared first). */
static void test_direct_rewrite(void)
{
    check_detail = "large rewrites logged straight from the write";
    set_limits(0, 0, 0);
    char p[512], w[520];
    path_in(p, sizeof p, "direct.h5");
    snprintf(w, sizeof w, "%s.wal", p);
    const size_t n = (3u << 20) + 100, at = 4096 + 10;
    unsigned char *a = malloc(n), *b = malloc(n), *got = malloc(n);
    pattern(a, n, 1);
    pattern(b, n, 2);
    H5FD_t *d = H5FDopen(p, H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC, fapl_wal(), HADDR_MAX);
    CHECK(d != NULL);
    if (!d) goto out;
    CHECK(H5FDset_eoa(d, H5FD_MEM_DEFAULT, n) >= 0);
    CHECK(H5FDwrite(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, n, a) >= 0);
    CHECK(H5FDclose(d) >= 0);

    /* a crash before the commit: the records are in the log, uncommitted */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        H5FD_t *c = H5FDopen(p, H5F_ACC_RDWR, fapl_wal(), HADDR_MAX);
        if (!c || H5FDset_eoa(c, H5FD_MEM_DEFAULT, n) < 0 ||
            H5FDwrite(c, H5FD_MEM_DEFAULT, H5P_DEFAULT, at, n - at, b + at) < 0)
            _exit(1);
        _exit(file_size(w) >= (n - at) / H5A_WAL_PAGE * H5A_WAL_PAGE ? 0 : 2);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    d = H5FDopen(p, H5F_ACC_RDWR, fapl_wal(), HADDR_MAX);
    CHECK(d != NULL);
    if (!d) goto out;
    CHECK(H5FDset_eoa(d, H5FD_MEM_DEFAULT, n) >= 0);
    CHECK(H5FDread(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, n, got) >= 0 && memcmp(got, a, n) == 0);

    /* the same write here: logged before any commit, read back through the log */
    uint64_t before = file_size(w);
    CHECK(H5FDwrite(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, at, n - at, b + at) >= 0);
    CHECK(file_size(w) >= before + (n - at) / H5A_WAL_PAGE * H5A_WAL_PAGE);
    CHECK(H5FDread(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, 0, n, got) >= 0);
    CHECK(memcmp(got, a, at) == 0 && is_pattern(got + at, n - at, at, 2));
    CHECK(H5FDclose(d) >= 0);
    size_t len = 0;
    unsigned char *img = slurp(p, &len);
    CHECK(img && len == n && memcmp(img, a, at) == 0 && is_pattern(img + at, n - at, at, 2));
    free(img);

    /* checkpointed: the same bytes again change no page, and log none */
    d = H5FDopen(p, H5F_ACC_RDWR, fapl_wal(), HADDR_MAX);
    CHECK(d != NULL);
    if (!d) goto out;
    CHECK(H5FDset_eoa(d, H5FD_MEM_DEFAULT, n) >= 0);
    before = file_size(w);
    CHECK(H5FDwrite(d, H5FD_MEM_DEFAULT, H5P_DEFAULT, at, n - at, b + at) >= 0);
    CHECK(file_size(w) == before);
    CHECK(H5FDclose(d) >= 0);
out:
    free(a), free(b), free(got);
}

static bool keep_nothing(const shadow_t *s, const pend_t *p)
{
    (void)s;
    (void)p;
    return false;
}

/* A recovery after a process crash replays SOFT commits into the data
 * file. If the machine dies right after, before the log is reset, the next
 * recovery runs on another boot, where SOFT commits normally do not count:
 * it must still replay them, or the file mixes both states. */
static void test_crash_during_recovery(void)
{
    check_detail = "machine crash during a recovery";
    char p[512];
    path_in(p, sizeof p, "twice.h5");
    op_t ops[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_CREATE, 1, H5A_COMMIT_HARD, true, 80, 0, 2},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 0, 2500, 3},
        {OP_APPEND, 1, H5A_COMMIT_SOFT, false, 90, 0, 4},
    };
    long logsz[4];
    set_limits(0, 0, 1000000); /* keep the HARD commit in the log */
    model m = crash_after_commits(p, ops, 4, logsz);
    set_limits(0, 0, 0);
    model_free(&m);
    fflush(stdout); /* a child must not repeat our buffered output */
    pid_t pid = fork();
    if (pid == 0) {
        fake_install(9, 0, KEEP_CUSTOM, false);
        fk.keep = keep_nothing;
        fk.crash_after_sync_of = p;
        wal_open(p, H5F_ACC_RDWR); /* recovers, dies at the data file's fsync */
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
    h5a_wal_recovery rep;
    h5a_wal_set_sys(&other_boot_sys);
    CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 4));
    h5a_wal_set_sys(NULL);
    CHECK(rep.found_log && !rep.same_boot && rep.commits == 4);
}

static void test_second_open(void)
{
    check_detail = "second open";
    char p[512];
    path_in(p, sizeof p, "busy.h5");
    fresh_file(p);
    hid_t f = wal_open(p, H5F_ACC_RDWR);
    CHECK(f >= 0);
    fflush(stdout); /* a child must not repeat our buffered output */
    pid_t pid = fork();
    if (pid == 0) {
        char who[64]; /* flock does not say; the driver finds the holder */
        snprintf(who, sizeof who, "locked by another process (pid %d", (int)getppid());
        hid_t g = wal_open(p, H5F_ACC_RDWR);
        const char *e = g < 0 ? h5_error() : "";
        bool rw_refused = strstr(e, "is in use") && strstr(e, who);
        if (!rw_refused) fprintf(stderr, "  second open: %s\n", e);
        g = wal_open(p, H5F_ACC_RDONLY);
        bool ro_refused = g < 0 && strstr(h5_error(), who);
        _exit(rw_refused && ro_refused ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    hid_t g = wal_open(p, H5F_ACC_RDWR); /* this process, another handle */
    CHECK(g < 0 && strstr(h5_error(), "is in use: locked by this process"));
    CHECK(H5Fclose(f) >= 0);
    g = wal_open(p, H5F_ACC_RDWR);
    CHECK(g >= 0);
    if (g >= 0) H5Fclose(g);
}

/* ---- the log names its file ---- */

/* digest of the file through plain sec2 (no driver, no recovery) */
static uint64_t sec2_digest(const char *p)
{
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    uint64_t d = digest_file(f);
    H5Fclose(f);
    return d;
}

/* A file with one committed dataset (closed), its digest. */
static uint64_t other_file(const char *q, int seed)
{
    model e;
    memset(&e, 0, sizeof e);
    op_t one = {OP_CREATE, 2, H5A_COMMIT_HARD, false, 10, 0, seed};
    hid_t f = wal_create(q);
    CHECK(f >= 0 && apply_file(f, &e, &one) == 0);
    apply_model(&e, &one);
    CHECK(commit(f, H5A_COMMIT_HARD) == 0 && H5Fclose(f) >= 0);
    uint64_t d = digest_model(&e);
    model_free(&e);
    return d;
}

static bool stamped(const char *p, uint64_t *id)
{
    size_t n = 0;
    unsigned char *b = slurp(p, &n);
    bool ok = b && n >= 24 && memcmp(b, "H5AFILE\n", 8) == 0;
    if (ok) memcpy(id, b + 16, 8);
    free(b);
    return ok;
}

/* A log left by a crash, next to another file of the same name, is never
 * replayed into it: by the file's first page when it has no id, by its id
 * when it has one. */
static void test_identity(void)
{
    op_t ops[] = {
        {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 3000, 0, 1},
        {OP_CREATE, 1, H5A_COMMIT_HARD, true, 100, 0, 2},
        {OP_OVERWRITE, 0, H5A_COMMIT_SOFT, false, 10, 2000, 3},
    };
    for (int ids = 0; ids < 2; ids++) {
        check_detail = ids ? "a log next to another file, both with ids"
                           : "a log next to another file without an id";
        with_userblock = wopt.file_id = ids;
        char p[512], w[600], q[512], qw[600];
        path_in(p, sizeof p, ids ? "id-a.h5" : "noid-a.h5");
        path_in(q, sizeof q, ids ? "id-b.h5" : "noid-b.h5");
        snprintf(w, sizeof w, "%s.wal", p);
        snprintf(qw, sizeof qw, "%s.wal", q);
        long logsz[3];
        model m = crash_after_commits(p, ops, 3, logsz);
        model_free(&m);
        uint64_t want = other_file(q, 40);
        uint64_t ida = 0, idb = 0;
        CHECK(stamped(p, &ida) == (bool)ids && stamped(q, &idb) == (bool)ids);
        CHECK(!ids || ida != idb);
        size_t ln;
        unsigned char *log = slurp(w, &ln);
        spit(qw, log, ln);
        free(log);
        hid_t f = wal_open(q, H5F_ACC_RDWR);
        const char *e = f < 0 ? h5_error() : "";
        CHECK(f < 0 && strstr(e, "is not the log of") && strstr(e, "move the log away"));
        CHECK(!ids || strstr(e, "written for the file with id"));
        CHECK(ids || strstr(e, "first page"));
        f = wal_open(q, H5F_ACC_RDONLY);
        CHECK(f < 0 && strstr(h5_error(), "is not the log of"));
        CHECK(wal_exists(q) && sec2_digest(q) == want); /* both left alone */
        unlink(qw);
        h5a_wal_recovery rep;
        CHECK(recovered_digest(p, &rep) == prefix_digest(ops, 3)); /* its own file: fine */
        CHECK(rep.found_log && rep.commits == 3);
        CHECK(!ids || (stamped(p, &idb) && idb == ida)); /* the id stays */
        if (ids) CHECK(h5py_reads(p));
    }
    /* a file without room for an id opens as before, and gets none */
    check_detail = "a file without a userblock, ids asked for";
    char r[512];
    path_in(r, sizeof r, "no-room.h5");
    with_userblock = false;
    uint64_t want = other_file(r, 41);
    wopt.file_id = true;
    hid_t f = wal_open(r, H5F_ACC_RDWR);
    CHECK(f >= 0 && digest_file(f) == want);
    CHECK(commit(f, H5A_COMMIT_HARD) == 0 && H5Fclose(f) >= 0);
    uint64_t id;
    CHECK(!stamped(r, &id) && sec2_digest(r) == want);
    wopt.file_id = false;
}

/* The log is never reached through a symbolic link: writing there would
 * change whatever it points to. */
static void test_log_symlink(void)
{
    check_detail = "a log that is a symbolic link";
    char p[512], w[600], v[512];
    path_in(p, sizeof p, "sym.h5");
    path_in(v, sizeof v, "victim.bin");
    snprintf(w, sizeof w, "%s.wal", p);
    fresh_file(p);
    uint64_t want = sec2_digest(p);
    static const unsigned char precious[] = "precious bytes, not a log";
    spit(v, precious, sizeof precious);
    CHECK(symlink(v, w) == 0);
    hid_t f = wal_open(p, H5F_ACC_RDWR);
    CHECK(f < 0 && strstr(h5_error(), "symbolic link"));
    f = wal_open(p, H5F_ACC_RDONLY);
    CHECK(f < 0 && strstr(h5_error(), "symbolic link"));
    f = wal_create(p); /* not even to create the file anew */
    CHECK(f < 0 && strstr(h5_error(), "symbolic link"));
    size_t n;
    unsigned char *b = slurp(v, &n);
    CHECK(b && n == sizeof precious && memcmp(b, precious, n) == 0);
    free(b);
    CHECK(sec2_digest(p) == want);
    unlink(w);
}

/* The path deleted or replaced while the file is open: commits fail with
 * H5A_WAL_E_GONE from then on, a second opener is refused by the log's
 * lock, and the close still completes the file held. */
static void test_path_replaced(void)
{
    char p[512], w[600], moved[512], other[512];
    path_in(p, sizeof p, "held.h5");
    path_in(moved, sizeof moved, "held-moved.h5");
    path_in(other, sizeof other, "replacement.h5");
    snprintf(w, sizeof w, "%s.wal", p);
    for (int how = 0; how < 3; how++) {
        check_detail = how == 0   ? "file renamed away and replaced while open"
                       : how == 1 ? "file deleted while open"
                                  : "log deleted while open";
        fresh_file(p);
        model m;
        memset(&m, 0, sizeof m);
        op_t one = {OP_CREATE, 0, H5A_COMMIT_SOFT, false, 300, 0, 1};
        op_t two = {OP_CREATE, 1, H5A_COMMIT_HARD, false, 30, 0, 2};
        hid_t f = wal_open(p, H5F_ACC_RDWR);
        CHECK(f >= 0 && apply_file(f, &m, &one) == 0 && commit(f, H5A_COMMIT_SOFT) == 0);
        apply_model(&m, &one);
        uint64_t want_other = 0;
        if (how == 0) {
            CHECK(rename(p, moved) == 0);
            want_other = other_file(other, 42);
            CHECK(rename(other, p) == 0);
        } else if (how == 1) {
            CHECK(unlink(p) == 0);
        } else {
            CHECK(unlink(w) == 0);
        }
        CHECK(apply_file(f, &m, &two) == 0);
        apply_model(&m, &two);
        CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0);
        for (int i = 0; i < 2; i++) { /* and it stays so */
            int rc = h5a_wal_commit(f, H5A_COMMIT_HARD, err, sizeof err);
            CHECK(rc == H5A_WAL_E_GONE && strstr(err, "deleted or replaced"));
        }
        if (how == 0) {
            fflush(stdout); /* a child must not repeat our buffered output */
            pid_t pid = fork();
            if (pid == 0) {
                char who[64];
                snprintf(who, sizeof who, "locked by another process (pid %d", (int)getppid());
                hid_t g = wal_open(p, H5F_ACC_RDWR);
                const char *e = g < 0 ? h5_error() : "";
                if (!strstr(e, who)) fprintf(stderr, "  open after the rename: %s\n", e);
                _exit(strstr(e, who) ? 0 : 1);
            }
            int st;
            waitpid(pid, &st, 0);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        CHECK(H5Fclose(f) >= 0); /* everything into the file held */
        if (how == 0) {
            CHECK(sec2_digest(moved) == digest_model(&m));
            CHECK(sec2_digest(p) == want_other && !wal_exists(p));
            unlink(moved);
        } else if (how == 1) {
            CHECK(!exists(p) && !wal_exists(p));
        } else {
            CHECK(sec2_digest(p) == digest_model(&m) && !wal_exists(p));
        }
        model_free(&m);
    }
}

/* ---- benchmark: what a commit costs after a small append ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench(void)
{
    char p[512];
    path_in(p, sizeof p, "bench.h5");
    hid_t f = wal_create(p);
    hsize_t dims[2] = {0, 16}, maxd[2] = {H5S_UNLIMITED, 16}, chunk[2] = {2048, 16};
    hid_t sp = H5Screate_simple(2, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t ds = H5Dcreate2(f, "x", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Sclose(sp);
    H5Pclose(dcpl);
    commit(f, H5A_COMMIT_HARD);
    double row[16] = {0};
    hsize_t n = 0;
    enum { SOFT_N = 1000, HARD_N = 100 };
    static double flush_t[SOFT_N + HARD_N], soft_t[SOFT_N], hard_t[HARD_N];
    for (int i = 0; i < SOFT_N + HARD_N; i++) {
        hsize_t ext[2] = {n + 1, 16}, off[2] = {n, 0}, cnt[2] = {1, 16};
        H5Dset_extent(ds, ext);
        hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(2, cnt, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        row[0] = (double)i;
        H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, row);
        H5Sclose(fs);
        H5Sclose(ms);
        n++;
        double t0 = now_us();
        H5Fflush(f, H5F_SCOPE_GLOBAL);
        double t1 = now_us();
        bool hard = i >= SOFT_N;
        h5a_wal_commit(f, hard ? H5A_COMMIT_HARD : H5A_COMMIT_SOFT, err, sizeof err);
        double t2 = now_us();
        flush_t[i] = t1 - t0;
        if (hard) hard_t[i - SOFT_N] = t2 - t1;
        else soft_t[i] = t2 - t1;
    }
    H5Dclose(ds);
    H5Fclose(f);
    qsort(flush_t, SOFT_N + HARD_N, sizeof(double), cmp_double);
    qsort(soft_t, SOFT_N, sizeof(double), cmp_double);
    qsort(hard_t, HARD_N, sizeof(double), cmp_double);
    printf("bench (append 1x16 f8, then H5Fflush, then commit; medians / p90): H5Fflush %.1f / "
           "%.1f us, SOFT commit %.1f / %.1f us, HARD commit %.0f / %.0f us\n",
           flush_t[(SOFT_N + HARD_N) / 2], flush_t[(SOFT_N + HARD_N) * 9 / 10],
           soft_t[SOFT_N / 2], soft_t[SOFT_N * 9 / 10], hard_t[HARD_N / 2],
           hard_t[HARD_N * 9 / 10]);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void bench_unless_skipped(void)
{
    if (!getenv("H5A_WAL_NO_BENCH")) bench();
}

static const check_test tests[] = {
    CHECK_TEST(test_round_trip),
    CHECK_TEST(test_torn_tail),
    CHECK_TEST(test_generations),
    CHECK_TEST(test_second_open),
    CHECK_TEST(test_driver_level),
    CHECK_TEST(test_direct_rewrite),
    CHECK_TEST(test_crash_during_recovery),
    CHECK_TEST(test_identity),
    CHECK_TEST(test_log_symlink),
    CHECK_TEST(test_path_replaced),
    CHECK_TEST(test_aux_records),
    CHECK_TEST(test_process_crash),
    CHECK_TEST(test_machine_crash),
    {"bench", bench_unless_skipped},
};

int main(int argc, char **argv)
{
    check_select(argc, argv, tests, CHECK_COUNT(tests));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(dir, sizeof dir, "/tmp/test_wal.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    other_boot_sys = *h5a_wal_real_sys();
    other_boot_sys.boot_id = other_boot_id;
    double t0 = now_us();
    check_run();
    if (check_failed == 0) cleanup();
    else fprintf(stderr, "files kept in %s\n", dir);
    fprintf(stderr, "(%.1f s)\n", (now_us() - t0) / 1e6);
    return check_summary();
}
