/* What the CLI's files share: exit statuses, the parsed command line
 * (cli_args), the reporting helpers (report.c) and the command handlers
 * (cmd_data.c, cmd_meta.c) that the command table (commands.c) points at. */
#ifndef H5A_CLI_CLI_H
#define H5A_CLI_CLI_H

#include "cli/npy.h"
#include "cli/sel.h"
#include "hdf5_async.h"

#define PROG "hdf5-async"

/* Exit statuses: part of the interface, scripts rely on them. */
enum {
    EXIT_OK = 0,
    EXIT_SERVER = 1, /* the server answered with an error (UNAUTHENTICATED and
                        PERMISSION_DENIED too, also when connecting) */
    EXIT_USAGE = 2,  /* bad command line, config file, token file or CA file */
    EXIT_CONN = 3,   /* connection (TLS too), I/O or timeout error */
    EXIT_FILE = 4    /* cannot read, parse or write a local .npy file */
};

/* Most operands a command line may have: token's NAME ROLE and up to 64
 * PREFIXes, and one more so that the 65th is reported as such. */
#define CLI_MAX_POS 67

/* The command line once parsed (opts.c), plus what a command reads before
 * connecting (its prepare hook): a file or a selection that is wrong
 * should not cost a connection. */
typedef struct cli_args {
    /* global options */
    const char *host, *config;
    int port;                    /* -1: not given */
    int timeout_ms;              /* -1: not given */
    hdf5a_durability durability; /* DEFAULT: not given */
    const char *file;            /* --file: a file under the server's data_root; NULL: its default */
    int help, version;
    /* command options */
    const char *output, *compression, *npy, *slice, *shape, *dtype, *maxshape, *chunks, *fill,
        *axis;
    long level; /* -1: not given */
    int shuffle, exist_ok, recursive, soft, force_str;
    /* how to reach the server beyond host and port (connect.c) */
    const char *token_file, *tls_ca;
    int tls;
    int reconnect; /* --reconnect: ride over a lost connection (exactly-once) */
    /* operands */
    const char *pos[CLI_MAX_POS];
    int npos;
    /* read by prepare hooks */
    hdf5a_sel sel[CLI_MAX_SEL]; /* --slice, parsed */
    int nsel;
    npy_array arr;              /* put/append's FILE.npy, loaded */
    hdf5a_batch *batch;         /* batch's requests, read */
} cli_args;

/* ---- report.c: errors on stderr ---- */

/* "hdf5-async: ..." on stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Names the command in usage errors and in their hint ("Try 'hdf5-async
 * get --help'"); NULL before the command is known. */
void cli_set_command(const char *name);
/* A usage error, with a hint to --help; returns EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A library error as "hdf5-async: CODE: message"; returns the exit status.
 * from_file: the request carried an array read from a .npy file. */
int cli_lib_error(hdf5a_client *c, int rc, int from_file);
/* Where the token came from ("--token-file F", ...), or NULL when none was
 * given: an UNAUTHENTICATED message then says which, or how to give one. */
void cli_set_token_source(const char *from);
/* " (the token from F)" or " (no token given: ...)", for UNAUTHENTICATED. */
const char *cli_token_hint(void);

/* ---- the commands: each returns an exit status ---- */

/* cmd_data.c: what moves data or makes datasets */
int cmd_ping(hdf5a_client *c, const cli_args *a);
int cmd_put(hdf5a_client *c, const cli_args *a);
int cmd_append(hdf5a_client *c, const cli_args *a);
int cmd_get(hdf5a_client *c, const cli_args *a);
int cmd_create(hdf5a_client *c, const cli_args *a);
int cmd_resize(hdf5a_client *c, const cli_args *a);
/* before connecting: --slice parsed; put/append's FILE.npy loaded */
int prepare_put(cli_args *a);
int prepare_append(cli_args *a);
int prepare_get(cli_args *a);

/* cmd_meta.c: the namespace, attributes and descriptions */
int cmd_mkgroup(hdf5a_client *c, const cli_args *a);
int cmd_rm(hdf5a_client *c, const cli_args *a);
int cmd_ls(hdf5a_client *c, const cli_args *a);
int cmd_tree(hdf5a_client *c, const cli_args *a);
int cmd_info(hdf5a_client *c, const cli_args *a);
int cmd_attr(hdf5a_client *c, const cli_args *a);
int cmd_ln(hdf5a_client *c, const cli_args *a);
int cmd_mv(hdf5a_client *c, const cli_args *a);
int cmd_compact(hdf5a_client *c, const cli_args *a);
int cmd_ls_files(hdf5a_client *c, const cli_args *a);
/* cmd_batch.c: requests from a file, one JSON object a line, as one batch */
int prepare_batch(cli_args *a);
int cmd_batch(hdf5a_client *c, const cli_args *a);
/* before the config file is read: ln needs -s */
int check_ln(const cli_args *a);

/* token.c: `token NAME ROLE [PREFIX ...]`, which needs no server */
int check_token(const cli_args *a);
int cmd_token(const cli_args *a);

#endif
