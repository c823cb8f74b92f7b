/* TLS as a filter between the socket and the framer: ciphertext in,
 * plaintext out, and the reverse. OpenSSL does all of TLS; this file only
 * drives it through in-memory BIOs, so nothing here blocks or touches a
 * socket, the event loop stays in charge of I/O, and the glue can be fuzzed
 * with arbitrary record splits (fuzz/fuzz_tls.c). The framer above it does
 * not know TLS exists. */
#ifndef H5A_TLS_H
#define H5A_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum { H5A_TLS_CLIENT_AUTH_NO, H5A_TLS_CLIENT_AUTH_OPTIONAL, H5A_TLS_CLIENT_AUTH_REQUIRE } h5a_tls_client_auth;

typedef struct h5a_tls h5a_tls;           /* one per listening port: certificate, key, CAs */
typedef struct h5a_tls_conn h5a_tls_conn; /* one per connection */

/* A server context: TLS 1.2 and later only. ca_file may be NULL (then no
 * client certificates can be verified, and client_auth must be NO).
 * Returns 0, or -1 with a message naming the file and OpenSSL's reason. */
int h5a_tls_new(h5a_tls **out, const char *cert_file, const char *key_file, const char *ca_file,
                h5a_tls_client_auth client_auth, char *err, size_t errlen);
void h5a_tls_free(h5a_tls *t);

h5a_tls_conn *h5a_tls_conn_new(h5a_tls *t);
void h5a_tls_conn_free(h5a_tls_conn *c);

/* Ciphertext that arrived from the peer. Returns 0, or -1 out of memory. */
int h5a_tls_conn_feed(h5a_tls_conn *c, const void *data, size_t n);

/* Plaintext decrypted from what was fed: up to n bytes into buf. Drives
 * the handshake too. Returns the bytes given (0: nothing more until more
 * ciphertext arrives), or -1 when the session failed (a bad record, a
 * failed handshake, a certificate refused, the peer's close_notify): err
 * says why, and the connection must close after sending what
 * h5a_tls_conn_take_out still holds (an alert). */
ssize_t h5a_tls_conn_read(h5a_tls_conn *c, void *buf, size_t n, char *err, size_t errlen);
/* (-2 instead of -1: the peer's close_notify, a clean end of its side.) */

/* Encrypt n bytes of plaintext into records waiting to go out. The
 * handshake must be done. Returns 0, or -1 with err. */
int h5a_tls_conn_write(h5a_tls_conn *c, const void *data, size_t n, char *err, size_t errlen);

/* Bytes waiting to go to the peer (handshake messages, records, alerts),
 * and taking them: up to n bytes into buf, returns how many. */
size_t h5a_tls_conn_pending_out(const h5a_tls_conn *c);
size_t h5a_tls_conn_take_out(h5a_tls_conn *c, void *buf, size_t n);

/* The same bytes without a copy: the whole block they are in, which the
 * caller now owns (free() it), the bytes at [*off, *off + *len); NULL when
 * nothing waits. The block has at least the headroom last set in front of
 * *off free for the caller's use (e.g. its write request), so that one
 * allocation carries both. */
void *h5a_tls_conn_take_out_buf(h5a_tls_conn *c, size_t *off, size_t *len);
/* That headroom (default 0); takes effect when nothing is waiting. */
void h5a_tls_conn_set_headroom(h5a_tls_conn *c, size_t headroom);

bool h5a_tls_conn_handshake_done(const h5a_tls_conn *c);
/* Queue a close_notify alert (take it with h5a_tls_conn_take_out). */
void h5a_tls_conn_shutdown(h5a_tls_conn *c);
/* The common name of the peer's certificate when it was verified against
 * tls_ca_file, else NULL. Valid until the connection is freed. */
const char *h5a_tls_conn_peer_cn(const h5a_tls_conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done. */
const char *h5a_tls_conn_describe(const h5a_tls_conn *c, char *buf, size_t n);

/* Do the first bytes of a stream look like a TLS ClientHello record?
 * (0x16 0x03 0x0X, 2 length bytes, handshake type 1.) A MessagePack frame
 * cannot start so: its 6th byte is a map's first key, a string. Needs 6
 * bytes; false with fewer. */
bool h5a_tls_looks_like_hello(const unsigned char *p, size_t n);

#endif
