/* The control API: HTTP on a Unix socket (mode 0600) in the state folder,
 * what `colony ps|stop|start|restart|logs|down` talk to. */
#ifndef COLONY_SUPERVISOR_CONTROL_H
#define COLONY_SUPERVISOR_CONTROL_H

#include "colony/http_server.h"
#include "supervisor/runtime.h"

typedef struct sup_control sup_control;
/* Called by POST /v1/down, after its answer is on its way. */
typedef void (*sup_down_cb)(void *ud);

/* Listens on dir/control.sock (a stale socket file is replaced). */
int colony__sup_control_start(sup *s, const char *dir, sup_down_cb down, void *ud,
                              sup_control **out);
/* Stops listening, removes the socket file; cb runs once closed, then it is freed. */
void colony__sup_control_close(sup_control *c, void (*cb)(void *ud), void *ud);

/* The last `lines` lines of each log file of app (NULL: every app), each file
 * under a "==> path <==" header, in a buffer the caller frees with colony__free. */
int colony__sup_logs_tail(const sup *s, const char *app, int lines, char **out, size_t *len);

#endif
