/* Entry point of `colony up`, called by the CLI. */
#ifndef COLONY_SUPERVISOR_SUPERVISOR_H
#define COLONY_SUPERVISOR_SUPERVISOR_H

/* Runs the supervisor in the foreground with argv (argv[0] = "up"); returns
 * the exit code: 0 after everything stopped, 1 when it cannot start, 2 for a
 * bad ecosystem file or bad arguments. */
int colony_supervisor_up_main(int argc, char **argv);
/* colony deploy (deploy_main.c), argv[0] = "deploy": 0 done, 1 a step
 * failed, 2 bad arguments or a bad file. */
int colony_supervisor_deploy_main(int argc, char **argv);

#endif
