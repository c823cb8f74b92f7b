/* The exactly-once and batch rows of the bench (bench_exactly.c). */
#ifndef H5A_BENCH_EXACTLY_H
#define H5A_BENCH_EXACTLY_H

#include <stdbool.h>
#include <stddef.h>

/* appends/s: n 1x16-f8 appends to path, `window` in flight, each with
 * client_id and seq when with_seq */
double bx_pipelined_appends(int port, size_t n, size_t window, bool with_seq, const char *path);
/* appends/s: `rounds` rounds of k appends, each round k pipelined appends
 * (as_batch false) or one batch of k appends, waited for before the next */
double bx_rounds(int port, size_t rounds, size_t k, bool as_batch, const char *path);

#endif
