/* The state folder (./.colony by default): a pid file per instance and one
 * for the supervisor, each "PID STARTTIME" so that a pid the system has since
 * given to another process is never taken for ours. */
#ifndef COLONY_SUPERVISOR_PIDFILE_H
#define COLONY_SUPERVISOR_PIDFILE_H

/* Creates dir, dir/logs and dir/pids (mode 0700). 0 or a negative errno. */
int colony__sup_state_dir_init(const char *dir);
/* Records / forgets the pid of an instance (dir/pids/<app>-<i>.pid). */
int colony__sup_pidfile_write(const char *dir, const char *app, int index, int pid);
void colony__sup_pidfile_remove(const char *dir, const char *app, int index);
/* The pid of a live supervisor recorded in dir (0 if none), so that a second
 * one does not start over it. */
int colony__sup_running_supervisor(const char *dir);
/* Records this process as the supervisor of dir / forgets it. */
int colony__sup_claim(const char *dir);
void colony__sup_release(const char *dir);
/* Stops every instance a killed supervisor left behind: for each pid file
 * whose process still runs with the recorded start time, SIGTERM to its
 * group, SIGKILL after grace_ms; removes the files. Returns how many were
 * stopped. A pid reused by an unrelated process is left alone. */
int colony__sup_stop_leftovers(const char *dir, int grace_ms);

#endif
