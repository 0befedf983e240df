/* Unit tests of the shared core: error strings, error messages, allocation faults,
 * and the always-on assertion. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/err.h"
#include "engine/mem.h"
#include "engine/ordo_assert.h"

Test(err, names_every_ordo_code)
{
    for (int e = ORDO_EMALFORMED; e > ORDO_ELAST; e--) {
        const char *s = ordo_strerror(e);
        cr_assert_not_null(s);
        cr_assert_str_neq(s, "unknown Ordo error", "code %d has no name", e);
    }
}

Test(err, passes_errno_through)
{
    cr_assert_str_eq(ordo_strerror(-ENOSPC), strerror(ENOSPC));
    cr_assert_str_eq(ordo_strerror(0), "success");
    cr_assert_str_eq(ordo_strerror(-99999), "unknown error");
}

Test(err, wrap_prefixes_context)
{
    struct ordo_errmsg e;
    ordo_errmsg_set(&e, "CRC mismatch at offset %d", 4096);
    ordo_errmsg_wrap(&e, "segment %s", "00000001.log");
    cr_assert_str_eq(e.text, "segment 00000001.log: CRC mismatch at offset 4096");
}

Test(err, wrap_truncates_without_overflow)
{
    struct ordo_errmsg e;
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ordo_errmsg_set(&e, "%s", big);
    ordo_errmsg_wrap(&e, "ctx");
    cr_assert_eq(strlen(e.text), ORDO_ERRMSG_LEN - 1);
    cr_assert_eq(strncmp(e.text, "ctx: xxx", 8), 0);
}

Test(mem, fault_countdown_then_repeat)
{
    int64_t live = mem_live_count();
    mem_fault_set(2, 2);
    void *a = mem_alloc(8);
    void *b = mem_alloc(8);
    void *c = mem_alloc(8);
    void *d = mem_calloc(1, 8);
    void *e = mem_alloc(8);
    mem_fault_set(-1, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_null(c);
    cr_assert_null(d);
    cr_assert_not_null(e, "faults stop after the repeat count");
    cr_assert_eq(mem_live_count(), live + 3);
    mem_free(a);
    mem_free(b);
    mem_free(e);
    cr_assert_eq(mem_live_count(), live);
}

Test(ordo_assert, fires_on_false, .signal = SIGABRT)
{
    volatile int zero = 0;
    ORDO_ASSERT(zero == 1);
}

Test(ordo_assert, silent_on_true)
{
    volatile int one = 1;
    ORDO_ASSERT(one == 1);
}
