/* Internals shared by the two files of ordo-cli (one-shot commands, load mode): options,
 * the kernel UDP transport, the request/reply codec wrappers and the exit codes.
 * Not a library: only ordo-cli includes it. */
#ifndef ORDO_APPS_ORDO_CLI_H
#define ORDO_APPS_ORDO_CLI_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/msg.h"
#include "engine/wire.h"

/* Exit codes (documented in `ordo-cli --help` and docs/benchmarks.md). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,    /* load: some request failed or a reply did not verify */
    CLI_EXIT_USAGE = 2,     /* bad command line */
    CLI_EXIT_NOT_FOUND = 3, /* get/del/cas: no such key */
    CLI_EXIT_MISMATCH = 4,  /* cas: current value differs (printed) */
    CLI_EXIT_REJECTED = 5,  /* the replica answered with another error status */
    CLI_EXIT_NO_REPLY = 6,  /* unreachable: no reply after every retry, or port refused */
    CLI_EXIT_LOCAL = 7,     /* local failure: socket, key file, redirect loop */
    CLI_EXIT_REDIRECT = 8,  /* --no-redirect: the replica does not lead (leader printed) */
};

#define CLI_MSG_CAP WIRE_MSG_LEN_MAX
#define CLI_REDIRECTS_MAX 8
#define CLI_SERVERS_MAX 16

struct cli_opts {
    struct sockaddr_in server; /* the first of servers[] */
    struct sockaddr_in servers[CLI_SERVERS_MAX];
    uint32_t n_servers; /* --server A,B,C: an attempt without reply moves to the next */
    uint32_t cluster_id;
    uint64_t client_id;
    int client_id_set;
    uint64_t request_no; /* 0: pick one */
    struct wire_key key;
    int has_key;
    uint32_t timeout_ms;
    uint32_t retries;
    int echo; /* baseline: the server echoes requests (perf/udp_echo) */
    int quiet;
    int no_redirect; /* report a redirect (exit 8) instead of following it */
    int show_server; /* print which server answered (stderr) */
};

/* A UDP socket connected to the current server (a redirect reconnects it). */
struct cli_conn {
    int fd;
    struct sockaddr_in server;
};

uint64_t cli_now_ns(void);
uint64_t cli_now_realtime_us(void);
uint64_t cli_random_u64(void);
int cli_parse_addr(const char *text, struct sockaddr_in *sa);
const char *cli_addr_str(const struct sockaddr_in *sa, char *buf, size_t cap);

/* Opens a non-blocking UDP socket connected to server. Returns 0 or -errno. */
int cli_conn_open(struct cli_conn *c, const struct sockaddr_in *server);
/* Points the socket at another server (after a redirect). Returns 0 or -errno. */
int cli_conn_retarget(struct cli_conn *c, const struct sockaddr_in *server);
void cli_conn_close(struct cli_conn *c);

/* Encodes one client request (MAC'd when o->has_key; flags MSG_REQ_*) into buf. Returns
 * length or < 0. */
int cli_encode_request(const struct cli_opts *o, uint64_t client_id, uint64_t request_no,
                       uint16_t flags, uint8_t op, const uint8_t *args, uint32_t args_len,
                       uint8_t *buf, size_t cap);

/* The client id a successful registration's reply carries (engine/sess.h); returns 0, or
 * ORDO_EMALFORMED when the reply is not OK with an 8-byte result. */
int cli_registered_id(const struct msg_client_reply *r, uint64_t *client_id);

/* The server after cur in o->servers (wrapping), for a retry after an attempt without
 * reply: with several replicas listed, a dead leader does not stall the client. */
const struct sockaddr_in *cli_next_server(const struct cli_opts *o, const struct sockaddr_in *cur);

/* Decodes one datagram from the server: header checks, cluster id, MAC (verified when the
 * reply carries one and we hold a key). Accepts replies and redirects, or in echo mode our
 * own requests. Returns 0 or an ORDO_E* code (the datagram is to be ignored). */
int cli_decode_reply(const struct cli_opts *o, const uint8_t *buf, size_t len, struct msg *out);

/* Turns a redirect into the leader's address; returns 0, or ORDO_ENOTFOUND when the
 * replica does not know the leader. */
int cli_redirect_target(const struct msg_redirect *r, struct sockaddr_in *out);

const char *cli_status_str(uint8_t status);

/* `load` subcommand: argv[0] is "load". Returns a cli_exit code. */
int cli_load_main(const struct cli_opts *o, int argc, char **argv);

#endif
