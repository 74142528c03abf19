/* Shared fixture for the config tests: a settings table covering every type
 * and a temporary config folder. */
#ifndef COLONY_TEST_CONFIG_FIXTURE_H
#define COLONY_TEST_CONFIG_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"

static const colony_config_setting fixture_table[] = {
    {"http.port", COLONY_CONFIG_INT, "8080", 0, "TCP port to listen on", 1, 65535},
    {"http.host", COLONY_CONFIG_STRING, "127.0.0.1", 0, "address to bind", 0, 0},
    {"http.max_body_bytes", COLONY_CONFIG_SIZE, "1mb", 1, "largest request body", 0, 0},
    {"http.timeout", COLONY_CONFIG_DURATION, "5s", 1, "request timeout", 10, 600000},
    {"log.verbose", COLONY_CONFIG_BOOL, "false", 1, "debug logging", 0, 0},
    {"sampling.ratio", COLONY_CONFIG_DOUBLE, "0.5", 1, "trace sampling ratio", 0, 1},
    {"name", COLONY_CONFIG_STRING, NULL, 1, "instance name", 0, 0},
    {"gateway.rate-limit", COLONY_CONFIG_INT, "100", 1, "requests per second", 0, 0},
};
#define FIXTURE_N (sizeof fixture_table / sizeof fixture_table[0])

static inline void fixture_mkdir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/colony-config-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static inline void fixture_write(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static inline void fixture_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline colony_config_options fixture_options(const char *dir)
{
    colony_config_options o = {0};
    o.dir = dir;
    o.env = "development";
    return o;
}

#endif
