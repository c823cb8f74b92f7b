/* list_files: the HDF5 files under data_root, with their sizes (issue 14).
 * It lives in the engine so that it runs on the storage thread in its turn,
 * like every op, but it touches no HDF5 file: it walks the directory tree.
 *
 * Layer 7 of the engine (engine_err.h); calls only engine_state. Names are
 * relative to data_root, in byte order; the server's own files (.wal,
 * .wal.damaged, .compact, .dedup) and symlinks are left out, as are names a
 * request could not give as `file` (request.c, h5a_file_name_validate). */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/engine_ops.h"
#include "server/engine_state.h"

#define LIST_MAX 100000 /* names in one reply */
#define LIST_DEPTH 32   /* folder levels walked */

typedef struct entry {
    char *name;
    uint64_t size;
} entry;

typedef struct walk_state {
    entry *v;
    size_t n, cap;
    bool truncated;
} walk_state;

static int add(walk_state *w, const char *name, uint64_t size)
{
    if (w->n >= LIST_MAX) return w->truncated = true, 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        entry *v = realloc(w->v, cap * sizeof *v);
        if (!v) return -1;
        w->v = v;
        w->cap = cap;
    }
    if (!(w->v[w->n].name = strdup(name))) return -1;
    w->v[w->n++].size = size;
    return 0;
}

/* dfd is the open folder `rel` ("" for the root); takes ownership of it */
static int walk(walk_state *w, int dfd, const char *rel, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) return close(dfd), 0;
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char name[H5A_MAX_FILE_NAME + 2];
        int len = snprintf(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (len < 0 || len > H5A_MAX_FILE_NAME) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth >= LIST_DEPTH) continue;
            int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) rc = walk(w, fd, name, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            char why[256];
            /* an empty file is what a crash before a new file's first
             * commit leaves: it holds nothing, and reads treat it as missing */
            if (st.st_size == 0 || h5a_file_name_validate(name, (size_t)len, why, sizeof why))
                continue;
            rc = add(w, name, (uint64_t)st.st_size);
        }
    }
    closedir(d);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

int h5a_op_LIST_FILES(h5a_engine *e, h5a_request *r, h5a_err *err)
{
    const char *root = e->cfg->data_root;
    walk_state w = {0};
    int rc = 0;
    if (!root[0]) { /* one file: that one, named as configured */
        struct stat st;
        if (stat(e->cfg->file_path, &st) == 0 && st.st_size > 0)
            rc = add(&w, e->cfg->file_path, (uint64_t)st.st_size);
        goto reply;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return h5a_err_set(err, H5A_E_INTERNAL, "cannot open the data root");
    rc = walk(&w, fd, "", 0);
reply:
    if (rc) {
        for (size_t i = 0; i < w.n; i++) free(w.v[i].name);
        free(w.v);
        return h5a_err_set(err, H5A_E_INTERNAL, "out of memory listing the files");
    }
    if (w.n > 1) qsort(w.v, w.n, sizeof w.v[0], by_name);
    mp_buf *b = &r->reply;
    mp_put_map_header(b, 2);
    mp_put_cstr(b, "files");
    mp_put_array_header(b, (uint32_t)w.n);
    for (size_t i = 0; i < w.n; i++) {
        mp_put_map_header(b, 2);
        mp_put_cstr(b, "name");
        mp_put_cstr(b, w.v[i].name);
        mp_put_cstr(b, "size");
        mp_put_uint(b, w.v[i].size);
        free(w.v[i].name);
    }
    free(w.v);
    mp_put_cstr(b, "truncated");
    mp_put_bool(b, w.truncated);
    return 0;
}
