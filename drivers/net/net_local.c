/* ARP and ICMP echo answers and the peer MAC table. Data path: rewrites mbufs in place,
 * never allocates (ARP requests take mbufs from the port's pool). */
#include "drivers/net/net_local.h"

#include <string.h>

#include "drivers/net/net_stats.h"
#include "engine/err.h"
#include "engine/ordo_assert.h"

void net_local_init(struct net_local *l, const struct rte_ether_addr *mac, uint32_t ip)
{
    memset(l, 0, sizeof(*l));
    l->mac = *mac;
    l->ip = ip;
}

static struct net_arp_entry *net_local_find(struct net_local *l, uint32_t ip)
{
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->arp[i].ip == ip) {
            return &l->arp[i];
        }
    }
    return NULL;
}

int net_local_peer_add(struct net_local *l, uint32_t ip, const struct rte_ether_addr *mac)
{
    struct net_arp_entry *a = net_local_find(l, ip);
    if (a == NULL) {
        if (l->n >= NET_LOCAL_ARP_MAX) {
            return ORDO_ENOSPACE;
        }
        a = &l->arp[l->n++];
        memset(a, 0, sizeof(*a));
        a->ip = ip;
    }
    if (mac != NULL) {
        a->mac = *mac;
        a->state = NET_ARP_STATIC;
    } else {
        a->state = NET_ARP_PENDING;
        a->asked_tsc = 0;
    }
    return 0;
}

int net_local_lookup(const struct net_local *l, uint32_t ip, struct rte_ether_addr *out)
{
    for (uint32_t i = 0; i < l->n; i++) {
        const struct net_arp_entry *a = &l->arp[i];
        if (a->ip == ip && (a->state == NET_ARP_STATIC || a->state == NET_ARP_LEARNED)) {
            *out = a->mac;
            return 0;
        }
    }
    return ORDO_ENOTFOUND;
}

/* Any ARP from a peer we want (request or reply) tells us its MAC. Static entries stay. */
static void net_local_learn(struct net_local *l, const struct frame_info *fi)
{
    struct net_arp_entry *a = net_local_find(l, fi->src_ip);
    if (a == NULL || a->state == NET_ARP_STATIC) {
        return;
    }
    if (a->state == NET_ARP_PENDING || memcmp(&a->mac, fi->arp_sha, FRAME_MAC_LEN) != 0) {
        memcpy(&a->mac, fi->arp_sha, FRAME_MAC_LEN);
        a->state = NET_ARP_LEARNED;
        net_stats_inc(NET_CTR_ARP_LEARNED);
    }
}

static int net_local_arp(struct net_local *l, struct rte_mbuf *m, const struct frame_info *fi)
{
    net_local_learn(l, fi);
    if (fi->arp_op != FRAME_ARP_OP_REQUEST || fi->dst_ip != l->ip) {
        return 0;
    }
    net_stats_inc(NET_CTR_ARP_REQUESTS);
    uint8_t reply[FRAME_ETH_MIN_LEN];
    int len = frame_arp_reply(fi, l->mac.addr_bytes, l->ip, reply, sizeof(reply));
    if (len < 0 || (uint32_t)len > (uint32_t)(m->buf_len - m->data_off)) {
        return 0;
    }
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), reply, (size_t)len);
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    m->ol_flags = 0;
    net_stats_inc(NET_CTR_ARP_REPLIES);
    return 1;
}

static int net_local_icmp(struct net_local *l, struct rte_mbuf *m, const struct frame_info *fi)
{
    if (fi->dst_ip != l->ip) {
        return 0;
    }
    uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
    size_t cap = (size_t)(m->buf_len - m->data_off);
    int len = frame_icmp_echo_reply(buf, m->data_len, fi, buf, cap, 0);
    if (len < 0) {
        return 0;
    }
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    m->ol_flags = 0;
    net_stats_inc(NET_CTR_ICMP_ECHO);
    return 1;
}

int net_local_handle(struct net_local *l, struct rte_mbuf *m, const struct frame_info *fi)
{
    ORDO_ASSERT(m->nb_segs == 1);
    if (fi->kind == FRAME_KIND_ARP) {
        return net_local_arp(l, m, fi);
    }
    if (fi->kind == FRAME_KIND_ICMP_ECHO) {
        return net_local_icmp(l, m, fi);
    }
    return 0;
}

uint16_t net_local_arp_poll(struct net_local *l, struct rte_mempool *pool, uint64_t now_tsc,
                            uint64_t interval_tsc, struct rte_mbuf **out, uint16_t n)
{
    uint16_t built = 0;
    for (uint32_t i = 0; i < l->n && built < n; i++) {
        struct net_arp_entry *a = &l->arp[i];
        if (a->state != NET_ARP_PENDING ||
            (a->asked_tsc != 0 && now_tsc - a->asked_tsc < interval_tsc)) {
            continue;
        }
        struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
        if (m == NULL) {
            break;
        }
        uint8_t *buf = (uint8_t *)rte_pktmbuf_append(m, FRAME_ETH_MIN_LEN);
        int len = buf == NULL ? -1
                              : frame_build_arp(buf, FRAME_ETH_MIN_LEN, FRAME_ARP_OP_REQUEST,
                                                l->mac.addr_bytes, l->ip, NULL, a->ip);
        if (len < 0) {
            rte_pktmbuf_free(m);
            break;
        }
        a->asked_tsc = now_tsc;
        out[built++] = m;
    }
    return built;
}
