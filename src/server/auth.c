/* The tokens file and the permission check (see auth.h). SHA-256 and the
 * constant-time comparison come from OpenSSL's libcrypto, which the TLS
 * side needs anyway: no hashing written here. */
#include "server/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/errors.h"

const char *h5a_perm_name(h5a_perm p)
{
    return p == H5A_PERM_ADMIN ? "admin" : p == H5A_PERM_WRITE ? "write" : "read";
}

static void sha256(const void *data, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(data, n, out, &len, EVP_sha256(), NULL)) memset(out, 0, 32);
}

void h5a_auth_sha256_hex(const void *data, size_t n, char *hex)
{
    uint8_t d[32];
    sha256(data, n, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

void h5a_auth_free(h5a_auth *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        for (size_t k = 0; k < a->tok[i].nprefix; k++) free(a->tok[i].prefix[k]);
        free(a->tok[i].prefix);
    }
    free(a->tok);
    free(a);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One line's fields, split at blanks; a '#' at the start of a field starts
 * a comment. Modifies line. Returns the field count (at most max). */
static size_t split(char *line, char **f, size_t max, bool *too_many)
{
    size_t n = 0;
    *too_many = false;
    for (char *p = line;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p || *p == '#') break;
        if (n == max) {
            *too_many = true;
            break;
        }
        f[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
        if (*p) *p++ = '\0';
    }
    return n;
}

/* name, role, hash and up to 64 prefixes (common/names.h: the CLI checks the same) */
#define MAX_FIELDS (3 + H5A_TOKENS_FILE_PREFIX_MAX)

static int line_fail(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int line_fail(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
    int k = snprintf(err, errlen, "%s:%d: ", path, line);
    if (k < 0 || (size_t)k >= errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_line(h5a_token *t, char **f, size_t n, const char *path, int line, char *err,
                      size_t errlen)
{
    if (n < 3)
        return line_fail(err, errlen, path, line,
                         "expected NAME ROLE SHA256HEX [PREFIX ...], got %zu field%s", n,
                         n == 1 ? "" : "s");
    if (!h5a_token_name_ok(f[0]))
        return line_fail(err, errlen, path, line,
                         "name '%.80s' must be 1 to %d characters of A-Z a-z 0-9 _ . @ -", f[0],
                         H5A_AUTH_NAME_MAX);
    snprintf(t->name, sizeof t->name, "%s", f[0]);
    if (strcmp(f[1], "read") == 0) t->role = H5A_PERM_READ;
    else if (strcmp(f[1], "write") == 0) t->role = H5A_PERM_WRITE;
    else if (strcmp(f[1], "admin") == 0) t->role = H5A_PERM_ADMIN;
    else
        return line_fail(err, errlen, path, line,
                         "role '%.40s' of '%s' must be read, write or admin", f[1], t->name);
    if (strlen(f[2]) != 64)
        return line_fail(err, errlen, path, line,
                         "the hash of '%s' must be 64 lowercase hex digits (the SHA-256 of the "
                         "token, as `hdf5-async token` prints it), not %zu characters",
                         t->name, strlen(f[2]));
    for (int i = 0; i < 32; i++) {
        int hi = hexval(f[2][2 * i]), lo = hexval(f[2][2 * i + 1]);
        if (hi < 0 || lo < 0)
            return line_fail(err, errlen, path, line,
                             "the hash of '%s' must be 64 lowercase hex digits", t->name);
        t->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    size_t np = n > 3 ? n - 3 : 1;
    t->prefix = calloc(np, sizeof *t->prefix);
    if (!t->prefix) return line_fail(err, errlen, path, line, "out of memory");
    for (size_t k = 0; k < np; k++) {
        const char *p = n > 3 ? f[3 + k] : "/";
        char why[256];
        if (h5a_path_validate(p, strlen(p), why, sizeof why))
            return line_fail(err, errlen, path, line, "prefix '%.100s' of '%s': %s", p, t->name,
                             why);
        if (!(t->prefix[k] = strdup(p))) return line_fail(err, errlen, path, line, "out of memory");
        t->nprefix++;
    }
    return 0;
}

int h5a_auth_load(h5a_auth **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open the tokens file (auth_file): %s", path,
                 strerror(errno));
        return -1;
    }
    h5a_auth *a = calloc(1, sizeof *a);
    size_t cap = 0;
    char buf[H5A_TOKENS_FILE_LINE_MAX + 2]; /* the line, its newline and the NUL */
    int line = 0, rc = a ? 0 : line_fail(err, errlen, path, 0, "out of memory");
    while (!rc && fgets(buf, sizeof buf, fp)) {
        line++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
            rc = line_fail(err, errlen, path, line, "line longer than %zu bytes", sizeof buf - 2);
            break;
        }
        char *f[MAX_FIELDS];
        bool too_many;
        size_t n = split(buf, f, MAX_FIELDS, &too_many);
        if (too_many) {
            rc = line_fail(err, errlen, path, line, "more than %d prefixes", MAX_FIELDS - 3);
            break;
        }
        if (n == 0) continue;
        if (a->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            h5a_token *t = realloc(a->tok, ncap * sizeof *t);
            if (!t) {
                rc = line_fail(err, errlen, path, line, "out of memory");
                break;
            }
            a->tok = t;
            cap = ncap;
        }
        h5a_token *t = &a->tok[a->n];
        memset(t, 0, sizeof *t);
        a->n++; /* counted now so that h5a_auth_free frees what parse_line made */
        if ((rc = parse_line(t, f, n, path, line, err, errlen))) break;
        for (size_t i = 0; i + 1 < a->n; i++) {
            if (strcmp(a->tok[i].name, t->name) == 0)
                rc = line_fail(err, errlen, path, line, "name '%s' is used twice", t->name);
            else if (memcmp(a->tok[i].sha256, t->sha256, 32) == 0)
                rc = line_fail(err, errlen, path, line,
                               "'%s' has the same token hash as '%s': a token names one entry",
                               t->name, a->tok[i].name);
            if (rc) break;
        }
    }
    if (!rc && ferror(fp)) rc = line_fail(err, errlen, path, line, "read error");
    fclose(fp);
    if (rc) {
        h5a_auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

const h5a_token *h5a_auth_find_token(const h5a_auth *a, const char *token, size_t len)
{
    if (!a) return NULL;
    uint8_t d[32];
    sha256(token, len, d);
    const h5a_token *found = NULL;
    /* every entry, every byte: no early exit */
    for (size_t i = 0; i < a->n; i++)
        if (CRYPTO_memcmp(d, a->tok[i].sha256, 32) == 0) found = &a->tok[i];
    return found;
}

const h5a_token *h5a_auth_find_name(const h5a_auth *a, const char *name)
{
    if (!a || !name) return NULL;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tok[i].name, name) == 0) return &a->tok[i];
    return NULL;
}

bool h5a_auth_path_within(const char *path, const char *prefix)
{
    if (strcmp(prefix, "/") == 0) return true;
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* With data_root, paths are checked as "/FILE" + path (h5a_auth_files). */
static bool files_mode;
static char files_default[4096];

void h5a_auth_files(bool per_file, const char *default_name)
{
    files_mode = per_file;
    snprintf(files_default, sizeof files_default, "%s", default_name ? default_name : "");
}

/* path as the prefixes see it: "/FILE/path" in files mode (into buf) */
static const char *qualified(const h5a_request *r, const char *path, char *buf, size_t n)
{
    if (!files_mode) return path;
    const char *file = r->file ? r->file : files_default;
    if (!*file) return path; /* the default file lies outside the root */
    snprintf(buf, n, "/%s%s", file, path && strcmp(path, "/") != 0 ? path : "");
    return buf;
}

static const char *outside(const h5a_token *tok, const char *path)
{
    for (size_t k = 0; k < tok->nprefix; k++)
        if (h5a_auth_path_within(path, tok->prefix[k])) return NULL;
    return path;
}

int h5a_auth_check(const h5a_token *tok, const h5a_request *r, char *err, size_t errlen)
{
    /* a batch: each of its ops, as if sent alone */
    for (uint32_t i = 0; i < r->nsub; i++) {
        char why[400];
        int rc = h5a_auth_check(tok, r->sub[i], why, sizeof why);
        if (rc) return h5a_fail(err, errlen, rc, "batch op %u: %s", (unsigned)i, why);
    }
    const h5a_op_info *op = h5a_op_info_of(r->op);
    if (op->perm > tok->role)
        return h5a_fail(err, errlen, H5A_E_PERMISSION_DENIED,
                        "token '%s' has the %s role; '%s' needs %s", tok->name,
                        h5a_perm_name(tok->role), r->op_name, h5a_perm_name(op->perm));
    const char *bad = NULL, *what = "path";
    char q[8192 + 4096 + H5A_MAX_FILE_NAME + 2];
    if (r->path) bad = outside(tok, qualified(r, r->path, q, sizeof q));
    else if (files_mode && r->op != OP_PING && r->op != OP_AUTH && r->op != OP_LIST_FILES)
        bad = outside(tok, qualified(r, "/", q, sizeof q)), what = "file"; /* compact */
    if (!bad && r->dest) bad = outside(tok, qualified(r, r->dest, q, sizeof q)), what = "dest";
    char abs[8192];
    if (!bad && r->target && r->path) {
        /* a relative target is resolved in the link's own group */
        if (r->target[0] == '/') {
            snprintf(abs, sizeof abs, "%s", r->target);
        } else {
            const char *slash = strrchr(r->path, '/');
            int plen = (int)(slash - r->path);
            snprintf(abs, sizeof abs, "%.*s/%s", plen, r->path, r->target);
        }
        bad = outside(tok, qualified(r, abs, q, sizeof q)), what = "link target";
    }
    if (!bad) return 0;
    char list[512];
    size_t used = 0;
    list[0] = '\0';
    for (size_t k = 0; k < tok->nprefix && used < sizeof list; k++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", tok->prefix[k]);
        if (w > 0) used += (size_t)w;
    }
    return h5a_fail(err, errlen, H5A_E_PERMISSION_DENIED,
                    "token '%s' may not touch %s '%.200s' (its prefixes: %s)", tok->name, what, bad,
                    list);
}

/* ---- a connection's identity ---- */

static const h5a_token *current(const h5a_access *acc, h5a_conn_auth *ca)
{
    if (!ca->authed) return NULL;
    if (ca->generation != acc->generation) { /* the file was reloaded */
        ca->tok = h5a_auth_find_name(acc->auth, ca->name);
        ca->generation = acc->generation;
    }
    return ca->tok;
}

bool h5a_access_login_name(const h5a_access *acc, h5a_conn_auth *ca, const char *name)
{
    const h5a_token *t = h5a_auth_find_name(acc->auth, name);
    if (!t) return false;
    ca->authed = true;
    snprintf(ca->name, sizeof ca->name, "%s", t->name);
    ca->tok = t;
    ca->generation = acc->generation;
    return true;
}

/* Bad tokens are logged (never the token itself), at most a few a second
 * so that a client hammering the port cannot flood the log. */
static void log_failure(h5a_access *acc, const char *peer, const char *why)
{
    static uint64_t window_start, in_window, suppressed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec;
    acc->failures++;
    if (now != window_start) {
        if (suppressed)
            fprintf(stderr, "hdf5-async-server: %llu more failed authentications not logged\n",
                    (unsigned long long)suppressed);
        window_start = now, in_window = 0, suppressed = 0;
    }
    if (++in_window > 10) {
        suppressed++;
        return;
    }
    fprintf(stderr, "hdf5-async-server: failed authentication from %s: %s\n", peer, why);
}

bool h5a_access_decide(h5a_access *acc, h5a_conn_auth *ca, h5a_request *r, const char *peer)
{
    if (r->err_code) return false;
    if (r->op == OP_AUTH) {
        if (!acc->auth) {
            r->auth_role = NULL; /* nobody needs a token here: say so, succeed */
            return false;
        }
        const h5a_token *t = h5a_auth_find_token(acc->auth, r->token, r->token_len);
        if (!t) {
            ca->bad_tokens++;
            bool close = ca->bad_tokens >= H5A_AUTH_MAX_BAD;
            log_failure(acc, peer, close ? "unknown token (third: closing)" : "unknown token");
            h5a_request_set_error(r, H5A_E_UNAUTHENTICATED, "unknown token%s",
                                  close ? "; closing the connection after 3 bad tokens" : "");
            r->close_after = close;
            return close;
        }
        ca->authed = true;
        snprintf(ca->name, sizeof ca->name, "%s", t->name);
        ca->tok = t;
        ca->generation = acc->generation;
        snprintf(r->auth_name, sizeof r->auth_name, "%s", t->name);
        r->auth_role = h5a_perm_name(t->role);
        return false;
    }
    if (!acc->auth) return false;
    const h5a_token *t = current(acc, ca);
    if (!t) {
        h5a_request_set_error(r, H5A_E_UNAUTHENTICATED,
                              ca->authed ? "token '%s' was removed from the tokens file"
                                         : "authenticate first: send {\"op\": \"auth\", "
                                           "\"token\": TOKEN} (this server has an auth_file)%s",
                              ca->authed ? ca->name : "");
        return false;
    }
    int rc = h5a_auth_check(t, r, r->err_msg, sizeof r->err_msg);
    if (rc) r->err_code = rc;
    return false;
}

int h5a_access_reload(h5a_access *acc, const char *path, char *err, size_t errlen)
{
    h5a_auth *a;
    if (h5a_auth_load(&a, path, err, errlen)) return -1;
    h5a_auth_free(acc->auth);
    acc->auth = a;
    acc->generation++;
    return 0;
}
