/* hdf5-async-server: one process owns one HDF5 file and applies every
 * client's operations to it in order. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cluster.h"
#include "server/config.h"
#include "server/net.h"
#include "server/request.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hdf5-async-server [--config FILE] [--host HOST] [--port PORT] [--http-port PORT] "
            "[--file PATH] [--data-root DIR] [--node INDEX] "
            "[--debug]\n"
            "                         [--wal-discard-damaged]\n"
            "       hdf5-async-server --list-ops | --version | --help\n"
            "  --config FILE  settings from FILE's [server] section (default: ./config.ini if "
            "present)\n"
            "  --host HOST    address to listen on (config key host, default 0.0.0.0)\n"
            "  --port PORT    TCP port, 0 picks a free one (config key port, default 8888)\n"
            "  --http-port P  also serve HTTP (h5grove API, h5web viewer, /metrics, /health)\n"
            "                 on port P, 0 picks a free one (config key http_port, default none)\n"
            "  --file PATH    the HDF5 file to serve (config key hdf5_file_path, default data.h5)\n"
            "  --data-root DIR  serve the HDF5 files under DIR: requests name one with 'file'\n"
            "                 (config key data_root; a relative --file is then inside DIR)\n"
            "  --node INDEX   this server is entry INDEX of the config's [cluster] nodes\n"
            "                 and listens on its port (default: the entry with its host:port)\n"
            "  --debug        log every request and connection event to stderr\n"
            "  --wal-discard-damaged  start even though FILE.wal's header is damaged, moving\n"
            "                 it aside to FILE.wal.damaged: the commits since the last\n"
            "                 checkpoint are lost (config key wal_discard_damaged)\n"
            "  --list-ops     print the operations as JSON and exit: one object per op with\n"
            "                 its name, keys (the request keys it takes besides id, op and\n"
            "                 durability), required (those it must send), changes, perm,\n"
            "                 batch and aliases\n"
            "Limits (max_connections, idle_timeout, max_pending_bytes, max_pending_requests,\n"
            "max_reply_queue, slow_client_timeout, max_nesting, max_elements, max_chunks,\n"
            "max_op_bytes) and max_message_size are config-file keys; see README.md and\n"
            "docs/protocol.md.\n"
            "Prints 'listening on HOST:PORT' once it accepts connections; SIGINT/SIGTERM "
            "finishes received requests, closes the file and exits 0.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = "config.ini";
    bool config_given = false;
    /* flags override the file, so read --config first and apply the rest after */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--list-ops") == 0) {
            h5a_op_list_print(stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("hdf5-async-server " VERSION "\n");
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
            config_given = true;
        }
    }
    h5a_config cfg;
    char err[1024];
    h5a_config_defaults(&cfg);
    if (h5a_config_load(&cfg, config_path, !config_given, err, sizeof err)) {
        fprintf(stderr, "hdf5-async-server: %s\n", err);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *key = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(argv[i], "--debug") == 0) {
            cfg.debug = true;
            continue;
        }
        if (strcmp(argv[i], "--wal-discard-damaged") == 0) {
            cfg.wal_discard_damaged = true;
            continue;
        }
        if (strcmp(argv[i], "--host") == 0) key = "host";
        else if (strcmp(argv[i], "--port") == 0) key = "port";
        else if (strcmp(argv[i], "--http-port") == 0) key = "http_port";
        else if (strcmp(argv[i], "--file") == 0) key = "hdf5_file_path";
        else if (strcmp(argv[i], "--data-root") == 0) key = "data_root";
        else if (strcmp(argv[i], "--node") == 0) key = "node";
        else {
            fprintf(stderr, "hdf5-async-server: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hdf5-async-server: %s needs a value\n", argv[i]);
            return 2;
        }
        if (h5a_config_set(&cfg, key, argv[++i], err, sizeof err)) {
            fprintf(stderr, "hdf5-async-server: %s: %s\n", argv[i - 1], err);
            return 2;
        }
    }
    if (h5a_config_check(&cfg, err, sizeof err) || h5a_cluster_setup(&cfg, err, sizeof err)) {
        fprintf(stderr, "hdf5-async-server: %s\n", err);
        return 2;
    }
    /* Array frames and read buffers are large and short-lived. glibc would
     * mmap each one afresh and return it on free, so every 64 MiB transfer
     * paid 16k page faults and zeroing; serve them from the heap instead and
     * keep up to 1 GiB of freed memory for the next one. (That covers the
     * event loop's frames; the storage thread's read buffers are recycled
     * by bigbuf.c.) */
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return h5a_server_run(&cfg);
}
