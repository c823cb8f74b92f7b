/* Where the CLI connects (config.h): flags, config.ini, defaults. */
#include "cli/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/ini_lines.h"

int cli_parse_port(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *end;
    errno = 0;
    long p = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (errno || end == s || *end || p < 1 || p > 65535) return -1;
    return (int)p;
}


struct ctx {
    h5a_ini_lines *rd;
    const char *path;
    char host[2][256]; /* [0] server, [1] client */
    int has_host[2];
    int port[2];
    int port_line[2];
    char port_text[2][64];
    /* [client] only: the values as written */
    char token_file[4096], tls_ca_file[4096];
    int long_value; /* the line of a value too long for those, else 0 */
    cli_target *out; /* [cluster] nodes go straight there */
    int bad_nodes;   /* the line of a malformed nodes list, else 0 */
};

/* [cluster] nodes = HOST:PORT, ... (as the server reads it) */
static void keep_nodes(struct ctx *c, const char *value)
{
    c->out->nnodes = 0;
    for (const char *p = value; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (!n || n >= sizeof c->out->nodes[0] || c->out->nnodes == CLI_MAX_NODES) {
            c->bad_nodes = c->rd->line;
            return;
        }
        snprintf(c->out->nodes[c->out->nnodes++], sizeof c->out->nodes[0], "%.*s", (int)n, p);
        if (!comma) break;
        p = comma + 1;
    }
}

static void keep(struct ctx *c, char *dst, size_t n, const char *value)
{
    if (snprintf(dst, n, "%s", value) >= (int)n && !c->long_value) c->long_value = c->rd->line;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct ctx *c = user;
    int which;
    if (strcmp(section, "cluster") == 0 && strcasecmp(name, "nodes") == 0) {
        keep_nodes(c, value);
        return 1;
    }
    if (strcmp(section, "server") == 0) which = 0;
    else if (strcmp(section, "client") == 0) which = 1;
    else return 1;
    if (strcasecmp(name, "host") == 0) {
        snprintf(c->host[which], sizeof c->host[which], "%s", value);
        c->has_host[which] = 1;
    } else if (strcasecmp(name, "port") == 0) {
        /* checked only if used: a bad [server] port is the server's
         * problem when [client] names its own */
        c->port[which] = cli_parse_port(value);
        c->port_line[which] = c->rd->line;
        snprintf(c->port_text[which], sizeof c->port_text[which], "%s", value);
    } else if (which == 1 && strcasecmp(name, "token_file") == 0) {
        keep(c, c->token_file, sizeof c->token_file, value);
    } else if (which == 1 && strcasecmp(name, "tls_ca_file") == 0) {
        keep(c, c->tls_ca_file, sizeof c->tls_ca_file, value);
    }
    return 1;
}

/* value as given when absolute (or when the config file is in the current
 * directory), else relative to the config file's directory; "" stays "". */
static int relative_to(const char *cfg, const char *value, char *out, size_t n)
{
    const char *slash = strrchr(cfg, '/');
    int k;
    if (!*value || value[0] == '/' || !slash)
        k = snprintf(out, n, "%s", value);
    else
        k = snprintf(out, n, "%.*s/%s", (int)(slash - cfg), cfg, value);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int cli_resolve_target(const char *path, const char *flag_host, int flag_port, cli_target *out,
                       char *err, size_t errlen)
{
    h5a_ini_lines rd = {NULL, 0};
    struct ctx c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    c.rd = &rd;
    c.out = out;
    const char *cfg = path;
    FILE *f = NULL;
    if (!cfg) {
        f = fopen(CLI_DEFAULT_CONFIG, "r");
        if (f) cfg = CLI_DEFAULT_CONFIG;
        else if (errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", CLI_DEFAULT_CONFIG, strerror(errno));
            return -1;
        }
    } else {
        f = fopen(cfg, "r");
        if (!f) {
            snprintf(err, errlen, "%s: %s", cfg, strerror(errno));
            return -1;
        }
    }
    if (f) {
        rd.f = f;
        c.path = cfg;
        int rc = ini_parse_stream(h5a_ini_read_line, &rd, on_entry, &c);
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            snprintf(err, errlen, "%s: read error", cfg);
            return -1;
        }
        if (rc > 0) {
            snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", cfg,
                     rc);
            return -1;
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot parse", cfg);
            return -1;
        }
        if (c.bad_nodes) {
            snprintf(err, errlen, "%s:%d: [cluster] nodes: give HOST:PORT, HOST:PORT, ...", cfg,
                     c.bad_nodes);
            return -1;
        }
        if (c.long_value) {
            snprintf(err, errlen, "%s:%d: the path is too long", cfg, c.long_value);
            return -1;
        }
        snprintf(out->config, sizeof out->config, "%s", cfg);
        if (relative_to(cfg, c.token_file, out->token_file, sizeof out->token_file) ||
            relative_to(cfg, c.tls_ca_file, out->tls_ca_file, sizeof out->tls_ca_file)) {
            snprintf(err, errlen, "%s: [client] token_file or tls_ca_file: the path is too long",
                     cfg);
            return -1;
        }
    }
    if (flag_host) {
        snprintf(out->host, sizeof out->host, "%s", flag_host);
    } else {
        int w = c.has_host[1] ? 1 : c.has_host[0] ? 0 : -1;
        const char *h = w >= 0 ? c.host[w] : CLI_DEFAULT_HOST;
        size_t n = strlen(h);
        /* a server listening on every interface is reached on loopback */
        if (n == 0 || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0)
            h = CLI_DEFAULT_HOST, n = strlen(h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') h++, n -= 2;
        snprintf(out->host, sizeof out->host, "%.*s", (int)n, h);
    }
    if (flag_port >= 0) {
        out->port = flag_port;
    } else {
        int w = c.port_line[1] ? 1 : c.port_line[0] ? 0 : -1;
        if (w < 0) {
            out->port = CLI_DEFAULT_PORT;
        } else if (c.port[w] < 0) {
            snprintf(err, errlen, "%s:%d: [%s] port: '%s' is not a port number (1..65535)", cfg,
                     c.port_line[w], w ? "client" : "server", c.port_text[w]);
            return -1;
        } else {
            out->port = c.port[w];
        }
    }
    /* a config with [cluster] nodes and no port: its first node (as the
     * Python client); --file then picks the file's owner (main.c) */
    if (!flag_host && flag_port < 0 && !c.port_line[0] && !c.port_line[1] && out->nnodes) {
        const char *colon = strrchr(out->nodes[0], ':');
        int port = colon ? cli_parse_port(colon + 1) : -1;
        if (port > 0) {
            snprintf(out->host, sizeof out->host, "%.*s", (int)(colon - out->nodes[0]),
                     out->nodes[0]);
            out->port = port;
        }
    }
    return 0;
}
