/* The command table (commands.h) and the help texts it points at. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "cli/opts.h"

static const char MAIN_HELP[] =
    "Usage: " PROG " [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Command-line client of the hdf5-async server, which owns one HDF5 file, or\n"
    "every file under its data_root (choose one with --file).\n"
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
    "  compact                 repack the served file, giving freed space back (admin)\n"
    "  ls-files                the files under the server's data_root, with their sizes\n"
    "  batch [FILE]            send the requests in FILE (one JSON object a line;\n"
    "                          default: standard input) as one batch: all or nothing\n"
    "  token NAME ROLE [PREFIX ...]\n"
    "                          make a new token and its line for the server's tokens\n"
    "                          file (needs no server)\n"
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
    "  --token-file F   authenticate with the token on the first line of file F\n"
    "  --tls            speak TLS, verifying the server's certificate with the\n"
    "                   system's CAs\n"
    "  --tls-ca FILE    speak TLS, verifying the server's certificate with the CAs\n"
    "                   in FILE (PEM)\n"
    "  --file NAME      the file under the server's data_root to work on, relative\n"
    "                   to it (run_0001.h5, 2026/run_0002.h5); default: the server's\n"
    "                   default file\n"
    "  --reconnect      when the connection is lost, connect again (for up to 60 s)\n"
    "                   and resend the request; the server applies it at most once\n"
    "  -h, --help       show this help\n"
    "  --version        show the version\n"
    "\n"
    "Host and port come from --host/--port, else from the config file: for each of\n"
    "them the [client] section's value when it has one, else the [server] section's.\n"
    "A host of 0.0.0.0, :: or empty means 127.0.0.1. Defaults: 127.0.0.1, 8888.\n"
    "The token: --token-file, else $HDF5_ASYNC_TOKEN, else the file the config's\n"
    "[client] token_file names, else none. TLS: --tls or --tls-ca, or the config's\n"
    "[client] tls_ca_file (the CA file when --tls-ca names none). Relative paths in\n"
    "the config file are relative to its directory.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the server answered with an error (\"" PROG ": CODE: message\" on stderr),\n"
    "     UNAUTHENTICATED (token refused) and PERMISSION_DENIED included\n"
    "  2  usage error: bad command line, config file, token file or CA file\n"
    "  3  connection, I/O or timeout error, TLS included\n"
    "  4  local file error: cannot read, parse or write a .npy file, or the library\n"
    "     refused its array before sending it\n"
    "Errors are always printed on stderr.\n";

/* What every command that talks to a server takes. */
#define CONNECT_OPTIONS                                                                         \
    "Options: --host, --port, --config, --timeout, --durability, --token-file, --tls,\n"      \
    "--tls-ca, --file, --reconnect (see '" PROG " --help').\n"

static const char PING_HELP[] =
    "Usage: " PROG " [OPTIONS] ping\n"
    "\n"
    "Send a ping; print \"pong\" and the round-trip time in milliseconds\n"
    "(not counting the connection set-up). With --durability flush or fsync, the\n"
    "reply waits until everything the server has applied so far is that durable.\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 pong received, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char MKGROUP_HELP[] =
    "Usage: " PROG " [OPTIONS] mkgroup PATH\n"
    "\n"
    "Create the group PATH and any missing parents (like mkdir -p). An existing\n"
    "group is fine; a dataset at PATH is an error (EXISTS). Prints nothing.\n"
    "\n"
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error (OUT_OF_RANGE past maxshape or for a dataset\n"
    "that is not chunked), 2 usage, 3 connection/timeout.\n";

static const char RM_HELP[] =
    "Usage: " PROG " [OPTIONS] rm PATH\n"
    "\n"
    "Delete the dataset at PATH, or the group at PATH with everything under it.\n"
    "When PATH is a soft or external link, the link is removed, not its target.\n"
    "Prints nothing.\n"
    "\n"
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error (NOT_FOUND, ...), 2 usage, 3 connection/timeout.\n";

static const char TREE_HELP[] =
    "Usage: " PROG " [OPTIONS] tree [PATH]\n"
    "\n"
    "Show everything below the group PATH (default /) as an indented tree, two\n"
    "spaces per level: groups end in '/', datasets show their shape and dtype,\n"
    "links show where they point ('name -> /target').\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char INFO_HELP[] =
    "Usage: " PROG " [OPTIONS] info PATH\n"
    "\n"
    "Describe the object at PATH (links followed), one property per line. A\n"
    "dataset: shape, maxshape, dtype, HDF5 class, layout, chunks, compression,\n"
    "filters, fill value, storage size and number of attributes. A group: its\n"
    "number of members and attributes.\n"
    "\n"
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
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
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char MV_HELP[] =
    "Usage: " PROG " [OPTIONS] mv PATH DEST\n"
    "\n"
    "Move (rename) the dataset, group or link at PATH to DEST, creating missing\n"
    "parent groups of DEST. DEST must not exist (EXISTS); a link is moved as a\n"
    "link, its target unchanged. Prints nothing.\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error (NOT_FOUND, EXISTS, ...), 2 usage,\n"
    "3 connection/timeout.\n";

static const char LS_FILES_HELP[] =
    "Usage: " PROG " [OPTIONS] ls-files\n"
    "\n"
    "List the files under the server's data_root: one line each, the name relative\n"
    "to the root and the size in bytes (a server without data_root lists its one\n"
    "file).\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error, 2 usage, 3 connection/timeout.\n";

static const char COMPACT_HELP[] =
    "Usage: " PROG " [OPTIONS] compact\n"
    "\n"
    "Copy everything live in the served file into a fresh file put in its place\n"
    "(the online h5repack): the space deletes and rewrites freed comes back to the\n"
    "disk. Needs the admin role when the server has tokens; the server does\n"
    "nothing else while it copies. Prints the file's size before and after.\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error (PERMISSION_DENIED, ...), 2 usage,\n"
    "3 connection/timeout.\n";

static const char BATCH_HELP[] =
    "Usage: " PROG " [OPTIONS] batch [FILE]\n"
    "\n"
    "Send the requests in FILE (default, or '-': standard input) as one batch: the\n"
    "server applies them in order and all or nothing. One JSON object a line, the\n"
    "protocol's request without id (docs/protocol.md), e.g.\n"
    "\n"
    "    {\"op\": \"append\", \"path\": \"/log\", \"data\": [[1.5, 2.5]]}\n"
    "    {\"op\": \"set_attr\", \"path\": \"/log\", \"name\": \"rows\", \"data\": 1}\n"
    "\n"
    "Blank lines and lines starting with '#' are skipped. Prints how many ops were\n"
    "applied and the shape after each op that returns one; when an op fails,\n"
    "nothing is applied and the error names it (\"batch op 2 (append) failed: ...\").\n"
    "\n"
    CONNECT_OPTIONS
    "Exit status: 0 ok, 1 server error (nothing applied), 2 usage, 3 connection/timeout,\n"
    "4 the file cannot be read or a line is not a JSON object.\n";

static const char TOKEN_HELP[] =
    "Usage: " PROG " token NAME ROLE [PREFIX ...]\n"
    "\n"
    "Make a new random token (32 bytes from the system's random source, 256 bits,\n"
    "base64url) and print it, once, with the line to append to the server's tokens\n"
    "file (the file its [server] auth_file key names):\n"
    "\n"
    "    NAME ROLE SHA256HEX [PREFIX ...]\n"
    "\n"
    "SHA256HEX is the token's SHA-256: the line holds no secret. Lines starting\n"
    "with '#' say what is what ('grep -v ^#' leaves the token, then the line).\n"
    "Reload the server (kill -HUP) to take the line in. Needs no server.\n"
    "\n"
    "  NAME    1 to 64 characters of A-Z a-z 0-9 _ . @ -; unique in the file\n"
    "  ROLE    read (operations that change nothing), write (read and changes) or\n"
    "          admin (everything)\n"
    "  PREFIX  absolute paths the token may touch (up to 64); none: the whole file\n"
    "\n"
    "Exit status: 0 ok, 2 usage (a NAME, ROLE or PREFIX the server would refuse).\n";

/* In this order in "unknown command" messages; the main help groups them
 * its own way (MAIN_HELP). */
static const cli_command COMMANDS[] = {
    {.name = "ping", .help = PING_HELP, .run = cmd_ping},
    {.name = "mkgroup", .help = MKGROUP_HELP, .npos = 1, .maxpos = 1, .posnames = {"PATH"},
     .run = cmd_mkgroup},
    {.name = "put", .help = PUT_HELP,
     .opts = OPT(OPT_COMPRESSION) | OPT(OPT_LEVEL) | OPT(OPT_SLICE), .npos = 2, .maxpos = 2,
     .posnames = {"PATH", "FILE.npy"}, .prepare = prepare_put, .run = cmd_put},
    {.name = "append", .help = APPEND_HELP, .opts = OPT(OPT_COMPRESSION) | OPT(OPT_LEVEL),
     .npos = 2, .maxpos = 2, .posnames = {"PATH", "FILE.npy"}, .prepare = prepare_append,
     .run = cmd_append},
    {.name = "get", .help = GET_HELP, .opts = OPT(OPT_OUTPUT) | OPT(OPT_SLICE), .npos = 1,
     .maxpos = 1, .posnames = {"PATH"}, .prepare = prepare_get, .run = cmd_get},
    {.name = "rm", .help = RM_HELP, .npos = 1, .maxpos = 1, .posnames = {"PATH"}, .run = cmd_rm},
    {.name = "create", .help = CREATE_HELP,
     .opts = OPT(OPT_SHAPE) | OPT(OPT_DTYPE) | OPT(OPT_MAXSHAPE) | OPT(OPT_CHUNKS) |
             OPT(OPT_FILL) | OPT(OPT_COMPRESSION) | OPT(OPT_LEVEL) | OPT(OPT_SHUFFLE) |
             OPT(OPT_EXIST_OK),
     .npos = 1, .maxpos = 1, .posnames = {"PATH"}, .run = cmd_create},
    {.name = "resize", .help = RESIZE_HELP, .opts = OPT(OPT_AXIS), .npos = 2, .maxpos = 2,
     .posnames = {"PATH", "SHAPE"}, .run = cmd_resize},
    {.name = "ls", .help = LS_HELP, .opts = OPT(OPT_RECURSIVE), .maxpos = 1, .run = cmd_ls},
    {.name = "tree", .help = TREE_HELP, .maxpos = 1, .run = cmd_tree},
    {.name = "info", .help = INFO_HELP, .npos = 1, .maxpos = 1, .posnames = {"PATH"},
     .run = cmd_info},
    {.name = "attr", .help = ATTR_HELP, .opts = OPT(OPT_OUTPUT) | OPT(OPT_NPY) | OPT(OPT_STRING),
     .npos = 2, .maxpos = 4, .posnames = {"subcommand (ls, get, set, rm)", "PATH"},
     .run = cmd_attr},
    {.name = "ln", .help = LN_HELP, .opts = OPT(OPT_SOFT), .npos = 2, .maxpos = 2,
     .posnames = {"TARGET", "PATH"}, .check = check_ln, .run = cmd_ln},
    {.name = "mv", .help = MV_HELP, .npos = 2, .maxpos = 2, .posnames = {"PATH", "DEST"},
     .run = cmd_mv},
    {.name = "compact", .help = COMPACT_HELP, .run = cmd_compact},
    {.name = "ls-files", .help = LS_FILES_HELP, .run = cmd_ls_files},
    {.name = "batch", .help = BATCH_HELP, .maxpos = 1, .prepare = prepare_batch,
     .run = cmd_batch},
    {.name = "token", .help = TOKEN_HELP, .npos = 2, .maxpos = CLI_MAX_POS,
     .posnames = {"NAME", "ROLE"}, .check = check_token, .run_local = cmd_token},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

const cli_command *cli_find_command(const char *name)
{
    for (size_t k = 0; k < NCOMMANDS; k++)
        if (strcmp(COMMANDS[k].name, name) == 0) return &COMMANDS[k];
    return NULL;
}

const char *cli_command_names(void)
{
    static char names[256];
    if (!names[0]) {
        size_t n = 0;
        for (size_t k = 0; k < NCOMMANDS && n < sizeof names; k++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", k ? ", " : "",
                                  COMMANDS[k].name);
    }
    return names;
}

int cli_print_help(const cli_command *cmd)
{
    fputs(cmd ? cmd->help : MAIN_HELP, stdout);
    return EXIT_OK;
}
