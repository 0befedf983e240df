/* xoshiro256** (Blackman and Vigna) seeded through splitmix64. Deterministic and
 * platform independent: never reads a clock or the OS entropy pool. */
#include "tests/sim/rng.h"

uint64_t rng_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = rng_splitmix(&st);
    }
}

static uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* Rejection sampling keeps the distribution exactly uniform. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    for (;;) {
        uint64_t x = rng_next(r);
        if (x < limit) {
            return x % n;
        }
    }
}

uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
    if (hi - lo == UINT64_MAX) {
        return rng_next(r);
    }
    return lo + rng_below(r, hi - lo + 1);
}

int rng_chance(struct rng *r, uint32_t per_million)
{
    return rng_below(r, 1000000) < per_million;
}
