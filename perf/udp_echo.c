/* Kernel UDP echo server: the baseline perf/bench_single.sh measures Ordo against.
 * Returns every datagram unchanged to its sender, in batches (recvmmsg/sendmmsg), so the
 * baseline is the kernel socket path at its best; it must never parse what it echoes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UDP_ECHO_BATCH 32
#define UDP_ECHO_BUF_LEN 9216

static volatile sig_atomic_t udp_echo_stop;

static void udp_echo_on_signal(int sig)
{
    (void)sig;
    udp_echo_stop = 1;
}

static int udp_echo_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end = NULL;

    if (colon == NULL || (size_t)(colon - text) >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535) {
        return -EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        return -EINVAL;
    }
    return 0;
}

static int udp_echo_open(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;

    if (fd < 0) {
        return -errno;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* One receive batch echoed back; returns datagrams echoed or -errno. */
static int udp_echo_batch(int fd, struct mmsghdr *msgs, struct iovec *iovs,
                          struct sockaddr_in *peers)
{
    for (int i = 0; i < UDP_ECHO_BATCH; i++) {
        iovs[i].iov_len = UDP_ECHO_BUF_LEN;
        msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
    }
    int n = recvmmsg(fd, msgs, UDP_ECHO_BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    for (int i = 0; i < n; i++) {
        iovs[i].iov_len = msgs[i].msg_len;
    }
    /* A full send buffer drops the rest of the batch, as a NIC would: the client retries. */
    (void)sendmmsg(fd, msgs, (unsigned int)n, MSG_DONTWAIT);
    return n;
}

static int udp_echo_run(int fd)
{
    static uint8_t bufs[UDP_ECHO_BATCH][UDP_ECHO_BUF_LEN];
    struct mmsghdr msgs[UDP_ECHO_BATCH];
    struct iovec iovs[UDP_ECHO_BATCH];
    struct sockaddr_in peers[UDP_ECHO_BATCH];
    unsigned long long echoed = 0;

    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < UDP_ECHO_BATCH; i++) {
        iovs[i].iov_base = bufs[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &peers[i];
    }
    while (!udp_echo_stop) {
        int n = udp_echo_batch(fd, msgs, iovs, peers);
        if (n < 0) {
            fprintf(stderr, "udp-echo: receive failed: %s\n", strerror(-n));
            return 1;
        }
        echoed += (unsigned long long)n;
    }
    printf("udp-echo: stopped echoed=%llu\n", echoed);
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct sigaction act;

    if (argc != 3 || strcmp(argv[1], "--bind") != 0 || udp_echo_parse_addr(argv[2], &sa) != 0) {
        fprintf(stderr, "usage: udp-echo --bind IPV4:PORT\n");
        return 2;
    }
    int fd = udp_echo_open(&sa);
    if (fd < 0) {
        fprintf(stderr, "udp-echo: cannot bind %s: %s\n", argv[2], strerror(-fd));
        return 1;
    }
    /* No SA_RESTART: a signal must interrupt the blocking receive so the loop sees stop. */
    memset(&act, 0, sizeof(act));
    act.sa_handler = udp_echo_on_signal;
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    printf("udp-echo: ready on %s\n", argv[2]);
    fflush(stdout);
    int rc = udp_echo_run(fd);
    close(fd);
    return rc;
}
