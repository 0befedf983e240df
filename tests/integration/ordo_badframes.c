/* ordo-badframes: sends hostile Ethernet frames at a replica through an AF_PACKET socket
 * (kernel UDP sockets cannot forge checksums, lengths or source addresses), so integration
 * tests can check that each kind is counted and ignored. Test-only tool. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/frame.h"
#include "engine/wire.h"

struct bad_opts {
    const char *dev;
    const char *kind;
    uint32_t count;
    uint32_t cluster_id;
    uint64_t client_id;
    struct frame_udp_addr addr;
};

enum bad_kind {
    BAD_MAGIC,      /* UDP payload that is not an Ordo message */
    BAD_TRUNC,      /* Ordo header declaring more body than present */
    BAD_IPV4_TRUNC, /* IPv4 total length beyond the frame */
    BAD_CSUM,       /* UDP checksum wrong */
    BAD_CLUSTER,    /* valid request for another cluster */
    BAD_UNAUTH,     /* valid request without MAC (the source decides whether allowed) */
    BAD_MAC,        /* request with MAC flag and a MAC under the wrong key */
    BAD_PEER_MAC,   /* peer message (heartbeat) with a MAC under the wrong key */
    BAD_KIND_COUNT,
};

static const char *const bad_kind_names[BAD_KIND_COUNT] = {
    "magic", "trunc", "ipv4trunc", "csum", "cluster", "unauth", "badmac", "peerbadmac",
};

static int bad_parse_mac(const char *s, uint8_t mac[FRAME_MAC_LEN])
{
    unsigned int b[FRAME_MAC_LEN];

    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        return -EINVAL;
    }
    for (int i = 0; i < FRAME_MAC_LEN; i++) {
        mac[i] = (uint8_t)b[i];
    }
    return 0;
}

static int bad_parse_ipport(const char *s, uint32_t *ip, uint16_t *port)
{
    char host[64];
    const char *colon = strrchr(s, ':');

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)atoi(colon + 1);
    return inet_pton(AF_INET, host, ip) == 1 ? 0 : -EINVAL;
}

/* An Ordo message of the kind asked for, as UDP payload. Returns its length or < 0. */
static int bad_payload(const struct bad_opts *o, enum bad_kind k, uint32_t seq, uint8_t *buf,
                       size_t cap)
{
    static const uint8_t args[] = {0, 1, 'x'};
    struct wire_key wrong;
    struct msg m;

    memset(&wrong, 0x5a, sizeof(wrong));
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = k == BAD_CLUSTER ? o->cluster_id + 1 : o->cluster_id;
    m.u.request.client_id = o->client_id;
    m.u.request.request_no = seq + 1;
    m.u.request.op = MSG_OP_NOOP;
    m.u.request.args = args;
    m.u.request.args_len = sizeof(args);
    if (k == BAD_PEER_MAC) {
        m.hdr.type = MSG_HEARTBEAT;
        m.hdr.sender = 2;
        m.u.heartbeat.term = 1;
    }
    int n = wire_encode(&m, (k == BAD_MAC || k == BAD_PEER_MAC) ? &wrong : NULL, buf, cap);
    if (n < 0) {
        return n;
    }
    if (k == BAD_MAGIC) {
        memcpy(buf, "NOTORDO!", 8);
    } else if (k == BAD_TRUNC) {
        n -= 2; /* header says body_len, frame carries 2 bytes less */
    }
    return n;
}

/* Builds one complete frame of kind k. Returns its length or < 0. */
static int bad_frame(const struct bad_opts *o, enum bad_kind k, uint32_t seq, uint8_t *buf,
                     size_t cap)
{
    uint8_t payload[512];
    int n = bad_payload(o, k, seq, payload, sizeof(payload));

    if (n < 0) {
        return n;
    }
    int len = frame_build_udp(buf, cap, &o->addr, payload, (size_t)n, 0);
    if (len < 0) {
        return len;
    }
    if (k == BAD_CSUM) {
        buf[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 6] ^= 0x55; /* UDP checksum, high byte */
        if (buf[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 6] == 0 &&
            buf[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 7] == 0) {
            buf[FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 7] = 1; /* 0 would mean "no checksum" */
        }
    } else if (k == BAD_IPV4_TRUNC) {
        len -= 10; /* the IPv4 total length now runs past the frame */
    }
    return len;
}

static int bad_open(const char *dev, struct sockaddr_ll *ll, uint8_t src_mac[FRAME_MAC_LEN])
{
    struct ifreq ifr;
    int fd = socket(AF_PACKET, SOCK_RAW, 0);

    if (fd < 0) {
        return -errno;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    memcpy(src_mac, ifr.ifr_hwaddr.sa_data, FRAME_MAC_LEN);
    memset(ll, 0, sizeof(*ll));
    ll->sll_family = AF_PACKET;
    ll->sll_ifindex = (int)if_nametoindex(dev);
    ll->sll_halen = ETH_ALEN;
    return fd;
}

static int bad_kind_parse(const char *name)
{
    for (int k = 0; k < BAD_KIND_COUNT; k++) {
        if (strcmp(name, bad_kind_names[k]) == 0) {
            return k;
        }
    }
    return -EINVAL;
}

static int bad_args(struct bad_opts *o, int argc, char **argv)
{
    int need = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i];
        const char *v = argv[i + 1];
        int rc = 0;
        if (strcmp(a, "--dev") == 0) {
            o->dev = v;
        } else if (strcmp(a, "--kind") == 0) {
            o->kind = v;
        } else if (strcmp(a, "--count") == 0) {
            o->count = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--cluster-id") == 0) {
            o->cluster_id = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--client-id") == 0) {
            o->client_id = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--dst-mac") == 0) {
            rc = bad_parse_mac(v, o->addr.dst_mac);
            need |= 1;
        } else if (strcmp(a, "--dst") == 0) {
            rc = bad_parse_ipport(v, &o->addr.dst_ip, &o->addr.dst_port);
            need |= 2;
        } else if (strcmp(a, "--src") == 0) {
            rc = bad_parse_ipport(v, &o->addr.src_ip, &o->addr.src_port);
            need |= 4;
        } else {
            rc = -EINVAL;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return (argc % 2 == 1 && need == 7 && o->dev != NULL && o->kind != NULL) ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    static uint8_t frame[2048];
    struct bad_opts o = {.count = 1, .cluster_id = 1, .client_id = 77};
    struct sockaddr_ll ll;

    if (bad_args(&o, argc, argv) != 0 || bad_kind_parse(o.kind) < 0) {
        fprintf(stderr, "usage: ordo-badframes --dev IF --dst-mac MAC --dst IP:PORT --src "
                        "IP:PORT --kind KIND [--count N] [--cluster-id N] [--client-id N]\n"
                        "kinds: magic trunc ipv4trunc csum cluster unauth badmac peerbadmac\n");
        return 2;
    }
    enum bad_kind k = (enum bad_kind)bad_kind_parse(o.kind);
    int fd = bad_open(o.dev, &ll, o.addr.src_mac);
    if (fd < 0 || wire_init() != 0) {
        fprintf(stderr, "ordo-badframes: cannot open %s: %s\n", o.dev, strerror(-fd));
        return 1;
    }
    memcpy(ll.sll_addr, o.addr.dst_mac, FRAME_MAC_LEN);
    uint32_t sent = 0;
    for (uint32_t i = 0; i < o.count; i++) {
        int len = bad_frame(&o, k, i, frame, sizeof(frame));
        if (len < 0) {
            fprintf(stderr, "ordo-badframes: cannot build: %s\n", ordo_strerror(len));
            return 1;
        }
        if (sendto(fd, frame, (size_t)len, 0, (const struct sockaddr *)&ll, sizeof(ll)) == len) {
            sent++;
        }
    }
    close(fd);
    printf("sent=%u kind=%s\n", sent, o.kind);
    return sent == o.count ? 0 : 1;
}
