/* The data-path stages of one replica: RX (parse, check, answer ARP/ICMP, queue requests),
 * apply (state machine in ring order, build replies in the request's own mbuf) and TX.
 * No allocation here: frames stay in their mbufs from RX to TX. */
#include "engine/runtime/rt.h"

#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "drivers/net/net_fault.h"
#include "engine/frame.h"
#include "engine/msg.h"
#include "engine/ordo_assert.h"

static inline struct rt_meta *rt_meta_of(struct rte_mbuf *m)
{
    return (struct rt_meta *)rte_mbuf_to_priv(m);
}

static void rt_reply_addr(struct frame_udp_addr *a, const struct frame_info *fi)
{
    memcpy(a->src_mac, fi->dst_mac, FRAME_MAC_LEN);
    memcpy(a->dst_mac, fi->src_mac, FRAME_MAC_LEN);
    a->src_ip = fi->dst_ip;
    a->dst_ip = fi->src_ip;
    a->src_port = fi->dst_port;
    a->dst_port = fi->src_port;
}

/* Counts a rejected frame by its decode error and frees it. */
static void rt_drop(struct rte_mbuf *m, int err)
{
    net_stats_inc(net_stats_malformed_ctr(err));
    rte_pktmbuf_free(m);
}

static void rt_ignore(struct rte_mbuf *m, enum net_ctr c)
{
    net_stats_inc(c);
    rte_pktmbuf_free(m);
}

/* Client authentication: a MAC'd request must verify under its client's key; an
 * unauthenticated one must come from an allowed subnet. Returns 0 or the counter to bump. */
static int rt_client_auth(const struct rt *rt, const uint8_t *msg, uint32_t len,
                          const struct frame_info *fi, const struct msg *dm, struct rt_meta *meta)
{
    meta->has_key = 0;
    if ((dm->hdr.flags & MSG_HDR_MAC) == 0) {
        return conf_subnet_allows(rt->conf, fi->src_ip) ? 0 : NET_CTR_UNAUTHORIZED;
    }
    const uint8_t *key = conf_client_key(rt->conf, dm->u.request.client_id);
    if (key == NULL) {
        return NET_CTR_UNAUTHORIZED;
    }
    memcpy(meta->key.bytes, key, WIRE_KEY_LEN);
    if (wire_verify(msg, len, &meta->key) != 0) {
        return NET_CTR_MAC_FAILURES;
    }
    meta->has_key = 1;
    return 0;
}

/* A peer message (type >= 16) needs a valid cluster MAC. In replicated mode a verified one
 * goes to the Raft core (true); otherwise the frame is counted and freed (false). */
static bool rt_peer(const struct rt *rt, struct rte_mbuf *m, const uint8_t *msg, uint32_t len)
{
    int rc = wire_verify(msg, len, &rt->cluster_key);
    if (rc == 0 && rt->repl != NULL) {
        struct rt_meta *meta = rt_meta_of(m);
        meta->kind = RT_META_PEER;
        meta->payload_off = (uint16_t)(msg - rte_pktmbuf_mtod(m, const uint8_t *));
        meta->payload_len = len;
        return true;
    }
    rt_ignore(m, rc == 0 ? NET_CTR_PEER_DROPS : net_stats_malformed_ctr(rc));
    return false;
}

/* Requests the RX stage collected for the request ring. A multi-request frame can add up to
 * MSG_MULTI_MAX at once, so the array is flushed to the ring once it holds an RX burst: the
 * split copies in hand stay within rx_burst, as conf_mbufs_need counts them. */
struct rt_rx_out {
    struct rte_mbuf *req[RT_BURST_MAX];
    uint32_t nreq;
};

static void rt_rx_flush(struct rt *rt, struct rt_rx_out *o)
{
    net_stats_add(NET_CTR_REQUESTS, rt_enqueue(rt->req_ring, o->req, o->nreq));
    o->nreq = 0;
}

static void rt_rx_push(struct rt *rt, struct rt_rx_out *o, struct rte_mbuf *m)
{
    if (o->nreq >= rt->rx_burst) {
        rt_rx_flush(rt, o);
    }
    o->req[o->nreq++] = m;
}

/* Item `item` (raw bytes raw, raw_len) of a multi-request frame received in m, as its own
 * request in sub: sub == m for the frame's last item (the request borrows m's bytes, as a
 * single request does); any other sub is a fresh mbuf that gets a copy of the arguments.
 * Returns false (sub not queued; a fresh one is freed) when authentication fails. */
static bool rt_multi_item(const struct rt *rt, struct rte_mbuf *m, struct rte_mbuf *sub,
                          const struct frame_info *fi, const struct msg *item, const uint8_t *raw,
                          size_t raw_len)
{
    struct rt_meta *meta = rt_meta_of(sub);
    int bad = rt_client_auth(rt, raw, (uint32_t)raw_len, fi, item, meta);
    if (bad == 0 && sub != m &&
        item->u.request.args_len > (uint32_t)(sub->buf_len - sub->data_off)) {
        bad = NET_CTR_MALFORMED_BIG; /* cannot happen with one pool; never trusted */
    }
    if (bad != 0) {
        net_stats_inc((enum net_ctr)bad);
        if (sub != m) {
            rte_pktmbuf_free(sub);
        }
        return false;
    }
    meta->kind = RT_META_REQUEST;
    meta->multi = 1;
    meta->req = item->u.request;
    rt_reply_addr(&meta->reply_addr, fi);
    if (sub != m && meta->req.args_len != 0) {
        uint8_t *args = rte_pktmbuf_mtod(sub, uint8_t *);
        memcpy(args, item->u.request.args, meta->req.args_len);
        meta->req.args = args;
    }
    return true;
}

/* Splits a decoded multi-request frame into one request per item, in frame order. The
 * items but the last are copied out first: m itself is queued last, so the apply stage
 * (maybe another lcore) cannot build a reply over bytes still being copied. An item whose
 * mbuf cannot be had is dropped like a full ring (the client retries). */
static void rt_multi(struct rt *rt, struct rte_mbuf *m, const struct frame_info *fi,
                     const struct msg *dm, struct rt_rx_out *o)
{
    struct wire_multi_iter it;
    struct msg item;
    const uint8_t *raw;
    size_t raw_len;
    uint32_t left = dm->u.multi.n;
    bool m_used = false;
    net_stats_inc(NET_CTR_MULTI_REQUESTS);
    wire_multi_iter_init(&it, dm);
    while (left != 0 && wire_multi_next(&it, &item, &raw, &raw_len) == 1) {
        left--;
        struct rte_mbuf *sub = left == 0 ? m : rte_pktmbuf_alloc(rt->port.pool);
        if (sub == NULL) {
            net_stats_inc(NET_CTR_RING_FULL);
            continue;
        }
        if (rt_multi_item(rt, m, sub, fi, &item, raw, raw_len)) {
            rt_rx_push(rt, o, sub);
            m_used = m_used || sub == m;
        }
    }
    if (!m_used) {
        rte_pktmbuf_free(m);
    }
}

/* A multi-request frame (by its type byte, whatever check refused it) dropped whole: counted
 * in multi_rejected on top of its reason, so that counter covers every such drop. */
static void rt_multi_rejected(const uint8_t *msg, uint32_t len)
{
    if (len > 5 && msg[5] == MSG_CLIENT_MULTI_REQUEST) { /* magic u32, version u8, type u8 */
        net_stats_inc(NET_CTR_MULTI_REJECTED);
    }
}

/* An Ordo message on our UDP port: returns true when m became a queued request (or, with
 * meta kind RT_META_PEER, a peer message for the Raft core). A multi-request frame is
 * split into o here (false). */
static bool rt_ordo(struct rt *rt, struct rte_mbuf *m, const struct frame_info *fi,
                    struct rt_rx_out *o)
{
    const uint8_t *msg = fi->payload;
    uint32_t len = fi->payload_len;
    struct msg_header hdr;
    int rc = wire_peek_header(msg, len, &hdr);
    if (rc == 0) {
        rc = wire_check_cluster(msg, len, rt->conf->cluster.id);
    }
    if (rc != 0) {
        rt_multi_rejected(msg, len);
        rt_drop(m, rc);
        return false;
    }
    if (msg_type_is_peer(hdr.type)) {
        return rt_peer(rt, m, msg, len);
    }
    struct msg dm;
    rc = wire_decode(msg, len, &dm, NULL, 0);
    if (rc == 0 && dm.hdr.type == MSG_CLIENT_MULTI_REQUEST) {
        rt_multi(rt, m, fi, &dm, o);
        return false;
    }
    if (rc != 0 || dm.hdr.type != MSG_CLIENT_REQUEST) {
        rt_multi_rejected(msg, len); /* dropped whole: no item was queued */
        rt_drop(m, rc != 0 ? rc : ORDO_EBADTYPE);
        return false;
    }
    struct rt_meta *meta = rt_meta_of(m);
    int bad = rt_client_auth(rt, msg, len, fi, &dm, meta);
    if (bad != 0) {
        rt_ignore(m, (enum net_ctr)bad);
        return false;
    }
    meta->kind = RT_META_REQUEST;
    meta->multi = 0;
    meta->req = dm.u.request;
    rt_reply_addr(&meta->reply_addr, fi);
    return true;
}

static unsigned rt_rx_csum_flags(const struct rt *rt, const struct rte_mbuf *m, int *bad)
{
    unsigned flags = 0;
    *bad = 0;
    if ((rt->rx_csum_flags & FRAME_SKIP_IP_CSUM) != 0) {
        uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
        *bad |= ip == RTE_MBUF_F_RX_IP_CKSUM_BAD;
        flags |= ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD ? FRAME_SKIP_IP_CSUM : 0;
    }
    if ((rt->rx_csum_flags & FRAME_SKIP_UDP_CSUM) != 0) {
        uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
        *bad |= l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD;
        flags |= l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD ? FRAME_SKIP_UDP_CSUM : 0;
    }
    return flags;
}

enum rt_rx_verdict {
    RT_RX_DONE = 0,    /* freed or otherwise consumed */
    RT_RX_REQUEST = 1, /* goes to the request ring */
    RT_RX_ANSWER = 2,  /* rewritten into an ARP/ICMP answer: goes to the TX ring */
};

/* Byte compares: frame_info's MACs are plain byte arrays, not 2-byte aligned. */
static bool rt_for_us(const struct rt *rt, const struct frame_info *fi)
{
    static const uint8_t bcast[FRAME_MAC_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    bool to_us = memcmp(fi->dst_mac, rt->port.mac.addr_bytes, FRAME_MAC_LEN) == 0;
    if (fi->kind == FRAME_KIND_ARP) {
        return to_us || memcmp(fi->dst_mac, bcast, FRAME_MAC_LEN) == 0;
    }
    return to_us && fi->dst_ip == rt->self->ipv4;
}

static enum rt_rx_verdict rt_rx_one(struct rt *rt, struct rte_mbuf *m, struct rt_rx_out *o)
{
    struct frame_info fi;
    int bad;
    m->ol_flags &= ~rt->multi_flag; /* only rt_build_msg sets it */
    if (m->nb_segs != 1) {
        rt_drop(m, ORDO_ETOOBIG);
        return RT_RX_DONE;
    }
    unsigned flags = rt_rx_csum_flags(rt, m, &bad);
    int rc = bad ? ORDO_ECHECKSUM
                 : frame_parse(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, flags, &fi);
    if (rc < 0) {
        if (rc == ORDO_EBADTYPE) {
            rt_ignore(m, NET_CTR_RX_IGNORED); /* IPv6, LLDP, ...: not ours to judge */
        } else {
            rt_drop(m, rc);
        }
        return RT_RX_DONE;
    }
    if (!rt_for_us(rt, &fi)) {
        rt_ignore(m, NET_CTR_RX_IGNORED);
        return RT_RX_DONE;
    }
    if (fi.kind != FRAME_KIND_UDP) {
        if (net_local_handle(&rt->local, m, &fi) == 1) {
            return RT_RX_ANSWER;
        }
        rte_pktmbuf_free(m);
        return RT_RX_DONE;
    }
    uint16_t probe_port = rt->conf->cluster.probe_port;
    if (probe_port != 0 && fi.dst_port == probe_port &&
        frame_probe_match(fi.payload, fi.payload_len) == 1) {
        struct rt_meta *meta = rt_meta_of(m);
        meta->kind = RT_META_PROBE;
        meta->has_key = 0;
        net_stats_inc(NET_CTR_PROBES);
        return RT_RX_REQUEST;
    }
    if (fi.dst_port != rt->self->udp_port) {
        rt_ignore(m, NET_CTR_RX_IGNORED);
        return RT_RX_DONE;
    }
    return rt_ordo(rt, m, &fi, o) ? RT_RX_REQUEST : RT_RX_DONE;
}

/* Enqueues n mbufs on ring r; whatever does not fit is freed and counted (backpressure:
 * clients retry). Returns the number enqueued. */
uint32_t rt_enqueue(struct rte_ring *r, struct rte_mbuf **m, uint32_t n)
{
    if (n == 0) {
        return 0;
    }
    uint32_t done = rte_ring_enqueue_burst(r, (void **)m, n, NULL);
    for (uint32_t i = done; i < n; i++) {
        rte_pktmbuf_free(m[i]);
    }
    if (done < n) {
        net_stats_add(NET_CTR_RING_FULL, n - done);
    }
    return done;
}

static uint32_t rt_rx_arp_poll(struct rt *rt)
{
    struct rte_mbuf *out[4];
    uint16_t n = net_local_arp_poll(&rt->local, rt->port.pool, rte_get_tsc_cycles(),
                                    rt->arp_interval_tsc, out, (uint16_t)ORDO_ARRAY_LEN(out));
    return rt_enqueue(rt->tx_ring, out, n);
}

uint32_t rt_stage_rx(struct rt *rt)
{
    struct rte_mbuf *in[RT_BURST_MAX];
    struct rt_rx_out o;
    struct rte_mbuf *ans[RT_BURST_MAX];
    struct rte_mbuf *peer[RT_BURST_MAX];
    uint32_t work = rt->local.n != 0 ? rt_rx_arp_poll(rt) : 0;
    for (uint16_t q = 0; q < rt->port.rx_queues; q++) {
        uint16_t n = net_rx(&rt->port, q, in, rt->rx_burst);
        uint32_t nans = 0;
        uint32_t npeer = 0;
        o.nreq = 0;
        for (uint16_t i = 0; i < n; i++) {
            enum rt_rx_verdict v = rt_rx_one(rt, in[i], &o);
            if (v == RT_RX_REQUEST && rt_meta_of(in[i])->kind == RT_META_PEER) {
                peer[npeer++] = in[i];
            } else if (v == RT_RX_REQUEST) {
                rt_rx_push(rt, &o, in[i]);
            } else if (v == RT_RX_ANSWER) {
                ans[nans++] = in[i];
            }
        }
        rt_rx_flush(rt, &o);
        (void)rt_enqueue(rt->tx_ring, ans, nans);
        if (npeer != 0) {
            (void)rt_enqueue(rt->peer_ring, peer, npeer);
        }
        work += n;
    }
    return work;
}

/* Runs one command through the session table and the state machine at the next index;
 * has_key: its MAC was verified under its client's key (sess_execute_auth). */
static int rt_execute(struct rt *rt, const struct msg_client_request *req, int has_key,
                      struct msg_client_reply *reply)
{
    /* The index is consumed only by a command that was applied: a local failure must not
     * leave a hole that other replicas filled (they would diverge). sess_advance accepts
     * the same index again on the retry. */
    uint64_t index = rt->applied_index + 1;
    sess_advance(rt->sess, index);
    int rc =
        sess_execute_auth(rt->sess, rt->sm, index, req, has_key, rt->result, rt->result_cap, reply);
    if (rc >= 0) {
        rt->applied_index = index;
    } else {
        /* A local failure (no memory): nothing changed; the client retries on BUSY. */
        net_stats_inc(NET_CTR_APPLY_ERRORS);
        reply->client_id = req->client_id;
        reply->request_no = req->request_no;
        reply->status = MSG_STATUS_BUSY;
        reply->result_len = 0;
        reply->result = NULL;
    }
    return rc;
}

/* A probe is a no-op command through the same path; its answer is the frame itself with
 * addresses swapped, the 16 probe bytes untouched. */
static bool rt_apply_probe(struct rt *rt, struct rte_mbuf *m)
{
    static const struct msg_client_request noop = {
        .flags = MSG_REQ_NO_SESSION,
        .op = MSG_OP_NOOP,
    };
    struct msg_client_reply reply;
    if (rt_execute(rt, &noop, 0, &reply) < 0) {
        rte_pktmbuf_free(m);
        return false;
    }
    m->ol_flags = 0;
    if (frame_swap_reply(rte_pktmbuf_mtod(m, uint8_t *), m->data_len) != 0) {
        rt_drop(m, ORDO_EMALFORMED);
        return false;
    }
    return true;
}

/* Builds a client-type message frame in m: the request (args included) is no longer needed
 * once applied, so the reply reuses its mbuf. */
bool rt_build_msg(struct rt *rt, struct rte_mbuf *m, const struct rt_meta *meta, struct msg *out)
{
    out->hdr.cluster_id = rt->conf->cluster.id;
    out->hdr.sender = rt->self->id;
    uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
    size_t cap = (size_t)(m->buf_len - m->data_off);
    uint8_t *payload = buf + FRAME_UDP_PAYLOAD_OFF;
    int len =
        wire_encode(out, meta->has_key ? &meta->key : NULL, payload, cap - FRAME_UDP_PAYLOAD_OFF);
    unsigned flags = rt->tx_csum_hw ? FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM : 0;
    if (len > 0) {
        len = frame_build_udp(buf, cap, &meta->reply_addr, payload, (size_t)len, flags);
    }
    if (len <= 0) {
        net_stats_inc(NET_CTR_APPLY_ERRORS);
        rte_pktmbuf_free(m);
        return false;
    }
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    m->ol_flags = 0;
    if (rt->tx_csum_hw) {
        net_tx_csum_offload(m);
    }
    if (meta->multi) {
        m->ol_flags |= rt->multi_flag;
    }
    return true;
}

bool rt_build_reply(struct rt *rt, struct rte_mbuf *m, const struct rt_meta *meta,
                    const struct msg_client_reply *reply)
{
    struct msg out;
    memset(&out.hdr, 0, sizeof(out.hdr));
    out.hdr.type = MSG_CLIENT_REPLY;
    out.u.reply = *reply;
    return rt_build_msg(rt, m, meta, &out);
}

static bool rt_apply_one(struct rt *rt, struct rte_mbuf *m)
{
    const struct rt_meta *meta = rt_meta_of(m);
    if (meta->kind == RT_META_PROBE) {
        return rt_apply_probe(rt, m);
    }
    ORDO_ASSERT(meta->kind == RT_META_REQUEST);
    struct msg_client_reply reply;
    (void)rt_execute(rt, &meta->req, meta->has_key, &reply);
    return rt_build_reply(rt, m, meta, &reply);
}

uint32_t rt_stage_apply(struct rt *rt)
{
    struct rte_mbuf *in[RT_BURST_MAX];
    struct rte_mbuf *out[RT_BURST_MAX];
    uint32_t n = rte_ring_dequeue_burst(rt->req_ring, (void **)in, rt->rx_burst, NULL);
    uint32_t nout = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rt_apply_one(rt, in[i])) {
            out[nout++] = in[i];
        }
    }
    net_stats_add(NET_CTR_REPLIES, rt_enqueue(rt->tx_ring, out, nout));
    return n;
}

/* Same client address (destination MAC, IPv4, UDP port) in two frames rt_build_msg made. */
static bool rt_tx_same_dst(const uint8_t *a, const uint8_t *b)
{
    const size_t ip = FRAME_ETH_HLEN + 16;
    const size_t port = FRAME_ETH_HLEN + FRAME_IPV4_HLEN + 2;
    return memcmp(a, b, FRAME_MAC_LEN) == 0 && memcmp(a + ip, b + ip, 4) == 0 &&
           memcmp(a + port, b + port, 2) == 0;
}

static size_t rt_tx_msg_len(const struct rte_mbuf *m)
{
    return (size_t)m->data_len - FRAME_UDP_PAYLOAD_OFF;
}

/* The addresses of a frame frame_build_udp made (no IPv4 options). */
static void rt_tx_addr(const uint8_t *f, struct frame_udp_addr *a)
{
    memcpy(a->dst_mac, f, FRAME_MAC_LEN);
    memcpy(a->src_mac, f + FRAME_MAC_LEN, FRAME_MAC_LEN);
    memcpy(&a->src_ip, f + FRAME_ETH_HLEN + 12, 4);
    memcpy(&a->dst_ip, f + FRAME_ETH_HLEN + 16, 4);
    const uint8_t *u = f + FRAME_ETH_HLEN + FRAME_IPV4_HLEN;
    a->src_port = (uint16_t)(u[0] << 8 | u[1]);
    a->dst_port = (uint16_t)(u[2] << 8 | u[3]);
}

/* Turns reply frame c into a multi-reply holding its own message and those of the k frames
 * in g (freed). The caller checked that everything fits RT_MULTI_FRAME_MAX and c's room. */
static void rt_tx_pack(const struct rt *rt, struct rte_mbuf *c, struct rte_mbuf **g, uint32_t k)
{
    uint8_t *buf = rte_pktmbuf_mtod(c, uint8_t *);
    uint8_t *payload = buf + FRAME_UDP_PAYLOAD_OFF;
    size_t cap = RTE_MIN((size_t)(c->buf_len - c->data_off), (size_t)RT_MULTI_FRAME_MAX);
    size_t len0 = rt_tx_msg_len(c);
    struct frame_udp_addr a;
    struct msg_header h;
    struct wire_multi_wr w;
    rt_tx_addr(buf, &a);
    ORDO_ASSERT(wire_peek_header(payload, len0, &h) == 0);
    /* c's own message moves to where the multi frame's first item goes. */
    uint8_t *first = payload + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + WIRE_MULTI_ITEM_HDR_LEN;
    memmove(first, payload, len0);
    ORDO_ASSERT(wire_multi_start(&w, MSG_CLIENT_MULTI_REPLY, h.cluster_id, h.sender, payload,
                                 cap - FRAME_UDP_PAYLOAD_OFF) == 0);
    ORDO_ASSERT(wire_multi_add(&w, first, len0) == 0);
    for (uint32_t j = 0; j < k; j++) {
        const uint8_t *p = rte_pktmbuf_mtod(g[j], const uint8_t *) + FRAME_UDP_PAYLOAD_OFF;
        ORDO_ASSERT(wire_multi_add(&w, p, rt_tx_msg_len(g[j])) == 0);
        rte_pktmbuf_free(g[j]);
    }
    int len = wire_multi_finish(&w);
    unsigned flags = rt->tx_csum_hw ? FRAME_SKIP_IP_CSUM | FRAME_SKIP_UDP_CSUM : 0;
    len = frame_build_udp(buf, cap, &a, payload, (size_t)len, flags);
    ORDO_ASSERT(len > 0);
    c->data_len = (uint16_t)len;
    c->pkt_len = (uint32_t)len;
    c->ol_flags = 0;
    if (rt->tx_csum_hw) {
        net_tx_csum_offload(c);
    }
    net_stats_inc(NET_CTR_MULTI_REPLIES);
}

/* Collects into g the frames after m[i] for m[i]'s address that fit one multi-reply with it
 * (taken out of m: set to NULL). Returns their count. */
static uint32_t rt_tx_group(const struct rt *rt, struct rte_mbuf **m, uint32_t i, uint32_t n,
                            struct rte_mbuf **g)
{
    const uint8_t *f = rte_pktmbuf_mtod(m[i], const uint8_t *);
    size_t cap = RTE_MIN((size_t)(m[i]->buf_len - m[i]->data_off), (size_t)RT_MULTI_FRAME_MAX);
    size_t len = FRAME_UDP_PAYLOAD_OFF + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN +
                 WIRE_MULTI_ITEM_HDR_LEN + rt_tx_msg_len(m[i]);
    uint32_t k = 0;
    for (uint32_t j = i + 1; j < n && k + 1 < MSG_MULTI_MAX && len < cap; j++) {
        if (m[j] == NULL || (m[j]->ol_flags & rt->multi_flag) == 0 ||
            !rt_tx_same_dst(f, rte_pktmbuf_mtod(m[j], const uint8_t *))) {
            continue;
        }
        size_t add = WIRE_MULTI_ITEM_HDR_LEN + rt_tx_msg_len(m[j]);
        if (len + add > cap) {
            continue; /* goes out in a later group */
        }
        len += add;
        g[k++] = m[j];
        m[j] = NULL;
    }
    return k;
}

/* Packs the replies for one client address in this burst into multi-replies (only frames
 * flagged by rt_build_msg: answers to multi-request frames). Keeps the order of first
 * appearance. Returns the new frame count in m. */
static uint32_t rt_tx_coalesce(const struct rt *rt, struct rte_mbuf **m, uint32_t n)
{
    struct rte_mbuf *g[MSG_MULTI_MAX];
    uint32_t out = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct rte_mbuf *c = m[i];
        if (c == NULL) {
            continue;
        }
        if ((c->ol_flags & rt->multi_flag) != 0) {
            uint32_t k = rt_tx_group(rt, m, i, n, g);
            if (k != 0) {
                rt_tx_pack(rt, c, g, k);
            }
        }
        m[out++] = c;
    }
    return out;
}

uint32_t rt_stage_tx(struct rt *rt)
{
    struct rte_mbuf *m[RT_BURST_MAX];
    uint32_t n = rte_ring_dequeue_burst(rt->tx_ring, (void **)m, rt->tx_burst, NULL);
    if (n != 0 && rt->multi_flag != 0) {
        n = rt_tx_coalesce(rt, m, n);
    }
    if (n != 0) {
        (void)net_tx(&rt->port, 0, m, (uint16_t)n);
    } else if (net_fault_armed) {
        (void)net_tx(&rt->port, 0, NULL, 0); /* flushes frames the fault injector delayed */
    }
    return n;
}
