/* Server configuration: defaults, then config.ini's [server] section, then
 * command-line flags. */
#ifndef H5A_CONFIG_H
#define H5A_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct h5a_config {
    char host[256];
    int port;                  /* 0 = any free port */
    char file_path[4096];
    bool use_compression;      /* gzip when a request names no compression */
    bool debug;                /* log every request and connection event */
    uint64_t max_message_size; /* largest frame payload accepted, bytes */
} h5a_config;

#define H5A_DEFAULT_PORT 8888
#define H5A_DEFAULT_MAX_MESSAGE (1ull << 30)
#define H5A_MAX_MESSAGE_LIMIT 0xFFFFFFFFull /* the 4-byte frame length */

void h5a_config_defaults(h5a_config *cfg);

/* Read `path`'s [server] section into cfg. Other sections are ignored
 * ([client] is for clients). An unknown key or bad value fails with
 * "FILE:LINE: ..." naming the key. A missing file fails unless
 * missing_ok. Returns 0 or -1. */
int h5a_config_load(h5a_config *cfg, const char *path, bool missing_ok, char *err,
                    size_t errlen);

/* Parse one key's value as the config file would ("port", "8888"). Used for
 * flags too, so both share validation. Returns 0 or -1 with err. */
int h5a_config_set(h5a_config *cfg, const char *key, const char *value, char *err,
                   size_t errlen);

#endif
