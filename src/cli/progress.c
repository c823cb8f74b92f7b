#include "cli/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define REDRAW_S 0.1 /* at most ten redraws a second */
#define LABEL_MAX 32 /* the bar line's label, at most */

struct progress {
    char label[128];
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

    double frac = total ? (double)done / (double)total : 1;
    int fill = (int)(frac * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char rate[40] = "";
    double dt = t - p->phase_t0;
    if (dt > 0 && done > p->phase_b0) {
        human(rate, sizeof rate - 2, (double)(done - p->phase_b0) / dt);
        strcat(rate, "/s");
    }
    double mib = 1024.0 * 1024.0;
    /* a long path is shortened to its end, so the line does not wrap and
     * \r still goes back to its start; the verb stays */
    const char *path = strchr(p->label, ' ');
    int verb = path ? (int)(path - p->label) + 1 : 0;
    size_t ll = strlen(p->label + verb);
    int cut = ll > LABEL_MAX;
    const char *tail = cut ? p->label + verb + ll - (LABEL_MAX - 3) : p->label + verb;
    /* \r and erase-line: redraw in place */
    fprintf(stderr, "\r\033[K%.*s%s%s  [%s] %3d%%  %.1f/%.1f MiB  %s", verb, p->label,
            cut ? "..." : "", tail, bar,
            (int)(frac * 100), (double)done / mib, (double)total / mib, rate);
    fflush(stderr);
    p->drawn = 1;
}

progress *progress_start(hdf5a_client *c, const char *verb, const char *path)
{
    if (!isatty(2)) return NULL;
    progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s %s", verb, path);
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
    free(p);
}
