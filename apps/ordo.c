/* ordo: the replica daemon. Parses the command line and the cluster file, wires the key-value
 * state machine to the runtime and runs it until SIGINT/SIGTERM. One node: every request is
 * applied and answered here; several: Raft replication (engine/runtime/rt_repl.h). */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_log.h>

#include "drivers/net/net.h"
#include "drivers/net/net_fault.h"
#include "engine/err.h"
#include "engine/runtime/conf.h"
#include "engine/runtime/rt.h"
#include "engine/runtime/rt_repl.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

#define ORDO_EXIT_USAGE 2
#define ORDO_EXIT_FAILSTOP 3 /* the replica stopped itself: disk error or audit divergence */
#define ORDO_ARGV_EXTRA 8

struct ordo_opts {
    const char *config;
    uint32_t node_id;
    int log_level; /* RTE_LOG_*; 0 = from the config file */
    bool fault_set;
    uint64_t diverge_at;        /* --diverge-at (test only) */
    struct net_fault_cfg fault; /* --net-fault: parsed before the EAL starts */
};

static struct rt ordo_rt;
static volatile sig_atomic_t ordo_stop;
static volatile sig_atomic_t ordo_running;

static void ordo_on_signal(int sig)
{
    (void)sig;
    ordo_stop = 1;
    if (ordo_running) {
        rt_request_stop(&ordo_rt);
    }
}

static void ordo_usage(FILE *f)
{
    fprintf(f, "usage: ordo --config FILE --node N [--log-level LEVEL] [--net-fault SPEC]\n"
               "  LEVEL: error, warning, notice, info, debug (or 4..8)\n"
               "  SPEC: seeded network faults on this replica's port, e.g.\n"
               "        drop=5,dup=1,reorder=2,delay_us=200,seed=42,dir=both,peer=IP (or off)\n"
               "  --diverge-at I (tests only): change the local state after applying index I,\n"
               "        so that the audit detects the divergence and this replica stops\n"
               "Prints \"ordo: node N ready\" on stdout once the port is up; SIGINT or\n"
               "SIGTERM stops it (exit 0; 3 after a fail-stop). Counters: dpdk-telemetry.py\n"
               "-f <file-prefix>, commands /ordo/stats and (replicated) /ordo/raft.\n");
}

static int ordo_parse_level(const char *s)
{
    static const char *const names[] = {"error", "warning", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            return (int)RTE_LOG_ERR + i;
        }
    }
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end != s && *end == '\0' && v >= (long)RTE_LOG_ERR && v <= (long)RTE_LOG_DEBUG) {
        return (int)v;
    }
    return -1;
}

static int ordo_parse_args(int argc, char **argv, struct ordo_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"node", required_argument, NULL, 'n'},
        {"log-level", required_argument, NULL, 'l'},
        {"net-fault", required_argument, NULL, 'f'},
        {"diverge-at", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    int opt;
    while ((opt = getopt_long(argc, argv, "c:n:l:f:D:h", longopts, NULL)) != -1) {
        char *end = NULL;
        if (opt == 'c') {
            o->config = optarg;
        } else if (opt == 'n') {
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || v == 0 || v > CONF_NODE_ID_MAX) {
                fprintf(stderr, "ordo: --node: expected 1..%d, got \"%s\"\n", CONF_NODE_ID_MAX,
                        optarg);
                return -1;
            }
            o->node_id = (uint32_t)v;
        } else if (opt == 'l') {
            o->log_level = ordo_parse_level(optarg);
            if (o->log_level < 0) {
                fprintf(stderr, "ordo: --log-level: unknown level \"%s\"\n", optarg);
                return -1;
            }
        } else if (opt == 'f') {
            struct ordo_errmsg e = {{0}};
            if (net_fault_parse(optarg, &o->fault, &e) != 0) {
                fprintf(stderr, "ordo: --net-fault: %s\n", e.text);
                return -1;
            }
            o->fault_set = true;
        } else if (opt == 'D') {
            o->diverge_at = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || o->diverge_at == 0) {
                fprintf(stderr, "ordo: --diverge-at: expected an index >= 1\n");
                return -1;
            }
        } else if (opt == 'h') {
            ordo_usage(stdout);
            exit(0);
        } else {
            return -1;
        }
    }
    if (o->config == NULL || o->node_id == 0 || optind != argc) {
        fprintf(stderr, "ordo: --config and --node are required (and nothing else)\n");
        return -1;
    }
    return 0;
}

/* Lcores that are not CPUs this process may run on (more stages than CPUs, e.g. one lcore per
 * stage on a 2-CPU test host) are pinned round-robin to the CPUs it may use, with EAL
 * --lcores "L@C,...": writes that option to buf and returns true; false when every lcore is
 * such a CPU (then "-l" as usual) or the list does not fit. */
static bool ordo_lcores_mapped(const struct conf_replica *r, char *buf, size_t len)
{
    cpu_set_t set;
    uint32_t cpus[CPU_SETSIZE];
    uint32_t n = 0;
    bool all = true;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return false;
    }
    for (uint32_t c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &set)) {
            cpus[n++] = c;
        }
    }
    for (uint32_t i = 0; i < r->lcores_n; i++) {
        all = all && r->lcores[i] < CPU_SETSIZE && CPU_ISSET(r->lcores[i], &set);
    }
    if (all || n == 0) {
        return false;
    }
    size_t used = (size_t)snprintf(buf, len, "--lcores=");
    for (uint32_t i = 0; i < r->lcores_n && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%u@%u", i > 0 ? "," : "", r->lcores[i],
                                 cpus[i % n]);
    }
    return used < len;
}

/* EAL argv: the node's eal string, then the lcores of [replica] and the log level. Static:
 * the EAL keeps pointers into it. */
static int ordo_eal_start(const struct conf *c, const struct conf_node *node, int level,
                          struct ordo_errmsg *e)
{
    static struct conf_argv av;
    static char *argv[CONF_EAL_ARGS_MAX + 2 + ORDO_ARGV_EXTRA];
    static char lcores[CONF_LCORES_MAX * 4];
    static char main_lcore[16];
    static char level_text[16];
    int rc = conf_eal_argv(node->eal, "ordo", &av, e);
    if (rc != 0) {
        return rc;
    }
    if (conf_lcores_list(&c->replica, lcores, sizeof(lcores)) < 0) {
        ordo_errmsg_set(e, "[replica] lcores: list too long");
        return ORDO_ECONFIG;
    }
    snprintf(main_lcore, sizeof(main_lcore), "%u", c->replica.lcores[0]);
    snprintf(level_text, sizeof(level_text), "%d", level);
    /* The global level goes first so that per-type levels in the node's eal refine it. */
    int argc = 0;
    argv[argc++] = av.argv[0];
    argv[argc++] = "--log-level";
    argv[argc++] = level_text;
    for (int i = 1; i < av.argc; i++) {
        argv[argc++] = av.argv[i];
    }
    static char mapped[CONF_LCORES_MAX * 16];
    char *extra[] = {"-l", lcores, "--main-lcore", main_lcore};
    size_t from = 0;
    if (ordo_lcores_mapped(&c->replica, mapped, sizeof(mapped))) {
        fprintf(stderr, "ordo: node %u: lcores beyond this process's CPUs: %s\n", node->id, mapped);
        extra[1] = mapped;
        from = 1;
    }
    for (size_t i = from; i < sizeof(extra) / sizeof(extra[0]); i++) {
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    return net_eal_init(argc, argv, e);
}

static void ordo_print_stats(uint32_t node_id)
{
    fprintf(stderr,
            "ordo: node %u stopped: rx %" PRIu64 " tx %" PRIu64 " requests %" PRIu64
            " replies %" PRIu64 " probes %" PRIu64 " malformed %" PRIu64 " unauthorized %" PRIu64
            " mac_failures %" PRIu64 "\n",
            node_id, net_stats_get(NET_CTR_RX_PACKETS), net_stats_get(NET_CTR_TX_PACKETS),
            net_stats_get(NET_CTR_REQUESTS), net_stats_get(NET_CTR_REPLIES),
            net_stats_get(NET_CTR_PROBES), net_stats_malformed(),
            net_stats_get(NET_CTR_UNAUTHORIZED), net_stats_get(NET_CTR_MAC_FAILURES));
}

static void ordo_print_ready(const struct rt *rt)
{
    char ip[16];
    const uint8_t *a = (const uint8_t *)&rt->self->ipv4;
    snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    fprintf(stderr,
            "ordo: node %u on port %u (%s, %s), %02x:%02x:%02x:%02x:%02x:%02x %s udp %u, "
            "%u RX queue(s), checksum offload rx %s tx %s\n",
            rt->self->id, rt->port.port_id, rt->port.name, rt->port.driver,
            rt->port.mac.addr_bytes[0], rt->port.mac.addr_bytes[1], rt->port.mac.addr_bytes[2],
            rt->port.mac.addr_bytes[3], rt->port.mac.addr_bytes[4], rt->port.mac.addr_bytes[5], ip,
            rt->self->udp_port, rt->port.rx_queues, rt->port.rx_csum_hw ? "on" : "off",
            rt->port.tx_csum_hw ? "on" : "off");
    printf("ordo: node %u ready\n", rt->self->id);
    fflush(stdout);
}

static void ordo_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ordo_on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
}

/* Everything after the config is valid: EAL, state machine, runtime, run, teardown. */
static int ordo_serve(const struct conf *c, const struct ordo_opts *o)
{
    struct ordo_errmsg e = {{0}};
    struct sm *sm = NULL;
    const struct conf_node *node = conf_node_find(c, o->node_id);
    int level = o->log_level != 0 ? o->log_level : (int)c->cluster.log_level;
    struct sm_kv_config kc = {.value_max = c->cluster.value_max};
    int rc = wire_init();
    if (rc == 0) {
        rc = sm_kv_create(&kc, &sm);
    }
    if (rc != 0) {
        fprintf(stderr, "ordo: start-up: %s\n", ordo_strerror(rc));
        return 1;
    }
    rc = ordo_eal_start(c, node, level, &e);
    if (rc != 0) {
        fprintf(stderr, "ordo: node %u: %s\n", o->node_id, e.text);
        sm_destroy(sm);
        return 1;
    }
    rte_log_set_global_level((uint32_t)level);
    if (o->fault_set && net_fault_set(&o->fault, &e) != 0) {
        fprintf(stderr, "ordo: --net-fault: %s\n", e.text);
        sm_destroy(sm);
        (void)rte_eal_cleanup();
        return 1;
    }
    rc = rt_init(&ordo_rt, c, o->node_id, sm, &e);
    if (rc != 0) {
        fprintf(stderr, "ordo: %s\n", e.text);
        sm_destroy(sm);
        (void)rte_eal_cleanup();
        return 1;
    }
    if (o->diverge_at != 0) {
        rt_repl_diverge_at(&ordo_rt, o->diverge_at);
    }
    ordo_running = 1;
    if (ordo_stop) {
        rt_request_stop(&ordo_rt);
    }
    ordo_print_ready(&ordo_rt);
    rc = rt_run(&ordo_rt);
    ordo_running = 0;
    int failstop = rc == 0 && ordo_rt.failed != 0;
    if (failstop) {
        fprintf(stderr, "ordo: node %u fail-stopped: %s\n", o->node_id,
                ordo_strerror(ordo_rt.failed));
        rc = ordo_rt.failed;
    }
    rt_fini(&ordo_rt);
    ordo_print_stats(o->node_id);
    sm_destroy(sm);
    (void)rte_eal_cleanup();
    /* A distinct status: supervisors and tests tell a fail-stop from a start-up error. */
    return failstop ? ORDO_EXIT_FAILSTOP : (rc == 0 ? 0 : 1);
}

int main(int argc, char **argv)
{
    struct ordo_opts o;
    struct conf c;
    struct ordo_errmsg e = {{0}};
    if (ordo_parse_args(argc, argv, &o) != 0) {
        ordo_usage(stderr);
        return ORDO_EXIT_USAGE;
    }
    ordo_signals();
    /* The whole file is validated here, before the EAL or any port is touched. */
    if (conf_load(o.config, &c, &e) != 0) {
        fprintf(stderr, "ordo: %s\n", e.text);
        return 1;
    }
    if (conf_node_find(&c, o.node_id) == NULL) {
        fprintf(stderr, "ordo: %s: no [node.%u] section\n", o.config, o.node_id);
        conf_free(&c);
        return 1;
    }
    int rc = ordo_serve(&c, &o);
    conf_free(&c);
    return rc;
}
