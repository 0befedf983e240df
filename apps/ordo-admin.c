/* ordo-admin: reads a replica's state through its DPDK telemetry socket and prints it
 * (status, raw counters, Raft state, any command's JSON), and sets the net fault injector. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "apps/admin_fmt.h"
#include "apps/admin_json.h"
#include "engine/err.h"

#define ADMIN_REPLY_MAX (1u << 20)
#define ADMIN_NODES_MAX 4096u
#define ADMIN_WAIT_MS 5000u          /* transfer and snapshot: how long to wait for the outcome */
#define ADMIN_PROMOTE_WAIT_MS 30000u /* add: how long to wait for the learner's promotion */

/* One parsed reply: its text (owned) and nodes. */
struct admin_reply {
    char *text;
    struct admin_json j;
    struct admin_json_node nodes[ADMIN_NODES_MAX];
};

static void admin_usage(FILE *f)
{
    fprintf(f, "usage: ordo-admin [--file-prefix P | --socket PATH] [--timeout-ms N] COMMAND\n"
               "  status [--json]   role, term, leader, commit/applied, follower match and lag,\n"
               "                    batches, queue depths, counters, background snapshots;\n"
               "                    --json: {\"raft\": ..., \"stats\": ..., \"snap\": ...}\n"
               "  snap              every /ordo/snap field (background snapshots) as key=value\n"
               "  stats             every /ordo/stats counter as key=value\n"
               "  raft              every /ordo/raft field as key=value\n"
               "  json CMD          the raw JSON reply of telemetry command CMD (e.g. /ordo/port)\n"
               "  net-fault [SPEC]  show the net fault injector, or set SPEC ('off' disables)\n"
               "  transfer N        leader only: hand leadership to node N (0: best voter), wait\n"
               "  snapshot          take a snapshot at the applied index now, wait for it\n"
               "  add N             leader only: add node N (a [node.N] of the cluster file) as a\n"
               "                    learner; wait until it is promoted to voter once caught up\n"
               "  remove N          leader only: remove node N (the leader itself too), wait\n"
               "                    until the change is committed\n"
               "The socket is /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2 (default prefix rte).\n"
               "Exit: 0 ok, 1 error (replica unreachable, bad reply), 2 usage.\n");
}

/* Connects and reads the greeting. Returns the socket or a negative errno. */
static int admin_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char greet[4096];
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        recv(fd, greet, sizeof(greet), 0) <= 0) {
        int rc = errno != 0 ? -errno : -EPROTO;
        close(fd);
        return rc;
    }
    return fd;
}

/* Sends cmd and parses the one reply into r. Returns 0 or a negative errno. */
static int admin_query(int fd, const char *cmd, struct admin_reply *r)
{
    if (send(fd, cmd, strlen(cmd), 0) < 0) {
        return -errno;
    }
    ssize_t n = recv(fd, r->text, ADMIN_REPLY_MAX - 1, 0);
    if (n <= 0) {
        return n < 0 ? -errno : -EPROTO;
    }
    r->text[n] = '\0';
    return admin_json_parse(&r->j, r->text, (size_t)n, r->nodes, ADMIN_NODES_MAX);
}

static struct admin_reply *admin_reply_new(void)
{
    struct admin_reply *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->text = malloc(ADMIN_REPLY_MAX);
        if (r->text == NULL) {
            free(r);
            r = NULL;
        }
    }
    return r;
}

static void admin_reply_free(struct admin_reply *r)
{
    if (r != NULL) {
        free(r->text);
        free(r);
    }
}

/* status [--json]: /ordo/raft, /ordo/stats and /ordo/snap (a replica without replication
 * has no /ordo/snap: its reply body is null and nothing is printed for it). */
static int admin_status(int fd, int json, struct admin_reply *a, struct admin_reply *b)
{
    struct admin_reply *c = admin_reply_new();
    int rc = c != NULL ? admin_query(fd, "/ordo/raft", a) : -ENOMEM;
    if (rc == 0) {
        rc = admin_query(fd, "/ordo/stats", b);
    }
    if (rc == 0) {
        rc = admin_query(fd, "/ordo/snap", c);
    }
    if (rc == 0 && json) {
        rc = admin_fmt_status_json(stdout, &a->j, admin_fmt_body(&a->j), &b->j,
                                   admin_fmt_body(&b->j), &c->j, admin_fmt_body(&c->j));
    } else if (rc == 0) {
        rc = admin_fmt_status(stdout, &a->j, admin_fmt_body(&a->j), &b->j, admin_fmt_body(&b->j));
        if (rc == 0) {
            admin_fmt_snap(stdout, &c->j, admin_fmt_body(&c->j));
        }
    }
    admin_reply_free(c);
    return rc;
}

/* Sends cmd; fails when the server does not know it or answers with an "error" member. */
static int admin_flat_quiet(int fd, const char *cmd, struct admin_reply *a)
{
    int rc = admin_query(fd, cmd, a);
    if (rc != 0) {
        return rc;
    }
    int32_t body = admin_fmt_body(&a->j);
    char err[256];
    if (body < 0) {
        fprintf(stderr, "ordo-admin: %s: not served by this process\n", cmd);
        return -ENOENT;
    }
    if (admin_json_text(&a->j, admin_json_get(&a->j, body, "error"), err, sizeof(err)) == 0) {
        fprintf(stderr, "ordo-admin: %s: %s\n", cmd, err);
        return -EINVAL;
    }
    return 0;
}

/* Prints cmd's reply as key=value lines; fails when the server does not know the command
 * or the reply carries an "error" member (a refused net fault spec). */
static int admin_flat(int fd, const char *cmd, struct admin_reply *a)
{
    int rc = admin_query(fd, cmd, a);
    if (rc != 0) {
        return rc;
    }
    int32_t body = admin_fmt_body(&a->j);
    if (body < 0) {
        fprintf(stderr, "ordo-admin: %s: not served by this process\n", cmd);
        return -ENOENT;
    }
    admin_fmt_flat(stdout, &a->j, body, "");
    char err[256];
    if (admin_json_text(&a->j, admin_json_get(&a->j, body, "error"), err, sizeof(err)) == 0) {
        fprintf(stderr, "ordo-admin: %s: %s\n", cmd, err);
        return -EINVAL;
    }
    return 0;
}

static uint64_t admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One number of the /ordo/raft body in a (-1 when the reply has no Raft state). */
static int admin_raft_u64(const struct admin_reply *a, const char *key, uint64_t *v)
{
    return admin_json_u64(&a->j, admin_json_get(&a->j, admin_fmt_body(&a->j), key), v);
}

static int admin_is_leader(const struct admin_reply *a)
{
    char role[32];
    (void)admin_json_text(&a->j, admin_json_get(&a->j, admin_fmt_body(&a->j), "role"), role,
                          sizeof(role));
    return strcmp(role, "leader") == 0;
}

/* transfer N: queue the transfer on the leader, then wait (bounded) until it names another
 * leader (N, or any other when N is 0). */
static int admin_transfer(int fd, const char *target, struct admin_reply *a)
{
    char *end = NULL, cmd[64];
    unsigned long id = strtoul(target, &end, 10);
    uint64_t self = 0, leader = 0;
    if (end == target || *end != '\0' || admin_query(fd, "/ordo/raft", a) != 0 ||
        admin_raft_u64(a, "id", &self) != 0) {
        fprintf(stderr, "ordo-admin: transfer: bad node id or no Raft state\n");
        return -EINVAL;
    }
    if (!admin_is_leader(a)) {
        (void)admin_raft_u64(a, "leader", &leader);
        fprintf(stderr, "ordo-admin: node %" PRIu64 " is not the leader (leader: %" PRIu64 ")\n",
                self, leader);
        return -EPERM;
    }
    snprintf(cmd, sizeof(cmd), "/ordo/transfer,%lu", id);
    int rc = admin_flat_quiet(fd, cmd, a);
    uint64_t t0 = admin_now_ms();
    while (rc == 0 && admin_now_ms() - t0 < ADMIN_WAIT_MS) {
        rc = admin_query(fd, "/ordo/raft", a);
        if (rc == 0 && admin_raft_u64(a, "leader", &leader) == 0 && !admin_is_leader(a) &&
            leader != 0 && leader != self && (id == 0 || leader == id)) {
            printf("leadership moved from %" PRIu64 " to %" PRIu64 " in %" PRIu64 " ms\n", self,
                   leader, admin_now_ms() - t0);
            return 0;
        }
        usleep(10000);
    }
    if (rc == 0) {
        fprintf(stderr, "ordo-admin: transfer to %lu not done within %u ms\n", id, ADMIN_WAIT_MS);
        rc = -ETIMEDOUT;
    }
    return rc;
}

/* snapshot: queue it, then wait (bounded) until the snapshot index reaches the applied index
 * the replica had when it took the request. */
static int admin_snapshot(int fd, struct admin_reply *a)
{
    uint64_t applied = 0, snap = 0;
    int rc = admin_flat_quiet(fd, "/ordo/snapshot", a);
    if (rc == 0 && admin_raft_u64(a, "applied", &applied) != 0) {
        rc = -EPROTO;
    }
    uint64_t t0 = admin_now_ms();
    while (rc == 0 && admin_now_ms() - t0 < ADMIN_WAIT_MS) {
        rc = admin_query(fd, "/ordo/raft", a);
        if (rc == 0 && admin_raft_u64(a, "snapshot_index", &snap) == 0 && snap >= applied) {
            printf("snapshot at index %" PRIu64 "\n", snap);
            return 0;
        }
        usleep(10000);
    }
    if (rc == 0) {
        fprintf(stderr, "ordo-admin: no snapshot reached index %" PRIu64 " within %u ms\n", applied,
                ADMIN_WAIT_MS);
        rc = -ETIMEDOUT;
    }
    return rc;
}

/* The signed member_rc of a /ordo/raft reply (0 when missing). */
static int admin_member_rc(const struct admin_reply *a)
{
    char t[32];
    if (admin_json_text(&a->j, admin_json_get(&a->j, admin_fmt_body(&a->j), "member_rc"), t,
                        sizeof(t)) != 0) {
        return 0;
    }
    return (int)strtol(t, NULL, 10);
}

/* Node id's role in the "members" object of a /ordo/raft reply: voter, learner or "". */
static void admin_member_role(const struct admin_reply *a, uint64_t id, char *buf, size_t cap)
{
    char k[24];
    snprintf(k, sizeof(k), "members.%" PRIu64, id);
    buf[0] = '\0';
    (void)admin_json_text(&a->j, admin_json_path(&a->j, admin_fmt_body(&a->j), k), buf, cap);
}

static void admin_member_refused(int add, uint64_t id, int rc)
{
    const char *why = rc == ORDO_ENOTLEADER ? "this replica no longer leads"
                      : rc == -EINVAL       ? (add ? "already a member (or the cluster is full)"
                                                   : "not a member, or the last voter")
                      : rc == -EBUSY        ? "another membership change is not committed yet"
                                            : strerror(-rc);
    fprintf(stderr, "ordo-admin: %s node %" PRIu64 " refused: %s\n", add ? "add" : "remove", id,
            why);
}

/* Queues the change and waits (bounded) for the leader's verdict; a change refused because
 * another one is still uncommitted (-EBUSY, e.g. a promotion) is asked again. Returns 0 and
 * the configuration entry's index, or an error (already reported). */
static int admin_member_request(int fd, int add, uint64_t id, struct admin_reply *a,
                                uint64_t *index)
{
    char cmd[64];
    uint64_t t0 = admin_now_ms(), seen = 0, done = 0;
    snprintf(cmd, sizeof(cmd), "/ordo/member_%s,%" PRIu64, add ? "add" : "remove", id);
    for (;;) {
        int rc = admin_flat_quiet(fd, cmd, a);
        if (rc != 0 || admin_raft_u64(a, "member_requests", &seen) != 0) {
            return rc != 0 ? rc : -EPROTO;
        }
        do {
            usleep(10000);
            rc = admin_query(fd, "/ordo/raft", a);
        } while (rc == 0 && admin_raft_u64(a, "member_requests", &done) == 0 && done <= seen &&
                 admin_now_ms() - t0 < ADMIN_WAIT_MS);
        if (rc != 0) {
            return rc;
        }
        if (done <= seen) {
            fprintf(stderr, "ordo-admin: the replica took no membership request within %u ms\n",
                    ADMIN_WAIT_MS);
            return -ETIMEDOUT;
        }
        int verdict = admin_member_rc(a);
        if (verdict == 0) {
            return admin_raft_u64(a, "member_index", index) == 0 ? 0 : -EPROTO;
        }
        if (verdict != -EBUSY || admin_now_ms() - t0 >= ADMIN_WAIT_MS) {
            admin_member_refused(add, id, verdict);
            return -EPERM;
        }
    }
}

/* Polls /ordo/raft until the commit index reaches index and (role != NULL) node id has that
 * role, within wait_ms. Returns 0 or -ETIMEDOUT / a query error. */
static int admin_member_wait(int fd, uint64_t id, uint64_t index, const char *role,
                             uint32_t wait_ms, struct admin_reply *a)
{
    uint64_t t0 = admin_now_ms(), commit = 0;
    char have[16];
    while (admin_now_ms() - t0 < wait_ms) {
        int rc = admin_query(fd, "/ordo/raft", a);
        if (rc != 0) {
            return rc;
        }
        admin_member_role(a, id, have, sizeof(have));
        if (admin_raft_u64(a, "commit", &commit) == 0 && commit >= index &&
            (role == NULL || strcmp(have, role) == 0)) {
            return 0;
        }
        usleep(10000);
    }
    return -ETIMEDOUT;
}

/* add N / remove N on the leader: the change, its commit, and for add the promotion. */
static int admin_member(int fd, int add, const char *target, struct admin_reply *a)
{
    char *end = NULL;
    unsigned long id = strtoul(target, &end, 10);
    uint64_t self = 0, leader = 0, index = 0;
    if (end == target || *end != '\0' || id == 0 || admin_query(fd, "/ordo/raft", a) != 0 ||
        admin_raft_u64(a, "id", &self) != 0 ||
        admin_json_get(&a->j, admin_fmt_body(&a->j), "member_requests") < 0) {
        fprintf(stderr, "ordo-admin: %s: bad node id or no membership support\n",
                add ? "add" : "remove");
        return -EINVAL;
    }
    if (!admin_is_leader(a)) {
        (void)admin_raft_u64(a, "leader", &leader);
        fprintf(stderr, "ordo-admin: node %" PRIu64 " is not the leader (leader: %" PRIu64 ")\n",
                self, leader);
        return -EPERM;
    }
    uint64_t t0 = admin_now_ms();
    int rc = admin_member_request(fd, add, id, a, &index);
    if (rc == 0) {
        rc = admin_member_wait(fd, id, index, NULL, ADMIN_WAIT_MS, a);
    }
    if (rc == 0) {
        printf("node %lu %s at index %" PRIu64 " (committed in %" PRIu64 " ms)\n", id,
               add ? "added as learner" : "removed", index, admin_now_ms() - t0);
    }
    if (rc == 0 && add) {
        rc = admin_member_wait(fd, id, 0, "voter", ADMIN_PROMOTE_WAIT_MS, a);
        if (rc == 0) {
            printf("node %lu caught up and promoted to voter (%" PRIu64 " ms after the request)\n",
                   id, admin_now_ms() - t0);
        }
    }
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "ordo-admin: node %lu: %s not seen in time (see the replica's log)\n", id,
                add ? "commit or promotion" : "commit");
    }
    return rc;
}

/* Whether argv (subcommand and its arguments) is a known command line. */
static int admin_args_ok(int argc, char **argv)
{
    static const struct {
        const char *name;
        int min, max;
    } subs[] = {{"status", 1, 2},    {"stats", 1, 1}, {"raft", 1, 1},     {"snap", 1, 1},
                {"net-fault", 1, 2}, {"json", 2, 2},  {"transfer", 2, 2}, {"snapshot", 1, 1},
                {"add", 2, 2},       {"remove", 2, 2}};
    if (strcmp(argv[0], "status") == 0 && argc == 2 && strcmp(argv[1], "--json") != 0) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[0], subs[i].name) == 0) {
            return argc >= subs[i].min && argc <= subs[i].max;
        }
    }
    return 0;
}

static int admin_run(int fd, int argc, char **argv, struct admin_reply *a, struct admin_reply *b)
{
    const char *sub = argv[0];
    char cmd[1024];
    if (strcmp(sub, "status") == 0) {
        return admin_status(fd, argc == 2, a, b);
    }
    if (strcmp(sub, "snap") == 0 && argc == 1) {
        return admin_flat(fd, "/ordo/snap", a);
    }
    if (strcmp(sub, "stats") == 0 && argc == 1) {
        return admin_flat(fd, "/ordo/stats", a);
    }
    if (strcmp(sub, "raft") == 0 && argc == 1) {
        return admin_flat(fd, "/ordo/raft", a);
    }
    if (strcmp(sub, "net-fault") == 0 && argc <= 2) {
        snprintf(cmd, sizeof(cmd), "/ordo/net_fault%s%s", argc == 2 ? "," : "",
                 argc == 2 ? argv[1] : "");
        return admin_flat(fd, cmd, a);
    }
    if (strcmp(sub, "transfer") == 0 && argc == 2) {
        return admin_transfer(fd, argv[1], a);
    }
    if (strcmp(sub, "snapshot") == 0 && argc == 1) {
        return admin_snapshot(fd, a);
    }
    if ((strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) && argc == 2) {
        return admin_member(fd, strcmp(sub, "add") == 0, argv[1], a);
    }
    if (strcmp(sub, "json") == 0 && argc == 2) {
        int rc = admin_query(fd, argv[1], a);
        if (rc == 0) {
            printf("%s\n", a->text);
        }
        return rc;
    }
    return -EINVAL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"file-prefix", required_argument, NULL, 'f'},
                                         {"socket", required_argument, NULL, 's'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *prefix = "rte", *sock = NULL;
    int timeout_ms = 2000, o;
    while ((o = getopt_long(argc, argv, "+f:s:t:h", opts, NULL)) != -1) {
        if (o == 'f') {
            prefix = optarg;
        } else if (o == 's') {
            sock = optarg;
        } else if (o == 't' && atoi(optarg) > 0) {
            timeout_ms = atoi(optarg);
        } else {
            admin_usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc || !admin_args_ok(argc - optind, argv + optind)) {
        admin_usage(stderr);
        return 2;
    }
    char path[512];
    if (sock == NULL) {
        snprintf(path, sizeof(path), "/var/run/dpdk/%s/dpdk_telemetry.v2", prefix);
        sock = path;
    }
    int fd = admin_connect(sock, timeout_ms);
    if (fd < 0) {
        fprintf(stderr, "ordo-admin: %s: %s\n", sock, strerror(-fd));
        return 1;
    }
    struct admin_reply *a = admin_reply_new(), *b = admin_reply_new();
    int rc = (a != NULL && b != NULL) ? admin_run(fd, argc - optind, argv + optind, a, b) : -ENOMEM;
    close(fd);
    admin_reply_free(a);
    admin_reply_free(b);
    if (rc == -EINVAL) {
        fprintf(stderr, "ordo-admin: %s: malformed or refused reply\n", argv[optind]);
    } else if (rc != 0 && rc != -ENOENT) {
        fprintf(stderr, "ordo-admin: %s: %s\n", argv[optind], strerror(-rc));
    }
    return rc == 0 ? 0 : 1;
}
