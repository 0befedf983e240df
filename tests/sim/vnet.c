/* Simulated network: a bag of deep-copied messages with delivery times. Small enough that
 * a linear scan for the earliest packet is cheaper than a heap. */
#include "tests/sim/vnet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vnet_init(struct vnet *net, struct rng *rng)
{
    memset(net, 0, sizeof(*net));
    net->rng = rng;
    net->faults.delay_min_ms = 1;
    net->faults.delay_max_ms = 5;
}

void vnet_free(struct vnet *net)
{
    for (size_t i = 0; i < net->n; i++) {
        vnet_pkt_free(&net->pkts[i]);
    }
    free(net->pkts);
    net->pkts = NULL;
    net->n = 0;
}

void vnet_pkt_free(struct vnet_pkt *p)
{
    free(p->blob);
    p->blob = NULL;
}

/* Bytes the message points to, so that one blob holds the whole copy. */
static size_t vnet_extra_len(const struct msg *m)
{
    size_t len = 0;
    switch (m->hdr.type) {
    case MSG_APPEND_ENTRIES:
        len = m->u.append.n_entries * sizeof(struct msg_entry);
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            len += m->u.append.entries[i].len;
        }
        break;
    case MSG_INSTALL_SNAPSHOT:
        len = m->u.snapshot.chunk_len;
        break;
    case MSG_CLIENT_REQUEST:
        len = m->u.request.args_len;
        break;
    case MSG_CLIENT_REPLY:
        len = m->u.reply.result_len;
        break;
    default:
        break;
    }
    return len;
}

static int vnet_copy(struct vnet_pkt *p, const struct msg *m)
{
    p->msg = *m;
    size_t len = vnet_extra_len(m);
    p->blob = malloc(len ? len : 1);
    if (p->blob == NULL) {
        return -ENOMEM;
    }
    uint8_t *b = p->blob;
    switch (m->hdr.type) {
    case MSG_APPEND_ENTRIES: {
        struct msg_entry *es = (struct msg_entry *)(void *)b;
        uint8_t *data = b + m->u.append.n_entries * sizeof(struct msg_entry);
        for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
            es[i] = m->u.append.entries[i];
            if (es[i].len > 0) {
                memcpy(data, es[i].data, es[i].len);
            }
            es[i].data = data;
            data += es[i].len;
        }
        p->msg.u.append.entries = es;
        break;
    }
    case MSG_INSTALL_SNAPSHOT:
        memcpy(b, m->u.snapshot.chunk, m->u.snapshot.chunk_len);
        p->msg.u.snapshot.chunk = b;
        break;
    case MSG_CLIENT_REQUEST:
        memcpy(b, m->u.request.args, m->u.request.args_len);
        p->msg.u.request.args = b;
        break;
    case MSG_CLIENT_REPLY:
        memcpy(b, m->u.reply.result, m->u.reply.result_len);
        p->msg.u.reply.result = b;
        break;
    default:
        break;
    }
    return 0;
}

static int vnet_enqueue(struct vnet *net, uint64_t now_ms, uint32_t from, uint32_t to,
                        const struct msg *m)
{
    if (net->n == net->cap) {
        size_t cap = net->cap ? net->cap * 2 : 256;
        struct vnet_pkt *pk = realloc(net->pkts, cap * sizeof(*pk));
        if (pk == NULL) {
            return -ENOMEM;
        }
        net->pkts = pk;
        net->cap = cap;
    }
    struct vnet_pkt *p = &net->pkts[net->n];
    int rc = vnet_copy(p, m);
    if (rc < 0) {
        return rc;
    }
    p->from = from;
    p->to = to;
    p->seq = net->seq++;
    p->deliver_ms =
        now_ms + rng_range(net->rng, net->faults.delay_min_ms, net->faults.delay_max_ms);
    net->n++;
    return 0;
}

int vnet_send(struct vnet *net, uint64_t now_ms, uint32_t from, uint32_t to, const struct msg *m)
{
    net->sent++;
    if (from >= VNET_ADDR_MAX || to >= VNET_ADDR_MAX || net->blocked[from][to] ||
        rng_chance(net->rng, net->faults.loss_ppm)) {
        net->dropped++;
        return 0;
    }
    int rc = vnet_enqueue(net, now_ms, from, to, m);
    if (rc == 0 && rng_chance(net->rng, net->faults.dup_ppm)) {
        net->duplicated++;
        rc = vnet_enqueue(net, now_ms, from, to, m);
    }
    return rc;
}

uint64_t vnet_next_ms(const struct vnet *net)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < net->n; i++) {
        if (net->pkts[i].deliver_ms < t) {
            t = net->pkts[i].deliver_ms;
        }
    }
    return t;
}

static size_t vnet_earliest(const struct vnet *net, uint64_t now_ms)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < net->n; i++) {
        const struct vnet_pkt *p = &net->pkts[i];
        if (p->deliver_ms > now_ms) {
            continue;
        }
        if (best == SIZE_MAX || p->deliver_ms < net->pkts[best].deliver_ms ||
            (p->deliver_ms == net->pkts[best].deliver_ms && p->seq < net->pkts[best].seq)) {
            best = i;
        }
    }
    return best;
}

int vnet_pop(struct vnet *net, uint64_t now_ms, struct vnet_pkt *out)
{
    for (;;) {
        size_t best = vnet_earliest(net, now_ms);
        if (best == SIZE_MAX) {
            return 0;
        }
        *out = net->pkts[best];
        net->pkts[best] = net->pkts[--net->n];
        /* A partition that formed while the packet was in flight drops it too. */
        if (!net->blocked[out->from][out->to]) {
            net->delivered++;
            return 1;
        }
        net->dropped++;
        vnet_pkt_free(out);
    }
}

void vnet_purge(struct vnet *net, uint32_t addr)
{
    for (size_t i = 0; i < net->n;) {
        if (net->pkts[i].to == addr || net->pkts[i].from == addr) {
            vnet_pkt_free(&net->pkts[i]);
            net->pkts[i] = net->pkts[--net->n];
        } else {
            i++;
        }
    }
}

void vnet_block(struct vnet *net, uint32_t from, uint32_t to, int blocked)
{
    if (from < VNET_ADDR_MAX && to < VNET_ADDR_MAX) {
        net->blocked[from][to] = (uint8_t)(blocked != 0);
    }
}

void vnet_isolate(struct vnet *net, uint32_t addr, int isolated)
{
    for (uint32_t i = 0; i < VNET_ADDR_MAX; i++) {
        vnet_block(net, addr, i, isolated);
        vnet_block(net, i, addr, isolated);
    }
}

void vnet_heal(struct vnet *net)
{
    memset(net->blocked, 0, sizeof(net->blocked));
}
