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

/* A hook of the file run on host in dir (or alt_dir when dir is not there),
 * SHARED set as PM2 sets it; then the script after, if the hook succeeded
 * (both in one ssh connection). hook NULL runs only after. */
int colony__sup_hook(const sup_deploy_env *d, const char *host, const char *name, const char *hook,
                     const char *dir, const char *alt_dir, const colony_buf *after)
{
    if (!hook && (!after || !after->len)) return 0;
    if (hook) printf("--> %s: %s: %s\n", host, name, hook);
    colony_buf s;
    colony_buf_init(&s, 2 * 1024 * 1024);
    char shared[4200];
    snprintf(shared, sizeof(shared), "%s/shared", d->path);
    int rc = colony__sup_script_add(&s, "SHARED=%s; export SHARED\n", shared);
    if (!rc && alt_dir)
        rc = colony__sup_script_add(&s, "cd %s 2>/dev/null || cd %s || exit 1\n", dir, alt_dir);
    else if (!rc)
        rc = colony__sup_script_add(&s, "cd %s || exit 1\n", dir);
    /* A subshell: the hook's own exit (or exit N) ends only the hook. */
    if (!rc && hook) rc = colony__sup_script_add(&s, "(\n");
    if (!rc && hook) rc = colony_buf_append_str(&s, hook);
    if (!rc && hook) rc = colony__sup_script_add(&s, "\n) || exit $?\n");
    if (!rc && after && after->len) rc = colony_buf_append(&s, after->data, after->len);
    if (rc) {
        colony_buf_free(&s);
        fprintf(stderr, "colony deploy: %s: %s\n", name, colony_strerror(rc));
        return 1;
    }
    rc = colony__sup_step(d, host, hook ? name : "recording the deploy", &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

/* Script lines that point path/current at target (absolute), or remove it
 * when target is empty: a new link under a temporary name renamed over
 * current (mv -T is rename(2)), so current is always the old release or the
 * new one. */
int colony__sup_switch_script(colony_buf *s, const sup_deploy_env *d, const char *target)
{
    int rc = colony__sup_script_add(s, "cd %s || exit 1\n", d->path);
    if (!rc && *target)
        rc = colony__sup_script_add(s,
                                    "ln -s %s .current.$$ && mv -T .current.$$ current || "
                                    "{ rm -f .current.$$; exit 6; }\n",
                                    target);
    else if (!rc)
        rc = colony_buf_append_str(s, "rm -f current\n");
    return rc;
}

/* Script lines appending one line to path/.deploys: time, action, release,
 * commit, ref. */
int colony__sup_record_script(colony_buf *s, const sup_deploy_env *d, const char *action,
                              const char *release, const char *sha)
{
    char stamp[32], line[600];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    snprintf(line, sizeof(line), "%s %s %s %s %s", stamp, action, release, sha, d->ref);
    return colony__sup_script_add(s, "printf '%%s\\n' %s >> %s/.deploys || exit 1\n", line,
                                  d->path);
}

/* Runs post-deploy in the new current, then records the deploy; if the
 * hook fails, current goes back to prev and the release drop (if given) is
 * removed: the deploy did not happen. */
int colony__sup_post_switch(const sup_deploy_env *d, const char *host, const char *prev,
                            const char *action, const char *release, const char *sha,
                            const char *drop)
{
    char current[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    colony_buf rec;
    colony_buf_init(&rec, 64 * 1024);
    int rc = colony__sup_record_script(&rec, d, action, release, sha);
    if (!rc) rc = colony__sup_hook(d, host, "post-deploy", d->post_deploy, current, NULL, &rec);
    colony_buf_free(&rec);
    if (!rc) return 0;
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    rc = colony__sup_switch_script(&s, d, prev);
    if (!rc && drop) rc = colony__sup_script_add(&s, "rm -rf -- %s\n", drop);
    rc = rc ? 1 : colony__sup_step(d, host, "switching current back", &s, NULL, 0);
    colony_buf_free(&s);
    if (!rc)
        fprintf(stderr, "colony deploy: %s: current is back at %s\n", host,
                *prev ? prev : "(none: no deploy before)");
    return 1;
}

/* ---- setup ---- */

static int setup(const sup_deploy_env *d, const char *host)
{
    if (colony__sup_hook(d, host, "pre-setup", d->pre_setup, ".", NULL, NULL))
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
    if (colony__sup_hook(d, host, "post-setup", d->post_setup, source, NULL, NULL)) return 1;
    printf("--> %s: setup done\n", host);
    return 0;
}

/* ---- update: fetch, export a release, switch, post-deploy, record ---- */

/* Fetches ref, exports its commit into a new release folder and switches
 * current to it, in one connection. out gets three lines: the commit, the
 * release's name, what current was before ("" when none). */
static int release_and_switch(const sup_deploy_env *d, const char *host, char *out, size_t size)
{
    char spec[600], stamp[32];
    snprintf(spec, sizeof(spec), "%s^{commit}", d->ref);
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = colony__sup_script_add(
        &s,
        "cd %s/source 2>/dev/null || { echo 'no source/ folder: run setup first' >&2; exit 2; }\n"
        "git fetch --quiet --all --tags || exit 3\n"
        "sha=$(git rev-parse --verify --quiet %s) || "
        "{ echo 'ref '%s' not found in the repository' >&2; exit 4; }\n"
        "cd .. && mkdir -p releases || exit 1\n"
        "n=%s-$(echo \"$sha\" | cut -c1-12); base=$n; i=1\n"
        "while [ -e \"releases/$n\" ]; do i=$((i+1)); n=$base.$i; done\n"
        "rm -rf \"releases/.$n\" && mkdir \"releases/.$n\" || exit 1\n"
        "git -C source archive --format=tar \"$sha\" > \"releases/.$n.tar\" || exit 5\n"
        "tar -xf \"releases/.$n.tar\" -C \"releases/.$n\" || exit 5\n"
        "rm -f \"releases/.$n.tar\"; echo \"$sha\" > \"releases/.$n/REVISION\"\n"
        "mv \"releases/.$n\" \"releases/$n\" || exit 1\n"
        "prev=$(readlink current)\n"
        "ln -s \"$PWD/releases/$n\" .current.$$ && mv -T .current.$$ current || "
        "{ rm -f .current.$$; exit 6; }\n"
        "printf '%%s\\n%%s\\n%%s\\n' \"$sha\" \"$n\" \"$prev\"\n",
        d->path, spec, d->ref, stamp);
    rc = rc ? 1 : colony__sup_step(d, host, "update", &s, out, size);
    colony_buf_free(&s);
    return rc;
}

static int update(const sup_deploy_env *d, const char *host)
{
    char current[4200], source[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    snprintf(source, sizeof(source), "%s/source", d->path);
    /* Before the first deploy there is no current: pre-deploy runs in source. */
    if (colony__sup_hook(d, host, "pre-deploy", d->pre_deploy, current, source, NULL)) return 1;
    printf("--> %s: fetching %s, exporting it, switching current\n", host, d->ref);
    char out[4600] = "", sha[64] = "", release[200] = "", prev[4200] = "";
    if (release_and_switch(d, host, out, sizeof(out))) return 1;
    if (sscanf(out, "%63[0-9a-f]\n%199[^\n]\n%4199[^\n]", sha, release, prev) < 2) {
        fprintf(stderr, "colony deploy: %s: update: unexpected answer: %.200s\n", host, out);
        return 1;
    }
    char path[4500];
    snprintf(path, sizeof(path), "%s/releases/%s", d->path, release);
    printf("--> %s: current -> releases/%s\n", host, release);
    if (colony__sup_post_switch(d, host, prev, "deploy", release, sha, path)) return 1;
    printf("--> %s: deployed %s (%.12s)\n", host, d->ref, sha);
    return 0;
}

static int exec_cmd(const sup_deploy_env *d, const char *host, const char *cmd)
{
    char current[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    return colony__sup_hook(d, host, "exec", cmd, current, NULL, NULL);
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
        case SUP_DEPLOY_SETUP:
            rc = setup(d, host);
            break;
        case SUP_DEPLOY_UPDATE:
            rc = update(d, host);
            break;
        case SUP_DEPLOY_REVERT:
            rc = colony__sup_revert(d, host, revert_n);
            break;
        case SUP_DEPLOY_LIST:
            rc = colony__sup_list(d, host);
            break;
        case SUP_DEPLOY_EXEC:
            rc = exec_cmd(d, host, cmd);
            break;
        }
        if (rc) return 1;
    }
    return 0;
}
