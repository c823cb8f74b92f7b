/* A progress bar on stderr for long transfers.
 *
 * It hooks the client's progress callback (hdf5a_set_progress) for the
 * duration of one blocking call: while a direction of the round trip moves
 * more than PROGRESS_MIN_BYTES (a put's request, a get's reply) a bar shows
 * the fraction, the bytes moved and the rate, redrawn in place at most ten
 * times a second. The line fits the terminal's width (TIOCGWINSZ, else
 * $COLUMNS, else 80), read at each redraw: a long path is elided in the
 * middle, and on a narrow terminal the rate, the byte counts and part of
 * the bar give way, so the line never wraps (a wrapped line would leave
 * one copy per redraw). When the call returns the bar is replaced by the
 * size, the time and the average rate. Nothing is drawn unless stderr is
 * a terminal. */
#ifndef H5A_CLI_PROGRESS_H
#define H5A_CLI_PROGRESS_H

#include <stdint.h>

#include "hdf5_async.h"

/* Transfers above this size get the bar and the summary line. */
#define PROGRESS_MIN_BYTES (4u << 20)

typedef struct progress progress;

/* verb, path: what the bar is about ("put", "/x"). Installs the hook on c.
 * Returns NULL (and draws nothing) when stderr is not a terminal or memory
 * is short. */
progress *progress_start(hdf5a_client *c, const char *verb, const char *path);
/* Removes the hook from c and clears the bar; on success with nbytes above
 * PROGRESS_MIN_BYTES prints a summary line. p NULL is fine. */
void progress_end(progress *p, hdf5a_client *c, int ok, uint64_t nbytes);

#endif
