/* What the delivery engine keeps in the store besides entries and groups: an
 * entry's metadata section (an odd last string, which views do not show) and
 * small side files in a stream's directory (policies), each replaced
 * atomically. The HTTP API's idempotency key rides in the metadata too, so it
 * is exactly as durable as the entry it guards (docs/broker.md). */
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

/* The metadata's u64s are big-endian (delivery/publish.c writes them so). */
static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* meta followed by the idempotency key items into buf (room for
 * IDEM_META_MAX); its length, or 0 when they do not fit. */
#define IDEM_META_MAX (64 + COLONY__BMETA_KEY_MAX)
static size_t with_key(uint8_t *buf, colony__bstr meta, colony__bstr key, uint64_t count)
{
    size_t len = 0;
    if (key.len > COLONY__BMETA_KEY_MAX || meta.len > 40 || (meta.len && meta.data[0] != 'M'))
        return 0;
    if (meta.len) {
        memcpy(buf, meta.data, meta.len);
        len = meta.len;
    } else {
        buf[len++] = 'M';
    }
    buf[len++] = COLONY__BMETA_IDEM_COUNT;
    put_be64(buf + len, count);
    len += 8;
    buf[len++] = COLONY__BMETA_IDEM_KEY; /* last: the only item of variable length */
    put_be64(buf + len, key.len);
    len += 8;
    memcpy(buf + len, key.data, key.len);
    return len + key.len;
}

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
    uint8_t keyed[IDEM_META_MAX];
    if (st->idem_key.len) { /* set for this append only */
        size_t len = with_key(keyed, meta, st->idem_key, st->idem_count);
        st->idem_key = (colony__bstr){0};
        if (!len) return COLONY_EINVAL;
        meta = (colony__bstr){(const char *)keyed, len};
    }
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

void colony__bstream_idem_next(colony__bstream *st, colony__bstr key, uint64_t count)
{
    st->idem_key = key;
    st->idem_count = count;
}

int colony__bmeta_idem(colony__bstr meta, colony__bstr *key, uint64_t *count)
{
    const uint8_t *p = (const uint8_t *)meta.data;
    if (meta.len < 1 || p[0] != 'M') return 0;
    *count = 1;
    for (size_t i = 1; i + 9 <= meta.len; i += 9) {
        uint64_t v = get_be64(p + i + 1);
        if (p[i] == COLONY__BMETA_IDEM_COUNT) *count = v;
        if (p[i] == COLONY__BMETA_IDEM_KEY) {
            if (v == 0 || v > meta.len - i - 9) return 0;
            *key = (colony__bstr){meta.data + i + 9, (size_t)v};
            return 1;
        }
    }
    return 0;
}
