#include "core/read_file.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"

/* Grows the buffer as it reads rather than trusting st_size: a file that
 * grows meanwhile (or a /proc file, size 0) still reads whole, up to max. */
static int read_all(int fd, size_t max, char **out, size_t *out_len)
{
    size_t cap = 4096, len = 0;
    char *buf = colony__malloc(cap);
    if (!buf) return COLONY_ENOMEM;
    for (;;) {
        if (len + 1 >= cap) {
            if (len > max) break;
            char *bigger = colony__realloc(buf, cap * 2);
            if (!bigger) {
                colony__free(buf);
                return COLONY_ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = -errno;
            colony__free(buf);
            return e;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    if (len > max) {
        colony__free(buf);
        return COLONY_E2BIG;
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len) *out_len = len;
    return 0;
}

int colony__read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (!rc) rc = read_all(fd, max, out, out_len);
    close(fd);
    return rc;
}
