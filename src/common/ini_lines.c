#include "common/ini_lines.h"

#include <string.h>

/* `port = 8891 # local`: a '#' or ';' after a space or tab starts a comment,
 * as in the Python client (configparser's inline_comment_prefixes); inih
 * alone knows only ';'. A line too long for buf arrives in pieces; once a
 * piece holds a comment, the rest of its line is comment too and skipped. */
static void strip_comment(char *s, FILE *f)
{
    for (char *p = s; *p; p++) {
        if ((*p != '#' && *p != ';') || p == s || (p[-1] != ' ' && p[-1] != '\t')) continue;
        int whole = strchr(p, '\n') != NULL;
        p[0] = '\n';
        p[1] = '\0';
        if (!whole) {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
        }
        return;
    }
}

char *h5a_ini_read_line(char *buf, int size, void *stream)
{
    h5a_ini_lines *r = stream;
    char *s = fgets(buf, size, r->f);
    if (s) {
        r->line++;
        strip_comment(s, r->f);
    }
    return s;
}
