/* Ethernet / IPv4 / UDP, ARP and ICMP echo framing on plain byte buffers, plus the
 * Pktgen-DPDK latency probe. Pure computation: no system calls, no DPDK, no allocation.
 * Every parser is bounds-checked and never reads outside [buf, buf + len). */
#ifndef ORDO_ENGINE_FRAME_H
#define ORDO_ENGINE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"

#define FRAME_MAC_LEN 6
#define FRAME_ETH_HLEN 14      /* dst MAC, src MAC, EtherType (no VLAN tag) */
#define FRAME_IPV4_HLEN 20     /* IPv4 header without options (what Ordo builds) */
#define FRAME_IPV4_HLEN_MAX 60 /* IHL = 15 */
#define FRAME_UDP_HLEN 8
#define FRAME_ICMP_HLEN 8    /* type, code, checksum, identifier, sequence */
#define FRAME_ARP_LEN 28     /* ARP body for IPv4 over Ethernet */
#define FRAME_ETH_MIN_LEN 60 /* minimum Ethernet frame without FCS; ARP is padded to it */
/* Offset of the UDP payload in a frame that frame_build_udp writes (no IPv4 options). */
#define FRAME_UDP_PAYLOAD_OFF (FRAME_ETH_HLEN + FRAME_IPV4_HLEN + FRAME_UDP_HLEN)

#define FRAME_ETHERTYPE_IPV4 0x0800u
#define FRAME_ETHERTYPE_ARP 0x0806u
#define FRAME_IPPROTO_ICMP 1u
#define FRAME_IPPROTO_UDP 17u
#define FRAME_ARP_OP_REQUEST 1u
#define FRAME_ARP_OP_REPLY 2u
#define FRAME_ICMP_ECHO_REPLY 0u
#define FRAME_ICMP_ECHO_REQUEST 8u
#define FRAME_TTL_DEFAULT 64u

/* Checksum offload flags (STYLE: the NIC may do the work).
 * On parse: skip verifying that checksum (the NIC already checked it and the driver
 * dropped bad frames).
 * On build: do not compute it. For FRAME_SKIP_IP_CSUM the IPv4 checksum field is left 0;
 * for FRAME_SKIP_UDP_CSUM the UDP checksum field holds the folded, non-complemented
 * pseudo-header sum, which is what DPDK's RTE_MBUF_F_TX_UDP_CKSUM offload expects
 * (same value as rte_ipv4_phdr_cksum()). */
#define FRAME_SKIP_IP_CSUM 0x1u
#define FRAME_SKIP_UDP_CSUM 0x2u

/* What frame_parse found (its non-negative result). */
enum frame_kind {
    FRAME_KIND_UDP = 1,       /* IPv4/UDP datagram: payload/payload_len set */
    FRAME_KIND_ARP = 2,       /* ARP request or reply for IPv4 over Ethernet */
    FRAME_KIND_ICMP_ECHO = 3, /* ICMP echo request (type 8, code 0) */
};

/* Parsed frame. Pointers borrow the parsed buffer and are valid while it is. */
struct frame_info {
    uint8_t kind; /* enum frame_kind */
    uint8_t dst_mac[FRAME_MAC_LEN];
    uint8_t src_mac[FRAME_MAC_LEN];
    uint32_t src_ip;   /* network byte order (IPv4 or ARP sender protocol address) */
    uint32_t dst_ip;   /* network byte order (IPv4 or ARP target protocol address) */
    uint16_t src_port; /* host byte order; UDP only */
    uint16_t dst_port; /* host byte order; UDP only */
    uint16_t l3_off;   /* offset of the IPv4 header or ARP body */
    uint16_t l4_off;   /* offset of the UDP or ICMP header; 0 for ARP */
    uint8_t ttl;
    /* ARP only: opcode and hardware addresses from the ARP body. */
    uint16_t arp_op;
    uint8_t arp_sha[FRAME_MAC_LEN];
    uint8_t arp_tha[FRAME_MAC_LEN];
    /* ICMP echo only (host byte order). */
    uint16_t icmp_id;
    uint16_t icmp_seq;
    /* UDP payload, or ICMP echo data after the 8-byte ICMP header. */
    const uint8_t *payload;
    uint32_t payload_len;
};

/* Addresses for building an IPv4/UDP frame. */
struct frame_udp_addr {
    uint8_t src_mac[FRAME_MAC_LEN];
    uint8_t dst_mac[FRAME_MAC_LEN];
    uint32_t src_ip;   /* network byte order */
    uint32_t dst_ip;   /* network byte order */
    uint16_t src_port; /* host byte order */
    uint16_t dst_port; /* host byte order */
};

/* Parses an Ethernet frame of len bytes (no FCS; trailing Ethernet padding beyond the IPv4
 * total length is accepted and ignored). Accepts IPv4 with options, UDP, ICMP echo
 * request and ARP (Ethernet/IPv4, request or reply). flags: FRAME_SKIP_*.
 * Returns the enum frame_kind (> 0) and fills *out, or:
 *   ORDO_ETRUNCATED  buffer shorter than a header or a declared length (IPv4 total
 *                    length, UDP length);
 *   ORDO_EMALFORMED  IHL < 5, IPv4 version != 4, total length < header, UDP length < 8,
 *                    a fragment (MF set or non-zero offset), bad ARP hardware/protocol
 *                    fields, ICMP echo shorter than 8 bytes;
 *   ORDO_ECHECKSUM   IPv4 header, UDP (when non-zero) or ICMP checksum mismatch;
 *   ORDO_EBADTYPE    other EtherType, IP protocol, ICMP type or ARP opcode.
 * A zero UDP checksum means "none" (RFC 768) and is accepted. */
ORDO_API int frame_parse(const uint8_t *buf, size_t len, unsigned flags, struct frame_info *out);

/* Builds a complete Ethernet/IPv4/UDP frame (IPv4 without options, DF set, TTL 64,
 * identification 0) with payload_len bytes of payload copied from payload (which may
 * alias buf + FRAME_UDP_PAYLOAD_OFF: the caller may encode the payload in place first
 * and pass that pointer; no copy happens then). flags: FRAME_SKIP_*.
 * Returns the frame length (FRAME_UDP_PAYLOAD_OFF + payload_len), or ORDO_ENOSPACE if
 * cap is too small, or ORDO_ETOOBIG if the payload does not fit an IPv4 datagram. */
ORDO_API int frame_build_udp(uint8_t *buf, size_t cap, const struct frame_udp_addr *addr,
                             const uint8_t *payload, size_t payload_len, unsigned flags);

/* Builds an ARP frame for IPv4 over Ethernet, padded with zeros to FRAME_ETH_MIN_LEN.
 * op: FRAME_ARP_OP_REQUEST (Ethernet destination broadcast, target MAC zero unless tha
 * is given) or FRAME_ARP_OP_REPLY (Ethernet destination = tha). tha may be NULL for a
 * request. IPs are in network byte order.
 * Returns FRAME_ETH_MIN_LEN, ORDO_ENOSPACE (cap too small) or -EINVAL (bad op, or a
 * reply without tha). */
ORDO_API int frame_build_arp(uint8_t *buf, size_t cap, uint16_t op,
                             const uint8_t sha[FRAME_MAC_LEN], uint32_t spa, const uint8_t *tha,
                             uint32_t tpa);

/* Builds the ARP reply to a parsed ARP request (req->kind == FRAME_KIND_ARP,
 * req->arp_op == request) asking for my_ip. Returns the frame length, ORDO_ENOTFOUND if
 * the request is not for my_ip, -EINVAL if req is not an ARP request, ORDO_ENOSPACE. */
ORDO_API int frame_arp_reply(const struct frame_info *req, const uint8_t my_mac[FRAME_MAC_LEN],
                             uint32_t my_ip, uint8_t *buf, size_t cap);

/* Builds an ICMP echo request (for tests and tools): addr ports are ignored.
 * Returns the frame length, ORDO_ENOSPACE or ORDO_ETOOBIG. */
ORDO_API int frame_build_icmp_echo(uint8_t *buf, size_t cap, const struct frame_udp_addr *addr,
                                   uint16_t id, uint16_t seq, const uint8_t *data, size_t len,
                                   unsigned flags);

/* Writes into out the ICMP echo reply to the echo request req of req_len bytes (parsed
 * as req_info by frame_parse): MACs and IPs swapped, type 0, TTL reset, identifier,
 * sequence, data and IPv4 options kept, checksums recomputed (FRAME_SKIP_IP_CSUM leaves
 * the IPv4 one to the NIC). out may equal req (in place). Returns the reply length
 * (the IPv4 datagram length plus Ethernet header; padding dropped), -EINVAL if req_info
 * is not an ICMP echo, ORDO_ENOSPACE if cap is too small. */
ORDO_API int frame_icmp_echo_reply(const uint8_t *req, size_t req_len,
                                   const struct frame_info *req_info, uint8_t *out, size_t cap,
                                   unsigned flags);

/* Internet checksum (RFC 1071) of len bytes: the complemented one's-complement sum of
 * the big-endian 16-bit words, as a host-order number (store it big-endian). A buffer
 * whose checksum field is correct sums to 0 here. */
ORDO_API uint16_t frame_inet_csum(const uint8_t *data, size_t len);

/* Pktgen-DPDK latency probe: 72-byte frames to UDP port FRAME_PROBE_PORT carrying, at UDP
 * payload offset FRAME_PROBE_OFF, u32 magic FRAME_PROBE_MAGIC, u32 index, u64 TSC, all
 * little-endian. */
#define FRAME_PROBE_PORT 1028u
#define FRAME_PROBE_OFF 6u
#define FRAME_PROBE_LEN 16u
#define FRAME_PROBE_MAGIC 0xf00dcafeu

struct frame_probe {
    uint32_t magic;
    uint32_t index;
    uint64_t tsc;
};

/* Returns 1 if the UDP payload (len bytes) holds a pktgen probe (magic at offset 6),
 * else 0. Does not check the port: callers check dst_port == FRAME_PROBE_PORT. */
ORDO_API int frame_probe_match(const uint8_t *payload, size_t len);

/* Reads the probe fields; returns 0, or ORDO_ETRUNCATED / ORDO_EBADMAGIC. */
ORDO_API int frame_probe_read(const uint8_t *payload, size_t len, struct frame_probe *out);

/* Turns a received IPv4/UDP frame (len bytes) into its reply in place: MACs, IPs and UDP
 * ports swapped, IPv4 and UDP checksums recomputed, payload untouched. Checksums of the
 * received frame are not verified (the caller parsed it already).
 * Returns 0, or a frame_parse error (the frame is then left unchanged; ORDO_EBADTYPE if it
 * is not UDP). */
ORDO_API int frame_swap_reply(uint8_t *buf, size_t len);

#endif
