/* The progress bar (progress.h): the hook the library calls, and the bar
 * line fitted to the terminal's width. */
#include "cli/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define BAR_NARROW 10
#define REDRAW_S 0.1  /* at most ten redraws a second */
#define PATH_MIN 12   /* columns the path keeps before the bar gives way */
#define RATE_WIDTH 12 /* "1023.9 KiB/s": the widest rate, reserved so the
                         layout does not jump as the rate changes */
#define DEFAULT_COLUMNS 80

struct progress {
    char *verb;        /* "put", "append", "get" */
    char *path;        /* the dataset, made printable (see printable()) */
    char *label;       /* "VERB PATH" as given, for the summary line */
    char *line;        /* the bar line: room for the verb, the whole path
                          and the rest */
    size_t linelen;
    double t0;         /* progress_start */
    int drawn;         /* a bar is on the line */
    double last_draw;  /* when it was drawn (-1: never) */
    uint64_t total;    /* current direction's frame size */
    uint64_t prev;     /* its last done */
    double phase_t0;   /* its first report: time and bytes, for the rate */
    uint64_t phase_b0;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *buf, size_t len, double bytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* ---- the terminal's columns ---- */

static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    /* a terminal that does not know its size (a serial line, some
     * emulators' pseudo-terminals) */
    const char *env = getenv("COLUMNS");
    char *end;
    long n = env ? strtol(env, &end, 10) : 0;
    return env && *env && !*end && n > 0 && n < 100000 ? (int)n : DEFAULT_COLUMNS;
}

/* Bytes of the UTF-8 character at s (NUL-terminated) and its columns;
 * 0 when s does not start with a printable, well-formed character. The
 * width errs wide: from U+1100 on (where East Asian wide characters
 * start) every character counts two columns, so a bar may come out a
 * little short, never too wide. */
static int utf8_char(const unsigned char *s, int *cols)
{
    unsigned c = s[0];
    *cols = 1;
    if (c >= 0x20 && c < 0x7F) return 1;
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n) return 0;
    unsigned cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    if (cp < 0xA0) return 0; /* C1 controls */
    *cols = cp >= 0x1100 ? 2 : 1;
    return n;
}

/* path with every byte that is not part of a printable character replaced
 * by '?': a newline or an escape sequence in a dataset's name must not
 * move the cursor. */
static char *printable(const char *path)
{
    char *out = strdup(path);
    if (!out) return NULL;
    for (unsigned char *p = (unsigned char *)out; *p;) {
        int w, n = utf8_char(p, &w);
        if (n) {
            p += n;
        } else {
            *p++ = '?';
        }
    }
    return out;
}

/* Columns of printable() text. */
static int text_cols(const char *s)
{
    int cols = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int w;
        p += utf8_char(p, &w);
        cols += w;
    }
    return cols;
}

/* Appends path to out, elided in the middle ("/runs/2024...x/data") to at
 * most room columns. Returns the columns used. */
static int put_path(char *out, size_t outlen, const char *path, int room)
{
    int cols = text_cols(path);
    if (cols <= room) {
        strncat(out, path, outlen - strlen(out) - 1);
        return cols;
    }
    if (room < 5) return 0; /* "a...b" is the least that says anything */
    /* the tail holds the dataset's own name: it gets the larger half */
    int head_room = (room - 3) / 2, tail_room = room - 3 - head_room;
    const unsigned char *p = (const unsigned char *)path;
    int head = 0, w, n;
    size_t head_bytes = 0;
    while ((n = utf8_char(p + head_bytes, &w)) && head + w <= head_room) {
        head += w;
        head_bytes += (size_t)n;
    }
    size_t len = strlen(path), tail_at = len;
    int tail = 0;
    while (tail_at > head_bytes) {
        size_t b = tail_at - 1;
        while (b > head_bytes && (p[b] & 0xC0) == 0x80) b--;
        utf8_char(p + b, &w);
        if (tail + w > tail_room) break;
        tail += w;
        tail_at = b;
    }
    size_t used = strlen(out);
    snprintf(out + used, outlen - used, "%.*s...%s", (int)head_bytes, path, path + tail_at);
    return head + 3 + tail;
}

/* ---- the bar line ---- */

/* What the line shows beside the verb and the path, richest first; the
 * first layout that leaves the path PATH_MIN columns (or all it needs)
 * is drawn. */
static const struct layout {
    int bar;   /* bar width, 0: none */
    int bytes; /* "  12.0/268.4 MiB" */
    int rate;  /* "  1.2 GiB/s" */
} LAYOUTS[] = {
    {BAR_WIDTH, 1, 1}, {BAR_NARROW, 1, 1}, {BAR_NARROW, 1, 0}, {BAR_NARROW, 0, 0}, {0, 0, 0},
};

/* The bar line for a terminal cols wide: at most cols - 1 columns, since
 * writing the last column leaves some terminals' cursor on the next
 * line, where \r would no longer reach the bar. */
static void bar_line(char *out, size_t outlen, int cols, const char *verb, const char *path,
                     uint64_t done, uint64_t total, const char *rate)
{
    int width = cols - 1;
    double frac = total ? (double)done / (double)total : 1;
    double mib = 1024.0 * 1024.0;
    char bytes[64], widest[64], pct[16];
    snprintf(bytes, sizeof bytes, "  %.1f/%.1f MiB", (double)done / mib, (double)total / mib);
    snprintf(widest, sizeof widest, "  %.1f/%.1f MiB", (double)total / mib, (double)total / mib);
    snprintf(pct, sizeof pct, " %3d%%", (int)(frac * 100));
    int pathw = text_cols(path), prefix = (int)strlen(verb) + 1;
    const struct layout *l = NULL;
    int room = 0;
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0]; i++) {
        l = &LAYOUTS[i];
        int tail = (l->bar ? 3 + l->bar + 1 : 0) + (int)strlen(pct) +
                   (l->bytes ? (int)strlen(widest) : 0) + (l->rate ? 2 + RATE_WIDTH : 0);
        room = width - prefix - tail;
        if (room >= (pathw < PATH_MIN ? pathw : PATH_MIN)) break;
    }
    out[0] = '\0';
    if (room < 0) room = 0;
    /* "VERB PATH": the path may be elided to nothing on a tiny terminal */
    snprintf(out, outlen, "%s ", verb);
    int used = prefix + put_path(out, outlen, path, room);
    if (used == prefix) out[--used] = '\0';
    char tail[200] = "";
    size_t tl = 0;
    if (l->bar) {
        char bar[BAR_WIDTH + 1];
        int fill = (int)(frac * l->bar);
        for (int i = 0; i < l->bar; i++) bar[i] = i < fill ? '#' : '.';
        bar[l->bar] = '\0';
        tl += (size_t)snprintf(tail + tl, sizeof tail - tl, "  [%s]", bar);
    }
    tl += (size_t)snprintf(tail + tl, sizeof tail - tl, "%s", pct);
    if (l->bytes) tl += (size_t)snprintf(tail + tl, sizeof tail - tl, "%s", bytes);
    if (l->rate && *rate) snprintf(tail + tl, sizeof tail - tl, "  %s", rate);
    /* the tail is ASCII: one byte a column; cut rather than wrap when even
     * the narrowest layout does not fit */
    int left = width - used;
    if (left <= 0) {
        if (width < prefix) out[0] = '\0';
        return;
    }
    size_t n = strlen(out);
    snprintf(out + n, outlen - n, "%.*s", left, tail);
}

/* hdf5a_progress_cb: runs inside the blocking call, touches only p. */
static void on_progress(uint64_t done, uint64_t total, void *ud)
{
    progress *p = ud;
    double t = now_s();
    if (total != p->total || done < p->prev) { /* a new direction */
        /* the request starts with the call; when the reply starts is not
         * known, so its rate counts from its first report */
        int first = p->total == 0;
        p->total = total;
        p->phase_t0 = first ? p->t0 : t;
        p->phase_b0 = first ? 0 : done;
    }
    p->prev = done;
    if (total <= PROGRESS_MIN_BYTES) return;
    if (done != total && p->last_draw >= 0 && t - p->last_draw < REDRAW_S) return;
    p->last_draw = t;

    char rate[40] = "";
    double dt = t - p->phase_t0;
    if (dt > 0 && done > p->phase_b0) {
        human(rate, sizeof rate - 2, (double)(done - p->phase_b0) / dt);
        strcat(rate, "/s");
    }
    /* the terminal may have been resized since the last redraw */
    bar_line(p->line, p->linelen, terminal_columns(), p->verb, p->path, done, total, rate);
    /* \r and erase-line: redraw in place */
    fprintf(stderr, "\r\033[K%s", p->line);
    fflush(stderr);
    p->drawn = 1;
}

static void progress_free(progress *p)
{
    free(p->verb);
    free(p->path);
    free(p->label);
    free(p->line);
    free(p);
}

progress *progress_start(hdf5a_client *c, const char *verb, const char *path)
{
    if (!isatty(2)) return NULL;
    progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    size_t ll = strlen(verb) + 1 + strlen(path) + 1;
    p->verb = strdup(verb);
    p->path = printable(path);
    p->label = malloc(ll);
    p->linelen = ll + 256;
    p->line = malloc(p->linelen);
    if (!p->verb || !p->path || !p->label || !p->line) {
        progress_free(p);
        return NULL;
    }
    snprintf(p->label, ll, "%s %s", verb, path);
    p->t0 = now_s();
    p->last_draw = -1;
    hdf5a_set_progress(c, on_progress, p);
    return p;
}

void progress_end(progress *p, hdf5a_client *c, int ok, uint64_t nbytes)
{
    if (!p) return;
    hdf5a_set_progress(c, NULL, NULL);
    double t = now_s() - p->t0;
    if (p->drawn) fprintf(stderr, "\r\033[K");
    if (ok && nbytes > PROGRESS_MIN_BYTES) {
        char size[32], rate[32];
        human(size, sizeof size, (double)nbytes);
        human(rate, sizeof rate, t > 0 ? (double)nbytes / t : 0);
        fprintf(stderr, "%s: %s in %.1f s (%s/s)\n", p->label, size, t, rate);
    }
    fflush(stderr);
    progress_free(p);
}
