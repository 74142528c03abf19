/* colony startup [systemd] [--user U] [-f FILE]: prints a systemd unit that
 * runs `colony up -f FILE` at boot, and how to install it (what
 * `pm2 startup` prints). It installs nothing itself. */
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/commands.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: colony startup [systemd] [--user USER] [-f FILE]\n\n"
                 "Prints a systemd unit that runs 'colony up -f FILE' (absolute) as USER at\n"
                 "boot, on stdout, and the commands to install it, on stderr. Installs\n"
                 "nothing. The unit: Type=simple (colony up stays in the foreground),\n"
                 "Restart=on-failure, WorkingDirectory = FILE's folder (its .colony state\n"
                 "folder), LimitNOFILE=65536, KillMode=mixed (SIGTERM to colony up alone: it\n"
                 "stops its apps, dependents first; whatever is left then gets SIGKILL).\n\n"
                 "  systemd          the init system (the only one supported)\n"
                 "  -u, --user USER  the account to run as (default: the current one)\n"
                 "  -f, --file FILE  the ecosystem file (default: colony.json, ecosystem.json\n"
                 "                   or ecosystem.config.json in this folder)\n");
}

/* A value with systemd's specifiers escaped: %% is a literal %. */
static void print_specifiers(const char *s)
{
    for (; *s; s++) {
        if (*s == '%') putchar('%');
        putchar(*s);
    }
}

/* systemd's own quoting for one word of ExecStart= / Environment=. */
static void print_quoted(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if (*s == '%') putchar('%'); /* %% is a literal % in unit files */
        if (*s == '$') putchar('$'); /* $$ is a literal $ (ExecStart= expands $VAR) */
        putchar(*s);
    }
    putchar('"');
}

static const char *default_file(void)
{
    static const char *const names[] = {"colony.json", "ecosystem.json", "ecosystem.config.json"};
    for (size_t i = 0; i < 3; i++)
        if (access(names[i], F_OK) == 0) return names[i];
    return NULL;
}

static int has_newline(const char *s)
{
    return strchr(s, '\n') != NULL || strchr(s, '\r') != NULL;
}

int colony_cli_startup(int argc, char **argv)
{
    const char *user = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "systemd") == 0) {
            continue;
        } else if ((strcmp(a, "-u") == 0 || strcmp(a, "--user") == 0) && i + 1 < argc) {
            user = argv[++i];
        } else if ((strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) && i + 1 < argc) {
            file = argv[++i];
        } else {
            fprintf(stderr,
                    "colony startup: unexpected argument '%s' (only systemd is supported)\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!file && !(file = default_file())) {
        fprintf(stderr, "colony startup: no colony.json or ecosystem.json here: give -f FILE\n");
        return 2;
    }
    char abs_file[PATH_MAX], exe[PATH_MAX];
    if (!realpath(file, abs_file)) {
        fprintf(stderr, "colony startup: %s: no such file\n", file);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "colony startup: cannot find this program's path (/proc/self/exe)\n");
        return 1;
    }
    exe[n] = '\0';
    struct passwd *pw = user ? getpwnam(user) : getpwuid(geteuid());
    if (!pw) {
        fprintf(stderr, "colony startup: no user '%s' on this machine\n", user ? user : "(me)");
        return 2;
    }
    const char *path = getenv("PATH");
    if (has_newline(abs_file) || has_newline(exe) || (path && has_newline(path))) {
        fprintf(stderr, "colony startup: a path holds a newline; a unit file cannot say it\n");
        return 2;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", abs_file);
    char *slash = strrchr(dir, '/');
    slash[slash == dir ? 1 : 0] = '\0';

    printf("[Unit]\n"
           "Description=Colony apps of %s (colony up)\n"
           "After=network-online.target\n"
           "Wants=network-online.target\n\n"
           "[Service]\n"
           "Type=simple\n"
           "User=%s\n"
           "WorkingDirectory=",
           abs_file, pw->pw_name);
    print_specifiers(dir); /* a path, taken whole: no quotes there */
    if (path) {
        char buf[PATH_MAX + 8];
        snprintf(buf, sizeof(buf), "PATH=%s", path);
        printf("\nEnvironment=");
        print_quoted(buf);
    }
    printf("\nExecStart=");
    print_quoted(exe);
    printf(" up -f ");
    print_quoted(abs_file);
    printf("\nRestart=on-failure\n"
           "RestartSec=2\n"
           "LimitNOFILE=65536\n"
           "KillMode=mixed\n"
           "TimeoutStopSec=60\n\n"
           "[Install]\n"
           "WantedBy=multi-user.target\n");
    fprintf(stderr,
            "# To start Colony at boot, as root:\n"
            "#   %s startup systemd --user %s -f %s > /etc/systemd/system/colony-%s.service\n"
            "#   systemctl daemon-reload\n"
            "#   systemctl enable --now colony-%s.service\n",
            exe, pw->pw_name, abs_file, pw->pw_name, pw->pw_name);
    return 0;
}
