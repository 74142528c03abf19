/* The remote steps deploy.c shares with deploy_history.c (revert, list).
 * Each returns 0, or 1 after printing what failed on which host. Internal. */
#ifndef COLONY_SUPERVISOR_DEPLOY_STEPS_H
#define COLONY_SUPERVISOR_DEPLOY_STEPS_H

#include "colony/buf.h"
#include "supervisor/deploy.h"

/* Appends fmt to b; each %s inserts its string argument shell-quoted, %% is
 * a '%'. 0 or COLONY_E2BIG / COLONY_ENOMEM. */
int colony__sup_script_add(colony_buf *b, const char *fmt, ...);
/* Runs script on host; what names the step in the error (with the exit
 * status and the last line of its stderr). */
int colony__sup_step(const sup_deploy_env *d, const char *host, const char *what,
                     const colony_buf *script, char *capture, size_t capture_size);
/* Runs hook (a shell command of the file, NULL = none) in dir on host. */
int colony__sup_hook(const sup_deploy_env *d, const char *host, const char *name,
                     const char *hook, const char *dir);
/* Points path/current at target atomically ("" removes it). */
int colony__sup_switch(const sup_deploy_env *d, const char *host, const char *target);
/* Runs post-deploy in current; on failure switches current back to prev. */
int colony__sup_post_switch(const sup_deploy_env *d, const char *host, const char *prev);
/* Appends a line to path/.deploys. */
int colony__sup_record(const sup_deploy_env *d, const char *host, const char *action,
                       const char *release, const char *sha);
/* deploy_history.c */
int colony__sup_revert(const sup_deploy_env *d, const char *host, int n);
int colony__sup_list(const sup_deploy_env *d, const char *host);

#endif
