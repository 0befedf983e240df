/* Fuzz target for the configuration loader: the input becomes a cluster file in a private
 * temporary directory (which also holds the key files the corpus names) and goes through
 * conf_load. It must never crash; a load that succeeds must satisfy the documented
 * invariants, and every outcome must free what it allocated. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/runtime/conf.h"
#include "tests/fuzz/fuzz.h"

static char fuzz_dir[64];
static char fuzz_path[128];

static void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_conf: invariant broken: %s (%s)\n", what, detail);
    abort();
}

static void fuzz_write(const char *name, const void *data, size_t len)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fuzz_fail("cannot write a fixture file", path);
    }
}

static void fuzz_cleanup(void)
{
    static const char *const names[] = {
        "f.ini",       "test.key",    "raw.key",          "client7.key",
        "client9.key", "cluster.key", "clients/1001.key", "clients/1002.key"};
    char path[192];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/clients", fuzz_dir);
    rmdir(path);
    rmdir(fuzz_dir);
}

/* The key files the checked-in corpus refers to (names of tests/unit/conf and config/). */
static void fuzz_setup(void)
{
    static const char hex[] = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00\n";
    uint8_t raw[CONF_KEY_LEN];
    char path[192];
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s", "/tmp/ordo-fuzz-conf.XXXXXX");
    if (mkdtemp(fuzz_dir) == NULL) {
        fuzz_fail("mkdtemp", strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/clients", fuzz_dir);
    if (mkdir(path, 0700) != 0) {
        fuzz_fail("mkdir", strerror(errno));
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (uint8_t)(i + 1);
    }
    fuzz_write("test.key", hex, sizeof(hex) - 1);
    fuzz_write("cluster.key", hex, sizeof(hex) - 1);
    fuzz_write("raw.key", raw, sizeof(raw));
    fuzz_write("client7.key", "7777777777777777777777777777777777777777777777777777777777777777",
               64);
    fuzz_write("client9.key", "9999999999999999999999999999999999999999999999999999999999999999",
               64);
    fuzz_write("clients/1001.key",
               "1001100110011001100110011001100110011001100110011001100110011001", 64);
    fuzz_write("clients/1002.key",
               "1002100210021002100210021002100210021002100210021002100210021002", 64);
    snprintf(fuzz_path, sizeof(fuzz_path), "%s/f.ini", fuzz_dir);
    atexit(fuzz_cleanup);
}

static bool fuzz_in_lcores(const struct conf_replica *r, uint32_t lcore)
{
    for (uint32_t i = 0; i < r->lcores_n; i++) {
        if (r->lcores[i] == lcore) {
            return true;
        }
    }
    return false;
}

/* What a successful load promises its users (conf.h). */
static void fuzz_check_conf(const struct conf *c)
{
    const struct conf_replica *r = &c->replica;
    struct conf_argv argv;
    struct ordo_errmsg err;
    char list[CONF_LCORES_MAX * 4 + 1];
    if (c->nodes_n < 1 || c->nodes_n > MSG_NODES_MAX || c->cluster.id == 0) {
        fuzz_fail("node count or cluster id", c->path);
    }
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        const struct conf_node *n = &c->nodes[i];
        if ((i > 0 && c->nodes[i - 1].id >= n->id) || conf_node_find(c, n->id) != n) {
            fuzz_fail("nodes not sorted and unique", c->path);
        }
        if (conf_eal_argv(n->eal, "ordo", &argv, &err) != 0) {
            fuzz_fail("an accepted eal does not split", err.text);
        }
    }
    uint32_t stages[] = {r->rx_lcore, r->seq_lcore, r->log_lcore, r->apply_lcore, r->tx_lcore};
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        if (!fuzz_in_lcores(r, stages[i])) {
            fuzz_fail("stage lcore outside lcores", c->path);
        }
    }
    if (r->lcores_n < 1 || conf_lcores_list(r, list, sizeof(list)) <= 0) {
        fuzz_fail("lcores list", c->path);
    }
    for (uint32_t i = 0; i < c->clients.keys_n; i++) {
        uint64_t id = c->clients.keys[i].client_id;
        if ((i > 0 && c->clients.keys[i - 1].client_id >= id) ||
            conf_client_key(c, id) != c->clients.keys[i].key) {
            fuzz_fail("client keys not sorted and unique", c->path);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf c;
    struct ordo_errmsg err = {{0}};
    char args[CONF_STR_MAX];
    struct conf_argv argv;
    if (fuzz_dir[0] == '\0') {
        fuzz_setup();
    }
    /* The splitter alone, on the first bytes as a string. */
    size_t n = size < sizeof(args) - 1 ? size : sizeof(args) - 1;
    memcpy(args, data, n);
    args[n] = '\0';
    (void)conf_eal_argv(args, "ordo", &argv, &err);

    int64_t live = mem_live_count();
    fuzz_write("f.ini", data, size);
    int rc = conf_load(fuzz_path, &c, &err);
    if (rc == 0) {
        fuzz_check_conf(&c);
        conf_free(&c);
    } else if (rc != ORDO_ECONFIG && rc != -ENOMEM) {
        fuzz_fail("unexpected result code", err.text);
    } else if (strncmp(err.text, fuzz_path, strlen(fuzz_path)) != 0) {
        fuzz_fail("error does not name the file", err.text);
    }
    if (mem_live_count() != live) {
        fuzz_fail("allocations leaked", err.text);
    }
    return 0;
}
