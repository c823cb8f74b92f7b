/* The storage engine: every HDF5 call of the server lives here, and runs on
 * the one storage thread (see storage.c). */
#ifndef H5A_ENGINE_H
#define H5A_ENGINE_H

#include "server/config.h"
#include "server/request.h"

typedef struct h5a_engine h5a_engine;

/* Open (or create) cfg->file_path. Returns 0, or -1 with err. */
int h5a_engine_open(h5a_engine **out, const h5a_config *cfg, char *err, size_t errlen);

/* Apply req (or answer its parse error) and leave the whole reply frame in
 * req->reply (+ req->reply_data). Never fails as a function. */
void h5a_engine_execute(h5a_engine *eng, h5a_request *req);

/* May b be applied together with a (both appends to the same path with the
 * same dtype and row shape)? */
bool h5a_engine_can_group(const h5a_request *a, const h5a_request *b);
/* Apply n appends that h5a_engine_can_group chained, as one. */
void h5a_engine_execute_appends(h5a_engine *eng, h5a_request **reqs, size_t n);

/* Write HDF5's cached metadata and data to the file if anything changed
 * since the last flush. */
void h5a_engine_flush(h5a_engine *eng);

/* Flush, close every handle and the file. */
void h5a_engine_close(h5a_engine *eng);

#endif
