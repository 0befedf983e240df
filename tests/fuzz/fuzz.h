/* The libFuzzer entry point every fuzz target defines; replay.c drives it in ordinary
 * builds so checked-in corpora run as tests. */
#ifndef ORDO_TESTS_FUZZ_FUZZ_H
#define ORDO_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Must accept any bytes; aborts (a finding) only when an invariant of the target breaks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
