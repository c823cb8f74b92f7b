/* Debian's inih does not pass line numbers to its handlers (it is built
 * without INI_HANDLER_LINENO), so the server and the CLI feed it lines
 * through this reader, which counts them: error messages can then name
 * FILE:LINE. Use: h5a_ini_lines rd = {f, 0};
 *                 ini_parse_stream(h5a_ini_read_line, &rd, handler, ctx);
 * and read rd.line inside the handler. It also ends a line at a '#' or ';'
 * that follows whitespace (an inline comment, as the Python client reads
 * config.ini). */
#ifndef H5A_INI_LINES_H
#define H5A_INI_LINES_H

#include <stdio.h>

typedef struct h5a_ini_lines {
    FILE *f;
    int line; /* the line inih is looking at */
} h5a_ini_lines;

char *h5a_ini_read_line(char *buf, int size, void *stream);

#endif
