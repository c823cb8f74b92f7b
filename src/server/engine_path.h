/* The one path and link resolver: what a path leads to, level by level.
 *
 * Layer 3: calls only engine_err. Every operation that takes a path asks it
 * here first, so that all of them agree on what is there and give the same
 * errors: a parent that is not a group is NOT_A_GROUP, a link leading
 * nowhere (a dangling soft link, an external link whose file or object is
 * missing) is NOT_FOUND saying where it leads. */
#ifndef H5A_ENGINE_PATH_H
#define H5A_ENGINE_PATH_H

#include <hdf5.h>
#include <stdbool.h>

#include "server/engine_err.h"

typedef struct h5a_found {
    bool missing;     /* some component does not exist, a missing parent included */
    H5O_type_t type;  /* follow_last: what the last component leads to */
    H5L_type_t link;  /* !follow_last: the last component's link type */
} h5a_found;

/* Follow path in file as HDF5 (and h5py's f[path]) follows it: soft and
 * external links in any component lead to what they point at, and each
 * component before the last must lead to a group. The last one is followed
 * too when follow_last, else only looked at as a link (delete, move and
 * create_link act on the link, not its target). A missing component is not
 * an error here (out->missing). "/" is a group. Returns 0 or the error.
 *
 * Each level is looked up in the group the level above opened, so the cost
 * grows with the depth, not with its square as it would from the root. */
int h5a_path_find(hid_t file, const char *path, bool follow_last, h5a_found *out, h5a_err *err);

/* The object at path, links followed: NOT_FOUND when there is none. */
int h5a_path_object(hid_t file, const char *path, H5O_type_t *type, h5a_err *err);

/* A link creation property list that makes missing parents as groups, as
 * every op that creates something at a path does (caller H5Pclose). */
hid_t h5a_path_lcpl(void);

/* Make libhdf5 refuse to follow any external link, for every operation
 * (it would open another file on the server's disk, with this server's
 * rights and outside the served file's lock and log). Once per process,
 * before the first request. Returns 0 or -1. */
int h5a_path_refuse_external_links(void);

#endif
