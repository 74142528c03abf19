/* The standard process_* metrics every Prometheus client exposes, read from
 * /proc and getrusage at scrape time. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>
#include "kit/metrics/metrics_internal.h"

static double cpu_seconds(void *ud)
{
    (void)ud;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* /proc/self/statm: size and resident, in pages. */
static double statm_field(int index)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    return (double)(index == 0 ? size : resident) * (double)sysconf(_SC_PAGESIZE);
}

static double resident_bytes(void *ud)
{
    (void)ud;
    return statm_field(1);
}

static double virtual_bytes(void *ud)
{
    (void)ud;
    return statm_field(0);
}

static double open_fds(void *ud)
{
    (void)ud;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the descriptor opendir itself holds */
}

static double max_fds(void *ud)
{
    (void)ud;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    return rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
}

/* Process start in seconds since the epoch: boot time + starttime ticks. */
static double start_time(void *ud)
{
    static double cached;
    (void)ud;
    if (cached > 0) return cached;
    double btime = 0;
    char line[256];
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lf", &btime) == 1) break;
    fclose(f);
    f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 22 (starttime); skip past the command name, which may hold spaces. */
    char *p = strrchr(buf, ')');
    unsigned long long ticks = 0;
    if (!p) return 0;
    p += 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p || sscanf(p, "%llu", &ticks) != 1) return 0;
    cached = btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
    return cached;
}

int colony_metrics_register_process(colony_metrics *m)
{
    int rc = colony__metrics_fn(m, "process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.",
                                METRIC_COUNTER_FN, cpu_seconds, NULL);
    if (!rc)
        rc =
            colony__metrics_fn(m, "process_resident_memory_bytes", "Resident memory size in bytes.",
                               METRIC_GAUGE_FN, resident_bytes, NULL);
    if (!rc)
        rc = colony__metrics_fn(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                METRIC_GAUGE_FN, virtual_bytes, NULL);
    if (!rc)
        rc = colony__metrics_fn(m, "process_open_fds", "Number of open file descriptors.",
                                METRIC_GAUGE_FN, open_fds, NULL);
    if (!rc)
        rc = colony__metrics_fn(m, "process_max_fds", "Maximum number of open file descriptors.",
                                METRIC_GAUGE_FN, max_fds, NULL);
    if (!rc)
        rc = colony__metrics_fn(m, "process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                METRIC_GAUGE_FN, start_time, NULL);
    return rc;
}
