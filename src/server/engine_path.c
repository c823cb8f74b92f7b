/* The path and link resolver (engine_path.h). One resolver, so that a data
 * operation and a metadata operation on the same path see the same thing
 * and report it in the same words. */
#include "server/engine_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NOT_FOUND for path, whose component `name` in group loc (at `prefix`) is
 * a link leading nowhere; the message says where it leads. */
static int dangling(hid_t loc, const char *name, const char *prefix, const char *path,
                    h5a_err *err)
{
    H5Eclear2(H5E_DEFAULT);
    H5L_info_t li;
    char *val = NULL;
    int rc;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0 || li.type == H5L_TYPE_HARD ||
        !(val = malloc(li.u.val_size + 1)) ||
        H5Lget_val(loc, name, val, li.u.val_size, H5P_DEFAULT) < 0) {
        rc = h5a_err_h5(err, H5A_E_NOT_FOUND,
                        "'%s' is a link that cannot be followed, so '%s' is not found", prefix,
                        path);
    } else if (li.type == H5L_TYPE_SOFT) {
        val[li.u.val_size] = '\0';
        /* Does it lead nowhere, or through an external link (not followed)?
         * Resolve the target to tell (a chain of soft links is cut at 16,
         * HDF5's own limit, so a cycle cannot recurse for ever). */
        static int depth;
        bool external = false;
        if (depth < 16) {
            char *abs = NULL;
            if (val[0] == '/') {
                abs = strdup(val);
            } else if ((abs = malloc(strlen(prefix) + li.u.val_size + 2))) {
                const char *slash = strrchr(prefix, '/');
                sprintf(abs, "%.*s/%s", (int)(slash - prefix), prefix, val);
            }
            hid_t file = H5Iget_file_id(loc);
            if (abs && file >= 0) {
                h5a_found f;
                h5a_err sub;
                depth++;
                external = h5a_path_find(file, abs, true, &f, &sub) == H5A_E_BAD_PATH;
                depth--;
            }
            if (file >= 0) H5Fclose(file);
            free(abs);
        }
        if (external)
            rc = h5a_err_set(err, H5A_E_BAD_PATH,
                             "'%s' is a soft link to '%.300s', which goes through an external "
                             "link into another file, which this server does not follow",
                             prefix, val);
        else
            rc = h5a_err_set(err, H5A_E_NOT_FOUND,
                             "'%s' is a soft link to '%.300s', which does not exist", prefix, val);
    } else if (li.type == H5L_TYPE_EXTERNAL) {
        /* never followed (h5a_path_refuse_external_links): another file on
         * the server's disk is not the client's to open. The message names
         * the link only, not where it points on the server's machine. */
        rc = h5a_err_set(err, H5A_E_BAD_PATH,
                         "'%s' is an external link into another file, which this server does "
                         "not follow (list shows where it points), so '%s' cannot be reached",
                         prefix, path);
    } else {
        rc = h5a_err_set(err, H5A_E_NOT_FOUND, "'%s' is a link of an unknown kind", prefix);
    }
    free(val);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

/* What `name` in group loc leads to, links followed. */
static int follow(hid_t loc, const char *name, const char *prefix, const char *path,
                  H5O_type_t *type, h5a_err *err)
{
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0) {
        *type = info.type;
        return 0;
    }
    if (H5Oexists_by_name(loc, name, H5P_DEFAULT) > 0)
        return h5a_err_h5(err, H5A_E_HDF5_ERROR, "'%s' is a link that cannot be followed", prefix);
    return dangling(loc, name, prefix, path, err);
}

static const char *not_group_name(H5O_type_t t)
{
    return t == H5O_TYPE_DATASET ? "dataset"
         : t == H5O_TYPE_NAMED_DATATYPE ? "datatype"
                                        : "non-group object";
}

int h5a_path_find(hid_t file, const char *path, bool follow_last, h5a_found *out, h5a_err *err)
{
    out->missing = false;
    out->type = H5O_TYPE_GROUP;
    out->link = H5L_TYPE_HARD;
    if (strcmp(path, "/") == 0) return 0;
    size_t n = strlen(path);
    /* buf is cut after the current component: buf is its path (for
     * messages), buf + start its name in the group `loc` */
    char *buf = strdup(path);
    if (!buf) return h5a_err_set(err, H5A_E_INTERNAL, "out of memory");
    hid_t loc = file, group = H5I_INVALID_HID; /* the file stands for its root group */
    int rc = 0;
    for (size_t i = 1, start = 1; i <= n && !rc; i++) {
        if (i < n && buf[i] != '/') continue;
        buf[i] = '\0';
        const char *name = buf + start;
        bool last = i == n;
        htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
        H5O_type_t t = H5O_TYPE_UNKNOWN;
        if (ex < 0) {
            rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look up '%s'", buf);
        } else if (ex == 0) {
            out->missing = true;
            break;
        } else if (last && !follow_last) {
            H5L_info_t li;
            if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0)
                rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot look up the link '%s'", buf);
            else
                out->link = li.type;
        } else if ((rc = follow(loc, name, buf, path, &t, err))) {
            break;
        } else if (last) {
            out->type = t;
        } else if (t != H5O_TYPE_GROUP) {
            rc = h5a_err_set(err, H5A_E_NOT_A_GROUP,
                             "'%s' is a %s, not a group, so '%s' cannot exist", buf,
                             not_group_name(t), path);
        } else {
            hid_t next = H5Gopen2(loc, name, H5P_DEFAULT);
            if (next < 0) {
                rc = h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open the group '%s'", buf);
            } else {
                if (group >= 0) H5Gclose(group);
                loc = group = next;
            }
        }
        buf[i] = '/';
        start = i + 1;
    }
    if (group >= 0) H5Gclose(group);
    free(buf);
    return rc;
}

int h5a_path_object(hid_t file, const char *path, H5O_type_t *type, h5a_err *err)
{
    h5a_found f;
    int rc = h5a_path_find(file, path, true, &f, err);
    if (!rc && f.missing) rc = h5a_err_set(err, H5A_E_NOT_FOUND, "no object at '%s'", path);
    *type = f.type;
    return rc;
}

hid_t h5a_path_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

/* HDF5 calls this before it opens the file an external link names: refusing
 * makes the traversal fail. */
static herr_t refuse_elink(const char *parent_file, const char *parent_group,
                           const char *child_file, const char *child_object, unsigned *acc_flags,
                           hid_t fapl, void *op_data)
{
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
    (void)acc_flags, (void)fapl, (void)op_data;
    return -1;
}

int h5a_path_refuse_external_links(void)
{
    /* The defaults every H5P_DEFAULT in the engine stands for: one refusal
     * covers every call, whatever the operation. */
    const hid_t lists[] = {H5P_LINK_ACCESS_DEFAULT, H5P_DATASET_ACCESS_DEFAULT,
                           H5P_GROUP_ACCESS_DEFAULT, H5P_DATATYPE_ACCESS_DEFAULT};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (H5Pset_elink_cb(lists[i], refuse_elink, NULL) < 0) return -1;
    return 0;
}
