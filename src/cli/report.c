/* The CLI's error reporting (cli.h): "hdf5-async: ..." messages, usage
 * errors with their hint to --help, and the library's errors turned into
 * an exit status. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *g_cmd; /* for "Try ... --help" */
static char g_token_hint[8400];

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

void cli_set_token_source(const char *from)
{
    if (from)
        snprintf(g_token_hint, sizeof g_token_hint, " (the token from %s)", from);
    else
        snprintf(g_token_hint, sizeof g_token_hint,
                 " (no token given: --token-file, $HDF5_ASYNC_TOKEN or the config's [client] "
                 "token_file)");
}

const char *cli_token_hint(void) { return g_token_hint; }

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
    const char *hint = rc == HDF5A_EUNAUTHENTICATED ? g_token_hint : "";
    if (*text) cli_msg("%s: %s%s", code, text, hint);
    else cli_msg("%s%s", code, hint);
    /* every server code, UNAUTHENTICATED and PERMISSION_DENIED included;
     * the library checks types the way the server would and then answers
     * with the server's code (UNSUPPORTED_TYPE): same status either way */
    if (rc <= HDF5A_EBAD_REQUEST && rc >= HDF5A_ELAST_SERVER) return EXIT_SERVER;
    /* the library refused an argument before sending anything; the only
     * one it can refuse here is the array, which came from the file */
    if (rc == HDF5A_EINVAL) return from_file ? EXIT_FILE : EXIT_USAGE;
    return EXIT_CONN;
}
