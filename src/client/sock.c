/* The few socket helpers both APIs use. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "proto/errors.h"

int h5c_resolve(const char *host, int port, struct addrinfo **list, char *err, size_t errlen)
{
    *list = NULL;
    if (!host || !*host)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "no host given");
    if (port < 1 || port > 65535)
        return h5a_fail(err, errlen, HDF5A_EINVAL, "port %d is outside 1..65535", port);
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, service, &hints, list);
    if (rc)
        return h5a_fail(err, errlen, HDF5A_EIO, "cannot resolve '%s': %s", host,
                        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return 0;
}

bool h5c_addr_in_pass(const struct addrinfo *ai, int pass)
{
    return (ai->ai_family == AF_INET) == (pass == 0);
}

int h5c_connect_start(const struct addrinfo *ai, int *error)
{
    *error = 0;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    while (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno == EINTR)
            continue; /* the connect goes on in the background; poll tells */
        if (errno != EINPROGRESS)
            *error = errno;
        break;
    }
    return fd;
}

void h5c_set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void h5c_addr_name(const struct addrinfo *ai, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *sa = (const struct sockaddr_in *)ai->ai_addr;
        inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
        port = ntohs(sa->sin_port);
        snprintf(buf, len, "%s:%d", ip, port);
    } else if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)ai->ai_addr;
        inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof ip);
        port = ntohs(sa->sin6_port);
        snprintf(buf, len, "[%s]:%d", ip, port);
    } else {
        snprintf(buf, len, "?");
    }
}
