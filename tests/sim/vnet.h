/* Simulated network for the cluster simulator: per-message delay, loss, duplication and
 * reordering, and a blocked-link matrix for symmetric / asymmetric partitions and node
 * isolation. Every random choice comes from the caller's seeded PRNG. */
#ifndef ORDO_TESTS_SIM_VNET_H
#define ORDO_TESTS_SIM_VNET_H

#include <stddef.h>
#include <stdint.h>

#include "engine/msg.h"
#include "tests/sim/rng.h"

#define VNET_ADDR_MAX 64 /* addresses 1..63: replicas and clients */

struct vnet_faults {
    uint32_t loss_ppm; /* drop probability, per million */
    uint32_t dup_ppm;  /* duplicate probability, per million */
    uint32_t delay_min_ms;
    uint32_t delay_max_ms; /* each copy gets its own delay: messages reorder */
};

/* A message in flight: a deep copy, owning every buffer it points to. */
struct vnet_pkt {
    uint64_t deliver_ms;
    uint64_t seq; /* send order, breaks ties */
    uint32_t from;
    uint32_t to;
    struct msg msg;
    uint8_t *blob; /* entries array and every data / args / chunk the message points to */
};

struct vnet {
    struct rng *rng; /* borrowed */
    struct vnet_faults faults;
    uint8_t blocked[VNET_ADDR_MAX][VNET_ADDR_MAX]; /* [from][to] */
    struct vnet_pkt *pkts;
    size_t n;
    size_t cap;
    uint64_t seq;
    uint64_t sent, dropped, duplicated, delivered;
};

void vnet_init(struct vnet *net, struct rng *rng);
void vnet_free(struct vnet *net);
/* Sends a deep copy of m (borrowed) from -> to at time now. Returns 0 or -ENOMEM. */
int vnet_send(struct vnet *net, uint64_t now_ms, uint32_t from, uint32_t to, const struct msg *m);
/* Earliest delivery time in flight, or UINT64_MAX when nothing is in flight. */
uint64_t vnet_next_ms(const struct vnet *net);
/* Takes the earliest packet due at or before now into *out (caller frees it with
 * vnet_pkt_free). Returns 1 if one was taken, 0 if none is due. */
int vnet_pop(struct vnet *net, uint64_t now_ms, struct vnet_pkt *out);
void vnet_pkt_free(struct vnet_pkt *p);
/* Drops everything in flight to or from addr (a crashed node loses its sockets). */
void vnet_purge(struct vnet *net, uint32_t addr);
/* Link control. */
void vnet_block(struct vnet *net, uint32_t from, uint32_t to, int blocked);
void vnet_isolate(struct vnet *net, uint32_t addr, int isolated);
void vnet_heal(struct vnet *net);

#endif
