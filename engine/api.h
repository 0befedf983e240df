/* Export and attribute macros shared by every Ordo module.
 * Must stay free of any include beyond the C library. */
#ifndef ORDO_ENGINE_API_H
#define ORDO_ENGINE_API_H

/* Symbols of libordo are hidden by default (-fvisibility=hidden); ORDO_API exports. */
#define ORDO_API __attribute__((visibility("default")))

#define ORDO_UNUSED __attribute__((unused))
#define ORDO_LIKELY(x) __builtin_expect(!!(x), 1)
#define ORDO_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ORDO_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
