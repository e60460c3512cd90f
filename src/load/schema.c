/*
 * schema: pg_dump as a subprocess, pre-data applied entry by entry, post-data
 * saved as steps and built by worker threads.
 *
 * Post-data phases, each finished before the next starts:
 *
 *   1 index builds          parallel, largest table first: CREATE INDEX, and
 *                           the index of each PRIMARY KEY / UNIQUE constraint
 *                           on a plain table (so a table's indexes build side
 *                           by side instead of queueing behind the ACCESS
 *                           EXCLUSIVE lock of ADD CONSTRAINT)
 *   2 constraints on them   serial: ADD CONSTRAINT ... USING INDEX (instant)
 *   3 index attachments     serial: ALTER INDEX ... ATTACH PARTITION
 *   4 foreign keys          parallel, largest table first
 *   5 everything else       serial, in pg_dump's order (triggers, rules, ...)
 *
 * Phase 0 holds pg_dump's preamble (SET statements) that every session runs
 * first.
 */
#include "load/schema.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/pool.h"
#include "base/units.h"
#include "load/dumpscript.h"
#include "route/mapping.h"

extern char **environ;

/* rounds of a phase, each after the target lost built steps */
#define SCHEMA_PHASE_ROUNDS 5
#define SCHEMA_STEP_RETRIES 3
#define SCHEMA_OUTPUT_MAX   ((size_t) 1 << 30)
/* what pg_dump says on stderr, and `pg_dump --version` */
#define SCHEMA_STDERR_MAX  ((size_t) 1 << 20)
#define SCHEMA_VERSION_MAX 4096

/*
 * Runs argv, collecting stdout and stderr into two Bufs (capped: a dump
 * larger than SCHEMA_OUTPUT_MAX fails); *status is the exit status.
 */
static bool
run_capture(char *const *argv, char *const *envp, Buf *out, Buf *errout,
            int *status, Error *err)
{
	int outp[2], errp[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	struct pollfd fds[2];
	int open_fds = 2;
	Error full = ERR_INIT;
	int rc;

	if (pipe(outp) != 0 || pipe(errp) != 0)
		return err_set(err, ERR_INTERNAL, "could not create a pipe: %s",
		               strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, outp[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, errp[1], STDERR_FILENO);
	posix_spawn_file_actions_addclose(&fa, outp[0]);
	posix_spawn_file_actions_addclose(&fa, errp[0]);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv,
	                  envp != NULL ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	if (rc != 0)
	{
		close(outp[0]);
		close(errp[0]);
		return err_set(err, ERR_INTERNAL, "could not run \"%s\": %s", argv[0],
		               strerror(rc));
	}
	fds[0].fd = outp[0];
	fds[1].fd = errp[0];
	fds[0].events = fds[1].events = POLLIN;
	while (open_fds > 0)
	{
		if (poll(fds, 2, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++)
		{
			char buf[65536];
			ssize_t n;

			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n <= 0)
			{
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
			else
				buf_add(i == 0 ? out : errout, buf, (size_t) n, &full);
		}
	}
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	/* read on to the end either way, so that the child is not blocked */
	if (!buf_check(out, &full) || !buf_check(errout, &full))
	{
		*err = full;
		return err_prefix(err, "reading the output of \"%s\": ", argv[0]);
	}
	return true;
}

/* Major version from "pg_dump (PostgreSQL) 15.18 (Debian ...)" as 150000. */
static int
parse_dump_version(const char *text)
{
	const char *p = strstr(text, ") ");
	long major, minor = 0;
	char *end;

	if (p == NULL)
		return 0;
	major = strtol(p + 2, &end, 10);
	if (*end == '.')
		minor = strtol(end + 1, NULL, 10);
	return major >= 10 ? (int) major * 10000
	                   : (int) (major * 10000 + minor * 100);
}

static int
newest_installed(char *out, size_t cap)
{
	const char *root = "/usr/lib/postgresql";
	DIR *d = opendir(root);
	struct dirent *e;
	long best = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		char path[512];
		long v = strtol(e->d_name, NULL, 10);

		snprintf(path, sizeof(path), "%s/%s/bin/pg_dump", root, e->d_name);
		if (v > best && access(path, X_OK) == 0)
		{
			best = v;
			snprintf(out, cap, "%s", path);
		}
	}
	closedir(d);
	return (int) best;
}

bool
schema_find_pg_dump(const char *configured, int source_version, char *out,
                    size_t cap, Error *err)
{
	Buf o = BUF_INIT(SCHEMA_VERSION_MAX), e = BUF_INIT(SCHEMA_VERSION_MAX);
	char *argv[3];
	int status = 0, v;
	int source_major = source_version >= 100000 ? source_version / 10000 * 10000
	                                            : source_version / 100 * 100;

	if (configured != NULL)
		snprintf(out, cap, "%s", configured);
	else if (newest_installed(out, cap) == 0)
		snprintf(out, cap, "pg_dump");
	argv[0] = out;
	argv[1] = "--version";
	argv[2] = NULL;
	if (!run_capture(argv, NULL, &o, &e, &status, err))
	{
		buf_free(&o);
		buf_free(&e);
		return err_hint(err, "install the PostgreSQL client of the source's "
		                     "version or newer, or pass --pg-dump PATH");
	}
	v = WIFEXITED(status) && WEXITSTATUS(status) == 0
	        ? parse_dump_version(buf_str(&o))
	        : 0;
	buf_free(&o);
	buf_free(&e);
	if (v == 0)
	{
		err_set(err, ERR_CONFIG, "could not run \"%s --version\"", out);
		return err_hint(err, "install the PostgreSQL client of the source's "
		                     "version or newer, or pass --pg-dump PATH");
	}
	if (v < source_major)
	{
		err_set(err, ERR_CONFIG,
		        "pg_dump \"%s\" (version %d) is older than the source server "
		        "(version %d)",
		        out, v / 10000, source_major / 10000);
		return err_hint(err, "install a pg_dump at least as new as the source "
		                     "and pass it with --pg-dump PATH");
	}
	return true;
}

/*
 * This process's environment with PGPASSWORD set to password (any earlier
 * PGPASSWORD left out), for a child. NULL when out of memory; free with
 * env_free (the entries are shared with environ but the password's).
 */
static char **
env_with_password(const char *password)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n] != NULL)
		n++;
	envp = calloc(n + 2, sizeof(char *));
	if (envp == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PGPASSWORD=", 11) != 0)
			envp[k++] = environ[i];
	if (asprintf(&envp[k], "PGPASSWORD=%s", password) < 0)
	{
		free(envp);
		return NULL;
	}
	return envp;
}

/* Frees what env_with_password made: the password's entry, the array. */
static void
env_free(char **envp)
{
	size_t n = 0;

	if (envp == NULL)
		return;
	while (envp[n] != NULL)
		n++;
	/* the last entry is ours */
	explicit_bzero(envp[n - 1], strlen(envp[n - 1]));
	free(envp[n - 1]);
	free(envp);
}

/*
 * What pg_dump's message says about a retry: a lost connection may be
 * cured by running it again; a snapshot it could not import is gone with
 * its exporting session (the SQLSTATE a session would have got, 22023, so
 * that the caller takes a fresh snapshot).
 */
static void
dump_failure_kind(const char *message, Error *err)
{
	static const char *const lost[] = {
	    "server closed the connection",
	    "terminating connection",
	    "could not connect",
	    "connection to server",
	    "could not receive data",
	    "could not send data",
	};

	if (message == NULL)
		return;
	if (strstr(message, "invalid snapshot identifier") != NULL)
	{
		snprintf(err->sqlstate, sizeof(err->sqlstate), "22023");
		return;
	}
	for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
		if (strstr(message, lost[i]) != NULL)
			err->retryable = true;
}

bool
schema_dump(const SchemaDumpArgs *args, const char *section, char **out,
            Error *err)
{
	int n = 0, status = 0;
	/* the fixed arguments below, and the NULL that ends them */
	int cap = 17 + 2 * args->nexclude + 2 * args->ninclude;
	char **argv = calloc((size_t) cap, sizeof(char *));
	char **owned = calloc((size_t) cap, sizeof(char *));
	int nowned = 0;
	Buf o = BUF_INIT(SCHEMA_OUTPUT_MAX), e = BUF_INIT(SCHEMA_STDERR_MAX);
	char *conninfo = NULL, *password = NULL;
	char **envp = NULL;
	bool ok = false;

	*out = NULL;
	if (argv == NULL || owned == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	argv[n++] = (char *) (uintptr_t) args->pg_dump;
	argv[n++] = "--schema-only";
	/* the scripts are read for names that pgtide's own UTF-8 sessions
	   then use: in the source's encoding they would be other bytes */
	argv[n++] = "--encoding=UTF8";
	argv[n++] = "--no-owner";
	argv[n++] = "--no-privileges";
	argv[n++] = "--no-publications";
	argv[n++] = "--no-subscriptions";
	argv[n++] = "--no-tablespaces";
	argv[n++] = "--no-security-labels";
	if (args->clean)
	{
		argv[n++] = "--clean";
		argv[n++] = "--if-exists";
	}
	if (asprintf(&owned[nowned], "--section=%s", section) < 0)
		goto oom;
	argv[n++] = owned[nowned++];
	if (args->snapshot != NULL)
	{
		if (asprintf(&owned[nowned], "--snapshot=%s", args->snapshot) < 0)
			goto oom;
		argv[n++] = owned[nowned++];
	}
	if (args->state_schema != NULL)
	{
		if ((owned[nowned] = pg_quote_ident(args->state_schema)) == NULL)
			goto oom;
		argv[n++] = "--exclude-schema";
		argv[n++] = owned[nowned++];
	}
	/* the password goes to the child's environment, never its command
	   line, which every local user can read (ps) */
	if (!pg_conninfo_split(args->source_uri, &conninfo, &password, err))
		goto out;
	if (asprintf(&owned[nowned], "--dbname=%s", conninfo) < 0)
		goto oom;
	argv[n++] = owned[nowned++];
	if (password != NULL && (envp = env_with_password(password)) == NULL)
		goto oom;
	for (int i = 0; i < args->nexclude; i++)
	{
		argv[n++] = "--exclude-table";
		argv[n++] = args->exclude[i];
	}
	for (int i = 0; i < args->ninclude; i++)
	{
		argv[n++] = "--table";
		argv[n++] = args->include[i];
	}
	argv[n] = NULL;
	if (!run_capture(argv, envp, &o, &e, &status, err))
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
	{
		const char *msg = buf_len(&e) > 0 ? buf_str(&e) : "no message";
		int len = (int) strlen(msg);

		while (len > 0 && msg[len - 1] == '\n')
			len--;
		err_set(err, ERR_SOURCE, "pg_dump --section=%s failed: %.*s", section,
		        len, msg);
		dump_failure_kind(msg, err);
		goto out;
	}
	ok = buf_take(&o, out, err);
	goto out;
oom:
	err_set(err, ERR_INTERNAL, "out of memory");
out:
	env_free(envp);
	free(conninfo);
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	free(password);
	for (int i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(argv);
	buf_free(&o);
	buf_free(&e);
	return ok;
}

static void
describe_entry(const DumpEntry *en, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %s%s%s", en->type, en->schema ? en->schema : "",
	         en->schema ? "." : "", en->name);
}

/*
 * Whether en builds or attaches an index that the target made itself when
 * a joining partition was attached to its parent, from the parent's
 * partitioned index: the entries of the script's INDEX ATTACH statements.
 */
static bool
made_by_attach(const DumpScript *ds, const DumpEntry *en)
{
	if (strcmp(en->type, "INDEX ATTACH") == 0)
		return true;
	if (en->index_name == NULL)
		return false;
	for (int i = 0; i < dumpscript_count(ds); i++)
	{
		const DumpEntry *at = dumpscript_entry(ds, i);

		if (strcmp(at->type, "INDEX ATTACH") == 0 && at->index_name != NULL &&
		    strcmp(at->index_name, en->index_name) == 0 &&
		    (at->schema == NULL) == (en->schema == NULL) &&
		    (at->schema == NULL || strcmp(at->schema, en->schema) == 0))
			return true;
	}
	return false;
}

/*
 * Applies a section's script entry by entry in the caller's transaction.
 * joining (post-data of tables that join a running task, whose parents are
 * on the target): each foreign key is added NOT VALID (*fks counts them),
 * and a partition's indexes that attaching it made are not built again.
 */
static bool
apply_script(PgConn *tgt, const char *script, const char *section, bool joining,
             int *fks, Error *err)
{
	DumpScript *ds = NULL;
	bool ok = false;

	if (!dumpscript_parse(script, strlen(script), section, &ds, err))
		return false;
	if (!pg_exec(tgt, dumpscript_preamble(ds), err))
		goto out;
	for (int i = 0; i < dumpscript_count(ds); i++)
	{
		const DumpEntry *en = dumpscript_entry(ds, i);
		bool fk = joining && strcmp(en->type, "FK CONSTRAINT") == 0 &&
		          strstr(en->sql, "NOT VALID") == NULL;
		char what[512];

		/* a SET of a skipped entry holds for the entries after it */
		if (en->setup[0] && !pg_exec(tgt, en->setup, err))
			ok = false;
		else if (joining && made_by_attach(ds, en))
			continue;
		else if (fk)
		{
			/* sql ends with its ';' */
			ok = pg_execf(tgt, err, "%.*s NOT VALID", (int) strlen(en->sql) - 1,
			              en->sql);
			*fks += ok;
		}
		else
			ok = en->sql[0] == '\0' || pg_exec(tgt, en->sql, err);
		if (!ok)
		{
			describe_entry(en, what, sizeof(what));
			err_prefix(err,
			           "could not create %s on the target (%s line %d): ", what,
			           section, en->line);
			goto out;
		}
	}
	ok = true;
out:
	dumpscript_free(ds);
	return ok;
}

bool
schema_apply_predata(PgConn *tgt, const char *script, Error *err)
{
	return apply_script(tgt, script, "pre-data", false, NULL, err);
}

bool
schema_apply_postdata(PgConn *tgt, const char *script, int *fks, Error *err)
{
	*fks = 0;
	return apply_script(tgt, script, "post-data", true, fks, err);
}

/* The step's table as schema and name (both NULL when it has none). */
typedef struct StepTable
{
	TablePattern parsed; /* schema and table hold the unquoted names */
	bool has;
} StepTable;

static void
step_table(const char *table, StepTable *out)
{
	Error ignored = ERR_INIT;

	memset(out, 0, sizeof(*out));
	out->has =
	    table != NULL && mapping_parse_pattern(table, &out->parsed, &ignored);
}

static int64_t
table_weight(const Catalog *cat, const StepTable *t)
{
	int idx;

	if (!t->has)
		return 0;
	idx = catalog_find(cat, t->parsed.schema, t->parsed.table);
	return idx < 0 ? 0 : cat->tables[idx].bytes;
}

static bool
save_step(const State *st, int *entry, int phase, const char *kind,
          const char *object, const StepTable *table, int64_t weight,
          const char *sql, Error *err)
{
	return state_step_save(st, (*entry)++, phase, kind, object,
	                       table->has ? table->parsed.schema : NULL,
	                       table->has ? table->parsed.table : NULL, weight, sql,
	                       err);
}

static bool
append_semicolon(char **sql)
{
	char *with = NULL;

	if (asprintf(&with, "%s;", *sql) < 0)
		return false;
	free(*sql);
	*sql = with;
	return true;
}

/*
 * For a PRIMARY KEY or UNIQUE constraint on a plain table: the index build
 * (phase 1) and the constraint over it (phase 2). *rewritten false when the
 * constraint must be added as pg_dump wrote it.
 */
static bool
split_constraint(PgConn *src, const DumpEntry *en, char **build, char **attach,
                 bool *rewritten, Error *err)
{
	const char *params[2] = {en->schema, en->index_name};
	PGresult *res;
	const char *def;
	char *qname = NULL;
	bool replident, clustered;

	*rewritten = false;
	*build = *attach = NULL;
	if (strstr(en->sql, "DEFERRABLE") != NULL || en->schema == NULL ||
	    en->index_name == NULL || en->table == NULL)
		return true;
	if (!pg_query(src,
	              "SELECT pg_get_indexdef(i.indexrelid), c.relkind,"
	              " i.indisreplident, i.indisclustered"
	              " FROM pg_index i"
	              " JOIN pg_class ic ON ic.oid = i.indexrelid"
	              " JOIN pg_namespace n ON n.oid = ic.relnamespace"
	              " JOIN pg_class c ON c.oid = i.indrelid"
	              " WHERE n.nspname = $1 AND ic.relname = $2",
	              2, params, &res, err))
		return err_prefix(err, "could not read index \"%s\": ", en->index_name);
	if (PQntuples(res) != 1 || PQgetvalue(res, 0, 1)[0] != 'r')
	{
		PQclear(res);
		return true;
	}
	def = PQgetvalue(res, 0, 0);
	replident = PQgetvalue(res, 0, 2)[0] == 't';
	clustered = PQgetvalue(res, 0, 3)[0] == 't';
	qname = pg_quote_ident(en->index_name);
	/* pg_dump writes these two into the constraint's entry; keep them */
	if (qname == NULL || strncmp(def, "CREATE UNIQUE INDEX ", 20) != 0 ||
	    asprintf(build, "CREATE UNIQUE INDEX IF NOT EXISTS %s;", def + 20) <
	        0 ||
	    asprintf(attach,
	             "ALTER TABLE ONLY %s ADD CONSTRAINT %s %s USING INDEX %s;"
	             "%s%s%s%s%s%s%s%s%s",
	             en->table, qname,
	             en->constraint == DUMPSCRIPT_CON_PRIMARY_KEY ? "PRIMARY KEY"
	                                                          : "UNIQUE",
	             qname, replident ? " ALTER TABLE ONLY " : "",
	             replident ? en->table : "",
	             replident ? " REPLICA IDENTITY USING INDEX " : "",
	             replident ? qname : "", replident ? ";" : "",
	             clustered ? " ALTER TABLE ONLY " : "",
	             clustered ? en->table : "", clustered ? " CLUSTER ON " : "",
	             clustered ? qname : "") < 0 ||
	    (clustered && !append_semicolon(attach)))
	{
		PQclear(res);
		free(qname);
		free(*build);
		*build = NULL;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	PQclear(res);
	free(qname);
	*rewritten = true;
	return true;
}

static int
step_phase(const DumpEntry *en)
{
	if (strcmp(en->type, "INDEX") == 0)
		return 1;
	if (strcmp(en->type, "CONSTRAINT") == 0 &&
	    en->constraint != DUMPSCRIPT_CON_OTHER &&
	    en->constraint != DUMPSCRIPT_CON_NONE)
		return 1;
	if (strcmp(en->type, "INDEX ATTACH") == 0)
		return 3;
	if (strcmp(en->type, "FK CONSTRAINT") == 0)
		return 4;
	return 5;
}

bool
schema_save_postdata(const State *st, PgConn *src, const Catalog *cat,
                     const Subset *subset, const char *script, Error *err)
{
	static const StepTable no_table;
	DumpScript *ds = NULL;
	int entry = 0;
	bool ok = true;

	if (!dumpscript_parse(script, strlen(script), "post-data", &ds, err))
		return false;
	ok = save_step(st, &entry, 0, "PREAMBLE", NULL, &no_table, 0,
	               dumpscript_preamble(ds), err);
	for (int i = 0; ok && i < dumpscript_count(ds); i++)
	{
		const DumpEntry *en = dumpscript_entry(ds, i);
		int phase = step_phase(en);
		StepTable table;
		char what[512];
		char *build = NULL, *attach = NULL;
		bool rewritten = false;

		if (en->sql[0] == '\0')
			continue;
		describe_entry(en, what, sizeof(what));
		/* check named it, and the load warned before its slot */
		if (subset != NULL &&
		    subset_leaves_out(subset, en->type, en->schema, en->name))
		{
			log_info("left out %s: it needs a table that is not selected",
			         what);
			continue;
		}
		step_table(en->table, &table);
		if (phase == 1 && strcmp(en->type, "CONSTRAINT") == 0 &&
		    en->constraint != DUMPSCRIPT_CON_EXCLUDE)
			ok = split_constraint(src, en, &build, &attach, &rewritten, err);
		if (ok && rewritten)
			ok = save_step(st, &entry, 1, "INDEX", what, &table,
			               table_weight(cat, &table), build, err) &&
			     save_step(st, &entry, 2, en->type, what, &table,
			               table_weight(cat, &table), attach, err);
		else if (ok)
			ok = save_step(st, &entry, phase, en->type, what, &table,
			               table_weight(cat, &table), en->sql, err);
		free(build);
		free(attach);
		if (table.has)
			mapping_pattern_free(&table.parsed);
	}
	dumpscript_free(ds);
	return ok;
}

typedef struct Builder
{
	const SchemaBuild *args;
	const char *preamble;
	StateStep *steps; /* the phase's pending steps */
	bool *taken;      /* steps[i] handed to a worker; guarded by lock */
	int nsteps;
	int claimed;          /* steps handed out; guarded by lock */
	int *pids;            /* backend building steps[i], 0: none; lock */
	int built;            /* steps built this phase; guarded by lock */
	int64_t weight_built; /* their tables' bytes; guarded by lock */
	pthread_mutex_t lock; /* guards taken, claimed, pids and built */
	atomic_int live;      /* workers not yet returned */
	Pool pool;            /* the phase's workers */
} Builder;

static bool
builder_stopping(Builder *b)
{
	return pool_stopping(&b->pool);
}

static bool
builder_connect(Builder *b, PgConn **conn, Error *err)
{
	if (!pg_connect(b->args->target_uri, ERR_TARGET, PG_CONN_SQL,
	                "pgtide build", 10000, conn, err))
		return false;
	/* one build per worker: give each the memory to sort in RAM */
	return pg_exec(*conn, b->preamble, err) &&
	       pg_exec(*conn, "SET maintenance_work_mem = '256MB'", err);
}

/*
 * lost_pid: the session of a failed attempt, which may have built the step
 * already (its COMMIT's answer lost) and is ended before the step is looked
 * up.
 */
static bool
run_step(Builder *b, PgConn *conn, const StateStep *s, int lost_pid, Error *err)
{
	State on_worker = state_on(b->args->state, conn);
	bool ok, done = false;

	if (lost_pid != 0 &&
	    (!pg_end_lost_session(conn, lost_pid, err) ||
	     !state_step_is_done(&on_worker, s->entry, &done, err)))
		return false;
	if (done)
		return true;
	ok = pg_exec(conn, "BEGIN", err) && pg_exec(conn, s->sql, err) &&
	     state_step_done(&on_worker, s->entry, b->args->run, err);
	if (!ok)
	{
		Error ignored = ERR_INIT;

		if (pg_ok(conn))
			pg_exec(conn, "ROLLBACK", &ignored);
		return false;
	}
	fault_point("postdata.step.before_commit");
	if (!pg_exec(conn, "COMMIT", err))
		return false;
	fault_point("postdata.step.after_commit");
	return true;
}

static bool
step_ready(const Builder *b, const StateStep *s)
{
	const SchemaBuild *a = b->args;

	if (a->ready == NULL || s->tbl_schema == NULL ||
	    (a->load_done != NULL && atomic_load(a->load_done)))
		return true;
	return a->ready(s->tbl_schema, s->tbl_name, a->ready_ctx);
}

/*
 * Hands out the first unclaimed step whose table is loaded (steps are in
 * build order, largest table first). NULL when every step is claimed; *wait
 * is set when steps remain whose tables are still loading.
 */
static StateStep *
claim_step(Builder *b, bool *wait)
{
	StateStep *found = NULL;

	*wait = false;
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < b->nsteps && b->claimed < b->nsteps; i++)
	{
		StateStep *s = &b->steps[i];

		if (b->taken[i])
			continue;
		if (!step_ready(b, s))
		{
			*wait = true;
			continue;
		}
		b->taken[i] = true;
		b->claimed++;
		found = s;
		break;
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

/* Records which backend builds s, for the progress lines. Always true. */
static bool
mark_running(Builder *b, const StateStep *s, PgConn *conn)
{
	pthread_mutex_lock(&b->lock);
	b->pids[s - b->steps] = pg_backend_pid(conn);
	pthread_mutex_unlock(&b->lock);
	return true;
}

static void
mark_finished(Builder *b, const StateStep *s, bool built)
{
	pthread_mutex_lock(&b->lock);
	b->pids[s - b->steps] = 0;
	if (built)
	{
		b->built++;
		b->weight_built += s->weight;
	}
	pthread_mutex_unlock(&b->lock);
}

static void *
builder_main(void *arg)
{
	Builder *b = arg;
	PgConn *conn = NULL;

	log_set_role("build");
	while (!builder_stopping(b))
	{
		bool wait;
		StateStep *s = claim_step(b, &wait);
		Error err = ERR_INIT;
		int attempt = 0;
		int lost_pid = 0;
		int64_t t0 = clock_ms();

		if (s == NULL)
		{
			if (!wait)
				break;
			clock_sleep_ms(100);
			continue;
		}
		/* the build cap (throttle.index_builds) may have changed since the
		   pool started: it is asked for each step */
		if (b->args->gate != NULL &&
		    !gate_enter_build(b->args->gate, b->args->stop))
			break;
		for (;;)
		{
			err_clear(&err);
			if ((conn != NULL || builder_connect(b, &conn, &err)) &&
			    mark_running(b, s, conn) &&
			    run_step(b, conn, s, lost_pid, &err))
				break;
			/* a lost connection, or a deadlock between two builds on one table */
			if (!err.retryable || attempt++ >= SCHEMA_STEP_RETRIES ||
			    builder_stopping(b))
				break;
			log_warn("%s: %s; retrying", s->object, err.message);
			if (conn != NULL)
				lost_pid = pg_backend_pid(conn);
			pg_close(conn);
			conn = NULL;
		}
		if (b->args->gate != NULL)
			gate_leave_build(b->args->gate);
		mark_finished(b, s, !err_is_set(&err));
		if (err_is_set(&err))
		{
			err_prefix(&err, "could not build %s on the target: ", s->object);
			pool_fail(&b->pool, &err);
			break;
		}
		/* a person wants to see the long builds, not the thousand quick ones */
		if (clock_ms() - t0 >= 1000)
			log_info("built %s in %.1f s", s->object,
			         (double) (clock_ms() - t0) / 1000.0);
		else
			log_debug("built %s in %.3f s", s->object,
			          (double) (clock_ms() - t0) / 1000.0);
	}
	pg_close(conn);
	atomic_fetch_sub(&b->live, 1);
	return NULL;
}

static void
free_steps(Builder *b)
{
	state_steps_free(b->steps, b->nsteps);
	free(b->taken);
	free(b->pids);
	b->steps = NULL;
	b->taken = NULL;
	b->pids = NULL;
	b->nsteps = b->claimed = b->built = 0;
	b->weight_built = 0;
}

/* Loads the phase's steps not yet done, largest table first. */
static bool
load_steps(PgConn *tgt, Builder *b, int phase, Error *err)
{
	State on_tgt = state_on(b->args->state, tgt);

	b->claimed = 0;
	if (!state_steps_pending(&on_tgt, phase, &b->steps, &b->nsteps, err))
		return false;
	b->taken = calloc((size_t) b->nsteps + 1, sizeof(bool));
	b->pids = calloc((size_t) b->nsteps + 1, sizeof(int));
	if (b->taken == NULL || b->pids == NULL)
	{
		free_steps(b);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

/* Builds shown by name in one progress line; the others are counted. */
#define PROGRESS_BUILDS_SHOWN 4

static const char *
phase_name(int phase)
{
	static const char *const names[] = {
	    "preamble",          "indexes",      "constraints on indexes",
	    "index attachments", "foreign keys", "triggers and the rest"};

	return phase >= 0 && phase <= 5 ? names[phase] : "steps";
}

/*
 * How far the index build of backend pid is, from 0 to 1, as the target's
 * pg_stat_progress_create_index says (PostgreSQL 12+): the table scan counts
 * for the first half, loading the sorted tuples for the second. -1 when the
 * view has no row for it (another kind of step, or an older server).
 */
static double
build_fraction(PGresult *res, int pid)
{
	for (int r = 0; res != NULL && r < PQntuples(res); r++)
	{
		double done, total;

		if (strtol(PQgetvalue(res, r, 0), NULL, 10) != pid)
			continue;
		done = strtod(PQgetvalue(res, r, 2), NULL);
		total = strtod(PQgetvalue(res, r, 3), NULL);
		if (strcmp(PQgetvalue(res, r, 1), "scan") == 0)
			return total > 0 ? 0.5 * done / total : 0;
		return total > 0 ? 0.5 + 0.5 * done / total : 0.5;
	}
	return -1;
}

/*
 * One progress line for the phase: steps built of all, the bytes of the
 * tables they cover (a build's share of its table counts as it goes), the
 * rate, the ETA, and the builds running now.
 */
static void
report_builds(PgConn *tgt, Builder *b, int phase, int64_t start_ms)
{
	PGresult *res = NULL;
	Error ignored = ERR_INIT;
	Buf running;
	int built, shown = 0, others = 0;
	int64_t total = 0, done;
	double partial = 0, secs = (double) (clock_ms() - start_ms) / 1000.0;
	char done_s[32], total_s[32], rate_s[32], eta_s[32];

	/* a failed read only costs the percentages of this line */
	if (phase == 1 &&
	    !pg_query(tgt,
	              "SELECT pid, CASE WHEN phase LIKE '%scanning table%' THEN "
	              "'scan' ELSE 'load' END, CASE WHEN phase LIKE '%scanning "
	              "table%' THEN blocks_done ELSE tuples_done END, CASE WHEN "
	              "phase LIKE '%scanning table%' THEN blocks_total ELSE "
	              "tuples_total END FROM pg_stat_progress_create_index",
	              0, NULL, &res, &ignored))
		res = NULL;
	buf_init(&running, 512);
	pthread_mutex_lock(&b->lock);
	built = b->built;
	done = b->weight_built;
	for (int i = 0; i < b->nsteps; i++)
	{
		double f;

		total += b->steps[i].weight;
		if (b->pids[i] == 0)
			continue;
		f = build_fraction(res, b->pids[i]);
		if (f > 0)
			partial += f * (double) b->steps[i].weight;
		if (shown++ >= PROGRESS_BUILDS_SHOWN)
		{
			others++;
			continue;
		}
		buf_printf(&running, &ignored, "%s%s", shown > 1 ? ", " : "",
		           b->steps[i].object);
		if (f >= 0)
			buf_printf(&running, &ignored, " %.0f%%", f * 100.0);
	}
	pthread_mutex_unlock(&b->lock);
	PQclear(res);
	if (others > 0)
		buf_printf(&running, &ignored, " and %d more", others);
	done += (int64_t) partial;
	units_format_bytes(done, done_s, sizeof(done_s));
	units_format_bytes(total, total_s, sizeof(total_s));
	units_format_bytes(secs > 0 ? (int64_t) ((double) done / secs) : 0, rate_s,
	                   sizeof(rate_s));
	units_format_eta(done > 0 && secs > 0
	                     ? (double) (total - done) * secs / (double) done
	                     : -1,
	                 eta_s, sizeof(eta_s));
	log_info("post-data %s: %d of %d built, %s of %s of tables, %s/s, ETA "
	         "%s%s%s",
	         phase_name(phase), built, b->nsteps, done_s, total_s, rate_s,
	         eta_s, buf_len(&running) > 0 ? "; building " : "",
	         buf_str(&running));
	buf_free(&running);
}

/*
 * Waits for the phase's workers to return, logging a progress line every
 * progress interval: an index build of a large table takes minutes to
 * hours, and the steps' own lines come only when each ends. The load's
 * early builds run under the load's progress and stay quiet.
 */
static void
watch_builds(PgConn *tgt, Builder *b, int phase)
{
	int64_t start = clock_ms(), last = start;
	int64_t every = (int64_t) b->args->progress_interval_s * 1000;

	while (atomic_load(&b->live) > 0)
	{
		clock_sleep_ms(200);
		if (every <= 0 || b->args->load_done != NULL ||
		    clock_ms() - last < every)
			continue;
		last = clock_ms();
		report_builds(tgt, b, phase, start);
	}
}

/*
 * Runs one phase's pending steps with n workers, then again any step the
 * target lost: a step and its "done" mark commit together, but with the
 * session's synchronous_commit, so a target crash may take both back after
 * the worker moved on. After a synchronous commit on the state nothing
 * earlier can be lost, and the steps still pending are really not built.
 */
static bool
run_phase(PgConn *tgt, Builder *b, int phase, int n, Error *err)
{
	State on_tgt = state_on(b->args->state, tgt);

	for (int round = 1;; round++)
	{
		int workers = n;
		bool ok;

		if (!load_steps(tgt, b, phase, err))
			return false;
		if (b->nsteps == 0)
		{
			free_steps(b);
			return true;
		}
		if (round > 1)
			log_warn("the target lost %d built steps of post-data phase %d "
			         "(did it restart?); building them again",
			         b->nsteps, phase);
		if (round > SCHEMA_PHASE_ROUNDS)
		{
			free_steps(b);
			return err_set(err, ERR_TARGET,
			               "the target lost built post-data steps in each of "
			               "%d rounds",
			               SCHEMA_PHASE_ROUNDS);
		}
		if (workers > b->nsteps)
			workers = b->nsteps;
		atomic_store(&b->live, workers);
		ok = pool_start(&b->pool, workers, builder_main, b, 0, b->args->stop,
		                "build worker", err);
		if (ok)
		{
			watch_builds(tgt, b, phase);
			ok = pool_join(&b->pool, err);
		}
		free_steps(b);
		if (!ok || !state_sync(&on_tgt, err))
			return false;
	}
}

bool
schema_build_postdata(const SchemaBuild *args, Error *err)
{
	PgConn *tgt = NULL;
	Builder b;
	char *preamble = NULL;
	bool ok = false;

	memset(&b, 0, sizeof(b));
	b.args = args;
	pthread_mutex_init(&b.lock, NULL);
	/* the phase's steps and their state are read here between phases: a
	   connection lost while the workers build is replaced */
	if (!pg_connect(args->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide", 10000,
	                &tgt, err) ||
	    !pg_keep_session(tgt, NULL, PG_RECONNECT_MS, err))
		goto out;
	/* the preamble is phase 0's only step */
	if (!load_steps(tgt, &b, 0, err))
		goto out;
	preamble = strdup(b.nsteps > 0 && b.steps[0].sql ? b.steps[0].sql : "");
	free_steps(&b);
	if (preamble == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	b.preamble = preamble;
	ok = true;
	for (int phase = args->first_phase; ok && phase <= args->last_phase;
	     phase++)
	{
		bool parallel = phase == 1 || phase == 4;
		int jobs = args->jobs < 1 ? 1 : args->jobs > 64 ? 64 : args->jobs;

		ok = run_phase(tgt, &b, phase, parallel ? jobs : 1, err);
	}
out:
	pthread_mutex_destroy(&b.lock);
	free(preamble);
	pg_close(tgt);
	return ok;
}
