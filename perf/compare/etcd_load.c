/* etcd_load: closed-loop PUT load on etcd 3.4 through its gRPC-gateway JSON API
 * (POST /v3/kv/put, base64 key and value) over HTTP/1.1 keep-alive: N connections, one
 * request in flight on each, epoll; prints throughput and p50/p99/p99.9 (perf/compare). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETCD_LOAD_CONNS_MAX 4096u
#define ETCD_LOAD_REQ_MAX 1024u
#define ETCD_LOAD_RESP_MAX 16384u
#define ETCD_LOAD_SUB_BITS 5u /* 32 linear buckets per power of two: <= 3.2 % error */
#define ETCD_LOAD_SUB (1u << ETCD_LOAD_SUB_BITS)
#define ETCD_LOAD_BUCKETS (64u * ETCD_LOAD_SUB)

struct etcd_load_opts {
    struct sockaddr_in addr;
    const char *host;
    uint32_t conns;
    double duration_s;
    double warmup_s;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t keys;
    const char *json_path;
};

struct etcd_load_conn {
    int fd;
    uint64_t sent_ns;
    size_t req_len;
    size_t req_off;
    size_t resp_len;
    char req[ETCD_LOAD_REQ_MAX];
    char resp[ETCD_LOAD_RESP_MAX];
};

struct etcd_load_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t b[ETCD_LOAD_BUCKETS];
};

struct etcd_load {
    struct etcd_load_opts o;
    struct etcd_load_conn *c;
    struct etcd_load_hist h;
    int ep;
    uint64_t rng;
    uint64_t ok;
    uint64_t errors;
    uint64_t issued;
    uint64_t t_measure; /* requests completing after this time count */
    uint64_t t_end;
};

static uint64_t etcd_load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- log-linear histogram: bucket = (exponent, top ETCD_LOAD_SUB_BITS mantissa bits) ---- */

static uint32_t etcd_load_bucket(uint64_t v)
{
    if (v < ETCD_LOAD_SUB) {
        return (uint32_t)v;
    }
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* e >= ETCD_LOAD_SUB_BITS */
    uint32_t sub = (uint32_t)(v >> (e - ETCD_LOAD_SUB_BITS)) & (ETCD_LOAD_SUB - 1u);
    return (e - ETCD_LOAD_SUB_BITS + 1u) * ETCD_LOAD_SUB + sub;
}

/* The upper bound of bucket i (the value reported for a quantile falling in it). */
static uint64_t etcd_load_bucket_hi(uint32_t i)
{
    if (i < ETCD_LOAD_SUB) {
        return i;
    }
    uint32_t e = i / ETCD_LOAD_SUB + ETCD_LOAD_SUB_BITS - 1u;
    uint64_t sub = i % ETCD_LOAD_SUB;
    uint64_t lo = (1ull << e) | (sub << (e - ETCD_LOAD_SUB_BITS));
    return lo + (1ull << (e - ETCD_LOAD_SUB_BITS)) - 1u;
}

static void etcd_load_record(struct etcd_load_hist *h, uint64_t ns)
{
    h->b[etcd_load_bucket(ns)]++;
    h->count++;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

static double etcd_load_quantile_us(const struct etcd_load_hist *h, double q)
{
    if (h->count == 0) {
        return 0.0;
    }
    uint64_t want = (uint64_t)(q * (double)h->count);
    uint64_t seen = 0;
    for (uint32_t i = 0; i < ETCD_LOAD_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want) {
            uint64_t v = etcd_load_bucket_hi(i);
            return (double)(v < h->max_ns ? v : h->max_ns) / 1e3;
        }
    }
    return (double)h->max_ns / 1e3;
}

/* ---- requests ---- */

static size_t etcd_load_b64(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0u;
        v |= i + 2 < n ? in[i + 2] : 0u;
        out[o++] = t[(v >> 18) & 63u];
        out[o++] = t[(v >> 12) & 63u];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63u] : '=';
        out[o++] = i + 2 < n ? t[v & 63u] : '=';
    }
    out[o] = '\0';
    return o;
}

static uint64_t etcd_load_rand(struct etcd_load *l)
{
    /* xorshift64*: only the key choice and value bytes need it. */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 0x2545f4914f6cdd1dull;
}

/* Builds connection c's next PUT: a key of key_size bytes ("k" and a zero-padded number,
 * the same keys as ordo-load --key-size) and value_size bytes of value. */
static void etcd_load_prepare(struct etcd_load *l, struct etcd_load_conn *c)
{
    char key[64];
    uint8_t val[512];
    char kb[96];
    char vb[700];
    uint64_t k = etcd_load_rand(l) % l->o.keys;
    int kl = snprintf(key, sizeof(key), "k%0*" PRIu64, (int)l->o.key_size - 1, k);
    for (uint32_t i = 0; i < l->o.value_size; i++) {
        val[i] = (uint8_t)('a' + (etcd_load_rand(l) % 26u));
    }
    etcd_load_b64((const uint8_t *)key, (size_t)kl, kb);
    etcd_load_b64(val, l->o.value_size, vb);
    char body[800];
    int bl = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", kb, vb);
    int n = snprintf(c->req, sizeof(c->req),
                     "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     l->o.host, bl, body);
    c->req_len = (size_t)n;
    c->req_off = 0;
    c->resp_len = 0;
}

static int etcd_load_send(struct etcd_load *l, struct etcd_load_conn *c)
{
    while (c->req_off < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
        if (n < 0) {
            return errno == EAGAIN ? 0 : -errno;
        }
        c->req_off += (size_t)n;
    }
    (void)l;
    return 0;
}

static int etcd_load_start(struct etcd_load *l, struct etcd_load_conn *c)
{
    etcd_load_prepare(l, c);
    c->sent_ns = etcd_load_now();
    l->issued++;
    return etcd_load_send(l, c);
}

/* ---- responses ---- */

/* Length of a complete HTTP response at the start of buf (n bytes): > 0 complete, 0 need
 * more, < 0 malformed. Sets *status. Handles Content-Length and chunked bodies. */
static long etcd_load_resp_len(const char *buf, size_t n, int *status)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (end == NULL) {
        return n >= ETCD_LOAD_RESP_MAX ? -1 : 0;
    }
    size_t hdr = (size_t)(end - buf) + 4;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        return -1;
    }
    const char *cl = memmem(buf, hdr, "\r\nContent-Length:", 17);
    if (cl == NULL) {
        cl = memmem(buf, hdr, "\r\ncontent-length:", 17);
    }
    if (cl != NULL) {
        long len = strtol(cl + 17, NULL, 10);
        if (len < 0) {
            return -1;
        }
        return hdr + (size_t)len <= n ? (long)(hdr + (size_t)len) : 0;
    }
    /* chunked: walk the chunks up to the zero-size one and its final CRLF */
    size_t p = hdr;
    for (;;) {
        const char *eol = memmem(buf + p, n - p, "\r\n", 2);
        if (eol == NULL) {
            return 0;
        }
        unsigned long sz = strtoul(buf + p, NULL, 16);
        p = (size_t)(eol - buf) + 2;
        if (sz == 0) {
            return p + 2 <= n ? (long)(p + 2) : 0;
        }
        p += sz + 2;
        if (p > n) {
            return 0;
        }
    }
}

/* Reads what arrived on c; when a whole response is there, records it and starts the next
 * request (unless the run is over). Returns 0, or < 0 if the connection failed. */
static int etcd_load_readable(struct etcd_load *l, struct etcd_load_conn *c, uint64_t now)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->resp + c->resp_len, sizeof(c->resp) - c->resp_len, 0);
        if (n == 0) {
            return -ECONNRESET;
        }
        if (n < 0) {
            if (errno == EAGAIN) {
                return 0;
            }
            return -errno;
        }
        c->resp_len += (size_t)n;
        int status = 0;
        long len = etcd_load_resp_len(c->resp, c->resp_len, &status);
        if (len < 0) {
            return -EPROTO;
        }
        if (len == 0) {
            continue;
        }
        if (c->sent_ns >= l->t_measure) {
            if (status == 200) {
                l->ok++;
                etcd_load_record(&l->h, now - c->sent_ns);
            } else {
                l->errors++;
            }
        }
        if (now >= l->t_end) {
            c->req_len = 0; /* done: no next request */
            return 0;
        }
        return etcd_load_start(l, c);
    }
}

/* ---- set-up, loop, summary ---- */

static int etcd_load_connect(struct etcd_load *l, struct etcd_load_conn *c, uint32_t i)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -errno;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&l->o.addr, sizeof(l->o.addr)) < 0 &&
        errno != EINPROGRESS) {
        return -errno;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = i};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        return -errno;
    }
    return etcd_load_start(l, c);
}

static int etcd_load_run(struct etcd_load *l)
{
    struct epoll_event evs[256];
    uint64_t t0 = etcd_load_now();
    l->t_measure = t0 + (uint64_t)(l->o.warmup_s * 1e9);
    l->t_end = l->t_measure + (uint64_t)(l->o.duration_s * 1e9);
    for (uint32_t i = 0; i < l->o.conns; i++) {
        int rc = etcd_load_connect(l, &l->c[i], i);
        if (rc < 0) {
            fprintf(stderr, "etcd_load: connection %u: %s\n", i, strerror(-rc));
            return rc;
        }
    }
    uint64_t deadline = l->t_end + 10ull * 1000000000ull; /* stragglers: 10 s at most */
    uint32_t open = l->o.conns;
    while (open > 0 && etcd_load_now() < deadline) {
        int n = epoll_wait(l->ep, evs, 256, 100);
        uint64_t now = etcd_load_now();
        for (int k = 0; k < n; k++) {
            struct etcd_load_conn *c = &l->c[evs[k].data.u32];
            if (c->fd < 0) {
                continue;
            }
            int rc = 0;
            if (evs[k].events & EPOLLOUT) {
                rc = etcd_load_send(l, c);
            }
            if (rc == 0 && (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                rc = etcd_load_readable(l, c, now);
            }
            if (rc < 0 || c->req_len == 0) {
                if (rc < 0) {
                    fprintf(stderr, "etcd_load: connection failed: %s\n", strerror(-rc));
                    l->errors++;
                }
                close(c->fd);
                c->fd = -1;
                open--;
            }
        }
    }
    return 0;
}

static void etcd_load_summary(const struct etcd_load *l)
{
    double secs = l->o.duration_s;
    double q[4] = {etcd_load_quantile_us(&l->h, 0.50), etcd_load_quantile_us(&l->h, 0.99),
                   etcd_load_quantile_us(&l->h, 0.999), (double)l->h.max_ns / 1e3};
    double tput = (double)l->ok / secs;
    printf("etcd_load: summary conns=%u duration_s=%.1f requests=%" PRIu64 " ok=%" PRIu64
           " errors=%" PRIu64 " throughput=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f"
           " max_us=%.1f\n",
           l->o.conns, secs, l->issued, l->ok, l->errors, tput, q[0], q[1], q[2], q[3]);
    if (l->o.json_path == NULL) {
        return;
    }
    FILE *f = fopen(l->o.json_path, "w");
    if (f == NULL) {
        fprintf(stderr, "etcd_load: cannot write %s: %s\n", l->o.json_path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"conns\":%u,\"duration_s\":%.1f,\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"throughput\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f"
            ",\"max_us\":%.1f}\n",
            l->o.conns, secs, l->ok, l->errors, tput, q[0], q[1], q[2], q[3]);
    fclose(f);
}

static void etcd_load_usage(FILE *f)
{
    fprintf(f, "usage: etcd_load --endpoint IP:PORT [options]\n"
               "  --conns N         connections, one PUT in flight each (default 16)\n"
               "  --duration S      measured seconds (default 10), after --warmup S (1)\n"
               "  --key-size N      key bytes, 9..40 (16); --keys N key space (10000)\n"
               "  --value-size N    value bytes, 1..512 (64)\n"
               "  --json FILE       the summary as JSON\n"
               "exit: 0 every measured request answered 200, 1 errors, 2 usage\n");
}

/* Parses a number in lo..hi for option name; returns 0 or -EINVAL (printed). */
static int etcd_load_num(const char *name, const char *arg, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod(arg, &end);
    if (end == arg || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "etcd_load: --%s %s: want a number in %g..%g\n", name, arg, lo, hi);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int etcd_load_endpoint(struct etcd_load_opts *o, char *arg)
{
    char *colon = strrchr(arg, ':');
    if (colon == NULL) {
        return -EINVAL;
    }
    *colon = '\0';
    long port = strtol(colon + 1, NULL, 10);
    o->addr.sin_family = AF_INET;
    o->addr.sin_port = htons((uint16_t)port);
    o->host = arg;
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, arg, &o->addr.sin_addr) != 1) {
        return -EINVAL;
    }
    return 0;
}

static int etcd_load_parse(struct etcd_load_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"endpoint", required_argument, NULL, 'e'},
                                       {"conns", required_argument, NULL, 'c'},
                                       {"duration", required_argument, NULL, 'd'},
                                       {"warmup", required_argument, NULL, 'w'},
                                       {"key-size", required_argument, NULL, 'k'},
                                       {"keys", required_argument, NULL, 'n'},
                                       {"value-size", required_argument, NULL, 'v'},
                                       {"json", required_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    *o = (struct etcd_load_opts){.conns = 16,
                                 .duration_s = 10,
                                 .warmup_s = 1,
                                 .key_size = 16,
                                 .value_size = 64,
                                 .keys = 10000};
    bool have_ep = false;
    int ch;
    double v = 0;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case 'e':
            rc = etcd_load_endpoint(o, optarg);
            have_ep = rc == 0;
            if (rc != 0) {
                fprintf(stderr, "etcd_load: --endpoint: want IPv4:PORT\n");
            }
            break;
        case 'c':
            rc = etcd_load_num("conns", optarg, 1, ETCD_LOAD_CONNS_MAX, &v);
            o->conns = (uint32_t)v;
            break;
        case 'd':
            rc = etcd_load_num("duration", optarg, 0.1, 3600, &o->duration_s);
            break;
        case 'w':
            rc = etcd_load_num("warmup", optarg, 0, 600, &o->warmup_s);
            break;
        case 'k':
            rc = etcd_load_num("key-size", optarg, 9, 40, &v);
            o->key_size = (uint32_t)v;
            break;
        case 'n':
            rc = etcd_load_num("keys", optarg, 1, 1e9, &v);
            o->keys = (uint32_t)v;
            break;
        case 'v':
            rc = etcd_load_num("value-size", optarg, 1, 512, &v);
            o->value_size = (uint32_t)v;
            break;
        case 'j':
            o->json_path = optarg;
            break;
        case 'h':
            etcd_load_usage(stdout);
            exit(0);
        default:
            rc = -EINVAL;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return have_ep && optind == argc ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    static struct etcd_load l;
    if (etcd_load_parse(&l.o, argc, argv) != 0) {
        etcd_load_usage(stderr);
        return 2;
    }
    l.rng = 0x9e3779b97f4a7c15ull;
    l.c = calloc(l.o.conns, sizeof(*l.c));
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    if (l.c == NULL || l.ep < 0) {
        fprintf(stderr, "etcd_load: out of memory or epoll: %s\n", strerror(errno));
        return 1;
    }
    for (uint32_t i = 0; i < l.o.conns; i++) {
        l.c[i].fd = -1;
    }
    int rc = etcd_load_run(&l);
    etcd_load_summary(&l);
    for (uint32_t i = 0; i < l.o.conns; i++) {
        if (l.c[i].fd >= 0) {
            close(l.c[i].fd);
        }
    }
    close(l.ep);
    free(l.c);
    return rc == 0 && l.errors == 0 && l.ok > 0 ? 0 : 1;
}
