/*
 * fault: parses PGTIDE_FAULT and fires armed points. Costs one branch when no
 * point is armed.
 */
#include "base/fault.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"

#define FAULT_MAX 8

typedef struct FaultArm
{
	char name[64];
	long fire_at;  /* fire on this hit */
	long sleep_ms; /* 0: kill */
	atomic_long hits;
} FaultArm;

static FaultArm arms[FAULT_MAX];
static int narms = 0;

void
fault_init(void)
{
	const char *spec = getenv("PGTIDE_FAULT");
	char copy[512];
	char *save = NULL;

	if (spec == NULL || *spec == '\0')
		return;
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *tok = strtok_r(copy, ",", &save); tok && narms < FAULT_MAX;
	     tok = strtok_r(NULL, ",", &save))
	{
		FaultArm *a = &arms[narms];
		char *action = strchr(tok, ':');
		char *at;

		if (action)
			*action++ = '\0';
		at = strchr(tok, '@');
		if (at)
			*at++ = '\0';
		snprintf(a->name, sizeof(a->name), "%s", tok);
		a->fire_at = at ? strtol(at, NULL, 10) : 1;
		a->sleep_ms = 0;
		if (action && strncmp(action, "sleep=", 6) == 0)
			a->sleep_ms = strtol(action + 6, NULL, 10);
		atomic_init(&a->hits, 0);
		narms++;
	}
}

void
fault_point(const char *name)
{
	for (int i = 0; i < narms; i++)
	{
		FaultArm *a = &arms[i];

		if (strcmp(a->name, name) != 0)
			continue;
		if (atomic_fetch_add(&a->hits, 1) + 1 != a->fire_at)
			continue;
		if (a->sleep_ms > 0)
		{
			fprintf(stderr, "pgtide: fault point %s: sleeping %ld ms\n", name,
			        a->sleep_ms);
			clock_sleep_ms((int) a->sleep_ms);
		}
		else
		{
			fprintf(stderr, "pgtide: fault point %s: killing pgtide\n", name);
			kill(getpid(), SIGKILL);
		}
	}
}
