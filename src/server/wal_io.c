/* h5a_wal, bottom layer (see wal_int.h): the system calls the driver makes,
 * through a table a test can replace to simulate crashes; reads and writes
 * that finish; the log's little-endian fields and its checksum; random
 * numbers for generations. Knows nothing of pages or logs. */
#include "server/wal_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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

static const h5a_wal_sys real_sys = {real_open, close,  pread,  pwrite,       fdatasync,
                                     fsync,     ftruncate, fstat, flock, unlink, real_boot_id,
                                     stat,      rename, pwritev};
const h5a_wal_sys *S = &real_sys;

void h5a_wal_set_sys(const h5a_wal_sys *sys)
{
    S = sys ? sys : &real_sys;
}

const h5a_wal_sys *h5a_wal_real_sys(void)
{
    return &real_sys;
}

/* ---- little-endian fields and the checksum ---- */

void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Same primes and mixing as XXH64; not meant to match its outputs. */
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

uint64_t hash64(const void *data, size_t n, uint64_t seed)
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

uint64_t random64(void)
{
    static _Atomic uint64_t counter;
    unsigned char b[32] = {0};
    /* the kernel's randomness when it has it; the clock, pid and a counter
     * make the number differ from any earlier one anyway */
    if (getrandom(b + 24, 8, GRND_NONBLOCK) != 8) memset(b + 24, 0, 8);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    put64(b, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    put64(b + 8, (uint64_t)getpid());
    put64(b + 16, ++counter);
    return hash64(b, sizeof b, 0);
}

/* ---- raw I/O ---- */

int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got)
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

/* errno of the last write that failed (h5a_wal_take_write_errno): the
 * storage thread tells a full disk from other failures by it. One thread
 * does all the I/O, so one variable. */
static int last_write_errno;

int h5a_wal_take_write_errno(void)
{
    int e = last_write_errno;
    last_write_errno = 0;
    return e;
}

int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = S->pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            last_write_errno = errno;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    if (!S->pwritev) {
        for (int i = 0; i < n; off += iov[i].iov_len, i++)
            if (pwrite_all(fd, iov[i].iov_base, iov[i].iov_len, off) < 0) return -1;
        return 0;
    }
    while (n > 0) {
        ssize_t k = S->pwritev(fd, iov, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            last_write_errno = errno;
            return -1;
        }
        /* a short write: step over what went out, then go on */
        size_t done = (size_t)k;
        off += done;
        for (; n > 0 && done >= iov->iov_len; iov++, n--) done -= iov->iov_len;
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

int sync_retry(int (*fn)(int), int fd)
{
    int rc;
    do rc = fn(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}

int h5a_wal_fsync_dir(const char *path)
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

/* flock() does not say who holds a lock; /proc/locks does (Linux): the pid
 * that took each lock, by device and inode. */
void lock_holder(int fd, char *out, size_t n)
{
    struct stat st;
    snprintf(out, n, "another process (the system does not say which)");
    if (fstat(fd, &st) < 0) return;
    FILE *fp = fopen("/proc/locks", "r");
    if (!fp) return;
    char line[256];
    long pid = -1;
    while (fgets(line, sizeof line, fp)) {
        char kind[16];
        long p;
        unsigned maj, min;
        unsigned long long ino;
        /* "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"; lines of
         * waiters have "->" where the kind is */
        if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", kind, &p, &maj, &min, &ino) != 5)
            continue;
        if (strcmp(kind, "FLOCK") != 0 || ino != (unsigned long long)st.st_ino ||
            maj != major(st.st_dev) || min != minor(st.st_dev))
            continue;
        pid = p;
        break;
    }
    fclose(fp);
    if (pid == (long)getpid()) {
        snprintf(out, n, "this process (already open here)");
    } else if (pid > 0) {
        char comm[64] = "", path[64];
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        FILE *cf = fopen(path, "r");
        if (cf) {
            if (!fgets(comm, sizeof comm, cf)) comm[0] = '\0';
            fclose(cf);
            comm[strcspn(comm, "\n")] = '\0';
        }
        snprintf(out, n, "another process (pid %ld%s%s)", pid, comm[0] ? ", " : "", comm);
    }
}
