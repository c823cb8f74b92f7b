/* The network side: one libuv loop that accepts connections, cuts the byte
 * stream into frames, parses requests, hands them to the storage thread and
 * writes the replies back in order. It never touches HDF5 and never blocks. */
#ifndef H5A_NET_H
#define H5A_NET_H

#include "server/config.h"

/* Run the server until SIGINT/SIGTERM. Prints "listening on HOST:PORT" once
 * accepting. Returns the process exit status. */
int h5a_server_run(const h5a_config *cfg);

#endif
