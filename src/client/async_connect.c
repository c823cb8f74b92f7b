/* The asynchronous context made: the options checked, TLS files read, the
 * TCP connect started (the loop finishes it, async.c), the token's auth
 * queued first, reconnect's and follow's state set up; and undone when any
 * of that fails. Kept apart so that async.c stays about the running
 * connection. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/async.h"
#include "proto/errors.h"

static void context_free_unconnected(hdf5a_async *ac)
{
    if (!ac)
        return;
    while (ac->head) { /* the connect's auth request: no callback, no frame */
        pending_cb *cb = ac->head;
        ac->head = cb->next;
        free(cb);
    }
    h5c_async_release(ac);
}

HDF5A_API int hdf5a_async_connect_ex(hdf5a_async **out, const char *host, int port,
                                     const hdf5a_connect_opts *opts, char *err, size_t errlen)
{
    char why[H5C_ERRLEN] = "";
    struct addrinfo *list = NULL;
    hdf5a_async *ac = NULL;
    h5c_opts o;
    int rc;
    if (!out) {
        rc = h5a_fail(why, sizeof why, HDF5A_EINVAL, "out is NULL");
        goto fail;
    }
    *out = NULL;
    if ((rc = h5c_opts_import(opts, &o, why, sizeof why)))
        goto fail;
    if ((rc = h5c_resolve(host, port, &list, why, sizeof why)))
        goto fail;
    ac = calloc(1, sizeof *ac);
    if (!ac || !(ac->in = malloc(IBUF_SIZE))) {
        rc = h5a_fail(why, sizeof why, HDF5A_ENOMEM, "out of memory");
        goto fail;
    }
    ac->fd = -1;
    /* files are read here, never in the loop */
    if (o.tls) {
        if ((rc = h5c_tls_new(&ac->tls, &o, host, why, sizeof why)))
            goto fail;
        if (!(ac->cin = malloc(TLS_STAGE)) || !(ac->cout = malloc(TLS_STAGE))) {
            rc = h5a_fail(why, sizeof why, HDF5A_ENOMEM, "out of memory");
            goto fail;
        }
    }
    /* Only the first address that does not fail at once is tried: adapters
     * watch one fd, which must not change under them. A failure found at
     * once is still reported from the loop, like a later one, so requests
     * queued right after this call always get their callback. */
    bool started = false;
    struct addrinfo chosen = {0};
    struct sockaddr_storage chosen_addr;
    for (int pass = 0; pass < 2 && !started; pass++) {
        for (struct addrinfo *ai = list; ai && !started; ai = ai->ai_next) {
            if (!h5c_addr_in_pass(ai, pass))
                continue;
            int error;
            int fd = h5c_connect_start(ai, &error);
            if (fd < 0) {
                snprintf(why, sizeof why, "socket: %s", strerror(errno));
                continue;
            }
            if (ac->fd >= 0)
                close(ac->fd);
            ac->fd = fd;
            ac->connect_error = error;
            h5c_addr_name(ai, ac->peer, sizeof ac->peer);
            started = error == 0;
            chosen = *ai;
            memcpy(&chosen_addr, ai->ai_addr, ai->ai_addrlen);
            chosen.ai_addr = (struct sockaddr *)&chosen_addr;
            chosen.ai_next = NULL;
        }
    }
    freeaddrinfo(list);
    list = NULL;
    if (ac->fd < 0) {
        rc = HDF5A_EIO;
        goto fail;
    }
    ac->state = ST_CONNECTING;
    /* writable means connected; readable (or an error) may come first */
    ac->reading = true;
    ac->writing = true;
    if (o.token) {
        /* first in the queue, so every request of the caller follows it */
        h5c_request r = {.op = H5C_AUTH, .token = o.token};
        if ((rc = h5c_async_submit(ac, &r, NULL, NULL, NULL))) {
            snprintf(why, sizeof why, "%s", ac->errstr);
            goto fail;
        }
        ac->head->connect_auth = true;
        ac->secret_len = ac->out.len;
    }
    /* after the auth request, which is made anew on each connection */
    if (o.reconnect &&
        (rc = h5c_arc_new(ac, &chosen, o.token, o.reconnect_timeout_ms, why, sizeof why)))
        goto fail;
    if (o.follow_wrong_node && (rc = h5c_afw_new(ac, host, port, &o, why, sizeof why)))
        goto fail;
    *out = ac;
    return 0;
fail:
    if (list)
        freeaddrinfo(list);
    context_free_unconnected(ac);
    if (err && errlen)
        snprintf(err, errlen, "%s", why[0] ? why : "cannot connect");
    return rc;
}

HDF5A_API hdf5a_async *hdf5a_async_connect(const char *host, int port, char *err,
                                           size_t errlen)
{
    hdf5a_async *ac = NULL;
    hdf5a_async_connect_ex(&ac, host, port, NULL, err, errlen);
    return ac;
}

HDF5A_API void hdf5a_async_identity(const hdf5a_async *ac, const char **name, const char **role)
{
    h5c_identity_get(ac ? &ac->ident : NULL, name, role);
}
