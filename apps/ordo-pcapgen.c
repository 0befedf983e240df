/* ordo-pcapgen: writes a classic pcap file of Ordo client requests (key-value PUT/GET/
 * DELETE) addressed to one replica, for replay with tcpreplay or Pktgen-DPDK (-s port:file).
 * Every request carries MSG_REQ_NO_SESSION so a replayed loop still executes (docs/pcapgen.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/frame.h"
#include "engine/msg.h"
#include "engine/runtime/conf.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

#define PCAPGEN_OPS 3 /* put, get, del */
#define PCAPGEN_KEY_LEN 16u
#define PCAPGEN_SNAPLEN 65535u
#define PCAPGEN_LINKTYPE_ETHERNET 1u
#define PCAPGEN_MAGIC 0xa1b2c3d4u /* microsecond timestamps, writer's byte order */

struct pcapgen_opts {
    const char *out;
    const char *config;
    uint32_t node;
    struct frame_udp_addr addr;
    uint32_t cluster_id;
    uint32_t weight[PCAPGEN_OPS]; /* put, get, del */
    uint64_t keys;
    uint32_t value_size;
    uint64_t count;
    uint64_t client_id;
    uint64_t first_no;
    int have_dst_mac;
    int have_dst_ip;
};

static const uint8_t pcapgen_op_code[PCAPGEN_OPS] = {SM_KV_OP_PUT, SM_KV_OP_GET, SM_KV_OP_DELETE};

static void pcapgen_usage(FILE *f)
{
    fprintf(f, "usage: ordo-pcapgen --out FILE [--config FILE --node ID | --dst-mac M --dst-ip A\n"
               "         --dst-port P --cluster-id N] [--src-mac M] [--src-ip A] [--src-port P]\n"
               "         [--mix PUT:GET:DEL] [--keys N] [--value-size N] [--count N]\n"
               "         [--client-id N] [--first-request-no N]\n"
               "Writes COUNT key-value requests (MSG_REQ_NO_SESSION: at-least-once benchmarking\n"
               "mode) as Ethernet frames to FILE (pcap). Defaults: mix 50:50:0, keys 1000,\n"
               "value-size 64, count 1000, client-id 1, src 02:00:00:00:00:01 198.18.0.1:40000.\n"
               "--config/--node take the destination MAC, IPv4, port and cluster id from a\n"
               "cluster file; explicit --dst-* options override them.\n");
}

static int pcapgen_num(const char *name, const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        fprintf(stderr, "ordo-pcapgen: --%s: expected an integer in 0..%" PRIu64 ", got \"%s\"\n",
                name, max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int pcapgen_mac(const char *name, const char *s, uint8_t mac[FRAME_MAC_LEN])
{
    unsigned b[FRAME_MAC_LEN];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) !=
        FRAME_MAC_LEN) {
        fprintf(stderr, "ordo-pcapgen: --%s: expected a MAC aa:bb:cc:dd:ee:ff, got \"%s\"\n", name,
                s);
        return -EINVAL;
    }
    for (int i = 0; i < FRAME_MAC_LEN; i++) {
        mac[i] = (uint8_t)b[i];
    }
    return 0;
}

static int pcapgen_ip(const char *name, const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) {
        fprintf(stderr, "ordo-pcapgen: --%s: expected an IPv4 address, got \"%s\"\n", name, s);
        return -EINVAL;
    }
    *out = a.s_addr;
    return 0;
}

static int pcapgen_mix(const char *s, uint32_t w[PCAPGEN_OPS])
{
    unsigned a, b, c;
    char tail;
    if (sscanf(s, "%u:%u:%u%c", &a, &b, &c, &tail) != 3 || a > 1000000u || b > 1000000u ||
        c > 1000000u || a + b + c == 0) {
        fprintf(stderr,
                "ordo-pcapgen: --mix: expected PUT:GET:DEL weights (not all 0), got"
                " \"%s\"\n",
                s);
        return -EINVAL;
    }
    w[0] = a;
    w[1] = b;
    w[2] = c;
    return 0;
}

enum {
    OPT_OUT = 256,
    OPT_CONFIG,
    OPT_NODE,
    OPT_DST_MAC,
    OPT_DST_IP,
    OPT_DST_PORT,
    OPT_CLUSTER,
    OPT_SRC_MAC,
    OPT_SRC_IP,
    OPT_SRC_PORT,
    OPT_MIX,
    OPT_KEYS,
    OPT_VALUE,
    OPT_COUNT,
    OPT_CLIENT,
    OPT_FIRST,
    OPT_HELP,
};

static const struct option pcapgen_longopts[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"node", required_argument, NULL, OPT_NODE},
    {"dst-mac", required_argument, NULL, OPT_DST_MAC},
    {"dst-ip", required_argument, NULL, OPT_DST_IP},
    {"dst-port", required_argument, NULL, OPT_DST_PORT},
    {"cluster-id", required_argument, NULL, OPT_CLUSTER},
    {"src-mac", required_argument, NULL, OPT_SRC_MAC},
    {"src-ip", required_argument, NULL, OPT_SRC_IP},
    {"src-port", required_argument, NULL, OPT_SRC_PORT},
    {"mix", required_argument, NULL, OPT_MIX},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"value-size", required_argument, NULL, OPT_VALUE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"client-id", required_argument, NULL, OPT_CLIENT},
    {"first-request-no", required_argument, NULL, OPT_FIRST},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* One numeric option into its field; returns 0 or -EINVAL. */
static int pcapgen_opt_num(struct pcapgen_opts *o, int c, const char *arg)
{
    uint64_t v = 0;
    int rc;
    switch (c) {
    case OPT_NODE:
        rc = pcapgen_num("node", arg, CONF_NODE_ID_MAX, &v);
        o->node = (uint32_t)v;
        return rc;
    case OPT_DST_PORT:
    case OPT_SRC_PORT:
        rc = pcapgen_num(c == OPT_DST_PORT ? "dst-port" : "src-port", arg, 65535, &v);
        if (rc == 0 && v == 0) {
            fprintf(stderr, "ordo-pcapgen: ports are 1..65535\n");
            rc = -EINVAL;
        }
        *(c == OPT_DST_PORT ? &o->addr.dst_port : &o->addr.src_port) = (uint16_t)v;
        return rc;
    case OPT_CLUSTER:
        rc = pcapgen_num("cluster-id", arg, UINT32_MAX, &v);
        o->cluster_id = (uint32_t)v;
        return rc;
    case OPT_KEYS:
        return pcapgen_num("keys", arg, 10000000000ull, &o->keys);
    case OPT_VALUE:
        rc = pcapgen_num("value-size", arg, SM_KV_VALUE_MAX, &v);
        o->value_size = (uint32_t)v;
        return rc;
    case OPT_COUNT:
        return pcapgen_num("count", arg, 100000000ull, &o->count);
    case OPT_CLIENT:
        return pcapgen_num("client-id", arg, UINT64_MAX, &o->client_id);
    case OPT_FIRST:
        return pcapgen_num("first-request-no", arg, UINT64_MAX / 2, &o->first_no);
    default:
        return -EINVAL;
    }
}

static int pcapgen_opt(struct pcapgen_opts *o, int c, const char *arg)
{
    switch (c) {
    case OPT_OUT:
        o->out = arg;
        return 0;
    case OPT_CONFIG:
        o->config = arg;
        return 0;
    case OPT_DST_MAC:
        o->have_dst_mac = 1;
        return pcapgen_mac("dst-mac", arg, o->addr.dst_mac);
    case OPT_DST_IP:
        o->have_dst_ip = 1;
        return pcapgen_ip("dst-ip", arg, &o->addr.dst_ip);
    case OPT_SRC_MAC:
        return pcapgen_mac("src-mac", arg, o->addr.src_mac);
    case OPT_SRC_IP:
        return pcapgen_ip("src-ip", arg, &o->addr.src_ip);
    case OPT_MIX:
        return pcapgen_mix(arg, o->weight);
    default:
        return pcapgen_opt_num(o, c, arg);
    }
}

static void pcapgen_defaults(struct pcapgen_opts *o)
{
    static const uint8_t src_mac[FRAME_MAC_LEN] = {0x02, 0, 0, 0, 0, 0x01};
    memset(o, 0, sizeof(*o));
    memcpy(o->addr.src_mac, src_mac, FRAME_MAC_LEN);
    o->addr.src_ip = htonl(0xc6120001u); /* 198.18.0.1 */
    o->addr.src_port = 40000;
    o->weight[0] = 50;
    o->weight[1] = 50;
    o->keys = 1000;
    o->value_size = 64;
    o->count = 1000;
    o->client_id = 1;
    o->first_no = 1;
}

/* Destination from the cluster file; explicit --dst-* options given before win. */
static int pcapgen_from_config(struct pcapgen_opts *o, int have_port, int have_cluster)
{
    struct conf c;
    struct ordo_errmsg err;
    memset(&err, 0, sizeof(err));
    int rc = conf_load(o->config, &c, &err);
    if (rc != 0) {
        fprintf(stderr, "ordo-pcapgen: %s\n", err.text);
        return rc;
    }
    uint32_t id = o->node != 0 ? o->node : c.nodes[0].id;
    const struct conf_node *n = conf_node_find(&c, id);
    if (n == NULL) {
        fprintf(stderr, "ordo-pcapgen: %s has no node %" PRIu32 "\n", o->config, id);
        conf_free(&c);
        return -EINVAL;
    }
    if (!o->have_dst_mac) {
        memcpy(o->addr.dst_mac, n->mac, FRAME_MAC_LEN);
        o->have_dst_mac = 1;
    }
    if (!o->have_dst_ip) {
        o->addr.dst_ip = n->ipv4;
        o->have_dst_ip = 1;
    }
    o->addr.dst_port = have_port ? o->addr.dst_port : n->udp_port;
    o->cluster_id = have_cluster ? o->cluster_id : c.cluster.id;
    conf_free(&c);
    return 0;
}

static int pcapgen_parse(int argc, char **argv, struct pcapgen_opts *o)
{
    int c;
    int have_port = 0;
    int have_cluster = 0;
    pcapgen_defaults(o);
    while ((c = getopt_long(argc, argv, "", pcapgen_longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            pcapgen_usage(stdout);
            exit(0);
        }
        if (c == '?' || pcapgen_opt(o, c, optarg) != 0) {
            return -EINVAL;
        }
        have_port |= c == OPT_DST_PORT;
        have_cluster |= c == OPT_CLUSTER;
    }
    if (optind != argc || o->out == NULL) {
        fprintf(stderr, "ordo-pcapgen: --out is required (no positional arguments)\n");
        return -EINVAL;
    }
    if (o->config != NULL && pcapgen_from_config(o, have_port, have_cluster) != 0) {
        return -EINVAL;
    }
    if (!o->have_dst_mac || !o->have_dst_ip || o->addr.dst_port == 0 || o->cluster_id == 0) {
        fprintf(stderr, "ordo-pcapgen: give --config, or --dst-mac, --dst-ip, --dst-port and"
                        " a nonzero --cluster-id\n");
        return -EINVAL;
    }
    if (o->keys == 0 || o->client_id == 0 || o->first_no == 0) {
        fprintf(stderr, "ordo-pcapgen: --keys, --client-id, --first-request-no must be > 0\n");
        return -EINVAL;
    }
    return 0;
}

/* Smooth weighted round robin: every op gets exactly its share of each cycle of
 * sum(weights) requests, spread evenly rather than in runs. */
static int pcapgen_pick(const uint32_t w[PCAPGEN_OPS], int64_t credit[PCAPGEN_OPS])
{
    int64_t total = 0;
    int best = 0;
    for (int i = 0; i < PCAPGEN_OPS; i++) {
        credit[i] += w[i];
        total += w[i];
        if (credit[i] > credit[best]) {
            best = i;
        }
    }
    credit[best] -= total;
    return best;
}

/* Keys walk the key space with a multiplicative step so successive requests touch
 * different keys; fixed 16 bytes, printable ("k" + 15 digits). */
static void pcapgen_key(uint64_t i, uint64_t keys, char key[PCAPGEN_KEY_LEN + 1])
{
    uint64_t k = (i * 2654435761ull) % keys;
    snprintf(key, PCAPGEN_KEY_LEN + 1, "k%015" PRIu64, (uint64_t)(k % 1000000000000000ull));
}

static int pcapgen_record(FILE *f, uint64_t i, const uint8_t *frame, uint32_t len)
{
    /* One microsecond apart: tcpreplay paces by --pps/--mbps anyway. */
    uint32_t rec[4] = {(uint32_t)(i / 1000000u), (uint32_t)(i % 1000000u), len, len};
    if (fwrite(rec, sizeof(rec), 1, f) != 1 || fwrite(frame, len, 1, f) != 1) {
        return -EIO;
    }
    return 0;
}

/* Builds request i (op index opi) into frame; returns the frame length or an error. */
static int pcapgen_frame(const struct pcapgen_opts *o, uint64_t i, int opi, uint8_t *frame,
                         size_t cap)
{
    static uint8_t value[SM_KV_VALUE_MAX];
    uint8_t args[SM_KV_ARGS_MAX];
    char key[PCAPGEN_KEY_LEN + 1];
    int n;
    memset(value, 'v', o->value_size);
    pcapgen_key(i, o->keys, key);
    if (opi == 0) {
        n = sm_kv_encode_put(args, sizeof(args), key, PCAPGEN_KEY_LEN, value, o->value_size);
    } else if (opi == 1) {
        n = sm_kv_encode_get(args, sizeof(args), key, PCAPGEN_KEY_LEN);
    } else {
        n = sm_kv_encode_del(args, sizeof(args), key, PCAPGEN_KEY_LEN);
    }
    if (n < 0) {
        return n;
    }
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = o->cluster_id;
    m.u.request.client_id = o->client_id;
    m.u.request.request_no = o->first_no + i;
    m.u.request.flags = MSG_REQ_NO_SESSION;
    m.u.request.op = pcapgen_op_code[opi];
    m.u.request.args_len = (uint32_t)n;
    m.u.request.args = args;
    uint8_t *payload = frame + FRAME_UDP_PAYLOAD_OFF;
    n = wire_encode(&m, NULL, payload, cap - FRAME_UDP_PAYLOAD_OFF);
    if (n < 0) {
        return n;
    }
    return frame_build_udp(frame, cap, &o->addr, payload, (size_t)n, 0);
}

static int pcapgen_write(const struct pcapgen_opts *o, FILE *f, uint64_t done[PCAPGEN_OPS])
{
    static uint8_t frame[MSG_FRAME_LEN_MAX];
    int64_t credit[PCAPGEN_OPS] = {0, 0, 0};
    uint32_t ghdr[6] = {PCAPGEN_MAGIC,   2u | (4u << 16),          0, 0,
                        PCAPGEN_SNAPLEN, PCAPGEN_LINKTYPE_ETHERNET};
    /* Version is two u16 (major 2, minor 4) in the writer's byte order. */
    uint16_t ver[2] = {2, 4};
    memcpy(&ghdr[1], ver, sizeof(ver));
    if (fwrite(ghdr, sizeof(ghdr), 1, f) != 1) {
        return -EIO;
    }
    for (uint64_t i = 0; i < o->count; i++) {
        int opi = pcapgen_pick(o->weight, credit);
        int len = pcapgen_frame(o, i, opi, frame, sizeof(frame));
        if (len < 0) {
            fprintf(stderr, "ordo-pcapgen: request %" PRIu64 ": %s\n", i, ordo_strerror(len));
            return len;
        }
        if (pcapgen_record(f, i, frame, (uint32_t)len) != 0) {
            return -EIO;
        }
        done[opi]++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct pcapgen_opts o;
    uint64_t done[PCAPGEN_OPS] = {0, 0, 0};
    if (pcapgen_parse(argc, argv, &o) != 0) {
        pcapgen_usage(stderr);
        return 2;
    }
    if (wire_init() != 0) {
        fprintf(stderr, "ordo-pcapgen: libsodium initialisation failed\n");
        return 1;
    }
    FILE *f = fopen(o.out, "wb");
    if (f == NULL) {
        fprintf(stderr, "ordo-pcapgen: %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    int rc = pcapgen_write(&o, f, done);
    if (fclose(f) != 0 && rc == 0) {
        rc = -EIO;
    }
    if (rc != 0) {
        fprintf(stderr, "ordo-pcapgen: writing %s failed\n", o.out);
        return 1;
    }
    printf("ordo-pcapgen: wrote %" PRIu64 " requests to %s: put=%" PRIu64 " get=%" PRIu64
           " del=%" PRIu64 "\n",
           o.count, o.out, done[0], done[1], done[2]);
    return 0;
}
