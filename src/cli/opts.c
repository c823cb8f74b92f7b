/* The CLI's one option table and its parser (opts.h). */
#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"

typedef struct optdef {
    const char *lname;
    char sname;
    int has_arg;
} optdef;

static const optdef OPTS[OPT_COUNT] = {
    [OPT_HOST] = {"host", 0, 1},
    [OPT_PORT] = {"port", 0, 1},
    [OPT_CONFIG] = {"config", 0, 1},
    [OPT_TIMEOUT] = {"timeout", 0, 1},
    [OPT_DURABILITY] = {"durability", 0, 1},
    [OPT_HELP] = {"help", 'h', 0},
    [OPT_VERSION] = {"version", 0, 0},
    [OPT_COMPRESSION] = {"compression", 0, 1},
    [OPT_LEVEL] = {"level", 0, 1},
    [OPT_OUTPUT] = {"output", 'o', 1},
    [OPT_SLICE] = {"slice", 0, 1},
    [OPT_SHAPE] = {"shape", 0, 1},
    [OPT_DTYPE] = {"dtype", 0, 1},
    [OPT_MAXSHAPE] = {"maxshape", 0, 1},
    [OPT_CHUNKS] = {"chunks", 0, 1},
    [OPT_FILL] = {"fill", 0, 1},
    [OPT_SHUFFLE] = {"shuffle", 0, 0},
    [OPT_EXIST_OK] = {"exist-ok", 0, 0},
    [OPT_AXIS] = {"axis", 0, 1},
    [OPT_RECURSIVE] = {"recursive", 'r', 0},
    [OPT_SOFT] = {"symbolic", 's', 0},
    [OPT_NPY] = {"npy", 0, 1},
    [OPT_STRING] = {"string", 0, 0},
    [OPT_TOKEN_FILE] = {"token-file", 0, 1},
    [OPT_TLS] = {"tls", 0, 0},
    [OPT_TLS_CA] = {"tls-ca", 0, 1},
    [OPT_FILE] = {"file", 0, 1},
    [OPT_RECONNECT] = {"reconnect", 0, 0},
};

void cli_args_init(cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->port = a->timeout_ms = -1;
    a->level = -1;
    a->durability = HDF5A_DURABILITY_DEFAULT;
}

void cli_args_free(cli_args *a)
{
    npy_free(&a->arr);
    hdf5a_batch_free(a->batch);
    a->batch = NULL;
}

/* -1: no such option in allowed */
static int find_long(uint32_t allowed, const char *name, size_t n)
{
    for (int id = 0; id < OPT_COUNT; id++)
        if ((allowed & OPT(id)) && strlen(OPTS[id].lname) == n && !strncmp(OPTS[id].lname, name, n))
            return id;
    return -1;
}

static int find_short(uint32_t allowed, char c)
{
    for (int id = 0; id < OPT_COUNT; id++)
        if ((allowed & OPT(id)) && OPTS[id].sname && OPTS[id].sname == c) return id;
    return -1;
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int set_opt(cli_args *a, int id, const char *val)
{
    long v;
    switch (id) {
    case OPT_HOST:
        if (!*val) return cli_usage("--host: empty host");
        a->host = val;
        break;
    case OPT_PORT:
        if ((a->port = cli_parse_port(val)) < 0)
            return cli_usage("--port: '%s' is not a port number (1..65535)", val);
        break;
    case OPT_CONFIG: a->config = val; break;
    case OPT_TIMEOUT:
        if (cli_parse_long(val, 0, 0x7FFFFFFF, &v))
            return cli_usage("--timeout: '%s' is not a number of milliseconds (0 = none)", val);
        a->timeout_ms = (int)v;
        break;
    case OPT_DURABILITY:
        if (strcmp(val, "none") == 0) a->durability = HDF5A_DURABILITY_NONE;
        else if (strcmp(val, "flush") == 0) a->durability = HDF5A_DURABILITY_FLUSH;
        else if (strcmp(val, "fsync") == 0) a->durability = HDF5A_DURABILITY_FSYNC;
        else return cli_usage("--durability: '%s' is not one of none, flush, fsync", val);
        break;
    case OPT_HELP: a->help = 1; break;
    case OPT_VERSION: a->version = 1; break;
    case OPT_COMPRESSION:
        if (strcmp(val, "gzip") && strcmp(val, "lzf") && strcmp(val, "none") &&
            strcmp(val, "lz4") && strcmp(val, "bzip2") && strcmp(val, "bitshuffle"))
            return cli_usage("--compression: '%s' is not one of gzip, lzf, none, lz4, bzip2, "
                             "bitshuffle", val);
        a->compression = val;
        break;
    case OPT_LEVEL:
        /* the range depends on the compressor: cli_check_options */
        if (cli_parse_long(val, 0, 0x7E000000, &v))
            return cli_usage("--level: '%s' is not a gzip level 0..9 (or a bzip2/lz4 option)",
                             val);
        a->level = v;
        break;
    case OPT_SLICE: a->slice = val; break;
    case OPT_SHAPE: a->shape = val; break;
    case OPT_DTYPE:
        if (!*val) return cli_usage("--dtype: empty type");
        a->dtype = val;
        break;
    case OPT_MAXSHAPE: a->maxshape = val; break;
    case OPT_CHUNKS: a->chunks = val; break;
    case OPT_FILL: a->fill = val; break;
    case OPT_SHUFFLE: a->shuffle = 1; break;
    case OPT_EXIST_OK: a->exist_ok = 1; break;
    case OPT_AXIS: a->axis = val; break;
    case OPT_OUTPUT:
        if (!*val) return cli_usage("-o: empty file name");
        a->output = val;
        break;
    case OPT_NPY:
        if (!*val) return cli_usage("--npy: empty file name");
        a->npy = val;
        break;
    case OPT_RECURSIVE: a->recursive = 1; break;
    case OPT_SOFT: a->soft = 1; break;
    case OPT_STRING: a->force_str = 1; break;
    case OPT_TOKEN_FILE:
        if (!*val) return cli_usage("--token-file: empty file name");
        a->token_file = val;
        break;
    case OPT_TLS: a->tls = 1; break;
    case OPT_FILE:
        if (!*val) return cli_usage("--file: empty file name");
        a->file = val;
        break;
    case OPT_RECONNECT: a->reconnect = 1; break;
    case OPT_TLS_CA:
        if (!*val) return cli_usage("--tls-ca: empty file name");
        a->tls_ca = val;
        break;
    default: break;
    }
    return 0;
}

int cli_parse_options(int argc, char **argv, int *i, uint32_t allowed, int before_command,
                      cli_args *a)
{
    int opts_done = 0;
    for (; *i < argc; (*i)++) {
        const char *s = argv[*i];
        if (opts_done || s[0] != '-' || s[1] == '\0') {
            if (before_command) return 0;
            if (a->npos >= CLI_MAX_POS) return cli_usage("too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            opts_done = 1;
            continue;
        }
        int id;
        const char *val = NULL;
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            if ((id = find_long(allowed, name, n)) < 0)
                return cli_usage("unknown option '--%.*s'", (int)n, name);
            if (eq && !OPTS[id].has_arg)
                return cli_usage("option '--%s' takes no value", OPTS[id].lname);
            if (eq) val = eq + 1;
        } else {
            if ((id = find_short(allowed, s[1])) < 0) return cli_usage("unknown option '%s'", s);
            if (s[2] && !OPTS[id].has_arg) return cli_usage("unknown option '%s'", s);
            if (s[2]) val = s + 2;
        }
        if (OPTS[id].has_arg && !val) {
            if (*i + 1 >= argc) return cli_usage("option '%s' needs a value", s);
            val = argv[++*i];
        }
        if (set_opt(a, id, val)) return EXIT_USAGE;
        /* what follows --version is not looked at, as before any command */
        if (id == OPT_VERSION) return 0;
    }
    return 0;
}

int cli_check_options(cli_args *a)
{
    if (a->level >= 0) {
        if (!a->compression) a->compression = "gzip";
        if (strcmp(a->compression, "gzip") && strcmp(a->compression, "bzip2") &&
            strcmp(a->compression, "lz4"))
            return cli_usage("--level applies only to --compression gzip, bzip2 or lz4");
        if (!strcmp(a->compression, "gzip") && a->level > 9)
            return cli_usage("--level: '%ld' is not a gzip level 0..9", a->level);
        if (!strcmp(a->compression, "bzip2") && (a->level < 1 || a->level > 9))
            return cli_usage("--level: '%ld' is not a bzip2 block size 1..9", a->level);
    }
    if (a->slice && (a->compression || a->level >= 0))
        return cli_usage("--slice writes into an existing dataset: it takes no --compression or "
                         "--level");
    return 0;
}
