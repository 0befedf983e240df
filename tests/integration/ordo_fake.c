/* ordo-fake: a kernel-socket stand-in for a replica, used to test ordo-cli alone: it
 * decodes client requests with the real codec, applies them to the real key-value store and
 * answers, or redirects every request elsewhere, or drops some to force retries.
 * Test-only; it is not a replica (no log, no DPDK). A registration (MSG_REQ_REGISTER) gets a
 * fresh client id from a counter, but no session is kept: every client is served. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/sm_kv.h"
#include "engine/wire.h"

struct fake {
    int fd;
    uint32_t cluster_id;
    struct sockaddr_in redirect; /* sin_port != 0: redirect everything there */
    uint64_t drop_first;         /* drop this many requests before answering */
    int trace;                   /* print "request CLIENT NO" for each request seen */
    struct sm *kv;
    uint64_t seen;
    uint64_t next_id; /* the next client id a registration gets */
};

static volatile sig_atomic_t fake_stop;

static void fake_on_signal(int sig)
{
    (void)sig;
    fake_stop = 1;
}

static int fake_parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');

    if (colon == NULL || (size_t)(colon - text) >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* Builds the answer to request m into out; returns its length or < 0. */
static int fake_answer(struct fake *f, const struct msg *m, uint8_t *out, size_t cap)
{
    static uint8_t result[SM_KV_VALUE_MAX];
    struct msg r;
    uint32_t result_len = 0;

    memset(&r, 0, sizeof(r));
    r.hdr.cluster_id = f->cluster_id;
    if (f->redirect.sin_port != 0) {
        r.hdr.type = MSG_REDIRECT;
        r.u.redirect.client_id = m->u.request.client_id;
        r.u.redirect.request_no = m->u.request.request_no;
        r.u.redirect.leader_id = 2;
        r.u.redirect.leader_ipv4 = f->redirect.sin_addr.s_addr;
        r.u.redirect.leader_port = ntohs(f->redirect.sin_port);
        return wire_encode(&r, NULL, out, cap);
    }
    int status = 0;
    if (m->u.request.flags & MSG_REQ_REGISTER) {
        uint64_t id = f->next_id++;
        for (result_len = 0; result_len < 8; result_len++) {
            result[result_len] = (uint8_t)(id >> (8 * result_len));
        }
    } else {
        status = sm_apply(f->kv, m->u.request.op, m->u.request.args, m->u.request.args_len, result,
                          sizeof(result), &result_len);
    }
    if (status < 0) {
        return status;
    }
    r.hdr.type = MSG_CLIENT_REPLY;
    r.u.reply.client_id = m->u.request.client_id;
    r.u.reply.request_no = m->u.request.request_no;
    r.u.reply.status = (uint8_t)status;
    r.u.reply.result_len = result_len;
    r.u.reply.result = result;
    return wire_encode(&r, NULL, out, cap);
}

static void fake_one(struct fake *f, const uint8_t *buf, size_t len, const struct sockaddr_in *peer)
{
    static uint8_t out[WIRE_MSG_LEN_MAX];
    struct msg m;

    if (wire_decode(buf, len, &m, NULL, 0) != 0 || m.hdr.type != MSG_CLIENT_REQUEST ||
        wire_check_cluster(buf, len, f->cluster_id) != 0) {
        return;
    }
    f->seen++;
    if (f->trace) {
        printf("request %llu %llu\n", (unsigned long long)m.u.request.client_id,
               (unsigned long long)m.u.request.request_no);
        fflush(stdout);
    }
    if (f->seen <= f->drop_first) {
        return;
    }
    int n = fake_answer(f, &m, out, sizeof(out));
    if (n > 0) {
        (void)sendto(f->fd, out, (size_t)n, 0, (const struct sockaddr *)peer, sizeof(*peer));
    }
}

static int fake_parse(struct fake *f, int argc, char **argv, struct sockaddr_in *bind_sa)
{
    int have_bind = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--trace") == 0) {
            f->trace = 1;
            continue;
        }
        if (v == NULL) {
            return -EINVAL;
        }
        i++;
        if (strcmp(a, "--bind") == 0 && fake_parse_addr(v, bind_sa) == 0) {
            have_bind = 1;
        } else if (strcmp(a, "--redirect") == 0 && fake_parse_addr(v, &f->redirect) == 0) {
            continue;
        } else if (strcmp(a, "--cluster-id") == 0) {
            f->cluster_id = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--drop-first") == 0) {
            f->drop_first = strtoull(v, NULL, 10);
        } else {
            return -EINVAL;
        }
    }
    return have_bind ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    static uint8_t buf[WIRE_MSG_LEN_MAX + 1];
    struct fake f = {.fd = -1, .cluster_id = 1, .next_id = 1u << 16};
    struct sockaddr_in sa;
    struct sigaction act = {.sa_handler = fake_on_signal};

    if (fake_parse(&f, argc, argv, &sa) != 0) {
        fprintf(stderr, "usage: ordo-fake --bind IP:PORT [--cluster-id N] [--redirect IP:PORT]"
                        " [--drop-first N] [--trace]\n");
        return 2;
    }
    f.fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (wire_init() != 0 || sm_kv_create(NULL, &f.kv) != 0 || f.fd < 0 ||
        bind(f.fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "ordo-fake: start-up failed: %s\n", strerror(errno));
        return 1;
    }
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    printf("ordo-fake: ready\n");
    fflush(stdout);
    while (!fake_stop) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof(peer);
        ssize_t n = recvfrom(f.fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peer_len);
        if (n > 0) {
            fake_one(&f, buf, (size_t)n, &peer);
        }
    }
    sm_destroy(f.kv);
    close(f.fd);
    return 0;
}
