/* The engine's shared state (engine_state.h): the dataset cache, the dirty
 * flags, reply frames. Kept below the operations so that they can use it
 * without calling back into the core that dispatches them. */
#include "server/engine_state.h"

#include <stdlib.h>
#include <string.h>

#include "server/bigbuf.h"

void h5a_state_mark_dirty(h5a_engine *e) { e->dirty = true; }

static int cache_find(const h5a_engine *e, const char *path)
{
    for (int i = 0; i < H5A_CACHE_SLOTS; i++)
        if (e->cache[i].path && strcmp(e->cache[i].path, path) == 0) return i;
    return -1;
}

bool h5a_cache_has(const h5a_engine *e, const char *path) { return cache_find(e, path) >= 0; }

void h5a_cache_clear(h5a_engine *e)
{
    for (unsigned i = 0; i < H5A_CACHE_SLOTS; i++) {
        if (e->cache[i].path) {
            H5Dclose(e->cache[i].dset);
            free(e->cache[i].path);
            e->cache[i].path = NULL;
        }
    }
}

hid_t h5a_cache_open(h5a_engine *e, const char *path, h5a_err *err)
{
    int slot = cache_find(e, path);
    if (slot >= 0) return e->cache[slot].dset;
    hid_t d = H5Dopen2(e->file, path, H5P_DEFAULT);
    if (d < 0) return h5a_err_h5(err, H5A_E_HDF5_ERROR, "cannot open dataset '%s'", path), -1;
    /* A virtual dataset's data is in other files, which HDF5 would open by
     * itself, outside their servers' logs and locks (files.c): its data is
     * for readers such as h5py, never read or written here. */
    hid_t vdcpl = H5Dget_create_plist(d);
    bool virt = vdcpl >= 0 && H5Pget_layout(vdcpl) == H5D_VIRTUAL;
    if (vdcpl >= 0) H5Pclose(vdcpl);
    if (virt) {
        H5Dclose(d);
        return h5a_err_set(err, H5A_E_UNSUPPORTED_TYPE,
                           "'%s' is a virtual dataset: its data lives in other files; read it "
                           "with h5py (the server neither reads nor writes through it)",
                           path),
               -1;
    }
    char *copy = strdup(path);
    if (!copy) return H5Dclose(d), h5a_err_set(err, H5A_E_INTERNAL, "out of memory"), -1;
    slot = (int)(e->cache_next++ % H5A_CACHE_SLOTS);
    if (e->cache[slot].path) {
        H5Dclose(e->cache[slot].dset);
        free(e->cache[slot].path);
    }
    e->cache[slot].path = copy;
    e->cache[slot].dset = d;
    hid_t dcpl = H5Dget_create_plist(d);
    e->cache[slot].chunk_ndim = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED
                                    ? H5Pget_chunk(dcpl, H5A_MAX_DIMS, e->cache[slot].chunk)
                                    : 0;
    if (e->cache[slot].chunk_ndim < 0) e->cache[slot].chunk_ndim = 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return d;
}

int h5a_cache_chunk(const h5a_engine *e, hid_t d, hsize_t *chunk)
{
    for (int i = 0; i < H5A_CACHE_SLOTS; i++)
        if (e->cache[i].path && e->cache[i].dset == d) {
            memcpy(chunk, e->cache[i].chunk, sizeof(hsize_t) * (size_t)e->cache[i].chunk_ndim);
            return e->cache[i].chunk_ndim;
        }
    hid_t dcpl = H5Dget_create_plist(d);
    int n = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED
                ? H5Pget_chunk(dcpl, H5A_MAX_DIMS, chunk)
                : 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return n < 0 ? 0 : n;
}

size_t h5a_reply_begin(h5a_request *r)
{
    mp_buf *b = &r->reply;
    b->len = 0;
    mp_put_raw(b, "\0\0\0\0", 4);
    mp_put_map_header(b, 3);
    mp_put_cstr(b, "id");
    if (r->has_id) mp_put_uint(b, r->id);
    else mp_put_nil(b);
    size_t mark = b->len;
    r->reply_mark = mark; /* "ok", true (4 bytes), "result" (7): H5A_REPLY_RESULT_AT */
    mp_put_cstr(b, "ok");
    mp_put_bool(b, true);
    mp_put_cstr(b, "result");
    return mark;
}

void h5a_reply_finish(h5a_request *r, size_t mark, int rc, const h5a_err *err)
{
    mp_buf *b = &r->reply;
    const char *msg = err->msg[0] ? err->msg : "unknown error";
    if (!rc && b->oom) rc = H5A_E_INTERNAL, msg = "out of memory building the reply";
    if (rc) {
        h5a_buf_free(r->reply_data);
        r->reply_data = NULL;
        r->reply_data_len = 0;
        b->len = mark;
        b->oom = false;
        mp_put_cstr(b, "ok");
        mp_put_bool(b, false);
        mp_put_cstr(b, "error");
        bool node = rc == H5A_E_WRONG_NODE && r->reply_node;
        mp_put_map_header(b, 2 + (node ? 1 : 0) + (r->has_err_index ? 1 : 0));
        mp_put_cstr(b, "code");
        mp_put_cstr(b, h5a_strerror_code(rc));
        mp_put_cstr(b, "message");
        mp_put_cstr(b, msg);
        if (node) { /* as Redis Cluster's MOVED: where to send it */
            mp_put_cstr(b, "node");
            mp_put_cstr(b, r->reply_node);
        }
        if (r->has_err_index) { /* which op of a batch failed */
            mp_put_cstr(b, "index");
            mp_put_uint(b, r->err_index);
        }
    }
    r->reply_ok = rc == 0;
    r->reply_code = rc;
    /* b->oom here means not even the error fit; the loop drops the connection */
    uint64_t n = b->len - 4 + r->reply_data_len;
    if (!b->oom) {
        b->data[0] = (uint8_t)(n >> 24);
        b->data[1] = (uint8_t)(n >> 16);
        b->data[2] = (uint8_t)(n >> 8);
        b->data[3] = (uint8_t)n;
    }
}
