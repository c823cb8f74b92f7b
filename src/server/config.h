/* Server configuration: defaults, then config.ini's [server] section, then
 * command-line flags. */
#ifndef H5A_CONFIG_H
#define H5A_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an `ok` reply promises (docs/durability.md). The order matters:
 * a stronger level includes the weaker ones. */
typedef enum {
    H5A_DUR_NONE,  /* applied: every later request sees it */
    H5A_DUR_FLUSH, /* and written to the OS: survives the server process dying */
    H5A_DUR_FSYNC  /* and on disk: survives the machine dying */
} h5a_durability;

typedef struct h5a_config {
    char host[256];
    int port;                  /* 0 = any free port */
    char file_path[4096];
    /* Many files (files.c, issue 14): every request may name a file under
     * data_root (empty: only file_path is served); at most max_open_files
     * of them are open at once (the least recently used is closed). */
    char data_root[4096];
    uint64_t max_open_files;
    /* seconds a file under the root may go unused before it is committed
     * and closed (files.c); 0: never (only max_open_files and stop close) */
    uint64_t file_idle_close;
    /* [cluster] nodes (cluster.c): who serves which file under a shared
     * data_root; node_index is this server's entry (-1: find it by
     * host:port). cluster_n 0: no cluster. */
#define H5A_MAX_NODES 256
    char cluster_nodes[H5A_MAX_NODES][256];
    int cluster_n;
    int node_index;
    bool use_compression;      /* gzip when a request names no compression */
    bool debug;                /* log every request and connection event */
    uint64_t max_message_size; /* largest frame payload accepted, bytes */

    /* Connections and backpressure (see docs/protocol.md, "Limits"). */
    uint64_t max_connections;      /* open at once; more get one error reply */
    uint64_t idle_timeout;         /* seconds with nothing in flight; 0 = never */
    uint64_t max_pending_bytes;    /* unanswered request bytes before pausing */
    uint64_t max_pending_requests; /* unanswered requests before pausing */
    uint64_t max_reply_queue;      /* unsent reply bytes before pausing */
    uint64_t slow_client_timeout;  /* seconds over max_reply_queue without progress
                                      before the client is dropped; 0 = never */
    uint64_t max_nesting;          /* MessagePack container depth */
    uint64_t max_elements;         /* MessagePack values in one message */
    /* How much work one request may cause in HDF5 (engine_layout.c, "limits on
     * the work of one request"): chunk positions a chunked dataset's shape
     * may span, and bytes an operation may move, fill or touch beyond the
     * data it carries or asks for. */
    uint64_t max_chunks;
    uint64_t max_op_bytes;
    /* Memory the server keeps for reuse (memory.c, bigbuf.c): freed memory
     * the allocator may hold before the storage thread gives it back, and
     * read buffers kept for the next large read. */
    uint64_t allocator_cache;
    uint64_t read_buffer_cache;
    /* Over every connection: frames being received, requests not yet
     * answered, replies not yet sent (conn.c); past it, no connection is
     * read until they drain. */
    uint64_t max_buffered_bytes;
    uint64_t frame_timeout; /* seconds a started frame may go without a byte; 0 = never */
    uint64_t spin_us;       /* storage.c: each thread looks for the other's work this long */
    /* exactly-once (dedup.c): results kept per client_id, seconds before an
     * idle client_id is forgotten, client_ids kept at most */
    uint64_t dedup_window;
    uint64_t dedup_idle_timeout;
    uint64_t dedup_max_clients;
    uint64_t dedup_max_bytes;
    h5a_durability durability;     /* for requests that name none */
    /* A left-over write-ahead log with a damaged header: move it aside and
     * start from the last checkpoint instead of refusing to start
     * (docs/durability.md). Meant for one start, not to stay set. */
    bool wal_discard_damaged;

    /* Who gets in (docs/security.md). Empty strings: not set. */
    char auth_file[4096];       /* tokens file: every connection must authenticate */
    bool protected_mode;        /* without auth_file, serve loopback clients only */
    char tls_cert_file[4096];   /* with tls_key_file: the port speaks TLS only */
    char tls_key_file[4096];
    char tls_ca_file[4096];     /* CAs for client certificates */
    int tls_client_auth;        /* h5a_tls_client_auth: no, optional, require */
    uint64_t tls_handshake_timeout; /* seconds a TLS handshake may take */

    /* The HTTP port (http.c, docs/live-view.md): -1 = none, 0 = any free. */
    int http_port;
    char http_cors_origin[1024]; /* Access-Control-Allow-Origin; empty: none */
} h5a_config;

#define H5A_DEFAULT_PORT 8888
#define H5A_DEFAULT_MAX_MESSAGE (1ull << 30)
#define H5A_MAX_MESSAGE_LIMIT 0xFFFFFFFFull /* the 4-byte frame length */
/* The 10,000-connection benchmark fits with room to spare; each idle
 * connection costs about 1 KiB plus its socket. */
#define H5A_DEFAULT_MAX_CONNECTIONS 16384
/* 0: a connection may stay idle for ever. The clients do not reconnect, and
 * a job that appends once an hour is normal; dead peers are found by TCP
 * keepalive instead (net.c). */
#define H5A_DEFAULT_IDLE_TIMEOUT 0
#define H5A_DEFAULT_DEDUP_WINDOW 4096
#define H5A_DEFAULT_DEDUP_IDLE_TIMEOUT 86400
#define H5A_DEFAULT_DEDUP_MAX_CLIENTS 100000
#define H5A_DEFAULT_DEDUP_MAX_BYTES (256ull << 20)
#define H5A_DEFAULT_MAX_PENDING_BYTES (256ull << 20)
#define H5A_DEFAULT_MAX_PENDING_REQUESTS 65536
#define H5A_DEFAULT_MAX_REPLY_QUEUE (64ull << 20)
#define H5A_DEFAULT_SLOW_CLIENT_TIMEOUT 60
#define H5A_DEFAULT_MAX_NESTING 32     /* = MP_DEFAULT_MAX_DEPTH */
#define H5A_DEFAULT_MAX_ELEMENTS 4194304 /* = MP_DEFAULT_MAX_NODES */
#define H5A_DEFAULT_DURABILITY H5A_DUR_FLUSH
/* 16 Mi chunk positions: 4 TiB of the 256 KiB chunks appends make; a resize
 * across all of them costs HDF5 about 1.7 s on this project's machines. */
#define H5A_DEFAULT_MAX_CHUNKS (1ull << 24)
#define H5A_DEFAULT_MAX_OP_BYTES (1ull << 30)
#define H5A_DEFAULT_TLS_HANDSHAKE_TIMEOUT 10
#define H5A_DEFAULT_ALLOCATOR_CACHE (64ull << 20)
#define H5A_DEFAULT_READ_BUFFER_CACHE (256ull << 20)
/* max_buffered_bytes: a quarter of the machine's memory (config.c) */
#define H5A_DEFAULT_FRAME_TIMEOUT 60
#define H5A_DEFAULT_SPIN_US 50
#define H5A_DEFAULT_MAX_OPEN_FILES 64
#define H5A_DEFAULT_FILE_IDLE_CLOSE 10

/* Check the keys that only make sense together (tls_cert_file without
 * tls_key_file, ...). Returns 0 or -1 with err. */
int h5a_config_check(const h5a_config *cfg, char *err, size_t errlen);

/* "none" / "flush" / "fsync" -> level, or -1. */
int h5a_durability_parse(const char *s, size_t n);
const char *h5a_durability_name(h5a_durability d);

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
/* [cluster] nodes = HOST:PORT, HOST:PORT, ... into cfg. 0 or -1 with err. */
int h5a_config_set_nodes(h5a_config *cfg, const char *value, char *err, size_t errlen);

#endif
