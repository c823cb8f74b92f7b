/* What bench.c shares with the rows kept in files of their own
 * (bench_http.c): the server, the table and the pipelined writers. */
#ifndef H5A_BENCH_H
#define H5A_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

double now(void);
void die(const char *fmt, const char *arg);
double percentile(double *v, size_t n, double p);
/* One line of the table: the two figures and their ratio. */
void row(const char *name, const char *unit, double inproc, double server, bool higher_better,
         const char *goal);
/* Start the server bin on file with config (or NULL); its port, and with
 * http_port not NULL its HTTP port (the config must set http_port). */
int spawn_server_http(const char *bin, const char *file, const char *config, pid_t *pid,
                      int *http_port);
void stop_server(pid_t pid);
/* nclients async clients keep `window` appends of one 1x16 f8 row each in
 * flight until `total` rows are acknowledged; rows/s. They append to
 * pipe_one_path when it is set, else each to a dataset of its own. */
double bench_pipelined_to(int port, int nclients, size_t total, size_t window);
extern const char *pipe_one_path;

/* bench_http.c: appends from 64 clients with and without a browser-like
 * poller on the HTTP port: npairs pairs of phases of `rows` rows each. */
void bench_http(const char *bin, const char *dir, size_t rows, int npairs);

#endif
