/* One process per data dir: an flock on DIR/NAME.lock that holds the
 * owner's pid, so a second daemon on the same dir is refused with the pid
 * of the one that has it. The lock goes with the process (kill -9 too). */
#ifndef COLONY_CORE_DIR_LOCK_H
#define COLONY_CORE_DIR_LOCK_H

#include <stddef.h>

/* Takes DIR/<owner>.lock ("registry", "broker"; the message names the owner
 * too). Returns an open fd (close it to release) or a negative code with msg
 * saying why: COLONY_EBUSY "data-dir DIR is in use by another <owner> (pid N
 * holds PATH)", or the error of open/flock/write. */
int colony__dir_lock(const char *dir, const char *owner, char *msg, size_t msg_size);

#endif
