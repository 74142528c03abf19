/* SIGPIPE is the library's business: a peer that resets a connection while we
 * write to it must not kill the process (libuv writes with plain write(2)). */
#ifndef COLONY_HTTP_SIGPIPE_H
#define COLONY_HTTP_SIGPIPE_H

/* Once per process: sets SIGPIPE to SIG_IGN if its disposition is still
 * SIG_DFL (a program that installed its own handler or ignores it already is
 * left alone). Called when a server or a client is created. */
void colony__ignore_sigpipe(void);

#endif
