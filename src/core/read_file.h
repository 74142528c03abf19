/* Reading a small file whole: config layers, the broker's side files
 * (policies, bindings). */
#ifndef COLONY_CORE_READ_FILE_H
#define COLONY_CORE_READ_FILE_H

#include <stddef.h>

/* Reads path into a NUL-terminated buffer (*out, freed with colony__free;
 * *out_len without the NUL, may be NULL). Errors: -errno from open/read
 * (ENOENT passes through so a caller can skip a missing file), -EISDIR,
 * COLONY_E2BIG past max bytes, COLONY_ENOMEM. */
int colony__read_file(const char *path, size_t max, char **out, size_t *out_len);

#endif
