/* How the CLI reaches the server beyond host and port: the token and TLS,
 * resolved from the command line, the environment and config.ini, then
 * the connection itself (hdf5a_connect_ex). */
#ifndef H5A_CLI_CONNECT_H
#define H5A_CLI_CONNECT_H

#include "cli/cli.h"
#include "cli/config.h"

/* The environment variable that holds a token (as for the Python client). */
#define CLI_TOKEN_ENV "HDF5_ASYNC_TOKEN"

typedef struct cli_conn {
    char *token;       /* NULL: none (no auth request); wiped when freed */
    char from[8300];   /* where the token came from, for messages */
    int tls;
    const char *tls_ca; /* NULL: the system's CAs */
    char ca_from[4200];  /* where tls_ca came from, for messages */
    int reconnect;       /* --reconnect */
} cli_conn;

/* The token: --token-file, else $HDF5_ASYNC_TOKEN (when not empty), else
 * the config's [client] token_file, else none. A token file's first line
 * is the token, blanks around it and the newline stripped. TLS: --tls,
 * --tls-ca or the config's [client] tls_ca_file turn it on; the CA file is
 * --tls-ca's, else the config's, else the system's CAs. Returns 0, or
 * EXIT_USAGE after reporting (an unreadable or empty token file, a CA file
 * that cannot be opened). */
int cli_conn_resolve(const cli_args *a, const cli_target *t, cli_conn *out);
void cli_conn_free(cli_conn *cn);

/* Connects (and authenticates); 0 with *out set, or the exit status after
 * reporting: EXIT_SERVER when the server refused (UNAUTHENTICATED for the
 * token, PROTOCOL_ERROR from a TLS port spoken to in plaintext), EXIT_CONN
 * for the connection (TLS included), EXIT_USAGE for a CA file OpenSSL
 * cannot load. */
int cli_connect(const cli_target *t, const cli_conn *cn, int timeout_ms, hdf5a_client **out);

#endif
