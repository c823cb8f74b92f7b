/* The viewer's files (h5web bundled by esbuild, viewer/), built into the
 * server by `make`: $(BUILD)/viewer_assets.c, written by
 * scripts/viewer-assets.sh, holds each file of $(BUILD)/viewer/ with
 * .incbin. When the bundle could not be built (no npm), the one file is an
 * index.html that says how to build it. */
#ifndef H5A_VIEWER_ASSETS_H
#define H5A_VIEWER_ASSETS_H

#include <stddef.h>

typedef struct h5a_asset {
    const char *path;  /* "/index.html", "/app.js", ... */
    const char *ctype; /* its Content-Type */
    const unsigned char *data, *end; /* its bytes: [data, end) */
} h5a_asset;

extern const h5a_asset h5a_viewer_assets[];
extern const size_t h5a_viewer_nassets;

#endif
