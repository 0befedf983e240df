/* The host-like duties of a replica's port: answer ARP for our address and ICMP echo (so
 * kernel hosts and ping reach a replica), and resolve peers' MAC addresses, statically from
 * config or by ARP. Never touches Ordo messages. */
#ifndef ORDO_DRIVERS_NET_NET_LOCAL_H
#define ORDO_DRIVERS_NET_NET_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "engine/api.h"
#include "engine/frame.h"

#define NET_LOCAL_ARP_MAX 32 /* peers (and gateways) whose MAC we keep */

enum net_arp_state {
    NET_ARP_FREE = 0,
    NET_ARP_STATIC = 1,  /* from config: never overwritten by ARP */
    NET_ARP_PENDING = 2, /* wanted, not yet resolved: ARP requests go out */
    NET_ARP_LEARNED = 3, /* resolved by ARP */
};

struct net_arp_entry {
    uint32_t ip;   /* network byte order */
    uint8_t state; /* enum net_arp_state */
    struct rte_ether_addr mac;
    uint64_t asked_tsc; /* last ARP request sent (PENDING) */
};

/* Owned by the RX stage's lcore: handled frames update the table without locks. */
struct net_local {
    struct rte_ether_addr mac;
    uint32_t ip; /* network byte order */
    uint32_t n;
    struct net_arp_entry arp[NET_LOCAL_ARP_MAX];
};

/* Our address. Answers are built with software checksums (rare, small frames), so they
 * need no offload flags. Cannot fail. */
ORDO_API void net_local_init(struct net_local *l, const struct rte_ether_addr *mac, uint32_t ip);

/* Adds a peer: mac != NULL is static; mac == NULL asks ARP to resolve it. Re-adding an IP
 * updates it. Returns 0 or ORDO_ENOSPACE (table full). Start-up only. */
ORDO_API int net_local_peer_add(struct net_local *l, uint32_t ip, const struct rte_ether_addr *mac);

/* The MAC of ip: 0 and *out set, or ORDO_ENOTFOUND (unknown or still pending). */
ORDO_API int net_local_lookup(const struct net_local *l, uint32_t ip, struct rte_ether_addr *out);

/* Handles one ARP or ICMP echo frame m that frame_parse described as fi (fi->kind ARP or
 * ICMP_ECHO). Learns MACs of pending or learned peers from any ARP. When m deserves an
 * answer (ARP request for our IP, echo request to our IP) it rewrites m in place into the
 * answer and returns 1: the caller then sends m. Otherwise returns 0 and m is untouched
 * (the caller frees it). Counts arp_requests, arp_replies, arp_learned, icmp_echo.
 * Data path; no allocation. */
ORDO_API int net_local_handle(struct net_local *l, struct rte_mbuf *m, const struct frame_info *fi);

/* Builds ARP requests for pending peers last asked more than interval_tsc ago, taking mbufs
 * from pool, into out (at most n). Returns how many were built; the caller sends them. */
ORDO_API uint16_t net_local_arp_poll(struct net_local *l, struct rte_mempool *pool,
                                     uint64_t now_tsc, uint64_t interval_tsc, struct rte_mbuf **out,
                                     uint16_t n);

#endif
