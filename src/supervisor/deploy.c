/* The deploy cycle (deploy.h), PM2's deploy with one change: each deploy is
 * a new release folder, path/releases/<UTC time>-<commit>, exported from
 * path/source with git archive, and path/current is a symlink switched with
 * rename(2) (a temporary link renamed over it). PM2 updates path/source in
 * place, so a deploy is half-done while git checks out and a revert has to
 * check out again; here the old release stays whole, current switches in one
 * step and revert is a switch back. Deploys are recorded in path/.deploys.
 * A deploy is one ssh session (deploy_steps.h); revert and list are in
 * deploy_history.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "colony/error.h"
#include "supervisor/deploy.h"
#include "supervisor/deploy_steps.h"

#define SCRIPT_MAX (2 * 1024 * 1024)

static int built(int rc)
{
    if (rc) fprintf(stderr, "colony deploy: %s\n", colony_strerror(rc));
    return rc;
}

/* pre-setup (where the session starts, as PM2); clone repo into source/
 * (or fetch, if it is there); shared/ and releases/; post-setup in source/. */
static int setup(const sup_deploy_env *d, const char *host)
{
    char source[4200], said[4400];
    snprintf(source, sizeof(source), "%s/source", d->path);
    snprintf(said, sizeof(said), "cloning %s into %s", d->repo, source);
    colony_buf s;
    colony_buf_init(&s, SCRIPT_MAX);
    int rc = colony__sup_script_begin(&s, d, host, 1);
    if (!rc) rc = colony__sup_script_hook(&s, "pre-setup", d->pre_setup, NULL, NULL);
    if (!rc)
        rc = colony__sup_script_add(
            &s,
            "step setup %s\n"
            "mkdir -p \"$colony_p/shared\" \"$colony_p/releases\" || exit 1\n"
            "if [ -d \"$colony_p/source/.git\" ]; then\n"
            "  echo 'source/ is there already: fetching'\n"
            "  git -C \"$colony_p/source\" fetch --quiet --all --tags || exit 3\n"
            "else\n"
            "  git clone --quiet -- %s \"$colony_p/source\" || exit 3\n"
            "fi\n",
            said, d->repo);
    if (!rc) rc = colony__sup_script_hook(&s, "post-setup", d->post_setup, source, NULL);
    if (!rc) rc = colony__sup_script_add(&s, "step done 'setup done'\n");
    char out[1024];
    rc = built(rc) ? 1 : colony__sup_session(d, host, &s, out, sizeof(out));
    colony_buf_free(&s);
    return rc;
}

/* pre-deploy; fetch and resolve ref; export its commit into a new release
 * folder; switch current; post-deploy (current switched back if it fails);
 * record. All in one session. */
static int update(const sup_deploy_env *d, const char *host)
{
    char current[4200], source[4200], spec[600], said[700], stamp[32];
    snprintf(current, sizeof(current), "%s/current", d->path);
    snprintf(source, sizeof(source), "%s/source", d->path);
    snprintf(spec, sizeof(spec), "%s^{commit}", d->ref);
    snprintf(said, sizeof(said), "fetching %s", d->ref);
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
    colony_buf s;
    colony_buf_init(&s, SCRIPT_MAX);
    int rc = colony__sup_script_begin(&s, d, host, 1);
    if (!rc)
        rc = colony__sup_script_add(
            &s, "step update\n"
                "[ -d \"$colony_p/source/.git\" ] || { echo \"no $colony_p/source: run setup "
                "first\"; exit 2; }\n");
    /* Before the first deploy there is no current: pre-deploy runs in source. */
    if (!rc) rc = colony__sup_script_hook(&s, "pre-deploy", d->pre_deploy, current, source);
    if (!rc)
        rc = colony__sup_script_add(
            &s,
            "step fetch %s\n"
            "cd \"$colony_p/source\" && git fetch --quiet --all --tags || exit 3\n"
            "colony_sha=$(git rev-parse --verify --quiet %s) ||\n"
            "  { echo 'ref '%s' not found in the repository'; exit 4; }\n"
            "step release \"exporting $colony_sha\"\n"
            "cd \"$colony_p\" && mkdir -p releases || exit 1\n"
            "colony_n=%s-$(printf %%s \"$colony_sha\" | cut -c1-12); colony_base=$colony_n; "
            "colony_i=1\n"
            "while [ -e \"releases/$colony_n\" ]; do\n"
            "  colony_i=$((colony_i+1)); colony_n=$colony_base.$colony_i; done\n"
            "rm -rf \"releases/.$colony_n\" && mkdir \"releases/.$colony_n\" || exit 1\n"
            "git -C source archive --format=tar \"$colony_sha\" > \"releases/.$colony_n.tar\" &&\n"
            "  tar -xf \"releases/.$colony_n.tar\" -C \"releases/.$colony_n\" ||\n"
            "  { rm -rf \"releases/.$colony_n\" \"releases/.$colony_n.tar\"; exit 5; }\n"
            "rm -f \"releases/.$colony_n.tar\"\n"
            "printf '%%s\\n' \"$colony_sha\" > \"releases/.$colony_n/REVISION\" &&\n"
            "  mv \"releases/.$colony_n\" \"releases/$colony_n\" || exit 1\n"
            "colony_target=\"$colony_p/releases/$colony_n\"; colony_ref=%s\n",
            said, spec, d->ref, stamp, d->ref);
    if (!rc) rc = colony__sup_script_switch(&s, d, "deploy", 1);
    char out[4096] = "";
    rc = built(rc) ? 1 : colony__sup_session(d, host, &s, out, sizeof(out));
    colony_buf_free(&s);
    if (rc) return 1;
    char release[300] = "", sha[80] = "";
    colony__sup_session_data(out, "release", release, sizeof(release));
    colony__sup_session_data(out, "sha", sha, sizeof(sha));
    fprintf(stderr, "--> %s: deployed %s (%.12s): current is releases/%s\n", host, d->ref, sha,
            release);
    return 0;
}

/* exec CMD: in current, its output the user's. */
static int exec_cmd(const sup_deploy_env *d, const char *host, const char *cmd)
{
    char current[4200];
    snprintf(current, sizeof(current), "%s/current", d->path);
    colony_buf s;
    colony_buf_init(&s, SCRIPT_MAX);
    int rc = colony__sup_script_begin(&s, d, host, 0);
    if (!rc) rc = colony__sup_script_hook(&s, "exec", cmd, current, NULL);
    rc = built(rc) ? 1 : colony__sup_session(d, host, &s, NULL, 0);
    colony_buf_free(&s);
    return rc;
}

int colony__sup_deploy_run(const sup_deploy_env *d, sup_deploy_action action, int revert_n,
                           const char *cmd)
{
    if (action == SUP_DEPLOY_UPDATE && d->pre_deploy_local) {
        fprintf(stderr, "--> local: pre-deploy-local: %s\n", d->pre_deploy_local);
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
