/* ordo-admin: reads a replica's state through its DPDK telemetry socket and prints it
 * (status, raw counters, Raft state, any command's JSON), and sets the net fault injector. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "apps/admin_fmt.h"
#include "apps/admin_json.h"

#define ADMIN_REPLY_MAX (1u << 20)
#define ADMIN_NODES_MAX 4096u

/* One parsed reply: its text (owned) and nodes. */
struct admin_reply {
    char *text;
    struct admin_json j;
    struct admin_json_node nodes[ADMIN_NODES_MAX];
};

static void admin_usage(FILE *f)
{
    fprintf(f, "usage: ordo-admin [--file-prefix P | --socket PATH] [--timeout-ms N] COMMAND\n"
               "  status            role, term, leader, commit/applied, follower match and lag,\n"
               "                    batches, queue depths, counters\n"
               "  stats             every /ordo/stats counter as key=value\n"
               "  raft              every /ordo/raft field as key=value\n"
               "  json CMD          the raw JSON reply of telemetry command CMD (e.g. /ordo/port)\n"
               "  net-fault [SPEC]  show the net fault injector, or set SPEC ('off' disables)\n"
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

static int admin_status(int fd, struct admin_reply *a, struct admin_reply *b)
{
    int rc = admin_query(fd, "/ordo/raft", a);
    if (rc != 0) {
        return rc;
    }
    rc = admin_query(fd, "/ordo/stats", b);
    if (rc != 0) {
        return rc;
    }
    return admin_fmt_status(stdout, &a->j, admin_fmt_body(&a->j), &b->j, admin_fmt_body(&b->j));
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

/* Whether argv (subcommand and its arguments) is a known command line. */
static int admin_args_ok(int argc, char **argv)
{
    static const struct {
        const char *name;
        int min, max;
    } subs[] = {
        {"status", 1, 1}, {"stats", 1, 1}, {"raft", 1, 1}, {"net-fault", 1, 2}, {"json", 2, 2}};
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
    if (strcmp(sub, "status") == 0 && argc == 1) {
        return admin_status(fd, a, b);
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
