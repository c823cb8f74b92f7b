/* A connection's replies over TLS (conn.c's write path when the port
 * speaks TLS): encrypting them as the socket takes them and writing the
 * ciphertext out. Apart from conn.c so that each stays a readable size;
 * the session itself is tls.c's. Event loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "server/net_int.h"

/* ---- TLS: replies are encrypted on the loop thread as the socket takes
 * them: the replies of a batch are encrypted together into one write (as
 * plaintext batches share one writev), a large one TLS_CHUNK at a time with
 * at most TLS_INFLIGHT of ciphertext queued, the next chunk made when a
 * write completes -- so a large reply is never held twice in full, and the
 * peer decrypts one chunk while we encrypt the next. The plaintext of a
 * reply is freed once it is all encrypted. ---- */

#define TLS_INFLIGHT (1024 * 1024)

/* A write of ciphertext: this header sits in the headroom of the block the
 * session encrypted into (h5a_tls_conn_take_out_buf), so the records go
 * out without being copied again. */
typedef struct tls_write {
    uv_write_t w;
    size_t len;
} tls_write;

/* The headroom the session keeps in front of its ciphertext for us. */
#define TLS_HEADROOM ((sizeof(tls_write) + 63) & ~(size_t)63)

static void tls_pump_out(conn *c);

static void on_tls_written(uv_write_t *w, int status)
{
    tls_write *tw = (tls_write *)w;
    conn *c = w->data;
    net_budget_sub(c->srv, tw->len);
    c->tls_inflight -= tw->len;
    c->tls_writes--;
    free(tw);
    if (c->closing) return; /* on_closed frees the connection */
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    tls_pump_out(c);
    if (!c->tls_head && c->tls_writes == 0) { /* every reply queued so far is out */
        bool close_after = c->tls_close_after;
        c->tls_close_after = false;
        conn_after_written(c, status, close_after);
    }
}

/* Write out what the session has for the peer (records, handshake
 * messages, alerts) in one write. */
int conn_tls_flush(conn *c)
{
    size_t off = 0, got = 0;
    h5a_tls_conn_set_headroom(c->tls, TLS_HEADROOM); /* (a no-op once set) */
    char *block = h5a_tls_conn_take_out_buf(c->tls, &off, &got);
    if (!block) return 0;
    if (off < TLS_HEADROOM) { /* taken before the headroom was set: make room */
        char *nb = malloc(TLS_HEADROOM + got);
        if (!nb) {
            free(block);
            return UV_ENOMEM;
        }
        memcpy(nb + TLS_HEADROOM, block + off, got);
        free(block);
        block = nb;
        off = TLS_HEADROOM;
    }
    tls_write *tw = (tls_write *)block;
    tw->len = got;
    tw->w.data = c;
    uv_buf_t b = uv_buf_init(block + off, (unsigned)got);
    int rc = uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, on_tls_written);
    if (rc < 0) {
        free(tw);
        return rc;
    }
    net_budget_add(c->srv, got);
    c->bytes_queued += got;
    h5a_count(&h5a_mloop.bytes_out[H5A_PORT_MAIN], got);
    c->tls_inflight += got;
    c->tls_writes++;
    return 0;
}

/* Encrypt what is queued for the peer while less than TLS_INFLIGHT of
 * ciphertext is on its way, then write it out. */
/* Small replies are gathered into one record (TLS_RECORD bytes of
 * plaintext, TLS's largest) instead of one record each: each record costs
 * the peer a fixed amount of work besides its bytes (a nonce, a tag check,
 * a call), which for 1-row appends made decrypting the replies cost the
 * client as much again as the rest of its work. */
#define TLS_RECORD 16384

static int tls_stage_flush(conn *c, uint8_t *stage, size_t *st, char *err, size_t errlen)
{
    int rc = *st ? h5a_tls_conn_write(c->tls, stage, *st, err, errlen) : 0;
    *st = 0;
    return rc;
}

static void tls_pump_out(conn *c)
{
    char err[256];
    uint8_t stage[TLS_RECORD];
    size_t st = 0;
    while (c->tls_head && c->tls_inflight < TLS_INFLIGHT && !c->closing) {
        size_t made = 0;
        /* a chunk's worth of plaintext, from as many replies as it spans */
        while (c->tls_head && made < TLS_CHUNK) {
            h5a_request *r = c->tls_head;
            size_t total = r->reply.len + r->reply_data_len, off = c->tls_off;
            const uint8_t *p = off < r->reply.len ? r->reply.data + off
                                                  : (const uint8_t *)r->reply_data + (off - r->reply.len);
            size_t avail = off < r->reply.len ? r->reply.len - off : total - off;
            size_t k = avail < TLS_CHUNK - made ? avail : TLS_CHUNK - made;
            int bad = 0;
            if (k && k < TLS_RECORD) { /* a small piece: into the shared record */
                if (st + k > sizeof stage) bad = tls_stage_flush(c, stage, &st, err, sizeof err);
                memcpy(stage + st, p, k);
                st += k;
            } else if (k) { /* a large one: straight from the reply */
                bad = tls_stage_flush(c, stage, &st, err, sizeof err);
                if (!bad) bad = h5a_tls_conn_write(c->tls, p, k, err, sizeof err);
            }
            if (bad < 0) {
                conn_close(c, err);
                return;
            }
            made += k;
            c->tls_off += k;
            if (c->tls_off == total) { /* all of this reply is encrypted */
                c->tls_head = r->next;
                if (!c->tls_head) c->tls_tail = NULL;
                c->tls_off = 0;
                c->tls_close_after |= conn_request_done(c, r);
            }
        }
        if (tls_stage_flush(c, stage, &st, err, sizeof err) < 0) {
            conn_close(c, err);
            return;
        }
        int rc = conn_tls_flush(c);
        if (rc < 0) {
            conn_close(c, uv_strerror(rc));
            return;
        }
    }
}

void conn_tls_write_out(conn *c, h5a_request *head)
{
    conn_list_append(&c->tls_head, &c->tls_tail, head);
    tls_pump_out(c); /* on_tls_written goes on, and calls conn_after_written at the end */
    if (!c->closing) conn_maybe_read(c);
}

