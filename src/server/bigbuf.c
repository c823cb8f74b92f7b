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
    hdr *h = (hdr *)p - 1, *evict = h;
    if (h->cap >= KEEP_MIN && h->cap <= KEEP_MAX) {
        h->last_used = now_ns();
        pthread_mutex_lock(&mu);
        /* an empty slot, else the least recently used one */
        int victim = 0;
        for (int i = 0; i < SLOTS; i++) {
            if (!slot[i]) {
                victim = i;
                break;
            }
            if (slot[i]->last_used < slot[victim]->last_used) victim = i;
        }
        evict = slot[victim];
        slot[victim] = h;
        pthread_mutex_unlock(&mu);
    }
    free(evict);
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
