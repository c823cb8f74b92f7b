/* Where the CLI connects: flags, else config.ini, else the defaults --
 * the same rule as the Python client (python/hdf5_async/config.py). */
#ifndef H5A_CLI_CONFIG_H
#define H5A_CLI_CONFIG_H

#include <stddef.h>

#define CLI_DEFAULT_HOST "127.0.0.1"
#define CLI_DEFAULT_PORT 8888
#define CLI_DEFAULT_CONFIG "config.ini"

typedef struct cli_target {
    char host[256];
    int port;
    char config[4096];      /* the config file read; "" when none */
    /* [client] token_file and tls_ca_file, a relative path taken relative
     * to the config file's directory (as the Python client takes
     * token_file); "" when unset or empty */
    char token_file[4096];
    char tls_ca_file[4096];
    /* [cluster] nodes, as written (blanks around each removed); with --file
     * the CLI connects to the file's owner (main.c) */
#define CLI_MAX_NODES 256
    char nodes[CLI_MAX_NODES][256];
    int nnodes;
} cli_target;

/* path NULL: ./config.ini when it exists. flag_host NULL / flag_port < 0:
 * not given. For each of host and port the [client] section's value wins,
 * else [server]'s; a wildcard listen address means 127.0.0.1. Returns -1
 * with err set when the file cannot be read or has a bad port (or a path
 * too long). */
int cli_resolve_target(const char *path, const char *flag_host, int flag_port, cli_target *out,
                       char *err, size_t errlen);

/* 1..65535 from text; -1 if not a port. */
int cli_parse_port(const char *s);

#endif
