/* Who may do what: the tokens file (auth_file), the identity a connection
 * authenticates as, and the check every request passes on the event loop
 * before it is queued, so that a refused request never reaches the storage
 * thread. No HDF5, no I/O besides reading the file.
 *
 * The file holds one token a line: NAME ROLE SHA256HEX [PREFIX ...], with
 * `#` comments. Only the token's SHA-256 is stored (the file holds no
 * secret, as Redis keeps ACL passwords); a presented token is hashed and
 * compared in constant time. ROLE is read (operations that change nothing),
 * write (read + changes) or admin (everything); PREFIXes (absolute paths,
 * default "/") bound every path a request names. */
#ifndef H5A_AUTH_H
#define H5A_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/names.h"
#include "proto/ops.h"
#include "server/request.h"

#define H5A_AUTH_NAME_MAX H5A_TOKEN_NAME_MAX

typedef struct h5a_token {
    char name[H5A_AUTH_NAME_MAX + 1];
    h5a_perm role;
    uint8_t sha256[32];
    size_t nprefix;
    char **prefix; /* absolute paths without a trailing '/'; "/" = everything */
} h5a_token;

/* One loaded tokens file. Immutable once loaded: a reload makes a new one,
 * and connections find their name again in it (h5a_auth_find_name). */
typedef struct h5a_auth {
    size_t n;
    h5a_token *tok;
    uint64_t generation; /* set by the owner; tells connections a reload happened */
} h5a_auth;

/* Load path. Returns 0, or -1 with "PATH:LINE: reason" in err (a missing
 * file, a bad role, a hash that is not 64 lowercase hex digits, a duplicate
 * name or hash, a prefix that is not an absolute path...). */
int h5a_auth_load(h5a_auth **out, const char *path, char *err, size_t errlen);
void h5a_auth_free(h5a_auth *a);

/* The token whose hash is SHA-256(token), or NULL. Compares every entry in
 * constant time, so the time taken says nothing about near misses. */
const h5a_token *h5a_auth_find_token(const h5a_auth *a, const char *token, size_t len);
const h5a_token *h5a_auth_find_name(const h5a_auth *a, const char *name);

const char *h5a_perm_name(h5a_perm p);

/* May `tok` make request r? 0, or H5A_E_PERMISSION_DENIED with a message
 * naming the token, the op and the path or role that forbids it. Checks the
 * op's role (from the op list) and that path, dest and a link's target lie
 * within one of the token's prefixes. */
int h5a_auth_check(const h5a_token *tok, const h5a_request *r, char *err, size_t errlen);

/* With data_root (issue 14) a token's prefixes name files too: every path
 * a request names is checked as "/FILE" + path, FILE being its `file` or,
 * without one, default_name (the relative hdf5_file_path; NULL when that
 * lies outside the root, whose paths are checked as they are). So
 * "/run_0001.h5/entry" allows /entry of run_0001.h5, "/2026" every file
 * under 2026/. Set once at start (net.c), before any check. */
void h5a_auth_files(bool per_file, const char *default_name);

/* Is `path` inside `prefix`? ("/a/b" is inside "/a" and "/a/b", not "/ab".) */
bool h5a_auth_path_within(const char *path, const char *prefix);

/* SHA-256 of data as 64 lowercase hex digits and a NUL (hex[65]). */
void h5a_auth_sha256_hex(const void *data, size_t n, char *hex);


/* ---- a connection's identity, decided on the event loop ---- */

/* The server's view: the loaded table (NULL without auth_file) and whether
 * a client that is not on loopback may be served at all. */
typedef struct h5a_access {
    h5a_auth *auth;
    bool protected_mode;
    uint64_t generation; /* bumped by each reload */
    uint64_t failures;   /* bad tokens so far (for the logs and metrics) */
} h5a_access;

/* What one connection is allowed: set by `auth` or a TLS client
 * certificate, kept by name so that a reload of the file applies to
 * connections already open (a removed token stops working at once). */
typedef struct h5a_conn_auth {
    bool authed;
    char name[H5A_AUTH_NAME_MAX + 1];
    uint64_t generation;  /* of the table tok points into */
    const h5a_token *tok; /* NULL when authed but the name is gone */
    int bad_tokens;       /* after H5A_AUTH_MAX_BAD the connection is closed */
} h5a_conn_auth;

#define H5A_AUTH_MAX_BAD 3

/* Authenticate ca as the token named `name` (a verified certificate's
 * CN). Returns true when the name is in the table. */
bool h5a_access_login_name(const h5a_access *acc, h5a_conn_auth *ca, const char *name);

/* Decide parsed request r of a connection (peer for the log): an `auth`
 * is checked and its answer left in r (auth_name/auth_role or err_code);
 * any other request is refused with UNAUTHENTICATED or PERMISSION_DENIED
 * in r->err_code when it may not run. Requests that failed to parse pass
 * untouched. Returns true when the connection must close once r is
 * answered (too many bad tokens). */
bool h5a_access_decide(h5a_access *acc, h5a_conn_auth *ca, h5a_request *r, const char *peer);

/* Replace the table with path's contents (SIGHUP). On error the old table
 * stays and err says why. Returns 0 or -1. */
int h5a_access_reload(h5a_access *acc, const char *path, char *err, size_t errlen);

#endif
