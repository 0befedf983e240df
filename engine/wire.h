/* The Ordo message codec: struct msg (engine/msg.h) to and from one UDP payload, and the
 * MAC that authenticates it. Pure computation (libsodium for the MAC); never reads
 * outside the given buffer; bad input gives an ORDO_E* code, never a crash.
 * Byte-by-byte layout of every message: docs/protocol.md. */
#ifndef ORDO_ENGINE_WIRE_H
#define ORDO_ENGINE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/api.h"
#include "engine/msg.h"

/* Little-endian u32 whose bytes in memory and on the wire read 'O' 'R' 'D' 'O'. */
#define WIRE_MAGIC 0x4f44524fu
#define WIRE_VERSION 1u
#define WIRE_HDR_LEN 40u
#define WIRE_MAC_OFF 24u /* the MAC field: header bytes 24..39 */
/* Largest message: a jumbo frame minus Ethernet, IPv4 (no options) and UDP headers. */
#define WIRE_MSG_LEN_MAX (MSG_FRAME_LEN_MAX - 42u)
#define WIRE_BODY_LEN_MAX (WIRE_MSG_LEN_MAX - WIRE_HDR_LEN)
/* Encoded struct msg_config: 1 count byte + 5 bytes (id u32, role u8) per server. */
#define WIRE_CONFIG_LEN_MAX (1u + 5u * MSG_NODES_MAX)

/* Keys are 32 bytes. The MAC is SipHash-x24 (128-bit tag) keyed with the first 16 bytes
 * (measured 3-6x cheaper than keyed BLAKE2b-128 here, docs/protocol.md); the other 16 are
 * kept so a future version can move to BLAKE2b without changing key files. */
#define WIRE_KEY_LEN 32u
struct wire_key {
    uint8_t bytes[WIRE_KEY_LEN];
};

/* Initialises libsodium (sodium_init). Apps call it once at start, before any other wire_
 * function, from one thread. Returns 0 (also when already initialised) or -EIO. */
ORDO_API int wire_init(void);

/* Bytes wire_encode would write for m (header included), or 0 if m is not encodable
 * (unknown type, or a variable part over its bound). */
ORDO_API size_t wire_encoded_len(const struct msg *m);

/* Encodes m into buf (cap bytes). The header's version and body_len are computed (the
 * values in m->hdr are ignored); type, cluster_id, sender and flags come from m->hdr.
 * With key != NULL the MSG_HDR_MAC flag is set and the MAC is computed over the message;
 * with key == NULL the flag is cleared and the MAC field is zero. Pointers in m (args,
 * entries, chunk) are only read during the call. AppendEntries: entries[i].index must be
 * prev_log_index + 1 + i (the index is implied on the wire, not sent).
 * Returns bytes written (> 0), or:
 *   -EINVAL        a peer message without key, flags with unknown bits, sender 0 on a
 *                  peer message, or a field value decode would reject (same rules);
 *   ORDO_EBADTYPE  unknown m->hdr.type;
 *   ORDO_ETOOBIG   more than MSG_ENTRIES_MAX entries, a config over MSG_NODES_MAX, or the
 *                  message larger than WIRE_MSG_LEN_MAX;
 *   ORDO_ENOSPACE  cap too small. */
ORDO_API int wire_encode(const struct msg *m, const struct wire_key *key, uint8_t *buf, size_t cap);

/* Decodes the message in buf (exactly len bytes: one UDP payload) into *out. Does NOT
 * verify the MAC or the cluster id (wire_verify, wire_check_cluster). AppendEntries
 * entries are written to entries[0..entries_cap) and out->u.append.entries points there;
 * entry i gets index prev_log_index + 1 + i. Pointers in *out (args, result, entry data,
 * chunk) borrow buf. entries may be NULL when entries_cap is 0.
 * Returns 0, or (without reading past buf + len):
 *   ORDO_ETRUNCATED  len < WIRE_HDR_LEN, body_len > len - WIRE_HDR_LEN, or a fixed field
 *                    or a declared variable length running past the body;
 *   ORDO_ETOOBIG     len or body_len over WIRE_MSG_LEN_MAX, entry count over
 *                    MSG_ENTRIES_MAX, config over MSG_NODES_MAX;
 *   ORDO_EBADMAGIC, ORDO_EVERSION, ORDO_EBADTYPE: header magic, version, type;
 *   ORDO_EMALFORMED  reserved != 0, unknown header flag bits, a peer message without
 *                    MSG_HDR_MAC or with sender 0, a non-zero MAC field without the
 *                    flag, bytes left after the body (trailing garbage) or after the
 *                    last variable part, an enum or boolean field out of range, unknown
 *                    request flag bits or MSG_REQ_REGISTER with MSG_REQ_READ or
 *                    MSG_REQ_NO_SESSION, a zero or duplicate server id, index overflow,
 *                    snapshot chunk outside
 *                    total_len (or a done chunk not ending it);
 *   ORDO_ENOSPACE    more entries than entries_cap (header and entry count were valid;
 *                    pass MSG_ENTRIES_MAX entries to never see it). */
ORDO_API int wire_decode(const uint8_t *buf, size_t len, struct msg *out, struct msg_entry *entries,
                         uint32_t entries_cap);

/* Checks only the 40-byte header (magic, version, type, reserved, flags, body_len against
 * len) and fills *hdr. Same errors as wire_decode's header checks. */
ORDO_API int wire_peek_header(const uint8_t *buf, size_t len, struct msg_header *hdr);

/* Returns 0 if the header's cluster id is cluster_id, ORDO_ECLUSTER if not,
 * ORDO_ETRUNCATED if len < WIRE_HDR_LEN. */
ORDO_API int wire_check_cluster(const uint8_t *buf, size_t len, uint32_t cluster_id);

/* Verifies the MAC of the message in buf (len bytes) under key: computed over the header
 * with the MAC field zeroed, then the body. Constant-time comparison.
 * Returns 0, ORDO_EBADMAC (flag MSG_HDR_MAC clear, or mismatch), or a header error from
 * wire_peek_header. */
ORDO_API int wire_verify(const uint8_t *buf, size_t len, const struct wire_key *key);

/* Encodes a configuration (the data of a MSG_ENTRY_CONFIG entry; also used inside
 * InstallSnapshot): count u8, then per server id u32 LE, role u8.
 * Returns bytes written, -EINVAL (bad id or role, duplicate id), ORDO_ETOOBIG
 * (n > MSG_NODES_MAX), ORDO_ENOSPACE. */
ORDO_API int wire_config_encode(const struct msg_config *c, uint8_t *buf, size_t cap);
/* Decodes exactly len bytes. Returns 0, ORDO_ETRUNCATED, ORDO_ETOOBIG, ORDO_EMALFORMED
 * (bad id or role, duplicate id, trailing bytes). */
ORDO_API int wire_config_decode(const uint8_t *buf, size_t len, struct msg_config *out);

/* Multi-message frames (MSG_CLIENT_MULTI_REQUEST, MSG_CLIENT_MULTI_REPLY; docs/protocol.md).
 * Body: version u8 (WIRE_MULTI_VERSION), count u8 (1..MSG_MULTI_MAX), reserved u16 (0), then
 * count items, each a u16 length and one complete encoded client message: requests in a
 * multi-request; replies and redirects in a multi-reply. Every item has the outer header's
 * cluster id and sender and its own MAC (or none); the outer header never has a MAC.
 * wire_decode accepts a multi frame only if every item decodes (same rules as alone):
 *   ORDO_EVERSION    body version other than WIRE_MULTI_VERSION;
 *   ORDO_ETOOBIG     count over MSG_MULTI_MAX;
 *   ORDO_ETRUNCATED  an item length or an item running past the body;
 *   ORDO_EMALFORMED  count 0, reserved != 0, MSG_HDR_MAC on the outer header, an item of
 *                    the wrong type (another multi, a peer message), with another cluster
 *                    id or sender, bytes after the last item;
 *   or the item's own decode error. */
#define WIRE_MULTI_VERSION 1u
#define WIRE_MULTI_PREFIX_LEN 4u   /* version, count, reserved */
#define WIRE_MULTI_ITEM_HDR_LEN 2u /* u16 length before each item */

/* Walks the items of a multi message accepted by wire_decode. Borrows its frame. */
struct wire_multi_iter {
    const uint8_t *p;
    uint32_t len;
    uint32_t off;
    uint8_t type; /* the outer type, cluster id and sender every item must match */
    uint32_t cluster_id;
    uint32_t sender;
};

ORDO_API void wire_multi_iter_init(struct wire_multi_iter *it, const struct msg *m);

/* Decodes the next item into *item (pointers borrow the frame) and gives its bytes
 * (*raw, *raw_len: pass them to wire_verify for its MAC). Returns 1, 0 after the last
 * item, or an item's decode error (never for a frame wire_decode accepted). */
ORDO_API int wire_multi_next(struct wire_multi_iter *it, struct msg *item, const uint8_t **raw,
                             size_t *raw_len);

/* Builds a multi frame in place: start, add items, finish. Borrows buf until finish. */
struct wire_multi_wr {
    uint8_t *buf;
    size_t cap; /* at most WIRE_MSG_LEN_MAX */
    size_t len;
    uint32_t n;
    uint8_t type;
    uint32_t cluster_id;
    uint32_t sender;
};

/* Starts an empty frame of type (MSG_CLIENT_MULTI_*) in buf (cap bytes).
 * Returns 0, -EINVAL (not a multi type) or ORDO_ENOSPACE (cap below header and prefix). */
ORDO_API int wire_multi_start(struct wire_multi_wr *w, uint8_t type, uint32_t cluster_id,
                              uint32_t sender, uint8_t *buf, size_t cap);

/* Appends one complete encoded client message (len bytes; it may lie inside buf, it is
 * moved). Checks its header only: type allowed in this frame, same cluster id and sender.
 * Returns 0, -EINVAL (bad item; frame unchanged), ORDO_ETOOBIG (MSG_MULTI_MAX items
 * already) or ORDO_ENOSPACE (does not fit: finish this frame, start another). */
ORDO_API int wire_multi_add(struct wire_multi_wr *w, const uint8_t *item, size_t len);

/* Encodes m (its hdr.type an item type of this frame; cluster id and sender are taken from
 * the frame) as the next item, with a MAC under key when key != NULL. Returns 0, a
 * wire_encode error, ORDO_ETOOBIG or ORDO_ENOSPACE (frame unchanged). */
ORDO_API int wire_multi_add_msg(struct wire_multi_wr *w, const struct msg *m,
                                const struct wire_key *key);

/* Writes count and body length. Returns the frame length, or -EINVAL with no item. */
ORDO_API int wire_multi_finish(struct wire_multi_wr *w);

/* Drop counters by reason, so drivers can count every rejected frame (one owner lcore;
 * plain increments). */
struct wire_counters {
    uint64_t ok;
    uint64_t malformed;
    uint64_t truncated;
    uint64_t bad_magic;
    uint64_t bad_version;
    uint64_t bad_type;
    uint64_t bad_mac;
    uint64_t wrong_cluster;
    uint64_t oversized;
    uint64_t checksum; /* frame layer: IPv4/UDP/ICMP checksum */
    uint64_t no_space; /* ORDO_ENOSPACE: valid but over the caller's capacity */
    uint64_t other;
};

/* Counts the result err of wire_decode/wire_verify/wire_check_cluster/frame_parse in c
 * (0 counts as ok; unrecognised codes as other). */
ORDO_API void wire_count(struct wire_counters *c, int err);

#endif
