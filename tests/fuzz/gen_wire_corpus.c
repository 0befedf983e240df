/* Writes the seed corpus of fuzz_wire (valid messages of every type, bare and inside
 * Eth/IPv4/UDP frames, plus ARP, ICMP echo and a pktgen probe frame), or with --example
 * prints the PUT request frame shown in docs/protocol.md. Test tool. */
#include <stdio.h>
#include <string.h>

#include "engine/err.h"
#include "engine/frame.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"
#include "tests/unit/wire_sample.h"

#define GEN_VARIANTS 4u

static const struct frame_udp_addr gen_addr = {
    .src_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
    .dst_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02},
    .src_ip = 0x010012c6u, /* 198.18.0.1 as stored on a little-endian host */
    .dst_ip = 0x020012c6u, /* 198.18.0.2 */
    .src_port = 40000,
    .dst_port = 7400,
};

static uint8_t gen_msg[WIRE_MSG_LEN_MAX];
static uint8_t gen_frame[MSG_FRAME_LEN_MAX];
static struct wire_sample gen_sample;

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "gen_wire_corpus: cannot write %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int gen_messages(const char *dir, const struct wire_key *key)
{
    char name[64];
    for (size_t t = 0; t < wire_sample_types_n; t++) {
        uint8_t type = wire_sample_types[t];
        for (uint32_t v = 0; v < GEN_VARIANTS + 1; v++) {
            if (v == GEN_VARIANTS && type != MSG_CLIENT_REQUEST && type != MSG_APPEND_ENTRIES) {
                break;
            }
            /* The extra variant is the largest: 4000 bytes of args, or 64 entries. */
            wire_sample_fill(&gen_sample, type,
                             v < GEN_VARIANTS ? v : (type == MSG_CLIENT_REQUEST ? 5 : 7));
            /* Clients: one variant with a per-client MAC, the others without. */
            const struct wire_key *k = msg_type_is_peer(type) || v == 1 ? key : NULL;
            int n = wire_encode(&gen_sample.m, k, gen_msg, sizeof(gen_msg));
            if (n < 0) {
                fprintf(stderr, "gen_wire_corpus: encode %u: %s\n", type, ordo_strerror(n));
                return -1;
            }
            int f = frame_build_udp(gen_frame, sizeof(gen_frame), &gen_addr, gen_msg, (size_t)n, 0);
            snprintf(name, sizeof(name), "frame-t%02u-v%u", type, v);
            if (f < 0 || write_file(dir, name, gen_frame, (size_t)f) < 0) {
                return -1;
            }
            snprintf(name, sizeof(name), "msg-t%02u-v%u", type, v);
            if (v < 2 && write_file(dir, name, gen_msg, (size_t)n) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Multi-request and multi-reply frames of 1, 3 and 16 items, bare and inside a frame. */
static int gen_multi(const char *dir)
{
    static const uint32_t counts[] = {1, 3, 16};
    static const uint8_t types[] = {MSG_CLIENT_MULTI_REQUEST, MSG_CLIENT_MULTI_REPLY};
    char name[64];
    for (size_t t = 0; t < sizeof(types); t++) {
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            int n = wire_sample_multi(types[t], counts[c], gen_msg, sizeof(gen_msg));
            int f = n < 0 ? n
                          : frame_build_udp(gen_frame, sizeof(gen_frame), &gen_addr, gen_msg,
                                            (size_t)n, 0);
            if (f < 0) {
                fprintf(stderr, "gen_wire_corpus: multi %u: %s\n", types[t], ordo_strerror(f));
                return -1;
            }
            snprintf(name, sizeof(name), "frame-t%02u-n%u", types[t], counts[c]);
            if (write_file(dir, name, gen_frame, (size_t)f) < 0) {
                return -1;
            }
            snprintf(name, sizeof(name), "msg-t%02u-n%u", types[t], counts[c]);
            if (write_file(dir, name, gen_msg, (size_t)n) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int gen_other_frames(const char *dir)
{
    uint8_t probe[30];
    memset(probe, 0, sizeof(probe));
    const uint8_t fields[8] = {0xfe, 0xca, 0x0d, 0xf0, 3, 0, 0, 0};
    memcpy(probe + FRAME_PROBE_OFF, fields, sizeof(fields));
    struct frame_udp_addr a = gen_addr;
    a.dst_port = FRAME_PROBE_PORT;
    int n = frame_build_udp(gen_frame, sizeof(gen_frame), &a, probe, sizeof(probe), 0);
    if (n < 0 || write_file(dir, "frame-probe", gen_frame, (size_t)n) < 0) {
        return -1;
    }
    n = frame_build_arp(gen_frame, sizeof(gen_frame), FRAME_ARP_OP_REQUEST, gen_addr.src_mac,
                        gen_addr.src_ip, NULL, gen_addr.dst_ip);
    if (n < 0 || write_file(dir, "frame-arp", gen_frame, (size_t)n) < 0) {
        return -1;
    }
    n = frame_build_icmp_echo(gen_frame, sizeof(gen_frame), &gen_addr, 1, 1,
                              (const uint8_t *)"ordo", 4, 0);
    if (n < 0 || write_file(dir, "frame-icmp", gen_frame, (size_t)n) < 0) {
        return -1;
    }
    return 0;
}

/* The docs example: PUT "user:42" = "hello ordo" from client 0x1122334455667788, request
 * number 7, cluster 42, without a client MAC, 198.18.0.1:40000 -> 198.18.0.2:7400. */
static int print_example(void)
{
    uint8_t args[64];
    int a = sm_kv_encode_put(args, sizeof(args), "user:42", 7, "hello ordo", 10);
    if (a < 0) {
        fprintf(stderr, "gen_wire_corpus: sm_kv_encode_put: %s\n", ordo_strerror(a));
        return 1;
    }
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = 42;
    m.u.request =
        (struct msg_client_request){0x1122334455667788ull, 7, 0, SM_KV_OP_PUT, (uint32_t)a, args};
    int n = wire_encode(&m, NULL, gen_msg, sizeof(gen_msg));
    int f =
        n < 0 ? n : frame_build_udp(gen_frame, sizeof(gen_frame), &gen_addr, gen_msg, (size_t)n, 0);
    if (f < 0) {
        fprintf(stderr, "gen_wire_corpus: %s\n", ordo_strerror(f));
        return 1;
    }
    printf("# PUT request frame: %d bytes (UDP payload %d bytes at offset %d)\n", f, n,
           FRAME_UDP_PAYLOAD_OFF);
    for (int i = 0; i < f; i += 16) {
        printf("%04x ", i);
        for (int j = i; j < i + 16 && j < f; j++) {
            printf(" %02x", gen_frame[j]);
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (wire_init() != 0) {
        fprintf(stderr, "gen_wire_corpus: wire_init failed\n");
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--example") == 0) {
        return print_example();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: gen_wire_corpus DIR | --example\n");
        return 2;
    }
    struct wire_key key;
    wire_sample_key(&key, 1);
    if (gen_messages(argv[1], &key) < 0 || gen_other_frames(argv[1]) < 0 ||
        gen_multi(argv[1]) < 0) {
        return 1;
    }
    return 0;
}
