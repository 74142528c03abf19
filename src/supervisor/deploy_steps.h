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
/* Runs hook (a shell command of the file, NULL = none) in dir (else alt_dir,
 * if given) on host, then after (script lines) if it succeeded. */
int colony__sup_hook(const sup_deploy_env *d, const char *host, const char *name, const char *hook,
                     const char *dir, const char *alt_dir, const colony_buf *after);
/* Appends script lines that point path/current at target atomically ("":
 * remove it), exit 6 if that fails. */
int colony__sup_switch_script(colony_buf *s, const sup_deploy_env *d, const char *target);
/* Appends script lines that add a line to path/.deploys. */
int colony__sup_record_script(colony_buf *s, const sup_deploy_env *d, const char *action,
                              const char *release, const char *sha);
/* Runs post-deploy in current and records action; if the hook fails,
 * switches current back to prev and removes drop (a folder, NULL = none). */
int colony__sup_post_switch(const sup_deploy_env *d, const char *host, const char *prev,
                            const char *action, const char *release, const char *sha,
                            const char *drop);
/* deploy_history.c */
int colony__sup_revert(const sup_deploy_env *d, const char *host, int n);
int colony__sup_list(const sup_deploy_env *d, const char *host);

#endif
