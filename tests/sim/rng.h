/* Seeded pseudo-random generator for the simulator (xoshiro256** seeded by splitmix64).
 * Every random choice of a run comes from here, so a seed replays a run exactly. */
#ifndef ORDO_TESTS_SIM_RNG_H
#define ORDO_TESTS_SIM_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* Seeds the generator; any seed (including 0) gives a valid, distinct stream. */
void rng_seed(struct rng *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n); n == 0 returns 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Uniform in [lo, hi]; requires lo <= hi. */
uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi);
/* True with probability per_million / 1e6. */
int rng_chance(struct rng *r, uint32_t per_million);
/* splitmix64 step: also used to derive independent sub-seeds. */
uint64_t rng_splitmix(uint64_t *state);

#endif
