/* ordo-pcapgen: runs the tool (path in $ORDO_PCAPGEN), reads its pcap back with libpcap and
 * checks that every frame decodes (frame_parse + wire_decode + sm_kv_decode) as a valid
 * no-session client request with the requested addresses and operation mix. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/frame.h"
#include "engine/msg.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

struct pcapgen_seen {
    unsigned frames;
    unsigned bad;
    unsigned ops[4]; /* indexed by SM_KV_OP_* (1..3) */
    uint64_t first_no;
    uint64_t last_no;
};

static char pcapgen_path[64];

/* Runs ordo-pcapgen with args into a fresh temporary file; returns its exit status. */
static int pcapgen_run(const char *args)
{
    const char *bin = getenv("ORDO_PCAPGEN");
    cr_assert_not_null(bin, "ORDO_PCAPGEN (path of ordo-pcapgen) not set");
    snprintf(pcapgen_path, sizeof(pcapgen_path), "/tmp/test_pcapgen.%d.pcap", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s --out %s %s >/dev/null 2>&1", bin, pcapgen_path, args);
    int st = system(cmd);
    cr_assert_neq(st, -1);
    return WEXITSTATUS(st);
}

/* Checks one frame; returns 0 if it is a valid request as expected, else -1. */
static int pcapgen_check(const uint8_t *buf, size_t len, uint32_t value_size,
                         struct pcapgen_seen *s)
{
    struct frame_info fi;
    struct msg m;
    struct sm_kv_args a;
    if (frame_parse(buf, len, 0, &fi) != FRAME_KIND_UDP || fi.dst_port != 7001 ||
        fi.src_port != 40001 || fi.dst_ip != htonl(0xc612000bu) ||
        fi.src_ip != htonl(0xc6120001u) || fi.dst_mac[5] != 0x0b) {
        return -1;
    }
    if (wire_decode(fi.payload, fi.payload_len, &m, NULL, 0) != 0 ||
        m.hdr.type != MSG_CLIENT_REQUEST || m.hdr.cluster_id != 7 ||
        wire_check_cluster(fi.payload, fi.payload_len, 7) != 0) {
        return -1;
    }
    const struct msg_client_request *r = &m.u.request;
    if (r->flags != MSG_REQ_NO_SESSION || r->client_id != 42 || r->op < 1 || r->op > 3 ||
        sm_kv_decode(r->op, r->args, r->args_len, SM_KV_VALUE_MAX, &a) != 0) {
        return -1;
    }
    if (r->op == SM_KV_OP_PUT && a.value_len != value_size) {
        return -1;
    }
    s->ops[r->op]++;
    s->first_no = s->frames == 0 ? r->request_no : s->first_no;
    s->last_no = r->request_no;
    return 0;
}

static void pcapgen_read(uint32_t value_size, struct pcapgen_seen *s)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(pcapgen_path, errbuf);
    cr_assert_not_null(p, "pcap_open_offline: %s", errbuf);
    cr_assert_eq(pcap_datalink(p), DLT_EN10MB);
    struct pcap_pkthdr *h;
    const u_char *data;
    memset(s, 0, sizeof(*s));
    while (pcap_next_ex(p, &h, &data) == 1) {
        cr_assert_eq(h->caplen, h->len);
        if (pcapgen_check(data, h->caplen, value_size, s) != 0) {
            s->bad++;
        }
        s->frames++;
    }
    pcap_close(p);
    unlink(pcapgen_path);
}

#define PCAPGEN_ADDR                                                                               \
    "--dst-mac 02:00:c6:12:00:0b --dst-ip 198.18.0.11 --dst-port 7001 --cluster-id 7 "             \
    "--src-ip 198.18.0.1 --src-port 40001 --client-id 42 "

Test(pcapgen, every_frame_is_a_valid_no_session_request)
{
    struct pcapgen_seen s;
    cr_assert_eq(wire_init(), 0);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--count 500 --value-size 100 --keys 50"), 0);
    pcapgen_read(100, &s);
    cr_assert_eq(s.frames, 500);
    cr_assert_eq(s.bad, 0, "%u frames did not decode as valid requests", s.bad);
    cr_assert_eq(s.first_no, 1);
    cr_assert_eq(s.last_no, 500);
}

Test(pcapgen, operation_mix_is_exact)
{
    struct pcapgen_seen s;
    cr_assert_eq(wire_init(), 0);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--count 1000 --mix 6:3:1 --value-size 8"), 0);
    pcapgen_read(8, &s);
    cr_assert_eq(s.bad, 0);
    cr_assert_eq(s.ops[SM_KV_OP_PUT], 600);
    cr_assert_eq(s.ops[SM_KV_OP_GET], 300);
    cr_assert_eq(s.ops[SM_KV_OP_DELETE], 100);
}

Test(pcapgen, gets_only_mix_has_no_writes)
{
    struct pcapgen_seen s;
    cr_assert_eq(wire_init(), 0);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--count 64 --mix 0:1:0"), 0);
    pcapgen_read(0, &s);
    cr_assert_eq(s.bad, 0);
    cr_assert_eq(s.ops[SM_KV_OP_GET], 64);
}

Test(pcapgen, bad_options_are_rejected)
{
    cr_assert_eq(pcapgen_run("--dst-ip 198.18.0.11 --dst-port 7001 --cluster-id 7"), 2);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--mix 0:0:0"), 2);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--value-size 5000"), 2);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--dst-mac 02:00:zz:12:00:0b"), 2);
    cr_assert_eq(pcapgen_run(PCAPGEN_ADDR "--config /nonexistent.ini"), 2);
    unlink(pcapgen_path);
}
