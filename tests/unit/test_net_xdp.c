/* net_af_xdp frame budget: a frame the port accepts must also fit where the kernel writes it
 * in a 4 KiB umem chunk (after its XDP headroom), and conf's peer_mtu bound must be one the
 * runtime's port can carry. Pure computations: no EAL, no port. */
#include <criterion/criterion.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "drivers/net/net.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/rt.h"

#define XDP_CHUNK 4096u
#define KERNEL_XDP_HEADROOM 256u /* XDP_PACKET_HEADROOM, linux/bpf.h */

static uint16_t rt_priv(void)
{
    return (uint16_t)RTE_ALIGN(sizeof(struct rt_meta), RTE_MBUF_PRIV_ALIGN);
}

/* The largest frame the kernel's AF_XDP RX copies into a chunk of the PMD's umem: the chunk is
 * one mempool object; the PMD declares the mbuf header, private area and RTE headroom as umem
 * headroom, and the kernel adds XDP_PACKET_HEADROOM before the frame. */
static uint32_t kernel_rx_max(uint16_t priv, uint32_t room)
{
    struct rte_mempool_objsz sz;
    uint32_t elt = (uint32_t)sizeof(struct rte_mbuf) + priv + room;
    uint32_t chunk = rte_mempool_calc_obj_size(elt, 0, &sz);
    uint32_t umem_headroom =
        sz.header_size + (uint32_t)sizeof(struct rte_mbuf) + priv + RTE_PKTMBUF_HEADROOM;
    return chunk - KERNEL_XDP_HEADROOM - umem_headroom;
}

/* The bug behind the af_xdp peer_mtu 3000 wedge: frames of frame_len_max bytes were accepted
 * by the pool but dropped by the kernel when longer than frame_len_max - 256. */
Test(net_xdp, af_xdp_pool_receives_frames_of_frame_len_max)
{
    /* 1500 MTU, the veth harness's af_xdp value_max 1024 (rt_frame_len_max), peer_mtu 3000. */
    const uint16_t lens[] = {1518, 2428, 3018, net_af_xdp_frame_max(rt_priv())};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint32_t room = net_data_room(lens[i], true);
        cr_assert_geq(kernel_rx_max(rt_priv(), room), lens[i], "frame_len_max %u", lens[i]);
    }
}

Test(net_xdp, other_pmds_keep_the_plain_headroom)
{
    cr_assert_eq(net_data_room(3018, false), 3018u + RTE_PKTMBUF_HEADROOM);
    cr_assert_eq(net_data_room(3018, true), 3018u + RTE_PKTMBUF_HEADROOM + KERNEL_XDP_HEADROOM);
}

Test(net_xdp, frame_max_is_the_largest_mbuf_in_one_chunk)
{
    uint16_t priv = rt_priv();
    uint16_t max = net_af_xdp_frame_max(priv);
    uint32_t elt = (uint32_t)sizeof(struct rte_mbuf) + priv;
    cr_assert_leq(rte_mempool_calc_obj_size(elt + net_data_room(max, true), 0, NULL), XDP_CHUNK);
    cr_assert_gt(rte_mempool_calc_obj_size(elt + net_data_room((uint16_t)(max + 1), true), 0, NULL),
                 XDP_CHUNK);
    cr_assert_lt(net_af_xdp_frame_max((uint16_t)(priv + 128)), max, "a bigger area leaves less");
}

/* conf refuses a peer_mtu above CONF_AF_XDP_PEER_MTU_MAX on net_af_xdp; every value it lets
 * through must fit the runtime's port (Ethernet header and CRC on top of the IP MTU). */
Test(net_xdp, conf_peer_mtu_bound_fits_the_runtime_port)
{
    uint16_t max = net_af_xdp_frame_max(rt_priv());
    cr_log_info("rt_meta area %u bytes: frames up to %u, peer_mtu up to %u", rt_priv(), max,
                max - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN);
    cr_assert_geq(max, CONF_AF_XDP_PEER_MTU_MAX + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN);
}
