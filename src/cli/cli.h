/* What the CLI's command files share with main.c: exit statuses and the
 * error printers. */
#ifndef H5A_CLI_CLI_H
#define H5A_CLI_CLI_H

#include "hdf5_async.h"

#define PROG "hdf5-async"

/* Exit statuses: part of the interface, scripts rely on them. */
enum {
    EXIT_OK = 0,
    EXIT_SERVER = 1, /* the server answered with an error */
    EXIT_USAGE = 2,  /* bad command line or config file */
    EXIT_CONN = 3,   /* connection, I/O or timeout error */
    EXIT_FILE = 4    /* cannot read, parse or write a local .npy file */
};

/* "hdf5-async: ..." on stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error of the current command, with a hint to its --help. */
int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A library error as "hdf5-async: CODE: message"; returns the exit status.
 * from_file: the request carried an array read from a .npy file. */
int lib_error(hdf5a_client *c, int rc, int from_file);

/* meta.c: ls, tree, info, attr, ln, mv. Each returns an exit status. */
int cmd_ls(hdf5a_client *c, const char *path, int recursive);
int cmd_tree(hdf5a_client *c, const char *path);
int cmd_info(hdf5a_client *c, const char *path);
/* attr SUB ARGS: pos[0] is the subcommand; npy/output/force_str are its options. */
int cmd_attr(hdf5a_client *c, const char *const *pos, int npos, const char *npy,
             const char *output, int force_str);

#endif
