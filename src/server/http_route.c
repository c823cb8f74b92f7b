/* The HTTP port's requests, once parsed (http.c has the connections):
 * access (Bearer tokens of auth_file, protected mode), the query string,
 * routing to the h5grove API (http_h5grove.c, http_data.c), /metrics,
 * /health, the viewer's files and CORS preflights. Event loop thread only. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/errors.h"
#include "server/cluster.h"
#include "server/http.h"
#include "server/http_int.h"
#include "server/metrics.h"
#include "server/net_int.h"
#include "server/viewer_assets.h"

/* ---- access ---- */

/* The Bearer token of the request, as the tokens file knows it. */
static const h5a_token *bearer(http_conn *c, bool *given)
{
    const char *a = c->auth;
    *given = false;
    if (c->auth_len < 7 || strncasecmp(a, "Bearer ", 7) != 0) return NULL;
    a += 7;
    while (*a == ' ') a++;
    size_t n = strlen(a);
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\t')) n--;
    if (!n) return NULL;
    *given = true;
    return h5a_auth_find_token(c->srv->access.auth, a, n);
}

/* May this request use the API or /metrics at all? Answers 401/403 when
 * not. (Each storage request is checked again in hc_submit.) */
static bool admitted(http_conn *c)
{
    server *s = c->srv;
    if (s->access.auth) {
        bool given;
        const h5a_token *t = bearer(c, &given);
        if (!t) {
            if (given) {
                s->access.failures++;
                fprintf(stderr, "hdf5-async-server: http %llu %s: unknown token\n",
                        (unsigned long long)c->serial, c->peer);
            }
            hc_error(c, 401,
                     given ? "Unauthorized: unknown token"
                           : "Unauthorized: this server needs a token (Authorization: Bearer "
                             "TOKEN; docs/security.md)");
            return false;
        }
        c->tok = t;
        return true;
    }
    if (!c->loopback && s->access.protected_mode) {
        hc_error(c, 403,
                 "Permission denied: this server is in protected mode: with no auth_file it "
                 "serves only clients on its own machine (docs/security.md)");
        return false;
    }
    return true;
}

int hc_submit(http_conn *c, h5a_request *r, char *err, size_t errlen)
{
    server *s = c->srv;
    const char *file = h5g_request_file(c);
    if (file && !r->file && !(r->file = strdup(file))) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    if (s->access.auth) {
        bool given;
        const h5a_token *t = bearer(c, &given); /* again: a reload may have come */
        if (!t) {
            snprintf(err, errlen, "Permission denied: the token is no longer valid");
            return 403;
        }
        char why[256];
        if (h5a_auth_check(t, r, why, sizeof why)) {
            snprintf(err, errlen, "Permission denied: %s", why);
            return 403;
        }
    }
    /* [cluster]: a file another node owns is not read here; the answer
     * names the owner (as WRONG_NODE does on the binary port,
     * after the access check as there) */
    h5a_cluster_route(s->cfg, r);
    if (r->err_code == H5A_E_WRONG_NODE) {
        snprintf(err, errlen, "Misdirected Request: %s (h5grove API: http_port of that node)",
                 r->err_msg);
        return 421;
    }
    r->conn = c;
    r->http = true;
    r->gone = &c->gone;
    r->droppable = true;
    r->durability = -1;
    r->t_start = uv_hrtime();
    c->in_storage++;
    h5a_storage_submit(s->storage, r);
    return 0;
}

/* ---- routing ---- */

const char *hc_param(const http_conn *c, const char *key)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].key, key) == 0) return c->params[i].val;
    return NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

/* Percent-decode s (n bytes, '+' as space) in place; NUL-terminated. */
static bool url_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') s[o++] = ' ';
        else if (s[i] == '%') {
            int a, b;
            if (i + 2 >= n || (a = hexval((unsigned char)s[i + 1])) < 0 ||
                (b = hexval((unsigned char)s[i + 2])) < 0)
                return false;
            s[o++] = (char)(a * 16 + b);
            i += 2;
        } else s[o++] = s[i];
    }
    s[o] = '\0';
    return memchr(s, '\0', o) == NULL;
}

static bool parse_query(http_conn *c, const char *q, size_t n)
{
    c->qbuf = malloc(n + 1);
    if (!c->qbuf) return false;
    memcpy(c->qbuf, q, n);
    c->qbuf[n] = '\0';
    char *p = c->qbuf, *end = c->qbuf + n;
    while (p < end) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        *amp = '\0';
        if (amp > p) {
            char *eq = memchr(p, '=', (size_t)(amp - p));
            char *val = eq ? eq + 1 : amp;
            if (eq) *eq = '\0';
            if (!url_decode(p, strlen(p)) || !url_decode(val, strlen(val))) return false;
            if (c->nparams == HTTP_MAX_PARAMS) return false;
            c->params[c->nparams].key = p;
            c->params[c->nparams].val = val;
            c->nparams++;
        }
        p = amp + 1;
    }
    return true;
}

static void serve_metrics(http_conn *c)
{
    server *s = c->srv;
    h5a_metrics_view v = {.conns = {s->nconns - s->nrejected, s->http_nconns},
                          .buffered = s->buffered,
                          .auth_failures = s->access.failures,
                          .file_path = s->cfg->file_path};
    size_t len;
    char *text = h5a_metrics_render(&v, &len);
    if (!text) {
        hc_error(c, 500, "out of memory");
        return;
    }
    hc_start(c, 200, "text/plain; version=0.0.4; charset=utf-8", (int64_t)len, NULL);
    hc_body(c, text, len, free, text);
    hc_end(c);
}

static void serve_asset(http_conn *c, const h5a_asset *a)
{
    size_t len = (size_t)(a->end - a->data);
    hc_start(c, 200, a->ctype, (int64_t)len,
             strcmp(a->path, "/index.html") == 0 ? "Cache-Control: no-cache\r\n" : NULL);
    hc_body(c, a->data, len, NULL, NULL);
    hc_end(c);
}

void hc_route(http_conn *c)
{
    server *s = c->srv;
    struct http_parser_url u;
    http_parser_url_init(&u);
    c->t_begin = uv_hrtime();
    c->endpoint = H5A_EP_OTHER;
    if (c->rejected) {
        c->keep_alive = false;
        c->close_after = true;
        hc_error(c, 503,
                 "Service Unavailable: the server has %zu connections open (max_connections = "
                 "%llu); try later",
                 s->nconns - s->nrejected + s->http_nconns,
                 (unsigned long long)s->cfg->max_connections);
        return;
    }
    if (http_parser_parse_url(c->url, c->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH))) {
        c->keep_alive = false;
        hc_error(c, 400, "Bad Request: cannot parse the URL");
        return;
    }
    char path[HTTP_MAX_URL + 1];
    size_t plen = u.field_data[UF_PATH].len;
    memcpy(path, c->url + u.field_data[UF_PATH].off, plen);
    if (!url_decode(path, plen)) {
        hc_error(c, 400, "Bad Request: bad percent-encoding in the path");
        return;
    }
    plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/') path[--plen] = '\0'; /* /api/meta/ = /api/meta */
    if ((u.field_set & (1 << UF_QUERY)) &&
        !parse_query(c, c->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len)) {
        hc_error(c, 400, "Bad Request: bad query string (or more than %d parameters)",
                 HTTP_MAX_PARAMS);
        return;
    }
    static const struct {
        const char *path;
        int ep, api;
    } api[] = {{"/api/meta", H5A_EP_META, API_META},
               {"/api/data", H5A_EP_DATA, API_DATA},
               {"/api/attr", H5A_EP_ATTR, API_ATTR},
               {"/api/paths", H5A_EP_PATHS, API_PATHS}};
    int which = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(path, api[i].path) == 0) which = i;
    if (which >= 0) c->endpoint = api[which].ep;
    else if (strcmp(path, "/metrics") == 0) c->endpoint = H5A_EP_METRICS;
    else if (strcmp(path, "/health") == 0) c->endpoint = H5A_EP_HEALTH;
    else if (strncmp(path, "/api", 4) != 0) c->endpoint = H5A_EP_VIEWER;

    if (c->method == HTTP_OPTIONS) { /* a CORS preflight */
        hc_start(c, 204, "text/plain", 0,
                 "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: Authorization\r\nAccess-Control-Max-Age: 600\r\n");
        hc_end(c);
        return;
    }
    if (c->method != HTTP_GET && c->method != HTTP_HEAD) {
        hc_error(c, 405, "Method Not Allowed: GET, HEAD or OPTIONS");
        return;
    }
    c->head = c->method == HTTP_HEAD;
    if (c->endpoint == H5A_EP_HEALTH) {
        /* the default file's name as the viewer passes it as h5grove's `file` */
        hjson j = {0};
        j_lit(&j, s->stopping ? "{\"status\": \"stopping\", \"file\": " : "{\"status\": \"ok\", \"file\": ");
        j_cstr(&j, h5g_default_name(s));
        j_lit(&j, "}");
        hc_json(c, s->stopping ? 503 : 200, &j);
        return;
    }
    if (which >= 0 || c->endpoint == H5A_EP_METRICS || strcmp(path, "/api") == 0) {
        if (!admitted(c)) return;
        if (c->endpoint == H5A_EP_METRICS) serve_metrics(c);
        else if (which < 0) { /* h5grove's "/": the server is up */
            hc_start(c, 200, "text/plain", 2, NULL);
            hc_body(c, "ok", 2, NULL, NULL);
            hc_end(c);
        } else if (s->stopping) hc_error(c, 503, "the server is stopping");
        else h5g_handle(c, api[which].api);
        return;
    }
    if (c->endpoint == H5A_EP_VIEWER) {
        const char *want = strcmp(path, "/") == 0 ? "/index.html" : path;
        for (size_t i = 0; i < h5a_viewer_nassets; i++)
            if (strcmp(h5a_viewer_assets[i].path, want) == 0) {
                serve_asset(c, &h5a_viewer_assets[i]);
                return;
            }
    }
    hc_error(c, 404, "Not found: %s", path);
}

