/* A small JSON reader for ordo-admin: parses one telemetry reply into a flat node array
 * (no allocation, the caller owns both the text and the nodes) and looks members up. */
#ifndef ORDO_APPS_ADMIN_JSON_H
#define ORDO_APPS_ADMIN_JSON_H

#include <stddef.h>
#include <stdint.h>

enum admin_json_type {
    ADMIN_JSON_NULL,
    ADMIN_JSON_BOOL,
    ADMIN_JSON_NUM,
    ADMIN_JSON_STR,
    ADMIN_JSON_ARR,
    ADMIN_JSON_OBJ,
};

#define ADMIN_JSON_DEPTH_MAX 32

/* One value. Slices index the text; a string's slice excludes its quotes and keeps its
 * escapes as written (telemetry strings are plain ASCII). */
struct admin_json_node {
    uint8_t type;
    uint32_t key_off, key_len; /* member name when the parent is an object */
    uint32_t off, len;         /* the value's text */
    int32_t child;             /* first element or member, -1 when none */
    int32_t next;              /* next sibling, -1 when last */
};

struct admin_json {
    const char *text;
    size_t text_len;
    struct admin_json_node *nodes;
    uint32_t n, cap;
};

/* Parses text[0..len) into nodes (borrowed until j is dropped); node 0 is the root.
 * Returns 0, -EINVAL on malformed JSON or trailing bytes, -ENOSPC when cap is too small. */
int admin_json_parse(struct admin_json *j, const char *text, size_t len,
                     struct admin_json_node *nodes, uint32_t cap);

/* Index of member key of object node obj, or -1. */
int32_t admin_json_get(const struct admin_json *j, int32_t obj, const char *key);

/* Index of the value at a dotted path ("a.b") below obj, or -1. */
int32_t admin_json_path(const struct admin_json *j, int32_t obj, const char *path);

/* The unsigned integer at node, 0 or -EINVAL (missing, not a number, negative, overflow). */
int admin_json_u64(const struct admin_json *j, int32_t node, uint64_t *out);

/* Copies a string's (or any scalar's) text into buf, NUL-terminated and truncated to fit.
 * Returns 0, or -EINVAL when node is missing or a container. */
int admin_json_text(const struct admin_json *j, int32_t node, char *buf, size_t cap);

/* Copies member node's name into buf, NUL-terminated and truncated to fit. */
void admin_json_key(const struct admin_json *j, int32_t node, char *buf, size_t cap);

#endif
