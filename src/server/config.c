#include "server/config.h"

#include <errno.h>
#include <stddef.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "common/ini_lines.h"

void h5a_config_defaults(h5a_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "0.0.0.0");
    cfg->port = H5A_DEFAULT_PORT;
    cfg->http_port = -1;
    snprintf(cfg->file_path, sizeof cfg->file_path, "data.h5");
    cfg->max_message_size = H5A_DEFAULT_MAX_MESSAGE;
    cfg->max_connections = H5A_DEFAULT_MAX_CONNECTIONS;
    cfg->idle_timeout = H5A_DEFAULT_IDLE_TIMEOUT;
    cfg->max_pending_bytes = H5A_DEFAULT_MAX_PENDING_BYTES;
    cfg->max_pending_requests = H5A_DEFAULT_MAX_PENDING_REQUESTS;
    cfg->max_reply_queue = H5A_DEFAULT_MAX_REPLY_QUEUE;
    cfg->slow_client_timeout = H5A_DEFAULT_SLOW_CLIENT_TIMEOUT;
    cfg->max_nesting = H5A_DEFAULT_MAX_NESTING;
    cfg->durability = H5A_DEFAULT_DURABILITY;
    cfg->max_elements = H5A_DEFAULT_MAX_ELEMENTS;
    cfg->max_chunks = H5A_DEFAULT_MAX_CHUNKS;
    cfg->max_op_bytes = H5A_DEFAULT_MAX_OP_BYTES;
    cfg->protected_mode = true;
    cfg->allocator_cache = H5A_DEFAULT_ALLOCATOR_CACHE;
    cfg->read_buffer_cache = H5A_DEFAULT_READ_BUFFER_CACHE;
    cfg->frame_timeout = H5A_DEFAULT_FRAME_TIMEOUT;
    cfg->spin_us = H5A_DEFAULT_SPIN_US;
    cfg->max_open_files = H5A_DEFAULT_MAX_OPEN_FILES;
    cfg->file_idle_close = H5A_DEFAULT_FILE_IDLE_CLOSE;
    cfg->node_index = -1;
    cfg->dedup_window = H5A_DEFAULT_DEDUP_WINDOW;
    cfg->dedup_idle_timeout = H5A_DEFAULT_DEDUP_IDLE_TIMEOUT;
    cfg->dedup_max_clients = H5A_DEFAULT_DEDUP_MAX_CLIENTS;
    cfg->dedup_max_bytes = H5A_DEFAULT_DEDUP_MAX_BYTES;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    cfg->max_buffered_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 4
                                                    : (uint64_t)1 << 30;
    cfg->tls_handshake_timeout = H5A_DEFAULT_TLS_HANDSHAKE_TIMEOUT;
}

static const char *const dur_names[] = {"none", "flush", "fsync"};

int h5a_durability_parse(const char *s, size_t n)
{
    for (int i = 0; i < 3; i++)
        if (strlen(dur_names[i]) == n && memcmp(s, dur_names[i], n) == 0) return i;
    return -1;
}

const char *h5a_durability_name(h5a_durability d)
{
    return (unsigned)d < 3 ? dur_names[d] : "?";
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

/* "1073741824", "64M", "1G", "512K" (binary multiples). */
static int parse_size(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9') return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno) return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end != '\0' || n > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)n << shift;
    return 0;
}

/* A plain decimal count: digits only, no sign, no suffix. */
static int parse_count(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9') return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end) return -1;
    *out = n;
    return 0;
}

/* The numeric keys: each is a count, a number of seconds or a byte size
 * (with K, M, G suffixes), within [min, max]. */
enum { NUM_COUNT, NUM_SECONDS, NUM_SIZE };
static const struct {
    const char *key;
    int kind;
    uint64_t min, max;
    size_t offset;
    const char *range; /* for the error message */
} num_keys[] = {
    {"max_connections", NUM_COUNT, 1, 16777216, offsetof(h5a_config, max_connections),
     "a count from 1 to 16777216"},
    {"idle_timeout", NUM_SECONDS, 0, 31536000, offsetof(h5a_config, idle_timeout),
     "whole seconds from 0 (never) to 31536000"},
    {"max_pending_bytes", NUM_SIZE, 1024, UINT64_MAX, offsetof(h5a_config, max_pending_bytes),
     "bytes, at least 1K (suffixes K, M, G allowed)"},
    {"max_pending_requests", NUM_COUNT, 1, 0xFFFFFFFFull,
     offsetof(h5a_config, max_pending_requests), "a count from 1 to 4294967295"},
    {"max_reply_queue", NUM_SIZE, 1024, UINT64_MAX, offsetof(h5a_config, max_reply_queue),
     "bytes, at least 1K (suffixes K, M, G allowed)"},
    {"slow_client_timeout", NUM_SECONDS, 0, 31536000, offsetof(h5a_config, slow_client_timeout),
     "whole seconds from 0 (never) to 31536000"},
    {"max_nesting", NUM_COUNT, 1, 1000, offsetof(h5a_config, max_nesting),
     "a depth from 1 to 1000"},
    {"max_elements", NUM_COUNT, 1, 0xFFFFFFFFull, offsetof(h5a_config, max_elements),
     "a count from 1 to 4294967295"},
    /* HDF5's fixed-array chunk index fails past 2^32 positions */
    {"max_chunks", NUM_COUNT, 1, 0xFFFFFFFFull, offsetof(h5a_config, max_chunks),
     "a count from 1 to 4294967295"},
    {"max_op_bytes", NUM_SIZE, 1024, UINT64_MAX, offsetof(h5a_config, max_op_bytes),
     "bytes, at least 1K (suffixes K, M, G allowed)"},
    {"allocator_cache", NUM_SIZE, 0, UINT64_MAX, offsetof(h5a_config, allocator_cache),
     "bytes, 0 or more (suffixes K, M, G allowed)"},
    {"read_buffer_cache", NUM_SIZE, 0, UINT64_MAX, offsetof(h5a_config, read_buffer_cache),
     "bytes, 0 or more (suffixes K, M, G allowed)"},
    {"max_buffered_bytes", NUM_SIZE, 1 << 20, UINT64_MAX, offsetof(h5a_config, max_buffered_bytes),
     "bytes, at least 1M (suffixes K, M, G allowed)"},
    {"frame_timeout", NUM_SECONDS, 0, 31536000, offsetof(h5a_config, frame_timeout),
     "whole seconds from 0 (never) to 31536000"},
    {"max_open_files", NUM_COUNT, 1, 65536, offsetof(h5a_config, max_open_files),
     "a count from 1 to 65536"},
    {"file_idle_close", NUM_SECONDS, 0, 31536000, offsetof(h5a_config, file_idle_close),
     "whole seconds from 0 (never) to 31536000"},
    {"spin_us", NUM_COUNT, 0, 10000, offsetof(h5a_config, spin_us),
     "microseconds from 0 (never spin) to 10000"},
    {"tls_handshake_timeout", NUM_SECONDS, 1, 3600, offsetof(h5a_config, tls_handshake_timeout),
     "whole seconds from 1 to 3600"},
    {"dedup_window", NUM_COUNT, 1, 1048576, offsetof(h5a_config, dedup_window),
     "a count from 1 to 1048576"},
    {"dedup_idle_timeout", NUM_SECONDS, 1, 31536000, offsetof(h5a_config, dedup_idle_timeout),
     "whole seconds from 1 to 31536000"},
    {"dedup_max_clients", NUM_COUNT, 1, 100000000, offsetof(h5a_config, dedup_max_clients),
     "a count from 1 to 100000000"},
    {"dedup_max_bytes", NUM_SIZE, 1 << 20, UINT64_MAX, offsetof(h5a_config, dedup_max_bytes),
     "bytes, at least 1M (suffixes K, M, G allowed)"},
};

int h5a_config_set(h5a_config *cfg, const char *key, const char *v, char *err, size_t errlen)
{
    if (strcmp(key, "host") == 0) {
        if (!*v || strlen(v) >= sizeof cfg->host) goto bad;
        snprintf(cfg->host, sizeof cfg->host, "%s", v);
    } else if (strcmp(key, "port") == 0) {
        char *end;
        errno = 0;
        long p = strtol(v, &end, 10);
        if (errno || end == v || *end || p < 0 || p > 65535) goto bad;
        cfg->port = (int)p;
    } else if (strcmp(key, "http_port") == 0) {
        char *end;
        errno = 0;
        long p = strtol(v, &end, 10);
        if (!*v) { /* empty: no HTTP port */
            cfg->http_port = -1;
            return 0;
        }
        if (errno || end == v || *end || p < 0 || p > 65535) goto bad;
        cfg->http_port = (int)p;
    } else if (strcmp(key, "http_cors_origin") == 0) {
        if (strlen(v) >= sizeof cfg->http_cors_origin || strpbrk(v, "\r\n")) goto bad;
        snprintf(cfg->http_cors_origin, sizeof cfg->http_cors_origin, "%s", v);
    } else if (strcmp(key, "node") == 0) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 0 || n >= H5A_MAX_NODES) goto bad;
        cfg->node_index = (int)n;
    } else if (strcmp(key, "data_root") == 0) {
        if (strlen(v) >= sizeof cfg->data_root) goto bad;
        snprintf(cfg->data_root, sizeof cfg->data_root, "%s", v); /* empty: unset */
    } else if (strcmp(key, "hdf5_file_path") == 0) {
        if (!*v || strlen(v) >= sizeof cfg->file_path) goto bad;
        snprintf(cfg->file_path, sizeof cfg->file_path, "%s", v);
    } else if (strcmp(key, "use_compression") == 0) {
        if (parse_bool(v, &cfg->use_compression)) goto bad;
    } else if (strcmp(key, "debug") == 0) {
        if (parse_bool(v, &cfg->debug)) goto bad;
    } else if (strcmp(key, "wal_discard_damaged") == 0) {
        if (parse_bool(v, &cfg->wal_discard_damaged)) goto bad;
    } else if (strcmp(key, "serialization_format") == 0) {
        if (strcasecmp(v, "messagepack") != 0 && strcasecmp(v, "msgpack") != 0) {
            snprintf(err, errlen,
                     "serialization_format = '%s' is not supported: the only format is 'messagepack'",
                     v);
            return -1;
        }
    } else if (strcmp(key, "durability") == 0) {
        int d = h5a_durability_parse(v, strlen(v));
        if (d < 0) {
            snprintf(err, errlen, "durability = '%s' is invalid: give none, flush or fsync", v);
            return -1;
        }
        cfg->durability = (h5a_durability)d;
    } else if (strcmp(key, "protected_mode") == 0) {
        if (parse_bool(v, &cfg->protected_mode)) goto bad;
    } else if (strcmp(key, "auth_file") == 0 || strcmp(key, "tls_cert_file") == 0 ||
               strcmp(key, "tls_key_file") == 0 || strcmp(key, "tls_ca_file") == 0) {
        char *dst = strcmp(key, "auth_file") == 0       ? cfg->auth_file
                    : strcmp(key, "tls_cert_file") == 0 ? cfg->tls_cert_file
                    : strcmp(key, "tls_key_file") == 0  ? cfg->tls_key_file
                                                        : cfg->tls_ca_file;
        if (strlen(v) >= sizeof cfg->auth_file) goto bad;
        snprintf(dst, sizeof cfg->auth_file, "%s", v); /* empty: unset */
    } else if (strcmp(key, "tls_client_auth") == 0) {
        if (strcmp(v, "no") == 0) cfg->tls_client_auth = 0;
        else if (strcmp(v, "optional") == 0) cfg->tls_client_auth = 1;
        else if (strcmp(v, "require") == 0) cfg->tls_client_auth = 2;
        else {
            snprintf(err, errlen, "tls_client_auth = '%s' is invalid: give no, optional or require", v);
            return -1;
        }
    } else if (strcmp(key, "max_message_size") == 0) {
        uint64_t n;
        if (parse_size(v, &n) || n < 1024 || n > H5A_MAX_MESSAGE_LIMIT) {
            snprintf(err, errlen,
                     "max_message_size = '%s' is invalid: give bytes between 1K and 4294967295 "
                     "(suffixes K, M, G allowed)",
                     v);
            return -1;
        }
        cfg->max_message_size = n;
    } else {
        for (size_t i = 0; i < sizeof num_keys / sizeof num_keys[0]; i++) {
            if (strcmp(key, num_keys[i].key) != 0) continue;
            uint64_t n;
            int rc = num_keys[i].kind == NUM_SIZE ? parse_size(v, &n) : parse_count(v, &n);
            if (rc || n < num_keys[i].min || n > num_keys[i].max) {
                snprintf(err, errlen, "%s = '%s' is invalid: give %s", key, v, num_keys[i].range);
                return -1;
            }
            *(uint64_t *)((char *)cfg + num_keys[i].offset) = n;
            return 0;
        }
        snprintf(err, errlen,
                 "unknown key '%s' (known: host, port, hdf5_file_path, use_compression, debug, "
                 "serialization_format, durability, max_message_size, max_connections, idle_timeout, "
                 "max_pending_bytes, max_pending_requests, max_reply_queue, "
                 "slow_client_timeout, max_nesting, max_elements, max_chunks, max_op_bytes, auth_file, "
                 "protected_mode, tls_cert_file, tls_key_file, tls_ca_file, tls_client_auth, "
                 "tls_handshake_timeout, allocator_cache, read_buffer_cache, max_buffered_bytes, "
                 "frame_timeout, spin_us, http_port, http_cors_origin, wal_discard_damaged, "
                 "dedup_window, dedup_idle_timeout, dedup_max_clients, dedup_max_bytes, data_root, "
                 "max_open_files, file_idle_close, node)",
                 key);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "invalid value '%s' for key '%s'", v, key);
    return -1;
}


struct load_ctx {
    h5a_config *cfg;
    h5a_ini_lines *rd;
    const char *path;
    char *err;
    size_t errlen;
    bool failed;
};

int h5a_config_set_nodes(h5a_config *cfg, const char *value, char *err, size_t errlen)
{
    cfg->cluster_n = 0;
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        const char *colon = NULL;
        for (size_t k = 0; k < n; k++)
            if (p[k] == ':') colon = p + k;
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == p || end != p + n || port < 1 || port > 65535 ||
            n >= sizeof cfg->cluster_nodes[0] || memchr(p, ' ', n))
            return snprintf(err, errlen, "nodes: '%.*s' is not HOST:PORT", (int)n, p), -1;
        if (cfg->cluster_n == H5A_MAX_NODES)
            return snprintf(err, errlen, "nodes: more than %d", H5A_MAX_NODES), -1;
        snprintf(cfg->cluster_nodes[cfg->cluster_n], sizeof cfg->cluster_nodes[0], "%.*s", (int)n, p);
        for (int i = 0; i < cfg->cluster_n; i++)
            if (strcmp(cfg->cluster_nodes[i], cfg->cluster_nodes[cfg->cluster_n]) == 0)
                return snprintf(err, errlen, "nodes: '%s' is listed twice", cfg->cluster_nodes[i]), -1;
        cfg->cluster_n++;
        if (!comma) break;
        p = comma + 1;
    }
    if (!cfg->cluster_n) return snprintf(err, errlen, "nodes: empty list"), -1;
    return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = user;
    if (!c->failed && strcmp(section, "cluster") == 0) {
        char msg[512];
        if (strcmp(name, "nodes") != 0)
            snprintf(msg, sizeof msg, "unknown key '%s' (known: nodes)", name);
        else if (h5a_config_set_nodes(c->cfg, value, msg, sizeof msg) == 0)
            return 1;
        snprintf(c->err, c->errlen, "%s:%d: [cluster] %s", c->path, c->rd->line, msg);
        c->failed = true;
        return 0;
    }
    if (c->failed || strcmp(section, "server") != 0) return 1;
    char msg[512];
    if (h5a_config_set(c->cfg, name, value, msg, sizeof msg) != 0) {
        snprintf(c->err, c->errlen, "%s:%d: [server] %s", c->path, c->rd->line, msg);
        c->failed = true;
        return 0;
    }
    return 1;
}

int h5a_config_load(h5a_config *cfg, const char *path, bool missing_ok, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (missing_ok && errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot open config file: %s", path, strerror(errno));
        return -1;
    }
    h5a_ini_lines rd = {f, 0};
    struct load_ctx c = {cfg, &rd, path, err, errlen, false};
    int rc = ini_parse_stream(h5a_ini_read_line, &rd, on_entry, &c);
    fclose(f);
    if (c.failed) return -1;
    if (rc != 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
        return -1;
    }
    return 0;
}

int h5a_config_check(const h5a_config *cfg, char *err, size_t errlen)
{
    bool cert = cfg->tls_cert_file[0], key = cfg->tls_key_file[0];
    if (cert != key) {
        snprintf(err, errlen, "%s is set but %s is not: TLS needs both", cert ? "tls_cert_file" : "tls_key_file",
                 cert ? "tls_key_file" : "tls_cert_file");
        return -1;
    }
    if (!cert && (cfg->tls_ca_file[0] || cfg->tls_client_auth)) {
        snprintf(err, errlen, "%s is set but TLS is not (set tls_cert_file and tls_key_file)",
                 cfg->tls_ca_file[0] ? "tls_ca_file" : "tls_client_auth");
        return -1;
    }
    if (cfg->tls_client_auth && !cfg->tls_ca_file[0]) {
        snprintf(err, errlen, "tls_client_auth = %s needs tls_ca_file (the CAs that sign client "
                 "certificates)", cfg->tls_client_auth == 1 ? "optional" : "require");
        return -1;
    }
    return 0;
}
