/* Benchmark: apply throughput of the key-value state machine (16-byte keys, 64-byte values)
 * against a baseline measured in the same run: a plain memcpy of the same bytes into a
 * preallocated array. Not a test: prints ops/s and ratios, never fails on speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "engine/msg.h"
#include "engine/sm.h"
#include "engine/sm_kv.h"

#define BENCH_KEYS 100000u
#define BENCH_KEY_LEN 16u
#define BENCH_VALUE_LEN 64u
#define BENCH_ARGS_LEN (2u + BENCH_KEY_LEN + 4u + BENCH_VALUE_LEN)
#define BENCH_REPEATS 3u

static uint8_t bench_put[BENCH_KEYS][BENCH_ARGS_LEN];
static uint8_t bench_get[BENCH_KEYS][2u + BENCH_KEY_LEN];
static uint8_t bench_array[BENCH_KEYS][BENCH_KEY_LEN + BENCH_VALUE_LEN];
static uint8_t bench_out[SM_KV_VALUE_MAX];
static volatile uint64_t bench_sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pre-encodes every request so that the timed loops measure apply alone. */
static void bench_prepare(uint32_t round)
{
    for (uint32_t i = 0; i < BENCH_KEYS; i++) {
        char key[BENCH_KEY_LEN + 1];
        uint8_t value[BENCH_VALUE_LEN];
        snprintf(key, sizeof(key), "key-%011u", i);
        memset(value, (int)((i + round) & 0xff), sizeof(value));
        memcpy(value, &round, sizeof(round));
        if (sm_kv_encode_put(bench_put[i], BENCH_ARGS_LEN, key, BENCH_KEY_LEN, value,
                             BENCH_VALUE_LEN) != (int)BENCH_ARGS_LEN ||
            sm_kv_encode_get(bench_get[i], sizeof(bench_get[i]), key, BENCH_KEY_LEN) !=
                (int)sizeof(bench_get[i])) {
            fprintf(stderr, "bench_kv: encoding failed\n");
            exit(1);
        }
    }
}

/* Baseline: copy the key and value bytes of each PUT into a preallocated slot. */
static double bench_memcpy(void)
{
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < BENCH_KEYS; i++) {
        memcpy(bench_array[i], bench_put[i] + 2, BENCH_KEY_LEN);
        memcpy(bench_array[i] + BENCH_KEY_LEN, bench_put[i] + 2 + BENCH_KEY_LEN + 4,
               BENCH_VALUE_LEN);
    }
    uint64_t dt = now_ns() - t0;
    bench_sink += bench_array[BENCH_KEYS / 2][BENCH_KEY_LEN];
    return (double)BENCH_KEYS * 1e9 / (double)(dt ? dt : 1);
}

/* Applies one op to every key; returns ops/s. Exits on an unexpected status. */
static double bench_apply(struct sm *sm, uint8_t op, int expect)
{
    uint32_t out_len = 0;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < BENCH_KEYS; i++) {
        const uint8_t *args = op == SM_KV_OP_GET ? bench_get[i] : bench_put[i];
        uint32_t len = op == SM_KV_OP_GET ? (uint32_t)sizeof(bench_get[i]) : BENCH_ARGS_LEN;
        int st = sm_apply(sm, op, args, len, bench_out, sizeof(bench_out), &out_len);
        if (st != expect) {
            fprintf(stderr, "bench_kv: op %u key %u: status %d\n", op, i, st);
            exit(1);
        }
        bench_sink += out_len;
    }
    uint64_t dt = now_ns() - t0;
    return (double)BENCH_KEYS * 1e9 / (double)(dt ? dt : 1);
}

static double best(double a, double b)
{
    return a > b ? a : b;
}

int main(void)
{
    double base = 0, insert = 0, update = 0, get = 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_kv: sodium_init failed\n");
        return 1;
    }
    for (uint32_t rep = 0; rep < BENCH_REPEATS; rep++) {
        struct sm *sm = NULL;
        if (sm_kv_create(NULL, &sm) != 0) {
            fprintf(stderr, "bench_kv: sm_kv_create failed\n");
            return 1;
        }
        bench_prepare(rep * 2);
        base = best(base, bench_memcpy());
        insert = best(insert, bench_apply(sm, SM_KV_OP_PUT, MSG_STATUS_OK));
        bench_prepare(rep * 2 + 1);
        update = best(update, bench_apply(sm, SM_KV_OP_PUT, MSG_STATUS_OK));
        get = best(get, bench_apply(sm, SM_KV_OP_GET, MSG_STATUS_OK));
        sm_destroy(sm);
    }
    printf("kv apply, %u keys of %u B, values of %u B, best of %u; libsodium %s\n", BENCH_KEYS,
           BENCH_KEY_LEN, BENCH_VALUE_LEN, BENCH_REPEATS, sodium_version_string());
    printf("%-28s %14s %10s\n", "workload", "ops/s", "vs memcpy");
    printf("%-28s %14.0f %10.3f\n", "baseline: memcpy to array", base, 1.0);
    printf("%-28s %14.0f %10.3f\n", "PUT insert (table grows)", insert, insert / base);
    printf("%-28s %14.0f %10.3f\n", "PUT update (same size)", update, update / base);
    printf("%-28s %14.0f %10.3f\n", "GET", get, get / base);
    return 0;
}
