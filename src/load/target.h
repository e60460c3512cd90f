/*
 * target: which target tables the load may write into.
 *
 * Before the load creates anything, it looks at each target table the
 * selected tables load into. In create mode a table that already exists is
 * in its way; in existing mode a table that holds rows is, and so is one the
 * role cannot read (every table's load starts with TRUNCATE, so rows the
 * load cannot see would go unasked). --on-existing says what the load does
 * with a table in its way:
 *
 *   refuse     stop before the first change        TARGET_REFUSE
 *   drop       drop it and create it again         TARGET_DROP (create)
 *   truncate   empty it before loading             TARGET_TRUNCATE (existing)
 *
 * A table another task of the same state schema writes is never dropped or
 * emptied, whatever --on-existing says: create mode refuses it, and
 * existing mode shares it (TARGET_SHARE) once load/share.c has found the
 * two tasks' rows apart.
 *
 * Once the task has recorded its consistent point or created its schema,
 * the tables on the target are the task's own and the rule no longer
 * applies. The load (cmd/task.c) and pgtide check (verify/) both ask this
 * module, so that check reports what the load would do. It only reads: it
 * never drops, empties or creates a table.
 */
#ifndef PGTIDE_TARGET_H
#define PGTIDE_TARGET_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

typedef enum TargetAction
{
	TARGET_WRITE = 0, /* not in the way: the load writes into it as it is */
	TARGET_REFUSE,    /* the load stops before its first change */
	TARGET_DROP,      /* create mode: dropped and created again */
	TARGET_TRUNCATE,  /* existing mode: emptied before the load */
	TARGET_SHARE,     /* existing mode: another task writes it too */
} TargetAction;

typedef struct TargetVerdict
{
	TargetAction action;
	bool exists;
	bool readable; /* the role may SELECT from it */
	bool has_rows; /* false when not readable, or not looked at */
	/* another task of the same state schema loads into it: never dropped
	   or emptied, whatever --on-existing says; "" when none */
	char owner[64];
} TargetVerdict;

/*
 * Looks at the target table qname (quoted, as the load names it) and fills
 * *out with what the load does with it. started: the task has recorded its
 * consistent point or created its schema (then TARGET_WRITE, no query). In
 * create mode the rows decide nothing and are counted only with want_rows.
 * Only reads. Fails with the server's error, or ERR_INTERNAL when out of
 * memory.
 */
bool target_examine(PgConn *tgt, const TaskConfig *cfg, bool started,
                    const char *qname, bool want_rows, TargetVerdict *out,
                    Error *err);

/*
 * The load's use of the rule: fails with ERR_TARGET, naming qname and what
 * to do, when the load must not write into it (TARGET_REFUSE); fails as
 * target_examine does. *shared: another task writes it too (TARGET_SHARE),
 * which the caller must check with load/share.h. Queries nothing once the
 * task has started.
 */
bool target_may_load(PgConn *tgt, const TaskConfig *cfg, bool started,
                     const char *qname, bool *shared, Error *err);

/* Called once per column mismatch: table names the source table, and the
 * target table when the rows load into another (an ancestor). */
typedef void (*TargetMismatchFn)(const char *table, const char *problem,
                                 bool blocking, void *ctx);

/*
 * Existing mode: whether the target table tgt_qname can take src's rows
 * exactly. Calls found() for each mismatch: a copied column the target
 * lacks or generates itself, a type that could change a value (only the
 * same type, or a widening whose text reads back the same, passes), and a
 * target column the rows leave empty that may not be (NOT NULL, no
 * default, no identity). A target column the rows leave to its default
 * (or compute) is said too, not blocking: nothing fills it. Only reads.
 */
bool target_columns_compare(PgConn *tgt, const CatTable *src,
                            const char *tgt_qname, TargetMismatchFn found,
                            void *ctx, Error *err);

#endif
