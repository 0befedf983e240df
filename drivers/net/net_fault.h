/* Seeded network fault injector for any PMD: drops, duplicates, delays and reorders frames on
 * RX and/or TX, for all traffic or one IPv4 peer. Off by default; when off, net_rx/net_tx pay
 * one predictable branch. Deterministic for a given seed and frame sequence per queue. */
#ifndef ORDO_DRIVERS_NET_NET_FAULT_H
#define ORDO_DRIVERS_NET_NET_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>

#include "engine/api.h"
#include "engine/err.h"

#define NET_FAULT_PPM 1000000u   /* rates are in parts per million of frames */
#define NET_FAULT_HOLD_MAX 1024u /* frames held (delayed/reordered) per queue and direction */
#define NET_FAULT_DELAY_US_MAX 1000000u /* 1 s: bounds how long a frame may be held */
#define NET_FAULT_SPEC_MAX 256u         /* longest accepted spec string */
#define NET_FAULT_QUEUES_MAX 16u        /* queues per direction (NET_QUEUES_MAX) */

/* Directions a config applies to (bit set). */
enum net_fault_dir {
    NET_FAULT_RX = 1u << 0,
    NET_FAULT_TX = 1u << 1,
};

/* One fault configuration. All-zero (or enabled == false) means no fault. */
struct net_fault_cfg {
    bool enabled;         /* false: frames pass untouched (held ones still drain) */
    uint32_t drop_ppm;    /* probability a matching frame is freed */
    uint32_t dup_ppm;     /* probability a matching frame is delivered twice */
    uint32_t reorder_ppm; /* probability a matching frame is swapped with the next frame */
    uint32_t delay_us;    /* every matching frame is held this long (TSC), 0: none */
    uint64_t seed;        /* PRNG seed; each queue/direction derives its own stream */
    uint32_t dirs;        /* NET_FAULT_RX | NET_FAULT_TX; spec default: rx */
    uint32_t peer_ip;     /* IPv4 in network byte order (source on RX, destination on TX);
                           * 0: all traffic (non-IPv4 frames included) */
};

/* Parses "drop=5,dup=1,reorder=2,delay_us=200,seed=42,dir=rx|tx|both,peer=198.18.0.12".
 * Percentages accept up to 4 decimals (e.g. drop=0.5); every key is optional and appears at
 * most once; "off" or "" gives a disabled config. On success out->enabled is true unless the
 * spec was "off"/"". Returns 0, or ORDO_ECONFIG with err naming the key and the cause. */
ORDO_API int net_fault_parse(const char *spec, struct net_fault_cfg *out, struct ordo_errmsg *err);

/* Installs cfg for the whole process (every port and queue). Control plane, any thread; the
 * data path sees the new values at its next burst. Each queue reseeds its PRNG from cfg->seed.
 * Returns 0 or ORDO_ECONFIG (rates above 100 %, delay above the bound, no direction). */
ORDO_API int net_fault_set(const struct net_fault_cfg *cfg, struct ordo_errmsg *err);

/* Copies the installed config (disabled if never set). */
ORDO_API void net_fault_get(struct net_fault_cfg *out);

/* Writes the config back as a spec string that net_fault_parse accepts. Returns the length
 * (snprintf semantics). */
ORDO_API int net_fault_format(const struct net_fault_cfg *cfg, char *buf, uint32_t len);

/* Registers the telemetry command /ordo/net_fault: without parameter it shows the installed
 * spec and the fault counters; "/ordo/net_fault,SPEC" installs SPEC ("off" disables), so an
 * admin CLI can change faults at run time. Called by net_stats_telemetry_register.
 * Returns 0 or a negative errno from rte_telemetry_register_cmd. */
ORDO_API int net_fault_telemetry_register(void);

/* Frees every held frame and forgets all state (tests; only while no data path runs). */
ORDO_API void net_fault_reset(void);

/* Set once a config was installed with enabled true, never cleared: held frames keep
 * draining after faults are switched off. net_rx/net_tx test it with one branch. */
ORDO_API extern bool net_fault_armed;

static inline bool net_fault_is_armed(void)
{
    return unlikely(__atomic_load_n(&net_fault_armed, __ATOMIC_RELAXED));
}

/* RX hook (net_rx calls it when armed): m[0..got) were just received on queue q, m has room
 * for n. Applies faults and returns how many frames m now holds (due held frames first).
 * Data path, the queue's lcore only; q < NET_FAULT_QUEUES_MAX. */
ORDO_API uint16_t net_fault_rx(uint16_t q, struct rte_mbuf **m, uint16_t got, uint16_t n);

/* TX hook, first half (net_tx calls it when armed): takes ownership of m[0..n) and applies
 * faults; frames to send go to queue q's hold queue. Data path, the queue's lcore only. */
ORDO_API void net_fault_tx_take(uint16_t q, struct rte_mbuf **m, uint16_t n);

/* TX hook, second half: moves up to cap frames that are due now from the hold queue to out
 * (ownership to the caller, who sends them). net_tx(p, q, NULL, 0) thus flushes delayed TX
 * frames; a TX stage with delay on TX should call it when idle. */
ORDO_API uint16_t net_fault_tx_due(uint16_t q, struct rte_mbuf **out, uint16_t cap);

#endif
