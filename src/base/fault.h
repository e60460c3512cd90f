/*
 * fault: named fault points for tests, inert unless PGTIDE_FAULT names one.
 *
 * PGTIDE_FAULT is a comma-separated list of `name[@N][:action]`: the point
 * fires on its N-th hit (default 1). Actions: `kill` (default) sends SIGKILL to
 * the process, exactly like `kill -9` at that instant; `sleep=MS` pauses the
 * calling thread, giving a test time to act (terminate a backend, restart a
 * server). Fault points never change what pgtide writes.
 */
#ifndef PGTIDE_FAULT_H
#define PGTIDE_FAULT_H

/* Reads PGTIDE_FAULT once; call from main before threads start. */
void fault_init(void);

/* Fires the named point if PGTIDE_FAULT arms it. */
void fault_point(const char *name);

#endif
