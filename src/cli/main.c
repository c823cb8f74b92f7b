/* hdf5-async: the command-line client of hdf5-async-server. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "cli/nptype.h"
#include "cli/format.h"
#include "cli/npy.h"
#include "cli/progress.h"
#include "cli/sel.h"
#include "hdf5_async.h"

static const char MAIN_HELP[] =
    "Usage: " PROG " [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Command-line client of the hdf5-async server, which owns one HDF5 file.\n"
    "\n"
    "Commands:\n"
    "  ping                    check that the server answers (prints \"pong\" and the\n"
    "                          round-trip time)\n"
    "  mkgroup PATH            create a group and any missing parents\n"
    "  put PATH FILE.npy       write a .npy file as the dataset at PATH\n"
    "  append PATH FILE.npy    append the rows of a .npy file along axis 0\n"
    "  get PATH [-o FILE.npy]  print a dataset (or --slice of it), or save it as .npy\n"
    "  create PATH --shape S   create an empty dataset (dtype, chunks, maxshape, ...)\n"
    "  resize PATH SHAPE       change a chunked dataset's shape within its maxshape\n"
    "  rm PATH                 delete a dataset, a group and all it holds, or a link\n"
    "  ls [-r] [PATH]          list a group's members (-r: everything below), like h5ls\n"
    "  tree [PATH]             everything below a group, indented\n"
    "  info PATH               describe a dataset (shape, dtype, chunks, compression,\n"
    "                          fill value, storage size) or a group\n"
    "  attr ls|get|set|rm PATH [NAME [VALUE]]\n"
    "                          list, print, set or delete attributes\n"
    "  ln -s TARGET PATH       create a soft link at PATH pointing at TARGET\n"
    "  mv PATH DEST            move (rename) a dataset, group or link\n"
    "Run '" PROG " COMMAND --help' for a command's options.\n"
    "\n"
    "Options (before or after COMMAND):\n"
    "  --host HOST      server host name or address\n"
    "  --port PORT      server TCP port\n"
    "  --config FILE    config file (default: ./config.ini when it exists)\n"
    "  --timeout MS     give up when connecting, or waiting for a reply, takes longer\n"
    "                   than MS milliseconds (default 0: wait as long as it takes)\n"
    "  --durability L   none, flush or fsync: what the server's ok to a change\n"
    "                   promises (survives nothing / the server dying / the machine\n"
    "                   dying); default: the server's durability setting. With\n"
    "                   ping, flush or fsync make it a barrier for everything the\n"
    "                   server has applied so far\n"
    "  -h, --help       show this help\n"
    "  --version        show the version\n"
    "\n"
    "Host and port come from --host/--port, else from the config file: for each of\n"
    "them the [client] section's value when it has one, else the [server] section's.\n"
    "A host of 0.0.0.0, :: or empty means 127.0.0.1. Defaults: 127.0.0.1, 8888.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the server answered with an error (\"" PROG ": CODE: message\" on stderr)\n"
    "  2  usage error: bad command line or config file\n"
    "  3  connection, I/O or timeout error\n"
    "  4  local file error: cannot read, parse or write a .npy file, or the library\n"
    "     refused its array before sending it\n"
    "Errors are always printed on stderr.\n";

static const char PING_HELP[] =
    "Usage: " PROG " [OPTIONS] ping\n"
    "\n"
    "Send a ping; print \"pong\" and the round-trip time in milliseconds\n"
    "(not counting the connection set-up). With --durability flush or fsync, the\n"
    "reply waits until everything the server has applied so far is that durable.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 pong received, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char MKGROUP_HELP[] =
    "Usage: " PROG " [OPTIONS] mkgroup PATH\n"
    "\n"
    "Create the group PATH and any missing parents (like mkdir -p). An existing\n"
    "group is fine; a dataset at PATH is an error (EXISTS). Prints nothing.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char PUT_HELP[] =
    "Usage: " PROG " [OPTIONS] put PATH FILE.npy [--compression C] [--level N]\n"
    "       " PROG " [OPTIONS] put PATH FILE.npy --slice SEL\n"
    "\n"
    "Write the array in FILE.npy (\"-\": standard input) as the dataset at PATH,\n"
    "creating missing parent groups and replacing a dataset of another shape or\n"
    "type. Prints nothing.\n"
    "\n"
    "  --slice SEL      write into that part of the existing dataset instead (as\n"
    "                   dataset[SEL] = array in numpy): SEL is numpy's index syntax,\n"
    "                   e.g. '10:20, ::2' or '..., 0' (see 'get --help'); the array\n"
    "                   has the selection's shape, or is a single value (0-d) written\n"
    "                   to every selected element; numbers are converted to the\n"
    "                   dataset's type. Not with --compression/--level.\n"
    "  --compression C  gzip, lzf, none, or the plugins lz4, bzip2, bitshuffle when the\n"
    "                   server has them (default: the server's setting)\n"
    "  --level N        gzip level 0..9 (default 4), bzip2 block size 1..9 (default\n"
    "                   9) or lz4 block size in bytes; alone, it means gzip\n"
    "\n"
    ".npy files of format 1.0, 2.0 and 3.0 are read, Fortran-ordered ones are\n"
    "transposed to C order, unicode ('U') arrays are stored as variable-length\n"
    "UTF-8 strings (empty ones are refused: they would arrive as float64). Object\n"
    "arrays ('O') cannot be read.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout,\n"
    "4 FILE.npy cannot be read or parsed.\n";

static const char APPEND_HELP[] =
    "Usage: " PROG " [OPTIONS] append PATH FILE.npy [--compression C] [--level N]\n"
    "\n"
    "Append the array in FILE.npy (\"-\": standard input) along axis 0 of the dataset\n"
    "at PATH: shape (k, d1, ...) adds k rows, shape (d1, ...) adds one row. A\n"
    "missing dataset is created, resizable along axis 0 (compression applies only\n"
    "then). Prints the dataset's new length along axis 0.\n"
    "\n"
    "  --compression C  gzip, lzf, none, or the plugins lz4, bzip2, bitshuffle when the\n"
    "                   server has them (default: the server's setting)\n"
    "  --level N        gzip level 0..9 (default 4), bzip2 block size 1..9 (default\n"
    "                   9) or lz4 block size in bytes; alone, it means gzip\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout,\n"
    "4 FILE.npy cannot be read or parsed.\n";

static const char GET_HELP[] =
    "Usage: " PROG " [OPTIONS] get PATH [--slice SEL] [-o FILE.npy]\n"
    "\n"
    "Read the dataset at PATH, or with --slice only part of it.\n"
    "\n"
    "  --slice SEL   numpy's index syntax, as in dataset[SEL]: items separated by\n"
    "                commas, each an index (negative counts from the end; it drops\n"
    "                the axis), a slice start:stop:step (any part may be left out;\n"
    "                the step must be positive) or '...'; e.g. '10:20, ::2', '-1',\n"
    "                '..., 0'. Only the selected elements are transferred.\n"
    "Without -o: a scalar prints plainly (a number as Python prints it, a string\n"
    "as its text); an array of up to 1000 elements prints like numpy's repr, with\n"
    "its shape and dtype; a larger one prints only its shape, dtype and size.\n"
    "\n"
    "  -o, --output FILE.npy  save the dataset as a .npy file (\"-\": standard\n"
    "                         output) instead of printing it; the file is written\n"
    "                         under a temporary name and renamed when complete\n"
    "\n"
    "Variable-length strings are saved as fixed-width numpy arrays sized to the\n"
    "longest element: UTF-8 strings as unicode ('<U'), byte strings as 'S'.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout,\n"
    "4 FILE.npy cannot be written.\n";

static const char CREATE_HELP[] =
    "Usage: " PROG " [OPTIONS] create PATH --shape SHAPE [--dtype T] [--maxshape SHAPE]\n"
    "       [--chunks auto|none|SHAPE] [--fill VALUE] [--compression C] [--level N]\n"
    "       [--shuffle] [--exist-ok]\n"
    "\n"
    "Create a dataset without data (reads give the fill value), with missing\n"
    "parent groups, as h5py's create_dataset. Prints nothing.\n"
    "\n"
    "  --shape SHAPE      sizes separated by commas: '100,3'; '()' for a scalar\n"
    "  --dtype T          numpy's type: f8, <i4, >u2, int32, float32, bool, S10, a\n"
    "                     descr list as JSON, or str / bytes for variable-length\n"
    "                     strings (default f4, as in h5py)\n"
    "  --maxshape SHAPE   how far each axis may grow; None (or *) for unlimited:\n"
    "                     'None,3'. Makes the dataset resizable (and chunked)\n"
    "  --chunks C         auto (h5py's guess), none (contiguous) or a chunk shape;\n"
    "                     default: chunked only when maxshape or a filter needs it\n"
    "  --fill VALUE       fill value: a number, true/false, or text for a string\n"
    "                     dataset\n"
    "  --compression C  gzip, lzf, none, or the plugins lz4, bzip2, bitshuffle when the\n"
    "                   server has them (default: the server's setting)\n"
    "  --level N        gzip level 0..9 (default 4), bzip2 block size 1..9 (default\n"
    "                   9) or lz4 block size in bytes; alone, it means gzip\n"
    "  --shuffle          byte-shuffle filter before the compressor\n"
    "  --exist-ok         an existing dataset of the same shape and dtype is fine\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (e.g. EXISTS), 2 usage, 3 connection/timeout.\n";

static const char RESIZE_HELP[] =
    "Usage: " PROG " [OPTIONS] resize PATH SHAPE [--axis N]\n"
    "\n"
    "Change the shape of the chunked dataset at PATH to SHAPE ('200,3'), within\n"
    "its maxshape, as h5py's Dataset.resize: data outside the new shape is\n"
    "dropped, new elements read as the fill value. Prints the new shape.\n"
    "\n"
    "  --axis N   SHAPE is one size, for axis N (negative counts from the end);\n"
    "             the other axes stay as they are\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (OUT_OF_RANGE past maxshape or for a dataset\n"
    "that is not chunked), 2 usage, 3 connection/timeout.\n";

static const char RM_HELP[] =
    "Usage: " PROG " [OPTIONS] rm PATH\n"
    "\n"
    "Delete the dataset at PATH, or the group at PATH with everything under it.\n"
    "When PATH is a soft or external link, the link is removed, not its target.\n"
    "Prints nothing.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (e.g. NOT_FOUND), 2 usage,\n"
    "3 connection/timeout.\n";

static const char LS_HELP[] =
    "Usage: " PROG " [OPTIONS] ls [-r] [PATH]\n"
    "\n"
    "List the members of the group PATH (default /) in name order, one per line,\n"
    "like h5ls: the name, then what it is:\n"
    "  Group\n"
    "  Dataset {DIMS} DTYPE    DIMS as h5ls shows them: 10/Inf is 10 now, unlimited;\n"
    "                          SCALAR for a scalar, NULL for an empty dataset\n"
    "  Type DTYPE              a named datatype\n"
    "  Soft Link {TARGET}\n"
    "  External Link {FILE//PATH}\n"
    "A dataset at PATH is listed as itself.\n"
    "\n"
    "  -r, --recursive  everything below PATH, depth first, as full paths (h5ls -r)\n"
    "\n"
    "Links are listed, not followed. Large groups are fetched in pages, so any\n"
    "number of members can be listed.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (NOT_FOUND, ...), 2 usage, 3 connection/timeout.\n";

static const char TREE_HELP[] =
    "Usage: " PROG " [OPTIONS] tree [PATH]\n"
    "\n"
    "Show everything below the group PATH (default /) as an indented tree, two\n"
    "spaces per level: groups end in '/', datasets show their shape and dtype,\n"
    "links show where they point ('name -> /target').\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char INFO_HELP[] =
    "Usage: " PROG " [OPTIONS] info PATH\n"
    "\n"
    "Describe the object at PATH (links followed), one property per line. A\n"
    "dataset: shape, maxshape, dtype, HDF5 class, layout, chunks, compression,\n"
    "filters, fill value, storage size and number of attributes. A group: its\n"
    "number of members and attributes.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (NOT_FOUND, ...), 2 usage, 3 connection/timeout.\n";

static const char ATTR_HELP[] =
    "Usage: " PROG " [OPTIONS] attr ls PATH\n"
    "       " PROG " [OPTIONS] attr get PATH NAME [-o FILE.npy]\n"
    "       " PROG " [OPTIONS] attr set PATH NAME VALUE [--string]\n"
    "       " PROG " [OPTIONS] attr set PATH NAME --npy FILE.npy\n"
    "       " PROG " [OPTIONS] attr rm PATH NAME\n"
    "\n"
    "Attributes of the group or dataset at PATH (/ is the root group).\n"
    "  ls   one line per attribute, in name order: NAME {DIMS} DTYPE\n"
    "  get  print the value as 'get' prints a dataset (-o: save it as .npy)\n"
    "  set  set (or replace) the attribute, stored as h5py stores the same value:\n"
    "       VALUE true/false is a bool, an integer an int64, a number a float64,\n"
    "       [1, 2, 3] a 1-D array (int64, or float64 if any element is not an\n"
    "       integer), anything else a string (variable-length UTF-8)\n"
    "  rm   delete the attribute\n"
    "\n"
    "  --string         store VALUE as a string even if it looks like a number\n"
    "  --npy FILE.npy   the value is the array in FILE.npy (\"-\": standard input)\n"
    "  -o FILE.npy      (get) save the value as a .npy file\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (NOT_FOUND, ...), 2 usage,\n"
    "3 connection/timeout, 4 FILE.npy cannot be read or written.\n";

static const char LN_HELP[] =
    "Usage: " PROG " [OPTIONS] ln -s TARGET PATH\n"
    "\n"
    "Create a soft link at PATH whose value is TARGET: an absolute path, or one\n"
    "relative to PATH's group. TARGET need not exist yet. Missing parent groups of\n"
    "PATH are created; something already at PATH is an error (EXISTS). Only soft\n"
    "links can be made (-s is required, as a reminder). Prints nothing.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char MV_HELP[] =
    "Usage: " PROG " [OPTIONS] mv PATH DEST\n"
    "\n"
    "Move (rename) the dataset, group or link at PATH to DEST, creating missing\n"
    "parent groups of DEST. DEST must not exist (EXISTS); a link is moved as a\n"
    "link, its target unchanged. Prints nothing.\n"
    "\n"
    "Options: --host, --port, --config, --timeout, --durability (see '" PROG " --help').\n"
    "Exit status: 0 ok, 1 server error (NOT_FOUND, EXISTS, ...), 2 usage,\n"
    "3 connection/timeout.\n";

/* ---- errors ---- */

void msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char *g_cmd; /* for "Try ... --help" */

int usage(const char *fmt, ...)
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

/* Library errors: "hdf5-async: CODE: message" (cli.h). */
int lib_error(hdf5a_client *c, int rc, int from_file)
{
    const char *code = hdf5a_strerror(rc);
    const char *text = c ? hdf5a_errstr(c) : "";
    size_t cl = strlen(code);
    /* the library may already have prefixed the code */
    if (strncmp(text, code, cl) == 0 && text[cl] == ':') {
        text += cl + 1;
        while (*text == ' ') text++;
    }
    if (*text) msg("%s: %s", code, text);
    else msg("%s", code);
    /* the library checks types the way the server would and then answers
     * with the server's code (UNSUPPORTED_TYPE): same status either way */
    if (rc <= HDF5A_EBAD_REQUEST && rc >= HDF5A_EINTERNAL) return EXIT_SERVER;
    /* the library refused an argument before sending anything; the only
     * one it can refuse here is the array, which came from the file */
    if (rc == HDF5A_EINVAL) return from_file ? EXIT_FILE : EXIT_USAGE;
    return EXIT_CONN;
}

/* ---- command line ---- */

enum { OPT_HOST = 1, OPT_PORT, OPT_CONFIG, OPT_TIMEOUT, OPT_HELP, OPT_VERSION, OPT_COMPRESSION,
       OPT_LEVEL, OPT_OUTPUT, OPT_SLICE, OPT_SHAPE, OPT_DTYPE, OPT_MAXSHAPE, OPT_CHUNKS, OPT_FILL,
       OPT_SHUFFLE, OPT_EXIST_OK, OPT_AXIS, OPT_RECURSIVE, OPT_SOFT, OPT_NPY, OPT_STRING,
       OPT_DURABILITY };

typedef struct optdef {
    const char *lname;
    char sname;
    int has_arg;
    int id;
} optdef;

static const optdef GLOBAL_OPTS[] = {
    {"host", 0, 1, OPT_HOST},   {"port", 0, 1, OPT_PORT}, {"config", 0, 1, OPT_CONFIG},
    {"timeout", 0, 1, OPT_TIMEOUT}, {"durability", 0, 1, OPT_DURABILITY},
    {"help", 'h', 0, OPT_HELP},     {NULL, 0, 0, 0}};
static const optdef PUT_OPTS[] = {{"compression", 0, 1, OPT_COMPRESSION},
                                   {"level", 0, 1, OPT_LEVEL},
                                   {"slice", 0, 1, OPT_SLICE},
                                   {NULL, 0, 0, 0}};
static const optdef TRANSFER_OPTS[] = {
    {"compression", 0, 1, OPT_COMPRESSION}, {"level", 0, 1, OPT_LEVEL}, {NULL, 0, 0, 0}};
static const optdef GET_OPTS[] = {
    {"output", 'o', 1, OPT_OUTPUT}, {"slice", 0, 1, OPT_SLICE}, {NULL, 0, 0, 0}};
static const optdef CREATE_OPTS[] = {
    {"shape", 0, 1, OPT_SHAPE},       {"dtype", 0, 1, OPT_DTYPE},
    {"maxshape", 0, 1, OPT_MAXSHAPE}, {"chunks", 0, 1, OPT_CHUNKS},
    {"fill", 0, 1, OPT_FILL},         {"compression", 0, 1, OPT_COMPRESSION},
    {"level", 0, 1, OPT_LEVEL},       {"shuffle", 0, 0, OPT_SHUFFLE},
    {"exist-ok", 0, 0, OPT_EXIST_OK}, {NULL, 0, 0, 0}};
static const optdef RESIZE_OPTS[] = {{"axis", 0, 1, OPT_AXIS}, {NULL, 0, 0, 0}};
static const optdef NO_OPTS[] = {{NULL, 0, 0, 0}};
static const optdef LS_OPTS[] = {{"recursive", 'r', 0, OPT_RECURSIVE}, {NULL, 0, 0, 0}};
static const optdef LN_OPTS[] = {{"symbolic", 's', 0, OPT_SOFT}, {NULL, 0, 0, 0}};
static const optdef ATTR_OPTS[] = {{"output", 'o', 1, OPT_OUTPUT},
                                   {"npy", 0, 1, OPT_NPY},
                                   {"string", 0, 0, OPT_STRING},
                                   {NULL, 0, 0, 0}};

typedef struct cmd {
    const char *name;
    int npos;    /* positional arguments required ... */
    int maxpos;  /* ... and allowed */
    const char *posnames[2];
    const optdef *opts;
    const char *help;
} cmd;

/* CMDS is indexed by these: the same order */
enum { CMD_PING, CMD_MKGROUP, CMD_PUT, CMD_APPEND, CMD_GET, CMD_RM, CMD_CREATE, CMD_RESIZE,
       CMD_LS, CMD_TREE, CMD_INFO, CMD_ATTR, CMD_LN, CMD_MV };
static const cmd CMDS[] = {
    {"ping", 0, 0, {NULL, NULL}, NO_OPTS, PING_HELP},
    {"mkgroup", 1, 1, {"PATH", NULL}, NO_OPTS, MKGROUP_HELP},
    {"put", 2, 2, {"PATH", "FILE.npy"}, PUT_OPTS, PUT_HELP},
    {"append", 2, 2, {"PATH", "FILE.npy"}, TRANSFER_OPTS, APPEND_HELP},
    {"get", 1, 1, {"PATH", NULL}, GET_OPTS, GET_HELP},
    {"rm", 1, 1, {"PATH", NULL}, NO_OPTS, RM_HELP},
    {"create", 1, 1, {"PATH", NULL}, CREATE_OPTS, CREATE_HELP},
    {"resize", 2, 2, {"PATH", "SHAPE"}, RESIZE_OPTS, RESIZE_HELP},
    {"ls", 0, 1, {NULL, NULL}, LS_OPTS, LS_HELP},
    {"tree", 0, 1, {NULL, NULL}, NO_OPTS, TREE_HELP},
    {"info", 1, 1, {"PATH", NULL}, NO_OPTS, INFO_HELP},
    {"attr", 2, 4, {"subcommand (ls, get, set, rm)", "PATH"}, ATTR_OPTS, ATTR_HELP},
    {"ln", 2, 2, {"TARGET", "PATH"}, LN_OPTS, LN_HELP},
    {"mv", 2, 2, {"PATH", "DEST"}, NO_OPTS, MV_HELP},
};
#define NCMDS (sizeof CMDS / sizeof CMDS[0])
_Static_assert(NCMDS == CMD_MV + 1, "one CMDS entry per CMD_*");
#define COMMAND_LIST                                                                               \
    "ping, mkgroup, put, append, get, rm, create, resize, ls, tree, info, attr, ln, mv"

typedef struct args {
    const char *host, *config, *output, *compression, *npy;
    int port;       /* -1: not given */
    int timeout_ms; /* -1: not given */
    long level;     /* -1: not given */
    hdf5a_durability durability; /* DEFAULT: not given */
    const char *slice, *shape, *dtype, *maxshape, *chunks, *fill, *axis;
    int shuffle, exist_ok;
    int recursive, soft, force_str;
    const char *pos[4];
    int npos;
} args;

static const optdef *find_long(const optdef *set, const char *name, size_t n)
{
    for (; set->lname; set++)
        if (strlen(set->lname) == n && strncmp(set->lname, name, n) == 0) return set;
    return NULL;
}

static const optdef *find_short(const optdef *set, char c)
{
    for (; set->lname; set++)
        if (set->sname && set->sname == c) return set;
    return NULL;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int set_opt(args *a, const optdef *o, const char *val)
{
    long v;
    switch (o->id) {
    case OPT_HOST:
        if (!*val) return usage("--host: empty host");
        a->host = val;
        break;
    case OPT_PORT:
        if ((a->port = cli_parse_port(val)) < 0)
            return usage("--port: '%s' is not a port number (1..65535)", val);
        break;
    case OPT_CONFIG: a->config = val; break;
    case OPT_TIMEOUT:
        if (parse_int(val, 0, 0x7FFFFFFF, &v))
            return usage("--timeout: '%s' is not a number of milliseconds (0 = none)", val);
        a->timeout_ms = (int)v;
        break;
    case OPT_DURABILITY:
        if (strcmp(val, "none") == 0) a->durability = HDF5A_DURABILITY_NONE;
        else if (strcmp(val, "flush") == 0) a->durability = HDF5A_DURABILITY_FLUSH;
        else if (strcmp(val, "fsync") == 0) a->durability = HDF5A_DURABILITY_FSYNC;
        else return usage("--durability: '%s' is not one of none, flush, fsync", val);
        break;
    case OPT_COMPRESSION:
        if (strcmp(val, "gzip") && strcmp(val, "lzf") && strcmp(val, "none") &&
            strcmp(val, "lz4") && strcmp(val, "bzip2") && strcmp(val, "bitshuffle"))
            return usage("--compression: '%s' is not one of gzip, lzf, none, lz4, bzip2, "
                         "bitshuffle", val);
        a->compression = val;
        break;
    case OPT_LEVEL:
        /* the range depends on the compressor: checked once all options are in */
        if (parse_int(val, 0, 0x7E000000, &v))
            return usage("--level: '%s' is not a gzip level 0..9 (or a bzip2/lz4 option)", val);
        a->level = v;
        break;
    case OPT_SLICE: a->slice = val; break;
    case OPT_SHAPE: a->shape = val; break;
    case OPT_DTYPE:
        if (!*val) return usage("--dtype: empty type");
        a->dtype = val;
        break;
    case OPT_MAXSHAPE: a->maxshape = val; break;
    case OPT_CHUNKS: a->chunks = val; break;
    case OPT_FILL: a->fill = val; break;
    case OPT_SHUFFLE: a->shuffle = 1; break;
    case OPT_EXIST_OK: a->exist_ok = 1; break;
    case OPT_AXIS: a->axis = val; break;
    case OPT_OUTPUT:
        if (!*val) return usage("-o: empty file name");
        a->output = val;
        break;
    case OPT_NPY:
        if (!*val) return usage("--npy: empty file name");
        a->npy = val;
        break;
    case OPT_RECURSIVE: a->recursive = 1; break;
    case OPT_SOFT: a->soft = 1; break;
    case OPT_STRING: a->force_str = 1; break;
    default: break;
    }
    return 0;
}

/* GNU-style: options anywhere, "--opt=value" or "--opt value", "-oFILE",
 * "--" ends options; "-" alone is a file name (stdin/stdout). */
static int parse_args(int argc, char **argv, int i, const optdef *local, args *a, int *help)
{
    int opts_done = 0;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (opts_done || s[0] != '-' || s[1] == '\0') {
            if (a->npos >= 4) return usage("too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            opts_done = 1;
            continue;
        }
        const optdef *o;
        const char *val = NULL;
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(local, name, n);
            if (!o) o = find_long(GLOBAL_OPTS, name, n);
            if (!o) return usage("unknown option '--%.*s'", (int)n, name);
            if (eq && !o->has_arg) return usage("option '--%s' takes no value", o->lname);
            if (eq) val = eq + 1;
        } else {
            o = find_short(local, s[1]);
            if (!o) o = find_short(GLOBAL_OPTS, s[1]);
            if (!o) return usage("unknown option '%s'", s);
            if (s[2] && !o->has_arg) return usage("unknown option '%s'", s);
            if (s[2]) val = s + 2;
        }
        if (o->id == OPT_HELP) {
            *help = 1;
            continue;
        }
        if (o->has_arg && !val) {
            if (i + 1 >= argc) return usage("option '%s' needs a value", s);
            val = argv[++i];
        }
        if (set_opt(a, o, val)) return EXIT_USAGE;
    }
    return 0;
}

/* --slice SEL into sel/nsel; a usage error when it does not parse. */
static int get_selection(const args *a, hdf5a_sel *sel, int *nsel)
{
    char err[512];
    if (cli_parse_selection(a->slice, sel, nsel, err, sizeof err)) return usage("--slice: %s", err);
    return 0;
}

/* ---- commands ---- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static hdf5a_client *connect_to(const cli_target *t, int timeout_ms)
{
    char err[512] = "";
    hdf5a_client *c = hdf5a_connect(t->host, t->port, timeout_ms, err, sizeof err);
    if (!c) {
        /* the library's text may name the address too; say it once */
        char dup[300];
        snprintf(dup, sizeof dup, "connect to %s:%d: ", t->host, t->port);
        const char *why = strncmp(err, dup, strlen(dup)) == 0 ? err + strlen(dup) : err;
        msg("cannot connect to %s:%d: %s", t->host, t->port, *why ? why : "unknown error");
    }
    return c;
}

static int cmd_ping(hdf5a_client *c, hdf5a_durability d)
{
    double t0 = now_ms();
    /* a ping that asks for durability is the library's sync barrier */
    int rc = d == HDF5A_DURABILITY_FLUSH || d == HDF5A_DURABILITY_FSYNC ? hdf5a_sync(c, d)
                                                                        : hdf5a_ping(c);
    double t1 = now_ms();
    if (rc) return lib_error(c, rc, 0);
    printf("pong %.3f ms\n", t1 - t0);
    return EXIT_OK;
}

static int cmd_transfer(hdf5a_client *c, int append, const args *a, npy_array *arr)
{
    const char *path = a->pos[0];
    hdf5a_array h = {arr->dtype_str, arr->ndim, arr->shape, arr->data, arr->nbytes};
    hdf5a_compression comp = {a->compression, (int)a->level};
    uint64_t payload = arr->count * arr->dt->size;
    char label[256];
    snprintf(label, sizeof label, "%s %s", append ? "append" : "put", path);
    progress *pg = payload > PROGRESS_MIN_BYTES ? progress_start(c, label) : NULL;
    uint64_t new_len = 0;
    hdf5a_sel sel[CLI_MAX_SEL];
    int nsel = 0, rc;
    if (a->slice && (rc = get_selection(a, sel, &nsel))) {
        progress_end(pg, c, 0, 0);
        return rc;
    }
    if (a->slice)
        rc = hdf5a_write_slice(c, path, sel, nsel, &h);
    else
        rc = append ? hdf5a_append(c, path, &h, a->compression ? &comp : NULL, &new_len)
                    : hdf5a_write(c, path, &h, a->compression ? &comp : NULL);
    progress_end(pg, c, rc == 0, payload);
    if (rc) return lib_error(c, rc, 1);
    if (append) printf("%llu\n", (unsigned long long)new_len);
    return EXIT_OK;
}

static uint64_t value_bytes(const hdf5a_array *v)
{
    if (strcmp(v->dtype, "str") && strcmp(v->dtype, "bytes")) return v->nbytes;
    uint64_t n = 1, total = 0;
    for (int i = 0; i < v->ndim; i++) n *= v->shape[i];
    char *const *s = v->data;
    for (uint64_t i = 0; i < n; i++) total += s[i] ? strlen(s[i]) : 0;
    return total;
}

static int cmd_get(hdf5a_client *c, const args *a)
{
    const char *path = a->pos[0];
    hdf5a_array *v = NULL;
    char label[256];
    snprintf(label, sizeof label, "get %s", path);
    /* the bar appears once the reply's size is known to be over
     * PROGRESS_MIN_BYTES */
    hdf5a_sel sel[CLI_MAX_SEL];
    int nsel = 0, rc;
    if (a->slice && (rc = get_selection(a, sel, &nsel))) return rc;
    progress *pg = progress_start(c, label);
    rc = a->slice ? hdf5a_read_slice(c, path, sel, nsel, &v) : hdf5a_read(c, path, &v);
    progress_end(pg, c, rc == 0, rc == 0 && v ? value_bytes(v) : 0);
    if (rc) return lib_error(c, rc, 0);
    if (!v) {
        msg("REPLY: the library returned no array for %s", path);
        return EXIT_CONN;
    }
    int status = EXIT_OK;
    char err[1024];
    if (a->output) {
        if (npy_save(a->output, v, err, sizeof err)) {
            msg("%s", err);
            status = EXIT_FILE;
        }
        hdf5a_array_free(v);
        return status;
    }
    np_type *t = np_type_parse(v->dtype, err, sizeof err);
    if (!t) {
        msg("cannot show %s: %s", path, err);
        hdf5a_array_free(v);
        return EXIT_CONN;
    }
    int r = format_value(stdout, v, t);
    if (r < 0) {
        msg("cannot show %s: out of memory, or data that does not match dtype %s", path, v->dtype);
        status = EXIT_CONN;
    } else if (r == 1) {
        fprintf(stderr, "(too large to print; use '" PROG " get %s%s%s%s -o FILE.npy' to save it)\n",
                path, a->slice ? " --slice '" : "", a->slice ? a->slice : "", a->slice ? "'" : "");
    }
    np_type_free(t);
    hdf5a_array_free(v);
    return status;
}

/* Python's spelling of a shape: "()", "(3,)", "(2, 3)". */
static void print_shape(int ndim, const uint64_t *shape)
{
    putchar('(');
    for (int i = 0; i < ndim; i++)
        printf("%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    printf(ndim == 1 ? ",)\n" : ")\n");
}

/* --fill: a number (an integer as int64, else a double), true/false, or
 * text (a variable-length string); the server converts numbers to the
 * dataset's type. */
typedef struct fill_value {
    int64_t i;
    double d;
    uint8_t b;
    const char *s;
    hdf5a_array arr;
} fill_value;

static void parse_fill(const char *text, fill_value *f)
{
    char *end;
    errno = 0;
    long long i = strtoll(text, &end, 0);
    if (*text && !*end && !errno) {
        f->i = i;
        f->arr = (hdf5a_array){"<i8", 0, NULL, &f->i, sizeof f->i};
        return;
    }
    double d = strtod(text, &end);
    if (*text && !*end) {
        f->d = d;
        f->arr = (hdf5a_array){"<f8", 0, NULL, &f->d, sizeof f->d};
        return;
    }
    if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "false") ||
        !strcmp(text, "False")) {
        f->b = text[0] == 't' || text[0] == 'T';
        f->arr = (hdf5a_array){"|b1", 0, NULL, &f->b, 1};
        return;
    }
    f->s = text;
    f->arr = (hdf5a_array){"str", 0, NULL, &f->s, sizeof f->s};
}

static int cmd_create(hdf5a_client *c, const args *a)
{
    char err[512], type[256];
    uint64_t shape[32], maxshape[32], chunks[32];
    int ndim, nd;
    if (!a->shape) return usage("missing --shape (e.g. --shape 100,3; '()' for a scalar)");
    if (cli_parse_dims(a->shape, false, &ndim, shape, err, sizeof err))
        return usage("--shape: %s", err);
    hdf5a_create_opts o = {.shuffle = a->shuffle, .exist_ok = a->exist_ok};
    if (a->maxshape) {
        if (cli_parse_dims(a->maxshape, true, &nd, maxshape, err, sizeof err))
            return usage("--maxshape: %s", err);
        if (nd != ndim)
            return usage("--maxshape has %d entries but --shape has %d", nd, ndim);
        o.maxshape = maxshape;
    }
    if (a->chunks) {
        if (!strcmp(a->chunks, "auto") || !strcmp(a->chunks, "true")) {
            o.chunk_mode = HDF5A_CHUNKS_AUTO;
        } else if (!strcmp(a->chunks, "none") || !strcmp(a->chunks, "false")) {
            o.chunk_mode = HDF5A_CHUNKS_CONTIGUOUS;
        } else {
            if (cli_parse_dims(a->chunks, false, &nd, chunks, err, sizeof err))
                return usage("--chunks: %s (or auto, none)", err);
            if (nd != ndim) return usage("--chunks has %d entries but --shape has %d", nd, ndim);
            o.chunks = chunks;
        }
    }
    fill_value fv;
    if (a->fill) {
        parse_fill(a->fill, &fv);
        o.fillvalue = &fv.arr;
    }
    hdf5a_compression comp = {a->compression, (int)a->level};
    if (a->compression) o.comp = &comp;
    cli_dtype_name(a->dtype ? a->dtype : "f4", type, sizeof type);
    int rc = hdf5a_create_dataset(c, a->pos[0], ndim, shape, type, &o);
    /* the library checks the dtype before sending: a bad one is the user's */
    return rc ? lib_error(c, rc, 0) : EXIT_OK;
}

static int cmd_resize(hdf5a_client *c, const args *a)
{
    char err[512];
    uint64_t shape[32];
    int ndim, rc;
    if (cli_parse_dims(a->pos[1], false, &ndim, shape, err, sizeof err))
        return usage("SHAPE: %s", err);
    if (a->axis) {
        long axis;
        if (parse_int(a->axis, -32, 31, &axis)) return usage("--axis: '%s' is not an axis", a->axis);
        if (ndim != 1) return usage("with --axis, SHAPE is one size");
        int nd = 0;
        uint64_t ns[32];
        rc = hdf5a_resize_axis(c, a->pos[0], (int)axis, shape[0], &nd, ns);
        if (rc) return lib_error(c, rc, 0);
        print_shape(nd, ns);
        return EXIT_OK;
    }
    rc = hdf5a_resize(c, a->pos[0], ndim, shape);
    if (rc) return lib_error(c, rc, 0);
    print_shape(ndim, shape);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    /* a closed pipe on stdout or a dropped connection must show up as an
     * error return, not kill us silently */
    signal(SIGPIPE, SIG_IGN);

    args a = {0};
    a.port = a.timeout_ms = a.level = -1;
    int help = 0;
    int i = 1;
    /* global options before the command */
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf(PROG " %s\n", HDF5A_VERSION);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        const char *s = argv[i];
        const optdef *o;
        const char *val = NULL;
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t n = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            o = find_long(GLOBAL_OPTS, s + 2, n);
            if (!o) return usage("unknown option '%s'", s);
            if (eq && !o->has_arg) return usage("option '--%s' takes no value", o->lname);
            if (eq) val = eq + 1;
        } else {
            o = find_short(GLOBAL_OPTS, s[1]);
            if (!o || s[2]) return usage("unknown option '%s'", s);
        }
        if (o->id == OPT_HELP) {
            help = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return usage("option '%s' needs a value", s);
            val = argv[++i];
        }
        if (set_opt(&a, o, val)) return EXIT_USAGE;
    }
    if (i >= argc) {
        if (help) {
            fputs(MAIN_HELP, stdout);
            return EXIT_OK;
        }
        return usage("no command given (%s)", COMMAND_LIST);
    }
    const char *name = argv[i++];
    if (strcmp(name, "help") == 0) {
        if (i >= argc) {
            fputs(MAIN_HELP, stdout);
            return EXIT_OK;
        }
        name = argv[i];
        help = 1;
        i = argc;
    }
    const cmd *cm = NULL;
    for (size_t k = 0; k < NCMDS; k++)
        if (strcmp(CMDS[k].name, name) == 0) cm = &CMDS[k];
    if (!cm) {
        if (help) {
            fputs(MAIN_HELP, stdout);
            return EXIT_OK;
        }
        return usage("unknown command '%s' (commands: %s)", name, COMMAND_LIST);
    }
    g_cmd = cm->name;
    /* --help anywhere wins over anything else on the line */
    for (int k = i; k < argc && strcmp(argv[k], "--"); k++)
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) help = 1;
    if (help) {
        fputs(cm->help, stdout);
        return EXIT_OK;
    }
    int rc = parse_args(argc, argv, i, cm->opts, &a, &help);
    if (rc) return rc;
    if (a.npos < cm->npos) return usage("missing %s argument", cm->posnames[a.npos]);
    if (a.npos > cm->maxpos) return usage("unexpected argument '%s'", a.pos[cm->maxpos]);
    if (cm - CMDS == CMD_LN && !a.soft)
        return usage("only soft links can be made: give -s (ln -s TARGET PATH)");
    if (a.level >= 0) {
        if (!a.compression) a.compression = "gzip";
        if (strcmp(a.compression, "gzip") && strcmp(a.compression, "bzip2") &&
            strcmp(a.compression, "lz4"))
            return usage("--level applies only to --compression gzip, bzip2 or lz4");
        if (!strcmp(a.compression, "gzip") && a.level > 9)
            return usage("--level: '%ld' is not a gzip level 0..9", a.level);
        if (!strcmp(a.compression, "bzip2") && (a.level < 1 || a.level > 9))
            return usage("--level: '%ld' is not a bzip2 block size 1..9", a.level);
    }
    if (a.slice && (a.compression || a.level >= 0))
        return usage("--slice writes into an existing dataset: it takes no --compression or "
                     "--level");

    cli_target target;
    char err[512];
    if (cli_resolve_target(a.config, a.host, a.port, &target, err, sizeof err)) {
        msg("%s", err);
        return EXIT_USAGE;
    }

    size_t cmd_id = (size_t)(cm - CMDS);
    if (a.slice) {
        /* a bad selection should not cost a connection either */
        hdf5a_sel sel[CLI_MAX_SEL];
        int nsel;
        if ((rc = get_selection(&a, sel, &nsel))) return rc;
    }
    npy_array arr;
    memset(&arr, 0, sizeof arr);
    if (cmd_id == CMD_PUT || cmd_id == CMD_APPEND) {
        /* read the file first: a bad file should not cost a connection */
        char ferr[1024];
        if (npy_load(a.pos[1], &arr, ferr, sizeof ferr)) {
            msg("%s", ferr);
            return EXIT_FILE;
        }
    }

    hdf5a_client *c = connect_to(&target, a.timeout_ms < 0 ? 0 : a.timeout_ms);
    if (!c) {
        npy_free(&arr);
        return EXIT_CONN;
    }
    hdf5a_set_durability(c, a.durability);
    switch (cmd_id) {
    case CMD_PING: rc = cmd_ping(c, a.durability); break;
    case CMD_MKGROUP:
        rc = hdf5a_create_group(c, a.pos[0]);
        rc = rc ? lib_error(c, rc, 0) : EXIT_OK;
        break;
    case CMD_PUT: rc = cmd_transfer(c, 0, &a, &arr); break;
    case CMD_APPEND: rc = cmd_transfer(c, 1, &a, &arr); break;
    case CMD_GET: rc = cmd_get(c, &a); break;
    case CMD_CREATE: rc = cmd_create(c, &a); break;
    case CMD_RESIZE: rc = cmd_resize(c, &a); break;
    case CMD_RM:
        rc = hdf5a_delete(c, a.pos[0]);
        rc = rc ? lib_error(c, rc, 0) : EXIT_OK;
        break;
    case CMD_LS: rc = cmd_ls(c, a.npos ? a.pos[0] : "/", a.recursive); break;
    case CMD_TREE: rc = cmd_tree(c, a.npos ? a.pos[0] : "/"); break;
    case CMD_INFO: rc = cmd_info(c, a.pos[0]); break;
    case CMD_ATTR: rc = cmd_attr(c, a.pos, a.npos, a.npy, a.output, a.force_str); break;
    case CMD_LN:
        rc = hdf5a_create_link(c, a.pos[1], a.pos[0]);
        rc = rc ? lib_error(c, rc, 0) : EXIT_OK;
        break;
    case CMD_MV:
        rc = hdf5a_move(c, a.pos[0], a.pos[1]);
        rc = rc ? lib_error(c, rc, 0) : EXIT_OK;
        break;
    default: rc = EXIT_USAGE; break;
    }
    hdf5a_close(c);
    npy_free(&arr);
    if (fflush(stdout) != 0 && errno != EPIPE && rc == EXIT_OK) {
        msg("write error on standard output: %s", strerror(errno));
        rc = EXIT_FILE;
    }
    return rc;
}
