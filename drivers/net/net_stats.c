/* Per-lcore packet counters and their telemetry endpoint. Reading never blocks writers. */
#include "drivers/net/net_stats.h"

#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "drivers/net/net.h"
#include "drivers/net/net_fault.h"
#include "engine/err.h"
#include "engine/ordo_assert.h"

struct net_stats_slot net_stats_slots[RTE_MAX_LCORE + 1];

static uint16_t net_stats_port_id = UINT16_MAX;

static const char *const net_stats_names[NET_CTR_COUNT] = {
    [NET_CTR_RX_PACKETS] = "rx_packets",
    [NET_CTR_RX_BYTES] = "rx_bytes",
    [NET_CTR_TX_PACKETS] = "tx_packets",
    [NET_CTR_TX_BYTES] = "tx_bytes",
    [NET_CTR_TX_DROPS] = "tx_drops",
    [NET_CTR_RX_IGNORED] = "rx_ignored",
    [NET_CTR_MALFORMED_FRAME] = "malformed_frame",
    [NET_CTR_MALFORMED_CSUM] = "malformed_checksum",
    [NET_CTR_MALFORMED_TRUNC] = "malformed_truncated",
    [NET_CTR_MALFORMED_BIG] = "malformed_too_big",
    [NET_CTR_MALFORMED_MAGIC] = "malformed_magic",
    [NET_CTR_MALFORMED_VERSION] = "malformed_version",
    [NET_CTR_MALFORMED_TYPE] = "malformed_type",
    [NET_CTR_MALFORMED_CLUSTER] = "malformed_cluster",
    [NET_CTR_MALFORMED_OTHER] = "malformed_other",
    [NET_CTR_MAC_FAILURES] = "mac_failures",
    [NET_CTR_UNAUTHORIZED] = "unauthorized",
    [NET_CTR_PEER_DROPS] = "peer_drops",
    [NET_CTR_ARP_REQUESTS] = "arp_requests",
    [NET_CTR_ARP_REPLIES] = "arp_replies",
    [NET_CTR_ARP_LEARNED] = "arp_learned",
    [NET_CTR_ICMP_ECHO] = "icmp_echo",
    [NET_CTR_PROBES] = "probes",
    [NET_CTR_REQUESTS] = "requests",
    [NET_CTR_REPLIES] = "replies",
    [NET_CTR_RING_FULL] = "ring_full",
    [NET_CTR_APPLY_ERRORS] = "apply_errors",
    [NET_CTR_FAULT_DROPS] = "fault_drops",
    [NET_CTR_FAULT_DUPS] = "fault_dups",
    [NET_CTR_FAULT_REORDERS] = "fault_reorders",
    [NET_CTR_FAULT_DELAYED] = "fault_delayed",
    [NET_CTR_FAULT_OVERFLOW] = "fault_overflow",
    [NET_CTR_MULTI_REQUESTS] = "multi_requests",
    [NET_CTR_MULTI_REJECTED] = "multi_rejected",
    [NET_CTR_MULTI_REPLIES] = "multi_replies",
};

uint64_t net_stats_get(enum net_ctr c)
{
    ORDO_ASSERT((unsigned)c < NET_CTR_COUNT);
    uint64_t sum = 0;
    for (unsigned i = 0; i <= RTE_MAX_LCORE; i++) {
        sum += __atomic_load_n(&net_stats_slots[i].c[c], __ATOMIC_RELAXED);
    }
    return sum;
}

uint64_t net_stats_malformed(void)
{
    uint64_t sum = 0;
    for (int c = NET_CTR_MALFORMED_FRAME; c <= NET_CTR_MALFORMED_OTHER; c++) {
        sum += net_stats_get((enum net_ctr)c);
    }
    return sum;
}

const char *net_stats_name(enum net_ctr c)
{
    if ((unsigned)c >= NET_CTR_COUNT || net_stats_names[c] == NULL) {
        return "unknown";
    }
    return net_stats_names[c];
}

void net_stats_reset(void)
{
    memset(net_stats_slots, 0, sizeof(net_stats_slots));
}

enum net_ctr net_stats_malformed_ctr(int err)
{
    switch (err) {
    case ORDO_ECHECKSUM:
        return NET_CTR_MALFORMED_CSUM;
    case ORDO_ETRUNCATED:
        return NET_CTR_MALFORMED_TRUNC;
    case ORDO_ETOOBIG:
        return NET_CTR_MALFORMED_BIG;
    case ORDO_EBADMAGIC:
        return NET_CTR_MALFORMED_MAGIC;
    case ORDO_EVERSION:
        return NET_CTR_MALFORMED_VERSION;
    case ORDO_EBADTYPE:
        return NET_CTR_MALFORMED_TYPE;
    case ORDO_ECLUSTER:
        return NET_CTR_MALFORMED_CLUSTER;
    case ORDO_EBADMAC:
        return NET_CTR_MAC_FAILURES;
    case ORDO_EMALFORMED:
        return NET_CTR_MALFORMED_FRAME;
    default:
        return NET_CTR_MALFORMED_OTHER;
    }
}

static int net_stats_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    for (int c = 0; c < NET_CTR_COUNT; c++) {
        rte_tel_data_add_dict_u64(d, net_stats_names[c], net_stats_get((enum net_ctr)c));
    }
    rte_tel_data_add_dict_u64(d, "malformed", net_stats_malformed());
    return 0;
}

static int net_stats_port_cmd(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    struct rte_eth_stats s;
    if (net_stats_port_id == UINT16_MAX || rte_eth_stats_get(net_stats_port_id, &s) != 0) {
        return -ENODEV;
    }
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "port_id", net_stats_port_id);
    rte_tel_data_add_dict_u64(d, "ipackets", s.ipackets);
    rte_tel_data_add_dict_u64(d, "opackets", s.opackets);
    rte_tel_data_add_dict_u64(d, "imissed", s.imissed);
    rte_tel_data_add_dict_u64(d, "ierrors", s.ierrors);
    rte_tel_data_add_dict_u64(d, "oerrors", s.oerrors);
    rte_tel_data_add_dict_u64(d, "rx_nombuf", s.rx_nombuf);
    /* net_af_packet's imissed is always 0: the kernel counts its RX ring drops itself. */
    struct net_sock_stats k;
    if (net_port_sock_stats(net_stats_port_id, &k) == 0) {
        rte_tel_data_add_dict_u64(d, "sock_packets", k.packets);
        rte_tel_data_add_dict_u64(d, "sock_drops", k.drops);
    }
    return 0;
}

int net_stats_telemetry_register(uint16_t port_id)
{
    static int registered;
    net_stats_port_id = port_id;
    if (registered) {
        return 0;
    }
    int rc = rte_telemetry_register_cmd("/ordo/stats", net_stats_cmd,
                                        "Ordo replica packet counters. No parameters");
    if (rc != 0) {
        return rc;
    }
    rc = rte_telemetry_register_cmd("/ordo/port", net_stats_port_cmd,
                                    "Ethdev counters of the replica's port. No parameters");
    if (rc != 0) {
        return rc;
    }
    rc = net_fault_telemetry_register();
    if (rc != 0) {
        return rc;
    }
    registered = 1;
    return 0;
}
