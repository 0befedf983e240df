/* Unit tests of the wire codec: round trips of every message type, rejection of every
 * truncation, corruption and header error, MAC and cluster checks, drop counters. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/err.h"
#include "engine/wire.h"
#include "tests/unit/wire_sample.h"

#define VARIANTS 8u

static struct wire_sample sample;
static uint8_t frame[WIRE_MSG_LEN_MAX];
static struct msg_entry entries[MSG_ENTRIES_MAX];

static void setup(void)
{
    cr_assert_eq(wire_init(), 0);
}

TestSuite(wire, .init = setup);

/* Encodes (type, variant) with the cluster key (peers) or without (clients). */
static int encode_sample(uint8_t type, uint32_t variant, const struct wire_key *key)
{
    wire_sample_fill(&sample, type, variant);
    int n = wire_encode(&sample.m, key, frame, sizeof(frame));
    cr_assert_gt(n, 0, "encode type %u variant %u: %s", type, variant, ordo_strerror(n));
    cr_assert_eq((size_t)n, wire_encoded_len(&sample.m));
    return n;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void round_trip(uint8_t type)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    for (uint32_t v = 0; v < VARIANTS; v++) {
        int n = encode_sample(type, v, &key);
        struct msg out;
        int rc = wire_decode(frame, (size_t)n, &out, entries, MSG_ENTRIES_MAX);
        cr_assert_eq(rc, 0, "decode type %u variant %u: %s", type, v, ordo_strerror(rc));
        const char *d = wire_sample_diff(&sample.m, &out);
        cr_assert_null(d, "type %u variant %u: field %s differs", type, v, d);
        cr_assert_eq(out.hdr.version, WIRE_VERSION);
        cr_assert_eq(out.hdr.body_len, (uint32_t)n - WIRE_HDR_LEN);
        cr_assert(out.hdr.flags & MSG_HDR_MAC);
        cr_assert_eq(wire_verify(frame, (size_t)n, &key), 0);
    }
}

Test(wire, round_trip_client_request)
{
    round_trip(MSG_CLIENT_REQUEST);
}
Test(wire, round_trip_client_reply)
{
    round_trip(MSG_CLIENT_REPLY);
}
Test(wire, round_trip_redirect)
{
    round_trip(MSG_REDIRECT);
}
Test(wire, round_trip_vote_request)
{
    round_trip(MSG_VOTE_REQUEST);
}
Test(wire, round_trip_vote_response)
{
    round_trip(MSG_VOTE_RESPONSE);
}
Test(wire, round_trip_append_entries)
{
    round_trip(MSG_APPEND_ENTRIES);
}
Test(wire, round_trip_append_response)
{
    round_trip(MSG_APPEND_RESPONSE);
}
Test(wire, round_trip_install_snapshot)
{
    round_trip(MSG_INSTALL_SNAPSHOT);
}
Test(wire, round_trip_install_snapshot_response)
{
    round_trip(MSG_INSTALL_SNAPSHOT_RESPONSE);
}
Test(wire, round_trip_timeout_now)
{
    round_trip(MSG_TIMEOUT_NOW);
}
Test(wire, round_trip_heartbeat)
{
    round_trip(MSG_HEARTBEAT);
}
Test(wire, round_trip_heartbeat_response)
{
    round_trip(MSG_HEARTBEAT_RESPONSE);
}

Test(wire, client_message_without_key_has_zero_mac_and_no_flag)
{
    int n = encode_sample(MSG_CLIENT_REQUEST, 3, NULL);
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, NULL, 0), 0);
    cr_assert_eq(out.hdr.flags & MSG_HDR_MAC, 0);
    for (size_t i = 0; i < MSG_MAC_LEN; i++) {
        cr_assert_eq(frame[WIRE_MAC_OFF + i], 0);
    }
    struct wire_key key;
    wire_sample_key(&key, 1);
    cr_assert_eq(wire_verify(frame, (size_t)n, &key), ORDO_EBADMAC);
}

Test(wire, magic_reads_ordo_in_memory)
{
    int n = encode_sample(MSG_TIMEOUT_NOW, 0, &(struct wire_key){{1}});
    cr_assert_gt(n, 4);
    cr_assert_eq(memcmp(frame, "ORDO", 4), 0);
}

/* Every strict prefix is rejected: as sent (the header's body_len then disagrees), and
 * with body_len patched to the prefix so the body decoders must catch it themselves. */
Test(wire, every_truncation_is_rejected)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    static uint8_t copy[WIRE_MSG_LEN_MAX];
    for (size_t t = 0; t < wire_sample_types_n; t++) {
        for (uint32_t v = 0; v < VARIANTS; v += 3) {
            int n = encode_sample(wire_sample_types[t], v, &key);
            for (int len = 0; len < n; len++) {
                struct msg out;
                int rc = wire_decode(frame, (size_t)len, &out, entries, MSG_ENTRIES_MAX);
                cr_assert_lt(rc, 0, "type %u len %d of %d accepted", wire_sample_types[t], len, n);
                if (len < (int)WIRE_HDR_LEN) {
                    continue;
                }
                memcpy(copy, frame, (size_t)len);
                put_le32(copy + 16, (uint32_t)len - WIRE_HDR_LEN);
                rc = wire_decode(copy, (size_t)len, &out, entries, MSG_ENTRIES_MAX);
                cr_assert(rc == ORDO_ETRUNCATED || rc == ORDO_EMALFORMED,
                          "type %u patched len %d of %d: %d", wire_sample_types[t], len, n, rc);
            }
        }
    }
}

Test(wire, trailing_garbage_is_rejected)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    for (size_t t = 0; t < wire_sample_types_n; t++) {
        int n = encode_sample(wire_sample_types[t], 2, &key);
        frame[n] = 0xab;
        struct msg out;
        cr_assert_eq(wire_decode(frame, (size_t)n + 1, &out, entries, MSG_ENTRIES_MAX),
                     ORDO_EMALFORMED);
        put_le32(frame + 16, (uint32_t)n + 1 - WIRE_HDR_LEN);
        cr_assert_eq(wire_decode(frame, (size_t)n + 1, &out, entries, MSG_ENTRIES_MAX),
                     ORDO_EMALFORMED, "type %u", wire_sample_types[t]);
    }
}

/* splitmix64 for the bit-flip positions; the seed is printed on failure. */
static uint64_t flip_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A flipped message is rejected, or decodes to a message that re-encodes to the very
 * same bytes (outside the MAC field) and decodes again. */
static void check_flipped(const uint8_t *buf, size_t len, const struct wire_key *key, uint64_t seed)
{
    static uint8_t again[WIRE_MSG_LEN_MAX];
    static struct msg_entry entries2[MSG_ENTRIES_MAX];
    struct msg out;
    struct msg out2;
    if (wire_decode(buf, len, &out, entries, MSG_ENTRIES_MAX) != 0) {
        return;
    }
    int mac = (out.hdr.flags & MSG_HDR_MAC) != 0;
    int n = wire_encode(&out, mac ? key : NULL, again, sizeof(again));
    cr_assert_eq(n, (int)len, "seed %llu: re-encode gave %d", (unsigned long long)seed, n);
    cr_assert_eq(memcmp(again, buf, WIRE_MAC_OFF), 0, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(memcmp(again + WIRE_HDR_LEN, buf + WIRE_HDR_LEN, len - WIRE_HDR_LEN), 0);
    cr_assert_eq(wire_decode(again, (size_t)n, &out2, entries2, MSG_ENTRIES_MAX), 0);
    cr_assert_null(wire_sample_diff(&out, &out2), "seed %llu", (unsigned long long)seed);
}

Test(wire, random_bit_flips_never_crash)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    static uint8_t copy[WIRE_MSG_LEN_MAX];
    uint64_t seed = 20261125;
    for (size_t t = 0; t < wire_sample_types_n; t++) {
        for (uint32_t v = 0; v < VARIANTS; v++) {
            int n = encode_sample(wire_sample_types[t], v, &key);
            for (int i = 0; i < 300; i++) {
                memcpy(copy, frame, (size_t)n);
                uint64_t r = flip_rng(&seed);
                /* Bias towards the header and the first body bytes, where lengths live. */
                size_t span = (r & 1) ? (size_t)n : (n < 80 ? (size_t)n : 80u);
                for (int k = 0; k < 1 + (int)((r >> 1) % 3); k++) {
                    size_t bit = flip_rng(&seed) % (span * 8);
                    copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                }
                check_flipped(copy, (size_t)n, &key, seed);
                /* Two flips of one bit cancel out: only a changed message must fail. */
                if (memcmp(copy, frame, (size_t)n) != 0) {
                    cr_assert_neq(wire_verify(copy, (size_t)n, &key), 0,
                                  "flipped message passed the MAC, seed %llu",
                                  (unsigned long long)seed);
                }
            }
        }
    }
}

Test(wire, wrong_key_is_rejected)
{
    struct wire_key key;
    struct wire_key other;
    wire_sample_key(&key, 1);
    wire_sample_key(&other, 2);
    int n = encode_sample(MSG_APPEND_ENTRIES, 3, &key);
    cr_assert_eq(wire_verify(frame, (size_t)n, &key), 0);
    cr_assert_eq(wire_verify(frame, (size_t)n, &other), ORDO_EBADMAC);
}

Test(wire, tampered_body_or_mac_is_rejected)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    int n = encode_sample(MSG_VOTE_REQUEST, 1, &key);
    frame[n - 1] ^= 1;
    cr_assert_eq(wire_verify(frame, (size_t)n, &key), ORDO_EBADMAC);
    frame[n - 1] ^= 1;
    frame[WIRE_MAC_OFF] ^= 0x80;
    cr_assert_eq(wire_verify(frame, (size_t)n, &key), ORDO_EBADMAC);
}

Test(wire, wrong_cluster_is_rejected)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    int n = encode_sample(MSG_HEARTBEAT, 1, &key);
    cr_assert_eq(wire_check_cluster(frame, (size_t)n, 0x2a), 0);
    cr_assert_eq(wire_check_cluster(frame, (size_t)n, 0x2b), ORDO_ECLUSTER);
    cr_assert_eq(wire_check_cluster(frame, WIRE_HDR_LEN - 1, 0x2a), ORDO_ETRUNCATED);
}

static int decode_patched(size_t off, uint8_t value, size_t len)
{
    struct msg out;
    frame[off] = value;
    return wire_decode(frame, len, &out, entries, MSG_ENTRIES_MAX);
}

Test(wire, header_errors_have_distinct_codes)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    int n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(0, 'X', (size_t)n), ORDO_EBADMAGIC);
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(4, 2, (size_t)n), ORDO_EVERSION);
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(5, 99, (size_t)n), ORDO_EBADTYPE);
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(20, 1, (size_t)n), ORDO_EMALFORMED, "reserved != 0");
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(6, 0x03, (size_t)n), ORDO_EMALFORMED, "unknown flag");
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    cr_assert_eq(decode_patched(6, 0x00, (size_t)n), ORDO_EMALFORMED, "peer without MAC");
    n = encode_sample(MSG_TIMEOUT_NOW, 0, &key);
    frame[12] = frame[13] = frame[14] = frame[15] = 0;
    cr_assert_eq(decode_patched(12, 0, (size_t)n), ORDO_EMALFORMED, "peer sender 0");
    n = encode_sample(MSG_CLIENT_REQUEST, 0, NULL);
    cr_assert_eq(decode_patched(WIRE_MAC_OFF + 3, 1, (size_t)n), ORDO_EMALFORMED, "stray MAC");
    cr_assert_eq(decode_patched(0, 'O', WIRE_HDR_LEN - 1), ORDO_ETRUNCATED);
}

Test(wire, oversized_input_is_rejected)
{
    static uint8_t big[WIRE_MSG_LEN_MAX + 1];
    struct msg out;
    int n = encode_sample(MSG_CLIENT_REQUEST, 1, NULL);
    memcpy(big, frame, (size_t)n);
    cr_assert_eq(wire_decode(big, sizeof(big), &out, NULL, 0), ORDO_ETOOBIG);
    put_le32(frame + 16, WIRE_BODY_LEN_MAX + 1);
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, NULL, 0), ORDO_ETOOBIG);
}

Test(wire, counts_over_limits_are_too_big)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    struct msg out;
    int n = encode_sample(MSG_APPEND_ENTRIES, 1, &key);
    put_le32(frame + WIRE_HDR_LEN + 32, MSG_ENTRIES_MAX + 1);
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, entries, MSG_ENTRIES_MAX), ORDO_ETOOBIG);
    n = encode_sample(MSG_INSTALL_SNAPSHOT, 3, &key);
    frame[WIRE_HDR_LEN + 41] = MSG_NODES_MAX + 1;
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, entries, MSG_ENTRIES_MAX), ORDO_ETOOBIG);
}

Test(wire, entries_over_caller_capacity_is_no_space)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    struct msg out;
    int n = encode_sample(MSG_APPEND_ENTRIES, 7, &key);
    cr_assert_eq(sample.m.u.append.n_entries, MSG_ENTRIES_MAX);
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, entries, 4), ORDO_ENOSPACE);
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, entries, MSG_ENTRIES_MAX), 0);
}

Test(wire, variable_length_past_body_is_truncated)
{
    struct msg out;
    int n = encode_sample(MSG_CLIENT_REQUEST, 1, NULL);
    put_le32(frame + WIRE_HDR_LEN + 19, 0xffffffffu);
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, NULL, 0), ORDO_ETRUNCATED);
}

Test(wire, field_values_out_of_range_are_malformed)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    int n = encode_sample(MSG_VOTE_RESPONSE, 1, &key);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 8, 2, (size_t)n), ORDO_EMALFORMED, "granted 2");
    n = encode_sample(MSG_CLIENT_REPLY, 1, NULL);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 16, 200, (size_t)n), ORDO_EMALFORMED, "status");
    n = encode_sample(MSG_CLIENT_REQUEST, 1, NULL);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 16, 0x80, (size_t)n), ORDO_EMALFORMED, "flags");
    n = encode_sample(MSG_APPEND_ENTRIES, 1, &key);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 36 + 8, 9, (size_t)n), ORDO_EMALFORMED,
                 "entry type");
    n = encode_sample(MSG_INSTALL_SNAPSHOT, 3, &key);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 46 + 4, 7, (size_t)n), ORDO_EMALFORMED, "role");
}

Test(wire, register_flag_round_trips_and_bad_combinations_are_refused)
{
    wire_sample_fill(&sample, MSG_CLIENT_REQUEST, 1);
    sample.m.u.request.flags = MSG_REQ_REGISTER;
    int n = wire_encode(&sample.m, NULL, frame, sizeof(frame));
    cr_assert_gt(n, 0);
    cr_assert_eq(frame[WIRE_HDR_LEN + 16], 0x04, "flags at body offset 16, little-endian");
    cr_assert_eq(frame[WIRE_HDR_LEN + 17], 0x00);
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)n, &out, NULL, 0), 0);
    cr_assert_eq(out.u.request.flags, MSG_REQ_REGISTER);
    static const uint16_t bad[] = {MSG_REQ_REGISTER | MSG_REQ_READ,
                                   MSG_REQ_REGISTER | MSG_REQ_NO_SESSION,
                                   MSG_REQ_REGISTER | MSG_REQ_READ | MSG_REQ_NO_SESSION};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sample.m.u.request.flags = bad[i];
        cr_assert_eq(wire_encode(&sample.m, NULL, frame, sizeof(frame)), -EINVAL);
        sample.m.u.request.flags = MSG_REQ_REGISTER;
        cr_assert_eq(wire_encode(&sample.m, NULL, frame, sizeof(frame)), n);
        cr_assert_eq(decode_patched(WIRE_HDR_LEN + 16, (uint8_t)bad[i], (size_t)n), ORDO_EMALFORMED,
                     "flags 0x%x", bad[i]);
    }
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 16, 0x08, (size_t)n), ORDO_EMALFORMED, "unknown");
}

Test(wire, snapshot_chunk_beyond_total_is_malformed)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    wire_sample_fill(&sample, MSG_INSTALL_SNAPSHOT, 2);
    cr_assert_gt(sample.m.u.snapshot.chunk_len, 0);
    sample.m.u.snapshot.total_len = sample.m.u.snapshot.offset;
    cr_assert_eq(wire_encode(&sample.m, &key, frame, sizeof(frame)), -EINVAL);
    sample.m.u.snapshot.total_len = sample.m.u.snapshot.offset + sample.m.u.snapshot.chunk_len;
    int n = wire_encode(&sample.m, &key, frame, sizeof(frame));
    cr_assert_gt(n, 0);
    /* total_len 0: the non-empty chunk cannot lie inside the snapshot. */
    memset(frame + WIRE_HDR_LEN + 24, 0, 8);
    cr_assert_eq(decode_patched(WIRE_HDR_LEN + 24, 0, (size_t)n), ORDO_EMALFORMED);
}

Test(wire, encode_rejects_bad_messages)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    wire_sample_fill(&sample, MSG_HEARTBEAT, 0);
    cr_assert_eq(wire_encode(&sample.m, NULL, frame, sizeof(frame)), -EINVAL, "peer no key");
    cr_assert_eq(wire_encode(&sample.m, &key, frame, WIRE_HDR_LEN + 10), ORDO_ENOSPACE);
    sample.m.hdr.sender = MSG_NODE_NONE;
    cr_assert_eq(wire_encode(&sample.m, &key, frame, sizeof(frame)), -EINVAL, "sender 0");
    sample.m.hdr.type = 77;
    cr_assert_eq(wire_encode(&sample.m, &key, frame, sizeof(frame)), ORDO_EBADTYPE);
    cr_assert_eq(wire_encoded_len(&sample.m), 0);
    wire_sample_fill(&sample, MSG_APPEND_ENTRIES, 7);
    sample.m.u.append.n_entries = MSG_ENTRIES_MAX + 1;
    cr_assert_eq(wire_encode(&sample.m, &key, frame, sizeof(frame)), ORDO_ETOOBIG);
    wire_sample_fill(&sample, MSG_APPEND_ENTRIES, 3);
    sample.entries[0].index++;
    cr_assert_eq(wire_encode(&sample.m, &key, frame, sizeof(frame)), -EINVAL, "index gap");
    wire_sample_fill(&sample, MSG_CLIENT_REQUEST, 1);
    sample.m.u.request.args_len = WIRE_BODY_LEN_MAX;
    cr_assert_eq(wire_encode(&sample.m, NULL, frame, sizeof(frame)), ORDO_ETOOBIG);
}

Test(wire, config_round_trip_and_rejects)
{
    struct msg_config c = {3, {{1, MSG_ROLE_VOTER}, {2, MSG_ROLE_VOTER}, {9, MSG_ROLE_LEARNER}}};
    struct msg_config out;
    uint8_t buf[WIRE_CONFIG_LEN_MAX];
    int n = wire_config_encode(&c, buf, sizeof(buf));
    cr_assert_eq(n, 16);
    cr_assert_eq(wire_config_decode(buf, (size_t)n, &out), 0);
    cr_assert_eq(out.n, c.n);
    for (uint32_t i = 0; i < c.n; i++) {
        cr_assert_eq(out.servers[i].id, c.servers[i].id);
        cr_assert_eq(out.servers[i].role, c.servers[i].role);
    }
    cr_assert_eq(wire_config_decode(buf, (size_t)n - 1, &out), ORDO_ETRUNCATED);
    buf[n] = 0;
    cr_assert_eq(wire_config_decode(buf, (size_t)n + 1, &out), ORDO_EMALFORMED, "trailing");
    buf[6] = 1; /* server 2 becomes a second server 1 */
    cr_assert_eq(wire_config_decode(buf, (size_t)n, &out), ORDO_EMALFORMED, "duplicate");
    c.servers[1].id = 1;
    cr_assert_eq(wire_config_encode(&c, buf, sizeof(buf)), -EINVAL);
    c.n = MSG_NODES_MAX + 1;
    cr_assert_eq(wire_config_encode(&c, buf, sizeof(buf)), ORDO_ETOOBIG);
    buf[0] = MSG_NODES_MAX + 1;
    cr_assert_eq(wire_config_decode(buf, sizeof(buf), &out), ORDO_ETOOBIG);
}

Test(wire, counters_count_by_reason)
{
    struct wire_counters c;
    memset(&c, 0, sizeof(c));
    const int codes[] = {0,
                         ORDO_EMALFORMED,
                         ORDO_ETRUNCATED,
                         ORDO_EBADMAGIC,
                         ORDO_EVERSION,
                         ORDO_EBADTYPE,
                         ORDO_EBADMAC,
                         ORDO_ECLUSTER,
                         ORDO_ETOOBIG,
                         ORDO_ECHECKSUM,
                         ORDO_ENOSPACE,
                         -EINVAL};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        wire_count(&c, codes[i]);
    }
    wire_count(&c, ORDO_EBADMAC);
    cr_assert_eq(c.ok, 1);
    cr_assert_eq(c.malformed, 1);
    cr_assert_eq(c.truncated, 1);
    cr_assert_eq(c.bad_magic, 1);
    cr_assert_eq(c.bad_version, 1);
    cr_assert_eq(c.bad_type, 1);
    cr_assert_eq(c.bad_mac, 2);
    cr_assert_eq(c.wrong_cluster, 1);
    cr_assert_eq(c.oversized, 1);
    cr_assert_eq(c.checksum, 1);
    cr_assert_eq(c.no_space, 1);
    cr_assert_eq(c.other, 1);
}

/* ---- multi-message frames ---- */

static struct wire_sample item_sample;

/* Decodes frame[0..n) as a multi frame of type with want items and checks every item
 * against wire_sample_multi_item, MACs included. */
static void check_multi(uint8_t type, int n, uint32_t want)
{
    struct msg out;
    int rc = wire_decode(frame, (size_t)n, &out, NULL, 0);
    cr_assert_eq(rc, 0, "decode multi: %s", ordo_strerror(rc));
    cr_assert_eq(out.hdr.type, type);
    cr_assert_eq(out.u.multi.n, want);
    cr_assert_eq(out.u.multi.version, WIRE_MULTI_VERSION);
    struct wire_multi_iter it;
    wire_multi_iter_init(&it, &out);
    for (uint32_t i = 0; i < want; i++) {
        struct msg item;
        const uint8_t *raw;
        size_t raw_len;
        cr_assert_eq(wire_multi_next(&it, &item, &raw, &raw_len), 1, "item %u", i);
        const struct wire_key *key = wire_sample_multi_item(&item_sample, type, i);
        const char *d = wire_sample_diff(&item_sample.m, &item);
        cr_assert_null(d, "item %u: field %s differs", i, d);
        cr_assert_eq((item.hdr.flags & MSG_HDR_MAC) != 0, key != NULL);
        if (key != NULL) {
            cr_assert_eq(wire_verify(raw, raw_len, key), 0, "item %u MAC", i);
        }
    }
    struct msg item;
    const uint8_t *raw;
    size_t raw_len;
    cr_assert_eq(wire_multi_next(&it, &item, &raw, &raw_len), 0);
}

Test(wire, multi_request_round_trip)
{
    for (uint32_t n = 1; n <= 8; n++) {
        int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, n, frame, sizeof(frame));
        cr_assert_gt(len, 0, "%s", ordo_strerror(len));
        check_multi(MSG_CLIENT_MULTI_REQUEST, len, n);
    }
}

Test(wire, multi_reply_round_trip_with_redirects)
{
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REPLY, 9, frame, sizeof(frame));
    cr_assert_gt(len, 0, "%s", ordo_strerror(len));
    check_multi(MSG_CLIENT_MULTI_REPLY, len, 9);
}

Test(wire, multi_reencodes_byte_for_byte)
{
    static uint8_t again[WIRE_MSG_LEN_MAX];
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, 5, frame, sizeof(frame));
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)len, &out, NULL, 0), 0);
    cr_assert_eq(wire_encoded_len(&out), (size_t)len);
    cr_assert_eq(wire_encode(&out, NULL, again, sizeof(again)), len);
    cr_assert_eq(memcmp(again, frame, (size_t)len), 0);
}

Test(wire, multi_count_is_bounded)
{
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, MSG_MULTI_MAX, frame, sizeof(frame));
    cr_assert_gt(len, 0, "%s", ordo_strerror(len));
    check_multi(MSG_CLIENT_MULTI_REQUEST, len, MSG_MULTI_MAX);
    cr_assert_eq(
        wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, MSG_MULTI_MAX + 1, frame, sizeof(frame)),
        ORDO_ETOOBIG);
    /* A count byte over the bound is refused before any item is looked at. */
    len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, 2, frame, sizeof(frame));
    frame[WIRE_HDR_LEN + 1] = MSG_MULTI_MAX + 1;
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)len, &out, NULL, 0), ORDO_ETOOBIG);
}

/* Builds a 3-item multi-request, lets patch change it, expects err from wire_decode. */
static void multi_reject(void (*patch)(uint8_t *f, int *len), int err, const char *what)
{
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, 3, frame, sizeof(frame));
    cr_assert_gt(len, 0);
    patch(frame, &len);
    struct msg out;
    int rc = wire_decode(frame, (size_t)len, &out, NULL, 0);
    cr_assert_eq(rc, err, "%s: got %s, want %s", what, ordo_strerror(rc), ordo_strerror(err));
}

static void set_body_len(uint8_t *f, int len)
{
    put_le32(f + 16, (uint32_t)len - WIRE_HDR_LEN);
}

static void p_version(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN] = 2;
}
static void p_count0(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + 1] = 0;
}
static void p_count_more(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + 1] = 4;
}
static void p_count_less(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + 1] = 2;
}
static void p_reserved(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + 3] = 1;
}
static void p_outer_mac(uint8_t *f, int *len)
{
    (void)len;
    f[6] |= MSG_HDR_MAC;
}
static void p_item_len_past_end(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 1] = 0x7f;
}
static void p_trailing(uint8_t *f, int *len)
{
    f[*len] = 0;
    *len += 1;
    set_body_len(f, *len);
}
static void p_item_cluster(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + 8] ^= 1;
}
static void p_item_sender(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + 12] = 1;
}
static void p_item_magic(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2] ^= 0xff;
}
static void p_item_type_reply(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + 5] = MSG_CLIENT_REPLY;
}
static void p_item_nested(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + 5] = MSG_CLIENT_MULTI_REQUEST;
}
static void p_item_peer(uint8_t *f, int *len)
{
    (void)len;
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + 5] = MSG_HEARTBEAT;
}
static void p_item_bad_flags(uint8_t *f, int *len)
{
    (void)len;
    /* Request flags of the first item (item header, then client id and request number). */
    f[WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN + 2 + WIRE_HDR_LEN + 16 + 1] = 0x80;
}
static void p_short_prefix(uint8_t *f, int *len)
{
    *len = WIRE_HDR_LEN + 3;
    set_body_len(f, *len);
}

Test(wire, multi_rejects_every_malformed_frame)
{
    multi_reject(p_version, ORDO_EVERSION, "body version");
    multi_reject(p_count0, ORDO_EMALFORMED, "count 0");
    multi_reject(p_count_more, ORDO_ETRUNCATED, "count above the items");
    multi_reject(p_count_less, ORDO_EMALFORMED, "count below the items");
    multi_reject(p_reserved, ORDO_EMALFORMED, "reserved");
    multi_reject(p_outer_mac, ORDO_EMALFORMED, "MAC on the outer header");
    multi_reject(p_item_len_past_end, ORDO_ETRUNCATED, "item length past the body");
    multi_reject(p_trailing, ORDO_EMALFORMED, "bytes after the last item");
    multi_reject(p_item_cluster, ORDO_EMALFORMED, "item of another cluster");
    multi_reject(p_item_sender, ORDO_EMALFORMED, "item with another sender");
    multi_reject(p_item_magic, ORDO_EBADMAGIC, "item with a bad magic");
    multi_reject(p_item_type_reply, ORDO_EMALFORMED, "reply inside a multi-request");
    multi_reject(p_item_nested, ORDO_EMALFORMED, "nested multi frame");
    multi_reject(p_item_peer, ORDO_EMALFORMED, "peer message inside");
    multi_reject(p_item_bad_flags, ORDO_EMALFORMED, "item with unknown request flags");
    multi_reject(p_short_prefix, ORDO_ETRUNCATED, "body shorter than the prefix");
}

Test(wire, multi_every_truncation_is_rejected)
{
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REPLY, 4, frame, sizeof(frame));
    cr_assert_gt(len, 0);
    static uint8_t cut[WIRE_MSG_LEN_MAX];
    for (int n = WIRE_HDR_LEN; n < len; n++) {
        memcpy(cut, frame, (size_t)n);
        set_body_len(cut, n);
        struct msg out;
        cr_assert_neq(wire_decode(cut, (size_t)n, &out, NULL, 0), 0, "cut at %d", n);
    }
}

Test(wire, multi_every_byte_flip_is_decoded_or_refused)
{
    static uint8_t again[WIRE_MSG_LEN_MAX];
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, 3, frame, sizeof(frame));
    for (int i = 0; i < len; i++) {
        frame[i] ^= 0x41;
        struct msg out;
        if (wire_decode(frame, (size_t)len, &out, NULL, 0) == 0) {
            cr_assert_eq(wire_encode(&out, NULL, again, sizeof(again)), len, "flip %d", i);
            cr_assert_eq(memcmp(again, frame, (size_t)len), 0, "flip %d", i);
        }
        frame[i] ^= 0x41;
    }
}

Test(wire, multi_writer_refuses_bad_items_and_overflow)
{
    struct wire_multi_wr w;
    cr_assert_eq(wire_multi_start(&w, MSG_CLIENT_REQUEST, 0x2a, 0, frame, sizeof(frame)), -EINVAL);
    cr_assert_eq(wire_multi_start(&w, MSG_CLIENT_MULTI_REQUEST, 0x2a, 0, frame, 10), ORDO_ENOSPACE);
    cr_assert_eq(wire_multi_start(&w, MSG_CLIENT_MULTI_REQUEST, 0x2a, 0, frame, 300), 0);
    cr_assert_eq(wire_multi_finish(&w), -EINVAL, "a frame without items");
    static uint8_t item[WIRE_MSG_LEN_MAX];
    wire_sample_fill(&item_sample, MSG_CLIENT_REPLY, 1);
    int n = wire_encode(&item_sample.m, NULL, item, sizeof(item));
    cr_assert_eq(wire_multi_add(&w, item, (size_t)n), -EINVAL, "a reply in a request frame");
    cr_assert_eq(wire_multi_add_msg(&w, &item_sample.m, NULL), -EINVAL);
    wire_sample_fill(&item_sample, MSG_CLIENT_REQUEST, 0);
    item_sample.m.hdr.cluster_id = 7;
    n = wire_encode(&item_sample.m, NULL, item, sizeof(item));
    cr_assert_eq(wire_multi_add(&w, item, (size_t)n), -EINVAL, "another cluster");
    /* add_msg takes the frame's cluster id: the same request fits until the frame is full. */
    int added = 0;
    int rc = 0;
    while ((rc = wire_multi_add_msg(&w, &item_sample.m, NULL)) == 0) {
        added++;
    }
    cr_assert_eq(rc, ORDO_ENOSPACE);
    cr_assert_gt(added, 0);
    size_t before = w.len;
    cr_assert_eq(wire_multi_add_msg(&w, &item_sample.m, NULL), ORDO_ENOSPACE);
    cr_assert_eq(w.len, before, "a refused item leaves the frame unchanged");
    int len = wire_multi_finish(&w);
    cr_assert_leq(len, 300);
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)len, &out, NULL, 0), 0);
    cr_assert_eq(out.u.multi.n, (uint8_t)added);
}

Test(wire, multi_encode_refuses_a_key_and_bad_items)
{
    struct wire_key key;
    wire_sample_key(&key, 1);
    int len = wire_sample_multi(MSG_CLIENT_MULTI_REQUEST, 2, frame, sizeof(frame));
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)len, &out, NULL, 0), 0);
    static uint8_t again[WIRE_MSG_LEN_MAX];
    cr_assert_eq(wire_encode(&out, &key, again, sizeof(again)), -EINVAL);
    out.u.multi.n = 3; /* more than the items hold */
    cr_assert_eq(wire_encode(&out, NULL, again, sizeof(again)), -EINVAL);
    out.u.multi.n = MSG_MULTI_MAX + 1;
    cr_assert_eq(wire_encode(&out, NULL, again, sizeof(again)), ORDO_ETOOBIG);
}

Test(wire, multi_item_moved_in_place)
{
    /* A reply encoded where the frame starts becomes the first item of a multi-reply
     * built over it (the server's TX stage does this). */
    static uint8_t item[WIRE_MSG_LEN_MAX];
    wire_sample_fill(&item_sample, MSG_CLIENT_REPLY, 3);
    int n = wire_encode(&item_sample.m, NULL, item, sizeof(item));
    memcpy(frame, item, (size_t)n);
    memmove(frame + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN, frame, (size_t)n);
    struct wire_multi_wr w;
    cr_assert_eq(wire_multi_start(&w, MSG_CLIENT_MULTI_REPLY, 0x2a, 0, frame, sizeof(frame)), 0);
    cr_assert_eq(wire_multi_add(&w, frame + WIRE_HDR_LEN + WIRE_MULTI_PREFIX_LEN, (size_t)n), 0);
    int len = wire_multi_finish(&w);
    struct msg out;
    cr_assert_eq(wire_decode(frame, (size_t)len, &out, NULL, 0), 0);
    struct wire_multi_iter it;
    wire_multi_iter_init(&it, &out);
    struct msg m;
    const uint8_t *raw;
    size_t raw_len;
    cr_assert_eq(wire_multi_next(&it, &m, &raw, &raw_len), 1);
    cr_assert_eq(raw_len, (size_t)n);
    cr_assert_eq(memcmp(raw, item, (size_t)n), 0);
}
