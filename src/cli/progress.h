/* A status line on stderr for long transfers.
 *
 * The blocking library call moves the whole array in one go and reports
 * nothing until it returns, so the line cannot show bytes moved: a helper
 * thread shows a spinner, the transfer size when known, and the elapsed
 * time; when the call returns the line is replaced by the size, the time
 * and the average rate. Nothing is drawn unless stderr is a terminal. */
#ifndef H5A_CLI_PROGRESS_H
#define H5A_CLI_PROGRESS_H

#include <stdint.h>

/* Transfers above this size get the status line. */
#define PROGRESS_MIN_BYTES (4u << 20)

typedef struct progress progress;

/* label: e.g. "put /x". nbytes: 0 when unknown (reads). The line appears
 * after delay_ms, so calls that finish quickly draw nothing. Returns NULL
 * (and draws nothing) when stderr is not a terminal. */
progress *progress_start(const char *label, uint64_t nbytes, unsigned delay_ms);
/* Stops the thread and clears the line; on success with nbytes above
 * PROGRESS_MIN_BYTES prints a summary line. NULL is fine. */
void progress_end(progress *p, int ok, uint64_t nbytes);

#endif
