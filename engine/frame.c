/* Ethernet / IPv4 / UDP, ARP and ICMP echo framing on plain buffers. Pure: it must never
 * make a system call, allocate, or read outside the buffer it was given. */
#include "engine/frame.h"

#include <errno.h>
#include <string.h>

#include "engine/err.h"
#include "engine/ordo_assert.h"

#define IPV4_DF 0x4000u
#define IPV4_MF 0x2000u
#define IPV4_FRAG_OFF_MASK 0x1fffu
#define IPV4_TOT_LEN_MAX 65535u

static const uint8_t frame_broadcast[FRAME_MAC_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One's-complement sum of big-endian 16-bit words, unfolded. A 64-bit accumulator cannot
 * overflow for any frame (< 2^48 bytes). */
static uint64_t csum_partial(const uint8_t *p, size_t len, uint64_t sum)
{
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        sum += (uint64_t)get_be16(p + i) + get_be16(p + i + 2);
    }
    for (; i + 2 <= len; i += 2) {
        sum += get_be16(p + i);
    }
    if (i < len) {
        sum += (uint64_t)p[i] << 8;
    }
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    /* Four folds reduce any 64-bit value to 16 bits. */
    for (int i = 0; i < 4; i++) {
        sum = (sum & 0xffffu) + (sum >> 16);
    }
    return (uint16_t)sum;
}

uint16_t frame_inet_csum(const uint8_t *data, size_t len)
{
    return (uint16_t)~csum_fold(csum_partial(data, len, 0));
}

/* Sum of the IPv4 pseudo-header for UDP (RFC 768): addresses, protocol, UDP length. */
static uint64_t udp_pseudo_sum(const uint8_t *ip, uint16_t udp_len)
{
    uint64_t sum = csum_partial(ip + 12, 8, 0);
    return sum + FRAME_IPPROTO_UDP + udp_len;
}

static void udp_csum_set(uint8_t *ip, uint8_t *udp, uint16_t udp_len, unsigned flags)
{
    put_be16(udp + 6, 0);
    uint64_t sum = udp_pseudo_sum(ip, udp_len);
    if (flags & FRAME_SKIP_UDP_CSUM) {
        /* The NIC adds the UDP header and payload to this seed and complements. */
        put_be16(udp + 6, csum_fold(sum));
        return;
    }
    uint16_t c = (uint16_t)~csum_fold(csum_partial(udp, udp_len, sum));
    /* 0 means "no checksum" in UDP over IPv4, so a computed 0 is sent as 0xffff. */
    put_be16(udp + 6, c == 0 ? 0xffffu : c);
}

static void ipv4_csum_set(uint8_t *ip, size_t ihl, unsigned flags)
{
    put_be16(ip + 10, 0);
    if (!(flags & FRAME_SKIP_IP_CSUM)) {
        put_be16(ip + 10, frame_inet_csum(ip, ihl));
    }
}

static void eth_write(uint8_t *buf, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(buf, dst, FRAME_MAC_LEN);
    memcpy(buf + FRAME_MAC_LEN, src, FRAME_MAC_LEN);
    put_be16(buf + 12, type);
}

/* Writes a 20-byte IPv4 header (no options) with its checksum. */
static void ipv4_write(uint8_t *ip, uint16_t tot_len, uint8_t proto, uint32_t src, uint32_t dst,
                       unsigned flags)
{
    ip[0] = 0x45;
    ip[1] = 0;
    put_be16(ip + 2, tot_len);
    put_be16(ip + 4, 0);
    put_be16(ip + 6, IPV4_DF);
    ip[8] = FRAME_TTL_DEFAULT;
    ip[9] = proto;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    ipv4_csum_set(ip, FRAME_IPV4_HLEN, flags);
}

static int parse_arp(const uint8_t *buf, size_t len, struct frame_info *out)
{
    const uint8_t *a = buf + FRAME_ETH_HLEN;
    if (len < FRAME_ETH_HLEN + FRAME_ARP_LEN) {
        return ORDO_ETRUNCATED;
    }
    /* Hardware Ethernet (1), protocol IPv4, address lengths 6 and 4. */
    if (get_be16(a) != 1 || get_be16(a + 2) != FRAME_ETHERTYPE_IPV4 || a[4] != FRAME_MAC_LEN ||
        a[5] != 4) {
        return ORDO_EMALFORMED;
    }
    uint16_t op = get_be16(a + 6);
    if (op != FRAME_ARP_OP_REQUEST && op != FRAME_ARP_OP_REPLY) {
        return ORDO_EBADTYPE;
    }
    out->kind = FRAME_KIND_ARP;
    out->arp_op = op;
    out->l3_off = FRAME_ETH_HLEN;
    memcpy(out->arp_sha, a + 8, FRAME_MAC_LEN);
    memcpy(&out->src_ip, a + 14, 4);
    memcpy(out->arp_tha, a + 18, FRAME_MAC_LEN);
    memcpy(&out->dst_ip, a + 24, 4);
    return FRAME_KIND_ARP;
}

/* Validates the IPv4 header; on success *ihl and *tot_len are the header and datagram
 * lengths, both within the buffer. */
static int parse_ipv4(const uint8_t *buf, size_t len, unsigned flags, struct frame_info *out,
                      size_t *ihl, size_t *tot_len)
{
    const uint8_t *ip = buf + FRAME_ETH_HLEN;
    size_t room = len - FRAME_ETH_HLEN;
    if (room < FRAME_IPV4_HLEN) {
        return ORDO_ETRUNCATED;
    }
    if ((ip[0] >> 4) != 4 || (ip[0] & 0xfu) < 5) {
        return ORDO_EMALFORMED;
    }
    *ihl = (size_t)(ip[0] & 0xfu) * 4;
    *tot_len = get_be16(ip + 2);
    if (room < *ihl) {
        return ORDO_ETRUNCATED;
    }
    if (*tot_len < *ihl) {
        return ORDO_EMALFORMED;
    }
    if (*tot_len > room) {
        return ORDO_ETRUNCATED;
    }
    /* Ordo never fragments and never reassembles: a fragment is dropped. */
    if (get_be16(ip + 6) & (IPV4_MF | IPV4_FRAG_OFF_MASK)) {
        return ORDO_EMALFORMED;
    }
    if (!(flags & FRAME_SKIP_IP_CSUM) && csum_fold(csum_partial(ip, *ihl, 0)) != 0xffffu) {
        return ORDO_ECHECKSUM;
    }
    out->l3_off = FRAME_ETH_HLEN;
    out->l4_off = (uint16_t)(FRAME_ETH_HLEN + *ihl);
    out->ttl = ip[8];
    memcpy(&out->src_ip, ip + 12, 4);
    memcpy(&out->dst_ip, ip + 16, 4);
    return 0;
}

static int parse_udp(const uint8_t *buf, size_t l4_len, unsigned flags, struct frame_info *out)
{
    const uint8_t *ip = buf + out->l3_off;
    const uint8_t *udp = buf + out->l4_off;
    if (l4_len < FRAME_UDP_HLEN) {
        return ORDO_EMALFORMED;
    }
    uint16_t ulen = get_be16(udp + 4);
    if (ulen < FRAME_UDP_HLEN) {
        return ORDO_EMALFORMED;
    }
    if (ulen > l4_len) {
        return ORDO_ETRUNCATED;
    }
    /* The UDP length must fill the IPv4 datagram exactly; anything else is ambiguous. */
    if (ulen != l4_len) {
        return ORDO_EMALFORMED;
    }
    if (!(flags & FRAME_SKIP_UDP_CSUM) && get_be16(udp + 6) != 0) {
        uint64_t sum = csum_partial(udp, ulen, udp_pseudo_sum(ip, ulen));
        if (csum_fold(sum) != 0xffffu) {
            return ORDO_ECHECKSUM;
        }
    }
    out->kind = FRAME_KIND_UDP;
    out->src_port = get_be16(udp);
    out->dst_port = get_be16(udp + 2);
    out->payload = udp + FRAME_UDP_HLEN;
    out->payload_len = (uint32_t)(ulen - FRAME_UDP_HLEN);
    return FRAME_KIND_UDP;
}

static int parse_icmp(const uint8_t *buf, size_t l4_len, struct frame_info *out)
{
    const uint8_t *icmp = buf + out->l4_off;
    if (l4_len < FRAME_ICMP_HLEN) {
        return ORDO_EMALFORMED;
    }
    if (icmp[0] != FRAME_ICMP_ECHO_REQUEST) {
        return ORDO_EBADTYPE;
    }
    if (icmp[1] != 0) {
        return ORDO_EMALFORMED;
    }
    /* NICs do not offload ICMP checksums, so this one is always verified. */
    if (csum_fold(csum_partial(icmp, l4_len, 0)) != 0xffffu) {
        return ORDO_ECHECKSUM;
    }
    out->kind = FRAME_KIND_ICMP_ECHO;
    out->icmp_id = get_be16(icmp + 4);
    out->icmp_seq = get_be16(icmp + 6);
    out->payload = icmp + FRAME_ICMP_HLEN;
    out->payload_len = (uint32_t)(l4_len - FRAME_ICMP_HLEN);
    return FRAME_KIND_ICMP_ECHO;
}

int frame_parse(const uint8_t *buf, size_t len, unsigned flags, struct frame_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len < FRAME_ETH_HLEN) {
        return ORDO_ETRUNCATED;
    }
    memcpy(out->dst_mac, buf, FRAME_MAC_LEN);
    memcpy(out->src_mac, buf + FRAME_MAC_LEN, FRAME_MAC_LEN);
    uint16_t ethertype = get_be16(buf + 12);
    if (ethertype == FRAME_ETHERTYPE_ARP) {
        return parse_arp(buf, len, out);
    }
    if (ethertype != FRAME_ETHERTYPE_IPV4) {
        return ORDO_EBADTYPE;
    }
    size_t ihl = 0;
    size_t tot_len = 0;
    int rc = parse_ipv4(buf, len, flags, out, &ihl, &tot_len);
    if (rc < 0) {
        return rc;
    }
    uint8_t proto = buf[FRAME_ETH_HLEN + 9];
    if (proto == FRAME_IPPROTO_UDP) {
        return parse_udp(buf, tot_len - ihl, flags, out);
    }
    if (proto == FRAME_IPPROTO_ICMP) {
        return parse_icmp(buf, tot_len - ihl, out);
    }
    return ORDO_EBADTYPE;
}

int frame_build_udp(uint8_t *buf, size_t cap, const struct frame_udp_addr *addr,
                    const uint8_t *payload, size_t payload_len, unsigned flags)
{
    if (payload_len > IPV4_TOT_LEN_MAX - FRAME_IPV4_HLEN - FRAME_UDP_HLEN) {
        return ORDO_ETOOBIG;
    }
    size_t total = FRAME_UDP_PAYLOAD_OFF + payload_len;
    if (cap < total) {
        return ORDO_ENOSPACE;
    }
    if (payload_len > 0 && payload != buf + FRAME_UDP_PAYLOAD_OFF) {
        memmove(buf + FRAME_UDP_PAYLOAD_OFF, payload, payload_len);
    }
    uint8_t *ip = buf + FRAME_ETH_HLEN;
    uint8_t *udp = ip + FRAME_IPV4_HLEN;
    uint16_t udp_len = (uint16_t)(FRAME_UDP_HLEN + payload_len);
    eth_write(buf, addr->dst_mac, addr->src_mac, FRAME_ETHERTYPE_IPV4);
    ipv4_write(ip, (uint16_t)(FRAME_IPV4_HLEN + udp_len), FRAME_IPPROTO_UDP, addr->src_ip,
               addr->dst_ip, flags);
    put_be16(udp, addr->src_port);
    put_be16(udp + 2, addr->dst_port);
    put_be16(udp + 4, udp_len);
    udp_csum_set(ip, udp, udp_len, flags);
    return (int)total;
}

int frame_build_arp(uint8_t *buf, size_t cap, uint16_t op, const uint8_t sha[FRAME_MAC_LEN],
                    uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
    static const uint8_t zero_mac[FRAME_MAC_LEN];
    if (op != FRAME_ARP_OP_REQUEST && op != FRAME_ARP_OP_REPLY) {
        return -EINVAL;
    }
    if (op == FRAME_ARP_OP_REPLY && tha == NULL) {
        return -EINVAL;
    }
    if (cap < FRAME_ETH_MIN_LEN) {
        return ORDO_ENOSPACE;
    }
    const uint8_t *eth_dst = op == FRAME_ARP_OP_REPLY ? tha : frame_broadcast;
    uint8_t *a = buf + FRAME_ETH_HLEN;
    memset(buf, 0, FRAME_ETH_MIN_LEN);
    eth_write(buf, eth_dst, sha, FRAME_ETHERTYPE_ARP);
    put_be16(a, 1);
    put_be16(a + 2, FRAME_ETHERTYPE_IPV4);
    a[4] = FRAME_MAC_LEN;
    a[5] = 4;
    put_be16(a + 6, op);
    memcpy(a + 8, sha, FRAME_MAC_LEN);
    memcpy(a + 14, &spa, 4);
    memcpy(a + 18, tha != NULL ? tha : zero_mac, FRAME_MAC_LEN);
    memcpy(a + 24, &tpa, 4);
    return FRAME_ETH_MIN_LEN;
}

int frame_arp_reply(const struct frame_info *req, const uint8_t my_mac[FRAME_MAC_LEN],
                    uint32_t my_ip, uint8_t *buf, size_t cap)
{
    if (req->kind != FRAME_KIND_ARP || req->arp_op != FRAME_ARP_OP_REQUEST) {
        return -EINVAL;
    }
    if (req->dst_ip != my_ip) {
        return ORDO_ENOTFOUND;
    }
    return frame_build_arp(buf, cap, FRAME_ARP_OP_REPLY, my_mac, my_ip, req->arp_sha, req->src_ip);
}

int frame_build_icmp_echo(uint8_t *buf, size_t cap, const struct frame_udp_addr *addr, uint16_t id,
                          uint16_t seq, const uint8_t *data, size_t len, unsigned flags)
{
    if (len > IPV4_TOT_LEN_MAX - FRAME_IPV4_HLEN - FRAME_ICMP_HLEN) {
        return ORDO_ETOOBIG;
    }
    size_t icmp_len = FRAME_ICMP_HLEN + len;
    size_t total = FRAME_ETH_HLEN + FRAME_IPV4_HLEN + icmp_len;
    if (cap < total) {
        return ORDO_ENOSPACE;
    }
    uint8_t *ip = buf + FRAME_ETH_HLEN;
    uint8_t *icmp = ip + FRAME_IPV4_HLEN;
    if (len > 0) {
        memmove(icmp + FRAME_ICMP_HLEN, data, len);
    }
    eth_write(buf, addr->dst_mac, addr->src_mac, FRAME_ETHERTYPE_IPV4);
    ipv4_write(ip, (uint16_t)(FRAME_IPV4_HLEN + icmp_len), FRAME_IPPROTO_ICMP, addr->src_ip,
               addr->dst_ip, flags);
    icmp[0] = FRAME_ICMP_ECHO_REQUEST;
    icmp[1] = 0;
    put_be16(icmp + 2, 0);
    put_be16(icmp + 4, id);
    put_be16(icmp + 6, seq);
    put_be16(icmp + 2, frame_inet_csum(icmp, icmp_len));
    return (int)total;
}

int frame_icmp_echo_reply(const uint8_t *req, size_t req_len, const struct frame_info *req_info,
                          uint8_t *out, size_t cap, unsigned flags)
{
    if (req_info->kind != FRAME_KIND_ICMP_ECHO || req_len < FRAME_ETH_HLEN + FRAME_IPV4_HLEN) {
        return -EINVAL;
    }
    size_t tot_len = get_be16(req + FRAME_ETH_HLEN + 2);
    size_t ihl = (size_t)(req[FRAME_ETH_HLEN] & 0xfu) * 4;
    size_t total = FRAME_ETH_HLEN + tot_len;
    /* req_info must describe req: a mismatch is a caller bug, but stay inside req. */
    if (total > req_len || ihl + FRAME_ICMP_HLEN > tot_len ||
        req_info->l4_off != FRAME_ETH_HLEN + ihl) {
        return -EINVAL;
    }
    if (cap < total) {
        return ORDO_ENOSPACE;
    }
    if (out != req) {
        memmove(out, req, total);
    }
    uint8_t *ip = out + FRAME_ETH_HLEN;
    uint8_t *icmp = ip + ihl;
    eth_write(out, req_info->src_mac, req_info->dst_mac, FRAME_ETHERTYPE_IPV4);
    memcpy(ip + 12, &req_info->dst_ip, 4);
    memcpy(ip + 16, &req_info->src_ip, 4);
    ip[8] = FRAME_TTL_DEFAULT;
    ipv4_csum_set(ip, ihl, flags);
    icmp[0] = FRAME_ICMP_ECHO_REPLY;
    put_be16(icmp + 2, 0);
    put_be16(icmp + 2, frame_inet_csum(icmp, tot_len - ihl));
    return (int)total;
}

int frame_probe_match(const uint8_t *payload, size_t len)
{
    if (len < FRAME_PROBE_OFF + FRAME_PROBE_LEN) {
        return 0;
    }
    return get_le32(payload + FRAME_PROBE_OFF) == FRAME_PROBE_MAGIC;
}

int frame_probe_read(const uint8_t *payload, size_t len, struct frame_probe *out)
{
    if (len < FRAME_PROBE_OFF + FRAME_PROBE_LEN) {
        return ORDO_ETRUNCATED;
    }
    const uint8_t *p = payload + FRAME_PROBE_OFF;
    out->magic = get_le32(p);
    if (out->magic != FRAME_PROBE_MAGIC) {
        return ORDO_EBADMAGIC;
    }
    out->index = get_le32(p + 4);
    out->tsc = (uint64_t)get_le32(p + 8) | (uint64_t)get_le32(p + 12) << 32;
    return 0;
}

int frame_swap_reply(uint8_t *buf, size_t len)
{
    struct frame_info fi;
    int rc = frame_parse(buf, len, FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM, &fi);
    if (rc < 0) {
        return rc;
    }
    if (rc != FRAME_KIND_UDP) {
        return ORDO_EBADTYPE;
    }
    uint8_t *ip = buf + fi.l3_off;
    uint8_t *udp = buf + fi.l4_off;
    eth_write(buf, fi.src_mac, fi.dst_mac, FRAME_ETHERTYPE_IPV4);
    memcpy(ip + 12, &fi.dst_ip, 4);
    memcpy(ip + 16, &fi.src_ip, 4);
    put_be16(udp, fi.dst_port);
    put_be16(udp + 2, fi.src_port);
    ipv4_csum_set(ip, (size_t)(fi.l4_off - fi.l3_off), 0);
    udp_csum_set(ip, udp, (uint16_t)(FRAME_UDP_HLEN + fi.payload_len), 0);
    ORDO_DEBUG_ASSERT(frame_parse(buf, len, 0, &fi) == FRAME_KIND_UDP);
    return 0;
}
