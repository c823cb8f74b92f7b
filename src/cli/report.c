/* The CLI's error reporting (cli.h): "hdf5-async: ..." messages, usage
 * errors with their hint to --help, and the library's errors turned into
 * an exit status. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *g_cmd; /* for "Try ... --help" */

void cli_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_set_command(const char *name) { g_cmd = name; }

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    if (g_cmd) fprintf(stderr, "%s: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "Try '" PROG "%s%s --help' for more information.\n", g_cmd ? " " : "",
            g_cmd ? g_cmd : "");
    return EXIT_USAGE;
}

int cli_lib_error(hdf5a_client *c, int rc, int from_file)
{
    const char *code = hdf5a_strerror(rc);
    const char *text = c ? hdf5a_errstr(c) : "";
    size_t cl = strlen(code);
    /* the library may already have prefixed the code */
    if (strncmp(text, code, cl) == 0 && text[cl] == ':') {
        text += cl + 1;
        while (*text == ' ') text++;
    }
    if (*text) cli_msg("%s: %s", code, text);
    else cli_msg("%s", code);
    /* every server code, UNAUTHENTICATED and PERMISSION_DENIED included;
     * the library checks types the way the server would and then answers
     * with the server's code (UNSUPPORTED_TYPE): same status either way */
    if (rc <= HDF5A_EBAD_REQUEST && rc >= HDF5A_EPERMISSION_DENIED) return EXIT_SERVER;
    /* the library refused an argument before sending anything; the only
     * one it can refuse here is the array, which came from the file */
    if (rc == HDF5A_EINVAL) return from_file ? EXIT_FILE : EXIT_USAGE;
    return EXIT_CONN;
}
