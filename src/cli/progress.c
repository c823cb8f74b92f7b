#include "cli/progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int drawn;
    char label[128];
    uint64_t nbytes;
    unsigned delay_ms;
    struct timespec t0;
};

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void human(char *buf, size_t len, double bytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void *run(void *arg)
{
    progress *p = arg;
    static const char spin[] = "|/-\\";
    unsigned tick = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->done) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
        if (p->done) break;
        double t = since(&p->t0);
        if (t * 1000 < p->delay_ms) continue;
        char size[32] = "";
        if (p->nbytes) human(size, sizeof size, (double)p->nbytes);
        /* \r and erase-line: redraw in place */
        fprintf(stderr, "\r\033[K%s %c %s%s%.1f s", p->label, spin[tick++ % 4], size,
                *size ? ", " : "", t);
        fflush(stderr);
        p->drawn = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

progress *progress_start(const char *label, uint64_t nbytes, unsigned delay_ms)
{
    if (!isatty(2)) return NULL;
    progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->nbytes = nbytes;
    p->delay_ms = delay_ms;
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

void progress_end(progress *p, int ok, uint64_t nbytes)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->done = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    double t = since(&p->t0);
    if (p->drawn) fprintf(stderr, "\r\033[K");
    if (ok && nbytes > PROGRESS_MIN_BYTES) {
        char size[32], rate[32];
        human(size, sizeof size, (double)nbytes);
        human(rate, sizeof rate, t > 0 ? (double)nbytes / t : 0);
        fprintf(stderr, "%s: %s in %.1f s (%s/s)\n", p->label, size, t, rate);
    }
    fflush(stderr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
