/* The command table: each command's name, its --help text, the options
 * and operands it takes, and the functions that check, prepare and run it.
 * Adding a command is one entry in commands.c and its handler. */
#ifndef H5A_CLI_COMMANDS_H
#define H5A_CLI_COMMANDS_H

#include <stdint.h>

#include "cli/cli.h"

typedef struct cli_command {
    const char *name;
    const char *help;  /* what 'COMMAND --help' prints */
    uint32_t opts;     /* options beyond OPTS_GLOBAL (opts.h) */
    int npos, maxpos;  /* operands required, allowed */
    const char *posnames[2]; /* the required ones, for "missing X" */
    /* NULL when there is nothing to do at that step; each returns 0 or an
     * exit status after reporting */
    int (*check)(const cli_args *a);   /* before the config file is read */
    int (*prepare)(cli_args *a);       /* before connecting: local input */
    int (*run)(hdf5a_client *c, const cli_args *a);
    /* instead of run, for a command that needs no server: neither the
     * config file nor the connection options are looked at */
    int (*run_local)(const cli_args *a);
} cli_command;

/* NULL for an unknown name. */
const cli_command *cli_find_command(const char *name);
/* "ping, mkgroup, ...": every command, in table order. */
const char *cli_command_names(void);
/* The command's --help text, or (cmd NULL) the main one, on stdout;
 * returns EXIT_OK. */
int cli_print_help(const cli_command *cmd);

#endif
