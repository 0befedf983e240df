/* Fuzz target for the frame parser and the wire codec: any bytes, as a whole frame or as a
 * bare UDP payload. Invariants (abort on violation): an accepted message re-encodes to the
 * same bytes outside the MAC field and decodes again to the same message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/frame.h"
#include "engine/wire.h"
#include "tests/fuzz/fuzz.h"
#include "tests/unit/wire_sample.h"

static uint8_t fuzz_copy[1u << 16];

static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_wire: invariant broken: %s\n", what);
    abort();
}

/* Exercises the reply builders on a private copy (they write). */
static void fuzz_frame_replies(const uint8_t *data, size_t size, const struct frame_info *fi)
{
    static const uint8_t my_mac[FRAME_MAC_LEN] = {2, 0, 0, 0, 0, 9};
    if (size > sizeof(fuzz_copy)) {
        return;
    }
    memcpy(fuzz_copy, data, size);
    if (fi->kind == FRAME_KIND_UDP) {
        if (frame_swap_reply(fuzz_copy, size) != 0) {
            fuzz_fail("swap_reply refused a parsed UDP frame");
        }
        struct frame_info again;
        if (frame_parse(fuzz_copy, size, FRAME_SKIP_UDP_CSUM, &again) != FRAME_KIND_UDP) {
            fuzz_fail("swapped frame does not parse");
        }
    } else if (fi->kind == FRAME_KIND_ICMP_ECHO) {
        int n = frame_icmp_echo_reply(data, size, fi, fuzz_copy, sizeof(fuzz_copy), 0);
        if (n <= 0 || (size_t)n > size) {
            fuzz_fail("echo reply of a parsed echo request");
        }
    } else if (fi->kind == FRAME_KIND_ARP) {
        (void)frame_arp_reply(fi, my_mac, fi->dst_ip, fuzz_copy, sizeof(fuzz_copy));
    }
}

/* Every item of an accepted multi frame decodes alone to the same message, its MAC check
 * runs, and the walk ends after exactly the counted items. */
static void fuzz_multi_items(const struct msg *m, const struct wire_key *key)
{
    struct wire_multi_iter it;
    struct msg item;
    struct msg alone;
    const uint8_t *raw;
    size_t raw_len;
    uint32_t n = 0;
    wire_multi_iter_init(&it, m);
    int rc;
    while ((rc = wire_multi_next(&it, &item, &raw, &raw_len)) == 1) {
        n++;
        (void)wire_verify(raw, raw_len, key);
        if (wire_decode(raw, raw_len, &alone, NULL, 0) != 0) {
            fuzz_fail("an item of an accepted multi frame does not decode alone");
        }
        if (item.hdr.type != alone.hdr.type || item.hdr.cluster_id != m->hdr.cluster_id) {
            fuzz_fail("a multi item differs from its decoding alone");
        }
    }
    if (rc != 0 || n != m->u.multi.n) {
        fuzz_fail("accepted multi frame: item walk disagrees with its count");
    }
}

static void fuzz_message(const uint8_t *buf, size_t len, const struct wire_key *key)
{
    static struct msg_entry entries[MSG_ENTRIES_MAX];
    static struct msg_entry entries2[MSG_ENTRIES_MAX];
    static uint8_t again[WIRE_MSG_LEN_MAX];
    static uint8_t third[WIRE_MSG_LEN_MAX];
    struct msg_header hdr;
    struct msg m;
    struct msg m2;
    (void)wire_peek_header(buf, len, &hdr);
    (void)wire_check_cluster(buf, len, 0x2a);
    (void)wire_verify(buf, len, key);
    if (wire_decode(buf, len, &m, entries, MSG_ENTRIES_MAX) != 0) {
        return;
    }
    if (m.hdr.type == MSG_CLIENT_MULTI_REQUEST || m.hdr.type == MSG_CLIENT_MULTI_REPLY) {
        fuzz_multi_items(&m, key);
    }
    const struct wire_key *k = (m.hdr.flags & MSG_HDR_MAC) ? key : NULL;
    int n = wire_encode(&m, k, again, sizeof(again));
    if (n < 0 || (size_t)n != len || n != (int)wire_encoded_len(&m)) {
        fuzz_fail("accepted message does not re-encode to its length");
    }
    if (memcmp(again, buf, WIRE_MAC_OFF) != 0 ||
        memcmp(again + WIRE_HDR_LEN, buf + WIRE_HDR_LEN, len - WIRE_HDR_LEN) != 0) {
        fuzz_fail("re-encoding differs outside the MAC field");
    }
    if (wire_decode(again, (size_t)n, &m2, entries2, MSG_ENTRIES_MAX) != 0) {
        fuzz_fail("re-encoded message does not decode");
    }
    if (k != NULL && wire_verify(again, (size_t)n, key) != 0) {
        fuzz_fail("re-encoded MAC does not verify");
    }
    if (wire_encode(&m2, k, third, sizeof(third)) != n || memcmp(third, again, (size_t)n) != 0) {
        fuzz_fail("second round trip differs");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static struct wire_key key;
    if (!ready) {
        if (wire_init() != 0) {
            fuzz_fail("wire_init");
        }
        wire_sample_key(&key, 1);
        ready = 1;
    }
    struct frame_info fi;
    int kind = frame_parse(data, size, 0, &fi);
    if (kind > 0) {
        fuzz_frame_replies(data, size, &fi);
    }
    if (kind == FRAME_KIND_UDP) {
        if (fi.payload < data || fi.payload + fi.payload_len > data + size) {
            fuzz_fail("payload outside the frame");
        }
        fuzz_message(fi.payload, fi.payload_len, &key);
    } else {
        fuzz_message(data, size, &key);
    }
    return 0;
}
