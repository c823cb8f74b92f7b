/* A request's `file` (issue 14), checked on the event loop before the
 * request is queued: relative to data_root, no empty, "." or ".."
 * components (so that one file has one name), and never one of the
 * server's own files beside a served one (FILE.wal, FILE.wal.damaged,
 * FILE.compact, and the exactly-once table FILE.dedup and its temporary
 * FILE.dedup.tmp): a client naming those could read or clobber them.
 * files.c checks the disk side (no symlink leads out of the root).
 *
 * Kept apart from request.c, which parses everything else, so that each
 * stays a readable size. */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "server/request.h"

int h5a_file_name_validate(const char *p, size_t n, char *err, size_t errlen)
{
    if (n == 0) return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "'file' must not be empty");
    if (n > H5A_MAX_FILE_NAME)
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "'file' is longer than %d bytes",
                        H5A_MAX_FILE_NAME);
    if (memchr(p, '\0', n))
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "'file' must not contain NUL bytes");
    if (p[0] == '/')
        return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                        "'file' must be relative to the data root, not '%.*s'", (int)(n > 200 ? 200 : n), p);
    /* component by component: no empty ones ("a//b", "a/"), no "." or ".." */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != '/') j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && p[i] == '.') || (len == 2 && p[i] == '.' && p[i + 1] == '.'))
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                            "'file' '%.*s' has an empty, '.' or '..' component: give a plain "
                            "relative name such as run_0001.h5 or 2026/run_0002.h5",
                            (int)(n > 200 ? 200 : n), p);
        if (j == n) {
            /* the last component must not be one of the server's own files */
            static const char *const own[] = {".wal", ".wal.damaged", ".compact", ".dedup",
                                              ".dedup.tmp"};
            for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
                size_t m = strlen(own[k]);
                if (len >= m && memcmp(p + j - m, own[k], m) == 0)
                    return h5a_fail(err, errlen, H5A_E_BAD_REQUEST,
                                    "'file' may not end in '%s' (the server's own files)", own[k]);
            }
        }
        i = j + 1;
        if (j == n - 1) /* a trailing '/' */
            return h5a_fail(err, errlen, H5A_E_BAD_REQUEST, "'file' must not end in '/'");
    }
    return 0;
}
