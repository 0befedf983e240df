/* Test fixture shared by the replicated-runtime unit tests (rtc.c): three replicas in one
 * process over net_ring ports, pumped on the calling thread. */
#ifndef ORDO_TESTS_UNIT_RTC_H
#define ORDO_TESTS_UNIT_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "engine/msg.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/rt.h"
#include "engine/sm.h"

#define T_N 3
#define T_CLUSTER 9u
#define T_PORT 7100u
#define T_CLIENT_PORT 40000u

struct rtc_params {
    const char *name;        /* names the DPDK file prefix and the data directories */
    uint32_t election_ticks; /* 1 ms ticks */
    uint32_t heartbeat_ticks;
    /* Stages apart: the sequencer on lcore 1 (pumped on this thread too) and the log on lcore
     * 2, served by one thread per replica (the core waits for it: hard state, holds). */
    bool apart;
};

extern struct conf g_conf;
extern struct rt g_rt[T_N];
extern struct sm *g_sm[T_N];
extern struct rte_ring *g_rx[T_N];
extern struct rte_ring *g_tx[T_N];
extern struct rte_ring *g_client; /* frames addressed to the client */
extern char g_dirs[T_N][64];
extern bool g_down[T_N]; /* a "crashed" replica: not pumped, its frames are dropped */
extern const uint8_t g_client_mac[6];

void rtc_setup(const struct rtc_params *p);
/* Stages apart: stop (join) and start the log threads around an rt_fini / rt_init of a
 * replica. No-ops otherwise. */
void rtc_log_threads_stop(void);
void rtc_log_threads_start(void);
void rtc_teardown(void);
uint32_t rtc_ip4(unsigned a, unsigned b, unsigned c, unsigned d);
uint32_t rtc_switch(void);
void rtc_pump_once(void);
int rtc_leader(void);
/* Pumps until one leader is known to every live replica (bounded: 10 s). */
int rtc_wait_leader(void);
void rtc_send_req_flags(int to, uint64_t client, uint64_t no, uint16_t flags, uint8_t op,
                        const uint8_t *args, uint32_t alen);
void rtc_send_req(int to, uint64_t client, uint64_t no, uint8_t op, const uint8_t *args,
                  uint32_t alen);
/* Pumps until the client receives an answer to request_no (bounded: 5 s); *m borrows *mb. */
void rtc_wait_answer_to(uint64_t request_no, struct rte_mbuf **mb, struct msg *m);
void rtc_put(int to, uint64_t client, uint64_t no, const char *k, const char *v);
/* Registers a session through replica `to` (the leader); returns the id the cluster assigned. */
uint64_t rtc_reg(int to);

#endif
