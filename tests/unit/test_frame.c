/* Unit tests of the Ethernet/IPv4/UDP framing: build/parse round trips, checksums and
 * their offload flags, every bounds check, ARP and ICMP echo replies, pktgen probes. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/err.h"
#include "engine/frame.h"

static const struct frame_udp_addr addr = {
    .src_mac = {0x02, 0, 0, 0, 0, 0x01},
    .dst_mac = {0x02, 0, 0, 0, 0, 0x02},
    .src_ip = 0x010012c6u, /* 198.18.0.1 in network byte order (little-endian host) */
    .dst_ip = 0x020012c6u, /* 198.18.0.2 */
    .src_port = 40000,
    .dst_port = 7400,
};

static uint8_t buf[2048];
static uint8_t payload[1200];

static int build(size_t len, unsigned flags)
{
    for (size_t i = 0; i < len; i++) {
        payload[i] = (uint8_t)(i * 7 + 3);
    }
    int n = frame_build_udp(buf, sizeof(buf), &addr, payload, len, flags);
    cr_assert_eq(n, (int)(FRAME_UDP_PAYLOAD_OFF + len));
    return n;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Rewrites the IPv4 header checksum after a test edits the header on purpose. */
static void fix_ip_csum(uint8_t *frame)
{
    uint8_t *ip = frame + FRAME_ETH_HLEN;
    size_t ihl = (size_t)(ip[0] & 0xf) * 4;
    put16(ip + 10, 0);
    put16(ip + 10, frame_inet_csum(ip, ihl));
}

Test(frame, checksum_matches_known_vector)
{
    /* The classic IPv4 header example (RFC 1071 style): checksum 0xb861. */
    const uint8_t hdr[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                             0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    cr_assert_eq(frame_inet_csum(hdr, sizeof(hdr)), 0xb861);
}

Test(frame, udp_round_trip)
{
    int n = build(100, 0);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(memcmp(fi.src_mac, addr.src_mac, 6), 0);
    cr_assert_eq(memcmp(fi.dst_mac, addr.dst_mac, 6), 0);
    cr_assert_eq(fi.src_ip, addr.src_ip);
    cr_assert_eq(fi.dst_ip, addr.dst_ip);
    cr_assert_eq(fi.src_ip, inet_addr("198.18.0.1"));
    cr_assert_eq(fi.src_port, 40000);
    cr_assert_eq(fi.dst_port, 7400);
    cr_assert_eq(fi.payload_len, 100);
    cr_assert_eq(fi.payload, buf + FRAME_UDP_PAYLOAD_OFF);
    cr_assert_eq(memcmp(fi.payload, payload, 100), 0);
    cr_assert_eq(fi.ttl, FRAME_TTL_DEFAULT);
}

Test(frame, payload_built_in_place_is_not_copied)
{
    memset(buf + FRAME_UDP_PAYLOAD_OFF, 0x5c, 64);
    int n = frame_build_udp(buf, sizeof(buf), &addr, buf + FRAME_UDP_PAYLOAD_OFF, 64, 0);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(fi.payload[0], 0x5c);
    cr_assert_eq(fi.payload[63], 0x5c);
}

Test(frame, build_checks_capacity)
{
    cr_assert_eq(frame_build_udp(buf, FRAME_UDP_PAYLOAD_OFF + 9, &addr, payload, 10, 0),
                 ORDO_ENOSPACE);
    cr_assert_eq(frame_build_udp(buf, sizeof(buf), &addr, payload, 70000, 0), ORDO_ETOOBIG);
    cr_assert_eq(frame_build_arp(buf, FRAME_ETH_MIN_LEN - 1, FRAME_ARP_OP_REQUEST, addr.src_mac,
                                 addr.src_ip, NULL, addr.dst_ip),
                 ORDO_ENOSPACE);
}

Test(frame, bad_ip_checksum_is_rejected_unless_offloaded)
{
    int n = build(40, 0);
    buf[FRAME_ETH_HLEN + 10] ^= 0x01;
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_ECHECKSUM);
    cr_assert_eq(frame_parse(buf, (size_t)n, FRAME_SKIP_IP_CSUM, &fi), FRAME_KIND_UDP);
}

Test(frame, bad_udp_checksum_is_rejected_unless_offloaded)
{
    int n = build(40, 0);
    buf[n - 1] ^= 0x10; /* payload byte: only the UDP checksum covers it */
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_ECHECKSUM);
    cr_assert_eq(frame_parse(buf, (size_t)n, FRAME_SKIP_UDP_CSUM, &fi), FRAME_KIND_UDP);
}

Test(frame, zero_udp_checksum_means_none)
{
    int n = build(40, 0);
    put16(buf + FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 6, 0);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
}

/* With offload the frame carries what the NIC needs: IPv4 checksum 0, UDP field = the
 * pseudo-header sum; finishing the sums as the NIC would gives a valid frame. */
Test(frame, offload_build_leaves_work_for_the_nic)
{
    int n = build(33, FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM);
    uint8_t *ip = buf + FRAME_ETH_HLEN;
    uint8_t *udp = ip + FRAME_IPV4_HLEN;
    cr_assert_eq(get16(ip + 10), 0);
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = FRAME_IPPROTO_UDP;
    put16(pseudo + 10, 8 + 33);
    cr_assert_eq(get16(udp + 6), (uint16_t)~frame_inet_csum(pseudo, sizeof(pseudo)));
    /* The NIC: checksum over UDP header (seeded field) and payload, no pseudo-header. */
    put16(udp + 6, frame_inet_csum(udp, 8 + 33));
    fix_ip_csum(buf);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
}

Test(frame, every_truncation_is_rejected)
{
    int n = build(60, 0);
    struct frame_info fi;
    for (int len = 0; len < n; len++) {
        cr_assert_lt(frame_parse(buf, (size_t)len, 0, &fi), 0, "len %d accepted", len);
        cr_assert_lt(frame_parse(buf, (size_t)len, FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM, &fi),
                     0, "len %d accepted without checksums", len);
    }
}

Test(frame, ethernet_padding_is_ignored)
{
    int n = build(4, 0);
    memset(buf + n, 0, FRAME_ETH_MIN_LEN - (size_t)n);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, FRAME_ETH_MIN_LEN, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(fi.payload_len, 4);
}

Test(frame, ipv4_options_are_accepted)
{
    /* Insert 8 bytes of options (NOPs) after the 20-byte header: IHL 7. */
    int n = build(50, 0);
    uint8_t *ip = buf + FRAME_ETH_HLEN;
    memmove(ip + 28, ip + 20, (size_t)n - FRAME_ETH_HLEN - 20);
    memset(ip + 20, 1, 8);
    ip[0] = 0x47;
    put16(ip + 2, get16(ip + 2) + 8);
    fix_ip_csum(buf);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n + 8, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(fi.l4_off, FRAME_ETH_HLEN + 28);
    cr_assert_eq(fi.payload_len, 50);
    cr_assert_eq(memcmp(fi.payload, payload, 50), 0);
}

static int parse_edited_ip(unsigned off, unsigned value, size_t len)
{
    struct frame_info fi;
    put16(buf + FRAME_ETH_HLEN + off, value);
    fix_ip_csum(buf);
    return frame_parse(buf, len, 0, &fi);
}

Test(frame, fragments_are_rejected)
{
    int n = build(20, 0);
    cr_assert_eq(parse_edited_ip(6, 0x2000, (size_t)n), ORDO_EMALFORMED, "MF");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(6, 0x0010, (size_t)n), ORDO_EMALFORMED, "offset");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(6, 0x4000, (size_t)n), FRAME_KIND_UDP, "DF alone is fine");
}

Test(frame, bad_lengths_are_rejected)
{
    int n = build(20, 0);
    cr_assert_eq(parse_edited_ip(0, 0x4400, (size_t)n), ORDO_EMALFORMED, "IHL 4");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(0, 0x6500, (size_t)n), ORDO_EMALFORMED, "version 6");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(2, 19, (size_t)n), ORDO_EMALFORMED, "total < header");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(2, 20 + 8 + 21, (size_t)n), ORDO_ETRUNCATED, "total > buffer");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(2, 20 + 8 + 19, (size_t)n), ORDO_ETRUNCATED, "UDP > IP");
    n = build(20, 0);
    cr_assert_eq(parse_edited_ip(2, 20 + 7, (size_t)n), ORDO_EMALFORMED, "no room for UDP");
    n = build(20, 0);
    put16(buf + FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 4, 7);
    cr_assert_eq(parse_edited_ip(0, 0x4500, (size_t)n), ORDO_EMALFORMED, "UDP length 7");
    n = build(20, 0);
    put16(buf + FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 4, 8 + 19);
    cr_assert_eq(parse_edited_ip(0, 0x4500, (size_t)n), ORDO_EMALFORMED, "UDP < IP");
}

Test(frame, other_protocols_are_bad_type)
{
    struct frame_info fi;
    int n = build(20, 0);
    put16(buf + 12, 0x86dd);
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_EBADTYPE, "IPv6");
    n = build(20, 0);
    buf[FRAME_ETH_HLEN + 9] = 6;
    fix_ip_csum(buf);
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_EBADTYPE, "TCP");
}

Test(frame, arp_request_gets_a_reply)
{
    struct frame_info req;
    struct frame_info rep;
    uint8_t out[128];
    int n = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, addr.src_mac, addr.src_ip, NULL,
                            addr.dst_ip);
    cr_assert_eq(n, FRAME_ETH_MIN_LEN);
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &req), FRAME_KIND_ARP);
    cr_assert_eq(req.arp_op, FRAME_ARP_OP_REQUEST);
    cr_assert_eq(req.dst_mac[0], 0xff);
    cr_assert_eq(req.src_ip, addr.src_ip);
    cr_assert_eq(req.dst_ip, addr.dst_ip);
    int m = frame_arp_reply(&req, addr.dst_mac, addr.dst_ip, out, sizeof(out));
    cr_assert_eq(m, FRAME_ETH_MIN_LEN);
    cr_assert_eq(frame_parse(out, (size_t)m, 0, &rep), FRAME_KIND_ARP);
    cr_assert_eq(rep.arp_op, FRAME_ARP_OP_REPLY);
    cr_assert_eq(memcmp(rep.dst_mac, addr.src_mac, 6), 0);
    cr_assert_eq(memcmp(rep.src_mac, addr.dst_mac, 6), 0);
    cr_assert_eq(memcmp(rep.arp_sha, addr.dst_mac, 6), 0);
    cr_assert_eq(memcmp(rep.arp_tha, addr.src_mac, 6), 0);
    cr_assert_eq(rep.src_ip, addr.dst_ip);
    cr_assert_eq(rep.dst_ip, addr.src_ip);
}

Test(frame, arp_for_another_address_is_not_answered)
{
    struct frame_info req;
    uint8_t out[128];
    int n = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, addr.src_mac, addr.src_ip, NULL,
                            addr.dst_ip);
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &req), FRAME_KIND_ARP);
    cr_assert_eq(frame_arp_reply(&req, addr.dst_mac, addr.dst_ip + 1, out, sizeof(out)),
                 ORDO_ENOTFOUND);
    req.arp_op = FRAME_ARP_OP_REPLY;
    cr_assert_eq(frame_arp_reply(&req, addr.dst_mac, addr.dst_ip, out, sizeof(out)), -EINVAL);
}

Test(frame, bad_arp_is_rejected)
{
    struct frame_info fi;
    int n = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, addr.src_mac, addr.src_ip, NULL,
                            addr.dst_ip);
    cr_assert_eq(frame_parse(buf, FRAME_ETH_HLEN + FRAME_ARP_LEN - 1, 0, &fi), ORDO_ETRUNCATED);
    buf[FRAME_ETH_HLEN + 4] = 8;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_EMALFORMED);
    buf[FRAME_ETH_HLEN + 4] = 6;
    buf[FRAME_ETH_HLEN + 7] = 3;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_EBADTYPE);
}

static void check_echo_reply(const uint8_t *rep, int len, const uint8_t *data, size_t data_len)
{
    const uint8_t *ip = rep + FRAME_ETH_HLEN;
    const uint8_t *icmp = ip + FRAME_IPV4_HLEN;
    cr_assert_eq(len, (int)(FRAME_ETH_HLEN + FRAME_IPV4_HLEN + FRAME_ICMP_HLEN + data_len));
    cr_assert_eq(memcmp(rep, addr.src_mac, 6), 0);
    cr_assert_eq(memcmp(rep + 6, addr.dst_mac, 6), 0);
    cr_assert_eq(memcmp(ip + 12, &addr.dst_ip, 4), 0);
    cr_assert_eq(memcmp(ip + 16, &addr.src_ip, 4), 0);
    cr_assert_eq(frame_inet_csum(ip, FRAME_IPV4_HLEN), 0, "IPv4 checksum");
    cr_assert_eq(icmp[0], FRAME_ICMP_ECHO_REPLY);
    cr_assert_eq(get16(icmp + 4), 0x1234);
    cr_assert_eq(get16(icmp + 6), 7);
    cr_assert_eq(frame_inet_csum(icmp, FRAME_ICMP_HLEN + data_len), 0, "ICMP checksum");
    cr_assert_eq(memcmp(icmp + FRAME_ICMP_HLEN, data, data_len), 0);
}

Test(frame, icmp_echo_gets_a_reply)
{
    const uint8_t data[] = "ordo ping data, 32 bytes long!!";
    struct frame_info fi;
    uint8_t out[256];
    int n = frame_build_icmp_echo(buf, sizeof(buf), &addr, 0x1234, 7, data, sizeof(data), 0);
    cr_assert_gt(n, 0);
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_ICMP_ECHO);
    cr_assert_eq(fi.icmp_id, 0x1234);
    cr_assert_eq(fi.icmp_seq, 7);
    cr_assert_eq(fi.payload_len, sizeof(data));
    int m = frame_icmp_echo_reply(buf, (size_t)n, &fi, out, sizeof(out), 0);
    check_echo_reply(out, m, data, sizeof(data));
    cr_assert_eq(frame_icmp_echo_reply(buf, (size_t)n, &fi, out, (size_t)n - 1, 0), ORDO_ENOSPACE);
    /* In place, as a driver does with the received mbuf. */
    m = frame_icmp_echo_reply(buf, (size_t)n, &fi, buf, sizeof(buf), 0);
    check_echo_reply(buf, m, data, sizeof(data));
}

Test(frame, bad_icmp_is_rejected)
{
    struct frame_info fi;
    int n = frame_build_icmp_echo(buf, sizeof(buf), &addr, 1, 1, payload, 16, 0);
    buf[n - 1] ^= 0xff;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_ECHECKSUM);
    n = frame_build_icmp_echo(buf, sizeof(buf), &addr, 1, 1, payload, 16, 0);
    buf[FRAME_ETH_HLEN + FRAME_IPV4_HLEN] = FRAME_ICMP_ECHO_REPLY;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), ORDO_EBADTYPE);
}

/* A pktgen latency frame: 72 bytes, probe at UDP payload offset 6. */
static int build_probe(uint32_t magic)
{
    uint8_t p[72 - FRAME_UDP_PAYLOAD_OFF];
    memset(p, 0xee, sizeof(p));
    const uint8_t fields[16] = {(uint8_t)magic,
                                (uint8_t)(magic >> 8),
                                (uint8_t)(magic >> 16),
                                (uint8_t)(magic >> 24),
                                5,
                                0,
                                0,
                                0,
                                0x88,
                                0x77,
                                0x66,
                                0x55,
                                0x44,
                                0x33,
                                0x22,
                                0x11};
    memcpy(p + FRAME_PROBE_OFF, fields, sizeof(fields));
    struct frame_udp_addr a = addr;
    a.dst_port = FRAME_PROBE_PORT;
    int n = frame_build_udp(buf, sizeof(buf), &a, p, sizeof(p), 0);
    cr_assert_eq(n, 72);
    return n;
}

Test(frame, probe_is_matched_and_read)
{
    int n = build_probe(FRAME_PROBE_MAGIC);
    struct frame_info fi;
    struct frame_probe pr;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
    cr_assert_eq(fi.dst_port, FRAME_PROBE_PORT);
    cr_assert(frame_probe_match(fi.payload, fi.payload_len));
    cr_assert_eq(frame_probe_read(fi.payload, fi.payload_len, &pr), 0);
    cr_assert_eq(pr.index, 5);
    cr_assert_eq(pr.tsc, 0x1122334455667788ull);
    cr_assert_not(frame_probe_match(fi.payload, FRAME_PROBE_OFF + FRAME_PROBE_LEN - 1));
    cr_assert_eq(frame_probe_read(fi.payload, 10, &pr), ORDO_ETRUNCATED);
}

Test(frame, other_payload_is_not_a_probe)
{
    int n = build_probe(0xf00dcaffu);
    struct frame_info fi;
    struct frame_probe pr;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP);
    cr_assert_not(frame_probe_match(fi.payload, fi.payload_len));
    cr_assert_eq(frame_probe_read(fi.payload, fi.payload_len, &pr), ORDO_EBADMAGIC);
}

Test(frame, swap_reply_reverses_addresses_and_keeps_payload)
{
    int n = build_probe(FRAME_PROBE_MAGIC);
    uint8_t orig[72];
    memcpy(orig, buf, sizeof(orig));
    cr_assert_eq(frame_swap_reply(buf, (size_t)n), 0);
    struct frame_info fi;
    cr_assert_eq(frame_parse(buf, (size_t)n, 0, &fi), FRAME_KIND_UDP, "checksums valid");
    cr_assert_eq(memcmp(fi.dst_mac, addr.src_mac, 6), 0);
    cr_assert_eq(memcmp(fi.src_mac, addr.dst_mac, 6), 0);
    cr_assert_eq(fi.src_ip, addr.dst_ip);
    cr_assert_eq(fi.dst_ip, addr.src_ip);
    cr_assert_eq(fi.src_port, FRAME_PROBE_PORT);
    cr_assert_eq(fi.dst_port, addr.src_port);
    cr_assert_eq(memcmp(buf + FRAME_UDP_PAYLOAD_OFF, orig + FRAME_UDP_PAYLOAD_OFF,
                        72 - FRAME_UDP_PAYLOAD_OFF),
                 0);
    cr_assert_eq(frame_swap_reply(buf, (size_t)n), 0);
    cr_assert_eq(memcmp(buf, orig, sizeof(orig)), 0, "swapping twice restores the frame");
}

Test(frame, swap_reply_refuses_non_udp)
{
    int n = frame_build_arp(buf, sizeof(buf), FRAME_ARP_OP_REQUEST, addr.src_mac, addr.src_ip, NULL,
                            addr.dst_ip);
    uint8_t orig[FRAME_ETH_MIN_LEN];
    memcpy(orig, buf, sizeof(orig));
    cr_assert_eq(frame_swap_reply(buf, (size_t)n), ORDO_EBADTYPE);
    cr_assert_eq(memcmp(buf, orig, sizeof(orig)), 0);
    cr_assert_eq(frame_swap_reply(buf, 20), ORDO_ETRUNCATED);
}

Test(frame, random_corruption_never_crashes)
{
    static uint8_t copy[2048];
    uint64_t s = 42;
    struct frame_info fi;
    int n = build(200, 0);
    for (int i = 0; i < 20000; i++) {
        memcpy(copy, buf, (size_t)n);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t pos = (size_t)(s >> 33) % 64; /* headers: where the lengths live */
        copy[pos] = (uint8_t)(s >> 20);
        size_t len = (size_t)(s >> 40) % (size_t)(n + 1);
        int rc = frame_parse(copy, len, (unsigned)(s & 3), &fi);
        if (rc == FRAME_KIND_UDP) {
            cr_assert_leq(fi.payload + fi.payload_len, copy + len);
            cr_assert_geq(fi.payload, copy);
        }
    }
}
