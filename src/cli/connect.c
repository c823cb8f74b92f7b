/* The token, TLS and the connection (connect.h). */
#include "cli/connect.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most bytes a token may have (the protocol's limit). */
#define TOKEN_MAX 4096
/* A token file's first line is read up to this many bytes; past it, it is
 * not a token file. */
#define LINE_CAP 65536

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* A copy of s[0..n) without the blanks around it, in *out (NULL if
 * nothing is left). Returns 0, or -1 when out of memory. */
static int trimmed_copy(const char *s, size_t n, char **out)
{
    while (n && is_blank(*s)) s++, n--;
    while (n && is_blank(s[n - 1])) n--;
    *out = NULL;
    if (!n) return 0;
    if (!(*out = malloc(n + 1))) return -1;
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

/* The token on the first line of path; what names the option or key for
 * messages. 0 with *out set, or EXIT_USAGE after reporting. */
static int read_token_file(const char *path, const char *what, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_msg("%s: cannot read %s: %s", what, path, strerror(errno));
        return EXIT_USAGE;
    }
    char *buf = malloc(LINE_CAP);
    size_t n = 0;
    int ch, nul = 0, too_long = 0;
    while (buf && (ch = getc(f)) != EOF && ch != '\n') {
        if (n == LINE_CAP) {
            too_long = 1;
            break;
        }
        nul |= ch == '\0';
        buf[n++] = (char)ch;
    }
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    int rc = EXIT_USAGE;
    if (!buf) cli_msg("out of memory");
    else if (rerr) cli_msg("%s: cannot read %s: %s", what, path, strerror(rerr));
    else if (nul) cli_msg("%s: the first line of %s holds a NUL byte: not a token", what, path);
    else if (too_long) cli_msg("%s: the first line of %s is not a token (over %d bytes)", what,
                               path, TOKEN_MAX);
    else if (trimmed_copy(buf, n, out)) cli_msg("out of memory");
    else if (!*out) cli_msg("%s: %s is empty: its first line must be the token", what, path);
    else if (strlen(*out) > TOKEN_MAX)
        cli_msg("%s: the first line of %s is not a token (over %d bytes)", what, path, TOKEN_MAX);
    else rc = 0;
    if (buf) {
        OPENSSL_cleanse(buf, LINE_CAP);
        free(buf);
    }
    if (rc && *out) {
        OPENSSL_cleanse(*out, strlen(*out));
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int check_readable(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_msg("%s: cannot read %s: %s", what, path, strerror(errno));
        return EXIT_USAGE;
    }
    fclose(f);
    return 0;
}

int cli_conn_resolve(const cli_args *a, const cli_target *t, cli_conn *out)
{
    memset(out, 0, sizeof *out);
    char what[4200]; /* "CONFIG [client] KEY" */
    int rc;
    /* the variable counts only when it holds more than blanks (as for the
     * Python client) */
    const char *env = getenv(CLI_TOKEN_ENV);
    char *env_token = NULL;
    if (!a->token_file && env && trimmed_copy(env, strlen(env), &env_token)) {
        cli_msg("out of memory");
        return EXIT_USAGE;
    }
    if (a->token_file) {
        snprintf(out->from, sizeof out->from, "--token-file %s", a->token_file);
        if ((rc = read_token_file(a->token_file, "--token-file", &out->token))) return rc;
    } else if (env_token) {
        out->token = env_token;
        snprintf(out->from, sizeof out->from, "%s", CLI_TOKEN_ENV);
        if (strlen(out->token) > TOKEN_MAX) {
            cli_msg("%s is over %d bytes: not a token", CLI_TOKEN_ENV, TOKEN_MAX);
            cli_conn_free(out);
            return EXIT_USAGE;
        }
    } else if (t->token_file[0]) {
        snprintf(out->from, sizeof out->from, "%s [client] token_file %s", t->config,
                 t->token_file);
        snprintf(what, sizeof what, "%s [client] token_file", t->config);
        if ((rc = read_token_file(t->token_file, what, &out->token))) return rc;
    }
    rc = 0;
    out->tls = a->tls || a->tls_ca || t->tls_ca_file[0];
    out->reconnect = a->reconnect;
    if (a->tls_ca) {
        out->tls_ca = a->tls_ca;
        snprintf(out->ca_from, sizeof out->ca_from, "--tls-ca");
    } else if (t->tls_ca_file[0]) {
        out->tls_ca = t->tls_ca_file;
        snprintf(out->ca_from, sizeof out->ca_from, "%s [client] tls_ca_file", t->config);
    }
    if (out->tls_ca) rc = check_readable(out->tls_ca, out->ca_from);
    if (rc) cli_conn_free(out);
    else cli_set_token_source(out->token ? out->from : NULL);
    return rc;
}

void cli_conn_free(cli_conn *cn)
{
    if (cn->token) {
        OPENSSL_cleanse(cn->token, strlen(cn->token));
        free(cn->token);
        cn->token = NULL;
    }
}

/* text without a leading "connect to HOST:PORT: " or "HOST:PORT: " that
 * repeats what our own message says */
static const char *without_address(const char *text, const cli_target *t)
{
    char addr[300];
    snprintf(addr, sizeof addr, "connect to %s:%d: ", t->host, t->port);
    size_t n = strlen(addr);
    if (strncmp(text, addr, n) == 0) return text + n;
    const char *bare = addr + strlen("connect to ");
    n = strlen(bare);
    if (strncmp(text, bare, n) == 0) return text + n;
    return text;
}

int cli_connect(const cli_target *t, const cli_conn *cn, int timeout_ms, hdf5a_client **out)
{
    hdf5a_connect_opts o;
    hdf5a_connect_opts_init(&o);
    o.token = cn->token;
    o.tls = cn->tls;
    o.tls_ca_file = cn->tls_ca;
    o.reconnect = cn->reconnect; /* give up after 60 s without the server */
    o.follow_wrong_node = 1;     /* [cluster]: the server knows the file's owner */
    char err[1024] = "";
    int rc = hdf5a_connect_ex(out, t->host, t->port, timeout_ms, &o, err, sizeof err);
    if (rc == 0) return 0;
    const char *why = *err ? without_address(err, t) : "unknown error";
    if (rc == HDF5A_EINVAL) {
        /* our options, or a CA file OpenSSL cannot load: nothing was sent.
         * The library names the CA file by its field; say where it came from. */
        char field[4200];
        snprintf(field, sizeof field, "tls_ca_file '%s': ", cn->tls_ca ? cn->tls_ca : "");
        if (cn->tls_ca && strncmp(why, field, strlen(field)) == 0)
            cli_msg("%s %s: %s", cn->ca_from, cn->tls_ca, why + strlen(field));
        else cli_msg("%s", why);
        return EXIT_USAGE;
    }
    if (rc <= HDF5A_EBAD_REQUEST && rc >= HDF5A_ELAST_SERVER) {
        /* the server refused: the token, or the way we spoke to it */
        if (rc == HDF5A_EUNAUTHENTICATED) cli_msg("%s: %s%s", hdf5a_strerror(rc), err,
                                                  cli_token_hint());
        else cli_msg("%s: %s", hdf5a_strerror(rc), why);
        return EXIT_SERVER;
    }
    if (rc == HDF5A_ETLS) cli_msg("cannot connect to %s:%d: TLS: %s", t->host, t->port, why);
    else cli_msg("cannot connect to %s:%d: %s", t->host, t->port, why);
    return EXIT_CONN;
}
