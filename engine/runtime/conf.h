/* Cluster configuration: one INI file (read with DPDK's rte_cfgfile) describing the cluster,
 * its replicas, the replica tuning and client access, fully validated before any port or
 * file of the data path is touched. Reference of every key: docs/configuration.md. */
#ifndef ORDO_ENGINE_RUNTIME_CONF_H
#define ORDO_ENGINE_RUNTIME_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/err.h"
#include "engine/msg.h"

#define CONF_KEY_LEN 32           /* cluster and client MAC keys (= WIRE_KEY_LEN) */
#define CONF_PATH_MAX 512         /* resolved paths (key files, data_dir), NUL included */
#define CONF_STR_MAX 256          /* any value as written in the file, NUL included */
#define CONF_PORT_NAME_MAX 64     /* DPDK port name (RTE_ETH_NAME_MAX_LEN), NUL included */
#define CONF_LCORE_ID_MAX 127     /* lcore ids are 0..127 (RTE_MAX_LCORE - 1) */
#define CONF_LCORES_MAX 128       /* entries in [replica] lcores */
#define CONF_SUBNETS_MAX 32       /* entries in [clients] allow */
#define CONF_CLIENT_KEYS_MAX 4096 /* key.<client_id> entries in [clients] */
#define CONF_EAL_ARGS_MAX 64      /* arguments in one node's eal string */
#define CONF_NODE_ID_MAX 255      /* node ids are 1..255 */
/* Largest batch_bytes_max: one batch must fit one AppendEntries message in a jumbo frame
 * (checked against the wire codec's bound in conf.c). */
#define CONF_BATCH_BYTES_LIMIT 8704u

/* mbufs a replicated node can hold parked, outside every ring: ReadIndex reads waiting for
 * their index (RT_READS_MAX) plus pktgen probes waiting for theirs (RT_PROBES_MAX); rt_repl.c
 * checks the sum at compile time. */
#define CONF_MBUF_PARKED 2048u
/* Replies a leader's apply stage builds for one committed batch before it queues them
 * (rt_repl_apply_batch): at most this many, and at most batch_count_max. */
#define CONF_MBUF_REPLIES_MAX 256u
/* The per-lcore mempool cache rt.c gives the port's pool: min(this, mbufs / 8). */
#define CONF_MBUF_CACHE_MAX 256u
/* What such a cache of size mbufs can hold: DPDK fills it up to its flush threshold, 1.5 x
 * its size (CALC_CACHE_FLUSHTHRESH in rte_mempool.c), before it spills to the pool. */
#define CONF_MBUF_CACHE_HELD(size) ((size)*3u / 2u)
/* Largest [replica] peer_mtu a replicated node on net_af_xdp can carry: its frame, the mbuf,
 * the PMD's and the kernel's XDP headroom must fit one 4 KiB umem chunk, or the kernel drops
 * larger frames on receive and the cluster wedges (drivers/net/net.h net_af_xdp_frame_max;
 * tests/unit/test_net_xdp.c keeps the two in step). */
#define CONF_AF_XDP_PEER_MTU_MAX 3300u

enum conf_idle {
    CONF_IDLE_BUSY = 1,    /* spin on empty polls: lowest latency, one core per lcore */
    CONF_IDLE_BACKOFF = 2, /* spin, then yield, then short sleeps: shared machines, tests */
};

/* How a snapshot is taken (docs/replica.md, "Snapshots"). */
enum conf_snapshot_mode {
    CONF_SNAPSHOT_FORK = 1,   /* a forked child writes it; the apply lcore pauses for fork() */
    CONF_SNAPSHOT_INLINE = 2, /* written on the apply lcore: pauses for the whole write */
};

enum conf_auth {
    CONF_AUTH_NONE = 1,     /* no client MACs; sources limited by allow (if set) */
    CONF_AUTH_MAC = 2,      /* every client request carries a valid MAC */
    CONF_AUTH_OPTIONAL = 3, /* MAC verified when present; without MAC only from allow */
};

/* Same numbers as DPDK's RTE_LOG_* levels (checked in conf.c), so they can be passed to
 * rte_log_set_global_level() as they are. */
enum conf_log_level {
    CONF_LOG_ERROR = 4,
    CONF_LOG_WARNING = 5,
    CONF_LOG_NOTICE = 6,
    CONF_LOG_INFO = 7,
    CONF_LOG_DEBUG = 8,
};

/* [cluster] */
struct conf_cluster {
    uint32_t id;                  /* nonzero; carried in every message header */
    char key_file[CONF_PATH_MAX]; /* resolved path the key was read from */
    uint8_t key[CONF_KEY_LEN];    /* peer MAC key (never all zeros) */
    uint32_t value_max;           /* largest key-value value, 1..MSG_VALUE_LEN_MAX */
    uint16_t probe_port;          /* UDP port of pktgen latency probes; 0 = off */
    enum conf_log_level log_level;
};

/* [node.<id>]: one replica. */
struct conf_node {
    uint32_t id;                   /* 1..CONF_NODE_ID_MAX, equal to the section suffix */
    uint8_t mac[6];                /* unicast Ethernet address of the replica's port */
    uint32_t ipv4;                 /* network byte order (as in struct msg_redirect) */
    uint16_t udp_port;             /* host byte order, 1..65535 */
    char eal[CONF_STR_MAX];        /* EAL arguments as written; split with conf_eal_argv */
    char port[CONF_PORT_NAME_MAX]; /* DPDK port name, or the index as written */
    int32_t port_index;            /* the index when port is a number, else -1 */
    char data_dir[CONF_PATH_MAX];  /* resolved path of the log and snapshots */
    uint8_t join;                  /* 1: not in the initial membership (a spare): starts empty,
                                    * joins when an operator adds it (docs/configuration.md) */
};

/* [replica]: tuning shared by all nodes. Every field has a default (conf_replica_defaults).
 * Stage lcores are members of lcores[]. */
struct conf_replica {
    uint32_t lcores_n;                /* >= 1 */
    uint32_t lcores[CONF_LCORES_MAX]; /* in file order, no duplicates; [0] is the main */
    uint32_t rx_lcore;
    uint32_t seq_lcore;
    uint32_t log_lcore;
    uint32_t apply_lcore;
    uint32_t tx_lcore;
    uint16_t rx_queues;       /* 1..16 */
    uint16_t tx_queues;       /* 1..16 */
    uint16_t rx_burst;        /* 1..512 */
    uint16_t tx_burst;        /* 1..512 */
    uint16_t rx_desc;         /* 64..16384 per queue */
    uint16_t tx_desc;         /* 64..16384 per queue */
    uint32_t mbufs;           /* mempool size; covers all descriptors + bursts */
    uint32_t ring_size;       /* power of two, 64..1048576 */
    uint32_t batch_count_max; /* commands per batch, 1..4096 */
    uint32_t batch_bytes_max; /* 512..CONF_BATCH_BYTES_LIMIT */
    uint32_t batch_time_us;   /* wait for more commands, 0..100000 */
    enum conf_idle idle;
    uint32_t election_ticks;   /* >= 2 * heartbeat_ticks */
    uint32_t heartbeat_ticks;  /* >= 1 */
    uint32_t tick_us;          /* 100..1000000 */
    uint64_t snapshot_entries; /* applied entries between snapshots; 0 = never */
    uint32_t pipeline_window;  /* entries in flight per follower, 1..4096 */
    uint64_t pipeline_bytes;   /* bytes in flight per follower, >= batch_bytes_max */
    uint32_t peer_mtu;         /* IP MTU of replica-to-replica frames, 1500..9000 */
    /* Snapshot policy and method besides snapshot_entries (docs/replica.md, "Snapshots"). */
    uint64_t snapshot_log_bytes; /* log bytes past the last snapshot that start one; 0 = never */
    enum conf_snapshot_mode snapshot_mode;
};

/* One allow entry: addr and mask in network byte order; addr has no host bits. */
struct conf_subnet {
    uint32_t addr;
    uint32_t mask;
    uint8_t prefix_len; /* 0..32 */
};

struct conf_client_key {
    uint64_t client_id; /* nonzero */
    uint8_t key[CONF_KEY_LEN];
};

/* [clients] */
struct conf_clients {
    enum conf_auth auth;
    uint32_t allow_n;
    struct conf_subnet allow[CONF_SUBNETS_MAX];
    uint32_t sessions_max; /* client sessions kept, 1..1048576 */
    uint32_t keys_n;
    struct conf_client_key *keys; /* owned by the conf, sorted by client_id, may be NULL */
};

struct conf {
    char path[CONF_PATH_MAX]; /* the file as passed to conf_load */
    struct conf_cluster cluster;
    uint32_t nodes_n;                      /* 1..MSG_NODES_MAX */
    struct conf_node nodes[MSG_NODES_MAX]; /* sorted by id */
    struct conf_replica replica;
    struct conf_clients clients;
};

/* What can hold an mbuf of the port's pool at the same time, each part at its worst
 * (docs/configuration.md, mbufs). conf_load refuses an mbufs below total. */
struct conf_mbuf_need {
    uint64_t descriptors; /* rx_queues x rx_desc + tx_queues x tx_desc (PMD rings) */
    uint32_t rings_n;     /* request and TX rings, and the peer ring when replicated */
    uint64_t rings;       /* rings_n x (ring_size - 1): an rte_ring holds size - 1 */
    uint32_t lcores_n;    /* distinct stage lcores (rx, seq, log, apply, tx) */
    uint64_t bursts;      /* lcores_n x (rx_burst + tx_burst): bursts in hand */
    uint64_t caches;      /* lcores_n x what a mempool cache holds (CONF_MBUF_CACHE_HELD) */
    uint64_t split;       /* rx_burst: multi-request items RX copied out and has not queued */
    uint64_t parked;      /* replicated (more than one node): CONF_MBUF_PARKED, else 0 */
    uint64_t replies;     /* replicated: min(CONF_MBUF_REPLIES_MAX, batch_count_max), else 0 */
    uint64_t total;
};

/* Fills need from c's [replica] and node count (c's stage lcores must be resolved, as
 * conf_load leaves them). Pure. */
ORDO_API void conf_mbufs_need(const struct conf *c, struct conf_mbuf_need *need);

/* Reads and validates the cluster file at path into *out, including the key files it names
 * (relative paths resolve against the directory of path). Touches no port, EAL or data
 * directory, and works without rte_eal_init. Control plane, any thread.
 * On success *out owns memory: release it with conf_free. On failure *out needs no
 * conf_free (it is left zeroed) and err says where and why, always naming the file and,
 * where there is one, the section and key, e.g.
 *   config/veth-3.ini: [replica] rx_burst: expected an integer in 1..512, got "0"
 * or the line for syntax errors (config/x.ini:7: ...).
 * Returns 0, ORDO_ECONFIG (any invalid content, unknown section or key, missing or
 * unreadable file), or -ENOMEM. */
ORDO_API int conf_load(const char *path, struct conf *out, struct ordo_errmsg *err);

/* Releases what conf_load allocated and wipes the key material. Accepts a zeroed conf and
 * may be called twice. */
ORDO_API void conf_free(struct conf *c);

/* Fills r with the documented defaults (one lcore 0 running every stage, back-off idle). */
ORDO_API void conf_replica_defaults(struct conf_replica *r);

/* The node with this id, or NULL. The result borrows c. */
ORDO_API const struct conf_node *conf_node_find(const struct conf *c, uint32_t id);

/* Whether a client request from ipv4 (network byte order) may be accepted WITHOUT a MAC:
 * auth = none: ipv4 is in an allow subnet, or allow is empty;
 * auth = optional: ipv4 is in an allow subnet;
 * auth = mac: never. */
ORDO_API bool conf_subnet_allows(const struct conf *c, uint32_t ipv4);

/* The MAC key of client_id (CONF_KEY_LEN bytes, borrowing c), or NULL when that client has
 * no key. O(log keys_n). */
ORDO_API const uint8_t *conf_client_key(const struct conf *c, uint64_t client_id);

/* An argv for rte_eal_init: argv[0] = prog, then the arguments of args split at blanks,
 * then NULL. Quoting: '...' is literal; "..." is literal except \" and \\; outside quotes
 * a backslash escapes the next character; '' or "" gives an empty argument.
 * Self-contained (no allocation): rte_eal_init may permute argv freely. */
struct conf_argv {
    int argc;
    char *argv[CONF_EAL_ARGS_MAX + 2];
    char buf[CONF_STR_MAX + CONF_PORT_NAME_MAX + CONF_EAL_ARGS_MAX];
};

/* Splits args (at most CONF_STR_MAX - 1 chars) as described above; prog is at most
 * CONF_PORT_NAME_MAX - 1 chars. Returns 0, or ORDO_ECONFIG (unterminated quote, dangling
 * backslash, more than CONF_EAL_ARGS_MAX arguments, or a string too long) with err set.
 * conf_load has already checked every node's eal with it. */
ORDO_API int conf_eal_argv(const char *args, const char *prog, struct conf_argv *out,
                           struct ordo_errmsg *err);

/* Writes r's lcores as a list for EAL's -l option ("0,2,3") into buf (NUL-terminated).
 * The eal key may not carry -l, -c, --lcores or --main-lcore, so lcores is the one source.
 * Returns the length written, or -ENOSPC if len is too small. */
ORDO_API int conf_lcores_list(const struct conf_replica *r, char *buf, size_t len);

#endif
