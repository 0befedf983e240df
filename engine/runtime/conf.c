/* Cluster configuration loader: lints the INI text, reads it with rte_cfgfile, validates every
 * section and key into struct conf and loads the key files. It never touches a port, the EAL
 * or a data directory, and every error names the file, the section and the key. */
#include "engine/runtime/conf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_cfgfile.h>
#include <rte_config.h>
#include <rte_log.h>

#include "engine/mem.h"
#include "engine/ordo_assert.h"
#include "engine/wire.h"

static_assert(CONF_KEY_LEN == WIRE_KEY_LEN, "config keys are wire MAC keys");
static_assert(CONF_STR_MAX == CFG_VALUE_LEN, "a value as rte_cfgfile stores it fits a field");
static_assert(CONF_LCORE_ID_MAX < RTE_MAX_LCORE, "every lcore id is one EAL can run");
static_assert(CONF_LCORES_MAX == CONF_LCORE_ID_MAX + 1, "lcores[] holds every id once");
static_assert(CONF_BATCH_BYTES_LIMIT + 128u <= WIRE_BODY_LEN_MAX,
              "one batch plus the AppendEntries fields fits one message");
/* The largest request (a CAS: key, new value, expected value) with its fixed fields must fit a
 * jumbo frame, which is why value_max stops at MSG_VALUE_LEN_MAX. */
static_assert(WIRE_HDR_LEN + 64u + 2u + MSG_KEY_LEN_MAX + 8u + 2u * MSG_VALUE_LEN_MAX <=
                  WIRE_MSG_LEN_MAX,
              "the largest CAS fits one message");
static_assert((unsigned)CONF_LOG_ERROR == RTE_LOG_ERR, "log levels are DPDK's");
static_assert((unsigned)CONF_LOG_WARNING == RTE_LOG_WARNING, "log levels are DPDK's");
static_assert((unsigned)CONF_LOG_NOTICE == RTE_LOG_NOTICE, "log levels are DPDK's");
static_assert((unsigned)CONF_LOG_INFO == RTE_LOG_INFO, "log levels are DPDK's");
static_assert((unsigned)CONF_LOG_DEBUG == RTE_LOG_DEBUG, "log levels are DPDK's");
static_assert(sizeof(enum conf_idle) == sizeof(int), "enum fields are stored as int");
static_assert(sizeof(enum conf_snapshot_mode) == sizeof(int), "enum fields are stored as int");
static_assert(sizeof(enum conf_auth) == sizeof(int), "enum fields are stored as int");
static_assert(sizeof(enum conf_log_level) == sizeof(int), "enum fields are stored as int");

#define CONF_UNSET UINT32_MAX
#define CONF_FILE_MAX (1u << 20)
/* rte_cfgfile reads lines into a buffer of CFG_NAME_LEN + CFG_VALUE_LEN + 4 bytes and fails on
 * longer ones; stay safely below. */
#define CONF_LINE_MAX (CFG_NAME_LEN + CFG_VALUE_LEN)
#define CONF_QUOTE_MAX 48
#define CONF_COMMENT '#'
#define CONF_KEY_FILE_MAX 80 /* bytes read from a key file: 64 hex chars and some blanks */

struct conf_ctx {
    const char *path;
    char dir[CONF_PATH_MAX]; /* directory of path, "" when path has none */
    struct conf *out;
    struct ordo_errmsg *err;
    const char *section; /* for messages; NULL outside any section */
    char section_buf[CFG_NAME_LEN];
    struct conf_node *node;
    uint32_t keys_cap;
    uint64_t node_ids[4]; /* bitmap of node ids seen, 0..255 */
    bool have_cluster;
    bool have_replica;
    bool have_clients;
};

struct conf_key;
typedef int (*conf_parse_fn)(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                             void *base);

struct conf_name {
    const char *name;
    int value;
};

/* One key of a section: where it lands in the section's struct and how it is parsed. */
struct conf_key {
    const char *name;
    conf_parse_fn parse;
    size_t off;
    size_t width; /* bytes of an integer field */
    bool required;
    uint64_t min;
    uint64_t max;
    const struct conf_name *names;
};

/* ---- messages ---------------------------------------------------------------------------- */

/* Copies v for a message: at most CONF_QUOTE_MAX characters, non-printable ones as '?'. */
static void conf_quote(const char *v, char q[CONF_QUOTE_MAX + 4])
{
    size_t i = 0;
    for (; v[i] != '\0' && i < CONF_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)v[i];
        q[i] = isprint(c) ? (char)c : '?';
    }
    if (v[i] != '\0') {
        memcpy(&q[i], "...", 4);
    } else {
        q[i] = '\0';
    }
}

__attribute__((format(printf, 3, 4))) static int conf_fail(struct conf_ctx *ctx, const char *key,
                                                           const char *fmt, ...)
{
    char what[ORDO_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (ctx->section == NULL) {
        ordo_errmsg_set(ctx->err, "%s: %s", ctx->path, what);
    } else if (key == NULL) {
        ordo_errmsg_set(ctx->err, "%s: [%s]: %s", ctx->path, ctx->section, what);
    } else {
        ordo_errmsg_set(ctx->err, "%s: [%s] %s: %s", ctx->path, ctx->section, key, what);
    }
    return ORDO_ECONFIG;
}

__attribute__((format(printf, 3, 4))) static int conf_fail_line(struct conf_ctx *ctx, unsigned line,
                                                                const char *fmt, ...)
{
    char what[ORDO_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ordo_errmsg_set(ctx->err, "%s:%u: %s", ctx->path, line, what);
    return ORDO_ECONFIG;
}

static int conf_nomem(struct conf_ctx *ctx)
{
    ordo_errmsg_set(ctx->err, "%s: out of memory", ctx->path);
    return -ENOMEM;
}

/* ---- small parsers ----------------------------------------------------------------------- */

/* Strict unsigned decimal: digits only, no sign, no blanks. */
static int conf_strtou64(const char *v, uint64_t *out)
{
    uint64_t x = 0;
    if (*v == '\0') {
        return -EINVAL;
    }
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) {
            return -ERANGE;
        }
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Reads the digits at p into *x; returns the first character after them, or NULL when there
 * are none or too many. */
static const char *conf_scan_u64(const char *p, uint64_t *x)
{
    uint64_t v = 0;
    int n = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++n > 18) {
            return NULL;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (n == 0) {
        return NULL;
    }
    *x = v;
    return p;
}

static int conf_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static char *conf_strip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    while (isspace((unsigned char)*s)) {
        s++;
    }
    return s;
}

/* Sets bit i of a bitmap and reports whether it was already set. */
static bool conf_bit_test_set(uint64_t *map, uint32_t i)
{
    uint64_t bit = 1ull << (i % 64);
    bool was = (map[i / 64] & bit) != 0;
    map[i / 64] |= bit;
    return was;
}

static void conf_store(void *field, size_t width, uint64_t x)
{
    if (width == 1) {
        uint8_t v = (uint8_t)x;
        memcpy(field, &v, sizeof(v));
    } else if (width == 2) {
        uint16_t v = (uint16_t)x;
        memcpy(field, &v, sizeof(v));
    } else if (width == 4) {
        uint32_t v = (uint32_t)x;
        memcpy(field, &v, sizeof(v));
    } else {
        ORDO_ASSERT(width == 8);
        memcpy(field, &x, sizeof(x));
    }
}

/* Joins a relative path to the config file's directory. */
static int conf_resolve(struct conf_ctx *ctx, const char *key, const char *v,
                        char out[CONF_PATH_MAX])
{
    int n;
    if (v[0] == '/' || ctx->dir[0] == '\0') {
        n = snprintf(out, CONF_PATH_MAX, "%s", v);
    } else {
        n = snprintf(out, CONF_PATH_MAX, "%s/%s", ctx->dir, v);
    }
    if (n < 0 || n >= CONF_PATH_MAX) {
        return conf_fail(ctx, key, "resolved path longer than %d characters", CONF_PATH_MAX - 1);
    }
    return 0;
}

/* ---- key files --------------------------------------------------------------------------- */

/* Reads at most cap bytes of a regular file; never blocks on a FIFO or device. */
static int conf_read_small(struct conf_ctx *ctx, const char *key, const char *path, uint8_t *buf,
                           size_t cap, size_t *len)
{
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return conf_fail(ctx, key, "cannot open \"%s\": %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return conf_fail(ctx, key, "\"%s\" is not a regular file", path);
    }
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            return conf_fail(ctx, key, "cannot read \"%s\": %s", path, strerror(e));
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

/* A key file holds 32 raw bytes, or 64 hex characters optionally followed by blanks. */
static int conf_decode_key(const uint8_t *buf, size_t len, uint8_t out[CONF_KEY_LEN])
{
    if (len == CONF_KEY_LEN) {
        memcpy(out, buf, CONF_KEY_LEN);
        return 0;
    }
    while (len > 0 && isspace(buf[len - 1])) {
        len--;
    }
    if (len != 2u * CONF_KEY_LEN) {
        return -EINVAL;
    }
    for (size_t i = 0; i < CONF_KEY_LEN; i++) {
        int hi = conf_hex((char)buf[2 * i]);
        int lo = conf_hex((char)buf[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -EINVAL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int conf_read_key(struct conf_ctx *ctx, const char *key, const char *v,
                         uint8_t out[CONF_KEY_LEN], char path[CONF_PATH_MAX])
{
    uint8_t buf[CONF_KEY_FILE_MAX];
    uint8_t any = 0;
    size_t len = 0;
    int rc = conf_resolve(ctx, key, v, path);
    if (rc == 0) {
        rc = conf_read_small(ctx, key, path, buf, sizeof(buf), &len);
    }
    if (rc == 0 && conf_decode_key(buf, len, out) != 0) {
        rc = conf_fail(ctx, key,
                       "\"%s\": expected 32 raw bytes or 64 hex characters, got %s%zu bytes", path,
                       len == sizeof(buf) ? "at least " : "", len);
    }
    explicit_bzero(buf, sizeof(buf));
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < CONF_KEY_LEN; i++) {
        any |= out[i];
    }
    if (any == 0) {
        return conf_fail(ctx, key, "\"%s\": the key is all zeros", path);
    }
    return 0;
}

/* ---- EAL argument splitting -------------------------------------------------------------- */

/* Copies one word of s starting at *ip into buf at *wp, removing quotes and escapes. */
static int conf_split_word(const char *s, size_t *ip, char *buf, size_t *wp, const char **why)
{
    size_t i = *ip;
    size_t w = *wp;
    char quote = 0;
    for (; s[i] != '\0'; i++) {
        char c = s[i];
        if (quote == '\'') {
            if (c == '\'') {
                quote = 0;
            } else {
                buf[w++] = c;
            }
            continue;
        }
        if (quote == '"') {
            if (c == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\')) {
                buf[w++] = s[++i];
            } else if (c == '"') {
                quote = 0;
            } else {
                buf[w++] = c;
            }
            continue;
        }
        if (c == ' ' || c == '\t') {
            break;
        }
        if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '\\') {
            if (s[i + 1] == '\0') {
                *why = "dangling backslash";
                return -EINVAL;
            }
            buf[w++] = s[++i];
        } else {
            buf[w++] = c;
        }
    }
    if (quote != 0) {
        *why = "unterminated quote";
        return -EINVAL;
    }
    buf[w++] = '\0';
    *ip = i;
    *wp = w;
    return 0;
}

static int conf_split(const char *args, const char *prog, struct conf_argv *out, const char **why)
{
    size_t i = 0;
    size_t w = 0;
    memset(out, 0, sizeof(*out));
    if (strlen(args) >= CONF_STR_MAX || strlen(prog) >= CONF_PORT_NAME_MAX) {
        *why = "string too long";
        return -EINVAL;
    }
    w = strlen(prog) + 1;
    memcpy(out->buf, prog, w);
    out->argv[out->argc++] = out->buf;
    /* Bounded: every pass consumes at least one character of args, or stops. */
    for (;;) {
        while (args[i] == ' ' || args[i] == '\t') {
            i++;
        }
        if (args[i] == '\0') {
            break;
        }
        if (out->argc == CONF_EAL_ARGS_MAX + 1) {
            *why = "more than 64 arguments";
            return -E2BIG;
        }
        out->argv[out->argc++] = &out->buf[w];
        int rc = conf_split_word(args, &i, out->buf, &w, why);
        if (rc != 0) {
            return rc;
        }
        /* Words never grow: prog, args and one NUL each fit buf by construction. */
        ORDO_ASSERT(w <= sizeof(out->buf));
    }
    out->argv[out->argc] = NULL;
    return 0;
}

int conf_eal_argv(const char *args, const char *prog, struct conf_argv *out,
                  struct ordo_errmsg *err)
{
    const char *why = NULL;
    char q[CONF_QUOTE_MAX + 4];
    if (conf_split(args, prog, out, &why) != 0) {
        conf_quote(args, q);
        ordo_errmsg_set(err, "EAL arguments \"%s\": %s", q, why);
        memset(out, 0, sizeof(*out));
        return ORDO_ECONFIG;
    }
    return 0;
}

/* ---- value parsers (one per kind of key) ------------------------------------------------- */

static int conf_parse_uint(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    uint64_t x = 0;
    char q[CONF_QUOTE_MAX + 4];
    if (conf_strtou64(v, &x) != 0 || x < k->min || x > k->max) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name,
                         "expected an integer in %" PRIu64 "..%" PRIu64 ", got \"%s\"", k->min,
                         k->max, q);
    }
    conf_store((char *)base + k->off, k->width, x);
    return 0;
}

static int conf_parse_pow2(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    uint64_t x = 0;
    char q[CONF_QUOTE_MAX + 4];
    if (conf_strtou64(v, &x) != 0 || x < k->min || x > k->max || (x & (x - 1)) != 0) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name,
                         "expected a power of two in %" PRIu64 "..%" PRIu64 ", got \"%s\"", k->min,
                         k->max, q);
    }
    conf_store((char *)base + k->off, k->width, x);
    return 0;
}

static int conf_parse_enum(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    char list[128] = "";
    char q[CONF_QUOTE_MAX + 4];
    size_t used = 0;
    for (const struct conf_name *n = k->names; n->name != NULL; n++) {
        if (strcmp(n->name, v) == 0) {
            memcpy((char *)base + k->off, &n->value, sizeof(n->value));
            return 0;
        }
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", used > 0 ? ", " : "", n->name);
        ORDO_ASSERT(w > 0 && (size_t)w < sizeof(list) - used);
        used += (size_t)w;
    }
    conf_quote(v, q);
    return conf_fail(ctx, k->name, "expected one of %s, got \"%s\"", list, q);
}

static int conf_parse_key_file(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                               void *base)
{
    struct conf_cluster *c = base;
    return conf_read_key(ctx, k->name, v, c->key, c->key_file);
}

static int conf_parse_node_id(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                              void *base)
{
    struct conf_node *n = base;
    uint64_t x = 0;
    char q[CONF_QUOTE_MAX + 4];
    if (conf_strtou64(v, &x) != 0 || x != n->id) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name,
                         "expected %" PRIu32 " (the id in the section name), got \"%s\"", n->id, q);
    }
    return 0;
}

static int conf_mac_parse(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 17) {
        return -EINVAL;
    }
    for (size_t i = 0; i < 6; i++) {
        int hi = conf_hex(s[3 * i]);
        int lo = conf_hex(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) {
            return -EINVAL;
        }
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int conf_parse_mac(struct conf_ctx *ctx, const struct conf_key *k, const char *v, void *base)
{
    struct conf_node *n = base;
    char q[CONF_QUOTE_MAX + 4];
    uint8_t mac[6];
    conf_quote(v, q);
    if (conf_mac_parse(v, mac) != 0) {
        return conf_fail(ctx, k->name, "expected a MAC address like 02:00:00:00:00:01, got \"%s\"",
                         q);
    }
    if ((mac[0] & 1u) != 0) {
        return conf_fail(ctx, k->name, "%s is a multicast address; expected a unicast MAC", q);
    }
    if ((mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0) {
        return conf_fail(ctx, k->name, "expected a nonzero unicast MAC, got \"%s\"", q);
    }
    memcpy(n->mac, mac, sizeof(mac));
    return 0;
}

/* A host address a replica can own: not 0/8, loopback, multicast or reserved 240/4. */
static int conf_ipv4_parse(const char *s, uint32_t *out)
{
    struct in_addr in;
    if (inet_pton(AF_INET, s, &in) != 1) {
        return -EINVAL;
    }
    uint32_t h = ntohl(in.s_addr);
    uint32_t first = h >> 24;
    if (first == 0 || first == 127 || first >= 224) {
        return -EINVAL;
    }
    *out = in.s_addr;
    return 0;
}

static int conf_parse_ipv4(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    char q[CONF_QUOTE_MAX + 4];
    uint32_t a = 0;
    if (conf_ipv4_parse(v, &a) != 0) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name,
                         "expected a unicast IPv4 address like 198.18.0.1, got \"%s\"", q);
    }
    memcpy((char *)base + k->off, &a, sizeof(a));
    return 0;
}

/* True when the EAL word selects lcores or the main lcore, which [replica] lcores owns (the
 * replica passes -l and --main-lcore from it; a second copy would contradict it). */
static bool conf_eal_word_sets_lcores(const char *w)
{
    static const char *const longs[] = {"--lcores", "--main-lcore", "--master-lcore"};
    if (w[0] == '-' && (w[1] == 'l' || w[1] == 'c')) {
        return true;
    }
    for (size_t i = 0; i < ORDO_ARRAY_LEN(longs); i++) {
        size_t n = strlen(longs[i]);
        if (strncmp(w, longs[i], n) == 0 && (w[n] == '\0' || w[n] == '=')) {
            return true;
        }
    }
    return false;
}

static int conf_parse_eal(struct conf_ctx *ctx, const struct conf_key *k, const char *v, void *base)
{
    struct conf_node *n = base;
    struct conf_argv argv;
    const char *why = NULL;
    char q[CONF_QUOTE_MAX + 4];
    if (conf_split(v, "ordo", &argv, &why) != 0) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name, "%s in \"%s\"", why, q);
    }
    for (int i = 1; i < argv.argc; i++) {
        if (conf_eal_word_sets_lcores(argv.argv[i])) {
            conf_quote(argv.argv[i], q);
            return conf_fail(ctx, k->name, "\"%s\" is not allowed here: [replica] lcores sets them",
                             q);
        }
    }
    ORDO_ASSERT(strlen(v) < sizeof(n->eal));
    memcpy(n->eal, v, strlen(v) + 1);
    return 0;
}

static int conf_parse_port(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    struct conf_node *n = base;
    char q[CONF_QUOTE_MAX + 4];
    uint64_t x = 0;
    size_t len = strlen(v);
    bool ok = len < sizeof(n->port);
    for (size_t i = 0; ok && i < len; i++) {
        ok = isgraph((unsigned char)v[i]) != 0;
    }
    bool numeric = len > 0 && strspn(v, "0123456789") == len;
    if (ok && numeric) {
        ok = conf_strtou64(v, &x) == 0 && x < RTE_MAX_ETHPORTS;
    }
    if (!ok) {
        conf_quote(v, q);
        return conf_fail(ctx, k->name,
                         "expected a DPDK port index in 0..%d or a port name, got \"%s\"",
                         RTE_MAX_ETHPORTS - 1, q);
    }
    memcpy(n->port, v, len + 1);
    n->port_index = numeric ? (int32_t)x : -1;
    return 0;
}

static int conf_parse_path(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                           void *base)
{
    return conf_resolve(ctx, k->name, v, (char *)base + k->off);
}

/* Parses "a-b" or "a" at *pp into the lcore list. */
static int conf_lcores_item(const char **pp, struct conf_replica *r, uint64_t map[2], uint32_t *dup)
{
    uint64_t a = 0;
    uint64_t b = 0;
    const char *p = conf_scan_u64(*pp, &a);
    if (p == NULL) {
        return -EINVAL;
    }
    b = a;
    if (*p == '-') {
        p = conf_scan_u64(p + 1, &b);
        if (p == NULL) {
            return -EINVAL;
        }
    }
    if (a > b || b > CONF_LCORE_ID_MAX) {
        return -EINVAL;
    }
    for (uint64_t x = a; x <= b; x++) {
        if (conf_bit_test_set(map, (uint32_t)x)) {
            *dup = (uint32_t)x;
            return -EEXIST;
        }
        r->lcores[r->lcores_n++] = (uint32_t)x;
    }
    *pp = p;
    return 0;
}

static int conf_parse_lcores(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                             void *base)
{
    struct conf_replica *r = base;
    uint64_t map[2] = {0, 0};
    uint32_t dup = 0;
    char q[CONF_QUOTE_MAX + 4];
    const char *p = v;
    r->lcores_n = 0;
    /* Bounded: every pass consumes at least one digit of v, or stops. */
    for (;;) {
        int rc = conf_lcores_item(&p, r, map, &dup);
        if (rc == -EEXIST) {
            return conf_fail(ctx, k->name, "lcore %" PRIu32 " is listed twice", dup);
        }
        if (rc != 0) {
            break;
        }
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            return 0;
        }
        if (*p != ',') {
            break;
        }
        p++;
        while (*p == ' ') {
            p++;
        }
    }
    conf_quote(v, q);
    return conf_fail(ctx, k->name,
                     "expected a list of lcore ids in 0..%d like \"0,2-3\", got \"%s\"",
                     CONF_LCORE_ID_MAX, q);
}

/* "a.b.c.d/len" with no host bits; *host is set when only host bits are wrong. */
static int conf_cidr_parse(const char *s, struct conf_subnet *out, bool *host)
{
    char addr[INET_ADDRSTRLEN];
    struct in_addr in;
    uint64_t len = 0;
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(addr)) {
        return -EINVAL;
    }
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    if (inet_pton(AF_INET, addr, &in) != 1 || (slash[1] == '0' && slash[2] != '\0') ||
        conf_strtou64(slash + 1, &len) != 0 || len > 32) {
        return -EINVAL;
    }
    out->prefix_len = (uint8_t)len;
    out->mask = len == 0 ? 0 : htonl((uint32_t)(UINT32_MAX << (32 - len)));
    out->addr = in.s_addr;
    if ((out->addr & ~out->mask) != 0) {
        *host = true;
        return -EINVAL;
    }
    return 0;
}

static int conf_allow_item(struct conf_ctx *ctx, const struct conf_key *k, char *item,
                           struct conf_clients *c)
{
    char q[CONF_QUOTE_MAX + 4];
    char fix[INET_ADDRSTRLEN];
    bool host = false;
    struct conf_subnet s;
    item = conf_strip(item);
    conf_quote(item, q);
    if (conf_cidr_parse(item, &s, &host) != 0) {
        if (host) {
            uint32_t net = s.addr & s.mask;
            inet_ntop(AF_INET, &net, fix, sizeof(fix));
            return conf_fail(ctx, k->name, "%s has host bits set (did you mean %s/%u?)", q, fix,
                             s.prefix_len);
        }
        return conf_fail(ctx, k->name, "expected IPv4 subnets like 198.18.0.0/15, got \"%s\"", q);
    }
    if (c->allow_n == CONF_SUBNETS_MAX) {
        return conf_fail(ctx, k->name, "more than %d subnets", CONF_SUBNETS_MAX);
    }
    c->allow[c->allow_n++] = s;
    return 0;
}

static int conf_parse_allow(struct conf_ctx *ctx, const struct conf_key *k, const char *v,
                            void *base)
{
    struct conf_clients *c = base;
    char copy[CONF_STR_MAX];
    char *save = NULL;
    snprintf(copy, sizeof(copy), "%s", v);
    c->allow_n = 0;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        int rc = conf_allow_item(ctx, k, item, c);
        if (rc != 0) {
            return rc;
        }
    }
    if (c->allow_n == 0) {
        char q[CONF_QUOTE_MAX + 4];
        conf_quote(v, q);
        return conf_fail(ctx, k->name, "expected IPv4 subnets like 198.18.0.0/15, got \"%s\"", q);
    }
    return 0;
}

/* ---- key tables -------------------------------------------------------------------------- */

#define CONF_FIELD(st, f) .off = offsetof(struct st, f), .width = sizeof(((struct st *)0)->f)

static const struct conf_name conf_idle_names[] = {
    {"busy", CONF_IDLE_BUSY},
    {"backoff", CONF_IDLE_BACKOFF},
    {NULL, 0},
};

static const struct conf_name conf_snapshot_mode_names[] = {
    {"fork", CONF_SNAPSHOT_FORK},
    {"inline", CONF_SNAPSHOT_INLINE},
    {NULL, 0},
};

static const struct conf_name conf_auth_names[] = {
    {"none", CONF_AUTH_NONE},
    {"mac", CONF_AUTH_MAC},
    {"optional", CONF_AUTH_OPTIONAL},
    {NULL, 0},
};

static const struct conf_name conf_log_names[] = {
    {"error", CONF_LOG_ERROR}, {"warning", CONF_LOG_WARNING}, {"notice", CONF_LOG_NOTICE},
    {"info", CONF_LOG_INFO},   {"debug", CONF_LOG_DEBUG},     {NULL, 0},
};

static const struct conf_key conf_cluster_keys[] = {
    {.name = "id",
     .parse = conf_parse_uint,
     CONF_FIELD(conf_cluster, id),
     .required = true,
     .min = 1,
     .max = UINT32_MAX},
    {.name = "key_file", .parse = conf_parse_key_file, .required = true},
    {.name = "value_max",
     .parse = conf_parse_uint,
     CONF_FIELD(conf_cluster, value_max),
     .min = 1,
     .max = MSG_VALUE_LEN_MAX},
    {.name = "probe_port",
     .parse = conf_parse_uint,
     CONF_FIELD(conf_cluster, probe_port),
     .min = 0,
     .max = UINT16_MAX},
    {.name = "log_level",
     .parse = conf_parse_enum,
     CONF_FIELD(conf_cluster, log_level),
     .names = conf_log_names},
};

static const struct conf_key conf_node_keys[] = {
    {.name = "id", .parse = conf_parse_node_id},
    {.name = "mac", .parse = conf_parse_mac, .required = true},
    {.name = "ipv4", .parse = conf_parse_ipv4, CONF_FIELD(conf_node, ipv4), .required = true},
    {.name = "udp_port",
     .parse = conf_parse_uint,
     CONF_FIELD(conf_node, udp_port),
     .required = true,
     .min = 1,
     .max = UINT16_MAX},
    {.name = "eal", .parse = conf_parse_eal, .required = true},
    {.name = "port", .parse = conf_parse_port},
    {.name = "data_dir",
     .parse = conf_parse_path,
     CONF_FIELD(conf_node, data_dir),
     .required = true},
    {.name = "join", .parse = conf_parse_uint, CONF_FIELD(conf_node, join), .min = 0, .max = 1},
};

#define CONF_R(f, mn, mx)                                                                          \
    .name = #f, .parse = conf_parse_uint, CONF_FIELD(conf_replica, f), .min = mn, .max = mx

static const struct conf_key conf_replica_keys[] = {
    {.name = "lcores", .parse = conf_parse_lcores},
    {CONF_R(rx_lcore, 0, CONF_LCORE_ID_MAX)},
    {CONF_R(seq_lcore, 0, CONF_LCORE_ID_MAX)},
    {CONF_R(log_lcore, 0, CONF_LCORE_ID_MAX)},
    {CONF_R(apply_lcore, 0, CONF_LCORE_ID_MAX)},
    {CONF_R(tx_lcore, 0, CONF_LCORE_ID_MAX)},
    {CONF_R(rx_queues, 1, 16)},
    {CONF_R(tx_queues, 1, 16)},
    {CONF_R(rx_burst, 1, 512)},
    {CONF_R(tx_burst, 1, 512)},
    {CONF_R(rx_desc, 64, 16384)},
    {CONF_R(tx_desc, 64, 16384)},
    {CONF_R(mbufs, 512, 16777216)},
    {.name = "ring_size",
     .parse = conf_parse_pow2,
     CONF_FIELD(conf_replica, ring_size),
     .min = 64,
     .max = 1048576},
    {CONF_R(batch_count_max, 1, 4096)},
    {CONF_R(batch_bytes_max, 512, CONF_BATCH_BYTES_LIMIT)},
    {CONF_R(batch_time_us, 0, 100000)},
    {.name = "idle",
     .parse = conf_parse_enum,
     CONF_FIELD(conf_replica, idle),
     .names = conf_idle_names},
    {CONF_R(election_ticks, 2, 1000000)},
    {CONF_R(heartbeat_ticks, 1, 500000)},
    {CONF_R(tick_us, 100, 1000000)},
    {CONF_R(snapshot_entries, 0, 1ull << 40)},
    {CONF_R(snapshot_log_bytes, 0, 1ull << 50)},
    {.name = "snapshot_mode",
     .parse = conf_parse_enum,
     CONF_FIELD(conf_replica, snapshot_mode),
     .names = conf_snapshot_mode_names},
    {CONF_R(pipeline_window, 1, 4096)},
    {CONF_R(pipeline_bytes, 512, 1ull << 34)},
    {CONF_R(peer_mtu, 1500, 9000)},
};

static const struct conf_key conf_clients_keys[] = {
    {.name = "auth",
     .parse = conf_parse_enum,
     CONF_FIELD(conf_clients, auth),
     .names = conf_auth_names},
    {.name = "allow", .parse = conf_parse_allow},
    {.name = "sessions_max",
     .parse = conf_parse_uint,
     CONF_FIELD(conf_clients, sessions_max),
     .min = 1,
     .max = 1048576},
};

/* ---- sections ---------------------------------------------------------------------------- */

/* Edit distance of two names (each shorter than CFG_NAME_LEN), for "did you mean". */
static size_t conf_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, CFG_NAME_LEN - 1);
    size_t lb = strnlen(b, CFG_NAME_LEN - 1);
    size_t row[CFG_NAME_LEN];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int conf_unknown_key(struct conf_ctx *ctx, const struct conf_key *keys, size_t n,
                            const char *name)
{
    char q[CONF_QUOTE_MAX + 4];
    const char *near = NULL;
    size_t best = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = conf_distance(name, keys[i].name);
        if (d < best) {
            best = d;
            near = keys[i].name;
        }
    }
    conf_quote(name, q);
    if (near != NULL) {
        return conf_fail(ctx, q, "unknown key (did you mean %s?)", near);
    }
    return conf_fail(ctx, q, "unknown key");
}

static int conf_parse_client_key(struct conf_ctx *ctx, const char *name, const char *v)
{
    struct conf_clients *c = &ctx->out->clients;
    char q[CONF_QUOTE_MAX + 4];
    char path[CONF_PATH_MAX];
    uint64_t id = 0;
    const char *digits = name + 4;
    if (digits[0] == '0' || conf_strtou64(digits, &id) != 0) {
        conf_quote(name, q);
        return conf_fail(ctx, q,
                         "unknown key (expected key.<client_id>, a client id in "
                         "1..18446744073709551615)");
    }
    if (c->keys_n == CONF_CLIENT_KEYS_MAX) {
        return conf_fail(ctx, name, "more than %d client keys", CONF_CLIENT_KEYS_MAX);
    }
    if (c->keys_n == ctx->keys_cap) {
        uint32_t cap = ctx->keys_cap == 0 ? 16 : ctx->keys_cap * 2;
        struct conf_client_key *k = mem_realloc(c->keys, cap * sizeof(*k));
        if (k == NULL) {
            return conf_nomem(ctx);
        }
        c->keys = k;
        ctx->keys_cap = cap;
    }
    struct conf_client_key *ck = &c->keys[c->keys_n];
    int rc = conf_read_key(ctx, name, v, ck->key, path);
    if (rc != 0) {
        explicit_bzero(ck, sizeof(*ck));
        return rc;
    }
    ck->client_id = id;
    c->keys_n++;
    return 0;
}

/* Parses a section's entries through its key table; rejects unknown, repeated and missing
 * keys. client_keys admits the key.<client_id> pattern ([clients] only). */
static int conf_entries(struct conf_ctx *ctx, const struct conf_key *keys, size_t n, void *base,
                        const struct rte_cfgfile_entry *e, int count, bool client_keys)
{
    uint64_t seen = 0;
    ORDO_ASSERT(n <= 64);
    for (int i = 0; i < count; i++) {
        int rc;
        if (client_keys && strncmp(e[i].name, "key.", 4) == 0) {
            rc = conf_parse_client_key(ctx, e[i].name, e[i].value);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        const struct conf_key *k = NULL;
        for (size_t j = 0; j < n && k == NULL; j++) {
            k = strcmp(keys[j].name, e[i].name) == 0 ? &keys[j] : NULL;
        }
        if (k == NULL) {
            return conf_unknown_key(ctx, keys, n, e[i].name);
        }
        uint64_t bit = 1ull << (size_t)(k - keys);
        if ((seen & bit) != 0) {
            return conf_fail(ctx, k->name, "given twice");
        }
        seen |= bit;
        rc = k->parse(ctx, k, e[i].value, base);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (keys[j].required && (seen & (1ull << j)) == 0) {
            return conf_fail(ctx, keys[j].name, "missing (required)");
        }
    }
    return 0;
}

static int conf_node_section(struct conf_ctx *ctx, const char *name,
                             const struct rte_cfgfile_entry *e, int count)
{
    struct conf *c = ctx->out;
    uint64_t id = 0;
    const char *digits = name + 5;
    if (digits[0] == '0' || conf_strtou64(digits, &id) != 0 || id < 1 || id > CONF_NODE_ID_MAX) {
        return conf_fail(ctx, NULL, "unknown section (expected node.<id>, id in 1..%d)",
                         CONF_NODE_ID_MAX);
    }
    if (conf_bit_test_set(ctx->node_ids, (uint32_t)id)) {
        return conf_fail(ctx, NULL, "section given twice");
    }
    if (c->nodes_n == MSG_NODES_MAX) {
        return conf_fail(ctx, NULL, "more than %d nodes", MSG_NODES_MAX);
    }
    struct conf_node *n = &c->nodes[c->nodes_n++];
    n->id = (uint32_t)id;
    memcpy(n->port, "0", 2);
    n->port_index = 0;
    ctx->node = n;
    int rc = conf_entries(ctx, conf_node_keys, ORDO_ARRAY_LEN(conf_node_keys), n, e, count, false);
    ctx->node = NULL;
    return rc;
}

static int conf_section(struct conf_ctx *ctx, const char *name, const struct rte_cfgfile_entry *e,
                        int count)
{
    struct conf *c = ctx->out;
    bool *once = NULL;
    int rc = 0;
    conf_quote(name, ctx->section_buf);
    ctx->section = ctx->section_buf;
    if (strncmp(name, "node.", 5) == 0) {
        return conf_node_section(ctx, name, e, count);
    }
    if (strcmp(name, "cluster") == 0) {
        once = &ctx->have_cluster;
    } else if (strcmp(name, "replica") == 0) {
        once = &ctx->have_replica;
    } else if (strcmp(name, "clients") == 0) {
        once = &ctx->have_clients;
    } else {
        return conf_fail(ctx, NULL,
                         "unknown section (expected cluster, node.<id>, replica or "
                         "clients)");
    }
    if (*once) {
        return conf_fail(ctx, NULL, "section given twice");
    }
    *once = true;
    if (once == &ctx->have_cluster) {
        rc = conf_entries(ctx, conf_cluster_keys, ORDO_ARRAY_LEN(conf_cluster_keys), &c->cluster, e,
                          count, false);
    } else if (once == &ctx->have_replica) {
        rc = conf_entries(ctx, conf_replica_keys, ORDO_ARRAY_LEN(conf_replica_keys), &c->replica, e,
                          count, false);
    } else {
        rc = conf_entries(ctx, conf_clients_keys, ORDO_ARRAY_LEN(conf_clients_keys), &c->clients, e,
                          count, true);
    }
    return rc;
}

static int conf_walk(struct conf_ctx *ctx, struct rte_cfgfile *cfg)
{
    int n = rte_cfgfile_num_sections(cfg, NULL, 0);
    for (int i = 0; i < n; i++) {
        char name[CFG_NAME_LEN];
        struct rte_cfgfile_entry *e = NULL;
        int count = rte_cfgfile_section_num_entries_by_index(cfg, name, i);
        if (count < 0) {
            return conf_fail(ctx, NULL, "rte_cfgfile cannot read section %d", i);
        }
        if (count > 0) {
            e = mem_calloc((size_t)count, sizeof(*e));
            if (e == NULL) {
                return conf_nomem(ctx);
            }
            count = rte_cfgfile_section_entries_by_index(cfg, i, name, e, count);
        }
        int rc = conf_section(ctx, name, e, count);
        mem_free(e);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- lint: what rte_cfgfile would silently skip, truncate or reject without a reason ----- */

struct conf_lint {
    bool in_section;
    char section[CONF_QUOTE_MAX + 4];
};

static int conf_lint_section(struct conf_ctx *ctx, struct conf_lint *st, unsigned line, char *t)
{
    char q[CONF_QUOTE_MAX + 4];
    char *end = strchr(t, ']');
    conf_quote(t, q);
    if (end == NULL) {
        return conf_fail_line(ctx, line, "expected ']' to close \"%s\"", q);
    }
    if (end[1] != '\0') {
        return conf_fail_line(ctx, line, "unexpected text after ']' in \"%s\"", q);
    }
    *end = '\0';
    char *name = conf_strip(t + 1);
    if (*name == '\0') {
        return conf_fail_line(ctx, line, "empty section name");
    }
    if (strlen(name) >= CFG_NAME_LEN) {
        return conf_fail_line(ctx, line, "section name longer than %d characters",
                              CFG_NAME_LEN - 1);
    }
    st->in_section = true;
    conf_quote(name, st->section);
    return 0;
}

static int conf_lint_entry(struct conf_ctx *ctx, struct conf_lint *st, unsigned line, char *t)
{
    char q[CONF_QUOTE_MAX + 4];
    char *eq = strchr(t, '=');
    conf_quote(t, q);
    if (eq == NULL) {
        return conf_fail_line(ctx, line, "expected \"[section]\" or \"key = value\", got \"%s\"",
                              q);
    }
    if (!st->in_section) {
        return conf_fail_line(ctx, line, "\"%s\" is outside any section", q);
    }
    *eq = '\0';
    char *key = conf_strip(t);
    char *value = conf_strip(eq + 1);
    if (*key == '\0') {
        return conf_fail_line(ctx, line, "[%s]: missing key name before '='", st->section);
    }
    if (strlen(key) >= CFG_NAME_LEN) {
        return conf_fail_line(ctx, line, "[%s]: key longer than %d characters", st->section,
                              CFG_NAME_LEN - 1);
    }
    conf_quote(key, q);
    if (*value == '\0') {
        return conf_fail_line(ctx, line, "[%s] %s: empty value", st->section, q);
    }
    if (strlen(value) >= CFG_VALUE_LEN) {
        return conf_fail_line(ctx, line, "[%s] %s: value longer than %d characters", st->section, q,
                              CFG_VALUE_LEN - 1);
    }
    return 0;
}

static int conf_lint_line(struct conf_ctx *ctx, struct conf_lint *st, unsigned line, const char *s,
                          size_t n)
{
    char buf[CONF_LINE_MAX + 1];
    if (n > CONF_LINE_MAX) {
        return conf_fail_line(ctx, line, "longer than %d characters", CONF_LINE_MAX);
    }
    if (memchr(s, '\0', n) != NULL) {
        return conf_fail_line(ctx, line, "contains a NUL byte");
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* Same rule as rte_cfgfile: the first comment character starts a comment unless it is
     * escaped with a backslash. */
    char *hash = strchr(buf, CONF_COMMENT);
    if (hash != NULL && (hash == buf || hash[-1] != '\\')) {
        *hash = '\0';
    }
    char *t = conf_strip(buf);
    if (*t == '\0') {
        return 0;
    }
    if (*t == '[') {
        return conf_lint_section(ctx, st, line, t);
    }
    return conf_lint_entry(ctx, st, line, t);
}

static int conf_read_text(struct conf_ctx *ctx, char **text, size_t *len)
{
    struct stat st;
    int fd = open(ctx->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return conf_fail(ctx, NULL, "cannot open: %s", strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONF_FILE_MAX) {
        close(fd);
        return conf_fail(ctx, NULL, "expected a regular file of at most %u bytes", CONF_FILE_MAX);
    }
    size_t cap = (size_t)st.st_size;
    size_t got = 0;
    *text = mem_alloc(cap + 1);
    if (*text == NULL) {
        close(fd);
        return conf_nomem(ctx);
    }
    while (got < cap) {
        ssize_t r = read(fd, *text + got, cap - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

static int conf_lint_file(struct conf_ctx *ctx)
{
    struct conf_lint st = {.in_section = false};
    char *text = NULL;
    size_t len = 0;
    size_t pos = 0;
    int rc = conf_read_text(ctx, &text, &len);
    for (unsigned line = 1; rc == 0 && pos < len; line++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl == NULL ? len - pos : (size_t)(nl - (text + pos));
        rc = conf_lint_line(ctx, &st, line, text + pos, n);
        pos += n + 1;
    }
    mem_free(text);
    return rc;
}

/* ---- whole-file checks ------------------------------------------------------------------- */

static bool conf_lcore_in(const struct conf_replica *r, uint32_t lcore)
{
    for (uint32_t i = 0; i < r->lcores_n; i++) {
        if (r->lcores[i] == lcore) {
            return true;
        }
    }
    return false;
}

void conf_mbufs_need(const struct conf *c, struct conf_mbuf_need *need)
{
    const struct conf_replica *r = &c->replica;
    const uint32_t stages[] = {r->rx_lcore, r->seq_lcore, r->log_lcore, r->apply_lcore,
                               r->tx_lcore};
    memset(need, 0, sizeof(*need));
    for (size_t i = 0; i < ORDO_ARRAY_LEN(stages); i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++) {
            seen = seen || stages[k] == stages[i];
        }
        need->lcores_n += seen ? 0u : 1u;
    }
    bool replicated = c->nodes_n > 1;
    need->descriptors = (uint64_t)r->rx_queues * r->rx_desc + (uint64_t)r->tx_queues * r->tx_desc;
    need->rings_n = replicated ? 3u : 2u;
    need->rings = (uint64_t)need->rings_n * (r->ring_size - 1u);
    need->bursts = (uint64_t)need->lcores_n * ((uint64_t)r->rx_burst + r->tx_burst);
    uint32_t cache = r->mbufs / 8u < CONF_MBUF_CACHE_MAX ? r->mbufs / 8u : CONF_MBUF_CACHE_MAX;
    need->caches = (uint64_t)need->lcores_n * CONF_MBUF_CACHE_HELD(cache);
    /* rt_stage_rx queues split items once it holds an RX burst of them (rt_rx_push). */
    need->split = r->rx_burst;
    need->parked = replicated ? CONF_MBUF_PARKED : 0u;
    uint32_t replies =
        r->batch_count_max < CONF_MBUF_REPLIES_MAX ? r->batch_count_max : CONF_MBUF_REPLIES_MAX;
    need->replies = replicated ? replies : 0u;
    need->total = need->descriptors + need->rings + need->bursts + need->caches + need->split +
                  need->parked + need->replies;
}

/* Every part that can hold an mbuf of the port's pool at once must fit in it: a pool that runs
 * dry does not fail loudly, the PMD stops receiving or sending (a veth leader with 4095 mbufs
 * under 256 outstanding requests stopped transmitting for 1-2 s and lost its term, while
 * 16383 served: docs/benchmarks.md, "Leader loss at 256 outstanding"). The order of the
 * message keeps the minimum and the value in front when a long path truncates it. */
static int conf_check_mbufs(struct conf_ctx *ctx)
{
    const struct conf_replica *r = &ctx->out->replica;
    struct conf_mbuf_need n;
    conf_mbufs_need(ctx->out, &n);
    if (r->mbufs >= n.total) {
        return 0;
    }
    return conf_fail(ctx, "mbufs",
                     "expected at least %" PRIu64 ", got %" PRIu32
                     ": queues x rx_desc/tx_desc %" PRIu64 " + %" PRIu32
                     " rings x ring_size %" PRIu64 " + %" PRIu32
                     " lcores x (bursts + cache) %" PRIu64 " + RX split %" PRIu64
                     " + parked reads/probes/replies %" PRIu64,
                     n.total, r->mbufs, n.descriptors, n.rings_n, n.rings, n.lcores_n,
                     n.bursts + n.caches, n.split, n.parked + n.replies);
}

static int conf_check_replica(struct conf_ctx *ctx)
{
    struct conf_replica *r = &ctx->out->replica;
    const char *const names[] = {"rx_lcore", "seq_lcore", "log_lcore", "apply_lcore", "tx_lcore"};
    uint32_t *stages[] = {&r->rx_lcore, &r->seq_lcore, &r->log_lcore, &r->apply_lcore,
                          &r->tx_lcore};
    char list[64];
    ctx->section = "replica";
    for (size_t i = 0; i < ORDO_ARRAY_LEN(stages); i++) {
        if (*stages[i] == CONF_UNSET) {
            *stages[i] = r->lcores[0];
        } else if (!conf_lcore_in(r, *stages[i])) {
            if (conf_lcores_list(r, list, sizeof(list)) < 0) {
                memcpy(list, "...", 4);
            }
            return conf_fail(ctx, names[i], "lcore %" PRIu32 " is not in lcores (%s)", *stages[i],
                             list);
        }
    }
    if (r->election_ticks < 2 * (uint64_t)r->heartbeat_ticks) {
        return conf_fail(ctx, "election_ticks",
                         "expected at least 2 x heartbeat_ticks = %" PRIu64 ", got %" PRIu32,
                         2 * (uint64_t)r->heartbeat_ticks, r->election_ticks);
    }
    int rc = conf_check_mbufs(ctx);
    if (rc != 0) {
        return rc;
    }
    if (r->pipeline_bytes < r->batch_bytes_max) {
        return conf_fail(ctx, "pipeline_bytes",
                         "expected at least batch_bytes_max = %" PRIu32 ", got %" PRIu64,
                         r->batch_bytes_max, r->pipeline_bytes);
    }
    /* Below one batch, every entry would start a snapshot. */
    if (r->snapshot_log_bytes != 0 && r->snapshot_log_bytes < r->batch_bytes_max) {
        return conf_fail(ctx, "snapshot_log_bytes",
                         "expected 0 or at least batch_bytes_max = %" PRIu32 ", got %" PRIu64,
                         r->batch_bytes_max, r->snapshot_log_bytes);
    }
    return 0;
}

static void conf_sort_nodes(struct conf *c)
{
    for (uint32_t i = 1; i < c->nodes_n; i++) {
        struct conf_node n = c->nodes[i];
        uint32_t j = i;
        for (; j > 0 && c->nodes[j - 1].id > n.id; j--) {
            c->nodes[j] = c->nodes[j - 1];
        }
        c->nodes[j] = n;
    }
}

/* Checks node b against an earlier node a for shared addresses and directories. */
static int conf_check_node_pair(struct conf_ctx *ctx, const struct conf_node *a,
                                const struct conf_node *b)
{
    char s[INET_ADDRSTRLEN];
    if (memcmp(a->mac, b->mac, sizeof(a->mac)) == 0) {
        return conf_fail(ctx, "mac",
                         "%02x:%02x:%02x:%02x:%02x:%02x is also used by [node.%" PRIu32 "]",
                         b->mac[0], b->mac[1], b->mac[2], b->mac[3], b->mac[4], b->mac[5], a->id);
    }
    if (a->ipv4 == b->ipv4) {
        inet_ntop(AF_INET, &b->ipv4, s, sizeof(s));
        return conf_fail(ctx, "ipv4", "%s is also used by [node.%" PRIu32 "]", s, a->id);
    }
    if (strcmp(a->data_dir, b->data_dir) == 0) {
        return conf_fail(ctx, "data_dir", "\"%s\" is also used by [node.%" PRIu32 "]", b->data_dir,
                         a->id);
    }
    return 0;
}

static int conf_check_nodes(struct conf_ctx *ctx)
{
    struct conf *c = ctx->out;
    char name[CFG_NAME_LEN];
    if (c->nodes_n == 0) {
        ctx->section = NULL;
        return conf_fail(ctx, NULL, "no [node.<id>] section (need at least one replica)");
    }
    conf_sort_nodes(c);
    uint32_t founders = 0;
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        founders += c->nodes[i].join == 0;
    }
    if (founders == 0) {
        ctx->section = NULL;
        return conf_fail(ctx, NULL,
                         "every [node.<id>] has join = 1 (the initial membership needs at least "
                         "one node with join = 0)");
    }
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        const struct conf_node *b = &c->nodes[i];
        snprintf(name, sizeof(name), "node.%" PRIu32, b->id);
        ctx->section = name;
        if (c->cluster.probe_port != 0 && b->udp_port == c->cluster.probe_port) {
            return conf_fail(ctx, "udp_port", "%u is also [cluster] probe_port", b->udp_port);
        }
        for (uint32_t j = 0; j < i; j++) {
            int rc = conf_check_node_pair(ctx, &c->nodes[j], b);
            if (rc != 0) {
                return rc;
            }
        }
    }
    ctx->section = NULL;
    return 0;
}

static int conf_key_cmp(const void *pa, const void *pb)
{
    const struct conf_client_key *a = pa;
    const struct conf_client_key *b = pb;
    return a->client_id < b->client_id ? -1 : a->client_id > b->client_id;
}

static int conf_check_clients(struct conf_ctx *ctx)
{
    struct conf_clients *c = &ctx->out->clients;
    char key[32];
    ctx->section = "clients";
    if (c->keys_n > 1) {
        qsort(c->keys, c->keys_n, sizeof(c->keys[0]), conf_key_cmp);
    }
    for (uint32_t i = 0; i < c->keys_n; i++) {
        snprintf(key, sizeof(key), "key.%" PRIu64, c->keys[i].client_id);
        if (i > 0 && c->keys[i - 1].client_id == c->keys[i].client_id) {
            return conf_fail(ctx, key, "given twice");
        }
        if (c->auth == CONF_AUTH_NONE) {
            return conf_fail(ctx, key, "has no effect with auth = none");
        }
        if (memcmp(c->keys[i].key, ctx->out->cluster.key, CONF_KEY_LEN) == 0) {
            return conf_fail(ctx, key,
                             "same key as [cluster] key_file; clients must not hold "
                             "the peer key");
        }
    }
    if (c->auth == CONF_AUTH_MAC && c->allow_n > 0) {
        return conf_fail(ctx, "allow", "has no effect with auth = mac (use auth = optional)");
    }
    if (c->auth == CONF_AUTH_MAC && c->keys_n == 0) {
        return conf_fail(ctx, "auth", "mac needs at least one key.<client_id> entry");
    }
    return 0;
}

/* Whether node n's port is a net_af_xdp one: its port name, or the vdev its EAL string makes
 * when the port is given by index. */
static bool conf_node_af_xdp(const struct conf_node *n)
{
    if (n->port_index < 0) {
        return strncmp(n->port, "net_af_xdp", 10) == 0;
    }
    return strstr(n->eal, "net_af_xdp") != NULL;
}

/* A peer_mtu the port cannot receive would not fail anywhere: the kernel would drop every
 * AppendEntries over its limit, forever (docs/configuration.md, peer_mtu). */
static int conf_check_af_xdp(struct conf_ctx *ctx)
{
    const struct conf *c = ctx->out;
    if (c->nodes_n < 2 || c->replica.peer_mtu <= CONF_AF_XDP_PEER_MTU_MAX) {
        return 0;
    }
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        if (conf_node_af_xdp(&c->nodes[i])) {
            ctx->section = "replica";
            return conf_fail(ctx, "peer_mtu",
                             "expected at most %u with net_af_xdp ([node.%" PRIu32
                             "]: 4 KiB umem chunks), got %" PRIu32,
                             CONF_AF_XDP_PEER_MTU_MAX, c->nodes[i].id, c->replica.peer_mtu);
        }
    }
    return 0;
}

static int conf_check(struct conf_ctx *ctx)
{
    if (!ctx->have_cluster) {
        ctx->section = NULL;
        return conf_fail(ctx, NULL, "no [cluster] section (required)");
    }
    int rc = conf_check_nodes(ctx);
    if (rc == 0) {
        rc = conf_check_replica(ctx);
    }
    if (rc == 0) {
        rc = conf_check_af_xdp(ctx);
    }
    if (rc == 0) {
        rc = conf_check_clients(ctx);
    }
    return rc;
}

/* ---- public API -------------------------------------------------------------------------- */

void conf_replica_defaults(struct conf_replica *r)
{
    memset(r, 0, sizeof(*r));
    r->lcores_n = 1;
    r->lcores[0] = 0;
    r->rx_queues = 1;
    r->tx_queues = 1;
    r->rx_burst = 32;
    r->tx_burst = 32;
    r->rx_desc = 1024;
    r->tx_desc = 1024;
    r->mbufs = 8191;
    r->ring_size = 1024;
    r->batch_count_max = 64;
    r->batch_bytes_max = 8192;
    r->batch_time_us = 50;
    r->idle = CONF_IDLE_BACKOFF;
    r->election_ticks = 100;
    r->heartbeat_ticks = 10;
    r->tick_us = 1000;
    r->snapshot_entries = 100000;
    r->snapshot_log_bytes = 0;
    r->snapshot_mode = CONF_SNAPSHOT_FORK;
    r->pipeline_window = 64;
    r->pipeline_bytes = 4u << 20;
    r->peer_mtu = 1500;
}

static void conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof(*c));
    c->cluster.value_max = MSG_VALUE_LEN_MAX;
    c->cluster.probe_port = 1028; /* FRAME_PROBE_PORT */
    c->cluster.log_level = CONF_LOG_INFO;
    conf_replica_defaults(&c->replica);
    /* Unset stages follow lcores[0], whatever lcores turns out to be. */
    c->replica.rx_lcore = CONF_UNSET;
    c->replica.seq_lcore = CONF_UNSET;
    c->replica.log_lcore = CONF_UNSET;
    c->replica.apply_lcore = CONF_UNSET;
    c->replica.tx_lcore = CONF_UNSET;
    c->clients.auth = CONF_AUTH_MAC;
    c->clients.sessions_max = 4096;
}

static void conf_set_dir(struct conf_ctx *ctx)
{
    const char *slash = strrchr(ctx->path, '/');
    if (slash == NULL) {
        ctx->dir[0] = '\0';
    } else if (slash == ctx->path) {
        memcpy(ctx->dir, "/", 2);
    } else {
        size_t n = (size_t)(slash - ctx->path);
        memcpy(ctx->dir, ctx->path, n);
        ctx->dir[n] = '\0';
    }
}

int conf_load(const char *path, struct conf *out, struct ordo_errmsg *err)
{
    static const struct rte_cfgfile_parameters params = {.comment_character = CONF_COMMENT};
    struct conf_ctx ctx = {.path = path, .out = out, .err = err};
    ORDO_ASSERT(path != NULL && out != NULL && err != NULL);
    conf_defaults(out);
    if (strlen(path) >= CONF_PATH_MAX) {
        ordo_errmsg_set(err, "%.64s...: path longer than %d characters", path, CONF_PATH_MAX - 1);
        return ORDO_ECONFIG;
    }
    memcpy(out->path, path, strlen(path) + 1);
    conf_set_dir(&ctx);
    int rc = conf_lint_file(&ctx);
    if (rc != 0) {
        goto fail;
    }
    struct rte_cfgfile *cfg = rte_cfgfile_load_with_params(path, 0, &params);
    if (cfg == NULL) {
        rc = conf_fail(&ctx, NULL, "rte_cfgfile_load failed: %s", strerror(errno));
        goto fail;
    }
    rc = conf_walk(&ctx, cfg);
    rte_cfgfile_close(cfg);
    if (rc == 0) {
        rc = conf_check(&ctx);
    }
    if (rc == 0) {
        return 0;
    }
fail:
    conf_free(out);
    return rc;
}

void conf_free(struct conf *c)
{
    if (c->clients.keys != NULL) {
        explicit_bzero(c->clients.keys, c->clients.keys_n * sizeof(c->clients.keys[0]));
        mem_free(c->clients.keys);
    }
    explicit_bzero(c, sizeof(*c));
}

const struct conf_node *conf_node_find(const struct conf *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        if (c->nodes[i].id == id) {
            return &c->nodes[i];
        }
    }
    return NULL;
}

bool conf_subnet_allows(const struct conf *c, uint32_t ipv4)
{
    const struct conf_clients *k = &c->clients;
    if (k->auth == CONF_AUTH_MAC) {
        return false;
    }
    if (k->auth == CONF_AUTH_NONE && k->allow_n == 0) {
        return true;
    }
    for (uint32_t i = 0; i < k->allow_n; i++) {
        if ((ipv4 & k->allow[i].mask) == k->allow[i].addr) {
            return true;
        }
    }
    return false;
}

const uint8_t *conf_client_key(const struct conf *c, uint64_t client_id)
{
    uint32_t lo = 0;
    uint32_t hi = c->clients.keys_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t id = c->clients.keys[mid].client_id;
        if (id == client_id) {
            return c->clients.keys[mid].key;
        }
        if (id < client_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

int conf_lcores_list(const struct conf_replica *r, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0) {
        return -ENOSPC;
    }
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->lcores_n; i++) {
        int n = snprintf(buf + used, len - used, "%s%" PRIu32, i > 0 ? "," : "", r->lcores[i]);
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0';
            return -ENOSPC;
        }
        used += (size_t)n;
    }
    return (int)used;
}
