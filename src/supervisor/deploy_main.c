/* colony deploy FILE ENV [setup|update|revert [N]|list|exec CMD]: the
 * command line of PM2's `pm2 deploy` (deploy.h); the CLI's cmd_deploy.c
 * calls it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "supervisor/deploy.h"
#include "supervisor/supervisor.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: colony deploy FILE ENV [setup|update|revert [N]|list|exec CMD]\n\n"
                 "Deploys with the \"deploy\" section of an ecosystem file, as pm2 deploy does:\n"
                 "deploy.ENV gives user, host (one or an array), port, key, ssh_options, repo,\n"
                 "ref (origin/main), path, env and the hooks pre-setup, post-setup,\n"
                 "pre-deploy-local (run here), pre-deploy and post-deploy. Remote steps run\n"
                 "over ssh -o BatchMode=yes, host after host, stopping at the first failure.\n\n"
                 "  setup        pre-setup; clone repo into PATH/source; make PATH/shared and\n"
                 "               PATH/releases; post-setup (in PATH/source)\n"
                 "  update       (the default) pre-deploy-local; pre-deploy; fetch; export ref\n"
                 "               into PATH/releases/<time>-<commit>; switch PATH/current to it\n"
                 "               atomically; post-deploy in PATH/current (if it fails, current\n"
                 "               goes back); record it in PATH/.deploys\n"
                 "  revert [N]   switch current back N deploys (1); post-deploy; record it\n"
                 "  list         the deploys of PATH/.deploys, newest first; * marks current\n"
                 "  exec CMD     run CMD in PATH/current\n\n"
                 "Exit status: 0 done, 1 a step failed (the step, its exit status and the\n"
                 "last line of its stderr are printed), 2 bad arguments or a bad file.\n");
}

int colony_supervisor_deploy_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    const char *file = argv[1], *env = argv[2];
    const char *what = argc > 3 ? argv[3] : "update";
    sup_deploy_action action;
    int n = 1, extra = 0;
    const char *cmd = NULL;
    if (strcmp(what, "update") == 0) {
        action = SUP_DEPLOY_UPDATE;
    } else if (strcmp(what, "setup") == 0) {
        action = SUP_DEPLOY_SETUP;
    } else if (strcmp(what, "list") == 0) {
        action = SUP_DEPLOY_LIST;
    } else if (strcmp(what, "revert") == 0) {
        action = SUP_DEPLOY_REVERT;
        if (argc > 4) {
            char *end;
            long v = strtol(argv[4], &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "colony deploy: revert N: expected 1 to 1000, got '%s'\n", argv[4]);
                return 2;
            }
            n = (int)v;
            extra = 1;
        }
    } else if (strcmp(what, "exec") == 0 || strcmp(what, "run") == 0) {
        action = SUP_DEPLOY_EXEC;
        if (argc != 5) {
            fprintf(stderr, "colony deploy: exec takes one command (quote it)\n");
            return 2;
        }
        cmd = argv[4];
        extra = 1;
    } else {
        fprintf(stderr, "colony deploy: unknown action '%s' (see colony deploy --help)\n", what);
        return 2;
    }
    if (argc > 4 + extra) {
        fprintf(stderr, "colony deploy: unexpected argument '%s'\n", argv[4 + extra]);
        return 2;
    }
    sup_deploy_env d;
    colony_config_error err;
    int rc = colony__sup_deploy_load(file, env, &d, &err);
    if (rc) {
        char text[512];
        fprintf(stderr, "colony deploy: %s\n",
                colony_config_error_format(&err, text, sizeof(text)));
        return 2;
    }
    rc = colony__sup_deploy_run(&d, action, n, cmd);
    colony__sup_deploy_env_free(&d);
    return rc;
}
