/* `hdf5-async token NAME ROLE [PREFIX ...]`: a new random token and the
 * line for the server's tokens file (auth_file). Needs no server. The
 * operands are checked with the rules the server reads the file with
 * (common/names.h), so a line printed here is a line the server accepts. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cli/cli.h"
#include "common/names.h"

#define TOKEN_BYTES 32 /* 256 bits */

int check_token(const cli_args *a)
{
    const char *name = a->pos[0], *role = a->pos[1];
    if (!h5a_token_name_ok(name))
        return cli_usage("NAME '%.80s' must be 1 to %d characters of A-Z a-z 0-9 _ . @ -", name,
                         H5A_TOKEN_NAME_MAX);
    if (strcmp(role, "read") && strcmp(role, "write") && strcmp(role, "admin"))
        return cli_usage("ROLE '%.40s' must be read, write or admin", role);
    int nprefix = a->npos - 2;
    if (nprefix > H5A_TOKENS_FILE_PREFIX_MAX)
        return cli_usage("%d PREFIXes: a line of the tokens file holds at most %d", nprefix,
                         H5A_TOKENS_FILE_PREFIX_MAX);
    /* NAME ROLE HASH, each PREFIX after a space */
    size_t len = strlen(name) + 1 + strlen(role) + 1 + 2 * 32;
    for (int k = 2; k < a->npos; k++) {
        const char *p = a->pos[k];
        char why[256];
        if (h5a_path_check(p, strlen(p), why, sizeof why))
            return cli_usage("PREFIX '%.100s': %s", p, why);
        if (strpbrk(p, H5A_TOKENS_FILE_BLANKS))
            return cli_usage("PREFIX '%.100s' holds a blank: the tokens file splits its fields at "
                             "blanks, so it cannot hold this prefix", p);
        len += 1 + strlen(p);
    }
    if (len > H5A_TOKENS_FILE_LINE_MAX)
        return cli_usage("the line would be %zu bytes long; the tokens file takes lines of at most "
                         "%d", len, H5A_TOKENS_FILE_LINE_MAX);
    return 0;
}

/* base64url without padding (RFC 4648 section 5) of n bytes: out needs
 * 4 * ceil(n / 3) + 1 bytes. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
    int k = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (k > 0 && out[k - 1] == '=') k--;
    out[k] = '\0';
    for (char *c = out; *c; c++) {
        if (*c == '+') *c = '-';
        else if (*c == '/') *c = '_';
    }
}

static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

int cmd_token(const cli_args *a)
{
    unsigned char raw[TOKEN_BYTES], digest[32];
    char token[4 * ((TOKEN_BYTES + 2) / 3) + 1], hex[65];
    unsigned int dlen = sizeof digest;
    if (random_bytes(raw, sizeof raw)) {
        cli_msg("cannot get random bytes from the system (getrandom): %s", strerror(errno));
        return EXIT_CONN;
    }
    base64url(raw, sizeof raw, token);
    OPENSSL_cleanse(raw, sizeof raw);
    if (!EVP_Digest(token, strlen(token), digest, &dlen, EVP_sha256(), NULL) || dlen != 32) {
        OPENSSL_cleanse(token, sizeof token);
        cli_msg("cannot compute SHA-256 (OpenSSL)");
        return EXIT_CONN;
    }
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);

    const char *name = a->pos[0], *role = a->pos[1];
    printf("# A new token for '%s' (role %s, ", name, role);
    if (a->npos > 2) {
        printf("prefix%s", a->npos > 3 ? "es" : "");
        for (int k = 2; k < a->npos; k++) printf(" %s", a->pos[k]);
    } else {
        printf("the whole file");
    }
    printf(").\n"
           "# It is shown only this once: store it now, readable only by its users, in a file\n"
           "# for --token-file or the [client] token_file key, or in $HDF5_ASYNC_TOKEN.\n"
           "%s\n"
           "# Append this line to the server's tokens file (the file its config's [server]\n"
           "# auth_file names), then reload the server (kill -HUP). The line holds only the\n"
           "# token's SHA-256, no secret.\n"
           "%s %s %s",
           token, name, role, hex);
    for (int k = 2; k < a->npos; k++) printf(" %s", a->pos[k]);
    printf("\n");
    OPENSSL_cleanse(token, sizeof token);
    return EXIT_OK;
}
