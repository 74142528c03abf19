/* The data dir's lock (dir_lock.h). */
#include "core/dir_lock.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "colony/error.h"

/* Says which process holds the lock, from the pid it wrote. */
static void describe_holder(int fd, const char *dir, const char *owner, const char *path, char *msg,
                            size_t msg_size)
{
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    snprintf(msg, msg_size, "data-dir %s is in use by another %s (pid %s holds %s)", dir, owner,
             *pid ? pid : "unknown", path);
}

int colony__dir_lock(const char *dir, const char *owner, char *msg, size_t msg_size)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s.lock", dir, owner) >= (int)sizeof(path)) {
        snprintf(msg, msg_size, "data-dir %s: path too long", dir);
        return COLONY_E2BIG;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = -errno;
        snprintf(msg, msg_size, "cannot open %s: %s", path, colony_strerror(err));
        return err;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = -errno;
        if (err == -EWOULDBLOCK)
            describe_holder(fd, dir, owner, path, msg, msg_size);
        else
            snprintf(msg, msg_size, "cannot lock %s: %s", path, colony_strerror(err));
        close(fd);
        return err == -EWOULDBLOCK ? COLONY_EBUSY : err;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int err = -errno;
        snprintf(msg, msg_size, "cannot write %s: %s", path, colony_strerror(err));
        close(fd);
        return err;
    }
    return fd;
}
