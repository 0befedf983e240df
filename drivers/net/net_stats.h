/* Packet counters of one replica process, one slot per lcore so the data path never shares a
 * cache line or takes a lock; the sum is published through DPDK telemetry (/ordo/stats). */
#ifndef ORDO_DRIVERS_NET_NET_STATS_H
#define ORDO_DRIVERS_NET_NET_STATS_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_lcore.h>

#include "engine/api.h"

/* Every counter the network path keeps. Names (net_stats_name) are the telemetry keys. */
enum net_ctr {
    NET_CTR_RX_PACKETS,
    NET_CTR_RX_BYTES,
    NET_CTR_TX_PACKETS,
    NET_CTR_TX_BYTES,
    NET_CTR_TX_DROPS,        /* TX queue full: frame freed unsent */
    NET_CTR_RX_IGNORED,      /* not for us: other MAC/IP/port, non-IPv4 */
    NET_CTR_MALFORMED_FRAME, /* Ethernet/IPv4/UDP structure invalid */
    NET_CTR_MALFORMED_CSUM,  /* IPv4 header or UDP checksum mismatch */
    NET_CTR_MALFORMED_TRUNC, /* Ordo message shorter than it declares */
    NET_CTR_MALFORMED_BIG,   /* Ordo message larger than a configured bound */
    NET_CTR_MALFORMED_MAGIC,
    NET_CTR_MALFORMED_VERSION,
    NET_CTR_MALFORMED_TYPE,
    NET_CTR_MALFORMED_CLUSTER,
    NET_CTR_MALFORMED_OTHER,
    NET_CTR_MAC_FAILURES,   /* client or peer MAC did not verify */
    NET_CTR_UNAUTHORIZED,   /* unauthenticated client outside the configured subnets */
    NET_CTR_PEER_DROPS,     /* valid peer frames nobody consumes (single-replica mode) */
    NET_CTR_ARP_REQUESTS,   /* ARP requests for our address */
    NET_CTR_ARP_REPLIES,    /* ARP replies sent */
    NET_CTR_ARP_LEARNED,    /* peer MACs learned from ARP */
    NET_CTR_ICMP_ECHO,      /* ICMP echo requests answered */
    NET_CTR_PROBES,         /* pktgen probes accepted into the request path */
    NET_CTR_REQUESTS,       /* client requests (probes included) accepted into the ring */
    NET_CTR_REPLIES,        /* replies queued for TX (probes included) */
    NET_CTR_RING_FULL,      /* request or reply ring full: frame dropped (backpressure) */
    NET_CTR_APPLY_ERRORS,   /* the state machine failed a command */
    NET_CTR_FAULT_DROPS,    /* net_fault: frames dropped on purpose */
    NET_CTR_FAULT_DUPS,     /* net_fault: duplicate frames injected */
    NET_CTR_FAULT_REORDERS, /* net_fault: frames swapped with the next one */
    NET_CTR_FAULT_DELAYED,  /* net_fault: frames held for delay_us */
    NET_CTR_FAULT_OVERFLOW, /* net_fault: hold queue full, frame freed */
    NET_CTR_MULTI_REQUESTS, /* multi-request frames accepted (their items count in requests) */
    NET_CTR_MULTI_REJECTED, /* multi-request frames dropped whole (malformed_* has the reason) */
    NET_CTR_MULTI_REPLIES,  /* multi-reply frames sent (replies packed for one client) */
    NET_CTR_COUNT,
};

/* One lcore's counters; written only by that lcore. */
struct net_stats_slot {
    uint64_t c[NET_CTR_COUNT];
} __rte_cache_aligned;

/* Slot RTE_MAX_LCORE serves every non-EAL thread; those add atomically. */
ORDO_API extern struct net_stats_slot net_stats_slots[RTE_MAX_LCORE + 1];

/* Adds n to counter c for the calling lcore. Any thread; lock-free. */
static inline void net_stats_add(enum net_ctr c, uint64_t n)
{
    unsigned lcore = rte_lcore_id();
    if (lcore >= RTE_MAX_LCORE) {
        __atomic_fetch_add(&net_stats_slots[RTE_MAX_LCORE].c[c], n, __ATOMIC_RELAXED);
        return;
    }
    /* Single writer per slot: a relaxed store pairs with the relaxed loads in net_stats_get. */
    uint64_t *p = &net_stats_slots[lcore].c[c];
    __atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static inline void net_stats_inc(enum net_ctr c)
{
    net_stats_add(c, 1);
}

/* Sum over every slot. Any thread; the value may lag concurrent increments. */
ORDO_API uint64_t net_stats_get(enum net_ctr c);

/* Sum of every NET_CTR_MALFORMED_* counter. */
ORDO_API uint64_t net_stats_malformed(void);

/* Telemetry key of c, e.g. "rx_packets"; never NULL. */
ORDO_API const char *net_stats_name(enum net_ctr c);

/* Zeroes every counter. Only while no data path runs (tests, start-up). */
ORDO_API void net_stats_reset(void);

/* Maps a decode error (ORDO_E* from frame.h / wire.h) to its malformed counter. */
ORDO_API enum net_ctr net_stats_malformed_ctr(int err);

/* Registers the telemetry commands /ordo/stats (every counter, a dict) and /ordo/port
 * (the ethdev's own counters for port_id). Call once after rte_eal_init.
 * Returns 0 or a negative errno from rte_telemetry_register_cmd. */
ORDO_API int net_stats_telemetry_register(uint16_t port_id);

#endif
