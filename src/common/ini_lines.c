#include "common/ini_lines.h"

char *h5a_ini_read_line(char *buf, int size, void *stream)
{
    h5a_ini_lines *r = stream;
    char *s = fgets(buf, size, r->f);
    if (s) r->line++;
    return s;
}
