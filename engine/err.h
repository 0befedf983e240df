/* Error codes: an int result is 0 on success or negative on failure, either -errno
 * from the OS/DPDK/io_uring or one of the ORDO_E* codes below (outside errno's range). */
#ifndef ORDO_ENGINE_ERR_H
#define ORDO_ENGINE_ERR_H

#include <stddef.h>

#include "engine/api.h"

enum ordo_err {
    ORDO_EBASE = -10000,
    ORDO_EMALFORMED = -10001, /* a frame or record failed a structural check */
    ORDO_ETRUNCATED = -10002, /* input shorter than its declared length */
    ORDO_ETOOBIG = -10003,    /* input larger than a configured bound */
    ORDO_EBADMAGIC = -10004,  /* wrong magic number */
    ORDO_EVERSION = -10005,   /* unsupported protocol or format version */
    ORDO_EBADTYPE = -10006,   /* unknown message or record type */
    ORDO_EBADMAC = -10007,    /* MAC verification failed */
    ORDO_ECLUSTER = -10008,   /* message for another cluster */
    ORDO_ECHECKSUM = -10009,  /* IPv4/UDP checksum or CRC mismatch */
    ORDO_ECONFIG = -10010,    /* invalid configuration */
    ORDO_ENOSPACE = -10011,   /* a pool, ring or buffer is full (backpressure) */
    ORDO_ECORRUPT = -10012,   /* damaged durable state */
    ORDO_ESTOPPED = -10013,   /* the component stopped after an earlier fatal error */
    ORDO_ENOTLEADER = -10014, /* this replica does not lead */
    ORDO_EUNAUTH = -10015,    /* sender not authorised */
    ORDO_ENOTFOUND = -10016,  /* no such object */
    ORDO_EDIVERGED = -10017,  /* state digest differs from the majority */
    ORDO_ELAST = -10018,
};

/* Static string for any result code (negative errno or ORDO_E*); never NULL. */
ORDO_API const char *ordo_strerror(int err);

/* Error message buffer filled at boundaries (config, recovery, driver init). */
#define ORDO_ERRMSG_LEN 256
struct ordo_errmsg {
    char text[ORDO_ERRMSG_LEN];
};

/* printf-style: replaces the message. */
ORDO_API void ordo_errmsg_set(struct ordo_errmsg *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* printf-style: prefixes context to the current message ("ctx: old"). */
ORDO_API void ordo_errmsg_wrap(struct ordo_errmsg *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
