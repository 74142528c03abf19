/* colony up (supervisor.h): read the file, stop what a killed supervisor left
 * behind, start everything, serve the control socket, stop it all on
 * SIGINT/SIGTERM or `colony down`. */
#include "supervisor/supervisor.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"
#include "supervisor/control.h"
#include "supervisor/pidfile.h"
#include "supervisor/runtime.h"

typedef struct up_state {
    uv_loop_t loop;
    sup *sup;
    sup_control *control;
    uv_signal_t sigint, sigterm, sighup;
    int stopping;
} up_state;

static void usage(FILE *out)
{
    fprintf(out, "usage: colony up [-f FILE] [--env NAME] [--state-dir DIR] [--check] [--quiet]\n\n"
                 "Starts every app of an ecosystem file (colony.json, or PM2's ecosystem.json)\n"
                 "in dependency order and supervises them in the foreground; Ctrl-C stops them\n"
                 "all, dependents first.\n\n"
                 "  -f, --file FILE    the file (default: colony.json, ecosystem.json or\n"
                 "                     ecosystem.config.json in this folder)\n"
                 "  --env NAME         apply each app's env_NAME over its env\n"
                 "  --state-dir DIR    pid files, logs and control.sock (default ./.colony,\n"
                 "                     or $COLONY_STATE_DIR)\n"
                 "  -d, --daemon       run in the background once started (output in\n"
                 "                     DIR/supervisor.log); stop it with 'colony down'\n"
                 "  --check            only read the file: exit 0 if good, 2 with the error\n"
                 "  -q, --quiet        do not copy the apps' output to this terminal\n");
}

static void on_warning(const char *file, int line, const char *key, const char *reason, void *ud)
{
    (void)ud;
    fprintf(stderr, "colony up: warning: %s:%d: %s: %s\n", file, line, key, reason);
}

static const char *default_file(void)
{
    static const char *const names[] = {"colony.json", "ecosystem.json", "ecosystem.config.json"};
    for (size_t i = 0; i < 3; i++)
        if (access(names[i], F_OK) == 0) return names[i];
    return NULL;
}

static void close_signals(up_state *u)
{
    uv_close((uv_handle_t *)&u->sigint, NULL);
    uv_close((uv_handle_t *)&u->sigterm, NULL);
    uv_close((uv_handle_t *)&u->sighup, NULL);
}

static void control_closed(void *ud)
{
    close_signals(ud);
}

static void all_stopped(sup *s, void *ud)
{
    (void)s;
    up_state *u = ud;
    fprintf(stderr, "colony up: every app stopped\n");
    if (u->control) {
        sup_control *c = u->control;
        u->control = NULL;
        colony__sup_control_close(c, control_closed, u);
        return;
    }
    close_signals(u);
}

static void begin_stop(void *ud)
{
    up_state *u = ud;
    if (u->stopping) return;
    u->stopping = 1;
    colony__sup_shutdown(u->sup, all_stopped, u);
}

static void on_signal(uv_signal_t *h, int signum)
{
    up_state *u = h->data;
    if (signum == SIGHUP) return; /* a closed terminal does not stop the apps */
    fprintf(stderr, "colony up: %s: stopping every app\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop(u);
}

static int absolute_dir(const char *dir, char *out, size_t size)
{
    if (dir[0] == '/') return snprintf(out, size, "%s", dir) < (int)size ? 0 : -1;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) return -1;
    return snprintf(out, size, "%s/%s", cwd, dir) < (int)size ? 0 : -1;
}

/* -d: the parent waits until the child's control socket is up, then exits
 * (returns 1 + its exit code); the child, in its own session with its output
 * in dir/supervisor.log, returns 0 and sets *ready_fd to write one byte to. */
static int daemonize(const char *dir, int *ready_fd)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "colony up: -d: %s\n", strerror(errno));
        return 2;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "colony up: -d: %s\n", strerror(errno));
        return 2;
    }
    char log[PATH_MAX + 32];
    snprintf(log, sizeof(log), "%s/supervisor.log", dir);
    if (pid > 0) {
        close(fds[1]);
        char byte;
        ssize_t n;
        do
            n = read(fds[0], &byte, 1);
        while (n < 0 && errno == EINTR);
        close(fds[0]);
        if (n == 1) {
            printf("colony up: running in the background, pid %d; output in %s; stop with "
                   "'colony down'\n",
                   (int)pid, log);
            return 1;
        }
        fprintf(stderr, "colony up: the supervisor did not start; see %s\n", log);
        return 2;
    }
    close(fds[0]);
    setsid();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null >= 0) dup2(null, STDIN_FILENO);
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
    }
    if (null > STDERR_FILENO) close(null);
    if (out > STDERR_FILENO) close(out);
    *ready_fd = fds[1];
    return 0;
}

int colony_supervisor_up_main(int argc, char **argv)
{
    const char *file = NULL, *env = NULL, *state = getenv("COLONY_STATE_DIR");
    int check = 0, quiet = 0, daemon = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(a, "--env") == 0 && i + 1 < argc)
            env = argv[++i];
        else if (strcmp(a, "--state-dir") == 0 && i + 1 < argc)
            state = argv[++i];
        else if (strcmp(a, "--check") == 0)
            check = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--daemon") == 0) {
            daemon = 1;
        } else {
            fprintf(stderr, "colony up: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!file && !(file = default_file())) {
        fprintf(stderr, "colony up: no colony.json, ecosystem.json or ecosystem.config.json "
                        "here; give one with -f FILE\n");
        return 2;
    }
    size_t flen = strlen(file);
    if ((flen > 3 && strcmp(file + flen - 3, ".js") == 0) ||
        (flen > 4 && strcmp(file + flen - 4, ".cjs") == 0)) {
        fprintf(stderr,
                "colony up: %s: JavaScript ecosystem files are not read; write it as "
                "JSON (ecosystem.json: the same apps, as a JSON object)\n",
                file);
        return 2;
    }
    sup_parse_options po = {.env_name = env, .warn = on_warning};
    sup_ecosystem eco;
    colony_config_error err;
    int rc = colony__sup_ecosystem_load(file, &po, &eco, &err);
    if (rc) {
        char text[800];
        fprintf(stderr, "colony up: %s\n", colony_config_error_format(&err, text, sizeof(text)));
        return rc == COLONY_EINVAL ? 2 : 1;
    }
    if (check) {
        printf("%s: %zu apps, good\n", file, eco.napps);
        colony__sup_ecosystem_free(&eco);
        return 0;
    }
    char dir[PATH_MAX];
    if (absolute_dir(state ? state : ".colony", dir, sizeof(dir)) != 0 ||
        (rc = colony__sup_state_dir_init(dir)) != 0) {
        fprintf(stderr, "colony up: cannot create the state folder %s: %s\n",
                state ? state : ".colony", strerror(rc ? -rc : ENAMETOOLONG));
        colony__sup_ecosystem_free(&eco);
        return 1;
    }
    int other = colony__sup_running_supervisor(dir);
    if (other) {
        fprintf(stderr,
                "colony up: a supervisor (pid %d) already runs with %s; 'colony down' "
                "first\n",
                other, dir);
        colony__sup_ecosystem_free(&eco);
        return 1;
    }
    int left = colony__sup_stop_leftovers(dir, 3000);
    if (left)
        fprintf(stderr,
                "colony up: stopped %d instance%s left by a supervisor that did not "
                "stop cleanly\n",
                left, left == 1 ? "" : "s");
    int ready_fd = -1;
    if (daemon && (rc = daemonize(dir, &ready_fd)) != 0) {
        colony__sup_ecosystem_free(&eco);
        return rc > 0 ? rc - 1 : 1; /* the parent's exit code, +1 */
    }
    colony__sup_claim(dir);

    up_state u;
    memset(&u, 0, sizeof(u));
    uv_loop_init(&u.loop);
    sup_options so = {.state_dir = dir, .echo = !quiet && !daemon};
    rc = colony__sup_new(&u.loop, &eco, &so, &u.sup);
    if (!rc) rc = colony__sup_control_start(u.sup, dir, begin_stop, &u, &u.control);
    if (rc) {
        fprintf(stderr, "colony up: cannot start: %s\n", colony_strerror(rc));
        colony__sup_ecosystem_free(&eco);
        if (u.sup) { /* close what was opened, then free */
            colony__sup_shutdown(u.sup, NULL, NULL);
            uv_run(&u.loop, UV_RUN_DEFAULT);
            colony__sup_free(u.sup);
        }
        uv_loop_close(&u.loop);
        colony__sup_release(dir);
        return 1;
    }
    uv_signal_init(&u.loop, &u.sigint);
    uv_signal_init(&u.loop, &u.sigterm);
    uv_signal_init(&u.loop, &u.sighup);
    u.sigint.data = u.sigterm.data = u.sighup.data = &u;
    uv_signal_start(&u.sigint, on_signal, SIGINT);
    uv_signal_start(&u.sigterm, on_signal, SIGTERM);
    uv_signal_start(&u.sighup, on_signal, SIGHUP);
    fprintf(stderr, "colony up: %zu apps from %s; state in %s (colony ps, colony down)\n",
            u.sup->napps, file, dir);
    colony__sup_start(u.sup);
    if (ready_fd >= 0) { /* the parent may go: the control socket answers */
        ssize_t w = write(ready_fd, "1", 1);
        (void)w;
        close(ready_fd);
    }
    uv_run(&u.loop, UV_RUN_DEFAULT);
    colony__sup_free(u.sup);
    rc = uv_loop_close(&u.loop);
    colony__sup_release(dir);
    return rc ? 1 : 0;
}
