/* ordo-cli: the key-value client over ordinary kernel UDP sockets (no DPDK on the client
 * host). One-shot put/get/del/cas with timeouts, retries that reuse the request number and
 * not-leader redirects; `load` (ordo-cli-load.c) drives many requests and checks replies. */
#include "apps/ordo-cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/sm_kv.h"

static const char cli_usage[] =
    "usage: ordo-cli --server IP:PORT[,IP:PORT...] [options] COMMAND\n"
    "commands:\n"
    "  put KEY VALUE | get KEY | del KEY | cas KEY EXPECTED NEW | register\n"
    "  load --requests N --outstanding K --value-size B --keys M [--read-ratio R]\n"
    "       [--verify] [--seed S] [--duration-s D] [--progress-ms P] [--readback]\n"
    "options:\n"
    "  --server LIST    replicas to ask, first one first; an attempt without reply\n"
    "                   moves to the next (redirects name the leader)\n"
    "  --cluster-id N   cluster id in every header (default 1)\n"
    "  --client-id N    a session registered earlier (`register` prints its id);\n"
    "                   default: a write registers a new session, a get needs none\n"
    "                   (MSG_REQ_READ). With --key-file, N is the client's own id and\n"
    "                   each run registers it again. --request-no N (default:\n"
    "                   microseconds since the epoch for a fixed id; load: slot i\n"
    "                   registers id N+i with a key, numbered from --request-no or\n"
    "                   the clock)\n"
    "  --key-file F     per-client MAC key: 32 raw bytes or 64 hex digits\n"
    "  --timeout-ms T   wait per attempt (default 500); --retries R (default 4)\n"
    "  --echo           the server is a UDP echo (baseline measurements)\n"
    "  --quiet          print nothing on success\n"
    "  --no-redirect    do not follow a not-leader redirect: print\n"
    "                   'redirect leader=ID addr=IP:PORT' (or leader=none) and exit 8\n"
    "  --show-server    print 'ordo-cli: answered by IP:PORT' on stderr\n"
    "exit codes: 0 ok, 1 load had failures, 2 usage, 3 not found, 4 cas mismatch,\n"
    "  5 rejected by the replica (status printed), 6 no reply (unreachable),\n"
    "  7 local error (socket, key file, redirect loop), 8 not the leader (--no-redirect)\n";

uint64_t cli_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "IP:PORT[,IP:PORT...]" into o->servers. Returns 0 or -EINVAL. */
static int cli_parse_servers(struct cli_opts *o, const char *text)
{
    char buf[CLI_SERVERS_MAX * 24];

    if (strlen(text) >= sizeof(buf)) {
        return -EINVAL;
    }
    strcpy(buf, text);
    o->n_servers = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->n_servers == CLI_SERVERS_MAX || cli_parse_addr(t, &o->servers[o->n_servers]) != 0) {
            return -EINVAL;
        }
        o->n_servers++;
    }
    if (o->n_servers == 0) {
        return -EINVAL;
    }
    o->server = o->servers[0];
    return 0;
}

const struct sockaddr_in *cli_next_server(const struct cli_opts *o, const struct sockaddr_in *cur)
{
    for (uint32_t i = 0; i < o->n_servers; i++) {
        if (o->servers[i].sin_addr.s_addr == cur->sin_addr.s_addr &&
            o->servers[i].sin_port == cur->sin_port) {
            return &o->servers[(i + 1) % o->n_servers];
        }
    }
    return &o->servers[0];
}

int cli_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end = NULL;

    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port == 0 || port > 65535) {
        return -EINVAL;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        return -EINVAL;
    }
    return 0;
}

const char *cli_addr_str(const struct sockaddr_in *sa, char *buf, size_t cap)
{
    char ip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return buf;
}

int cli_conn_open(struct cli_conn *c, const struct sockaddr_in *server)
{
    int big = 4 << 20;

    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -errno;
    }
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    int rc = cli_conn_retarget(c, server);
    if (rc != 0) {
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

int cli_conn_retarget(struct cli_conn *c, const struct sockaddr_in *server)
{
    /* A connected socket receives only from the server and learns of ICMP errors
     * (port unreachable, host unreachable), which makes failures clear. */
    if (connect(c->fd, (const struct sockaddr *)server, sizeof(*server)) != 0) {
        return -errno;
    }
    c->server = *server;
    return 0;
}

void cli_conn_close(struct cli_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}

int cli_encode_request(const struct cli_opts *o, uint64_t client_id, uint64_t request_no,
                       uint16_t flags, uint8_t op, const uint8_t *args, uint32_t args_len,
                       uint8_t *buf, size_t cap)
{
    struct msg m;

    memset(&m, 0, sizeof(m));
    m.hdr.type = MSG_CLIENT_REQUEST;
    m.hdr.cluster_id = o->cluster_id;
    m.hdr.sender = MSG_NODE_NONE;
    m.u.request.client_id = client_id;
    m.u.request.request_no = request_no;
    m.u.request.flags = flags;
    m.u.request.op = op;
    m.u.request.args_len = args_len;
    m.u.request.args = args;
    return wire_encode(&m, o->has_key ? &o->key : NULL, buf, cap);
}

int cli_decode_reply(const struct cli_opts *o, const uint8_t *buf, size_t len, struct msg *out)
{
    int rc = wire_decode(buf, len, out, NULL, 0);

    if (rc != 0) {
        return rc;
    }
    rc = wire_check_cluster(buf, len, o->cluster_id);
    if (rc != 0) {
        return rc;
    }
    /* Replies are authenticated only when the replica MACs them; a reply that claims a MAC
     * must carry a valid one under our key. */
    if ((out->hdr.flags & MSG_HDR_MAC) != 0 && o->has_key) {
        rc = wire_verify(buf, len, &o->key);
        if (rc != 0) {
            return rc;
        }
    }
    if (o->echo) {
        return out->hdr.type == MSG_CLIENT_REQUEST ? 0 : ORDO_EBADTYPE;
    }
    if (out->hdr.type != MSG_CLIENT_REPLY && out->hdr.type != MSG_REDIRECT) {
        return ORDO_EBADTYPE;
    }
    return 0;
}

int cli_redirect_target(const struct msg_redirect *r, struct sockaddr_in *out)
{
    if (r->leader_id == MSG_NODE_NONE || r->leader_ipv4 == 0 || r->leader_port == 0) {
        return ORDO_ENOTFOUND;
    }
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = r->leader_ipv4;
    out->sin_port = htons(r->leader_port);
    return 0;
}

int cli_registered_id(const struct msg_client_reply *r, uint64_t *client_id)
{
    uint64_t id = 0;

    if (r->status != MSG_STATUS_OK || r->result_len != 8) {
        return ORDO_EMALFORMED;
    }
    for (uint32_t i = 0; i < 8; i++) {
        id |= (uint64_t)r->result[i] << (8 * i);
    }
    *client_id = id;
    return 0;
}

const char *cli_status_str(uint8_t status)
{
    static const char *const names[] = {
        "ok",   "not found", "cas mismatch", "invalid arguments", "session expired",
        "busy", "too large", "unauthorized", "no quorum",         "stopped",
    };

    return status < ORDO_ARRAY_LEN(names) ? names[status] : "unknown status";
}

/* Reads a 32-byte key: the file holds either the raw bytes or 64 hex digits. */
static int cli_key_load(const char *path, struct wire_key *key)
{
    uint8_t raw[160];
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        return -errno;
    }
    size_t n = fread(raw, 1, sizeof(raw), f);
    fclose(f);
    if (n == WIRE_KEY_LEN) {
        memcpy(key->bytes, raw, WIRE_KEY_LEN);
        return 0;
    }
    while (n > 0 && isspace(raw[n - 1])) {
        n--;
    }
    if (n != 2 * WIRE_KEY_LEN) {
        return -EINVAL;
    }
    for (size_t i = 0; i < WIRE_KEY_LEN; i++) {
        unsigned int byte;
        char pair[3] = {(char)raw[2 * i], (char)raw[2 * i + 1], '\0'};
        if (!isxdigit(raw[2 * i]) || !isxdigit(raw[2 * i + 1]) || sscanf(pair, "%2x", &byte) != 1) {
            return -EINVAL;
        }
        key->bytes[i] = (uint8_t)byte;
    }
    return 0;
}

/* One request in flight: its encoded bytes are kept so every retry resends them as they
 * are (same request number), which is what lets the replica deduplicate. */
struct cli_call {
    const struct cli_opts *o;
    struct cli_conn conn;
    uint64_t client_id;
    uint64_t request_no;
    uint8_t req[CLI_MSG_CAP];
    size_t req_len;
    uint8_t rx[CLI_MSG_CAP];
    struct msg reply;
    int sock_err;       /* last error the socket reported (ICMP unreachable, ...) */
    int leader_unknown; /* a replica answered "not leader" without naming one */
    uint32_t redirects;
};

enum cli_wait {
    CLI_WAIT_TIMEOUT = 0,
    CLI_WAIT_REPLY = 1,
    CLI_WAIT_REDIRECT = 2,
    CLI_WAIT_REDIRECT_STOP = 3, /* --no-redirect: report the redirect */
};

static int cli_call_matches(const struct cli_call *c, const struct msg *m)
{
    if (m->hdr.type == MSG_REDIRECT) {
        return m->u.redirect.client_id == c->client_id && m->u.redirect.request_no == c->request_no;
    }
    return m->u.reply.client_id == c->client_id && m->u.reply.request_no == c->request_no;
}

/* Handles one matching datagram; returns a cli_wait value, or -1 to keep waiting. */
static int cli_call_handle(struct cli_call *c)
{
    struct sockaddr_in leader;

    if (c->reply.hdr.type == MSG_REDIRECT) {
        if (c->o->no_redirect) {
            return CLI_WAIT_REDIRECT_STOP;
        }
        if (cli_redirect_target(&c->reply.u.redirect, &leader) != 0) {
            c->leader_unknown = 1;
            return -1;
        }
        if (++c->redirects > CLI_REDIRECTS_MAX) {
            return -1;
        }
        int rc = cli_conn_retarget(&c->conn, &leader);
        return rc == 0 ? CLI_WAIT_REDIRECT : -1;
    }
    /* Backpressure: wait out this attempt, then retry with the same request number. */
    if (!c->o->echo && c->reply.u.reply.status == MSG_STATUS_BUSY) {
        return -1;
    }
    return CLI_WAIT_REPLY;
}

static int cli_call_wait(struct cli_call *c, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = cli_now_ns();
        if (now >= deadline_ns) {
            return CLI_WAIT_TIMEOUT;
        }
        struct pollfd pfd = {.fd = c->conn.fd, .events = POLLIN};
        int timeout_ms = (int)((deadline_ns - now + 999999) / 1000000);
        if (poll(&pfd, 1, timeout_ms) <= 0) {
            continue;
        }
        ssize_t n = recv(c->conn.fd, c->rx, sizeof(c->rx), 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                c->sock_err = errno;
            }
            continue;
        }
        if (cli_decode_reply(c->o, c->rx, (size_t)n, &c->reply) != 0 ||
            !cli_call_matches(c, &c->reply)) {
            continue;
        }
        int w = cli_call_handle(c);
        if (w >= 0) {
            return w;
        }
    }
}

static void cli_call_explain(const struct cli_call *c, uint32_t attempts)
{
    char addr[64];

    cli_addr_str(&c->conn.server, addr, sizeof(addr));
    fprintf(stderr, "ordo-cli: no reply from %s after %u attempt(s), %u ms each", addr, attempts,
            c->o->timeout_ms);
    if (c->sock_err == ECONNREFUSED) {
        fprintf(stderr, ": port closed (ICMP port unreachable): is the replica running?\n");
    } else if (c->sock_err != 0) {
        fprintf(stderr, ": %s\n", strerror(c->sock_err));
    } else if (c->leader_unknown) {
        fprintf(stderr, ": the replica does not lead and knows no leader (election?)\n");
    } else if (c->redirects > CLI_REDIRECTS_MAX) {
        fprintf(stderr, ": more than %d redirects\n", CLI_REDIRECTS_MAX);
    } else {
        fprintf(stderr, ": replica down or unreachable (check address, port, cluster id "
                        "and whether this client's subnet or key is allowed)\n");
    }
}

/* Sends the request until a reply arrives or the retries run out. Returns a cli_exit. */
static int cli_call_run(struct cli_call *c)
{
    uint32_t attempts = 0;

    while (attempts <= c->o->retries) {
        /* A pending ICMP error from the previous attempt fails this send without sending
         * anything: note it and send once more. */
        for (int i = 0; i < 2; i++) {
            if (send(c->conn.fd, c->req, c->req_len, 0) >= 0 || errno == EAGAIN) {
                break;
            }
            c->sock_err = errno;
        }
        attempts++;
        uint64_t deadline = cli_now_ns() + (uint64_t)c->o->timeout_ms * 1000000ull;
        int w = cli_call_wait(c, deadline);
        if (w == CLI_WAIT_REPLY) {
            return CLI_EXIT_OK;
        }
        if (w == CLI_WAIT_REDIRECT_STOP) {
            return CLI_EXIT_REDIRECT;
        }
        if (w == CLI_WAIT_REDIRECT) {
            attempts--; /* following the leader is not a failed attempt */
        } else if (c->o->n_servers > 1 && !c->o->no_redirect) {
            /* No reply: that replica may be down; ask the next one (it redirects). */
            (void)cli_conn_retarget(&c->conn, cli_next_server(c->o, &c->conn.server));
        }
    }
    cli_call_explain(c, attempts);
    return c->redirects > CLI_REDIRECTS_MAX ? CLI_EXIT_LOCAL : CLI_EXIT_NO_REPLY;
}

uint64_t cli_now_realtime_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cli_random_u64(void)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = cli_now_ns() ^ ((uint64_t)getpid() << 32);
    }
    return v;
}

/* Encodes the args of a one-shot command. Returns args length, or < 0 after a message. */
static int cli_command_args(int argc, char **argv, uint8_t *op, uint8_t *buf, size_t cap)
{
    const char *cmd = argv[0];
    int rc = -EINVAL;

    if (strcmp(cmd, "put") == 0 && argc == 3) {
        *op = SM_KV_OP_PUT;
        rc = sm_kv_encode_put(buf, cap, argv[1], strlen(argv[1]), argv[2], strlen(argv[2]));
    } else if (strcmp(cmd, "get") == 0 && argc == 2) {
        *op = SM_KV_OP_GET;
        rc = sm_kv_encode_get(buf, cap, argv[1], strlen(argv[1]));
    } else if (strcmp(cmd, "del") == 0 && argc == 2) {
        *op = SM_KV_OP_DELETE;
        rc = sm_kv_encode_del(buf, cap, argv[1], strlen(argv[1]));
    } else if (strcmp(cmd, "cas") == 0 && argc == 4) {
        *op = SM_KV_OP_CAS;
        rc = sm_kv_encode_cas(buf, cap, argv[1], strlen(argv[1]), argv[2], strlen(argv[2]), argv[3],
                              strlen(argv[3]));
    } else {
        fprintf(stderr, "ordo-cli: unknown command or wrong argument count: %s\n%s", cmd,
                cli_usage);
        return -EINVAL;
    }
    if (rc < 0) {
        fprintf(stderr, "ordo-cli: key (1..%u bytes) or value (<= %u bytes) out of bounds\n",
                SM_KV_KEY_MAX, SM_KV_VALUE_MAX);
    }
    return rc;
}

/* Prints the outcome of a reply and maps its status to an exit code. */
static int cli_command_report(const struct cli_opts *o, const char *cmd,
                              const struct msg_client_reply *r)
{
    switch (r->status) {
    case MSG_STATUS_OK:
        if (strcmp(cmd, "get") == 0) {
            fwrite(r->result, 1, r->result_len, stdout);
            fputc('\n', stdout);
        } else if (!o->quiet) {
            printf("OK\n");
        }
        return CLI_EXIT_OK;
    case MSG_STATUS_NOT_FOUND:
        fprintf(stderr, "ordo-cli: key not found\n");
        return CLI_EXIT_NOT_FOUND;
    case MSG_STATUS_CAS_MISMATCH:
        fprintf(stderr, "ordo-cli: cas mismatch; current value follows on stdout\n");
        fwrite(r->result, 1, r->result_len, stdout);
        fputc('\n', stdout);
        return CLI_EXIT_MISMATCH;
    case MSG_STATUS_SESSION_EXPIRED:
        /* Exactly-once is lost for this request: it was not applied by the attempt that got
         * this answer, but an earlier one may have been (before the session went). */
        fprintf(stderr,
                "ordo-cli: session expired: the replica has no session for client "
                "%llu (never registered, expired or evicted); the outcome of this %s is "
                "unknown; register again (ordo-cli register)\n",
                (unsigned long long)r->client_id, cmd);
        return CLI_EXIT_REJECTED;
    default:
        fprintf(stderr, "ordo-cli: the replica rejected the request: %s (status %u)\n",
                cli_status_str(r->status), (unsigned)r->status);
        return CLI_EXIT_REJECTED;
    }
}

/* --no-redirect: names the leader the replica pointed to (or none), for scripts. */
static int cli_redirect_report(const struct msg_redirect *r)
{
    struct sockaddr_in leader;
    char addr[64];

    if (cli_redirect_target(r, &leader) != 0) {
        printf("redirect leader=none\n");
    } else {
        printf("redirect leader=%u addr=%s\n", (unsigned)r->leader_id,
               cli_addr_str(&leader, addr, sizeof(addr)));
    }
    return CLI_EXIT_REDIRECT;
}

/* Encodes the request of c with request number request_no into c->req. */
static int cli_call_encode(struct cli_call *c, uint64_t request_no, uint16_t flags, uint8_t op,
                           const uint8_t *args, uint32_t args_len)
{
    c->request_no = request_no;
    int len = cli_encode_request(c->o, c->client_id, request_no, flags, op, args, args_len, c->req,
                                 sizeof(c->req));
    if (len < 0) {
        fprintf(stderr, "ordo-cli: cannot encode the request: %s\n", ordo_strerror(len));
        return CLI_EXIT_LOCAL;
    }
    c->req_len = (size_t)len;
    return CLI_EXIT_OK;
}

/* Opens a session (dissertation 6.3) and leaves its id in c->client_id. Without a key the
 * request's client id and number are a random nonce and the replica assigns the id; with a
 * key the id is the client's own (its MAC identity) and request_no is a floor above every
 * number it used before. Returns a cli_exit code (after a message unless CLI_EXIT_OK or
 * CLI_EXIT_REDIRECT, which the caller reports). */
static int cli_register(struct cli_call *c, uint64_t request_no)
{
    const struct cli_opts *o = c->o;

    c->client_id = o->has_key ? o->client_id : cli_random_u64() | 1u;
    int rc = cli_call_encode(c, request_no, MSG_REQ_REGISTER, MSG_OP_NOOP, NULL, 0);
    if (rc == CLI_EXIT_OK) {
        rc = cli_call_run(c);
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (cli_registered_id(&c->reply.u.reply, &c->client_id) != 0) {
        fprintf(stderr, "ordo-cli: registration refused: %s (status %u)\n",
                cli_status_str(c->reply.u.reply.status), (unsigned)c->reply.u.reply.status);
        return CLI_EXIT_REJECTED;
    }
    return CLI_EXIT_OK;
}

/* The request number of a fixed client id: a time-based one outlives this process, so
 * later runs stay above the numbers earlier ones used. */
static uint64_t cli_fixed_request_no(const struct cli_opts *o)
{
    return o->request_no != 0 ? o->request_no : cli_now_realtime_us();
}

/* Sends the command. A get needs no session: MSG_REQ_READ (linearizable, ReadIndex), under
 * --client-id if given (a key's identity) or a random id. A write without --client-id first
 * registers a session; --client-id names a session registered earlier (`ordo-cli
 * register`), or with --key-file the client's own id, which registers at the floor (its
 * request number) and sends the write as the next number. */
static int cli_command_send(struct cli_call *c, uint8_t op, const uint8_t *args, uint32_t len)
{
    const struct cli_opts *o = c->o;
    uint64_t no = 1;
    uint16_t flags = 0;
    int rc = CLI_EXIT_OK;

    if (o->echo || op == SM_KV_OP_GET) {
        c->client_id = o->client_id_set ? o->client_id : cli_random_u64() | 1u;
        no = o->client_id_set ? cli_fixed_request_no(o) : 1;
        flags = o->echo ? 0 : MSG_REQ_READ;
    } else if (o->client_id_set && !o->has_key) {
        c->client_id = o->client_id;
        no = cli_fixed_request_no(o);
    } else {
        uint64_t floor = o->has_key ? cli_fixed_request_no(o) : 1;
        rc = cli_register(c, floor);
        no = o->has_key ? floor + 1 : 1;
    }
    if (rc == CLI_EXIT_OK) {
        rc = cli_call_encode(c, no, flags, op, args, len);
    }
    if (rc == CLI_EXIT_OK) {
        rc = cli_call_run(c);
    }
    return rc;
}

static int cli_command(const struct cli_opts *o, int argc, char **argv)
{
    static uint8_t args[SM_KV_ARGS_MAX];
    static struct cli_call c;
    uint8_t op = MSG_OP_NOOP;
    int args_len = 0;

    int reg = strcmp(argv[0], "register") == 0 && argc == 1;
    if (!reg) {
        args_len = cli_command_args(argc, argv, &op, args, sizeof(args));
    }
    if (args_len < 0) {
        return args_len == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_LOCAL;
    }
    c.o = o;
    int rc = cli_conn_open(&c.conn, &o->server);
    if (rc != 0) {
        fprintf(stderr, "ordo-cli: cannot open a UDP socket to the server: %s\n", strerror(-rc));
        return rc == -ENETUNREACH ? CLI_EXIT_NO_REPLY : CLI_EXIT_LOCAL;
    }
    rc = reg ? cli_register(&c, o->has_key ? cli_fixed_request_no(o) : 1)
             : cli_command_send(&c, op, args, (uint32_t)args_len);
    if (rc == CLI_EXIT_REDIRECT) {
        rc = cli_redirect_report(&c.reply.u.redirect);
    } else if (rc == CLI_EXIT_OK) {
        if (o->show_server) {
            char addr[64];
            fprintf(stderr, "ordo-cli: answered by %s\n",
                    cli_addr_str(&c.conn.server, addr, sizeof(addr)));
        }
        rc = reg       ? CLI_EXIT_OK
             : o->echo ? CLI_EXIT_OK
                       : cli_command_report(o, argv[0], &c.reply.u.reply);
    }
    if (reg && rc == CLI_EXIT_OK) {
        printf("%llu\n", (unsigned long long)c.client_id);
    }
    cli_conn_close(&c.conn);
    return rc;
}

static int cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;

    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

enum cli_opt_id {
    CLI_OPT_SERVER = 256,
    CLI_OPT_CLUSTER,
    CLI_OPT_CLIENT,
    CLI_OPT_REQNO,
    CLI_OPT_KEYFILE,
    CLI_OPT_TIMEOUT,
    CLI_OPT_RETRIES,
    CLI_OPT_ECHO,
    CLI_OPT_QUIET,
    CLI_OPT_NO_REDIRECT,
    CLI_OPT_SHOW_SERVER,
    CLI_OPT_HELP,
};

static const struct option cli_long_opts[] = {
    {"server", required_argument, NULL, CLI_OPT_SERVER},
    {"cluster-id", required_argument, NULL, CLI_OPT_CLUSTER},
    {"client-id", required_argument, NULL, CLI_OPT_CLIENT},
    {"request-no", required_argument, NULL, CLI_OPT_REQNO},
    {"key-file", required_argument, NULL, CLI_OPT_KEYFILE},
    {"timeout-ms", required_argument, NULL, CLI_OPT_TIMEOUT},
    {"retries", required_argument, NULL, CLI_OPT_RETRIES},
    {"echo", no_argument, NULL, CLI_OPT_ECHO},
    {"quiet", no_argument, NULL, CLI_OPT_QUIET},
    {"no-redirect", no_argument, NULL, CLI_OPT_NO_REDIRECT},
    {"show-server", no_argument, NULL, CLI_OPT_SHOW_SERVER},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option; returns 0 or -EINVAL after a message naming the option. */
static int cli_parse_one(struct cli_opts *o, int id, const char *arg, int *have_server)
{
    uint64_t v = 0;
    int rc = 0;

    switch (id) {
    case CLI_OPT_SERVER:
        rc = cli_parse_servers(o, arg);
        *have_server = rc == 0;
        break;
    case CLI_OPT_CLUSTER:
        rc = cli_parse_u64(arg, 0, UINT32_MAX, &v);
        o->cluster_id = (uint32_t)v;
        break;
    case CLI_OPT_CLIENT:
        rc = cli_parse_u64(arg, 1, UINT64_MAX, &o->client_id);
        o->client_id_set = 1;
        break;
    case CLI_OPT_REQNO:
        rc = cli_parse_u64(arg, 1, UINT64_MAX, &o->request_no);
        break;
    case CLI_OPT_KEYFILE:
        rc = cli_key_load(arg, &o->key);
        o->has_key = rc == 0;
        if (rc != 0) {
            fprintf(stderr,
                    "ordo-cli: key file %s: %s (expected 32 raw bytes or 64 hex "
                    "digits)\n",
                    arg, rc == -EINVAL ? "bad format" : strerror(-rc));
            return -EINVAL;
        }
        break;
    case CLI_OPT_TIMEOUT:
        rc = cli_parse_u64(arg, 1, 600000, &v);
        o->timeout_ms = (uint32_t)v;
        break;
    case CLI_OPT_RETRIES:
        rc = cli_parse_u64(arg, 0, 1000, &v);
        o->retries = (uint32_t)v;
        break;
    default:
        rc = -EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "ordo-cli: bad value for option: %s\n", arg);
    }
    return rc;
}

static int cli_parse_opts(struct cli_opts *o, int argc, char **argv)
{
    int have_server = 0;
    int id;

    memset(o, 0, sizeof(*o));
    o->cluster_id = 1;
    o->timeout_ms = 500;
    o->retries = 4;
    /* '+': stop at the command, so `load` parses its own options. */
    while ((id = getopt_long(argc, argv, "+", cli_long_opts, NULL)) != -1) {
        if (id == CLI_OPT_HELP) {
            fputs(cli_usage, stdout);
            exit(CLI_EXIT_OK);
        } else if (id == CLI_OPT_ECHO) {
            o->echo = 1;
        } else if (id == CLI_OPT_QUIET) {
            o->quiet = 1;
        } else if (id == CLI_OPT_NO_REDIRECT) {
            o->no_redirect = 1;
        } else if (id == CLI_OPT_SHOW_SERVER) {
            o->show_server = 1;
        } else if (id == '?' || cli_parse_one(o, id, optarg, &have_server) != 0) {
            return -EINVAL;
        }
    }
    if (!have_server || optind >= argc) {
        fputs(have_server ? "ordo-cli: missing command\n" : "ordo-cli: missing --server\n", stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_opts o;

    if (cli_parse_opts(&o, argc, argv) != 0) {
        fputs(cli_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (wire_init() != 0) {
        fprintf(stderr, "ordo-cli: libsodium initialisation failed\n");
        return CLI_EXIT_LOCAL;
    }
    if (strcmp(argv[optind], "load") == 0) {
        return cli_load_main(&o, argc - optind, argv + optind);
    }
    return cli_command(&o, argc - optind, argv + optind);
}
