/* The CLI's options: one table of every option, and the one parser that
 * reads them before the command (global options, --version) and after it
 * (global options and the command's own). */
#ifndef H5A_CLI_OPTS_H
#define H5A_CLI_OPTS_H

#include <stdint.h>

#include "cli/cli.h"

enum cli_opt_id {
    OPT_HOST, OPT_PORT, OPT_CONFIG, OPT_TIMEOUT, OPT_DURABILITY, OPT_HELP, OPT_VERSION,
    OPT_COMPRESSION, OPT_LEVEL, OPT_OUTPUT, OPT_SLICE, OPT_SHAPE, OPT_DTYPE, OPT_MAXSHAPE,
    OPT_CHUNKS, OPT_FILL, OPT_SHUFFLE, OPT_EXIST_OK, OPT_AXIS, OPT_RECURSIVE, OPT_SOFT, OPT_NPY,
    OPT_STRING, OPT_TOKEN_FILE, OPT_TLS, OPT_TLS_CA, OPT_FILE, OPT_RECONNECT,
    OPT_COUNT
};
_Static_assert(OPT_COUNT <= 32, "option sets are 32-bit masks");

/* A set of options, as a mask of (1 << cli_opt_id). */
#define OPT(id) (UINT32_C(1) << (id))
/* Accepted before and after the command. */
#define OPTS_GLOBAL                                                                                \
    (OPT(OPT_HOST) | OPT(OPT_PORT) | OPT(OPT_CONFIG) | OPT(OPT_TIMEOUT) | OPT(OPT_DURABILITY) |  \
     OPT(OPT_HELP) | OPT(OPT_TOKEN_FILE) | OPT(OPT_TLS) | OPT(OPT_TLS_CA) | OPT(OPT_FILE) |      \
     OPT(OPT_RECONNECT))
/* Only before the command. */
#define OPTS_BEFORE_COMMAND (OPTS_GLOBAL | OPT(OPT_VERSION))

/* Defaults: nothing given. */
void cli_args_init(cli_args *a);
/* Frees what prepare hooks read into a. */
void cli_args_free(cli_args *a);

/* GNU-style: "--opt=value" or "--opt value", "-oFILE", "--" ends options,
 * "-" alone is an operand (standard input or output). Reads argv from *i
 * on, accepting the options in `allowed`:
 *  - before the command (before_command set): stops at the first operand,
 *    the command's name, leaving *i on it; --version stops at once;
 *  - after it: options anywhere, operands collected into a->pos.
 * Returns 0, or EXIT_USAGE after reporting. */
int cli_parse_options(int argc, char **argv, int *i, uint32_t allowed, int before_command,
                      cli_args *a);

/* What no single option can judge: --level against --compression (and
 * gzip implied by --level alone), --slice with either. Returns 0, or
 * EXIT_USAGE after reporting. */
int cli_check_options(cli_args *a);

/* A whole decimal number within [lo, hi]; 0, or -1. */
int cli_parse_long(const char *s, long lo, long hi, long *out);

#endif
