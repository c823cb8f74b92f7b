/* The HTTP port (http_port): a second listener on the server's event loop
 * serving the h5grove API (/api/meta, /api/data, /api/attr, /api/paths),
 * the h5web viewer (/), /metrics and /health. See docs/live-view.md.
 *
 * http.c: connections, HTTP/1.1 parsing (libhttp-parser), TLS (tls.c),
 * responses. http_route.c: access, routing, the viewer's files, /metrics
 * and /health. http_h5grove.c and http_data.c: the /api endpoints, each
 * answered from requests given to the storage thread like every other
 * client's. http_json.c: JSON text.
 * Event loop thread only. */
#ifndef H5A_HTTP_H
#define H5A_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "server/request.h"

struct server;

/* Start listening on cfg->host:cfg->http_port (after the main port).
 * Returns 0 and the bound port, or -1 with a message printed. */
int http_start(struct server *s, int *port);
/* A storage request an HTTP connection made is answered. */
void http_on_done(struct server *s, h5a_request *r);
/* The sweep (net.c): timeouts of HTTP connections. */
void http_sweep(struct server *s, uint64_t now);
/* SIGINT/SIGTERM: stop accepting; answer what is in flight, then close. */
void http_stop(struct server *s);
/* The storage thread is done: close every HTTP connection left. */
void http_close_all(struct server *s);
/* Back under max_buffered_bytes: read the paused HTTP connections again. */
void http_resume_all(struct server *s);
/* Open HTTP connections (for /metrics). */
uint64_t http_nconns(const struct server *s);

#endif
