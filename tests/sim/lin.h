/* Linearizability checker for key-value histories (Wing & Gong search with Lowe's
 * memoization, partitioned per key). Test-only code: it may allocate and print. */
#ifndef ORDO_TESTS_SIM_LIN_H
#define ORDO_TESTS_SIM_LIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Values are opaque 64-bit tokens; LIN_ABSENT stands for "key not present". */
#define LIN_ABSENT 0u
/* Return time of an operation whose response never arrived. */
#define LIN_PENDING UINT64_MAX

enum lin_kind {
    LIN_PUT = 1, /* put(key, arg) -> OK */
    LIN_GET = 2, /* get(key) -> OK + out, or NOT_FOUND */
    LIN_DEL = 3, /* delete(key) -> OK if present; OK or NOT_FOUND if absent */
    LIN_CAS = 4, /* cas(key, expect, arg) -> OK (swapped), MISMATCH or NOT_FOUND */
};

enum lin_status {
    LIN_ST_OK = 0,
    LIN_ST_NOT_FOUND = 1,
    LIN_ST_MISMATCH = 2,
};

struct lin_op {
    uint64_t key;
    uint8_t kind;       /* enum lin_kind */
    uint8_t known;      /* 0: timed out, may or may not have taken effect */
    uint8_t status;     /* enum lin_status; ignored when !known */
    uint32_t client;    /* for printing only */
    uint64_t arg;       /* put: value; cas: new value */
    uint64_t expect;    /* cas: expected value */
    uint64_t out;       /* get: value read (LIN_ABSENT with NOT_FOUND) */
    uint64_t call_time; /* invocation; times are compared, a tie counts as concurrent */
    uint64_t ret_time;  /* response; LIN_PENDING when !known */
};

enum lin_verdict {
    LIN_OK = 0,
    LIN_VIOLATION = 1,
    LIN_UNKNOWN = 2, /* the search budget ran out before a verdict */
};

struct lin_report {
    enum lin_verdict verdict;
    uint64_t key;    /* the key whose history failed (or ran out of budget) */
    size_t n_min;    /* ops in the minimal failing history */
    size_t *min_idx; /* their indices in the input array (owned; lin_report_free) */
    uint64_t steps;  /* search steps spent in total */
};

/* Checks ops[0..n) (borrowed). budget bounds the search steps per key (0: default).
 * On LIN_VIOLATION the report holds a 1-minimal failing sub-history of one key.
 * Returns the verdict, or -ENOMEM. */
int lin_check(const struct lin_op *ops, size_t n, uint64_t budget, struct lin_report *rep);
void lin_report_free(struct lin_report *rep);
/* Prints the operations named by the report, ordered by invocation time. */
void lin_print(FILE *f, const struct lin_op *ops, const struct lin_report *rep);
/* Prints one operation on one line (no newline). */
void lin_print_op(FILE *f, const struct lin_op *op);

#endif
