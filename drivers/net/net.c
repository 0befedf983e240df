/* EAL start-up and port bring-up for any PMD. Runs at start-up and shutdown only, except
 * net_tx and net_tx_csum_offload, which are data path and never allocate. */
#include "drivers/net/net.h"

#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_log.h>

#include "engine/ordo_assert.h"

#define NET_TX_RETRIES 4
#define NET_TX_FAULT_BURST 32
#define NET_SOCK_FDS_MAX 16

static_assert(NET_FAULT_QUEUES_MAX == NET_QUEUES_MAX, "fault state covers every queue");
#define NET_LINK_POLL_MS 10
#define NET_AF_XDP_CHUNK 4096u
/* XDP_PACKET_HEADROOM (linux/bpf.h): what AF_XDP's RX reserves in front of every frame it
 * writes into a umem chunk, on top of the PMD's headroom (mbuf header and RTE headroom). */
#define NET_XDP_HEADROOM 256u

static int net_logtype = -1;

#define NET_LOG(level, ...)                                                                        \
    rte_log(RTE_LOG_##level, (uint32_t)net_logtype, "ordo.net: " __VA_ARGS__)

int net_eal_init(int argc, char **argv, struct ordo_errmsg *e)
{
    if (rte_eal_init(argc, argv) < 0) {
        int err = rte_errno;
        ordo_errmsg_set(e, "EAL init: %s", rte_strerror(err));
        return -(err != 0 ? err : EINVAL);
    }
    net_logtype = rte_log_register_type_and_pick_level("ordo.net", RTE_LOG_INFO);
    if (net_logtype < 0) {
        net_logtype = RTE_LOGTYPE_USER1;
    }
    return 0;
}

static int net_pick_port(const struct net_conf *c, uint16_t *port_id, struct ordo_errmsg *e)
{
    if (c->port_id != NET_PORT_ANY) {
        if (!rte_eth_dev_is_valid_port(c->port_id)) {
            ordo_errmsg_set(e, "port %u: no such DPDK port (%u available)", c->port_id,
                            rte_eth_dev_count_avail());
            return -ENODEV;
        }
        *port_id = c->port_id;
        return 0;
    }
    if (c->port_name != NULL && c->port_name[0] != '\0') {
        if (rte_eth_dev_get_port_by_name(c->port_name, port_id) != 0) {
            ordo_errmsg_set(e, "port \"%s\": no such DPDK port (check the EAL --vdev/-a args)",
                            c->port_name);
            return -ENODEV;
        }
        return 0;
    }
    /* RTE_ETH_FOREACH_DEV's first step, spelled out: the macro trips -Wconversion. */
    uint64_t next = rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER);
    if (next < RTE_MAX_ETHPORTS) {
        *port_id = (uint16_t)next;
        return 0;
    }
    ordo_errmsg_set(e, "no DPDK port: the EAL args need a --vdev (net_af_xdp, net_af_packet) "
                       "or an allowed PCI NIC (-a)");
    return -ENODEV;
}

static bool net_is_af_xdp(uint16_t port_id)
{
    struct rte_eth_dev_info info;
    return rte_eth_dev_info_get(port_id, &info) == 0 && strcmp(info.driver_name, "net_af_xdp") == 0;
}

/* The mbuf object (header, struct rte_mbuf, private area, data room) of a net_af_xdp pool
 * for frames of frame_len bytes; the data room includes the kernel's XDP headroom. */
static uint32_t net_af_xdp_obj_size(uint16_t priv_size, uint32_t frame_len)
{
    uint32_t elt =
        (uint32_t)sizeof(struct rte_mbuf) + priv_size + net_data_room((uint16_t)frame_len, true);
    return rte_mempool_calc_obj_size(elt, 0, NULL);
}

uint16_t net_af_xdp_frame_max(uint16_t priv_size)
{
    uint32_t len = NET_AF_XDP_CHUNK;
    while (len > 0 && net_af_xdp_obj_size(priv_size, len) > NET_AF_XDP_CHUNK) {
        len--;
    }
    return (uint16_t)len;
}

/* net_af_xdp registers the pool as its UMEM: every mbuf must fit one page-sized chunk, or
 * queue setup fails obscurely. A frame the kernel cannot place in a chunk is dropped on
 * receive without a trace but the PMD's imissed, so frame_len_max must fit after the
 * kernel's headroom, not merely the mbuf (docs/benchmarks.md, "af_xdp peer_mtu 3000"). */
static int net_check_af_xdp(const struct net_port *p, const struct net_conf *c,
                            struct ordo_errmsg *e)
{
    uint32_t obj = net_af_xdp_obj_size(c->mbuf_priv_size, c->frame_len_max);
    if (obj > NET_AF_XDP_CHUNK) {
        ordo_errmsg_set(e,
                        "port %u (net_af_xdp): frames of %u bytes need mbufs of %u bytes "
                        "(kernel XDP headroom included), over the %u-byte AF_XDP chunk; at most "
                        "%u-byte frames fit (lower [replica] peer_mtu or [cluster] value_max)",
                        p->port_id, c->frame_len_max, obj, NET_AF_XDP_CHUNK,
                        net_af_xdp_frame_max(c->mbuf_priv_size));
        return -EINVAL;
    }
    return 0;
}

uint32_t net_data_room(uint16_t frame_len_max, bool af_xdp)
{
    /* AF_XDP's RX writes a frame after XDP_PACKET_HEADROOM, past the PMD's own headroom. */
    return (uint32_t)frame_len_max + RTE_PKTMBUF_HEADROOM + (af_xdp ? NET_XDP_HEADROOM : 0u);
}

static int net_create_pool(struct net_port *p, const struct net_conf *c, struct ordo_errmsg *e)
{
    char name[RTE_MEMPOOL_NAMESIZE];
    bool af_xdp = net_is_af_xdp(p->port_id);
    uint32_t room = net_data_room(c->frame_len_max, af_xdp);
    if (c->frame_len_max < RTE_ETHER_MIN_LEN || room > UINT16_MAX || c->mbufs == 0) {
        ordo_errmsg_set(e, "port %u: frame_len_max %u or mbufs %u out of range", p->port_id,
                        c->frame_len_max, c->mbufs);
        return -EINVAL;
    }
    if (af_xdp) {
        int rc = net_check_af_xdp(p, c, e);
        if (rc != 0) {
            return rc;
        }
    }
    snprintf(name, sizeof(name), "ordo_mb_%u", p->port_id);
    int socket = rte_eth_dev_socket_id(p->port_id);
    p->pool = rte_pktmbuf_pool_create(name, c->mbufs, c->mbuf_cache, c->mbuf_priv_size,
                                      (uint16_t)room, socket < 0 ? SOCKET_ID_ANY : socket);
    if (p->pool == NULL) {
        ordo_errmsg_set(e, "port %u: mbuf pool of %u x %u bytes: %s", p->port_id, c->mbufs, room,
                        rte_strerror(rte_errno));
        return -(rte_errno != 0 ? rte_errno : ENOMEM);
    }
    return 0;
}

/* Fills eth_conf with what the PMD offers: RSS over IPv4/UDP for several queues, and
 * IPv4/UDP checksum offloads. Anything missing falls back to software (frame.h). */
static void net_offloads(struct net_port *p, const struct rte_eth_dev_info *info,
                         struct rte_eth_conf *ec)
{
    const uint64_t rx_cs = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    const uint64_t tx_cs = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    uint64_t rss_hf =
        info->flow_type_rss_offloads & (RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV4);
    memset(ec, 0, sizeof(*ec));
    if (p->rx_queues > 1 && rss_hf != 0) {
        ec->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        ec->rx_adv_conf.rss_conf.rss_hf = rss_hf;
        p->rss = true;
    } else if (p->rx_queues > 1) {
        /* No RSS in the PMD, but net_af_packet (fanout) and net_af_xdp (the kernel NIC's
         * queues) spread flows themselves: keep every queue, the RX stage polls them all. */
        NET_LOG(NOTICE, "port %u (%s): %u RX queues without PMD RSS\n", p->port_id, p->driver,
                p->rx_queues);
    }
    if ((info->rx_offload_capa & rx_cs) == rx_cs) {
        ec->rxmode.offloads |= rx_cs;
        p->rx_csum_hw = true;
    }
    if ((info->tx_offload_capa & tx_cs) == tx_cs) {
        ec->txmode.offloads |= tx_cs;
        p->tx_csum_hw = true;
    }
}

static int net_fail(struct ordo_errmsg *e, const struct net_port *p, const char *step, int rc)
{
    ordo_errmsg_set(e, "port %u (%s): %s: %s", p->port_id, p->driver, step,
                    rte_strerror(rc < 0 ? -rc : rc));
    return rc < 0 ? rc : -rc;
}

static int net_setup_queues(struct net_port *p, const struct net_conf *c, struct ordo_errmsg *e)
{
    uint16_t nb_rx = c->rx_desc != 0 ? c->rx_desc : 1024;
    uint16_t nb_tx = c->tx_desc != 0 ? c->tx_desc : 1024;
    int rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nb_rx, &nb_tx);
    if (rc != 0) {
        return net_fail(e, p, "adjusting descriptor counts", rc);
    }
    int socket = rte_eth_dev_socket_id(p->port_id);
    unsigned sock = socket < 0 ? (unsigned)SOCKET_ID_ANY : (unsigned)socket;
    for (uint16_t q = 0; q < p->rx_queues; q++) {
        rc = rte_eth_rx_queue_setup(p->port_id, q, nb_rx, sock, NULL, p->pool);
        if (rc != 0) {
            return net_fail(e, p, "RX queue setup", rc);
        }
    }
    for (uint16_t q = 0; q < p->tx_queues; q++) {
        rc = rte_eth_tx_queue_setup(p->port_id, q, nb_tx, sock, NULL);
        if (rc != 0) {
            return net_fail(e, p, "TX queue setup", rc);
        }
    }
    return 0;
}

/* A configured MAC that the PMD cannot take (af_packet, af_xdp) is still used in software;
 * the port then needs promiscuous mode to see frames sent to it. */
static void net_set_mac(struct net_port *p, const struct net_conf *c)
{
    if (c->mac_set && !rte_is_same_ether_addr(&c->mac, &p->mac)) {
        struct rte_ether_addr mac = c->mac;
        if (rte_eth_dev_default_mac_addr_set(p->port_id, &mac) != 0) {
            NET_LOG(WARNING, "port %u: cannot set MAC, filtering in software\n", p->port_id);
            (void)rte_eth_promiscuous_enable(p->port_id);
        }
        p->mac = c->mac;
    }
}

static void net_wait_link(const struct net_port *p, uint32_t wait_ms)
{
    struct rte_eth_link link;
    memset(&link, 0, sizeof(link));
    for (uint32_t waited = 0; waited <= wait_ms; waited += NET_LINK_POLL_MS) {
        if (rte_eth_link_get_nowait(p->port_id, &link) == 0 &&
            link.link_status == RTE_ETH_LINK_UP) {
            NET_LOG(INFO, "port %u (%s): link up, %u Mbps\n", p->port_id, p->driver,
                    link.link_speed);
            return;
        }
        rte_delay_ms(NET_LINK_POLL_MS);
    }
    NET_LOG(WARNING, "port %u (%s): link still down after %u ms\n", p->port_id, p->driver, wait_ms);
}

static int net_configure(struct net_port *p, const struct net_conf *c, struct ordo_errmsg *e)
{
    struct rte_eth_dev_info info;
    struct rte_eth_conf ec;
    int rc = rte_eth_dev_info_get(p->port_id, &info);
    if (rc != 0) {
        return net_fail(e, p, "reading device info", rc);
    }
    snprintf(p->driver, sizeof(p->driver), "%s", info.driver_name);
    p->rx_queues = (uint16_t)RTE_MIN(RTE_MAX(c->rx_queues, 1), info.max_rx_queues);
    p->tx_queues = (uint16_t)RTE_MIN(RTE_MAX(c->tx_queues, 1), info.max_tx_queues);
    net_offloads(p, &info, &ec);
    rc = rte_eth_dev_configure(p->port_id, p->rx_queues, p->tx_queues, &ec);
    if (rc != 0) {
        return net_fail(e, p, "configure", rc);
    }
    uint32_t mtu = (uint32_t)c->frame_len_max - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN;
    if (mtu > RTE_ETHER_MTU && mtu <= info.max_mtu) {
        rc = rte_eth_dev_set_mtu(p->port_id, (uint16_t)mtu);
        if (rc != 0) {
            NET_LOG(WARNING, "port %u: MTU %u: %s\n", p->port_id, mtu, rte_strerror(-rc));
        }
    }
    rc = rte_eth_macaddr_get(p->port_id, &p->mac);
    if (rc != 0) {
        return net_fail(e, p, "reading MAC", rc);
    }
    return net_setup_queues(p, c, e);
}

int net_port_open(struct net_port *p, const struct net_conf *c, struct ordo_errmsg *e)
{
    memset(p, 0, sizeof(*p));
    p->port_id = NET_PORT_ANY;
    uint16_t pid;
    int rc = net_pick_port(c, &pid, e);
    if (rc != 0) {
        return rc;
    }
    p->port_id = pid;
    (void)rte_eth_dev_get_name_by_port(pid, p->name);
    rc = net_create_pool(p, c, e);
    if (rc != 0) {
        goto fail_port;
    }
    rc = net_configure(p, c, e);
    if (rc != 0) {
        goto fail_pool;
    }
    rc = rte_eth_dev_start(pid);
    if (rc != 0) {
        rc = net_fail(e, p, "start", rc);
        goto fail_pool;
    }
    p->started = true;
    net_set_mac(p, c);
    net_wait_link(p, c->link_wait_ms);
    NET_LOG(INFO, "port %u (%s, %s): %u RX queues%s, %u TX queues, checksum offload rx %s tx %s\n",
            pid, p->name, p->driver, p->rx_queues, p->rss ? " (RSS)" : "", p->tx_queues,
            p->rx_csum_hw ? "on" : "off", p->tx_csum_hw ? "on" : "off");
    return 0;

fail_pool:
    rte_mempool_free(p->pool);
    p->pool = NULL;
fail_port:
    (void)rte_eth_dev_close(pid);
    p->port_id = NET_PORT_ANY;
    return rc;
}

void net_port_close(struct net_port *p)
{
    if (p->port_id == NET_PORT_ANY) {
        return;
    }
    if (p->started) {
        (void)rte_eth_dev_stop(p->port_id);
        p->started = false;
    }
    (void)rte_eth_dev_close(p->port_id);
    p->port_id = NET_PORT_ANY;
    /* Close first: the PMD may still hold mbufs of this pool in its rings. */
    rte_mempool_free(p->pool);
    p->pool = NULL;
}

#ifndef AF_XDP
#define AF_XDP 44
#endif

/* True when fd is a socket that carries this port's frames: AF_XDP (only PMDs open those), or
 * AF_PACKET bound to the port's interface (any interface when the PMD reports none). */
static bool net_port_fd_is_ours(int fd, unsigned if_index)
{
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
        return false;
    }
    if (domain == AF_XDP) {
        return true;
    }
    if (domain != AF_PACKET) {
        return false;
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    len = sizeof(sll);
    if (getsockname(fd, (struct sockaddr *)&sll, &len) != 0) {
        return false;
    }
    return if_index == 0 || (unsigned)sll.sll_ifindex == if_index;
}

/* The sockets of port port_id (see net_port_wait_fds). */
static uint32_t net_port_fds(uint16_t port_id, int *fds, uint32_t max)
{
    struct rte_eth_dev_info info;
    unsigned if_index = 0;
    if (port_id != NET_PORT_ANY && rte_eth_dev_info_get(port_id, &info) == 0) {
        if_index = info.if_index;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    uint32_t n = 0;
    struct dirent *de;
    /* Bounded by the process's open descriptors. */
    while (n < max && (de = readdir(d)) != NULL) {
        char *end = NULL;
        long fd = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != '\0' || fd < 0 || fd == dirfd(d)) {
            continue;
        }
        if (net_port_fd_is_ours((int)fd, if_index)) {
            fds[n++] = (int)fd;
        }
    }
    closedir(d);
    return n;
}

uint32_t net_port_wait_fds(const struct net_port *p, int *fds, uint32_t max)
{
    return net_port_fds(p->port_id, fds, max);
}

/* Running totals per port: PACKET_STATISTICS clears the kernel's counters on every read. */
static uint64_t net_sock_totals[RTE_MAX_ETHPORTS][2];

int net_port_sock_stats(uint16_t port_id, struct net_sock_stats *s)
{
    if (port_id >= RTE_MAX_ETHPORTS) {
        return -ENODEV;
    }
    int fds[NET_SOCK_FDS_MAX];
    uint32_t n = net_port_fds(port_id, fds, NET_SOCK_FDS_MAX);
    for (uint32_t i = 0; i < n; i++) {
        struct tpacket_stats st;
        socklen_t len = sizeof(st);
        memset(&st, 0, sizeof(st));
        if (getsockopt(fds[i], SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) {
            continue; /* AF_XDP: its PMD reports XDP_STATISTICS as imissed itself */
        }
        __atomic_fetch_add(&net_sock_totals[port_id][0], st.tp_packets, __ATOMIC_RELAXED);
        __atomic_fetch_add(&net_sock_totals[port_id][1], st.tp_drops, __ATOMIC_RELAXED);
    }
    s->sockets = n;
    s->packets = __atomic_load_n(&net_sock_totals[port_id][0], __ATOMIC_RELAXED);
    s->drops = __atomic_load_n(&net_sock_totals[port_id][1], __ATOMIC_RELAXED);
    return 0;
}

static uint16_t net_tx_now(const struct net_port *p, uint16_t q, struct rte_mbuf **m, uint16_t n)
{
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; i++) {
        bytes += m[i]->pkt_len;
    }
    /* Some NICs need their own fix-ups for checksum offload (rte_eth_tx_prepare); it stops
     * at the first frame it refuses, which is then dropped like frames the queue refuses. */
    uint16_t ready = p->tx_csum_hw ? rte_eth_tx_prepare(p->port_id, q, m, n) : n;
    uint16_t sent = 0;
    for (int tries = 0; tries < NET_TX_RETRIES && sent < ready; tries++) {
        sent =
            (uint16_t)(sent + rte_eth_tx_burst(p->port_id, q, m + sent, (uint16_t)(ready - sent)));
    }
    for (uint16_t i = sent; i < n; i++) {
        bytes -= m[i]->pkt_len;
        rte_pktmbuf_free(m[i]);
    }
    net_stats_add(NET_CTR_TX_PACKETS, sent);
    net_stats_add(NET_CTR_TX_BYTES, bytes);
    if (sent < n) {
        net_stats_add(NET_CTR_TX_DROPS, (uint64_t)(n - sent));
    }
    return sent;
}

/* The fault injector's TX path: frames enter its hold queue, and whatever is due leaves now. */
static uint16_t net_tx_fault(const struct net_port *p, uint16_t q, struct rte_mbuf **m, uint16_t n)
{
    struct rte_mbuf *due[NET_TX_FAULT_BURST];
    uint16_t sent = 0;
    net_fault_tx_take(q, m, n);
    for (;;) {
        uint16_t k = net_fault_tx_due(q, due, NET_TX_FAULT_BURST);
        if (k == 0) {
            return sent;
        }
        sent = (uint16_t)(sent + net_tx_now(p, q, due, k));
    }
}

uint16_t net_tx(const struct net_port *p, uint16_t q, struct rte_mbuf **m, uint16_t n)
{
    if (net_fault_is_armed()) {
        return net_tx_fault(p, q, m, n);
    }
    return net_tx_now(p, q, m, n);
}

void net_tx_csum_offload(struct rte_mbuf *m)
{
    m->l2_len = RTE_ETHER_HDR_LEN;
    m->l3_len = sizeof(struct rte_ipv4_hdr);
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
}
