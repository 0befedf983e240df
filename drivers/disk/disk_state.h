/* Hard state file (term, vote): two checksummed slots written alternately, each made durable,
 * so that a crash at any byte of a write leaves the previous value readable. */
#ifndef ORDO_DRIVERS_DISK_DISK_STATE_H
#define ORDO_DRIVERS_DISK_DISK_STATE_H

#include <stdint.h>

#include "drivers/disk/disk.h"
#include "engine/api.h"
#include "engine/err.h"

#define DISK_STATE_FILE "hardstate"
#define DISK_STATE_SLOT_LEN 32u
#define DISK_STATE_SLOT1_OFF 4096u /* a separate page and sector from slot 0 */

struct disk_state {
    int fd;
    uint64_t seq; /* sequence number of the newest valid slot */
    struct disk_hard_state hs;
};

/* Encodes one slot; pure (shared with the simulated twin and the tests). */
ORDO_API void disk_state_encode(uint8_t slot[DISK_STATE_SLOT_LEN], uint64_t seq,
                                const struct disk_hard_state *hs);
/* Returns 0 and fills *seq, *hs when the slot is valid; ORDO_ECHECKSUM otherwise. */
ORDO_API int disk_state_decode(const uint8_t slot[DISK_STATE_SLOT_LEN], uint64_t *seq,
                               struct disk_hard_state *hs);
/* Picks the newest valid of two slots. ORDO_ECORRUPT when neither is valid. */
ORDO_API int disk_state_pick(const uint8_t s0[DISK_STATE_SLOT_LEN],
                             const uint8_t s1[DISK_STATE_SLOT_LEN], uint64_t *seq,
                             struct disk_hard_state *hs);

/* Opens or creates the file under dirfd and loads it. Returns 0, -errno or ORDO_ECORRUPT
 * (err names the file). */
ORDO_API int disk_state_open(struct disk_state *st, int dirfd, struct ordo_errmsg *err);
/* Writes hs to the older slot and fdatasyncs it. Returns 0 or -errno. */
ORDO_API int disk_state_save(struct disk_state *st, const struct disk_hard_state *hs);
ORDO_API void disk_state_close(struct disk_state *st);

#endif
