/* Remote commands of colony deploy (deploy.h). Nothing goes through a local
 * shell: ssh is spawned with an argv, and the one string ssh hands to the
 * remote login shell is `sh -c '<script>'` with the script single-quoted, so
 * every value put in a script (paths, refs, env values) is quoted once, here,
 * by colony__sup_shell_quote. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "supervisor/deploy.h"

#define MAX_SCRIPT (1024 * 1024)

extern char **environ;

int colony__sup_shell_quote(colony_buf *b, const char *s)
{
    int rc = colony_buf_append(b, "'", 1);
    for (const char *p = s; !rc && *p; p++)
        rc = *p == '\'' ? colony_buf_append_str(b, "'\\''") : colony_buf_append(b, p, 1);
    return rc ? rc : colony_buf_append(b, "'", 1);
}

void colony__sup_deploy_argv_free(char **argv)
{
    if (!argv) return;
    for (char **p = argv; *p; p++)
        colony__free(*p);
    colony__free(argv);
}

/* The remote command: the env exported, then the script, all as one quoted
 * argument of sh -c. */
static int remote_command(const sup_deploy_env *d, const char *script, char **out)
{
    colony_buf body, cmd;
    colony_buf_init(&body, MAX_SCRIPT);
    colony_buf_init(&cmd, MAX_SCRIPT * 5);
    int rc = 0;
    for (size_t i = 0; !rc && i < d->nenv; i++) {
        const char *eq = strchr(d->env[i], '=');
        rc = colony_buf_appendf(&body, "%.*s=", (int)(eq - d->env[i]), d->env[i]);
        if (!rc) rc = colony__sup_shell_quote(&body, eq + 1);
        if (!rc)
            rc = colony_buf_appendf(&body, "; export %.*s\n", (int)(eq - d->env[i]), d->env[i]);
    }
    if (!rc) rc = colony_buf_append_str(&body, script);
    if (!rc) rc = colony_buf_append_str(&cmd, "sh -c ");
    if (!rc) rc = colony__sup_shell_quote(&cmd, body.data ? body.data : "");
    colony_buf_free(&body);
    if (rc) {
        colony_buf_free(&cmd);
        return rc;
    }
    *out = colony_buf_detach(&cmd, NULL);
    return 0;
}

static int push(char **argv, size_t *n, const char *s)
{
    return (argv[(*n)++] = colony__strdup(s)) ? 0 : COLONY_ENOMEM;
}

int colony__sup_deploy_ssh_argv(const sup_deploy_env *d, const char *host, const char *script,
                                char ***out)
{
    size_t max = 12 + 2 * d->nssh_options;
    char **argv = colony__calloc(max + 1, sizeof(char *));
    if (!argv) return COLONY_ENOMEM;
    size_t n = 0;
    char port[16];
    int rc = push(argv, &n, "ssh");
    if (!rc) rc = push(argv, &n, "-o");
    if (!rc) rc = push(argv, &n, "BatchMode=yes");
    if (!rc && d->port) {
        snprintf(port, sizeof(port), "%d", d->port);
        if (!(rc = push(argv, &n, "-p"))) rc = push(argv, &n, port);
    }
    if (!rc && d->key && !(rc = push(argv, &n, "-i"))) rc = push(argv, &n, d->key);
    for (size_t i = 0; !rc && i < d->nssh_options; i++)
        if (!(rc = push(argv, &n, "-o"))) rc = push(argv, &n, d->ssh_options[i]);
    if (!rc && d->user && !(rc = push(argv, &n, "-l"))) rc = push(argv, &n, d->user);
    if (!rc) rc = push(argv, &n, "--");
    if (!rc) rc = push(argv, &n, host);
    if (!rc) {
        char *cmd = NULL;
        rc = remote_command(d, script, &cmd);
        argv[n++] = cmd;
    }
    if (rc) {
        colony__sup_deploy_argv_free(argv);
        return rc;
    }
    *out = argv;
    return 0;
}

/* Keeps the last bytes of stderr in res->tail. */
static void keep_tail(sup_run_result *res, const char *data, size_t n)
{
    size_t cap = sizeof(res->tail) - 1, have = strlen(res->tail);
    if (n >= cap) {
        memcpy(res->tail, data + n - cap, cap);
        res->tail[cap] = '\0';
        return;
    }
    if (have + n > cap) {
        memmove(res->tail, res->tail + (have + n - cap), cap - n);
        have = cap - n;
    }
    memcpy(res->tail + have, data, n);
    res->tail[have + n] = '\0';
}

/* Reads the child's stdout (fds[0], -1 when it is not captured) and stderr
 * (fds[1]) until both close. */
static void drain(int fds[2], char *capture, size_t capture_size, sup_run_result *res)
{
    size_t got = 0;
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !p[i].revents) continue;
            char buf[4096];
            ssize_t n = read(fds[i], buf, sizeof(buf));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            if (i == 1) {
                keep_tail(res, buf, (size_t)n);
                fwrite(buf, 1, (size_t)n, stderr);
            } else if (got + 1 < capture_size) {
                size_t take =
                    (size_t)n < capture_size - 1 - got ? (size_t)n : capture_size - 1 - got;
                memcpy(capture + got, buf, take);
                got += take;
                capture[got] = '\0';
            }
        }
    }
}

int colony__sup_run_argv(char *const *argv, char *capture, size_t capture_size, sup_run_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = -1;
    if (capture && capture_size) capture[0] = '\0';
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2(err_pipe, O_CLOEXEC) < 0 || (capture && pipe2(out_pipe, O_CLOEXEC) < 0)) {
        int e = -errno;
        for (int i = 0; i < 2; i++) {
            if (err_pipe[i] >= 0) close(err_pipe[i]);
        }
        return e;
    }
    fflush(stdout);
    fflush(stderr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (capture) posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(err_pipe[1]);
    if (capture) close(out_pipe[1]);
    if (rc != 0) {
        close(err_pipe[0]);
        if (capture) close(out_pipe[0]);
        snprintf(res->tail, sizeof(res->tail), "cannot run %s: %s", argv[0], strerror(rc));
        return -rc;
    }
    int fds[2] = {capture ? out_pipe[0] : -1, err_pipe[0]};
    drain(fds, capture, capture_size, res);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -errno;
    res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

int colony__sup_deploy_remote(const sup_deploy_env *d, const char *host, const char *script,
                              char *capture, size_t capture_size, sup_run_result *res)
{
    char **argv;
    int rc = colony__sup_deploy_ssh_argv(d, host, script, &argv);
    if (rc) {
        memset(res, 0, sizeof(*res));
        res->status = -1;
        return rc;
    }
    rc = colony__sup_run_argv(argv, capture, capture_size, res);
    colony__sup_deploy_argv_free(argv);
    return rc;
}
