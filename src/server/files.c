/* The table of open files (files.h): which files under data_root are
 * open, each with its own engine; the checks that keep a request's `file`
 * inside the root; opening on demand, closing the least recently used.
 *
 * It exists so that storage.c stays about order and commits, and the
 * engine about one file: this module is the only one that knows there are
 * many. Storage thread only. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "server/files.h"

#include <hdf5.h>

#include "server/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct h5a_files {
    const h5a_config *cfg;
    char root[PATH_MAX]; /* data_root, resolved (realpath); "" when none */
    /* file_path relative to the root: what a request without `file` names
     * (NULL when file_path is the pinned file, or there is no root) */
    const char *default_name;
    h5a_file **v;
    size_t n, cap;
    uint64_t tick;
    h5a_engine *bare;
};

bool h5a_files_op_needs_file(h5a_op op)
{
    return op != OP_PING && op != OP_AUTH && op != OP_LIST_FILES && op < OP_NONE;
}

bool h5a_files_op_creates(h5a_op op)
{
    switch (op) {
    case OP_CREATE_GROUP:
    case OP_WRITE:
    case OP_APPEND:
    case OP_CREATE_DATASET:
    case OP_SET_ATTR:
    case OP_CREATE_LINK:
    case OP_CREATE_VIRTUAL:
    case OP_BATCH: /* when it fails, the file made for it is removed again */
        return true;
    default:
        return false;
    }
}

static int add_entry(h5a_files *fs, h5a_file *f)
{
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 16;
        h5a_file **v = realloc(fs->v, cap * sizeof *v);
        if (!v) return -1;
        fs->v = v;
        fs->cap = cap;
    }
    fs->v[fs->n++] = f;
    return 0;
}

static void remove_entry(h5a_files *fs, h5a_file *f)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->v[i] == f) {
            fs->v[i] = fs->v[--fs->n];
            break;
        }
    free(f->name);
    free(f);
}

/* ---- recovery at start ---- */

/* A log left next to a file means the server died with it open: replay it
 * now (open, then a clean close checkpoints the file and removes the log),
 * so that every file under the root holds its acknowledged writes for any
 * reader, h5py included, not only once a request opens it again. */
static h5a_files *recovering;
static size_t recovered, unrecoverable;

static int recover_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    h5a_files *fs = recovering;
    size_t n = strlen(path), rootlen = strlen(fs->root);
    if (type != FTW_F || n < 4 || strcmp(path + n - 4, ".wal") != 0 || n <= rootlen + 5)
        return 0;
    char name[H5A_MAX_FILE_NAME + 8], why[1024];
    snprintf(name, sizeof name, "%.*s", (int)(n - rootlen - 1 - 4), path + rootlen + 1);
    if (h5a_file_name_validate(name, strlen(name), why, sizeof why)) return 0; /* .compact's */
    if (!h5a_cluster_mine(fs->cfg, name)) return 0; /* its own node replays it */
    char data[PATH_MAX + H5A_MAX_FILE_NAME + 2];
    snprintf(data, sizeof data, "%.*s", (int)(n - 4), path);
    struct stat ds;
    if (lstat(data, &ds) != 0 || !S_ISREG(ds.st_mode)) return 0;
    h5a_engine *e;
    bool missing;
    if (h5a_engine_open_path(&e, fs->cfg, data, false, &missing, why, sizeof why) == 0) {
        h5a_engine_close(e);
        recovered++;
    } else if (!missing) {
        fprintf(stderr, "hdf5-async-server: cannot recover '%s' now (a request will try again): %s\n",
                name, why);
        unrecoverable++;
    }
    return 0;
}

static void recover_leftovers(h5a_files *fs)
{
    recovering = fs;
    recovered = unrecoverable = 0;
    nftw(fs->root, recover_one, 16, FTW_PHYS);
    recovering = NULL;
    if (recovered)
        fprintf(stderr, "hdf5-async-server: %zu file(s) under the data root replayed their logs\n",
                recovered);
}

int h5a_files_start(h5a_files **out, const h5a_config *cfg, char *err, size_t errlen)
{
    h5a_files *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->bare = h5a_engine_bare(cfg))) {
        free(fs);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    fs->cfg = cfg;
    if (cfg->data_root[0]) {
        struct stat st;
        if (!realpath(cfg->data_root, fs->root) || stat(fs->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "data_root '%s' is not a folder: %s", cfg->data_root,
                     errno ? strerror(errno) : "not a directory");
            h5a_files_close(fs);
            return -1;
        }
        if (cfg->file_path[0] != '/') {
            char why[512];
            if (h5a_file_name_validate(cfg->file_path, strlen(cfg->file_path), why, sizeof why)) {
                snprintf(err, errlen, "hdf5_file_path '%s' cannot name a file under data_root: %s",
                         cfg->file_path, why);
                h5a_files_close(fs);
                return -1;
            }
            fs->default_name = cfg->file_path;
        }
        recover_leftovers(fs);
    }
    if (!fs->default_name) {
        /* the one file of a server without data_root (or outside it): opened
         * (created) at start, as always */
        h5a_file *f = calloc(1, sizeof *f);
        if (!f || add_entry(fs, f)) {
            free(f);
            h5a_files_close(fs);
            return snprintf(err, errlen, "out of memory"), -1;
        }
        f->pinned = true;
        if (h5a_engine_open(&f->eng, cfg, err, errlen)) {
            h5a_files_close(fs);
            return -1;
        }
    }
    *out = fs;
    return 0;
}

void h5a_files_close(h5a_files *fs)
{
    if (!fs) return;
    while (fs->n) {
        h5a_file *f = fs->v[fs->n - 1];
        h5a_engine_close(f->eng);
        remove_entry(fs, f);
    }
    free(fs->v);
    h5a_engine_close(fs->bare);
    free(fs);
}

h5a_engine *h5a_files_bare(h5a_files *fs) { return fs->bare; }

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool h5a_files_any_closable(const h5a_files *fs)
{
    if (!fs->cfg->file_idle_close) return false; /* never closed for idleness */
    for (size_t i = 0; i < fs->n; i++)
        if (!fs->v[i]->pinned && !fs->v[i]->commit_failed) return true;
    return false;
}

void h5a_files_close_idle(h5a_files *fs)
{
    if (!fs->cfg->file_idle_close) return;
    uint64_t idle_ns = fs->cfg->file_idle_close * 1000000000ull;
    uint64_t now = mono_ns();
    for (size_t i = 0; i < fs->n;) {
        h5a_file *f = fs->v[i];
        char why[1024];
        if (f->pinned || f->commit_failed || now - f->last_ns < idle_ns) {
            i++;
            continue;
        }
        if (!f->gone && h5a_engine_commit(f->eng, H5A_DUR_FSYNC, why, sizeof why) != 0) {
            fprintf(stderr, "hdf5-async-server: cannot close '%s' (idle) yet: %s\n", f->name, why);
            f->commit_failed = true; /* the background commits retry it */
            i++;
            continue;
        }
        h5a_engine_close(f->eng);
        remove_entry(fs, f); /* the last entry takes index i */
    }
}

const char *h5a_files_space_dir(const h5a_files *fs)
{
    return fs->root[0] ? fs->root : NULL;
}

h5a_file *h5a_files_at(h5a_files *fs, size_t i) { return i < fs->n ? fs->v[i] : NULL; }

h5a_file *h5a_files_find(h5a_files *fs, const char *name)
{
    if (!name) name = fs->default_name;
    for (size_t i = 0; i < fs->n; i++) {
        h5a_file *f = fs->v[i];
        if (name ? f->name && strcmp(f->name, name) == 0 : f->pinned) return f;
    }
    return NULL;
}

/* Close the least recently used file that is not pinned, after making it
 * durable; a file whose commit fails stays open (its changes are kept
 * pending) and the next one is tried. */
static void evict_one(h5a_files *fs)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        h5a_file *lru = NULL;
        for (size_t i = 0; i < fs->n; i++) {
            h5a_file *f = fs->v[i];
            if (f->pinned || f->commit_failed) continue;
            if (!lru || f->used < lru->used) lru = f;
        }
        if (!lru) return;
        char why[1024];
        if (!lru->gone && h5a_engine_commit(lru->eng, H5A_DUR_FSYNC, why, sizeof why) != 0) {
            fprintf(stderr, "hdf5-async-server: cannot close '%s' (idle) yet: %s\n", lru->name,
                    why);
            lru->commit_failed = true; /* skipped until a commit succeeds again */
            continue;
        }
        h5a_engine_close(lru->eng);
        remove_entry(fs, lru);
        return;
    }
}

/* Walk name's folders from the root without following symlinks. Returns 0
 * with *missing_from = the index of the first missing folder component
 * (ncomp when every folder exists) and *file_exists; or an error code. */
static int check_name(h5a_files *fs, const char *name, int *missing_dirs, bool *file_exists,
                      h5a_err *err)
{
    char buf[H5A_MAX_FILE_NAME + 1];
    snprintf(buf, sizeof buf, "%s", name);
    *missing_dirs = 0;
    *file_exists = false;
    int dfd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return h5a_err_set(err, H5A_E_INTERNAL, "cannot open the data root: %s", strerror(errno));
    char *comp = buf, *slash;
    while ((slash = strchr(comp, '/'))) {
        *slash = '\0';
        if (*missing_dirs) {
            (*missing_dirs)++;
        } else {
            int fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT) {
                *missing_dirs = 1;
            } else if (fd < 0) {
                int e = errno;
                close(dfd);
                return h5a_err_set(err, H5A_E_BAD_REQUEST,
                                   "file '%s': '%s' is %s: names may not leave the data root "
                                   "(no symlinks)",
                                   name, comp,
                                   e == ELOOP || e == ENOTDIR ? "a symlink or not a folder"
                                                              : strerror(e));
            } else {
                close(dfd);
                dfd = fd;
            }
        }
        comp = slash + 1;
    }
    if (!*missing_dirs) {
        struct stat st;
        if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!S_ISREG(st.st_mode)) {
                close(dfd);
                return h5a_err_set(err, H5A_E_BAD_REQUEST,
                                   "file '%s' is %s: names may not leave the data root", name,
                                   S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file");
            }
            *file_exists = st.st_size > 0;
        } else if (errno != ENOENT) {
            int e = errno;
            close(dfd);
            return h5a_err_set(err, H5A_E_BAD_REQUEST, "file '%s': %s", name, strerror(e));
        }
    }
    close(dfd);
    return 0;
}

/* Make the last n folders of name's folder path (they do not exist). */
static int make_dirs(const h5a_files *fs, const char *name, int n, h5a_err *err)
{
    char path[PATH_MAX + H5A_MAX_FILE_NAME + 2];
    snprintf(path, sizeof path, "%s/%s", fs->root, name);
    /* the folders, shortest first: cut at each '/' after the existing ones */
    int total = 0;
    for (const char *p = name; *p; p++) total += *p == '/';
    size_t rootlen = strlen(fs->root) + 1;
    int seen = 0;
    for (char *p = path + rootlen; *p; p++) {
        if (*p != '/') continue;
        if (++seen > total - n) {
            *p = '\0';
            int rc = mkdir(path, 0777);
            int e = errno;
            *p = '/';
            if (rc != 0 && e != EEXIST)
                return h5a_err_set(err, e == ENOSPC ? H5A_E_NO_SPACE : H5A_E_INTERNAL,
                                   "cannot create the folders of file '%s': %s", name, strerror(e));
        }
    }
    return 0;
}

/* Remove the last n folders of name's folder path, deepest first (only
 * while they are empty). */
static void remove_dirs(const h5a_files *fs, const char *name, int n)
{
    char path[PATH_MAX + H5A_MAX_FILE_NAME + 2];
    snprintf(path, sizeof path, "%s/%s", fs->root, name);
    for (int i = 0; i < n; i++) {
        char *slash = strrchr(path, '/');
        if (!slash) return;
        *slash = '\0';
        if (rmdir(path) != 0) return;
    }
}

int h5a_files_get(h5a_files *fs, const char *name, bool create, h5a_file **out, bool *created,
                  h5a_err *err)
{
    *created = false;
    if (name && !fs->root[0])
        return h5a_err_set(err, H5A_E_BAD_REQUEST,
                           "this server has no data_root: it serves one file, and requests may "
                           "not name another ('file')");
    h5a_file *f = h5a_files_find(fs, name);
    if (!name) name = fs->default_name;
    if (f) {
        f->used = ++fs->tick;
        f->last_ns = mono_ns();
        *out = f;
        return 0;
    }
    if (!name) return h5a_err_set(err, H5A_E_INTERNAL, "the server's file is not open");
    int missing_dirs;
    bool exists;
    int rc = check_name(fs, name, &missing_dirs, &exists, err);
    if (rc) return rc;
    if (!exists && !create)
        return h5a_err_set(err, H5A_E_NOT_FOUND, "no file '%s' under the data root", name);
    while (fs->n >= fs->cfg->max_open_files) {
        size_t before = fs->n;
        evict_one(fs);
        if (fs->n == before) break; /* none can close now: go over the limit */
    }
    if (missing_dirs && (rc = make_dirs(fs, name, missing_dirs, err))) {
        remove_dirs(fs, name, missing_dirs);
        return rc;
    }
    f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name)) || add_entry(fs, f)) {
        if (f) free(f->name);
        free(f);
        remove_dirs(fs, name, missing_dirs);
        return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
    }
    char path[PATH_MAX + H5A_MAX_FILE_NAME + 2], why[1024];
    snprintf(path, sizeof path, "%s/%s", fs->root, name);
    bool missing;
    if (h5a_engine_open_path(&f->eng, fs->cfg, path, create, &missing, why, sizeof why)) {
        remove_entry(fs, f);
        remove_dirs(fs, name, missing_dirs);
        if (missing) return h5a_err_set(err, H5A_E_NOT_FOUND, "no file '%s' under the data root", name);
        return h5a_err_set(err, strstr(why, "No space") ? H5A_E_NO_SPACE : H5A_E_HDF5_ERROR,
                           "cannot open file '%s': %s", name, why);
    }
    f->made_dirs = missing_dirs;
    f->used = ++fs->tick;
    f->last_ns = mono_ns();
    *created = !exists;
    *out = f;
    return 0;
}

void h5a_files_discard(h5a_files *fs, h5a_file *f)
{
    if (f->pinned || !f->name) return;
    char path[PATH_MAX + H5A_MAX_FILE_NAME + 8];
    h5a_engine_close(f->eng);
    f->eng = NULL;
    snprintf(path, sizeof path, "%s/%s", fs->root, f->name);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.wal", fs->root, f->name);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.dedup", fs->root, f->name); /* its exactly-once table */
    unlink(path);
    remove_dirs(fs, f->name, f->made_dirs);
    remove_entry(fs, f);
}

/* ---- create_virtual's sources ---- */

/* to's name as seen from the folder of from ("a/m.h5", "b/r.h5" ->
 * "../b/r.h5"); HDF5 looks relative source names up next to the virtual
 * dataset's file, so the master file works wherever it is read from. */
static char *relative_to(const char *from, const char *to)
{
    size_t common = 0; /* length of the shared folder prefix, up to a '/' */
    for (size_t i = 0; from[i] && from[i] == to[i]; i++)
        if (from[i] == '/') common = i + 1;
    int ups = 0;
    for (const char *p = from + common; *p; p++) ups += *p == '/';
    size_t n = (size_t)ups * 3 + strlen(to + common) + 1;
    char *out = malloc(n);
    if (!out) return NULL;
    out[0] = '\0';
    for (int i = 0; i < ups; i++) strcat(out, "../");
    strcat(out, to + common);
    return out;
}

int h5a_files_resolve_sources(h5a_files *fs, h5a_request *r, h5a_err *err)
{
    if (r->op == OP_BATCH) { /* its create_virtual ops' (their file is the batch's) */
        for (uint32_t i = 0; i < r->nsub; i++) {
            if (r->sub[i]->op != OP_CREATE_VIRTUAL) continue;
            int rc = h5a_files_resolve_sources(fs, r->sub[i], err);
            if (rc) {
                r->has_err_index = true;
                r->err_index = i;
                return h5a_err_append(err, " (batch op %u; nothing of the batch was applied)",
                                      (unsigned)i);
            }
        }
        return 0;
    }
    const char *vname = r->file ? r->file : fs->default_name;
    for (size_t i = 0; i < r->nvsrc; i++) {
        h5a_vsource *v = &r->vsrc[i];
        const char *name = v->file;
        char templ[H5A_MAX_FILE_NAME + 32];
        if (name && r->vunlimited) {
            /* the first file of the pattern says the sources' type and shape */
            const char *pct = strstr(name, "%b");
            snprintf(templ, sizeof templ, "%.*s0%s", (int)(pct - name), name, pct + 2);
            name = templ;
        }
        bool same = !name || (vname && strcmp(name, vname) == 0);
        int rc;
        if (!same && name && fs->root[0] && !h5a_cluster_mine(fs->cfg, name)) {
            /* another node's file: read its description without its log,
             * read-only (HDF5's lock refuses while its node has it open) */
            if ((rc = check_name(fs, name, &(int){0}, &(bool){0}, err))) return rc;
            char path[PATH_MAX + H5A_MAX_FILE_NAME + 64];
            snprintf(path, sizeof path, "%s/%s", fs->root, name);
            if ((rc = h5a_engine_peek_dataset(path, v->path, &v->type, &v->ndim, v->dims, err)))
                return h5a_err_append(err, " (source %zu, file '%s' of node %d)", i, name,
                                      h5a_cluster_owner(fs->cfg, name));
            if (!(v->rel = relative_to(vname, v->file)))
                return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
            continue;
        }
        h5a_file *f;
        bool created;
        rc = h5a_files_get(fs, same ? r->file : name, false, &f, &created, err);
        if (rc) return h5a_err_append(err, " (source %zu of the virtual dataset)", i);
        if ((rc = h5a_engine_dataset_shape(f->eng, v->path, &v->type, &v->ndim, v->dims, err)))
            return h5a_err_append(err, " (in file '%s')", same ? (vname ? vname : ".") : name);
        v->rel = same ? strdup(".") : relative_to(vname, v->file);
        if (!v->rel) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
    }
    return 0;
}

void h5a_files_release_sources(h5a_request *r)
{
    for (uint32_t i = 0; i < r->nsub; i++) h5a_files_release_sources(r->sub[i]);
    for (size_t i = 0; i < r->nvsrc; i++)
        if (r->vsrc[i].type >= 0) {
            H5Tclose((hid_t)r->vsrc[i].type);
            r->vsrc[i].type = -1;
        }
}
