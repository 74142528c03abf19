/* Ignoring SIGPIPE once per process; see sigpipe.h. */
#include "http/sigpipe.h"
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void ignore_if_default(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) != 0) return;
    if (old.sa_flags & SA_SIGINFO || old.sa_handler != SIG_DFL) return;
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

void colony__ignore_sigpipe(void)
{
    pthread_once(&sigpipe_once, ignore_if_default);
}
