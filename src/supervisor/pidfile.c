/* Pid files and leftovers of a killed supervisor (pidfile.h). */
#include "supervisor/pidfile.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "supervisor/runtime.h"

int colony__sup_proc_starttime(int pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -EIO;
    buf[n] = '\0';
    /* After "(comm)" (which may hold spaces): state is field 3, starttime 22. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2]) return -EIO;
    if (p[2] == 'Z' || p[2] == 'X') return -ESRCH; /* dead, not yet reaped */
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return -EIO;
    }
    return sscanf(p + 1, "%" SCNu64, ticks) == 1 ? 0 : -EIO;
}

int colony__sup_proc_usage(int pid, uint64_t *cpu_ticks, uint64_t *rss_bytes)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    long long rss_pages;
    /* fields 14, 15 (utime, stime) and 24 (rss) */
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %*u %*u %lld",
                     &utime, &stime, &rss_pages) != 3)
        return -EIO;
    *cpu_ticks = utime + stime;
    *rss_bytes = rss_pages > 0 ? (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
    return 0;
}

static int mkdir_one(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) return 0;
    return -errno;
}

int colony__sup_state_dir_init(const char *dir)
{
    char path[PATH_MAX];
    int rc = mkdir_one(dir);
    snprintf(path, sizeof(path), "%s/logs", dir);
    if (!rc) rc = mkdir_one(path);
    snprintf(path, sizeof(path), "%s/pids", dir);
    if (!rc) rc = mkdir_one(path);
    return rc;
}

static int write_record(const char *path, int pid)
{
    uint64_t start = 0;
    int rc = colony__sup_proc_starttime(pid, &start);
    if (rc) return rc;
    char tmp[PATH_MAX + 8], text[64];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int len = snprintf(text, sizeof(text), "%d %" PRIu64 "\n", pid, start);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    ssize_t w = write(fd, text, (size_t)len);
    close(fd);
    if (w != len || rename(tmp, path) != 0) {
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

/* 1 if path records a process that still runs (same pid, same start time). */
static int read_record(const char *path, int *pid)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    uint64_t start = 0, now = 0;
    int ok = fscanf(f, "%d %" SCNu64, pid, &start) == 2;
    fclose(f);
    return ok && *pid > 1 && colony__sup_proc_starttime(*pid, &now) == 0 && now == start;
}

int colony__sup_pidfile_write(const char *dir, const char *app, int index, int pid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pids/%s-%d.pid", dir, app, index);
    return write_record(path, pid);
}

void colony__sup_pidfile_remove(const char *dir, const char *app, int index)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pids/%s-%d.pid", dir, app, index);
    unlink(path);
}

int colony__sup_running_supervisor(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
    int pid = 0;
    return read_record(path, &pid) && pid != getpid() ? pid : 0;
}

int colony__sup_claim(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
    return write_record(path, getpid());
}

void colony__sup_release(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/supervisor.pid", dir);
    unlink(path);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Signals pid's group when pid leads it (instances run in their own session), else pid. */
static void signal_instance(int pid, int sig)
{
    if (getpgid(pid) == pid)
        kill(-pid, sig);
    else
        kill(pid, sig);
}

int colony__sup_stop_leftovers(const char *dir, int grace_ms)
{
    char pids_dir[PATH_MAX];
    snprintf(pids_dir, sizeof(pids_dir), "%s/pids", dir);
    DIR *d = opendir(pids_dir);
    if (!d) return 0;
    int live[256], nlive = 0;
    uint64_t starts[256];
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0) continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", pids_dir, e->d_name);
        int pid = 0;
        if (read_record(path, &pid) && nlive < 256 && pid != getpid() &&
            colony__sup_proc_starttime(pid, &starts[nlive]) == 0) {
            live[nlive++] = pid;
            signal_instance(pid, SIGTERM);
        }
        unlink(path);
    }
    closedir(d);
    /* Wait for them (they are not our children: watch /proc), then SIGKILL. */
    for (int waited = 0; waited <= grace_ms; waited += 20) {
        int left = 0;
        for (int i = 0; i < nlive; i++) {
            uint64_t now;
            if (live[i] && colony__sup_proc_starttime(live[i], &now) == 0 && now == starts[i])
                left++;
        }
        if (!left) return nlive;
        sleep_ms(20);
    }
    for (int i = 0; i < nlive; i++) {
        uint64_t now;
        if (colony__sup_proc_starttime(live[i], &now) == 0 && now == starts[i])
            signal_instance(live[i], SIGKILL);
    }
    return nlive;
}
