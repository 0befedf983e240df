/* Linearizability checker: Wing & Gong's depth-first search over the history with
 * Lowe's "just-in-time" list of call and return events and a cache of (linearized set,
 * state) pairs already explored. Keys are independent registers, so each key's
 * sub-history is checked alone (linearizability is local: Herlihy & Wing). */
#include "tests/sim/lin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LIN_BUDGET_DEFAULT 400000u
#define LIN_MIN_TRIES_MAX 3000u
#define LIN_NIL UINT32_MAX

struct lin_ev {
    uint64_t t;
    uint32_t op; /* position in the subset */
    uint32_t is_ret;
    uint32_t prev;
    uint32_t next;
    uint32_t match; /* the call's return event */
};

struct lin_frame {
    uint32_t ev;
    uint64_t state;
};

struct lin_cache {
    uint64_t *rows; /* cap rows of (1 + words) words: state, then the bitset */
    uint8_t *used;
    size_t cap;
    size_t count;
    size_t words;
};

struct lin_search {
    const struct lin_op *ops;
    const size_t *idx; /* subset: indices into ops */
    size_t n;
    struct lin_ev *ev; /* ev[0] is the list head */
    uint64_t *bits;
    struct lin_frame *stack;
    struct lin_cache cache;
};

static uint64_t lin_hash(const uint64_t *row, size_t len)
{
    uint64_t h = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < len; i++) {
        h ^= row[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static int lin_cache_grow(struct lin_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 1024;
    size_t rw = c->words + 1;
    uint64_t *rows = calloc(cap * rw, sizeof(uint64_t));
    uint8_t *used = calloc(cap, 1);
    if (rows == NULL || used == NULL) {
        free(rows);
        free(used);
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->used[i]) {
            continue;
        }
        const uint64_t *src = &c->rows[i * rw];
        size_t j = lin_hash(src, rw) & (cap - 1);
        while (used[j]) {
            j = (j + 1) & (cap - 1);
        }
        used[j] = 1;
        memcpy(&rows[j * rw], src, rw * sizeof(uint64_t));
    }
    free(c->rows);
    free(c->used);
    c->rows = rows;
    c->used = used;
    c->cap = cap;
    return 0;
}

/* Returns 1 if (state, bits) was new and is now cached, 0 if seen, -ENOMEM. */
static int lin_cache_add(struct lin_cache *c, uint64_t state, const uint64_t *bits)
{
    size_t rw = c->words + 1;
    if ((c->count + 1) * 2 > c->cap) {
        int rc = lin_cache_grow(c);
        if (rc < 0) {
            return rc;
        }
    }
    uint64_t h = state * 0x9e3779b97f4a7c15ull ^ lin_hash(bits, c->words);
    size_t j = h & (c->cap - 1);
    while (c->used[j]) {
        uint64_t *row = &c->rows[j * rw];
        if (row[0] == state && memcmp(&row[1], bits, c->words * sizeof(uint64_t)) == 0) {
            return 0;
        }
        j = (j + 1) & (c->cap - 1);
    }
    c->used[j] = 1;
    c->rows[j * rw] = state;
    memcpy(&c->rows[j * rw + 1], bits, c->words * sizeof(uint64_t));
    c->count++;
    return 1;
}

/* The sequential specification of one key. Returns 1 if op may take effect in state st
 * with the result it returned, and stores the next state. An op whose result is unknown
 * accepts any result; a cas that would fail has no effect, so it need not be placed. */
static int lin_step(const struct lin_op *op, uint64_t st, uint64_t *ns)
{
    *ns = st;
    switch (op->kind) {
    case LIN_PUT:
        *ns = op->arg;
        return !op->known || op->status == LIN_ST_OK;
    case LIN_GET:
        if (!op->known) {
            return 1;
        }
        if (st == LIN_ABSENT) {
            return op->status == LIN_ST_NOT_FOUND;
        }
        return op->status == LIN_ST_OK && op->out == st;
    case LIN_DEL:
        *ns = LIN_ABSENT;
        if (!op->known || op->status == LIN_ST_OK) {
            return 1;
        }
        return op->status == LIN_ST_NOT_FOUND && st == LIN_ABSENT;
    case LIN_CAS: {
        int match = st != LIN_ABSENT && st == op->expect;
        if (!op->known || op->status == LIN_ST_OK) {
            *ns = match ? op->arg : st;
            return match;
        }
        if (op->status == LIN_ST_NOT_FOUND) {
            return st == LIN_ABSENT;
        }
        return op->status == LIN_ST_MISMATCH && !match;
    }
    default:
        return 0;
    }
}

static int lin_ev_cmp(const void *a, const void *b)
{
    const struct lin_ev *x = a;
    const struct lin_ev *y = b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    /* Calls before returns at equal times: a tie counts as overlapping. */
    if (x->is_ret != y->is_ret) {
        return x->is_ret ? 1 : -1;
    }
    return x->op < y->op ? -1 : (x->op > y->op);
}

/* Builds the event list: ev[0] is the head, then calls and returns ordered by time. */
static void lin_build_events(struct lin_search *s)
{
    struct lin_ev *e = &s->ev[1];
    for (size_t i = 0; i < s->n; i++) {
        const struct lin_op *op = &s->ops[s->idx[i]];
        uint64_t ret = op->known ? op->ret_time : LIN_PENDING;
        e[2 * i] = (struct lin_ev){.t = op->call_time, .op = (uint32_t)i, .is_ret = 0};
        e[2 * i + 1] = (struct lin_ev){.t = ret, .op = (uint32_t)i, .is_ret = 1};
    }
    qsort(e, 2 * s->n, sizeof(*e), lin_ev_cmp);
    uint32_t *ret_of = calloc(s->n, sizeof(uint32_t));
    size_t n_ev = 2 * s->n + 1;
    for (uint32_t i = 1; i < n_ev; i++) {
        s->ev[i].prev = i - 1;
        s->ev[i].next = i + 1 < n_ev ? i + 1 : LIN_NIL;
        if (s->ev[i].is_ret && ret_of != NULL) {
            ret_of[s->ev[i].op] = i;
        }
    }
    s->ev[0].next = n_ev > 1 ? 1 : LIN_NIL;
    for (uint32_t i = 1; i < n_ev && ret_of != NULL; i++) {
        if (!s->ev[i].is_ret) {
            s->ev[i].match = ret_of[s->ev[i].op];
        }
    }
    free(ret_of);
}

static void lin_unlink(struct lin_ev *ev, uint32_t i)
{
    ev[ev[i].prev].next = ev[i].next;
    if (ev[i].next != LIN_NIL) {
        ev[ev[i].next].prev = ev[i].prev;
    }
}

static void lin_relink(struct lin_ev *ev, uint32_t i)
{
    ev[ev[i].prev].next = i;
    if (ev[i].next != LIN_NIL) {
        ev[ev[i].next].prev = i;
    }
}

static int lin_search_init(struct lin_search *s)
{
    s->cache.words = (s->n + 63) / 64;
    s->ev = calloc(2 * s->n + 1, sizeof(*s->ev));
    s->bits = calloc(s->cache.words + 1, sizeof(uint64_t));
    s->stack = calloc(s->n + 1, sizeof(*s->stack));
    if (s->ev == NULL || s->bits == NULL || s->stack == NULL) {
        return -ENOMEM;
    }
    return lin_cache_grow(&s->cache);
}

static void lin_search_free(struct lin_search *s)
{
    free(s->ev);
    free(s->bits);
    free(s->stack);
    free(s->cache.rows);
    free(s->cache.used);
}

/* Tries to linearize call event ci now. Returns 1 if it did, 0 if not, -ENOMEM. */
static int lin_try_call(struct lin_search *s, uint32_t ci, uint64_t *state, size_t *sp)
{
    uint32_t op = s->ev[ci].op;
    uint64_t ns;
    if (!lin_step(&s->ops[s->idx[op]], *state, &ns)) {
        return 0;
    }
    s->bits[op / 64] |= 1ull << (op % 64);
    int rc = lin_cache_add(&s->cache, ns, s->bits);
    if (rc <= 0) {
        s->bits[op / 64] &= ~(1ull << (op % 64));
        return rc;
    }
    s->stack[(*sp)++] = (struct lin_frame){.ev = ci, .state = *state};
    *state = ns;
    lin_unlink(s->ev, ci);
    lin_unlink(s->ev, s->ev[ci].match);
    return 1;
}

static int lin_search_run(struct lin_search *s, uint64_t budget, uint64_t *steps)
{
    size_t known_left = 0;
    for (size_t i = 0; i < s->n; i++) {
        known_left += s->ops[s->idx[i]].known;
    }
    uint64_t state = LIN_ABSENT;
    size_t sp = 0;
    uint32_t cur = s->ev[0].next;
    while (known_left > 0) {
        if (++*steps > budget) {
            return LIN_UNKNOWN;
        }
        if (cur == LIN_NIL) {
            return LIN_VIOLATION; /* cannot happen: a known return is still linked */
        }
        if (!s->ev[cur].is_ret) {
            int rc = lin_try_call(s, cur, &state, &sp);
            if (rc < 0) {
                return rc;
            }
            if (rc == 1) {
                known_left -= s->ops[s->idx[s->ev[cur].op]].known;
                cur = s->ev[0].next;
            } else {
                cur = s->ev[cur].next;
            }
            continue;
        }
        /* A return whose call is not yet linearized: undo the last choice. */
        if (sp == 0) {
            return LIN_VIOLATION;
        }
        struct lin_frame f = s->stack[--sp];
        uint32_t op = s->ev[f.ev].op;
        s->bits[op / 64] &= ~(1ull << (op % 64));
        state = f.state;
        lin_relink(s->ev, s->ev[f.ev].match);
        lin_relink(s->ev, f.ev);
        known_left += s->ops[s->idx[op]].known;
        cur = s->ev[f.ev].next;
    }
    return LIN_OK;
}

/* Checks the sub-history idx[0..n) of one key. */
static int lin_check_subset(const struct lin_op *ops, const size_t *idx, size_t n, uint64_t budget,
                            uint64_t *steps)
{
    struct lin_search s = {.ops = ops, .idx = idx, .n = n};
    int rc = lin_search_init(&s);
    if (rc == 0) {
        lin_build_events(&s);
        rc = lin_search_run(&s, budget, steps);
    }
    lin_search_free(&s);
    return rc;
}

static const struct lin_op *lin_sort_ops;

static int lin_idx_cmp(const void *a, const void *b)
{
    const struct lin_op *x = &lin_sort_ops[*(const size_t *)a];
    const struct lin_op *y = &lin_sort_ops[*(const size_t *)b];
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    if (x->call_time != y->call_time) {
        return x->call_time < y->call_time ? -1 : 1;
    }
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* For each op of idx[0..n), the position of the write that produced the value it read
 * or expected (values are unique per write), or SIZE_MAX. */
static size_t *lin_deps(const struct lin_op *ops, const size_t *idx, size_t n)
{
    size_t *dep = malloc(n * sizeof(size_t));
    if (dep == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct lin_op *op = &ops[idx[i]];
        uint64_t v = op->kind == LIN_GET ? op->out : op->kind == LIN_CAS ? op->expect : 0;
        dep[i] = SIZE_MAX;
        for (size_t j = 0; j < n && v != LIN_ABSENT; j++) {
            const struct lin_op *w = &ops[idx[j]];
            if ((w->kind == LIN_PUT || w->kind == LIN_CAS) && w->arg == v && j != i) {
                dep[i] = j;
                break;
            }
        }
    }
    return dep;
}

/* Builds the trial subset: cur without positions [lo, hi), except writes that a kept op
 * depends on (dropping the write of a value read makes any history trivially fail and
 * hides the real problem). Returns the size, or 0 when nothing could be dropped. */
static size_t lin_trial(const size_t *cur, size_t n, const size_t *pos_dep, uint8_t *drop,
                        size_t lo, size_t hi, size_t *trial)
{
    for (size_t j = 0; j < n; j++) {
        drop[j] = j >= lo && j < hi;
    }
    for (size_t round = 0, changed = 1; changed && round < n; round++) {
        changed = 0;
        for (size_t j = 0; j < n; j++) {
            if (!drop[j] && pos_dep[j] != SIZE_MAX && drop[pos_dep[j]]) {
                drop[pos_dep[j]] = 0;
                changed = 1;
            }
        }
    }
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        if (!drop[j]) {
            trial[m++] = cur[j];
        }
    }
    return m < n ? m : 0;
}

/* Shrinks a failing subset to a 1-minimal one in the style of delta debugging: drop
 * chunks of halving size while the rest still fails. */
static size_t lin_minimize(const struct lin_op *ops, size_t *cur, size_t n, uint64_t budget,
                           uint64_t *steps)
{
    size_t *trial = malloc(n * sizeof(size_t));
    uint8_t *drop = malloc(n);
    size_t *dep = NULL;
    unsigned tries = 0;
    size_t n_pass = SIZE_MAX;
    /* The last size (1) repeats until nothing drops: a write kept because a read
     * depended on it can go once that read has gone. */
    for (size_t chunk = n / 2 ? n / 2 : 1;
         trial && drop && chunk >= 1 && n<n_pass; chunk = chunk> 1 ? chunk / 2 : 1) {
        size_t i = 0;
        n_pass = chunk == 1 ? n : SIZE_MAX;
        while (i < n && tries < LIN_MIN_TRIES_MAX) {
            free(dep);
            dep = lin_deps(ops, cur, n); /* positions shift as ops are dropped */
            if (dep == NULL) {
                break;
            }
            size_t end = i + chunk < n ? i + chunk : n;
            size_t m = lin_trial(cur, n, dep, drop, i, end, trial);
            tries++;
            if (m > 0 && lin_check_subset(ops, trial, m, budget, steps) == LIN_VIOLATION) {
                memcpy(cur, trial, m * sizeof(size_t));
                n = m;
            } else {
                i = end;
            }
        }
    }
    free(dep);
    free(trial);
    free(drop);
    return n;
}

static int lin_fail(struct lin_report *rep, const struct lin_op *ops, size_t *idx, size_t n,
                    uint64_t budget)
{
    rep->verdict = LIN_VIOLATION;
    rep->key = ops[idx[0]].key;
    rep->min_idx = malloc(n * sizeof(size_t));
    if (rep->min_idx == NULL) {
        return -ENOMEM;
    }
    memcpy(rep->min_idx, idx, n * sizeof(size_t));
    rep->n_min = lin_minimize(ops, rep->min_idx, n, budget, &rep->steps);
    return LIN_VIOLATION;
}

int lin_check(const struct lin_op *ops, size_t n, uint64_t budget, struct lin_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    budget = budget ? budget : LIN_BUDGET_DEFAULT;
    if (n == 0) {
        return LIN_OK;
    }
    size_t *idx = malloc(n * sizeof(size_t));
    if (idx == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    lin_sort_ops = ops;
    qsort(idx, n, sizeof(size_t), lin_idx_cmp);
    int result = LIN_OK;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo; hi < n && ops[idx[hi]].key == ops[idx[lo]].key; hi++) {
        }
        int rc = lin_check_subset(ops, &idx[lo], hi - lo, budget, &rep->steps);
        if (rc == LIN_VIOLATION) {
            result = lin_fail(rep, ops, &idx[lo], hi - lo, budget);
            break;
        }
        if (rc < 0) {
            result = rc;
            break;
        }
        if (rc == LIN_UNKNOWN && result == LIN_OK) {
            result = LIN_UNKNOWN;
            rep->key = ops[idx[lo]].key;
        }
    }
    if (result >= 0) {
        rep->verdict = (enum lin_verdict)result;
    }
    free(idx);
    return result;
}

void lin_report_free(struct lin_report *rep)
{
    free(rep->min_idx);
    rep->min_idx = NULL;
    rep->n_min = 0;
}

static const char *lin_status_name(uint8_t st)
{
    static const char *names[] = {"OK", "NOT_FOUND", "MISMATCH"};
    return st < 3 ? names[st] : "?";
}

void lin_print_op(FILE *f, const struct lin_op *op)
{
    static const char *kinds[] = {"?", "put", "get", "del", "cas"};
    const char *k = op->kind <= LIN_CAS ? kinds[op->kind] : "?";
    fprintf(f, "[%" PRIu64 " .. ", op->call_time);
    if (op->known) {
        fprintf(f, "%" PRIu64 "]", op->ret_time);
    } else {
        fprintf(f, "pending]");
    }
    fprintf(f, " client %u %s(k%" PRIu64, op->client, k, op->key);
    if (op->kind == LIN_PUT) {
        fprintf(f, ", %" PRIu64 ")", op->arg);
    } else if (op->kind == LIN_CAS) {
        fprintf(f, ", %" PRIu64 " -> %" PRIu64 ")", op->expect, op->arg);
    } else {
        fprintf(f, ")");
    }
    if (!op->known) {
        fprintf(f, " -> unknown");
        return;
    }
    fprintf(f, " -> %s", lin_status_name(op->status));
    if (op->kind == LIN_GET && op->status == LIN_ST_OK) {
        fprintf(f, " %" PRIu64, op->out);
    }
}

void lin_print(FILE *f, const struct lin_op *ops, const struct lin_report *rep)
{
    fprintf(f, "minimal non-linearizable history of key %" PRIu64 " (%zu ops):\n", rep->key,
            rep->n_min);
    /* min_idx is ordered by invocation time already (sorted before the search). */
    for (size_t i = 0; i < rep->n_min; i++) {
        fprintf(f, "  ");
        lin_print_op(f, &ops[rep->min_idx[i]]);
        fprintf(f, "\n");
    }
}
