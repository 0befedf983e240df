/* DPDK start-up and one Ethernet port for any PMD (PCI NIC, net_af_xdp, net_af_packet,
 * net_null, net_ring): EAL init, mbuf pool, queue bring-up with RSS and checksum offloads
 * where offered, burst RX/TX. Knows nothing about Ordo messages. */
#ifndef ORDO_DRIVERS_NET_NET_H
#define ORDO_DRIVERS_NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "drivers/net/net_fault.h"
#include "drivers/net/net_stats.h"
#include "engine/api.h"
#include "engine/err.h"

#define NET_QUEUES_MAX 16 /* RX or TX queues on one port */
#define NET_PORT_ANY UINT16_MAX

/* What a port should look like; filled by the caller from the replica's config. */
struct net_conf {
    uint16_t port_id;      /* NET_PORT_ANY: port_name, else the first port the EAL args made */
    const char *port_name; /* NULL or "": unused; else the ethdev name, e.g. "net_af_xdp0" */
    uint16_t rx_queues;    /* wanted; clamped to what the PMD offers */
    uint16_t tx_queues;
    uint16_t rx_desc; /* 0: PMD default */
    uint16_t tx_desc;
    uint32_t mbufs;          /* pool size; must cover rx_desc * rx_queues + rings in flight */
    uint32_t mbuf_cache;     /* per-lcore pool cache (0 allowed) */
    uint16_t mbuf_priv_size; /* private area per mbuf, for the runtime's metadata */
    uint16_t frame_len_max;  /* largest frame sent or received (Ethernet header included) */
    uint32_t link_wait_ms;   /* how long to wait for link up (0: do not wait) */
    bool mac_set;            /* use mac instead of the port's own address */
    struct rte_ether_addr mac;
};

/* A started port. Owned by the caller; the data path reads it without locks. */
struct net_port {
    uint16_t port_id;
    uint16_t rx_queues;
    uint16_t tx_queues;
    bool rss;        /* RSS on IPv4/UDP spreads flows over rx_queues */
    bool rx_csum_hw; /* the PMD checks IPv4/UDP checksums (mbuf ol_flags) */
    bool tx_csum_hw; /* the PMD fills IPv4/UDP checksums (mbuf ol_flags) */
    bool started;
    struct rte_ether_addr mac; /* our address on this port */
    struct rte_mempool *pool;
    char driver[32];
    char name[RTE_ETH_NAME_MAX_LEN];
};

/* Starts the EAL with argv (argv[0] is the program; rte_eal_init may permute the array and
 * keeps pointers into it, so it must live as long as the process). Call once per process,
 * before any other DPDK call. Registers the "ordo.net" log type.
 * Returns 0 or the negative rte_errno of rte_eal_init; e names the cause. */
ORDO_API int net_eal_init(int argc, char **argv, struct ordo_errmsg *e);

/* Creates the mbuf pool, configures and starts the port, waits for link (bounded).
 * On error nothing stays allocated or started and e names port, step and cause.
 * Returns 0, -ENODEV (no such port), -EINVAL (bad conf) or the PMD's negative errno. */
ORDO_API int net_port_open(struct net_port *p, const struct net_conf *c, struct ordo_errmsg *e);

/* Largest frame_len_max a net_af_xdp port can carry with a private area of priv_size bytes:
 * the mbuf, the PMD's headroom and the kernel's XDP headroom must fit one 4 KiB umem chunk,
 * or the kernel drops bigger received frames (only the PMD's imissed counts them). Pure;
 * callable before the EAL starts. */
ORDO_API uint16_t net_af_xdp_frame_max(uint16_t priv_size);

/* The mbuf data room net_port_open gives a pool for frames of frame_len_max bytes: the PMD's
 * headroom, plus on net_af_xdp the kernel's XDP headroom (256 bytes) in front of each
 * received frame. Pure. */
ORDO_API uint32_t net_data_room(uint16_t frame_len_max, bool af_xdp);

/* Stops and closes the port and frees the pool. Idempotent. Only after every stage stopped. */
ORDO_API void net_port_close(struct net_port *p);

/* Finds the kernel sockets behind the port's queues (net_af_packet, net_af_xdp) that become
 * readable when a frame arrives, so an idle loop can sleep until then (idle_wait_fd_add).
 * Scans the process's descriptors for AF_PACKET sockets bound to the port's interface and
 * AF_XDP sockets; other PMDs have none. Stores at most max and returns the count, 0 when
 * there are none or /proc/self/fd cannot be read. The descriptors stay the PMD's: never
 * close or read them. Start-up only, after net_port_open. */
ORDO_API uint32_t net_port_wait_fds(const struct net_port *p, int *fds, uint32_t max);

/* Kernel-side counters of the port's AF_PACKET sockets (PACKET_STATISTICS), totals since the
 * first call: packets the sockets' RX rings were offered and drops, the frames the kernel
 * threw away because an RX ring was full. net_af_packet (DPDK 22.11) never reads them, so its
 * imissed stays 0 whatever the kernel drops. */
struct net_sock_stats {
    uint32_t sockets; /* AF_PACKET/AF_XDP sockets found (AF_XDP ones add nothing) */
    uint64_t packets;
    uint64_t drops;
};

/* Reads and adds up the port's socket counters (the kernel clears them on each read). Any
 * thread, not the data path: it scans /proc/self/fd. Returns 0 or -ENODEV. */
ORDO_API int net_port_sock_stats(uint16_t port_id, struct net_sock_stats *s);

/* Receives up to n frames from queue q; counts rx_packets/rx_bytes; applies net_fault when armed
 * (which may return frames held from earlier bursts). Data path, one lcore per
 * queue. Ownership of the returned mbufs passes to the caller. */
static inline uint16_t net_rx(const struct net_port *p, uint16_t q, struct rte_mbuf **m, uint16_t n)
{
    uint16_t got = rte_eth_rx_burst(p->port_id, q, m, n);
    if (got != 0) {
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < got; i++) {
            bytes += m[i]->pkt_len;
        }
        net_stats_add(NET_CTR_RX_PACKETS, got);
        net_stats_add(NET_CTR_RX_BYTES, bytes);
    }
    if (net_fault_is_armed()) {
        got = net_fault_rx(q, m, got, n);
    }
    return got;
}

/* Sends n frames on queue q; frees (and counts as tx_drops) whatever the queue refused, so
 * ownership of all n mbufs passes to the port. Returns the number sent. With net_fault armed
 * the frames go through its hold queue first; net_tx(p, q, NULL, 0) sends held frames now due. Data
 * path, one lcore per queue. */
ORDO_API uint16_t net_tx(const struct net_port *p, uint16_t q, struct rte_mbuf **m, uint16_t n);

/* Sets the mbuf fields the PMD needs to fill IPv4 and UDP checksums, when p->tx_csum_hw.
 * The frame must be Ethernet/IPv4 (no options)/UDP with the IPv4 checksum zeroed and the UDP
 * checksum set to the pseudo-header sum (rte_ipv4_phdr_cksum). */
ORDO_API void net_tx_csum_offload(struct rte_mbuf *m);

#endif
