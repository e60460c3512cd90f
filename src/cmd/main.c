/*
 * main: argv -> cli_main(). The only exit() of pgtide, and the signal
 * handlers: SIGINT and SIGTERM ask the running command to stop at its next
 * safe point (state is saved, the same command resumes); a second one ends
 * the process at once. A service manager that asked for notifications
 * (NOTIFY_SOCKET) hears STOPPING=1 from the handler itself, the moment the
 * request arrives. SIGHUP asks a running load to reread its task file: the
 * handler only sets a flag, the load's throttle thread does the reading.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/notify.h"
#include "cmd/cli.h"
#include "pg/feed.h"

/*
 * Set by the handler, read by every thread: a lock-free atomic is safe for
 * both, where a volatile sig_atomic_t is safe only for the handler.
 */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");
static atomic_int stop_requested = 0;
static atomic_int reload_requested = 0;

static void
on_stop(int signo)
{
	int saved = errno; /* the interrupted code may be about to read it */

	if (stop_requested)
	{
		signal(signo, SIG_DFL);
		raise(signo);
	}
	stop_requested = 1;
	notify_stopping(); /* only sendto(2): safe here */
	errno = saved;
}

static void
on_reload(int signo)
{
	(void) signo;
	reload_requested = 1;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;

	/* before the handlers, which send on what it opens */
	notify_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fault_init();
	/* a target's process of a task under one slot reads its stream from
	   the process that started it */
	feed_attach_from_env(&stop_requested);
	exit(cli_main(argc, argv, &stop_requested, &reload_requested));
}
