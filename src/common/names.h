/* Rules for names that both the server and the CLI check, so that they
 * agree: HDF5 paths (the server's requests and the PREFIXes of its tokens
 * file) and token NAMEs. The server reads the tokens file (server/auth.c);
 * the CLI writes lines for it (`hdf5-async token`) and must refuse exactly
 * what the server would refuse. */
#ifndef H5A_NAMES_H
#define H5A_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Components a path may have. Each level costs HDF5 lookups (the engine
 * resolves a path level by level, engine_path.c; when it looked up every
 * prefix from the root, 3,000 levels held the storage thread for 27 s), and
 * walk recurses once per level: 256 is its depth limit too (engine_list.c). */
#define H5A_MAX_PATH_DEPTH 256

/* h5a_path_check's answers besides 0 */
enum { H5A_PATH_BAD = 1, H5A_PATH_TOO_DEEP = 2 };

/* Is p (n bytes) an absolute HDF5 path: starting with '/', no NUL byte, no
 * empty, '.' or '..' component (so no trailing '/' but on "/" itself), at
 * most H5A_MAX_PATH_DEPTH components? 0, or H5A_PATH_BAD / _TOO_DEEP with
 * the reason in err (when err is not NULL). */
int h5a_path_check(const char *p, size_t n, char *err, size_t errlen);

/* A token's NAME in the tokens file: 1 to H5A_TOKEN_NAME_MAX characters of
 * A-Z a-z 0-9 _ . @ - */
#define H5A_TOKEN_NAME_MAX 64
bool h5a_token_name_ok(const char *s);

/* The tokens file's fields are split at these characters (server/auth.c),
 * so no field can hold one. */
#define H5A_TOKENS_FILE_BLANKS " \t\r\n"
/* Longest line of the tokens file, without its newline, and most PREFIXes
 * on one line. */
#define H5A_TOKENS_FILE_LINE_MAX 8190
#define H5A_TOKENS_FILE_PREFIX_MAX 64

#endif
