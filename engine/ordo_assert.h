/* Two assertion levels (STYLE.md section 3). Never assert on outside input:
 * packets, disk bytes, config and requests are validated and counted instead. */
#ifndef ORDO_ENGINE_ORDO_ASSERT_H
#define ORDO_ENGINE_ORDO_ASSERT_H

#include "engine/api.h"

/* Prints file, line and expression to stderr and aborts: the replica fail-stops. */
ORDO_API __attribute__((noreturn)) void ordo_assert_fail(const char *expr, const char *file,
                                                         int line);

/* Always on; for cheap invariants. */
#define ORDO_ASSERT(expr)                                                                          \
    do {                                                                                           \
        if (ORDO_UNLIKELY(!(expr))) {                                                              \
            ordo_assert_fail(#expr, __FILE__, __LINE__);                                           \
        }                                                                                          \
    } while (0)

/* Expensive checks, compiled only with -Ddebug_checks=true. */
#ifdef ORDO_DEBUG
#define ORDO_DEBUG_ASSERT(expr) ORDO_ASSERT(expr)
#else
#define ORDO_DEBUG_ASSERT(expr)                                                                    \
    do {                                                                                           \
        (void)sizeof(expr);                                                                        \
    } while (0)
#endif

#endif
