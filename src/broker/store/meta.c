/* What the delivery engine keeps in the store besides entries and groups: an
 * entry's metadata section (an odd last string, which views do not show) and
 * small side files in a stream's directory (policies), each replaced
 * atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "core/read_file.h"

const char *colony__bstream_name(const colony__bstream *st)
{
    return st->name;
}

uint64_t colony__bstream_length(const colony__bstream *st)
{
    return st->length;
}

int colony__bstream_append_meta(colony__bstream *st, int id_mode, colony__bid id,
                                const colony__bstr *strs, size_t n, colony__bstr meta,
                                colony__bid *out)
{
    if (n % 2) return COLONY_EINVAL;
    if (!meta.len) return colony__bstream_append(st, id_mode, id, strs, n, out);
    colony__bstr *all = colony__malloc((n + 1) * sizeof(*all));
    if (!all) return COLONY_ENOMEM;
    if (n) memcpy(all, strs, n * sizeof(*all));
    all[n] = meta;
    int rc = colony__bstream_append(st, id_mode, id, all, n + 1, out);
    colony__free(all);
    return rc;
}

static int side_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (!len || len > 64 || strchr(name, '/') || name[0] == '.') return 0;
    return !(len >= 4 && (!strcmp(name + len - 4, ".seg") || !strcmp(name + len - 4, ".jnl")));
}

int colony__bstream_file_put(colony__bstream *st, const char *name, const void *data, size_t len)
{
    if (!side_name_ok(name)) return COLONY_EINVAL;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", st->dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    int rc = 0;
    size_t done = 0;
    while (!rc && done < len) {
        ssize_t k = write(fd, (const char *)data + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            rc = k < 0 ? -errno : COLONY_EIO;
        else
            done += (size_t)k;
    }
    if (!rc && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && !rc) rc = -errno;
    if (!rc && rename(tmp, path) != 0) rc = -errno;
    if (!rc) rc = colony__bdir_sync(st->dir);
    if (rc) unlink(tmp);
    return rc;
}

int colony__bstream_file_get(colony__bstream *st, const char *name, char **data, size_t *len)
{
    if (!side_name_ok(name)) return COLONY_EINVAL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", st->dir, name);
    return colony__read_file(path, (size_t)1 << 20, data, len); /* side files are small */
}
