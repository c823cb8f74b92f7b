#include "server/bigbuf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define KEEP_MIN (1u << 20)   /* smaller buffers come and go through malloc */
#define KEEP_MAX (256u << 20) /* larger ones are too rare to hold on to */
#define SLOTS 4
#define IDLE_NS 1000000000ull

/* Each buffer starts with this header; 16 bytes keep the data aligned. */
typedef struct {
    size_t cap;
    uint64_t last_used;
} hdr;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hdr *slot[SLOTS];
static size_t limit = 256u << 20; /* read_buffer_cache: bytes kept at most */

void h5a_buf_set_limit(size_t bytes)
{
    pthread_mutex_lock(&mu);
    limit = bytes;
    pthread_mutex_unlock(&mu);
}

size_t h5a_buf_held(void)
{
    size_t n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SLOTS; i++)
        if (slot[i]) n += slot[i]->cap;
    pthread_mutex_unlock(&mu);
    return n;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

void *h5a_buf_alloc(size_t n)
{
    hdr *h = NULL;
    if (n >= KEEP_MIN) {
        /* best fit, wasting at most half of the buffer */
        int best = -1;
        pthread_mutex_lock(&mu);
        for (int i = 0; i < SLOTS; i++)
            if (slot[i] && slot[i]->cap >= n && slot[i]->cap / 2 <= n &&
                (best < 0 || slot[i]->cap < slot[best]->cap))
                best = i;
        if (best >= 0) {
            h = slot[best];
            slot[best] = NULL;
        }
        pthread_mutex_unlock(&mu);
    }
    if (!h) {
        if (n > SIZE_MAX - sizeof(hdr)) return NULL;
        h = malloc(sizeof(hdr) + (n ? n : 1));
        if (!h) return NULL;
        h->cap = n;
    }
    return h + 1;
}

void h5a_buf_free(void *p)
{
    if (!p) return;
    hdr *h = (hdr *)p - 1, *evict[SLOTS + 1] = {h};
    int nevict = 1;
    if (h->cap >= KEEP_MIN && h->cap <= KEEP_MAX) {
        h->last_used = now_ns();
        pthread_mutex_lock(&mu);
        if (h->cap <= limit) {
            /* an empty slot, else the least recently used one */
            int victim = 0;
            for (int i = 0; i < SLOTS; i++) {
                if (!slot[i]) {
                    victim = i;
                    break;
                }
                if (slot[i]->last_used < slot[victim]->last_used) victim = i;
            }
            evict[0] = slot[victim];
            slot[victim] = h;
            /* then the oldest others, until what is kept fits the limit */
            for (;;) {
                size_t held = 0;
                int oldest = -1;
                for (int i = 0; i < SLOTS; i++) {
                    if (!slot[i]) continue;
                    held += slot[i]->cap;
                    if (slot[i] != h && (oldest < 0 || slot[i]->last_used < slot[oldest]->last_used))
                        oldest = i;
                }
                if (held <= limit || oldest < 0) break;
                evict[nevict++] = slot[oldest];
                slot[oldest] = NULL;
            }
        }
        pthread_mutex_unlock(&mu);
    }
    for (int i = 0; i < nevict; i++) free(evict[i]);
}

bool h5a_buf_trim(void)
{
    hdr *old[SLOTS] = {0};
    bool kept = false;
    uint64_t t = now_ns();
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i] && t - slot[i]->last_used >= IDLE_NS) {
            old[i] = slot[i];
            slot[i] = NULL;
        }
        kept |= slot[i] != NULL;
    }
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < SLOTS; i++) free(old[i]);
    return kept;
}
