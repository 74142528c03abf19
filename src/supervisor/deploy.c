/* The deploy cycle (deploy.h), PM2's deploy with one change: each deploy is
 * a new release folder, path/releases/<UTC time>-<commit>, exported from
 * path/source with git archive, and path/current is a symlink switched with
 * rename(2) (a temporary link renamed over it). PM2 updates path/source in
 * place, so a deploy is half-done while git checks out and a revert has to
 * check out again; here the old release stays whole, current switches in one
 * step and revert is a switch back. Deploys are recorded in path/.deploys.
 * History (revert, list) is in deploy_history.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "colony/error.h"
#include "supervisor/deploy.h"
#include "supervisor/deploy_steps.h"

/* ---- building scripts: every value goes through the quoting ---- */

int colony__sup_script_add(colony_buf *b, const char *fmt, ...)
{
    /* %s inserts its argument quoted; %% a '%'; everything else is literal. */
    va_list ap;
    va_start(ap, fmt);
    int rc = 0;
    for (const char *p = fmt; !rc && *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            rc = colony__sup_shell_quote(b, va_arg(ap, const char *));
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            rc = colony_buf_append(b, "%", 1);
            p++;
        } else {
            rc = colony_buf_append(b, p, 1);
        }
    }
    va_end(ap);
    return rc;
}

/* The last non-empty line of a stderr tail, for the one-line error. */
static void last_line(const char *tail, char *out, size_t size)
{
    size_t n = strlen(tail);
    while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    size_t start = n;
    while (start && tail[start - 1] != '\n')
        start--;
    snprintf(out, size, "%.*s", (int)(n - start), tail + start);
}

int colony__sup_step(const sup_deploy_env *d, const char *host, const char *what,
                     const colony_buf *script, char *capture, size_t capture_size)
{
    sup_run_result res;
    int rc = colony__sup_deploy_remote(d, host, script->data ? script->data : "", capture,
                                       capture_size, &res);
    if (rc) {
        fprintf(stderr, "colony deploy: %s: %s: cannot run ssh: %s\n", host, what,
                colony_strerror(rc));
        return 1;
    }
    if (res.status == 0) return 0;
    char line[300];
    last_line(res.tail, line, sizeof(line));
    if (res.status == 255)
        fprintf(stderr, "colony deploy: %s: %s: ssh failed (exit 255)%s%s\n", host, what,
                *line ? ": " : "", line);
    else
        fprintf(stderr, "colony deploy: %s: %s failed (exit %d)%s%s\n", host, what, res.status,
                *line ? ": " : "", line);
    return 1;
}

/* A hook of the file run on host: cd into dir, SHARED set as PM2 sets it. */
int colony__sup_hook(const sup_deploy_env *d, const char *host, const char *name,
                     const char *hook, const char *dir)
{
    if (!hook) return 0;
    printf("--> %s: %s: %s\n", host, name, hook);
    colony_buf s;
    colony_buf_init(&s, 1024 * 1024);
    char shared[4200];
    snprintf(shared, sizeof(shared), "%s/shared", d->path);
    int rc = colony__sup_script_add(&s, "SHARED=%s; export SHARED\ncd %s || exit 1\n", shared, dir);
    if (!rc) rc = colony_buf_append_str(&s, hook);
    if (rc) {
        colony_buf_free(&s);
        fprintf(stderr, "colony deploy: %s: %s\n", name, colony_strerror(rc));
        return 1;
    }
    rc = colony__sup_step(d, host, name, &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

/* Points path/current at target (absolute), or removes it when target is
 * empty: a new link under a temporary name renamed over current (mv -T is
 * rename(2)), so current is always the old release or the new one. */
int colony__sup_switch(const sup_deploy_env *d, const char *host, const char *target)
{
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(&s, "set -e\ncd %s\n", d->path);
    if (!rc && *target)
        rc = colony__sup_script_add(&s,
                                    "ln -s %s .current.$$\n"
                                    "mv -T .current.$$ current\n",
                                    target);
    else if (!rc)
        rc = colony_buf_append_str(&s, "rm -f current\n");
    rc = rc ? 1 : colony__sup_step(d, host, "switching current", &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

/* Appends one line to path/.deploys: time, action, release, commit, ref. */
int colony__sup_record(const sup_deploy_env *d, const char *host, const char *action,
                       const char *release, const char *sha)
{
    char stamp[32], line[600];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    snprintf(line, sizeof(line), "%s %s %s %s %s", stamp, action, release, sha, d->ref);
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(&s, "printf '%%s\\n' %s >> %s/.deploys\n", line, d->path);
    rc = rc ? 1 : colony__sup_step(d, host, "recording the deploy", &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

/* ---- setup ---- */

static int setup(const sup_deploy_env *d, const char *host)
{
    if (colony__sup_hook(d, host, "pre-setup", d->pre_setup, "."))
        return 1; /* PM2 runs it in the login folder */
    printf("--> %s: cloning %s into %s/source\n", host, d->repo, d->path);
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(&s,
                                    "set -e\ncd %s 2>/dev/null || mkdir -p %s\ncd %s\n"
                                    "mkdir -p shared releases\n"
                                    "if [ -d source/.git ]; then\n"
                                    "  echo 'source/ is there already: fetching' >&2\n"
                                    "  git -C source fetch --quiet --all --tags\n"
                                    "else\n"
                                    "  git clone --quiet -- %s source\n"
                                    "fi\n",
                                    d->path, d->path, d->path, d->repo);
    rc = rc ? 1 : colony__sup_step(d, host, "setup", &s, NULL, 0);
    colony_buf_free(&s);
    if (rc) return 1;
    char source[4200];
    snprintf(source, sizeof(source), "%s/source", d->path);
    if (colony__sup_hook(d, host, "post-setup", d->post_setup, source)) return 1;
    printf("--> %s: setup done\n", host);
    return 0;
}

/* ---- update: fetch, export a release, switch, post-deploy, record ---- */

/* Fetches and resolves ref on host into sha (40 hex digits). */
static int resolve_ref(const sup_deploy_env *d, const char *host, char sha[64])
{
    char spec[600];
    snprintf(spec, sizeof(spec), "%s^{commit}", d->ref);
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(
        &s,
        "cd %s/source 2>/dev/null || { echo 'no source/ folder: run setup first' >&2; exit 2; }\n"
        "git fetch --quiet --all --tags || exit 3\n"
        "git rev-parse --verify --quiet %s || { echo 'ref '%s' not found in the repository' >&2; "
        "exit 4; }\n",
        d->path, spec, d->ref);
    char out[200];
    rc = rc ? 1 : colony__sup_step(d, host, "fetching the ref", &s, out, sizeof(out));
    colony_buf_free(&s);
    if (rc) return 1;
    size_t n = strspn(out, "0123456789abcdef");
    if (n < 40 || n >= 64) {
        fprintf(stderr, "colony deploy: %s: git rev-parse gave no commit for %s\n", host, d->ref);
        return 1;
    }
    memcpy(sha, out, n);
    sha[n] = '\0';
    return 0;
}

/* Exports sha into a new release folder; prints its name and what current
 * was (empty when none) into out as two lines. */
static int make_release(const sup_deploy_env *d, const char *host, const char *sha, char *out,
                        size_t size)
{
    char name[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(name, sizeof(name), "%Y%m%d-%H%M%S-", gmtime_r(&now, &tm));
    snprintf(name + strlen(name), sizeof(name) - strlen(name), "%.12s", sha);
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(
        &s,
        "set -e\ncd %s\nmkdir -p releases\nn=%s; i=1\n"
        "while [ -e \"releases/$n\" ]; do i=$((i+1)); n=%s.$i; done\n"
        "rm -rf \"releases/.$n\"; mkdir \"releases/.$n\"\n"
        "git -C source archive --format=tar %s > \"releases/.$n.tar\"\n"
        "tar -xf \"releases/.$n.tar\" -C \"releases/.$n\"; rm -f \"releases/.$n.tar\"\n"
        "echo %s > \"releases/.$n/REVISION\"\n"
        "mv \"releases/.$n\" \"releases/$n\"\n"
        "echo \"$n\"; readlink current || echo\n",
        d->path, name, name, sha, sha);
    rc = rc ? 1 : colony__sup_step(d, host, "making the release", &s, out, size);
    colony_buf_free(&s);
    return rc;
}

static int remove_release(const sup_deploy_env *d, const char *host, const char *release)
{
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(&s, "cd %s/releases && rm -rf -- %s\n", d->path, release);
    rc = rc ? 1 : colony__sup_step(d, host, "removing the failed release", &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

/* Runs post-deploy in the new current; if it fails, current goes back to
 * prev (the deploy did not happen). */
int colony__sup_post_switch(const sup_deploy_env *d, const char *host, const char *prev)
{
    char current[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    if (!colony__sup_hook(d, host, "post-deploy", d->post_deploy, current)) return 0;
    if (colony__sup_switch(d, host, prev)) return 1;
    fprintf(stderr, "colony deploy: %s: current is back at %s\n", host, *prev ? prev : "(none)");
    return 1;
}

static int update(const sup_deploy_env *d, const char *host)
{
    char current[4200], source[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    snprintf(source, sizeof(source), "%s/source", d->path);
    /* Before the first deploy there is no current: pre-deploy runs in source. */
    if (d->pre_deploy) {
        char dir[4300];
        snprintf(dir, sizeof(dir), "%s", current);
        colony_buf probe;
        colony_buf_init(&probe, 64 * 1024);
        char out[8] = "";
        int rc = colony__sup_script_add(&probe, "[ -d %s ] && echo y || echo n\n", current);
        rc = rc ? 1 : colony__sup_step(d, host, "looking for current", &probe, out, sizeof(out));
        colony_buf_free(&probe);
        if (rc) return 1;
        if (out[0] != 'y') snprintf(dir, sizeof(dir), "%s", source);
        if (colony__sup_hook(d, host, "pre-deploy", d->pre_deploy, dir)) return 1;
    }
    printf("--> %s: fetching %s\n", host, d->ref);
    char sha[64];
    if (resolve_ref(d, host, sha)) return 1;
    char out[4400] = "", release[200], prev[4200] = "";
    if (make_release(d, host, sha, out, sizeof(out))) return 1;
    if (sscanf(out, "%199[^\n]\n%4199[^\n]", release, prev) < 1) {
        fprintf(stderr, "colony deploy: %s: no release name came back\n", host);
        return 1;
    }
    char target[4500];
    snprintf(target, sizeof(target), "%s/releases/%s", d->path, release);
    printf("--> %s: releases/%s (%.12s): switching current\n", host, release, sha);
    if (colony__sup_switch(d, host, target)) return 1;
    if (colony__sup_post_switch(d, host, prev)) {
        remove_release(d, host, release);
        return 1;
    }
    if (colony__sup_record(d, host, "deploy", release, sha)) return 1;
    printf("--> %s: deployed %s (%.12s)\n", host, d->ref, sha);
    return 0;
}

static int exec_cmd(const sup_deploy_env *d, const char *host, const char *cmd)
{
    char current[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    return colony__sup_hook(d, host, "exec", cmd, current);
}

int colony__sup_deploy_run(const sup_deploy_env *d, sup_deploy_action action, int revert_n,
                           const char *cmd)
{
    if (action == SUP_DEPLOY_UPDATE && d->pre_deploy_local) {
        printf("--> local: pre-deploy-local: %s\n", d->pre_deploy_local);
        char *argv[] = {"/bin/sh", "-c", d->pre_deploy_local, NULL};
        sup_run_result res;
        int rc = colony__sup_run_argv(argv, NULL, 0, &res);
        if (rc || res.status != 0) {
            fprintf(stderr, "colony deploy: pre-deploy-local failed (exit %d)\n", res.status);
            return 1;
        }
    }
    for (size_t i = 0; i < d->nhosts; i++) {
        const char *host = d->hosts[i];
        int rc = 1;
        switch (action) {
        case SUP_DEPLOY_SETUP: rc = setup(d, host); break;
        case SUP_DEPLOY_UPDATE: rc = update(d, host); break;
        case SUP_DEPLOY_REVERT: rc = colony__sup_revert(d, host, revert_n); break;
        case SUP_DEPLOY_LIST: rc = colony__sup_list(d, host); break;
        case SUP_DEPLOY_EXEC: rc = exec_cmd(d, host, cmd); break;
        }
        if (rc) return 1;
    }
    return 0;
}
