/* The remote scripts of colony deploy, shared by deploy.c (setup, update,
 * exec) and deploy_history.c (revert, list); built and run by
 * deploy_script.c. One deploy is one ssh session: every new session costs a
 * login shell on the host (and its rc files), so the stages of a deploy run
 * in one script that announces each stage on a side channel (fd 3 -> ssh's
 * stdout: "step NAME", "data KEY VALUE") while everything else the script
 * and the hooks print goes to stderr and on to the user. Internal. */
#ifndef COLONY_SUPERVISOR_DEPLOY_STEPS_H
#define COLONY_SUPERVISOR_DEPLOY_STEPS_H

#include "colony/buf.h"
#include "supervisor/deploy.h"

/* Appends fmt to b; each %s inserts its string argument shell-quoted, %% is
 * a '%'. 0 or COLONY_E2BIG / COLONY_ENOMEM. */
int colony__sup_script_add(colony_buf *b, const char *fmt, ...);
/* Starts a script for host: colony_p (the path) and SHARED set, step()
 * defined; with protocol, stdout goes to stderr and fd 3 is the side
 * channel (else the script's stdout is the user's). */
int colony__sup_script_begin(colony_buf *s, const sup_deploy_env *d, const char *host,
                             int protocol);
/* Appends a stage running hook (NULL: nothing) in a subshell, in dir (else
 * alt_dir; dir NULL: where the session starts); a failing hook ends the
 * script with its exit status. */
int colony__sup_script_hook(colony_buf *s, const char *name, const char *hook, const char *dir,
                            const char *alt_dir);
/* Appends: current -> "$colony_target" (a new link renamed over it; exit 6
 * on failure), what it was in colony_prev; then post-deploy in current and,
 * if it fails, current back to colony_prev (and, with drop, the release
 * colony_n removed), exiting with the hook's status; then a .deploys line:
 * time, action, colony_n, colony_sha, colony_ref (the ref it came from). */
int colony__sup_script_switch(colony_buf *s, const sup_deploy_env *d, const char *action, int drop);
/* Runs s on host. 0, or 1 after printing the host, the stage that failed
 * (the last "step"), its exit status and the last line of its stderr. out
 * gets what the side channel said; with out NULL, the script's stdout is
 * the user's (and the failed stage is not named). */
int colony__sup_session(const sup_deploy_env *d, const char *host, const colony_buf *s, char *out,
                        size_t size);
/* The value of "data KEY VALUE" in a session's out, into buf; 0 or -1. */
int colony__sup_session_data(const char *out, const char *key, char *buf, size_t size);

/* deploy_history.c */
int colony__sup_revert(const sup_deploy_env *d, const char *host, int n);
int colony__sup_list(const sup_deploy_env *d, const char *host);

#endif
