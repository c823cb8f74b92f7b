/* hdf5-async: the command-line client of hdf5-async-server. main() reads
 * the command line (opts.c), picks the command (commands.c), checks and
 * prepares what can be done without the server, connects and runs it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/connect.h"
#include "cli/opts.h"
#include "hdf5_async.h"

/* The command named at argv[*i] ("help COMMAND" too), moving *i past it.
 * NULL with *status set when there is nothing to run: help was printed,
 * or the name is missing or unknown. */
static const cli_command *pick_command(int argc, char **argv, int *i, cli_args *a, int *status)
{
    if (*i >= argc) {
        *status = a->help ? cli_print_help(NULL)
                          : cli_usage("no command given (%s)", cli_command_names());
        return NULL;
    }
    const char *name = argv[(*i)++];
    if (strcmp(name, "help") == 0) {
        if (*i >= argc) {
            *status = cli_print_help(NULL);
            return NULL;
        }
        name = argv[*i];
        a->help = 1;
        *i = argc;
    }
    const cli_command *cmd = cli_find_command(name);
    if (!cmd) {
        *status = a->help ? cli_print_help(NULL)
                          : cli_usage("unknown command '%s' (commands: %s)", name,
                                      cli_command_names());
        return NULL;
    }
    cli_set_command(cmd->name);
    /* --help anywhere wins over anything else on the line */
    for (int k = *i; k < argc && strcmp(argv[k], "--"); k++)
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) a->help = 1;
    if (a->help) {
        *status = cli_print_help(cmd);
        return NULL;
    }
    return cmd;
}

/* Everything that needs no connection, in the order users meet errors:
 * the command line, the config file, the token and CA files, then local
 * input. A command that needs no server stops after the command line. */
static int check_and_prepare(const cli_command *cmd, cli_args *a, cli_target *target,
                             cli_conn *conn)
{
    int rc;
    if (a->npos < cmd->npos) return cli_usage("missing %s argument", cmd->posnames[a->npos]);
    if (a->npos > cmd->maxpos) return cli_usage("unexpected argument '%s'", a->pos[cmd->maxpos]);
    if (cmd->check && (rc = cmd->check(a))) return rc;
    if ((rc = cli_check_options(a))) return rc;
    if (cmd->run_local) return 0;
    char err[4400];
    if (cli_resolve_target(a->config, a->host, a->port, target, err, sizeof err)) {
        cli_msg("%s", err);
        return EXIT_USAGE;
    }
    if (a->file && target->nnodes && !a->host && a->port < 0) {
        /* [cluster]: the node that serves the file (docs/protocol.md 4b) */
        const char *nodes[CLI_MAX_NODES];
        for (int k = 0; k < target->nnodes; k++) nodes[k] = target->nodes[k];
        const char *node = nodes[hdf5a_cluster_owner(nodes, target->nnodes, a->file)];
        const char *colon = strrchr(node, ':');
        int port = colon ? cli_parse_port(colon + 1) : -1;
        if (port < 0) {
            cli_msg("%s: [cluster] nodes: '%s' is not HOST:PORT", target->config, node);
            return EXIT_USAGE;
        }
        snprintf(target->host, sizeof target->host, "%.*s", (int)(colon - node), node);
        target->port = port;
    }
    if ((rc = cli_conn_resolve(a, target, conn))) return rc;
    return cmd->prepare ? cmd->prepare(a) : 0;
}

int main(int argc, char **argv)
{
    /* a closed pipe on stdout or a dropped connection must show up as an
     * error return, not kill us silently */
    signal(SIGPIPE, SIG_IGN);

    cli_args a;
    cli_args_init(&a);
    int i = 1, rc = 0;
    if (cli_parse_options(argc, argv, &i, OPTS_BEFORE_COMMAND, 1, &a)) return EXIT_USAGE;
    if (a.version) {
        printf(PROG " %s\n", HDF5A_VERSION);
        return EXIT_OK;
    }
    const cli_command *cmd = pick_command(argc, argv, &i, &a, &rc);
    if (!cmd) return rc;
    if (cli_parse_options(argc, argv, &i, OPTS_GLOBAL | cmd->opts, 0, &a)) return EXIT_USAGE;

    cli_target target;
    cli_conn conn = {0};
    hdf5a_client *c = NULL;
    if (!(rc = check_and_prepare(cmd, &a, &target, &conn))) {
        if (cmd->run_local) rc = cmd->run_local(&a);
        else rc = cli_connect(&target, &conn, a.timeout_ms < 0 ? 0 : a.timeout_ms, &c);
    }
    cli_conn_free(&conn);
    if (c) {
        hdf5a_set_durability(c, a.durability);
        if (a.file && hdf5a_set_file(c, a.file)) rc = EXIT_USAGE;
        else rc = cmd->run(c, &a);
        hdf5a_close(c);
    }
    cli_args_free(&a);
    if (fflush(stdout) != 0 && errno != EPIPE && rc == EXIT_OK) {
        cli_msg("write error on standard output: %s", strerror(errno));
        rc = EXIT_FILE;
    }
    return rc;
}
