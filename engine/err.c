/* Error strings and error-message buffers. Pure: formats text, nothing else. */
#include "engine/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ordo_assert.h"

static const char *const ordo_err_names[] = {
    [-(ORDO_EMALFORMED - ORDO_EBASE)] = "malformed input",
    [-(ORDO_ETRUNCATED - ORDO_EBASE)] = "truncated input",
    [-(ORDO_ETOOBIG - ORDO_EBASE)] = "input exceeds configured bound",
    [-(ORDO_EBADMAGIC - ORDO_EBASE)] = "bad magic number",
    [-(ORDO_EVERSION - ORDO_EBASE)] = "unsupported version",
    [-(ORDO_EBADTYPE - ORDO_EBASE)] = "unknown type",
    [-(ORDO_EBADMAC - ORDO_EBASE)] = "MAC verification failed",
    [-(ORDO_ECLUSTER - ORDO_EBASE)] = "wrong cluster id",
    [-(ORDO_ECHECKSUM - ORDO_EBASE)] = "checksum mismatch",
    [-(ORDO_ECONFIG - ORDO_EBASE)] = "invalid configuration",
    [-(ORDO_ENOSPACE - ORDO_EBASE)] = "no space (backpressure)",
    [-(ORDO_ECORRUPT - ORDO_EBASE)] = "corrupt durable state",
    [-(ORDO_ESTOPPED - ORDO_EBASE)] = "stopped after an earlier fatal error",
    [-(ORDO_ENOTLEADER - ORDO_EBASE)] = "not the leader",
    [-(ORDO_EUNAUTH - ORDO_EBASE)] = "not authorised",
    [-(ORDO_ENOTFOUND - ORDO_EBASE)] = "not found",
    [-(ORDO_EDIVERGED - ORDO_EBASE)] = "state diverged from the majority",
};

const char *ordo_strerror(int err)
{
    if (err == 0) {
        return "success";
    }
    if (err < ORDO_EBASE && err > ORDO_ELAST) {
        const char *s = ordo_err_names[-(err - ORDO_EBASE)];
        return s != NULL ? s : "unknown Ordo error";
    }
    if (err < 0 && err > -4096) {
        return strerror(-err);
    }
    return "unknown error";
}

void ordo_errmsg_set(struct ordo_errmsg *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
}

void ordo_errmsg_wrap(struct ordo_errmsg *e, const char *fmt, ...)
{
    char prefix[ORDO_ERRMSG_LEN];
    char old[ORDO_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->text, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* Keep the prefix whole and cut the old message if the two do not fit. */
    int n = snprintf(e->text, sizeof(e->text), "%s: ", prefix);
    if (n > 0 && (size_t)n < sizeof(e->text)) {
        size_t room = sizeof(e->text) - (size_t)n;
        memcpy(e->text + n, old, room - 1);
        e->text[sizeof(e->text) - 1] = '\0';
    }
}

void ordo_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "ordo: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
